/* An exact running sum of float32 values for `mean_over` windows.
 *
 * A running double sum (add the new value, subtract the evicted one) loses
 * the small values added while a large one is in the window, and the loss
 * stays after it leaves: 1, 1e16, 1, 1 over 2 tokens gives a mean of 0.5.
 * Here every finite float is a multiple of 2^-149 below 2^128, so a window
 * of at most 2^16 of them sums exactly in a 320-bit two's-complement fixed
 * point number with that unit: adding and subtracting are exact, nothing can
 * drift, and the sum is rounded to double only when it is read. */
#ifndef SAEMON_MONITORS_EXACT_SUM_H
#define SAEMON_MONITORS_EXACT_SUM_H

#include <stdint.h>

#define EXACT_SUM_WORDS 5

typedef struct exact_sum {
    uint64_t w[EXACT_SUM_WORDS]; /* little-endian words, two's complement, unit 2^-149 */
} exact_sum;

/* sum += v (negate: sum -= v); v must be finite. */
void exact_sum_add(exact_sum *s, float v, int negate);

/* The sum rounded to double (truncated below the 64 leading bits first: the
 * result is within one double ulp of the exact sum). */
double exact_sum_value(const exact_sum *s);

#endif
