/* Helpers every sink kind uses (sink_internal.h). */
#include <stdarg.h>
#include <stdio.h>

#include "monitors/sinks/sink_internal.h"

void sink_fail(sink *s, saemon_status code, const char *fmt, ...)
{
    if (s->failed_hard)
        return;
    s->failed_hard = true;
    s->error.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error.message, sizeof s->error.message, fmt, ap);
    va_end(ap);
}
