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
     * `reconstruction`; NULL otherwise. NaN on rows encoded with a subset plan. */
    const float *recon_error;
    /* [n_tokens]: true when the row was encoded with a subset plan (only the
     * plan's latents are present, so L0 and reconstruction are unknown);
     * NULL when every row of the batch was encoded with every latent. */
    const bool *subset;
} saemon_features;

/* Which latents an encoder computes (docs/ARCHITECTURE.md "Subset plans"). */
typedef enum saemon_encode_mode {
    SAEMON_ENCODE_ALL = 0, /* every latent (the default) */
    SAEMON_ENCODE_AUTO,    /* the `latents` subset when that is exact and nothing needs
                              the full set (full_reason NULL), else every latent */
    SAEMON_ENCODE_RULES,   /* the `latents` subset; an error when it cannot be exact
                              (TopK) or full_reason says the full set is needed */
} saemon_encode_mode;

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
     * warning (saemon_encoder_get_warning) and fewer threads. */
    size_t threads;
    const char *cpus;         /* only these CPUs, hwloc list syntax "2-5,8"; NULL = all allowed */
    const char *exclude_cpus; /* never these (e.g. the production model's cores) */
    bool no_pin;              /* choose cores but do not bind threads */
    unsigned spin_us;         /* idle workers spin this long before sleeping; 0 means 200 */
    bool reconstruction;      /* also decode each token and report its relative error */
    /* Subset plans. With AUTO/RULES and a subset chosen, only `latents`
     * (indices < d_sae, any order, duplicates allowed) are computed, packed
     * contiguously for the kernel variant in use; their values are
     * bit-identical to a full encode's. Features outside the set are absent. */
    saemon_encode_mode encode;
    const uint32_t *latents;
    size_t n_latents;
    /* Why the caller needs every latent on every row (e.g. "rule 'l0' reads
     * L0"), or NULL. AUTO then encodes everything; RULES refuses. */
    const char *full_reason;
    /* With a subset plan: also encode one row in `full_every` (counted over
     * every row this encoder sees, the first row included) with every latent,
     * flagged subset=false (health rules with `every:`). 0: never. */
    size_t full_every;
    /* With a subset plan: keep the whole dictionary packed as well, for
     * saemon_encoder_encode_full (capture on demand) and for switching back
     * to every latent with saemon_encoder_set_latents(enc, NULL, 0). Implied
     * by full_every. */
    bool keep_full;
} saemon_encoder_options;

typedef struct saemon_encoder saemon_encoder;

SAEMON_API saemon_status saemon_encoder_create(const saemon_dict *dict, const saemon_encoder_options *opts,
                                    saemon_encoder **out, saemon_error *err);

/* Encode `n` rows of `d_in` floats (contiguous, row-major). The result stays
 * valid until the next call on this encoder. n must be <= max_batch. */
SAEMON_API saemon_status saemon_encoder_encode(saemon_encoder *enc, const float *x, size_t n,
                                    const saemon_features **out, saemon_error *err);

/* Encode `n` rows (<= max_batch) with every latent, whatever the current
 * plan: capture on demand. Needs an encoder whose plan is ALL, or created
 * with keep_full / full_every. The result is valid until the next encode
 * call of either kind. */
SAEMON_API saemon_status saemon_encoder_encode_full(saemon_encoder *enc, const float *x, size_t n,
                                         const saemon_features **out, saemon_error *err);

/* Replace the subset plan: `latents` (as in the options; NULL = every latent,
 * which needs the full dictionary packed) are gathered and packed here, on
 * the calling thread, which may be another thread than the one encoding
 * (a reload). The new plan is installed atomically at the start of the next
 * encode call, so a batch never mixes plans; a feature added here is
 * present from that batch on. Calls must not overlap each other. TopK
 * dictionaries refuse a subset. On error the current plan stays. */
SAEMON_API saemon_status saemon_encoder_set_latents(saemon_encoder *enc, const uint32_t *latents, size_t n,
                                         saemon_error *err);

/* The plan in effect (the one set_latents left pending, else the one in
 * use): true for a subset, and how many latents it computes per row (d_sae
 * for the full plan). Call from the encoding thread or from the one thread
 * that calls set_latents. */
SAEMON_API bool saemon_encoder_is_subset(const saemon_encoder *enc);
SAEMON_API size_t saemon_encoder_get_latent_count(const saemon_encoder *enc);
/* One line saying which plan is in use, why, and how many latents it holds,
 * e.g. "subset of 64 of 24576 latents (exact for jumprelu); every latent on
 * 1 row in 100". Valid until the next call on the encoder. */
SAEMON_API const char *saemon_encoder_get_plan(const saemon_encoder *enc);

/* Name of the kernel variant in use, e.g. "f32-encode-1x1-scalar". */
SAEMON_API const char *saemon_encoder_get_variant(const saemon_encoder *enc);
SAEMON_API size_t saemon_encoder_get_max_batch(const saemon_encoder *enc);

/* Number of slices (threads) and the CPU each is bound to (-1: unpinned). */
SAEMON_API size_t saemon_encoder_get_threads(const saemon_encoder *enc);
SAEMON_API int saemon_encoder_get_thread_cpu(const saemon_encoder *enc, size_t slice);
/* A placement warning from creation (fewer cores than asked), or "". */
SAEMON_API const char *saemon_encoder_get_warning(const saemon_encoder *enc);

SAEMON_API void saemon_encoder_destroy(saemon_encoder *enc);

#ifdef __cplusplus
}
#endif
#endif
