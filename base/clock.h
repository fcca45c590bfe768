/* The one monotonic clock (CLOCK_MONOTONIC): timeouts, backoff, rates. */
#ifndef SAEMON_BASE_CLOCK_H
#define SAEMON_BASE_CLOCK_H

#include <stdint.h>

/* Seconds since an arbitrary fixed point; only differences mean anything. */
double clock_now_s(void);
/* The same in nanoseconds. */
uint64_t clock_now_ns(void);

#endif
