/* One load path for every safetensors-based format: a format's reader fills a
 * dict_spec (dimensions, architecture, normalisation, identity) and a table of
 * tensor rules (which tensor name fills which canonical array, in which
 * layout); dict_spec_load() then validates, upcasts, transposes and folds the
 * same way for all of them (docs/formats.md). */
#ifndef SAEMON_DICT_SPEC_H
#define SAEMON_DICT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/dict_internal.h"
#include "runtime/safetensors.h"
#include "saemon/dict.h"

/* The canonical arrays of a saemon_dict (runtime/dict_internal.h). */
typedef enum dict_slot {
    SLOT_W_ENC,
    SLOT_W_DEC,
    SLOT_B_DEC,
    SLOT_B_ENC,
    SLOT_THRESHOLD,
    SLOT_B_GATE,
    SLOT_R_MAG,
    SLOT_B_MAG,
    N_DICT_SLOTS,
} dict_slot;

typedef enum tensor_layout {
    LAYOUT_IN_SAE,        /* [d_in, d_sae] (SAELens W_enc): transposed on load */
    LAYOUT_SAE_IN,        /* [d_sae, d_in] (nn.Linear encoder.weight, SAELens W_dec) */
    LAYOUT_EITHER,        /* [d_sae, d_in] or [d_in, d_sae], told apart by shape (sparsify W_dec) */
    LAYOUT_VEC,           /* [d_in] for b_dec, [d_sae] for the others */
    LAYOUT_VEC_OR_SCALAR, /* [d_sae] or a rank-0 scalar broadcast to d_sae */
} tensor_layout;

/* Tensor `name` fills `slot`. `from_log`: the file stores the natural log
 * (log_threshold): the slot receives exp() of it, in float32. */
typedef struct tensor_rule {
    dict_slot slot;
    const char *name;
    tensor_layout layout;
    bool from_log;
} tensor_rule;

typedef struct dict_spec {
    const char *format; /* info.format */
    const tensor_rule *rules;
    size_t n_rules;
    saemon_arch arch;
    size_t d_in, d_sae, k;
    bool rescale_acts_by_decoder_norm, apply_b_dec_to_input, reshape_hook_z;
    saemon_norm norm;
    /* > 0: SAELens fold_activation_norm_scaling_factor(s): W_enc *= s,
     * W_dec /= s, b_dec /= s (b_enc and threshold unchanged). */
    double fold_scale;
    /* Llama Scope: one threshold for every feature (no threshold tensor). */
    bool threshold_is_scalar;
    double threshold_value;
    bool check_scaling_factor; /* SAELens: an old all-ones 'scaling_factor' tensor */
    const char *sparsity_file;  /* SAELens: optional sparsity.safetensors beside */
    const char *dims_from;      /* where d_in/d_sae came from, for messages ("cfg.json") */
    uint64_t cfg_bytes;
    dict_identity id; /* owned (dict_spec_free); NULL strings when unknown */
    int layer;        /* -1 when unknown */
} dict_spec;

void dict_spec_free(dict_spec *spec);

/* Replace *dst with a copy of src (NULL or "" clears it). */
saemon_status dict_set_str(char **dst, const char *src, saemon_error *err);

/* The number after `prefix` in s ("blocks.12.hook..." -> 12), or -1. */
int dict_number_after(const char *s, const char *prefix);

/* "[a, b, c]" into buf (truncated to size). */
void dict_dims_str(const size_t *dims, size_t nd, char *buf, size_t size);

/* Fill a dict_spec the way a format's reader starts: format name and its tensor rules. */
#define DICT_SPEC_RULES(spec, fmt, table)                                                       \
    ((spec)->format = (fmt), (spec)->rules = (table),                                          \
     (spec)->n_rules = sizeof(table) / sizeof((table)[0]))

/* Load `f` (already validated) into a new dictionary following `spec`,
 * reading only what `opts` plans (saemon_dict_load_options).
 * `dir` is what the user passed (info.path); the name defaults to its last
 * two components. */
saemon_status dict_spec_load(const char *dir, st_file *f, dict_spec *spec,
                             const saemon_dict_load_options *opts, saemon_dict **out, saemon_error *err);

/* A tensor that must exist with a float dtype and exactly `dims`; `what`
 * says where the expected shape comes from. */
saemon_status dict_need_tensor(const st_file *f, const char *name, size_t ndim,
                               const size_t *dims, const char *what, const st_tensor **out,
                               saemon_error *err);

/* The last `count` components of a directory's canonical path (caller frees). */
char *dict_dir_tail(const char *dir, int count);

#endif
