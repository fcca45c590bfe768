/* The one monotonic clock (CLOCK_MONOTONIC): timeouts, backoff, rates; the
 * calling thread's CPU clock, for benchmarks; the UTC time stamp of log lines. */
#ifndef SAEMON_BASE_CLOCK_H
#define SAEMON_BASE_CLOCK_H

#include <stdint.h>

/* Seconds since an arbitrary fixed point; only differences mean anything. */
double clock_now_s(void);
/* The same in nanoseconds. */
uint64_t clock_now_ns(void);
/* CPU seconds used by the calling thread (CLOCK_THREAD_CPUTIME_ID): what a
 * benchmark on a shared machine measures, since wall time would count the
 * time other processes held the core. */
double clock_thread_cpu_s(void);

/* The wall clock for log lines, UTC with milliseconds:
 * "2025-01-31T12:34:56.789Z" (out holds at least 32 bytes). */
void clock_utc_stamp(char out[32]);

#endif
