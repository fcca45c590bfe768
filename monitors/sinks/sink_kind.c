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

void sink_failed_one(sink *s, const char *fmt, ...)
{
    atomic_fetch_add(&s->failed, 1);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->mu);
    vsnprintf(s->last_failure, sizeof s->last_failure, fmt, ap);
    pthread_mutex_unlock(&s->mu);
    va_end(ap);
}
