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

struct saemon_dict {
    saemon_dict_info info;
    /* Owned copies of the strings info points at. */
    char *path, *format;
    dict_identity id;

    /* fp32, 64-byte aligned, owned. Any expected_average_only_in factor is
     * already folded in. */
    float *W_enc_rows; /* [d_sae][d_in]: row j = column j of SAELens' W_enc */
    float *W_dec;      /* [d_sae][d_in] */
    float *b_dec;      /* [d_in] */
    float *b_enc;      /* [d_sae]; NULL for gated */
    float *threshold;  /* [d_sae]; jumprelu only */
    float *b_gate, *r_mag, *b_mag; /* [d_sae]; gated only */
    float *log_sparsity; /* [d_sae] from sparsity.safetensors, or NULL */
};

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
