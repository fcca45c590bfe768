/* SAELens' input preprocessing, in SAELens' order (formats.md §1.4):
 * normalisation, then x − b_dec when apply_b_dec_to_input. The hook_z
 * reshape is a view of the input (saemon_npy_as_rows), nothing to compute. */
#ifndef SAEMON_PREPROCESS_H
#define SAEMON_PREPROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "saemon/dict.h"

typedef struct saemon_row_stats {
    float input_norm;  /* ||x||_2 of the raw row */
    bool nonfinite;    /* the raw row held NaN or Inf */
    double shift, scale; /* normalisation: x' = (x − shift) · scale */
} saemon_row_stats;

/* out[i] = preprocessed in[i] for one row of d_in values. Computed in double,
 * rounded once. A zero row under constant_norm_rescale becomes NaN, as in
 * SAELens (0 · sqrt(d)/0); NaN rows activate no feature. */
saemon_row_stats saemon_preprocess_row(const float *in, float *out, size_t d_in, saemon_norm norm,
                                       const float *b_dec_or_null);

#endif
