/* Generated SAELens dictionaries of any size, written as a stream (about
 * 1 MiB held whatever the size): the memory benchmark and the peak-RSS test
 * need multi-GiB files without holding them. */
#ifndef SAEMON_BENCH_DICTGEN_H
#define SAEMON_BENCH_DICTGEN_H

#include <stddef.h>
#include <stdint.h>

/* Write dir/cfg.json and dir/sae_weights.safetensors: a JumpReLU SAE with
 * W_enc F32 [d_in, d_sae] (the column layout), W_dec [d_sae, d_in] stored as
 * `wdec_dtype` ("F32" or "BF16"), b_enc, b_dec, threshold (F32); values are
 * a deterministic function of `seed`. dir must exist. 0 on success, -1 with
 * errno set on failure. */
int dictgen_saelens(const char *dir, size_t d_in, size_t d_sae, const char *wdec_dtype, uint64_t seed);

#endif
