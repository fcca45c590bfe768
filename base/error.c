#include <stdarg.h>
#include <stdio.h>

#include "base/error.h"

const char *saemon_status_name(saemon_status code)
{
    switch (code) {
    case SAEMON_OK: return "ok";
    case SAEMON_ERR_IO: return "io";
    case SAEMON_ERR_FORMAT: return "format";
    case SAEMON_ERR_SHAPE: return "shape";
    case SAEMON_ERR_UNSUPPORTED: return "unsupported";
    case SAEMON_ERR_NOMEM: return "nomem";
    case SAEMON_ERR_RULES: return "rules";
    case SAEMON_ERR_MISMATCH: return "mismatch";
    case SAEMON_ERR_ARG: return "arg";
    case SAEMON_ERR_VALUE: return "value";
    }
    return "unknown";
}

saemon_status saemon_error_set(saemon_error *err, saemon_status code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}
