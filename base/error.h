/* Filling a saemon_error (the public record, include/saemon/error.h) from
 * inside the library. Not exported. */
#ifndef SAEMON_BASE_ERROR_H
#define SAEMON_BASE_ERROR_H

#include "saemon/error.h"

/* Record an error (printf-style) and return `code`; `err` may be NULL. */
saemon_status saemon_error_set(saemon_error *err, saemon_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
