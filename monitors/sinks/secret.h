/* Secrets of the HTTP sinks (passwords, bearer tokens): taken from the YAML
 * value, a file or an environment variable, kept in memory only, wiped when
 * freed, never copied into a message. A file is re-read whenever its inode,
 * size or mtime changes (one stat() before each request), so rotating the
 * file takes effect on the next request. */
#ifndef SAEMON_MONITORS_SINKS_SECRET_H
#define SAEMON_MONITORS_SINKS_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "saemon/sinks.h"

#define SECRET_MAX_BYTES 16384

typedef struct sink_secret {
    char *value; /* NUL-terminated; NULL = no secret configured */
    char *file;  /* re-read on change; NULL for an inline / env secret */
    struct stat seen;
} sink_secret;

/* More than one source (value, file, env) given, or none: the message
 * names `what` ("basic_auth password"). */
bool secret_source_valid(const saemon_secret *src, const char *what, char *msg, size_t len);
bool secret_source_set(const saemon_secret *src);

/* Load the secret. Errors name the file or variable, never the value. */
bool sink_secret_init(sink_secret *s, const saemon_secret *src, const char *what, char *msg, size_t len);
/* Re-read the file if it changed; on failure the previous value is kept
 * and false returned with the reason in msg. */
bool sink_secret_refresh(sink_secret *s, const char *what, char *msg, size_t len);
void sink_secret_free(sink_secret *s);

/* Read a secret file (at most SECRET_MAX_BYTES, one trailing newline
 * dropped, non-empty); *mode_warning is set when group or others may read it. */
bool secret_read_file(const char *path, const char *what, char **value, struct stat *st, bool *mode_warning,
                      char *msg, size_t len);

#endif
