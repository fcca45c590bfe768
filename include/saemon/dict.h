/* saemon — a loaded sparse dictionary (SAE) and what is known about it. */
#ifndef SAEMON_DICT_H
#define SAEMON_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "saemon/api.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum saemon_arch {
    SAEMON_ARCH_STANDARD = 0, /* ReLU(h) */
    SAEMON_ARCH_JUMPRELU,     /* ReLU(h) * [h > threshold] */
    SAEMON_ARCH_GATED,        /* [x·W + b_gate > 0] * ReLU(exp(r_mag)·x·W + b_mag) */
    SAEMON_ARCH_TOPK,         /* top k of h (lower index wins ties), then ReLU */
    /* Dense linear probes on the raw activation (probe.safetensors +
     * probe.json): d_sae = k probes, every one reported on every token. */
    SAEMON_ARCH_PROBE_SIGMOID,  /* sigmoid(x·w + b), in (0, 1) */
    SAEMON_ARCH_PROBE_IDENTITY, /* x·w + b, reported when > 0 (like ReLU) */
} saemon_arch;

typedef enum saemon_norm {
    SAEMON_NORM_NONE = 0,
    SAEMON_NORM_CONSTANT_NORM_RESCALE, /* x * sqrt(d_in) / ||x|| */
    SAEMON_NORM_LAYER_NORM,            /* (x - mean) / (unbiased std + 1e-5) */
} saemon_norm;

typedef enum saemon_dtype {
    SAEMON_DTYPE_F32 = 0,
    SAEMON_DTYPE_F16,
    SAEMON_DTYPE_BF16,
    SAEMON_DTYPE_F64,
} saemon_dtype;

/* What was loaded. Strings are owned by the dictionary. */
typedef struct saemon_dict_info {
    const char *path;        /* directory (or "(memory)") */
    const char *format;      /* "saelens", "sparsify", "openai", "gemmascope", "gemmascope2",
                                "llamascope", "llamascope_r1", "dictionary_learning" */
    const char *name;        /* identity used by rule pins: cfg metadata neuronpedia_id, else dir name */
    saemon_arch arch;
    size_t d_in;
    size_t d_sae;
    size_t k;                /* topk only, else 0 */
    bool rescale_acts_by_decoder_norm; /* topk only */
    bool apply_b_dec_to_input;
    saemon_norm norm;
    bool reshape_hook_z;     /* inputs may arrive as [..., n_heads, d_head] */
    const char *normalize_activations; /* as written in cfg ("none", "expected_average_only_in", ...) */
    double folded_scaling_factor;      /* expected_average_only_in factor folded into weights, else 0 */
    saemon_dtype weight_dtype;         /* storage dtype of W_enc in the file */
    const char *compute_dtype;         /* cfg "dtype" (saemon always computes in fp32) */
    const char *hook_name;
    const char *model_name;
    uint64_t cfg_bytes;
    uint64_t weights_bytes;
    char sha256[65];         /* hex SHA-256 of the weights file (or of the packed weights for in-memory dicts) */
    /* The source release's naming, from the folder layout (docs/formats.md). */
    int layer;               /* model layer, -1 when unknown */
    const char *width_tag;   /* width as the release names it ("16k", "32x"), "" when unknown */
    const char *l0_tag;      /* L0 tag ("medium", "average_l0_82"), "" when unknown */
    /* SAELens sparsity.safetensors: log10 of each feature's firing fraction
     * during training (+1e-10), [d_sae]; NULL when the folder has none. */
    const float *log_feature_sparsity;
    size_t n_dead_features;  /* features with log_feature_sparsity <= SAEMON_DEAD_LOG_SPARSITY */
} saemon_dict_info;

/* A feature that never fired in training has log10(0 + 1e-10) = -10. */
#define SAEMON_DEAD_LOG_SPARSITY (-9.999f)

typedef struct saemon_dict saemon_dict;

/* Load an SAE directory: SAELens (cfg.json + sae_weights.safetensors),
 * sparsify, OpenAI, or Gemma Scope (params.npz; the .npz file itself may also
 * be given). Validates the file completely before use; on failure returns a
 * status and fills `err`. */
SAEMON_API saemon_status saemon_dict_open(const char *dir, saemon_dict **out, saemon_error *err);

/* Plan before load: which parts of the file a dictionary reads
 * (docs/formats.md "What each plan holds"). The zero value loads everything,
 * as saemon_dict_open does. */
typedef struct saemon_dict_load_options {
    /* true: read the encoder rows of `latents` only (indices < d_sae, any
     * order, duplicates allowed); every other latent is absent until
     * saemon_dict_add_latents. Ignored (every latent is read) for TopK, whose
     * top k needs every pre-activation, and for Gemma Scope .npz files. */
    bool subset;
    const uint32_t *latents;
    size_t n_latents;
    /* false: W_dec is not read (an encoder then refuses `reconstruction`).
     * TopK dictionaries with rescale_acts_by_decoder_norm read it anyway. */
    bool no_decoder;
    /* true: info.sha256 stays "" until saemon_dict_compute_sha256 (hashing a
     * multi-GiB file costs seconds); a reload still refuses a changed file by
     * its identity (device, inode, size, mtime, header). */
    bool defer_sha256;
} saemon_dict_load_options;

/* What a load read and holds. */
typedef struct saemon_dict_load_stats {
    uint64_t bytes_read;      /* weight bytes read from the file (headers not counted) */
    double seconds;           /* wall time of the load */
    size_t latents_loaded;    /* encoder rows held (d_sae when every latent) */
    bool decoder_loaded;      /* W_dec held */
    uint64_t resident_bytes;  /* bytes of weights, biases and vectors held in memory */
    uint64_t mapped_bytes;    /* bytes used in place from a shared mapping (packs); 0 otherwise */
} saemon_dict_load_stats;

SAEMON_API saemon_status saemon_dict_open_with(const char *dir, const saemon_dict_load_options *opts,
                                               saemon_dict **out, saemon_error *err);
SAEMON_API void saemon_dict_get_load_stats(const saemon_dict *dict, saemon_dict_load_stats *out);

/* True when the encoder row of `latent` is held (always for a whole load). */
SAEMON_API bool saemon_dict_has_latent(const saemon_dict *dict, size_t latent);

/* Read the encoder rows of more latents from the file (a reload that watches
 * new latents; call it off the encoding thread, before
 * saemon_encoder_set_latents). Refused, keeping the dictionary as it was,
 * when the file is not the one loaded at start (its device, inode, size,
 * mtime or header differ). Latents already held are skipped. */
SAEMON_API saemon_status saemon_dict_add_latents(saemon_dict *dict, const uint32_t *latents, size_t n,
                                                 saemon_error *err);

/* Fill info.sha256 (the weights file's SHA-256) when the load deferred it. */
SAEMON_API saemon_status saemon_dict_compute_sha256(saemon_dict *dict, saemon_error *err);

/* saemon's native pack file (docs/formats.md "Pack files"): a versioned,
 * checksummed header and 64-byte-aligned fp32 sections, opened by
 * saemon_dict_open / saemon_dict_open_with as a read-only shared mapping
 * (no copy of the rows). The zero value packs every latent without W_dec. */
typedef struct saemon_pack_options {
    bool subset;              /* keep only `latents` (their original indices are recorded) */
    const uint32_t *latents;
    size_t n_latents;
    bool decoder;             /* store W_dec (whole packs; the dictionary must hold it) */
    /* Kernel variants (names, as `saemon inspect --kernels` lists them) whose
     * packed form of every latent is stored too (whole packs), so an encoder
     * with that variant uses it in place from the mapping instead of packing
     * at load. Each must run on this CPU. */
    const char *const *kernels;
    size_t n_kernels;
    /* [d_sae] feature labels (NULL entries: none), or NULL: stored as the
     * labels section (saemon_dict_get_feature_label). */
    const char *const *labels;
} saemon_pack_options;

/* Write `dict` (every latent, or opts->latents, each of which it must hold)
 * to `path`: written beside it, then renamed over it. Hashes the source's
 * weights first when the load deferred it (the pack records that identity). */
SAEMON_API saemon_status saemon_dict_pack(saemon_dict *dict, const saemon_pack_options *opts, const char *path,
                                          saemon_error *err);

/* Check a pack's header and the SHA-256 of its data (every byte after the
 * header): what `saemon inspect --verify` runs. */
SAEMON_API saemon_status saemon_pack_verify(const char *path, saemon_error *err);

/* True when `path` is a regular file starting with the pack magic. */
SAEMON_API bool saemon_is_pack(const char *path);

/* Print a pack's header fields, sections and latents (saemon inspect); the
 * header is validated, the data is not read. */
SAEMON_API saemon_status saemon_pack_print(const char *path, FILE *f, saemon_error *err);

/* Build a dictionary from float32 arrays already in memory (copied). W_enc is
 * [d_in][d_sae] (SAELens layout), W_dec [d_sae][d_in]; threshold only for
 * jumprelu, may be NULL otherwise. Used by the demo and by C users who train
 * their own dictionaries. */
typedef struct saemon_dict_arrays {
    const char *name;
    saemon_arch arch;
    size_t d_in, d_sae, k;
    bool apply_b_dec_to_input;
    saemon_norm norm;
    const float *W_enc, *W_dec, *b_enc, *b_dec, *threshold;
    const float *b_gate, *r_mag, *b_mag; /* gated only */
} saemon_dict_arrays;

SAEMON_API saemon_status saemon_dict_from_arrays(const saemon_dict_arrays *arrays, saemon_dict **out,
                                      saemon_error *err);

SAEMON_API const saemon_dict_info *saemon_dict_get_info(const saemon_dict *dict);

/* Training firing frequency of `feature` from sparsity.safetensors: stores
 * log10(fraction + 1e-10) in *log10_density and returns true; false when the
 * dictionary has no sparsity file or the index is out of range. */
SAEMON_API bool saemon_dict_get_feature_log_sparsity(const saemon_dict *dict, size_t feature,
                                                 float *log10_density);
/* True when the sparsity file says the feature never fired in training. */
SAEMON_API bool saemon_dict_is_feature_dead(const saemon_dict *dict, size_t feature);
/* The label (explanation) a pack stores for `feature` (saemon pack --labels),
 * or NULL; valid while the dictionary is open. */
SAEMON_API const char *saemon_dict_get_feature_label(const saemon_dict *dict, size_t feature);
/* How many features have a label in the pack (0 for other dictionaries). */
SAEMON_API size_t saemon_dict_get_label_count(const saemon_dict *dict);
/* The pack's labels as [d_sae] pointers (NULL entries: none), or NULL when it
 * has none (saemon_rules_use_labels). */
SAEMON_API const char *const *saemon_dict_get_feature_labels(const saemon_dict *dict);
SAEMON_API void saemon_dict_close(saemon_dict *dict);

SAEMON_API const char *saemon_arch_name(saemon_arch arch);
SAEMON_API const char *saemon_norm_name(saemon_norm norm);
SAEMON_API const char *saemon_dtype_name(saemon_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
