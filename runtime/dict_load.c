/* saemon_dict_open: find which on-disk format a directory holds, then load
 * it. Every safetensors format goes through one path (runtime/dict_spec.c)
 * driven by its reader here (SAELens, sparsify, OpenAI) or in
 * runtime/dict_releases.c (Gemma Scope 2, Llama Scope, dictionary_learning);
 * Gemma Scope params.npz is runtime/dict_gemmascope.c. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/error.h"
#include "runtime/dict_internal.h"
#include "runtime/dict_probe.h"
#include "runtime/dict_releases.h"
#include "runtime/dict_spec.h"
#include "runtime/gemmascope.h"
#include "runtime/pack.h"
#include "runtime/sae_config.h"

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static bool dir_has(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct stat sb;
    bool r = p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return r;
}

/* ---- SAELens ---------------------------------------------------------- */

static const tensor_rule saelens_rules[] = {
    {SLOT_W_ENC, "W_enc", LAYOUT_IN_SAE, false},
    {SLOT_W_DEC, "W_dec", LAYOUT_SAE_IN, false},
    {SLOT_B_DEC, "b_dec", LAYOUT_VEC, false},
    {SLOT_B_ENC, "b_enc", LAYOUT_VEC, false},
    {SLOT_THRESHOLD, "threshold", LAYOUT_VEC, false},
    /* JumpReLU training checkpoints: threshold = exp(log_threshold), as
     * JumpReLUTrainingSAE.process_state_dict_for_loading converts it. */
    {SLOT_THRESHOLD, "log_threshold", LAYOUT_VEC, true},
    {SLOT_B_GATE, "b_gate", LAYOUT_VEC, false},
    {SLOT_R_MAG, "r_mag", LAYOUT_VEC, false},
    {SLOT_B_MAG, "b_mag", LAYOUT_VEC, false},
};

/* expected_average_only_in: the factor must come from activation_scaler.json. */
static saemon_status read_scaling_factor(const char *dir, double *s, saemon_error *err)
{
    char *path = path_join(dir, "activation_scaler.json");
    if (!path)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    saemon_status st;
    if (!dir_has(dir, "activation_scaler.json")) {
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s/cfg.json: normalize_activations is expected_average_only_in but "
                              "%s is missing; without the dataset scaling factor the features "
                              "would be wrong, so saemon refuses to guess",
                              dir, path);
        free(path);
        return st;
    }
    char *text = NULL;
    size_t len = 0;
    st = cfg_read_file(path, &text, &len, err);
    if (st) {
        free(path);
        return st;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "scaling_factor")
                                          : NULL;
    if (!root || !cJSON_IsObject(root))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: not a JSON object", path);
    else if (!v || cJSON_IsNull(v))
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: scaling_factor is null or missing; expected_average_only_in "
                              "needs it, so saemon refuses to guess",
                              path);
    else if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0)
        st = saemon_error_set(err, SAEMON_ERR_VALUE,
                              "%s: scaling_factor must be a finite number > 0", path);
    else
        *s = v->valuedouble;
    cJSON_Delete(root);
    free(text);
    free(path);
    return st;
}

static saemon_status configure_saelens(const char *dir, const st_file *f, dict_spec *s,
                                       saemon_error *err)
{
    (void)f;
    char *cfg_path = path_join(dir, "cfg.json"), *text = NULL;
    size_t len = 0;
    sae_config cfg = {0};
    saemon_status st = cfg_path ? cfg_read_file(cfg_path, &text, &len, err)
                                : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!st)
        st = sae_config_parse(text, len, cfg_path, &cfg, err);
    if (!st && cfg.needs_scaling_factor)
        st = read_scaling_factor(dir, &s->fold_scale, err);
    if (!st) {
        DICT_SPEC_RULES(s, "saelens", saelens_rules);
        s->dims_from = "cfg.json";
        s->arch = cfg.arch;
        s->d_in = cfg.d_in;
        s->d_sae = cfg.d_sae;
        s->k = cfg.k;
        s->rescale_acts_by_decoder_norm = cfg.rescale_acts_by_decoder_norm;
        s->apply_b_dec_to_input = cfg.apply_b_dec_to_input;
        s->norm = cfg.norm;
        s->reshape_hook_z = cfg.reshape_hook_z;
        s->check_scaling_factor = true;
        s->sparsity_file = "sparsity.safetensors";
        s->cfg_bytes = len;
        if ((st = dict_set_str(&s->id.name, cfg.neuronpedia_id, err)) ||
            (st = dict_set_str(&s->id.hook_name, cfg.hook_name, err)) ||
            (st = dict_set_str(&s->id.model_name, cfg.model_name, err)) ||
            (st = dict_set_str(&s->id.normalize_activations, cfg.normalize_activations, err)))
            ;
        else
            st = dict_set_str(&s->id.compute_dtype, cfg.dtype, err);
    }
    sae_config_free(&cfg);
    free(text);
    free(cfg_path);
    return st;
}

/* ---- EleutherAI sparsify ---------------------------------------------- */

static const tensor_rule sparsify_rules[] = {
    {SLOT_W_ENC, "encoder.weight", LAYOUT_SAE_IN, false},
    {SLOT_B_ENC, "encoder.bias", LAYOUT_VEC, false},
    /* sparsify writes [num_latents, d_in]; the transpose is accepted too. */
    {SLOT_W_DEC, "W_dec", LAYOUT_EITHER, false},
    {SLOT_B_DEC, "b_dec", LAYOUT_VEC, false},
};

static const char *torch_dtype_name(int dtype)
{
    switch (dtype) {
    case SAEMON_DTYPE_F16: return "float16";
    case SAEMON_DTYPE_BF16: return "bfloat16";
    case SAEMON_DTYPE_F64: return "float64";
    default: return "float32";
    }
}

static saemon_status configure_sparsify(const char *dir, const st_file *f, dict_spec *s,
                                        saemon_error *err)
{
    char *cfg_path = path_join(dir, "cfg.json"), *text = NULL;
    size_t len = 0;
    sparsify_config cfg = {0};
    saemon_status st = cfg_path ? cfg_read_file(cfg_path, &text, &len, err)
                                : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!st)
        st = sparsify_config_parse(text, len, cfg_path, &cfg, err);
    if (!st) {
        DICT_SPEC_RULES(s, "sparsify", sparsify_rules);
        s->dims_from = "cfg.json";
        s->arch = SAEMON_ARCH_TOPK;
        s->d_in = cfg.d_in;
        s->d_sae = cfg.num_latents;
        s->k = cfg.k;
        s->apply_b_dec_to_input = !cfg.transcode;
        s->norm = SAEMON_NORM_NONE;
        s->cfg_bytes = len;
        /* sparsify folders are named by hookpoint; it computes in the dtype
         * of the file's first tensor. */
        char *hook = dict_dir_tail(dir, 1);
        st = hook ? dict_set_str(&s->id.hook_name, hook, err)
                  : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        free(hook);
        if (!st && f->n_tensors)
            st = dict_set_str(&s->id.compute_dtype, torch_dtype_name(f->tensors[0].float_dtype), err);
        if (!st)
            st = dict_set_str(&s->id.normalize_activations, "none", err);
    }
    free(text);
    free(cfg_path);
    return st;
}

/* ---- OpenAI sparse_autoencoder ---------------------------------------- */

static const tensor_rule openai_rules[] = {
    {SLOT_B_DEC, "pre_bias", LAYOUT_VEC, false},
    {SLOT_W_ENC, "encoder.weight", LAYOUT_SAE_IN, false},
    {SLOT_B_ENC, "latent_bias", LAYOUT_VEC, false},
    {SLOT_W_DEC, "decoder.weight", LAYOUT_IN_SAE, false},
};

static saemon_status openai_activation(const st_file *f, dict_spec *s, saemon_error *err)
{
    const char *act = st_meta(f, "activation");
    if (!act)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: __metadata__ has no 'activation' (TopK or ReLU)", f->label);
    if (!strcmp(act, "TopK")) {
        const char *ks = st_meta(f, "k");
        char *end = NULL;
        errno = 0;
        unsigned long long kv = ks ? strtoull(ks, &end, 10) : 0;
        if (!ks || end == ks || *end || errno || ks[0] == '-' || kv < 1 || kv > s->d_sae)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: __metadata__ k must be an integer in 1..%zu", f->label,
                                    s->d_sae);
        const char *post = st_meta(f, "postact_fn");
        if (post && strcmp(post, "ReLU") != 0)
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "%s: TopK postact_fn '%.64s' is not supported (ReLU)",
                                    f->label, post);
        s->arch = SAEMON_ARCH_TOPK;
        s->k = (size_t)kv;
    } else if (!strcmp(act, "ReLU")) {
        s->arch = SAEMON_ARCH_STANDARD;
    } else {
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: activation '%.64s' is not supported (TopK or ReLU)", f->label,
                                act);
    }
    /* OpenAI's from_state_dict: normalize = (activation == "TopK"), unless
     * the metadata says otherwise. */
    const char *nz = st_meta(f, "normalize");
    bool ln = s->arch == SAEMON_ARCH_TOPK;
    if (nz && !strcmp(nz, "true"))
        ln = true;
    else if (nz && !strcmp(nz, "false"))
        ln = false;
    else if (nz)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: __metadata__ normalize must be \"true\" or \"false\"",
                                f->label);
    s->norm = ln ? SAEMON_NORM_LAYER_NORM : SAEMON_NORM_NONE;
    return SAEMON_OK;
}

static saemon_status configure_openai(const char *dir, const st_file *f, dict_spec *s,
                                      saemon_error *err)
{
    (void)dir;
    const st_tensor *pre = st_find(f, "pre_bias"), *lat = st_find(f, "latent_bias");
    if (!pre || !lat || pre->ndim != 1 || lat->ndim != 1 || !pre->shape[0] || !lat->shape[0])
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: expected 1-d tensors 'pre_bias' [n_inputs] and 'latent_bias' "
                                "[n_latents] (OpenAI sparse_autoencoder layout)",
                                f->label);
    DICT_SPEC_RULES(s, "openai", openai_rules);
    s->dims_from = "pre_bias/latent_bias";
    s->d_in = (size_t)pre->shape[0];
    s->d_sae = (size_t)lat->shape[0];
    s->apply_b_dec_to_input = true;
    saemon_status st = openai_activation(f, s, err);
    if (!st)
        st = dict_set_str(&s->id.normalize_activations, saemon_norm_name(s->norm), err);
    return st;
}

/* ---- shared open ------------------------------------------------------ */

saemon_status dict_open_safetensors(const char *dir, const char *weights,
                                    dict_configure_fn configure, const saemon_dict_load_options *opts,
                                    saemon_dict **out, saemon_error *err)
{
    char *path = path_join(dir, weights);
    if (!path)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    st_file f = {0};
    dict_spec spec = {.layer = -1};
    saemon_status st = st_open(path, &f, err);
    if (!st)
        st = configure(dir, &f, &spec, err);
    if (!st)
        st = dict_spec_load(dir, &f, &spec, opts, out, err);
    dict_spec_free(&spec);
    st_close(&f);
    free(path);
    return st;
}

/* ---- detection -------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Name of a pickle checkpoint in dir (caller frees), or NULL. */
static char *find_pickle(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return NULL;
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(dh)))
        if (has_suffix(e->d_name, ".pt") || has_suffix(e->d_name, ".pth") ||
            has_suffix(e->d_name, ".ckpt") || has_suffix(e->d_name, ".pkl"))
            found = strdup(e->d_name);
    closedir(dh);
    return found;
}

/* The weights file of each format; two of them in one folder is ambiguous. */
static const char *const weight_files[] = {
    "sae_weights.safetensors", "sae.safetensors", "params.npz", "params.safetensors",
    "checkpoints/final.safetensors", "ae.safetensors",
};
#define N_WEIGHT_FILES (sizeof weight_files / sizeof weight_files[0])

/* A subdirectory that holds an SAE (for a hint in the refusal), or NULL. */
static char *find_sae_subdir(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return NULL;
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(dh))) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = path_join(dir, e->d_name);
        for (size_t i = 0; sub && !found && i < N_WEIGHT_FILES; i++)
            if (dir_has(sub, weight_files[i]) || dir_has(sub, "cfg.json"))
                found = strdup(e->d_name);
        free(sub);
    }
    closedir(dh);
    return found;
}

static saemon_status no_sae_here(const char *dir, saemon_error *err)
{
    char *pickle = find_pickle(dir), *sub = find_sae_subdir(dir);
    char hint[300] = "";
    if (sub)
        snprintf(hint, sizeof hint, "; the subdirectory '%.200s' holds a loadable SAE", sub);
    saemon_status st;
    if (pickle && dir_has(dir, "config.json") && !strcmp(pickle, "ae.pt"))
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: only a PyTorch pickle (ae.pt) is here; saemon never unpickles "
                              "files (loading a pickle can run arbitrary code). Write "
                              "ae.safetensors with scripts/convert_dictionary_learning.py, run "
                              "with your own PyTorch",
                              dir);
    else if (pickle)
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: only a PyTorch pickle (%s) is here; saemon never unpickles "
                              "files (loading a pickle can run arbitrary code). Convert it to "
                              "safetensors first%s",
                              dir, pickle, hint);
    else
        st = saemon_error_set(err, SAEMON_ERR_IO,
                              "%s: no SAE found (expected one of: cfg.json + "
                              "sae_weights.safetensors (SAELens), cfg.json + sae.safetensors "
                              "(sparsify), sae.safetensors (OpenAI), params.npz (Gemma Scope), "
                              "config.json + params.safetensors (Gemma Scope 2), hyperparams.json "
                              "+ checkpoints/final.safetensors (Llama Scope), config.json + "
                              "sae_weights.safetensors (Llama Scope R1), config.json + "
                              "ae.safetensors (dictionary_learning))%s",
                              dir, hint);
    free(pickle);
    free(sub);
    return st;
}

/* Why dir/name is not a usable file: "missing", "a directory, not a file",
 * "a FIFO, not a regular file", or the error stat gave. */
static const char *why_not_a_file(const char *dir, const char *name, char *buf, size_t len)
{
    char *p = path_join(dir, name);
    struct stat sb;
    const char *why = "missing";
    if (p && stat(p, &sb) == 0) {
        why = S_ISDIR(sb.st_mode)    ? "a directory, not a file"
              : S_ISFIFO(sb.st_mode) ? "a FIFO, not a regular file"
              : S_ISREG(sb.st_mode)  ? "present"
                                     : "not a regular file";
    } else if (p && errno != ENOENT) {
        snprintf(buf, len, "%s", strerror(errno));
        why = buf;
    }
    free(p);
    return why;
}

static saemon_status missing_config(const char *dir, const char *cfg, const char *weights,
                                    const char *format, saemon_error *err)
{
    char buf[128];
    return saemon_error_set(err, SAEMON_ERR_IO, "%s/%s: %s (a %s folder needs %s next to %s)", dir, cfg,
                            why_not_a_file(dir, cfg, buf, sizeof buf), format, cfg, weights);
}

saemon_status saemon_dict_open(const char *dir, saemon_dict **out, saemon_error *err)
{
    return saemon_dict_open_with(dir, NULL, out, err);
}

static saemon_status open_planned(const char *dir, const saemon_dict_load_options *o, saemon_dict **out,
                                  saemon_error *err);

saemon_status saemon_dict_open_with(const char *dir, const saemon_dict_load_options *opts, saemon_dict **out,
                                    saemon_error *err)
{
    static const saemon_dict_load_options whole = {0};
    double t0 = clock_now_s();
    saemon_status st = open_planned(dir, opts ? opts : &whole, out, err);
    if (st == SAEMON_OK)
        (*out)->stats.seconds = clock_now_s() - t0;
    return st;
}

/* Which format `dir` holds, then its reader. Each format is one branch
 * here: a new dictionary kind plugs in the same way. */
static saemon_status open_planned(const char *dir, const saemon_dict_load_options *o, saemon_dict **out,
                                  saemon_error *err)
{
    if (!out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_open: out is NULL");
    *out = NULL;
    if (!dir || !*dir)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_open: no directory given");
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", dir, strerror(errno));
    if (S_ISREG(sb.st_mode) && pack_file_is_pack(dir))
        return pack_open(dir, o, out, err);
    if (S_ISREG(sb.st_mode) && has_suffix(dir, ".npz"))
        return gemmascope_open(dir, dir, o, out, err);
    if (!S_ISDIR(sb.st_mode))
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "%s: not a directory (pass the SAE's folder, a saemon pack, or a "
                                "Gemma Scope .npz file)",
                                dir);
    DIR *readable = opendir(dir); /* "no SAE found" would hide a permission problem */
    if (!readable)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: cannot read the directory: %s", dir, strerror(errno));
    closedir(readable);

    if (dir_has(dir, "probe.safetensors")) /* a dense linear probe (runtime/dict_probe.c) */
        return dict_probe_open(dir, out, err);
    const char *weights = NULL;
    for (size_t i = 0; i < N_WEIGHT_FILES; i++) {
        if (!dir_has(dir, weight_files[i]))
            continue;
        if (weights)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: both %s and %s are here (mixed formats in one folder); "
                                    "saemon will not guess which one is the SAE",
                                    dir, weights, weight_files[i]);
        weights = weight_files[i];
    }
    bool cfg = dir_has(dir, "cfg.json"), config = dir_has(dir, "config.json");
    if (!weights && dir_has(dir, "hyperparams.json"))
        return missing_config(dir, "checkpoints/final.safetensors", "hyperparams.json",
                              "Llama Scope", err);
    if (!weights)
        return cfg && !config ? missing_config(dir, "sae_weights.safetensors", "cfg.json",
                                               "SAELens", err)
                              : no_sae_here(dir, err);

    if (!strcmp(weights, "sae_weights.safetensors")) {
        if (cfg)
            return dict_open_safetensors(dir, weights, configure_saelens, o, out, err);
        if (config)
            return dict_open_safetensors(dir, weights, dict_configure_llamascope_r1, o, out, err);
        return missing_config(dir, "cfg.json", weights, "SAELens", err);
    }
    if (!strcmp(weights, "sae.safetensors"))
        return dict_open_safetensors(dir, weights, cfg ? configure_sparsify : configure_openai, o, out, err);
    if (!strcmp(weights, "params.npz")) {
        char *npz = path_join(dir, weights);
        if (!npz)
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        saemon_status st = gemmascope_open(npz, dir, o, out, err);
        free(npz);
        return st;
    }
    if (!strcmp(weights, "params.safetensors"))
        return config ? dict_open_safetensors(dir, weights, dict_configure_gemmascope2, o, out, err)
                      : missing_config(dir, "config.json", weights, "Gemma Scope 2", err);
    if (!strcmp(weights, "ae.safetensors"))
        return config ? dict_open_safetensors(dir, weights, dict_configure_dictionary_learning, o, out, err)
                      : missing_config(dir, "config.json", weights, "dictionary_learning", err);
    return dir_has(dir, "hyperparams.json")
               ? dict_open_safetensors(dir, weights, dict_configure_llamascope, o, out, err)
               : missing_config(dir, "hyperparams.json", weights, "Llama Scope", err);
}
