/* SAELens' input normalisation (formats.md §1.4). The x − b_dec of
 * apply_b_dec_to_input that follows it in SAELens is not done per row: the
 * encoder folds b_dec·W_j into the biases once (runtime/encoder.c,
 * fold_b_dec). The hook_z reshape is a view of the input
 * (saemon_npy_as_rows), nothing to compute. */
#ifndef SAEMON_PREPROCESS_H
#define SAEMON_PREPROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"

typedef struct saemon_row_stats {
    float input_norm;  /* ||x||_2 of the raw row */
    bool nonfinite;    /* the raw row held NaN or Inf */
    double shift, scale; /* normalisation: x' = (x − shift) · scale */
} saemon_row_stats;

/* out[i] = preprocessed in[i] for one row of d_in values. Computed in double,
 * rounded once. A zero row under constant_norm_rescale becomes NaN, as in
 * SAELens (0 · sqrt(d)/0); NaN rows activate no feature. `cpu`: the
 * SAEMON_CPU_* bits of the encoder's kernel; with AVX2 the sums and the
 * scaling run four doubles at a time, in the scalar code's order (the same
 * bits, tests/runtime/test_preprocess.c). */
saemon_row_stats saemon_preprocess_row(const float *in, float *out, size_t d_in, saemon_norm norm, uint32_t cpu);

#endif
