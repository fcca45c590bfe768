/* saemon — turning dense activations into sparse features. */
#ifndef SAEMON_ENCODER_H
#define SAEMON_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/api.h"
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
    const bool *input_nonfinite; /* [n_tokens]: the raw row held NaN/Inf */
    /* [n_tokens]: ||x − x̂|| / ||x|| with x̂ = decode(features) in the input's
     * own space (normalisation undone), when the encoder was created with
     * `reconstruction`; NULL otherwise. */
    const float *recon_error;
} saemon_features;

typedef struct saemon_encoder_options {
    const char *variant; /* kernel variant or ISA name to force ("scalar", "avx512", ...);
                            NULL: $SAEMON_ISA if set, else the best the CPU runs */
    size_t max_batch;    /* most rows per encode call; 0 means 256 */
    /* Placement. threads 0 (the default): everything runs on the calling
     * thread, unpinned. threads N >= 1: the latents are split into N
     * contiguous slices, one per core chosen with hwloc; the calling thread
     * encodes slice 0 and N-1 worker threads the others, each pinned to its
     * core for the life of the encoder and owning its slice of the packed
     * weights (first-touch on its NUMA node). Fewer cores than asked: a
     * warning (saemon_encoder_warning) and fewer threads. */
    size_t threads;
    const char *cpus;         /* only these CPUs, hwloc list syntax "2-5,8"; NULL = all allowed */
    const char *exclude_cpus; /* never these (e.g. the production model's cores) */
    bool no_pin;              /* choose cores but do not bind threads */
    unsigned spin_us;         /* idle workers spin this long before sleeping; 0 means 200 */
    bool reconstruction;      /* also decode each token and report its relative error */
} saemon_encoder_options;

typedef struct saemon_encoder saemon_encoder;

SAEMON_API saemon_status saemon_encoder_create(const saemon_dict *dict, const saemon_encoder_options *opts,
                                    saemon_encoder **out, saemon_error *err);

/* Encode `n` rows of `d_in` floats (contiguous, row-major). The result stays
 * valid until the next call on this encoder. n must be <= max_batch. */
SAEMON_API saemon_status saemon_encoder_encode(saemon_encoder *enc, const float *x, size_t n,
                                    const saemon_features **out, saemon_error *err);

/* Name of the kernel variant in use, e.g. "f32-encode-1x1-scalar". */
SAEMON_API const char *saemon_encoder_variant(const saemon_encoder *enc);
SAEMON_API size_t saemon_encoder_max_batch(const saemon_encoder *enc);

/* Number of slices (threads) and the CPU each is bound to (-1: unpinned). */
SAEMON_API size_t saemon_encoder_threads(const saemon_encoder *enc);
SAEMON_API int saemon_encoder_thread_cpu(const saemon_encoder *enc, size_t slice);
/* A placement warning from creation (fewer cores than asked), or "". */
SAEMON_API const char *saemon_encoder_warning(const saemon_encoder *enc);

SAEMON_API void saemon_encoder_destroy(saemon_encoder *enc);

#ifdef __cplusplus
}
#endif
#endif
