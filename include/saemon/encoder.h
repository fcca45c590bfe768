/* saemon — turning dense activations into sparse features. */
#ifndef SAEMON_ENCODER_H
#define SAEMON_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sparse features of a batch in CSR form: token t owns entries
 * [offsets[t], offsets[t+1]) of index/value, indices ascending. Only strictly
 * positive activations are stored. */
typedef struct saemon_features {
    size_t n_tokens;
    const size_t *offsets;   /* [n_tokens + 1] */
    const uint32_t *index;   /* feature (latent) index, < d_sae */
    const float *value;      /* activation, > 0 */
    const float *input_norm; /* [n_tokens]: ||x||_2 of the raw input row */
    const uint8_t *input_nonfinite; /* [n_tokens]: 1 if the raw row held NaN/Inf */
} saemon_features;

typedef struct saemon_encoder_options {
    const char *variant; /* kernel variant or ISA name to force ("scalar", "avx512", ...);
                            NULL: $SAEMON_ISA if set, else the best the CPU runs */
    size_t max_batch;    /* most rows per encode call; 0 means 256 */
} saemon_encoder_options;

typedef struct saemon_encoder saemon_encoder;

saemon_status saemon_encoder_create(const saemon_dict *dict, const saemon_encoder_options *opts,
                                    saemon_encoder **out, saemon_error *err);

/* Encode `n` rows of `d_in` floats (contiguous, row-major). The result stays
 * valid until the next call on this encoder. n must be <= max_batch. */
saemon_status saemon_encoder_encode(saemon_encoder *enc, const float *x, size_t n,
                                    const saemon_features **out, saemon_error *err);

/* Name of the kernel variant in use, e.g. "f32-dot-1x-scalar". */
const char *saemon_encoder_variant(const saemon_encoder *enc);
size_t saemon_encoder_max_batch(const saemon_encoder *enc);

void saemon_encoder_destroy(saemon_encoder *enc);

#ifdef __cplusplus
}
#endif
#endif
