/* Whole-file reads for the rule, label and rule-test loaders. */
#ifndef SAEMON_BASE_READ_FILE_H
#define SAEMON_BASE_READ_FILE_H

#include <stddef.h>

#include "saemon/error.h"

/* Read a regular file of at most `max` bytes into a malloc'd, NUL-terminated
 * buffer. `what` names the file's role in messages ("rule file"). */
saemon_status read_whole_file(const char *path, size_t max, const char *what, char **text, size_t *len,
                              saemon_error *err);

/* dir_of(file) + "/" + rel, or rel itself when absolute; malloc'd, NULL on OOM. */
char *path_relative_to(const char *file, const char *rel);

#endif
