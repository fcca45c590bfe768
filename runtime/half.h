/* Exact upcasts of stored weight dtypes to float32. */
#ifndef SAEMON_HALF_H
#define SAEMON_HALF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"

float saemon_f16_to_f32(uint16_t h);
float saemon_bf16_to_f32(uint16_t b);

/* Element size in bytes of a saemon_dtype. */
size_t saemon_dtype_size(saemon_dtype dtype);

/* Convert n little-endian elements at src (any alignment) to float32.
 * F16/BF16 are exact; F64 rounds to nearest (out-of-range values become ±Inf,
 * which the loader then refuses as non-finite). */
void saemon_convert_to_f32(const void *src, saemon_dtype dtype, size_t n, float *dst);

/* Same, but the source is a [rows][cols] matrix and dst receives its
 * transpose [cols][rows]. */
void saemon_convert_transpose_to_f32(const void *src, saemon_dtype dtype, size_t rows,
                                     size_t cols, float *dst);

/* True when no element is NaN or ±Inf (branch-free, vectorisable). */
bool saemon_all_finite(const float *a, size_t n);

#endif
