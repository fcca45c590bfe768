/* Dense linear probes as a dictionary (docs/formats.md "Dense linear
 * probes"): probe.safetensors holds weight [k, d_in] and bias [k], probe.json
 * the probes' names, the activation (sigmoid or identity), the hook and
 * d_in. The k probe scores are the dictionary's k "latents", so rules,
 * serve, features, calibrate and backtest use them unchanged. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/read_file.h"
#include "base/sha256.h"
#include "runtime/dict_internal.h"
#include "runtime/dict_probe.h"
#include "runtime/dict_spec.h"
#include "runtime/half.h"
#include "runtime/safetensors.h"

#define PROBE_CONFIG_MAX ((size_t)1 << 24)

typedef struct probe_cfg {
    saemon_arch arch;
    size_t d_in;
    char *hook;
    size_t n_names;
} probe_cfg;

static saemon_status read_config(const char *path, probe_cfg *c, saemon_error *err)
{
    char *text = NULL;
    size_t len = 0;
    saemon_status st = read_whole_file(path, PROBE_CONFIG_MAX, "probe config", &text, &len, err);
    if (st)
        return st;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: not a JSON object", path);
    }
    st = st_json_unique_keys(j, path, "the probe config", err);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "names");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "activation");
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(j, "hook");
    const cJSON *d_in = cJSON_GetObjectItemCaseSensitive(j, "d_in");
    for (const cJSON *it = j->child; !st && it; it = it->next)
        if (strcmp(it->string, "names") && strcmp(it->string, "activation") && strcmp(it->string, "hook") &&
            strcmp(it->string, "d_in"))
            st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                                  "%s: unknown key \"%s\" (expected names, activation, hook, d_in)", path,
                                  it->string);
    if (!st && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) < 1))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: \"names\" must be a non-empty list of strings", path);
    for (const cJSON *a = names ? names->child : NULL; !st && a; a = a->next) {
        if (!cJSON_IsString(a) || !a->valuestring[0])
            st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: \"names\" must hold non-empty strings", path);
        for (const cJSON *b = a->next; !st && b; b = b->next)
            if (cJSON_IsString(b) && !strcmp(a->valuestring, b->valuestring))
                st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: probe name \"%s\" appears twice", path,
                                      a->valuestring);
    }
    if (!st && (!cJSON_IsString(act) || (strcmp(act->valuestring, "sigmoid") && strcmp(act->valuestring, "identity"))))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: \"activation\" must be \"sigmoid\" or \"identity\"", path);
    if (!st && hook && !cJSON_IsString(hook))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: \"hook\" must be a string", path);
    if (!st && (!cJSON_IsNumber(d_in) || d_in->valuedouble < 1 || d_in->valuedouble > 1e9 ||
                d_in->valuedouble != (double)(size_t)d_in->valuedouble))
        st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: \"d_in\" must be a positive integer", path);
    if (!st) {
        c->arch = !strcmp(act->valuestring, "sigmoid") ? SAEMON_ARCH_PROBE_SIGMOID : SAEMON_ARCH_PROBE_IDENTITY;
        c->d_in = (size_t)d_in->valuedouble;
        c->n_names = (size_t)cJSON_GetArraySize(names);
        if (hook && !(c->hook = strdup(hook->valuestring)))
            st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(j);
    return st;
}

static saemon_status load(const char *dir, const st_file *f, const probe_cfg *c, saemon_dict **out,
                          saemon_error *err)
{
    const st_tensor *w = st_find(f, "weight");
    if (!w)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: missing tensor 'weight' ([k, d_in])", f->label);
    if (w->ndim != 2 || w->shape[0] == 0 || w->shape[1] == 0) {
        char got[96];
        return saemon_error_set(err, SAEMON_ERR_SHAPE, "%s: tensor 'weight' has shape %s, expected [k, d_in]",
                                f->label, st_shape_str(w, got, sizeof got));
    }
    size_t k = (size_t)w->shape[0], d_in = (size_t)w->shape[1];
    if (d_in != c->d_in)
        return saemon_error_set(err, SAEMON_ERR_SHAPE,
                                "%s/probe.json: d_in %zu differs from the weight's d_in %zu (weight [%zu, %zu])", dir,
                                c->d_in, d_in, k, d_in);
    if (k != c->n_names)
        return saemon_error_set(err, SAEMON_ERR_SHAPE, "%s/probe.json: %zu names for %zu probes (weight [%zu, %zu])",
                                dir, c->n_names, k, k, d_in);
    const st_tensor *b;
    saemon_status st = dict_need_tensor(f, "weight", 2, (size_t[]){k, d_in}, "[k, d_in]", &w, err);
    if (!st)
        st = dict_need_tensor(f, "bias", 1, (size_t[]){k}, "[k]", &b, err);
    if (st)
        return st;
    saemon_dict *d = saemon_dict_alloc(d_in, k, c->arch, err);
    if (!d)
        return err ? err->code : SAEMON_ERR_NOMEM;
    saemon_convert_to_f32(w->data, (saemon_dtype)w->float_dtype, k * d_in, d->W_enc_rows);
    saemon_convert_to_f32(b->data, (saemon_dtype)b->float_dtype, k, d->b_enc);
    /* No decoder: W_dec mirrors the weights so nothing reads garbage; b_dec 0. */
    memcpy(d->W_dec, d->W_enc_rows, k * d_in * sizeof(float));
    memset(d->b_dec, 0, d_in * sizeof(float));
    d->info.weight_dtype = (saemon_dtype)w->float_dtype;
    d->info.weights_bytes = f->size;
    if ((st = dict_set_str(&d->path, dir, err)) || (st = dict_set_str(&d->format, "probe", err)) ||
        (c->hook && (st = dict_set_str(&d->id.hook_name, c->hook, err)))) {
        saemon_dict_close(d);
        return st;
    }
    if (!(d->id.name = dict_dir_tail(dir, 2))) {
        saemon_dict_close(d);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    const void *parts[1] = {f->bytes};
    size_t lens[1] = {(size_t)f->size};
    if (saemon_sha256_hex(parts, lens, 1, d->info.sha256)) {
        saemon_dict_close(d);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: SHA-256 failed", f->label);
    }
    if ((st = saemon_dict_finish(d, err))) {
        saemon_dict_close(d);
        return st;
    }
    *out = d;
    return SAEMON_OK;
}

saemon_status dict_probe_open(const char *dir, saemon_dict **out, saemon_error *err)
{
    char *cfg_path = NULL, *st_path = NULL;
    if (asprintf(&cfg_path, "%s/probe.json", dir) < 0 || asprintf(&st_path, "%s/probe.safetensors", dir) < 0) {
        free(cfg_path);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    probe_cfg c = {0};
    st_file f = {0};
    saemon_status st = read_config(cfg_path, &c, err);
    if (!st)
        st = st_open(st_path, &f, err);
    if (!st)
        st = load(dir, &f, &c, out, err);
    st_close(&f);
    free(c.hook);
    free(cfg_path);
    free(st_path);
    return st;
}
