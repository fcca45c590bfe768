/* Gemma Scope 2, Llama Scope (+ R1 distill) and dictionary_learning folders,
 * read the way SAELens's pretrained loaders build them
 * (sae_lens/loading/pretrained_sae_loaders.py: get_gemma_3_config_from_hf +
 * gemma_3_sae_huggingface_loader, get_llama_scope_config_from_hf +
 * llama_scope_sae_huggingface_loader, the llama_scope_r1_distill pair,
 * get_dictionary_learning_config_1_from_hf +
 * dictionary_learning_sae_huggingface_loader_1). docs/formats.md has the table. */
#include "runtime/dict_releases.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "runtime/sae_config.h"

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* Read dir/name as a JSON object; *label receives the path (caller frees). */
static saemon_status read_config(const char *dir, const char *name, cJSON **root, char **label,
                                 dict_spec *s, saemon_error *err)
{
    *root = NULL;
    *label = path_join(dir, name);
    if (!*label)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    size_t bytes = 0;
    saemon_status st = cfg_read_object(*label, root, &bytes, err);
    s->cfg_bytes = bytes;
    return st;
}

static const cJSON *item(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static saemon_status need_number(const cJSON *obj, const char *label, const char *key, double *out,
                                 saemon_error *err)
{
    const cJSON *v = item(obj, key);
    if (!v)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: missing '%s'", label, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: '%s' must be a finite number", label,
                                key);
    *out = v->valuedouble;
    return SAEMON_OK;
}

static saemon_status need_string(const cJSON *obj, const char *label, const char *key,
                                 const char **out, saemon_error *err)
{
    const cJSON *v = item(obj, key);
    if (!v)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: missing '%s'", label, key);
    if (!cJSON_IsString(v))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: '%s' must be a string", label, key);
    *out = v->valuestring;
    return SAEMON_OK;
}

/* A transcoder reads one hook and writes another: not an SAE of one hook. */
static saemon_status refuse_transcoder(const char *label, const char *in, const char *out,
                                       saemon_error *err)
{
    return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                            "%s: this is a transcoder (reads '%.80s', writes '%.80s'), a "
                            "different model rather than an SAE of one hook; saemon loads SAEs "
                            "only",
                            label, in, out);
}

/* ---- Gemma Scope 2 ---------------------------------------------------- */

static const tensor_rule gemmascope2_rules[] = {
    {SLOT_W_ENC, "w_enc", LAYOUT_IN_SAE, false},
    {SLOT_W_DEC, "w_dec", LAYOUT_SAE_IN, false},
    {SLOT_B_ENC, "b_enc", LAYOUT_VEC, false},
    {SLOT_B_DEC, "b_dec", LAYOUT_VEC, false},
    {SLOT_THRESHOLD, "threshold", LAYOUT_VEC, false},
};

/* "16k" = 16384, "1m" = 1048576, "300" = 300; 0 when not a width. */
static unsigned long long parse_width(const char *s, size_t len)
{
    if (!len || len > 12 || s[0] < '0' || s[0] > '9')
        return 0;
    unsigned long long v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    int shift = 0;
    if (i < len && (s[i] == 'k' || s[i] == 'm'))
        shift = s[i++] == 'k' ? 10 : 20;
    return i == len ? v << shift : 0;
}

/* layer_{L}_width_{W}_l0_{tag}: layer, width tag and L0 tag of the folder. */
static saemon_status gemmascope2_naming(const char *folder, const char *kind, dict_spec *s,
                                        saemon_error *err)
{
    s->layer = dict_number_after(folder, "layer_");
    const char *w = strstr(folder, "width_"), *l0 = strstr(folder, "_l0_");
    saemon_status st = SAEMON_OK;
    if (w) {
        w += strlen("width_");
        size_t wl = strcspn(w, "_");
        char tag[16];
        snprintf(tag, sizeof tag, "%.*s", (int)(wl < 15 ? wl : 15), w);
        unsigned long long width = parse_width(w, wl);
        if (width && width != s->d_sae)
            return saemon_error_set(err, SAEMON_ERR_SHAPE,
                                    "%s: the folder says width %s (%llu) but w_enc has d_sae %zu",
                                    folder, tag, width, s->d_sae);
        st = dict_set_str(&s->id.width_tag, tag, err);
    }
    if (!st && l0)
        st = dict_set_str(&s->id.l0_tag, l0 + strlen("_l0_"), err);
    /* SAELens: the hook from the folder path (resid_post / attn_out / mlp_out). */
    char hook[96] = "";
    if (s->layer >= 0 && strstr(kind, "resid_post"))
        snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", s->layer);
    else if (s->layer >= 0 && strstr(kind, "attn_out"))
        snprintf(hook, sizeof hook, "blocks.%d.hook_attn_out", s->layer);
    else if (s->layer >= 0 && strstr(kind, "mlp_out"))
        snprintf(hook, sizeof hook, "blocks.%d.hook_mlp_out", s->layer);
    return st ? st : dict_set_str(&s->id.hook_name, hook, err);
}

/* SAELens: "google/" prefix unless present, "-v3" spelled "-3". */
static saemon_status gemma3_model_name(const char *raw, dict_spec *s, saemon_error *err)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s%.200s", strstr(raw, "google") ? "" : "google/", raw);
    char *v3;
    while ((v3 = strstr(buf, "-v3")))
        memmove(v3 + 1, v3 + 2, strlen(v3 + 2) + 1);
    return dict_set_str(&s->id.model_name, buf, err);
}

saemon_status dict_configure_gemmascope2(const char *dir, const st_file *f, dict_spec *s,
                                         saemon_error *err)
{
    char *folder = dict_dir_tail(dir, 1), *tail = dict_dir_tail(dir, 2), *label = NULL;
    cJSON *root = NULL;
    saemon_status st = folder && tail ? SAEMON_OK
                                      : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    /* tail = "<kind>/<folder>", SAELens's folder_name. */
    const char *kind = tail ? tail : "";
    if (!st && (strstr(kind, "transcoder") || strstr(kind, "clt") || strstr(kind, "crosscoder") ||
                strstr(folder, "_affine") || st_find(f, "affine_skip_connection")))
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: a Gemma Scope 2 transcoder/crosscoder folder (%s) is a "
                              "different model, not an SAE of one hook; saemon loads the "
                              "resid_post, attn_out and mlp_out SAEs only",
                              dir, kind);
    if (!st)
        st = read_config(dir, "config.json", &root, &label, s, err);
    const char *arch = NULL, *model = NULL;
    if (!st && !(st = need_string(root, label, "architecture", &arch, err)) &&
        strcmp(arch, "jump_relu") != 0)
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: architecture '%.64s' is not jump_relu (the only Gemma Scope 2 "
                              "SAE architecture SAELens loads)",
                              label, arch);
    if (!st)
        st = need_string(root, label, "model_name", &model, err);
    if (!st) {
        const cJSON *in = item(root, "hf_hook_point_in"), *out = item(root, "hf_hook_point_out");
        if (cJSON_IsString(in) && cJSON_IsString(out) && strcmp(in->valuestring, out->valuestring))
            st = refuse_transcoder(label, in->valuestring, out->valuestring, err);
    }
    const st_tensor *w = st ? NULL : st_find(f, "w_enc");
    if (!st && (!w || w->ndim != 2 || !w->shape[0] || !w->shape[1])) {
        char got[96] = "absent";
        if (w)
            st_shape_str(w, got, sizeof got);
        st = saemon_error_set(err, w ? SAEMON_ERR_SHAPE : SAEMON_ERR_FORMAT,
                              "%s: tensor 'w_enc' is %s; a Gemma Scope 2 SAE needs w_enc "
                              "[d_in, d_sae]",
                              f->label, got);
    }
    if (!st) {
        DICT_SPEC_RULES(s, "gemmascope2", gemmascope2_rules);
        s->dims_from = "w_enc's";
        s->d_in = (size_t)w->shape[0];
        s->d_sae = (size_t)w->shape[1];
        s->arch = SAEMON_ARCH_JUMPRELU;
        s->apply_b_dec_to_input = false;
        s->norm = SAEMON_NORM_NONE;
        if (!(st = gemmascope2_naming(folder, kind, s, err)) &&
            !(st = gemma3_model_name(model, s, err)) &&
            !(st = dict_set_str(&s->id.normalize_activations, "none", err)))
            st = dict_set_str(&s->id.compute_dtype, "float32", err);
    }
    cJSON_Delete(root);
    free(label);
    free(folder);
    free(tail);
    return st;
}

/* ---- Llama Scope ------------------------------------------------------ */

static const tensor_rule llamascope_rules[] = {
    {SLOT_W_ENC, "encoder.weight", LAYOUT_SAE_IN, false},
    {SLOT_W_DEC, "decoder.weight", LAYOUT_IN_SAE, false},
    {SLOT_B_ENC, "encoder.bias", LAYOUT_VEC, false},
    {SLOT_B_DEC, "decoder.bias", LAYOUT_VEC, false},
    /* R1 distill only: threshold = exp(log_jumprelu_threshold). */
    {SLOT_THRESHOLD, "log_jumprelu_threshold", LAYOUT_VEC, true},
};

/* s = sqrt(d_in) / dataset_average_activation_norm.in, SAELens's
 * norm_scaling_factor, folded into the weights. */
static saemon_status llamascope_scale(const cJSON *root, const char *label, size_t d_in, double *s,
                                      saemon_error *err)
{
    const cJSON *norms = item(root, "dataset_average_activation_norm");
    if (!norms)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: missing 'dataset_average_activation_norm'; the SAE was trained "
                                "on normalised inputs and without the dataset norm the features "
                                "would be wrong, so saemon refuses to guess",
                                label);
    if (!cJSON_IsObject(norms))
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: 'dataset_average_activation_norm' must be an object", label);
    double in = 0;
    saemon_status st = need_number(norms, label, "in", &in, err);
    if (st)
        return st;
    if (!(in > 0))
        return saemon_error_set(err, SAEMON_ERR_VALUE,
                                "%s: dataset_average_activation_norm.in must be > 0", label);
    *s = sqrt((double)d_in) / in;
    return SAEMON_OK;
}

/* Fields both Llama Scope layouts share: hook, layer, width tag, transcoder check. */
static saemon_status llamascope_common(const cJSON *root, const char *label, const char *dir,
                                       const char *format, dict_spec *s, saemon_error *err)
{
    const char *hook = NULL;
    saemon_status st = need_string(root, label, "hook_point_in", &hook, err);
    if (st)
        return st;
    const cJSON *out = item(root, "hook_point_out");
    if (cJSON_IsString(out) && strcmp(out->valuestring, hook) != 0)
        return refuse_transcoder(label, hook, out->valuestring, err);
    s->layer = dict_number_after(hook, "blocks.");
    DICT_SPEC_RULES(s, format, llamascope_rules);
    s->arch = SAEMON_ARCH_JUMPRELU;
    s->apply_b_dec_to_input = false;
    s->norm = SAEMON_NORM_NONE; /* expected_average_only_in, folded */
    char tag[32] = "";
    char *folder = dict_dir_tail(dir, 1);
    const char *dash = folder ? strrchr(folder, '-') : NULL;
    size_t tl = dash ? strlen(dash + 1) : 0;
    if (tl > 1 && tl < sizeof tag && dash[tl] == 'x')
        snprintf(tag, sizeof tag, "%s", dash + 1);
    else if (s->d_sae % s->d_in == 0)
        snprintf(tag, sizeof tag, "%zux", s->d_sae / s->d_in);
    free(folder);
    if ((st = dict_set_str(&s->id.width_tag, tag, err)) ||
        (st = dict_set_str(&s->id.hook_name, hook, err)) ||
        (st = dict_set_str(&s->id.model_name, "meta-llama/Llama-3.1-8B", err)) ||
        (st = dict_set_str(&s->id.normalize_activations, "expected_average_only_in", err)))
        return st;
    return dict_set_str(&s->id.compute_dtype, "float32", err);
}

saemon_status dict_configure_llamascope(const char *dir, const st_file *f, dict_spec *s,
                                        saemon_error *err)
{
    (void)f;
    cJSON *root = NULL;
    char *label = NULL;
    double jrt = 0, scale = 0;
    saemon_status st = read_config(dir, "hyperparams.json", &root, &label, s, err);
    if (!st && !(st = cfg_need_size(item(root, "d_model"), label, "d_model", &s->d_in, err)) &&
        !(st = cfg_need_size(item(root, "d_sae"), label, "d_sae", &s->d_sae, err)) &&
        !(st = need_number(root, label, "jump_relu_threshold", &jrt, err)) &&
        !(st = llamascope_scale(root, label, s->d_in, &scale, err)))
        st = llamascope_common(root, label, dir, "llamascope", s, err);
    if (!st) {
        s->dims_from = "hyperparams.json";
        s->fold_scale = scale;
        /* SAELens: one threshold for every feature, jump_relu_threshold *
         * norm_scaling_factor "to match fold_activation_norm_scaling_factor". */
        s->threshold_is_scalar = true;
        s->threshold_value = jrt * scale;
    }
    cJSON_Delete(root);
    free(label);
    return st;
}

saemon_status dict_configure_llamascope_r1(const char *dir, const st_file *f, dict_spec *s,
                                           saemon_error *err)
{
    (void)f;
    cJSON *root = NULL;
    char *label = NULL;
    size_t expansion = 0;
    double scale = 0;
    saemon_status st = read_config(dir, "config.json", &root, &label, s, err);
    if (!st && item(root, "trainer"))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: a dictionary_learning config (it has a 'trainer' block) beside "
                              "sae_weights.safetensors; dictionary_learning weights are "
                              "ae.safetensors",
                              label);
    if (!st && !(st = cfg_need_size(item(root, "d_model"), label, "d_model", &s->d_in, err)) &&
        !(st = cfg_need_size(item(root, "expansion_factor"), label, "expansion_factor",
                             &expansion, err)) &&
        __builtin_mul_overflow(s->d_in, expansion, &s->d_sae))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: d_model x expansion_factor overflows",
                              label);
    if (!st && !(st = llamascope_scale(root, label, s->d_in, &scale, err)))
        st = llamascope_common(root, label, dir, "llamascope_r1", s, err);
    if (!st) {
        s->dims_from = "config.json";
        s->fold_scale = scale;
    }
    cJSON_Delete(root);
    free(label);
    return st;
}

/* ---- dictionary_learning ---------------------------------------------- */

static const tensor_rule dictionary_learning_rules[] = {
    {SLOT_W_ENC, "W_enc", LAYOUT_IN_SAE, false},
    {SLOT_W_ENC, "encoder.weight", LAYOUT_SAE_IN, false},
    {SLOT_W_DEC, "W_dec", LAYOUT_SAE_IN, false},
    {SLOT_W_DEC, "decoder.weight", LAYOUT_IN_SAE, false},
    {SLOT_B_DEC, "b_dec", LAYOUT_VEC, false},
    {SLOT_B_DEC, "bias", LAYOUT_VEC, false},
    {SLOT_B_DEC, "decoder_bias", LAYOUT_VEC, false},
    {SLOT_B_ENC, "encoder.bias", LAYOUT_VEC, false},
    {SLOT_B_ENC, "b_enc", LAYOUT_VEC, false},
    {SLOT_THRESHOLD, "threshold", LAYOUT_VEC_OR_SCALAR, false},
    {SLOT_B_GATE, "gate_bias", LAYOUT_VEC, false},
    {SLOT_R_MAG, "r_mag", LAYOUT_VEC, false},
    {SLOT_B_MAG, "mag_bias", LAYOUT_VEC, false},
};

static saemon_status dictionary_learning_arch(const cJSON *trainer, const char *label,
                                              dict_spec *s, saemon_error *err)
{
    const char *cls = NULL;
    saemon_status st = need_string(trainer, label, "dict_class", &cls, err);
    if (st)
        return st;
    if (!strcmp(cls, "AutoEncoder"))
        s->arch = SAEMON_ARCH_STANDARD;
    else if (!strcmp(cls, "GatedAutoEncoder"))
        s->arch = SAEMON_ARCH_GATED;
    else if (!strcmp(cls, "MatryoshkaBatchTopKSAE"))
        s->arch = SAEMON_ARCH_JUMPRELU;
    else if (!strcmp(cls, "AutoEncoderTopK")) {
        s->arch = SAEMON_ARCH_TOPK;
        if ((st = cfg_need_size(item(trainer, "k"), label, "trainer.k", &s->k, err)))
            return st;
        if (s->k > s->d_sae)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: trainer.k must be an integer in 1..dict_size (%zu)",
                                    label, s->d_sae);
    } else
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: dict_class '%.64s' is not one SAELens loads (AutoEncoder, "
                                "GatedAutoEncoder, AutoEncoderTopK, MatryoshkaBatchTopKSAE)",
                                label, cls);
    return SAEMON_OK;
}

saemon_status dict_configure_dictionary_learning(const char *dir, const st_file *f,
                                                 dict_spec *s, saemon_error *err)
{
    (void)f;
    cJSON *root = NULL;
    char *label = NULL;
    const cJSON *trainer = NULL;
    const char *lm = NULL;
    size_t layer = 0;
    saemon_status st = read_config(dir, "config.json", &root, &label, s, err);
    if (!st && !cJSON_IsObject(trainer = item(root, "trainer")))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: no 'trainer' object (a dictionary_learning config.json has "
                              "one)",
                              label);
    if (!st &&
        !(st = cfg_need_size(item(trainer, "activation_dim"), label, "trainer.activation_dim",
                             &s->d_in, err)) &&
        !(st = cfg_need_size(item(trainer, "dict_size"), label, "trainer.dict_size", &s->d_sae,
                             err)) &&
        !(st = dictionary_learning_arch(trainer, label, s, err)) &&
        !(st = need_string(trainer, label, "lm_name", &lm, err))) {
        const cJSON *lv = item(trainer, "layer");
        if (!cJSON_IsNumber(lv) || lv->valuedouble < 0 || lv->valuedouble > INT_MAX ||
            lv->valuedouble != (double)(int)lv->valuedouble)
            st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                                  "%s: 'trainer.layer' must be a non-negative integer", label);
        else
            layer = (size_t)lv->valuedouble;
    }
    if (!st) {
        DICT_SPEC_RULES(s, "dictionary_learning", dictionary_learning_rules);
        s->dims_from = "config.json";
        s->apply_b_dec_to_input = true;
        s->norm = SAEMON_NORM_NONE;
        s->layer = (int)layer;
        char hook[64], width[32];
        snprintf(hook, sizeof hook, "blocks.%zu.hook_resid_post", layer);
        snprintf(width, sizeof width, "%zu", s->d_sae);
        const char *slash = strrchr(lm, '/');
        if (!(st = dict_set_str(&s->id.hook_name, hook, err)) &&
            !(st = dict_set_str(&s->id.model_name, slash ? slash + 1 : lm, err)) &&
            !(st = dict_set_str(&s->id.width_tag, width, err)) &&
            !(st = dict_set_str(&s->id.normalize_activations, "none", err)))
            st = dict_set_str(&s->id.compute_dtype, "float32", err);
    }
    cJSON_Delete(root);
    free(label);
    return st;
}
