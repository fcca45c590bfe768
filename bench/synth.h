/* Deterministic SAE-shaped dictionaries and activations for the benchmark. */
#ifndef SAEMON_BENCH_SYNTH_H
#define SAEMON_BENCH_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

/* One kernel variant packed and ready to encode up to max_batch rows. */
typedef struct bench_kinst {
    const saemon_kernel *k;
    saemon_kernel_plan plan;
    void *packed, *scratch;
    size_t max_batch;
    saemon_kernel_out out;
} bench_kinst;

int bench_kinst_init(bench_kinst *ki, const saemon_kernel *k, const saemon_kernel_plan *plan,
                     const float *w_rows, size_t max_batch);
void bench_kinst_run(bench_kinst *ki, const float *x, size_t n);
/* Mean number of emitted features over the last run's first n rows. */
double bench_kinst_mean_l0(const bench_kinst *ki, size_t n);
void bench_kinst_free(bench_kinst *ki);

typedef struct bench_synth {
    size_t d_in, d_sae, n_tokens, n_calib;
    float *w_rows;    /* [d_sae][d_in] encoder rows (= W_enc columns), 64-byte aligned */
    float *b_enc;     /* [d_sae] */
    float *threshold; /* [d_sae]: the calibrated JumpReLU threshold, shared */
    float *x;         /* [n_tokens][d_in] benchmark activations */
    float theta;
    double target_l0, calib_l0;
} bench_synth;

/* Unit-norm decoder row j of dictionary `seed` (regenerated on demand, never stored). */
void bench_synth_dec_row(uint64_t seed, size_t j, size_t d_in, float *out);
/* n activation rows built from dictionary directions; `stream` picks the set. */
void bench_synth_acts(uint64_t seed, uint64_t stream, size_t d_in, size_t d_sae, size_t n, float *x);

/* Build the dictionary and activations, then calibrate theta on n_calib
 * separate tokens (pre-activations from kernel `k`) so that the mean number of
 * active features per calibration token is target_l0. Returns 0, -1 on OOM. */
int bench_synth_make(bench_synth *s, size_t d_in, size_t d_sae, size_t n_tokens, size_t n_calib,
                     double target_l0, uint64_t seed, const saemon_kernel *k);
void bench_synth_free(bench_synth *s);

#endif
