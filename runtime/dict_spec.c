/* dict_spec_load: the one safetensors load path shared by every format
 * (SAELens, sparsify, OpenAI, Gemma Scope 2, Llama Scope, dictionary_learning).
 * Each format only says which tensor fills which array (runtime/dict_spec.h). */
#include "runtime/dict_spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/sha256.h"
#include "runtime/dict_internal.h"
#include "runtime/half.h"

void dict_spec_free(dict_spec *s)
{
    if (s)
        dict_identity_free(&s->id);
}

saemon_status dict_set_str(char **dst, const char *src, saemon_error *err)
{
    free(*dst);
    *dst = src && *src ? strdup(src) : NULL;
    return !src || !*src || *dst ? SAEMON_OK
                                 : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
}

char *dict_dir_tail(const char *dir, int count)
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

int dict_number_after(const char *s, const char *prefix)
{
    const char *p = s ? strstr(s, prefix) : NULL;
    if (!p)
        return -1;
    p += strlen(prefix);
    if (*p < '0' || *p > '9')
        return -1;
    long v = strtol(p, NULL, 10);
    return v >= 0 && v < 100000 ? (int)v : -1;
}

void dict_dims_str(const size_t *dims, size_t nd, char *buf, size_t size)
{
    int w = snprintf(buf, size, "[");
    for (size_t i = 0; i < nd && w > 0 && (size_t)w < size; i++)
        w += snprintf(buf + w, size - (size_t)w, "%s%zu", i ? ", " : "", dims[i]);
    if (w > 0 && (size_t)w < size)
        snprintf(buf + w, size - (size_t)w, "]");
}

saemon_status dict_need_tensor(const st_file *f, const char *name, size_t ndim,
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
        dict_dims_str(dims, ndim, want, sizeof want);
        return saemon_error_set(err, SAEMON_ERR_SHAPE,
                                "%s: tensor '%s' has shape %s, expected %s = %s", f->label, name,
                                st_shape_str(t, got, sizeof got), what, want);
    }
    *out = t;
    return SAEMON_OK;
}

/* Refuse NaN/Inf: name the tensor and the first bad element in file order,
 * with its multi-dimensional index. Only called once a bad value is known. */
static saemon_status report_nonfinite(const st_file *f, const st_tensor *t, bool from_log,
                                      saemon_error *err)
{
    size_t n = (size_t)t->nelem, i;
    float v = 0;
    for (i = 0; i < n; i++) {
        saemon_convert_to_f32(t->data + i * saemon_dtype_size((saemon_dtype)t->float_dtype),
                              (saemon_dtype)t->float_dtype, 1, &v);
        if (from_log)
            v = expf(v);
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
                            "%s: tensor '%s' has a non-finite value (%g) at %s%s%s", f->label,
                            t->name, v, idx,
                            t->float_dtype == SAEMON_DTYPE_F64 ? " (or beyond float32 range)" : "",
                            from_log ? " after exp()" : "");
}

/* ---- finding each slot's tensor --------------------------------------- */

typedef struct slot_hit {
    const tensor_rule *rule; /* NULL: slot not in the file */
    const st_tensor *t;
    bool transpose, broadcast;
} slot_hit;

static const char *const slot_names[N_DICT_SLOTS] = {"W_enc", "W_dec", "b_dec", "b_enc",
                                                     "threshold", "b_gate", "r_mag", "b_mag"};

static bool slot_needed(const dict_spec *s, dict_slot slot)
{
    bool gated = s->arch == SAEMON_ARCH_GATED;
    switch (slot) {
    case SLOT_W_ENC:
    case SLOT_W_DEC:
    case SLOT_B_DEC: return true;
    case SLOT_B_ENC: return !gated;
    case SLOT_THRESHOLD: return s->arch == SAEMON_ARCH_JUMPRELU && !s->threshold_is_scalar;
    default: return gated;
    }
}

/* "'a' (or 'b')": every name the format accepts for a slot. */
static void slot_alternatives(const dict_spec *s, dict_slot slot, char *buf, size_t size)
{
    int w = 0;
    buf[0] = 0;
    for (size_t r = 0; r < s->n_rules && w >= 0 && (size_t)w < size; r++)
        if (s->rules[r].slot == slot)
            w += snprintf(buf + w, size - (size_t)w, w ? " (or '%s')" : "'%s'", s->rules[r].name);
}

static saemon_status check_shape(const st_file *f, const dict_spec *s, const tensor_rule *rule,
                                 slot_hit *hit, saemon_error *err)
{
    const st_tensor *t = hit->t;
    size_t in_sae[2] = {s->d_in, s->d_sae}, sae_in[2] = {s->d_sae, s->d_in};
    char what[96];
    const char *src = s->dims_from ? s->dims_from : s->format;
    switch (rule->layout) {
    case LAYOUT_IN_SAE:
        hit->transpose = true;
        snprintf(what, sizeof what, "%s [d_in, d_sae]", src);
        return dict_need_tensor(f, rule->name, 2, in_sae, what, &hit->t, err);
    case LAYOUT_EITHER:
        /* A square matrix is taken as [d_sae, d_in], the way it is written. */
        hit->transpose = t->ndim == 2 && t->shape[0] == s->d_in && t->shape[1] == s->d_sae &&
                         s->d_in != s->d_sae;
        snprintf(what, sizeof what, "%s [d_sae, d_in] (or [d_in, d_sae])", src);
        return dict_need_tensor(f, rule->name, 2, hit->transpose ? in_sae : sae_in, what, &hit->t,
                                err);
    case LAYOUT_SAE_IN:
        snprintf(what, sizeof what, "%s [d_sae, d_in]", src);
        return dict_need_tensor(f, rule->name, 2, sae_in, what, &hit->t, err);
    case LAYOUT_VEC_OR_SCALAR:
        if (t->ndim == 0) {
            hit->broadcast = true;
            size_t none[1] = {0};
            return dict_need_tensor(f, rule->name, 0, none, "a scalar", &hit->t, err);
        }
        /* fall through */
    case LAYOUT_VEC: {
        bool is_in = rule->slot == SLOT_B_DEC;
        snprintf(what, sizeof what, "%s [%s]", src, is_in ? "d_in" : "d_sae");
        return dict_need_tensor(f, rule->name, 1, is_in ? &s->d_in : &s->d_sae, what, &hit->t,
                                err);
    }
    }
    return SAEMON_OK;
}

static saemon_status find_slot(const st_file *f, const dict_spec *s, dict_slot slot,
                               slot_hit *hit, saemon_error *err)
{
    memset(hit, 0, sizeof *hit);
    for (size_t r = 0; r < s->n_rules; r++) {
        const tensor_rule *rule = &s->rules[r];
        const st_tensor *t = rule->slot == slot ? st_find(f, rule->name) : NULL;
        if (!t)
            continue;
        if (hit->rule)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: tensors '%s' and '%s' both give %s; refusing to guess "
                                    "which one the SAE uses",
                                    f->label, hit->rule->name, rule->name, slot_names[slot]);
        hit->rule = rule;
        hit->t = t;
    }
    if (!hit->rule) {
        if (!slot_needed(s, slot))
            return SAEMON_OK;
        char alts[200];
        slot_alternatives(s, slot, alts, sizeof alts);
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: missing tensor %s (%s)", f->label,
                                alts, saemon_arch_name(s->arch));
    }
    return check_shape(f, s, hit->rule, hit, err);
}

/* Upcast into dst (exp() for log-stored values, broadcast for scalars) and
 * refuse NaN/Inf. */
static saemon_status load_slot(const st_file *f, const slot_hit *hit, float *dst, size_t n,
                               saemon_error *err)
{
    const st_tensor *t = hit->t;
    saemon_dtype dt = (saemon_dtype)t->float_dtype;
    if (hit->transpose)
        saemon_convert_transpose_to_f32(t->data, dt, (size_t)t->shape[0], (size_t)t->shape[1],
                                        dst);
    else if (hit->broadcast) {
        saemon_convert_to_f32(t->data, dt, 1, dst);
        for (size_t i = 1; i < n; i++)
            dst[i] = dst[0];
    } else
        saemon_convert_to_f32(t->data, dt, n, dst);
    if (hit->rule->from_log)
        for (size_t i = 0; i < n; i++)
            dst[i] = expf(dst[i]);
    return saemon_all_finite(dst, n) ? SAEMON_OK
                                     : report_nonfinite(f, t, hit->rule->from_log, err);
}

/* Old SAELens checkpoints: an all-ones scaling_factor is a no-op (SAELens
 * deletes it); anything else is a fine-tuning factor saemon does not apply. */
static saemon_status check_old_scaling_tensor(const st_file *f, size_t d_sae, saemon_error *err)
{
    if (!st_find(f, "scaling_factor"))
        return SAEMON_OK;
    const st_tensor *t;
    saemon_status st = dict_need_tensor(f, "scaling_factor", 1, &d_sae, "[d_sae]", &t, err);
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

/* SAELens fold_activation_norm_scaling_factor(s). */
static void fold_scale(saemon_dict *d, double s)
{
    size_t n = d->info.d_in * d->info.d_sae;
    float sf = (float)s;
    for (size_t i = 0; i < n; i++) {
        d->W_enc_rows[i] *= sf;
        d->W_dec[i] /= sf;
    }
    for (size_t i = 0; i < d->info.d_in; i++)
        d->b_dec[i] /= sf;
    d->info.folded_scaling_factor = s;
}

static float *slot_array(saemon_dict *d, dict_slot slot, size_t *n)
{
    size_t din = d->info.d_in, dsae = d->info.d_sae;
    *n = slot == SLOT_W_ENC || slot == SLOT_W_DEC ? din * dsae : slot == SLOT_B_DEC ? din : dsae;
    switch (slot) {
    case SLOT_W_ENC: return d->W_enc_rows;
    case SLOT_W_DEC: return d->W_dec;
    case SLOT_B_DEC: return d->b_dec;
    case SLOT_B_ENC: return d->b_enc;
    case SLOT_THRESHOLD: return d->threshold;
    case SLOT_B_GATE: return d->b_gate;
    case SLOT_R_MAG: return d->r_mag;
    case SLOT_B_MAG: return d->b_mag;
    default: return NULL;
    }
}

/* Move the spec's identity into the dictionary; fill what every format shares. */
static saemon_status set_identity(saemon_dict *d, const char *dir, dict_spec *s,
                                  const st_file *f, const st_tensor *enc, saemon_error *err)
{
    saemon_dict_info *in = &d->info;
    in->k = s->k;
    in->rescale_acts_by_decoder_norm = s->rescale_acts_by_decoder_norm;
    in->apply_b_dec_to_input = s->apply_b_dec_to_input;
    in->norm = s->norm;
    in->reshape_hook_z = s->reshape_hook_z;
    in->cfg_bytes = s->cfg_bytes;
    in->weights_bytes = f->size;
    in->weight_dtype = (saemon_dtype)enc->float_dtype;
    /* Layer from the hook when the format did not name it (SAELens
     * blocks.L.hook_*, sparsify folders layers.L). */
    in->layer = s->layer;
    if (in->layer < 0)
        in->layer = dict_number_after(s->id.hook_name, "blocks.");
    if (in->layer < 0)
        in->layer = dict_number_after(s->id.hook_name, "layers.");
    d->id = s->id; /* moved: the spec no longer owns them */
    memset(&s->id, 0, sizeof s->id);
    saemon_status st;
    if ((st = dict_set_str(&d->path, dir, err)) || (st = dict_set_str(&d->format, s->format, err)))
        return st;
    if (!d->id.name && !(d->id.name = dict_dir_tail(dir, 2)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    const void *parts[1] = {f->bytes};
    size_t lens[1] = {(size_t)f->size};
    if (saemon_sha256_hex(parts, lens, 1, in->sha256))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: SHA-256 failed", f->label);
    return SAEMON_OK;
}

saemon_status dict_spec_load(const char *dir, const st_file *f, dict_spec *s, saemon_dict **out,
                             saemon_error *err)
{
    *out = NULL;
    slot_hit hits[N_DICT_SLOTS];
    saemon_status st = SAEMON_OK;
    for (int slot = 0; slot < N_DICT_SLOTS && !st; slot++)
        st = find_slot(f, s, (dict_slot)slot, &hits[slot], err);
    if (!st && s->check_scaling_factor)
        st = check_old_scaling_tensor(f, s->d_sae, err);
    if (st)
        return st;

    saemon_dict *d = saemon_dict_alloc(s->d_in, s->d_sae, s->arch, err);
    if (!d)
        return err ? err->code : SAEMON_ERR_NOMEM;
    for (int slot = 0; slot < N_DICT_SLOTS && !st; slot++) {
        size_t n;
        float *dst = slot_array(d, (dict_slot)slot, &n);
        if (dst && hits[slot].rule)
            st = load_slot(f, &hits[slot], dst, n, err);
    }
    if (!st && s->arch == SAEMON_ARCH_JUMPRELU && s->threshold_is_scalar) {
        float v = (float)s->threshold_value;
        for (size_t j = 0; j < s->d_sae; j++)
            d->threshold[j] = v;
    }
    if (!st && s->fold_scale > 0)
        fold_scale(d, s->fold_scale);
    if (!st)
        st = set_identity(d, dir, s, f, hits[SLOT_W_ENC].t, err);
    if (!st && s->sparsity_file)
        st = dict_load_sparsity(d, dir, s->sparsity_file, err);
    if (!st)
        st = saemon_dict_finish(d, err);
    if (st) {
        saemon_dict_close(d);
        return st;
    }
    *out = d;
    return SAEMON_OK;
}
