/* The inside of a saemon_dict: every tensor upcast to fp32 in one canonical
 * layout, whatever the file stored. Only runtime/ sees this. */
#ifndef SAEMON_DICT_INTERNAL_H
#define SAEMON_DICT_INTERNAL_H

#include "saemon/dict.h"

/* Where a dictionary came from: the strings saemon_dict_info points at; owned. */
typedef struct dict_identity {
    char *name, *hook_name, *model_name, *normalize_activations, *compute_dtype;
    char *width_tag, *l0_tag;
} dict_identity;

void dict_identity_free(dict_identity *id);

/* Where more encoder rows come from (saemon_dict_add_latents) and what
 * identifies that file; weights NULL when the dictionary cannot read more. */
typedef struct dict_source {
    char *weights; /* the safetensors file */
    char *tensor;  /* the encoder tensor's name */
    bool transpose; /* stored [d_in][d_sae] (SAELens W_enc) */
    uint64_t dev, ino, size, mtime_ns;
    char header_sha[65]; /* SHA-256 of the safetensors header */
} dict_source;

#define DICT_NO_ROW UINT32_MAX
#define DICT_MAX_PACKED 16

/* A kernel variant's packed form stored in a pack (runtime/pack_read.c). */
typedef struct dict_packed {
    const char *kernel; /* variant name, in the mapping */
    uint32_t layout;    /* its packed_layout */
    size_t index_base, d_sae, bytes;
    const void *data;   /* 64-byte aligned, in the mapping */
} dict_packed;

struct saemon_dict {
    saemon_dict_info info;
    /* Owned copies of the strings info points at. */
    char *path, *format;
    dict_identity id;

    /* fp32, 64-byte aligned, owned. Any expected_average_only_in factor is
     * already folded in. */
    float *W_enc_rows; /* [n_rows][d_in]: row of latent j = column j of SAELens' W_enc */
    size_t n_rows;     /* d_sae for a whole load */
    uint32_t *row_slot;   /* [d_sae]: row of latent j, DICT_NO_ROW when not held; NULL: row j */
    uint32_t *row_latent; /* [n_rows]: latent of each row; NULL with row_slot */
    float *W_dec;      /* [d_sae][d_in], NULL when not read (saemon_dict_load_options.no_decoder) */
    float *b_dec;      /* [d_in] */
    float *b_enc;      /* [d_sae]; NULL for gated */
    float *threshold;  /* [d_sae]; jumprelu only */
    float *b_gate, *r_mag, *b_mag; /* [d_sae]; gated only */
    float *log_sparsity; /* [d_sae] from sparsity.safetensors, or NULL */
    dict_source src;
    saemon_dict_load_stats stats;
    /* A pack (runtime/pack_read.c): the read-only shared mapping the arrays
     * above point into (then only row_slot is owned); NULL otherwise. */
    void *map;
    size_t map_len;
    /* A whole load's W_enc_rows allocation is rows_capacity bytes: room
     * behind the rows for the rest of the chosen kernel's packed form, so one
     * encoder's full plan packs in place and the rows are held once
     * (kernel.h packed_rows_align). The room is virtual until used;
     * rows_tail_taken says an encoder's plan holds it (runtime/encoder_plan.c). */
    size_t rows_capacity;
    int rows_tail_taken;
    /* From a pack, pointing into the mapping (NULL / 0 otherwise): */
    const double *b_dec_dot;            /* [d_sae]: dict_b_dec_dot precomputed */
    dict_packed packed[DICT_MAX_PACKED]; /* kernels' packed forms */
    size_t n_packed;
    const uint32_t *labels;             /* [n_labels][3]: index, offset, length (pack_label_entry) */
    const char *labels_base;            /* the section the offsets count from */
    size_t n_labels;
    const char **label_ptrs;            /* [d_sae] into labels_base, NULL entries: none; NULL without labels */
};

/* b_dec . W_j in double, summed in input order (what folding b_dec into
 * latent j's biases subtracts; the pack's precomputed value when it has one,
 * the same sum). The row must be held. */
static inline double dict_b_dec_dot(const saemon_dict *d, const float *w, size_t j)
{
    if (d->b_dec_dot)
        return d->b_dec_dot[j];
    double bw = 0.0;
    for (size_t i = 0; i < d->info.d_in; i++)
        bw += (double)d->b_dec[i] * w[i];
    return bw;
}

/* The packed form a pack stores for kernel `name` (layout version `layout`)
 * of latents [index_base, index_base + d_sae), `bytes` long, or NULL. */
const void *dict_find_packed(const saemon_dict *d, const char *name, uint32_t layout, size_t index_base,
                             size_t d_sae, size_t bytes);

/* The encoder row of latent j, or NULL when it is not held. */
static inline const float *dict_row(const saemon_dict *d, size_t j)
{
    if (!d->row_slot)
        return d->W_enc_rows + j * d->info.d_in;
    uint32_t r = d->row_slot[j];
    return r == DICT_NO_ROW ? NULL : d->W_enc_rows + (size_t)r * d->info.d_in;
}

/* A zeroed dict holding `n_rows` encoder rows of the sorted, distinct
 * `latents` (NULL: every latent, n_rows = d_sae) and W_dec when `decoder`. */
saemon_dict *saemon_dict_alloc_rows(size_t d_in, size_t d_sae, saemon_arch arch, const uint32_t *latents,
                                    size_t n_rows, bool decoder, saemon_error *err);

/* Keep only the encoder rows of the sorted, distinct `latents` (and drop
 * W_dec unless `decoder`): a format read whole, then planned. */
saemon_status dict_keep_rows(saemon_dict *d, const uint32_t *latents, size_t n, bool decoder, saemon_error *err);

/* Sorted, distinct copy of latents (checked < d_sae) into *out (malloc'd), count in *n_out. */
saemon_status dict_sorted_latents(const uint32_t *latents, size_t n, size_t d_sae, uint32_t **out, size_t *n_out,
                                  saemon_error *err);

/* Bytes held by the dictionary's arrays (for stats.resident_bytes). */
uint64_t dict_resident_bytes(const saemon_dict *d);

/* Allocate a zeroed dict with fp32 arrays sized for (d_in, d_sae, arch). */
saemon_dict *saemon_dict_alloc(size_t d_in, size_t d_sae, saemon_arch arch, saemon_error *err);

/* After the arrays are filled: reject NaN/Inf anywhere (naming the tensor),
 * and fill info's derived fields. */
saemon_status saemon_dict_finish(saemon_dict *dict, saemon_error *err);

/* Read the optional SAELens sparsity file `name` in dir (tensor 'sparsity',
 * [d_sae], log10 of each feature's firing fraction) into d; absent is fine,
 * malformed is refused (runtime/dict_sparsity.c). */
saemon_status dict_load_sparsity(saemon_dict *d, const char *dir, const char *name,
                                 saemon_error *err);

/* 64-byte aligned allocation helpers shared by runtime/ (free with free()). */
void *saemon_aligned_alloc(size_t bytes);

#endif
