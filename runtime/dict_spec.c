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

/* ---- reading: only what the plan needs, with pread (st_read) --------- */

#define READ_CHUNK ((size_t)8 << 20) /* bytes of converted values buffered per pass */
/* Column layout: watched latents less than this many bytes apart in an input
 * row are read in one piece (a read call costs about as much as copying
 * 16 KiB from the page cache), so a spread of latents reads whole rows. */
#define RUN_GAP_BYTES 16384

/* Read n elements of t starting at element `at` as fp32 into dst. */
static saemon_status read_f32(st_file *f, const st_tensor *t, uint64_t at, size_t n, float *dst, void *raw,
                              saemon_error *err)
{
    saemon_dtype dt = (saemon_dtype)t->float_dtype;
    size_t es = saemon_dtype_size(dt);
    if (dt == SAEMON_DTYPE_F32)
        return st_read(f, t->begin + at * es, n * es, dst, err);
    saemon_status st = st_read(f, t->begin + at * es, n * es, raw, err);
    if (!st)
        saemon_convert_to_f32(raw, dt, n, dst);
    return st;
}

/* Pieces of a sorted latent list read in one go: lat[k0..k1) with gaps < RUN_GAP. */
typedef struct lat_run {
    size_t k0, k1;
} lat_run;

static lat_run *runs_of(const uint32_t *lat, size_t n, size_t gap, size_t *n_runs, size_t *widest)
{
    lat_run *r = malloc((n ? n : 1) * sizeof *r);
    *n_runs = *widest = 0;
    for (size_t k = 0; r && k < n;) {
        size_t e = k + 1;
        while (e < n && lat[e] - lat[e - 1] <= gap)
            e++;
        r[(*n_runs)++] = (lat_run){k, e};
        size_t w = lat[e - 1] - lat[k] + 1;
        *widest = w > *widest ? w : *widest;
        k = e;
    }
    return r;
}

/* The encoder rows of the sorted latents lat[0..n) from tensor t into rows
 * ([n][d_in] fp32). Row layout [d_sae, d_in]: each run of adjacent latents is
 * one read. Column layout [d_in, d_sae] (transpose): one sequential pass over
 * the input rows; in each, the runs of watched latents are read and gathered,
 * so at most READ_CHUNK of values is held besides the result. */
static saemon_status read_rows(st_file *f, const st_tensor *t, bool transpose, size_t d_in, size_t d_sae,
                               const uint32_t *lat, size_t n, float *rows, saemon_error *err)
{
    if (n == 0)
        return SAEMON_OK;
    size_t es = saemon_dtype_size((saemon_dtype)t->float_dtype), n_runs, widest;
    lat_run *runs = runs_of(lat, n, transpose ? RUN_GAP_BYTES / es : 1, &n_runs, &widest);
    if (!runs)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    saemon_status st = SAEMON_OK;
    if (!transpose) {
        void *raw = es == 4 ? NULL : malloc(READ_CHUNK);
        size_t per = READ_CHUNK / (d_in * es) ? READ_CHUNK / (d_in * es) : 1;
        if (es != 4 && !raw)
            st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        if (es != 4 && per * d_in * es > READ_CHUNK && !st) {
            free(raw);
            if (!(raw = malloc(d_in * es)))
                st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        }
        for (size_t q = 0; q < n_runs && !st; q++)
            for (size_t k = runs[q].k0; k < runs[q].k1 && !st; k += per) {
                size_t m = runs[q].k1 - k < per ? runs[q].k1 - k : per;
                st = read_f32(f, t, (uint64_t)lat[k] * d_in, m * d_in, rows + k * d_in, raw, err);
            }
        free(raw);
        free(runs);
        return st;
    }
    /* rows of input at a time: the gathered values (per x n) and the read
     * runs (per x widest when one run spans whole rows: one read per chunk) */
    const bool whole_rows = n_runs == 1 && widest * 2 >= d_sae; /* then several rows per read */
    if (whole_rows)
        widest = d_sae;
    const bool every = whole_rows && n == d_sae; /* no gather buffer: transposed in place */
    size_t per = every ? d_in : READ_CHUNK / (n * sizeof(float)) ? READ_CHUNK / (n * sizeof(float)) : 1;
    size_t per_read = whole_rows ? READ_CHUNK / (widest * sizeof(float)) : 1;
    per_read = per_read ? per_read : 1;
    per = per < per_read ? per : per_read;
    per = per < d_in ? per : d_in;
    const size_t read_rows = whole_rows ? per : 1;
    float *wide = saemon_aligned_alloc(read_rows * widest * sizeof(float)),
          *got = every ? NULL : saemon_aligned_alloc(per * n * sizeof(float));
    void *raw = es == 4 ? NULL : malloc(read_rows * widest * es);
    if (!wide || (!every && !got) || (es != 4 && !raw))
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    for (size_t i0 = 0; i0 < d_in && !st; i0 += per) {
        size_t m = d_in - i0 < per ? d_in - i0 : per;
        if (whole_rows) {
            st = read_f32(f, t, (uint64_t)i0 * d_sae, m * d_sae, wide, raw, err);
            if (!st && n == d_sae) { /* every latent: a blocked transpose straight into the rows */
                for (size_t k0 = 0; k0 < n; k0 += 32)
                    for (size_t k = k0; k < k0 + 32 && k < n; k++)
                        for (size_t r = 0; r < m; r++)
                            rows[k * d_in + i0 + r] = wide[r * d_sae + k];
                continue;
            }
            for (size_t r = 0; r < m && !st; r++)
                for (size_t k = 0; k < n; k++)
                    got[r * n + k] = wide[r * d_sae + lat[k]];
        }
        for (size_t r = 0; r < m && !whole_rows && !st; r++)
            for (size_t q = 0; q < n_runs && !st; q++) {
                const uint32_t a = lat[runs[q].k0], b = lat[runs[q].k1 - 1];
                st = read_f32(f, t, (uint64_t)(i0 + r) * d_sae + a, b - a + 1u, wide, raw, err);
                for (size_t k = runs[q].k0; k < runs[q].k1 && !st; k++)
                    got[r * n + k] = wide[lat[k] - a];
            }
        for (size_t k = 0; k < n && !st; k++)
            for (size_t r = 0; r < m; r++)
                rows[k * d_in + i0 + r] = got[r * n + k];
    }
    free(wide);
    free(got);
    free(raw);
    free(runs);
    return st;
}

/* Upcast a small tensor into dst (exp() for log-stored values, broadcast for
 * scalars) and refuse NaN/Inf. */
static saemon_status load_slot(st_file *f, const slot_hit *hit, float *dst, size_t n,
                               saemon_error *err)
{
    const st_tensor *t = hit->t;
    size_t es = saemon_dtype_size((saemon_dtype)t->float_dtype);
    void *raw = es == 4 ? NULL : malloc((hit->broadcast ? 1 : n) * es);
    if (es != 4 && !raw)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    saemon_status st = read_f32(f, t, 0, hit->broadcast ? 1 : n, dst, raw, err);
    free(raw);
    if (st)
        return st;
    for (size_t i = 1; hit->broadcast && i < n; i++)
        dst[i] = dst[0];
    if (hit->rule->from_log)
        for (size_t i = 0; i < n; i++)
            dst[i] = expf(dst[i]);
    return saemon_all_finite(dst, n) ? SAEMON_OK
                                     : report_nonfinite(f, t, hit->rule->from_log, err);
}

/* A matrix slot (W_enc rows of `lat`, or the whole W_dec) into dst; refuse NaN/Inf. */
static saemon_status load_matrix(st_file *f, const slot_hit *hit, size_t d_in, size_t d_sae, const uint32_t *lat,
                                 size_t n, float *dst, saemon_error *err)
{
    saemon_status st = read_rows(f, hit->t, hit->transpose, d_in, d_sae, lat, n, dst, err);
    if (st || saemon_all_finite(dst, n * d_in))
        return st;
    if (n == d_sae)
        return report_nonfinite(f, hit->t, false, err);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < d_in; i++)
            if (!isfinite(dst[k * d_in + i]))
                return saemon_error_set(err, SAEMON_ERR_VALUE, "%s: tensor '%s' has a non-finite value (%g) at [%zu, %zu]",
                                        f->label, hit->t->name, dst[k * d_in + i], hit->transpose ? i : (size_t)lat[k],
                                        hit->transpose ? (size_t)lat[k] : i);
    return SAEMON_OK;
}

/* Old SAELens checkpoints: an all-ones scaling_factor is a no-op (SAELens
 * deletes it); anything else is a fine-tuning factor saemon does not apply. */
static saemon_status check_old_scaling_tensor(st_file *f, size_t d_sae, saemon_error *err)
{
    if (!st_find(f, "scaling_factor"))
        return SAEMON_OK;
    const st_tensor *t;
    saemon_status st = dict_need_tensor(f, "scaling_factor", 1, &d_sae, "[d_sae]", &t, err);
    if (st)
        return st;
    float *v = saemon_aligned_alloc(d_sae * sizeof(float));
    void *raw = malloc(d_sae * saemon_dtype_size((saemon_dtype)t->float_dtype));
    if (!v || !raw) {
        free(v);
        free(raw);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    st = read_f32(f, t, 0, d_sae, v, raw, err);
    free(raw);
    for (size_t j = 0; j < d_sae && !st; j++) {
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
    size_t n = d->info.d_in * d->info.d_sae, nr = d->info.d_in * d->n_rows;
    float sf = (float)s;
    for (size_t i = 0; i < nr; i++)
        d->W_enc_rows[i] *= sf;
    for (size_t i = 0; d->W_dec && i < n; i++)
        d->W_dec[i] /= sf;
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
                                  st_file *f, const st_tensor *enc, bool hash, saemon_error *err)
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
    return hash ? st_sha256(f, in->sha256, err) : SAEMON_OK;
}

/* What identifies the weights file, so a later read can tell it is the same. */
static saemon_status file_identity(const st_file *f, dict_source *src, saemon_error *err)
{
    src->dev = f->dev;
    src->ino = f->ino;
    src->size = f->size;
    src->mtime_ns = f->mtime_ns;
    const void *parts[1] = {f->bytes};
    size_t lens[1] = {(size_t)(8 + f->header_len)};
    if (saemon_sha256_hex(parts, lens, 1, src->header_sha))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: SHA-256 failed", f->label);
    return SAEMON_OK;
}

saemon_status dict_spec_load(const char *dir, st_file *f, dict_spec *s, const saemon_dict_load_options *o,
                             saemon_dict **out, saemon_error *err)
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

    /* The plan: which encoder rows, and whether W_dec. */
    const bool topk = s->arch == SAEMON_ARCH_TOPK;
    const bool decoder = !o->no_decoder || (topk && s->rescale_acts_by_decoder_norm);
    uint32_t *lat = NULL;
    size_t n = s->d_sae;
    if (o->subset && !topk && (st = dict_sorted_latents(o->latents, o->n_latents, s->d_sae, &lat, &n, err)))
        return st;
    uint32_t *all = NULL; /* every latent: the whole W_enc, or W_dec */
    if ((!lat || decoder) && !(all = malloc(s->d_sae * sizeof *all)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    for (size_t j = 0; all && j < s->d_sae; j++)
        all[j] = (uint32_t)j;
    saemon_dict *d = saemon_dict_alloc_rows(s->d_in, s->d_sae, s->arch, lat, n, decoder, err);
    if (!d) {
        free(lat);
        free(all);
        return err ? err->code : SAEMON_ERR_NOMEM;
    }
    for (int slot = 0; slot < N_DICT_SLOTS && !st; slot++) {
        size_t cnt;
        float *dst = slot_array(d, (dict_slot)slot, &cnt);
        if (!dst || !hits[slot].rule)
            continue;
        if (slot == SLOT_W_ENC)
            st = load_matrix(f, &hits[slot], s->d_in, s->d_sae, lat ? lat : all, n, dst, err);
        else if (slot == SLOT_W_DEC)
            st = load_matrix(f, &hits[slot], s->d_in, s->d_sae, all, s->d_sae, dst, err);
        else
            st = load_slot(f, &hits[slot], dst, cnt, err);
    }
    free(lat);
    free(all);
    if (!st && s->arch == SAEMON_ARCH_JUMPRELU && s->threshold_is_scalar) {
        float v = (float)s->threshold_value;
        for (size_t j = 0; j < s->d_sae; j++)
            d->threshold[j] = v;
    }
    if (!st && s->fold_scale > 0)
        fold_scale(d, s->fold_scale);
    if (!st)
        st = set_identity(d, dir, s, f, hits[SLOT_W_ENC].t, !o->defer_sha256, err);
    if (!st && s->sparsity_file)
        st = dict_load_sparsity(d, dir, s->sparsity_file, err);
    if (!st && !(d->src.weights = strdup(f->label)))
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!st && !(d->src.tensor = strdup(hits[SLOT_W_ENC].t->name)))
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!st) {
        d->src.transpose = hits[SLOT_W_ENC].transpose;
        st = file_identity(f, &d->src, err);
    }
    d->stats.bytes_read = f->bytes_read;
    if (!st)
        st = saemon_dict_finish(d, err);
    if (st) {
        saemon_dict_close(d);
        return st;
    }
    *out = d;
    return SAEMON_OK;
}

/* ---- more latents later (a reload) ------------------------------------ */

static saemon_status same_file(const saemon_dict *d, st_file *f, saemon_error *err)
{
    dict_source now = {0};
    saemon_status st = file_identity(f, &now, err);
    if (st)
        return st;
    const dict_source *was = &d->src;
    const char *what = now.dev != was->dev || now.ino != was->ino ? "it was replaced (another inode)"
                       : now.size != was->size                      ? "its size changed"
                       : now.mtime_ns != was->mtime_ns              ? "it was modified (mtime changed)"
                       : strcmp(now.header_sha, was->header_sha)    ? "its header changed"
                                                                    : NULL;
    if (what)
        return saemon_error_set(err, SAEMON_ERR_MISMATCH,
                                "%s: the weights file changed since saemon loaded it (%s); the new latents "
                                "cannot be read from it. Keeping the running plan; restart saemon to load the "
                                "new file",
                                was->weights, what);
    return SAEMON_OK;
}

saemon_status saemon_dict_add_latents(saemon_dict *d, const uint32_t *latents, size_t n, saemon_error *err)
{
    if (!d)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_add_latents: no dictionary");
    uint32_t *lat = NULL;
    size_t u = 0;
    saemon_status st = dict_sorted_latents(latents, n, d->info.d_sae, &lat, &u, err);
    if (st)
        return st;
    size_t m = 0; /* the new ones, in place */
    for (size_t k = 0; k < u; k++)
        if (!dict_row(d, lat[k]))
            lat[m++] = lat[k];
    if (m == 0) {
        free(lat);
        return SAEMON_OK;
    }
    if (d->map) { /* a pack holds what it holds */
        st = saemon_error_set(err, SAEMON_ERR_MISMATCH,
                              "%s: latent %u is not in this pack (a subset pack of %zu latents); re-pack the "
                              "source with it (saemon pack --latents/--rules)",
                              d->info.path, lat[0], d->n_rows);
        free(lat);
        return st;
    }
    if (!d->src.weights || !d->src.tensor) {
        free(lat);
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: latent %u is not loaded and this dictionary cannot read more rows",
                                d->info.path, lat[0]);
    }
    const size_t din = d->info.d_in, dsae = d->info.d_sae;
    st_file f = {0};
    slot_hit hit = {0};
    tensor_rule rule = {SLOT_W_ENC, d->src.tensor, LAYOUT_VEC, false};
    float *rows = saemon_aligned_alloc((d->n_rows + m) * din * sizeof(float));
    uint32_t *row_lat = malloc((d->n_rows + m) * sizeof *row_lat);
    if (!rows || !row_lat)
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for %zu more latents", m);
    if (!st)
        st = st_open(d->src.weights, &f, err);
    if (!st)
        st = same_file(d, &f, err);
    if (!st) {
        hit.rule = &rule;
        hit.transpose = d->src.transpose;
        if (!(hit.t = st_find(&f, d->src.tensor)))
            st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s' is gone", f.label, d->src.tensor);
    }
    if (!st)
        st = load_matrix(&f, &hit, din, dsae, lat, m, rows + d->n_rows * din, err);
    if (!st && d->info.folded_scaling_factor > 0) {
        float sf = (float)d->info.folded_scaling_factor;
        for (size_t i = 0; i < m * din; i++)
            rows[d->n_rows * din + i] *= sf;
    }
    if (!st) {
        memcpy(rows, d->W_enc_rows, d->n_rows * din * sizeof(float));
        memcpy(row_lat, d->row_latent, d->n_rows * sizeof *row_lat);
        memcpy(row_lat + d->n_rows, lat, m * sizeof *row_lat);
        for (size_t k = 0; k < m; k++)
            d->row_slot[lat[k]] = (uint32_t)(d->n_rows + k);
        free(d->W_enc_rows);
        free(d->row_latent);
        d->W_enc_rows = rows;
        d->rows_capacity = (d->n_rows + m) * din * sizeof(float);
        d->row_latent = row_lat;
        d->n_rows += m;
        /* atomic: /metrics may read the stats from another thread */
        __atomic_store_n(&d->stats.bytes_read, d->stats.bytes_read + f.bytes_read, __ATOMIC_RELAXED);
        __atomic_store_n(&d->stats.latents_loaded, d->n_rows, __ATOMIC_RELAXED);
        __atomic_store_n(&d->stats.resident_bytes, dict_resident_bytes(d), __ATOMIC_RELAXED);
        rows = NULL;
        row_lat = NULL;
    }
    st_close(&f);
    free(rows);
    free(row_lat);
    free(lat);
    return st;
}

saemon_status saemon_dict_compute_sha256(saemon_dict *d, saemon_error *err)
{
    if (!d)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_compute_sha256: no dictionary");
    if (d->info.sha256[0])
        return SAEMON_OK;
    if (!d->src.weights)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED, "%s: no weights file to hash", d->info.path);
    st_file f = {0};
    saemon_status st = st_open(d->src.weights, &f, err);
    if (!st)
        st = same_file(d, &f, err);
    char hex[65];
    if (!st)
        st = st_sha256(&f, hex, err);
    if (!st)
        memcpy(d->info.sha256, hex, sizeof hex);
    st_close(&f);
    return st;
}
