/* saemon_dict_open: find which on-disk format a directory holds (SAELens,
 * EleutherAI sparsify, OpenAI sparse_autoencoder, Gemma Scope params.npz
 * via runtime/dict_gemmascope.c), validate it, upcast every
 * tensor to fp32 in the canonical layout and fold dataset scaling. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/read_file.h"
#include "runtime/dict_internal.h"
#include "runtime/gemmascope.h"
#include "runtime/half.h"
#include "runtime/sae_config.h"
#include "runtime/safetensors.h"
#include "base/sha256.h"

/* cfg.json and activation_scaler.json are small; refuse anything absurd. */
#define MAX_JSON_FILE_BYTES (16u << 20)

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool dir_has(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    bool r = p && is_file(p);
    free(p);
    return r;
}

/* ---- tensors ---------------------------------------------------------- */

/* Look up a tensor that must exist with a float dtype and the given shape.
 * `what` says where the expected shape comes from (e.g. "[d_in, d_sae]"). */
static saemon_status need_tensor(const st_file *f, const char *name, size_t ndim,
                                 const size_t *dims, const char *what, const st_tensor **out,
                                 saemon_error *err)
{
    const st_tensor *t = st_find(f, name);
    if (!t)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: missing tensor '%s'", f->label,
                                name);
    if (t->float_dtype < 0)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: tensor '%s' has dtype %s; saemon reads F32, F16, BF16, F64",
                                f->label, name, t->dtype_name);
    bool ok = t->ndim == ndim;
    for (size_t i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == dims[i];
    if (!ok) {
        char got[96], want[96];
        int w = snprintf(want, sizeof want, "[");
        for (size_t i = 0; i < ndim && w > 0 && (size_t)w < sizeof want; i++)
            w += snprintf(want + w, sizeof want - (size_t)w, "%s%zu", i ? ", " : "", dims[i]);
        if (w > 0 && (size_t)w < sizeof want)
            snprintf(want + w, sizeof want - (size_t)w, "]");
        return saemon_error_set(err, SAEMON_ERR_SHAPE,
                                "%s: tensor '%s' has shape %s, expected %s = %s", f->label, name,
                                st_shape_str(t, got, sizeof got), what, want);
    }
    *out = t;
    return SAEMON_OK;
}

/* Refuse NaN/Inf: name the tensor and the first bad element in file order,
 * with its multi-dimensional index. Only called once a bad value is known. */
static saemon_status report_nonfinite(const st_file *f, const st_tensor *t, saemon_error *err)
{
    size_t n = (size_t)t->nelem, i;
    float v = 0;
    for (i = 0; i < n; i++) {
        saemon_convert_to_f32(t->data + i * saemon_dtype_size((saemon_dtype)t->float_dtype),
                              (saemon_dtype)t->float_dtype, 1, &v);
        if (!isfinite(v))
            break;
    }
    char idx[96];
    int w = snprintf(idx, sizeof idx, "[");
    size_t rem = i, stride = n;
    for (size_t d = 0; d < t->ndim && w > 0 && (size_t)w < sizeof idx; d++) {
        stride = t->shape[d] ? stride / t->shape[d] : 1;
        w += snprintf(idx + w, sizeof idx - (size_t)w, "%s%zu", d ? ", " : "", rem / stride);
        rem %= stride;
    }
    if (w > 0 && (size_t)w < sizeof idx)
        snprintf(idx + w, sizeof idx - (size_t)w, "]");
    return saemon_error_set(err, SAEMON_ERR_VALUE,
                            "%s: tensor '%s' has a non-finite value (%g) at %s%s", f->label,
                            t->name, v, idx,
                            t->float_dtype == SAEMON_DTYPE_F64 ? " (or beyond float32 range)"
                                                               : "");
}

/* Upcast a tensor to fp32 into dst and refuse NaN/Inf. If transpose, the
 * tensor is [rows][cols] in the file and dst receives [cols][rows]. */
static saemon_status load_tensor(const st_file *f, const st_tensor *t, float *dst, bool transpose,
                                 saemon_error *err)
{
    size_t n = (size_t)t->nelem;
    if (transpose)
        saemon_convert_transpose_to_f32(t->data, (saemon_dtype)t->float_dtype,
                                        (size_t)t->shape[0], (size_t)t->shape[1], dst);
    else
        saemon_convert_to_f32(t->data, (saemon_dtype)t->float_dtype, n, dst);
    return saemon_all_finite(dst, n) ? SAEMON_OK : report_nonfinite(f, t, err);
}

/* ---- identity --------------------------------------------------------- */

static saemon_status set_str(char **dst, const char *src, saemon_error *err)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
    return !src || *dst ? SAEMON_OK : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
}

/* The last `count` components of the directory's canonical path. */
static char *dir_tail(const char *dir, int count)
{
    char *real = realpath(dir, NULL);
    const char *s = real ? real : dir;
    size_t end = strlen(s);
    while (end > 1 && s[end - 1] == '/')
        end--;
    size_t start = end;
    for (int seen = 0; start > 0; start--) {
        if (s[start - 1] == '/' && ++seen == count)
            break;
    }
    char *out = strndup(s + start, end - start);
    free(real);
    return out;
}

static const char *torch_dtype_name(int dtype)
{
    switch (dtype) {
    case SAEMON_DTYPE_F16: return "float16";
    case SAEMON_DTYPE_BF16: return "bfloat16";
    case SAEMON_DTYPE_F64: return "float64";
    default: return "float32";
    }
}

/* Fields every format fills the same way: path, format, name (unless set),
 * weight file size, hash, storage dtype of the encoder. */
static saemon_status set_common_info(saemon_dict *d, const char *dir, const char *format,
                                     const st_file *f, const st_tensor *enc, saemon_error *err)
{
    saemon_status st;
    if ((st = set_str(&d->path, dir, err)) || (st = set_str(&d->format, format, err)))
        return st;
    if (!d->name && !(d->name = dir_tail(dir, 2)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    d->info.weights_bytes = f->size;
    d->info.weight_dtype = (saemon_dtype)enc->float_dtype;
    const void *parts[1] = {f->bytes};
    size_t lens[1] = {(size_t)f->size};
    if (saemon_sha256_hex(parts, lens, 1, d->info.sha256))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: SHA-256 failed", f->label);
    return SAEMON_OK;
}

/* ---- SAELens ---------------------------------------------------------- */

/* expected_average_only_in: the factor must come from activation_scaler.json. */
static saemon_status read_scaling_factor(const char *dir, double *s, saemon_error *err)
{
    char *path = path_join(dir, "activation_scaler.json");
    if (!path)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    saemon_status st;
    if (!is_file(path)) {
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
    st = read_whole_file(path, MAX_JSON_FILE_BYTES, "config file", &text, &len, err);
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

/* Old checkpoints: an all-ones scaling_factor is a no-op; anything else is a
 * fine-tuning factor saemon does not apply. */
static saemon_status check_old_scaling_tensor(const st_file *f, size_t d_sae, saemon_error *err)
{
    if (!st_find(f, "scaling_factor"))
        return SAEMON_OK;
    const st_tensor *t;
    saemon_status st = need_tensor(f, "scaling_factor", 1, &d_sae, "[d_sae]", &t, err);
    if (st)
        return st;
    float *v = saemon_aligned_alloc(d_sae * sizeof(float));
    if (!v)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    saemon_convert_to_f32(t->data, (saemon_dtype)t->float_dtype, d_sae, v);
    for (size_t j = 0; j < d_sae; j++) {
        if (v[j] != 1.0f) {
            st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                  "%s: tensor 'scaling_factor' is not all ones ([%zu] = %g); "
                                  "saemon does not apply fine-tuning scaling factors",
                                  f->label, j, v[j]);
            break;
        }
    }
    free(v);
    return st;
}

static saemon_status open_saelens(const char *dir, saemon_dict **out, saemon_error *err)
{
    char *cfg_path = path_join(dir, "cfg.json");
    char *w_path = path_join(dir, "sae_weights.safetensors");
    char *text = NULL;
    size_t len = 0;
    sae_config cfg = {0};
    st_file f = {0};
    saemon_dict *d = NULL;
    saemon_status st;
    if (!cfg_path || !w_path) {
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = read_whole_file(cfg_path, MAX_JSON_FILE_BYTES, "config file", &text, &len, err)) ||
        (st = sae_config_parse(text, len, cfg_path, &cfg, err)) ||
        (st = st_open(w_path, &f, err)))
        goto out;

    size_t in_sae[2] = {cfg.d_in, cfg.d_sae}, sae_in[2] = {cfg.d_sae, cfg.d_in};
    const st_tensor *W_enc, *W_dec, *b_dec, *b_enc = NULL, *thr = NULL, *bg = NULL, *rm = NULL,
                                                *bm = NULL;
    bool gated = cfg.arch == SAEMON_ARCH_GATED;
    if ((st = need_tensor(&f, "W_enc", 2, in_sae, "cfg.json [d_in, d_sae]", &W_enc, err)) ||
        (st = need_tensor(&f, "W_dec", 2, sae_in, "cfg.json [d_sae, d_in]", &W_dec, err)) ||
        (st = need_tensor(&f, "b_dec", 1, &cfg.d_in, "cfg.json [d_in]", &b_dec, err)) ||
        (!gated && (st = need_tensor(&f, "b_enc", 1, &cfg.d_sae, "cfg.json [d_sae]", &b_enc, err))) ||
        (cfg.arch == SAEMON_ARCH_JUMPRELU &&
         (st = need_tensor(&f, "threshold", 1, &cfg.d_sae, "cfg.json [d_sae]", &thr, err))) ||
        (gated && ((st = need_tensor(&f, "b_gate", 1, &cfg.d_sae, "cfg.json [d_sae]", &bg, err)) ||
                   (st = need_tensor(&f, "r_mag", 1, &cfg.d_sae, "cfg.json [d_sae]", &rm, err)) ||
                   (st = need_tensor(&f, "b_mag", 1, &cfg.d_sae, "cfg.json [d_sae]", &bm, err)))) ||
        (st = check_old_scaling_tensor(&f, cfg.d_sae, err)))
        goto out;
    double s = 0;
    if (cfg.needs_scaling_factor && (st = read_scaling_factor(dir, &s, err)))
        goto out;

    if (!(d = saemon_dict_alloc(cfg.d_in, cfg.d_sae, cfg.arch, err))) {
        st = err ? err->code : SAEMON_ERR_NOMEM;
        goto out;
    }
    if ((st = load_tensor(&f, W_enc, d->W_enc_rows, true, err)) ||
        (st = load_tensor(&f, W_dec, d->W_dec, false, err)) ||
        (st = load_tensor(&f, b_dec, d->b_dec, false, err)) ||
        (b_enc && (st = load_tensor(&f, b_enc, d->b_enc, false, err))) ||
        (thr && (st = load_tensor(&f, thr, d->threshold, false, err))) ||
        (bg && ((st = load_tensor(&f, bg, d->b_gate, false, err)) ||
                (st = load_tensor(&f, rm, d->r_mag, false, err)) ||
                (st = load_tensor(&f, bm, d->b_mag, false, err)))))
        goto out;
    if (s > 0) {
        /* SAELens fold_activation_norm_scaling_factor. */
        size_t n = cfg.d_in * cfg.d_sae;
        float sf = (float)s;
        for (size_t i = 0; i < n; i++) {
            d->W_enc_rows[i] *= sf;
            d->W_dec[i] /= sf;
        }
        for (size_t i = 0; i < cfg.d_in; i++)
            d->b_dec[i] /= sf;
        d->info.folded_scaling_factor = s;
    }

    saemon_dict_info *in = &d->info;
    in->k = cfg.k;
    in->rescale_acts_by_decoder_norm = cfg.rescale_acts_by_decoder_norm;
    in->apply_b_dec_to_input = cfg.apply_b_dec_to_input;
    in->norm = cfg.norm;
    in->reshape_hook_z = cfg.reshape_hook_z;
    in->cfg_bytes = len;
    if ((st = set_str(&d->name, cfg.neuronpedia_id, err)) ||
        (st = set_str(&d->hook_name, cfg.hook_name, err)) ||
        (st = set_str(&d->model_name, cfg.model_name, err)) ||
        (st = set_str(&d->normalize_activations, cfg.normalize_activations, err)) ||
        (st = set_str(&d->compute_dtype, cfg.dtype, err)) ||
        (st = set_common_info(d, dir, "saelens", &f, W_enc, err)))
        goto out;
    st = saemon_dict_finish(d, err);
out:
    if (st) {
        saemon_dict_close(d);
        d = NULL;
    }
    *out = d;
    st_close(&f);
    sae_config_free(&cfg);
    free(text);
    free(cfg_path);
    free(w_path);
    return st;
}

/* ---- EleutherAI sparsify ---------------------------------------------- */

static saemon_status open_sparsify(const char *dir, saemon_dict **out, saemon_error *err)
{
    char *cfg_path = path_join(dir, "cfg.json");
    char *w_path = path_join(dir, "sae.safetensors");
    char *text = NULL;
    size_t len = 0;
    sparsify_config cfg = {0};
    st_file f = {0};
    saemon_dict *d = NULL;
    saemon_status st;
    if (!cfg_path || !w_path) {
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = read_whole_file(cfg_path, MAX_JSON_FILE_BYTES, "config file", &text, &len, err)) ||
        (st = sparsify_config_parse(text, len, cfg_path, &cfg, err)) ||
        (st = st_open(w_path, &f, err)))
        goto out;
    size_t lat_in[2] = {cfg.num_latents, cfg.d_in}, in_lat[2] = {cfg.d_in, cfg.num_latents};
    const st_tensor *enc, *enc_b, *W_dec, *b_dec;
    if ((st = need_tensor(&f, "encoder.weight", 2, lat_in, "cfg.json [num_latents, d_in]", &enc,
                          err)) ||
        (st = need_tensor(&f, "encoder.bias", 1, &cfg.num_latents, "cfg.json [num_latents]",
                          &enc_b, err)) ||
        (st = need_tensor(&f, "b_dec", 1, &cfg.d_in, "cfg.json [d_in]", &b_dec, err)))
        goto out;
    /* W_dec orientation from its shape; sparsify itself writes [num_latents, d_in]. */
    bool dec_transposed = false;
    const st_tensor *wd = st_find(&f, "W_dec");
    if (wd && wd->ndim == 2 && wd->shape[0] == cfg.d_in && wd->shape[1] == cfg.num_latents &&
        cfg.d_in != cfg.num_latents)
        dec_transposed = true;
    if ((st = need_tensor(&f, "W_dec", 2, dec_transposed ? in_lat : lat_in,
                          "cfg.json [num_latents, d_in]", &W_dec, err)))
        goto out;
    if (!(d = saemon_dict_alloc(cfg.d_in, cfg.num_latents, SAEMON_ARCH_TOPK, err))) {
        st = err ? err->code : SAEMON_ERR_NOMEM;
        goto out;
    }
    if ((st = load_tensor(&f, enc, d->W_enc_rows, false, err)) ||
        (st = load_tensor(&f, enc_b, d->b_enc, false, err)) ||
        (st = load_tensor(&f, W_dec, d->W_dec, dec_transposed, err)) ||
        (st = load_tensor(&f, b_dec, d->b_dec, false, err)))
        goto out;
    d->info.k = cfg.k;
    d->info.apply_b_dec_to_input = !cfg.transcode;
    d->info.norm = SAEMON_NORM_NONE;
    d->info.cfg_bytes = len;
    char *hook = dir_tail(dir, 1);
    st = hook ? set_str(&d->hook_name, hook, err)
              : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    free(hook);
    /* sparsify computes in the dtype of the first tensor of the file. */
    if (st || (st = set_str(&d->compute_dtype, torch_dtype_name(f.tensors[0].float_dtype), err)) ||
        (st = set_str(&d->normalize_activations, "none", err)) ||
        (st = set_common_info(d, dir, "sparsify", &f, enc, err)))
        goto out;
    st = saemon_dict_finish(d, err);
out:
    if (st) {
        saemon_dict_close(d);
        d = NULL;
    }
    *out = d;
    st_close(&f);
    free(text);
    free(cfg_path);
    free(w_path);
    return st;
}

/* ---- OpenAI sparse_autoencoder ---------------------------------------- */

static saemon_status openai_settings(const st_file *f, saemon_arch *arch, size_t *k,
                                     saemon_norm *norm, size_t n_lat, saemon_error *err)
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
        if (!ks || end == ks || *end || errno || ks[0] == '-' || kv < 1 || kv > n_lat)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: __metadata__ k must be an integer in 1..%zu", f->label,
                                    n_lat);
        const char *post = st_meta(f, "postact_fn");
        if (post && strcmp(post, "ReLU") != 0)
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "%s: TopK postact_fn '%.64s' is not supported (ReLU)",
                                    f->label, post);
        *arch = SAEMON_ARCH_TOPK;
        *k = (size_t)kv;
    } else if (!strcmp(act, "ReLU")) {
        *arch = SAEMON_ARCH_STANDARD;
        *k = 0;
    } else {
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: activation '%.64s' is not supported (TopK or ReLU)", f->label,
                                act);
    }
    /* OpenAI's from_state_dict: normalize = (activation == "TopK"), unless the
     * metadata says otherwise. */
    const char *nz = st_meta(f, "normalize");
    bool ln = *arch == SAEMON_ARCH_TOPK;
    if (nz && !strcmp(nz, "true"))
        ln = true;
    else if (nz && !strcmp(nz, "false"))
        ln = false;
    else if (nz)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: __metadata__ normalize must be \"true\" or \"false\"",
                                f->label);
    *norm = ln ? SAEMON_NORM_LAYER_NORM : SAEMON_NORM_NONE;
    return SAEMON_OK;
}

static saemon_status open_openai(const char *dir, saemon_dict **out, saemon_error *err)
{
    char *w_path = path_join(dir, "sae.safetensors");
    st_file f = {0};
    saemon_dict *d = NULL;
    saemon_status st;
    if (!w_path) {
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = st_open(w_path, &f, err)))
        goto out;
    const st_tensor *pre = st_find(&f, "pre_bias"), *lat = st_find(&f, "latent_bias");
    if (!pre || !lat || pre->ndim != 1 || lat->ndim != 1 || !pre->shape[0] || !lat->shape[0]) {
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: expected 1-d tensors 'pre_bias' [n_inputs] and 'latent_bias' "
                              "[n_latents] (OpenAI sparse_autoencoder layout)",
                              f.label);
        goto out;
    }
    size_t n_in = (size_t)pre->shape[0], n_lat = (size_t)lat->shape[0];
    size_t lat_in[2] = {n_lat, n_in}, in_lat[2] = {n_in, n_lat};
    const st_tensor *enc, *dec;
    saemon_arch arch = SAEMON_ARCH_STANDARD;
    size_t k = 0;
    saemon_norm norm = SAEMON_NORM_NONE;
    if ((st = need_tensor(&f, "pre_bias", 1, &n_in, "[n_inputs]", &pre, err)) ||
        (st = need_tensor(&f, "latent_bias", 1, &n_lat, "[n_latents]", &lat, err)) ||
        (st = need_tensor(&f, "encoder.weight", 2, lat_in, "[n_latents, n_inputs]", &enc, err)) ||
        (st = need_tensor(&f, "decoder.weight", 2, in_lat, "[n_inputs, n_latents]", &dec, err)) ||
        (st = openai_settings(&f, &arch, &k, &norm, n_lat, err)))
        goto out;
    if (!(d = saemon_dict_alloc(n_in, n_lat, arch, err))) {
        st = err ? err->code : SAEMON_ERR_NOMEM;
        goto out;
    }
    if ((st = load_tensor(&f, enc, d->W_enc_rows, false, err)) ||
        (st = load_tensor(&f, lat, d->b_enc, false, err)) ||
        (st = load_tensor(&f, dec, d->W_dec, true, err)) ||
        (st = load_tensor(&f, pre, d->b_dec, false, err)))
        goto out;
    d->info.k = k;
    d->info.apply_b_dec_to_input = true;
    d->info.norm = norm;
    if ((st = set_str(&d->normalize_activations, saemon_norm_name(norm), err)) ||
        (st = set_str(&d->compute_dtype, "float32", err)) ||
        (st = set_common_info(d, dir, "openai", &f, enc, err)))
        goto out;
    st = saemon_dict_finish(d, err);
out:
    if (st) {
        saemon_dict_close(d);
        d = NULL;
    }
    *out = d;
    st_close(&f);
    free(w_path);
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
        if (sub && (dir_has(sub, "cfg.json") || dir_has(sub, "sae.safetensors") ||
                    dir_has(sub, "params.npz")))
            found = strdup(e->d_name);
        free(sub);
    }
    closedir(dh);
    return found;
}

saemon_status saemon_dict_open(const char *dir, saemon_dict **out, saemon_error *err)
{
    if (!out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_open: out is NULL");
    *out = NULL;
    if (!dir || !*dir)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_open: no directory given");
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", dir, strerror(errno));
    if (S_ISREG(sb.st_mode) && has_suffix(dir, ".npz"))
        return gemmascope_open(dir, dir, out, err);
    if (!S_ISDIR(sb.st_mode))
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "%s: not a directory (pass the SAE's folder, or a Gemma Scope "
                                ".npz file)",
                                dir);

    bool cfg = dir_has(dir, "cfg.json");
    if (dir_has(dir, "sae_weights.safetensors") || (cfg && !dir_has(dir, "sae.safetensors"))) {
        if (!cfg)
            return saemon_error_set(err, SAEMON_ERR_IO,
                                    "%s/cfg.json: missing (a SAELens folder needs cfg.json next "
                                    "to sae_weights.safetensors)",
                                    dir);
        return open_saelens(dir, out, err);
    }
    if (dir_has(dir, "sae.safetensors"))
        return cfg ? open_sparsify(dir, out, err) : open_openai(dir, out, err);

    if (dir_has(dir, "params.npz")) {
        char *npz = path_join(dir, "params.npz");
        if (!npz)
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        saemon_status st = gemmascope_open(npz, dir, out, err);
        free(npz);
        return st;
    }
    char *pickle = find_pickle(dir), *sub = find_sae_subdir(dir);
    char hint[300] = "";
    if (sub)
        snprintf(hint, sizeof hint, "; the subdirectory '%.200s' holds a loadable SAE", sub);
    saemon_status st;
    if (pickle)
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: only a PyTorch pickle (%s) is here; saemon never unpickles "
                              "files (loading a pickle can run arbitrary code). Convert it to "
                              "safetensors first%s",
                              dir, pickle, hint);
    else
        st = saemon_error_set(err, SAEMON_ERR_IO,
                              "%s: no SAE found (expected cfg.json + sae_weights.safetensors for "
                              "SAELens, cfg.json + sae.safetensors for sparsify, or "
                              "sae.safetensors for OpenAI, or params.npz for Gemma Scope)%s",
                              dir, hint);
    free(pickle);
    free(sub);
    return st;
}
