/* Offline checks of tls_config files (libcrypto), for loading a sinks file
 * and `saemon check --sinks`: certificates parse and are within their
 * validity period, a private key parses and matches its certificate. Both
 * return false with the reason in msg; warn (may be NULL) collects lines that
 * do not stop the file from working (expiring soon, key readable by others),
 * each prefixed with `where` ("file:line:column: "). */
#ifndef SAEMON_MONITORS_SINKS_TLS_CHECK_H
#define SAEMON_MONITORS_SINKS_TLS_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* A PEM file of one or more certificates: a CA bundle (`ca`: expired ones
 * are only a warning while one is valid) or a client certificate chain. */
bool tls_check_cert_file(const char *path, const char *what, bool ca, char *msg, size_t len, const char *where,
                         char *warn, size_t wlen);
/* An unencrypted PEM private key, matching the first certificate of cert_path. */
bool tls_check_key_file(const char *key_path, const char *cert_path, char *msg, size_t len, const char *where,
                        char *warn, size_t wlen);
/* Append one line to a warnings buffer (NULL-safe, truncates). */
void tls_check_warn(char *warn, size_t wlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
