/* saemon_dict lifetime: allocation of the canonical fp32 layout, the final
 * NaN/Inf check, in-memory construction, info and names. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/error.h"
#include "kernels/kernel.h"
#include "runtime/dict_internal.h"
#include "runtime/half.h"
#include "base/sha256.h"

void *saemon_aligned_alloc(size_t bytes)
{
    /* aligned_alloc needs a size that is a multiple of the alignment. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes)
        return NULL;
    return aligned_alloc(64, rounded ? rounded : 64);
}

/* n zeroed floats, in an allocation of `capacity` bytes when that is larger
 * (the rest is left untouched). */
static float *alloc_floats(size_t n, size_t capacity)
{
    if (n > SIZE_MAX / sizeof(float))
        return NULL;
    float *p = saemon_aligned_alloc(capacity > n * sizeof(float) ? capacity : n * sizeof(float));
    /* Weight matrices are written in transposed order on load: huge pages
     * spare the TLB (a hint; ignored where THP is off). */
    if (p && n * sizeof(float) >= ((size_t)4 << 20))
        madvise((void *)((uintptr_t)p & ~(uintptr_t)4095), n * sizeof(float), MADV_HUGEPAGE);
    if (p)
        memset(p, 0, n * sizeof(float));
    return p;
}

/* Bytes to allocate for a whole dictionary's encoder rows: the packed form
 * of the variant an encoder will choose when it starts with the rows
 * (kernel.h packed_rows_align), so that encoder packs in place. Only the
 * rows are written here: the rest stays untouched (not resident) unless an
 * encoder packs into it. */
static size_t rows_allocation(size_t d_in, size_t d_sae)
{
    const size_t rows = d_in * d_sae * sizeof(float);
    const saemon_kernel *k = saemon_kernel_select(NULL);
    if (!k || !k->packed_rows_align || d_in % k->packed_rows_align)
        return rows;
    saemon_kernel_plan p = {.d_in = d_in, .d_sae = d_sae};
    size_t packed = k->packed_size(&p);
    return packed > rows ? packed : rows;
}

saemon_dict *saemon_dict_alloc_rows(size_t d_in, size_t d_sae, saemon_arch arch, const uint32_t *latents,
                                    size_t n_rows, bool decoder, saemon_error *err)
{
    size_t n_w, n_r;
    if (d_in == 0 || d_sae == 0 || __builtin_mul_overflow(d_in, d_sae, &n_w) ||
        __builtin_mul_overflow(d_in, n_rows ? n_rows : 1, &n_r) || d_sae > UINT32_MAX) {
        saemon_error_set(err, SAEMON_ERR_NOMEM, "dictionary size %zu x %zu is invalid", d_in,
                         d_sae);
        return NULL;
    }
    saemon_dict *d = calloc(1, sizeof *d);
    if (!d) {
        saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->info.layer = -1;
    d->info.arch = arch;
    d->info.d_in = d_in;
    d->info.d_sae = d_sae;
    d->n_rows = latents ? n_rows : d_sae;
    d->rows_capacity = latents ? n_r * sizeof(float) : rows_allocation(d_in, d_sae);
    bool ok = (d->W_enc_rows = alloc_floats(latents ? n_r : n_w, d->rows_capacity)) &&
              (!decoder || (d->W_dec = alloc_floats(n_w, 0))) && (d->b_dec = alloc_floats(d_in, 0));
    if (ok && latents) {
        ok = (d->row_slot = malloc(d_sae * sizeof(uint32_t))) &&
             (d->row_latent = malloc((n_rows ? n_rows : 1) * sizeof(uint32_t)));
        if (ok) {
            for (size_t j = 0; j < d_sae; j++)
                d->row_slot[j] = DICT_NO_ROW;
            for (size_t r = 0; r < n_rows; r++) {
                d->row_slot[latents[r]] = (uint32_t)r;
                d->row_latent[r] = latents[r];
            }
        }
    }
    if (ok && arch == SAEMON_ARCH_GATED)
        ok = (d->b_gate = alloc_floats(d_sae, 0)) && (d->r_mag = alloc_floats(d_sae, 0)) &&
             (d->b_mag = alloc_floats(d_sae, 0));
    else if (ok)
        ok = (d->b_enc = alloc_floats(d_sae, 0)) != NULL;
    if (ok && arch == SAEMON_ARCH_JUMPRELU)
        ok = (d->threshold = alloc_floats(d_sae, 0)) != NULL;
    if (!ok) {
        saemon_dict_close(d);
        saemon_error_set(err, SAEMON_ERR_NOMEM,
                         "out of memory allocating a %zu x %zu dictionary", d_in, d_sae);
        return NULL;
    }
    return d;
}

saemon_dict *saemon_dict_alloc(size_t d_in, size_t d_sae, saemon_arch arch, saemon_error *err)
{
    return saemon_dict_alloc_rows(d_in, d_sae, arch, NULL, d_sae, true, err);
}

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

saemon_status dict_sorted_latents(const uint32_t *latents, size_t n, size_t d_sae, uint32_t **out, size_t *n_out,
                                  saemon_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (n && !latents)
        return saemon_error_set(err, SAEMON_ERR_ARG, "%zu latents but no array", n);
    for (size_t i = 0; i < n; i++)
        if (latents[i] >= d_sae)
            return saemon_error_set(err, SAEMON_ERR_ARG, "latent %u is out of range; expected an index < d_sae %zu",
                                    latents[i], d_sae);
    uint32_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (n)
        memcpy(s, latents, n * sizeof *s);
    qsort(s, n, sizeof *s, by_u32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || s[u - 1] != s[i])
            s[u++] = s[i];
    *out = s;
    *n_out = u;
    return SAEMON_OK;
}

saemon_status dict_keep_rows(saemon_dict *d, const uint32_t *latents, size_t n, bool decoder, saemon_error *err)
{
    const size_t din = d->info.d_in, dsae = d->info.d_sae;
    if (!decoder) {
        free(d->W_dec);
        d->W_dec = NULL;
    }
    if (d->row_slot || n == dsae)
        return SAEMON_OK; /* already planned, or every latent */
    float *rows = alloc_floats(din * (n ? n : 1), 0);
    uint32_t *slot = malloc(dsae * sizeof *slot), *lat = malloc((n ? n : 1) * sizeof *lat);
    if (!rows || !slot || !lat) {
        free(rows);
        free(slot);
        free(lat);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    for (size_t j = 0; j < dsae; j++)
        slot[j] = DICT_NO_ROW;
    for (size_t r = 0; r < n; r++) {
        memcpy(rows + r * din, d->W_enc_rows + (size_t)latents[r] * din, din * sizeof(float));
        slot[latents[r]] = (uint32_t)r;
        lat[r] = latents[r];
    }
    free(d->W_enc_rows);
    d->W_enc_rows = rows;
    d->rows_capacity = din * (n ? n : 1) * sizeof(float);
    d->row_slot = slot;
    d->row_latent = lat;
    d->n_rows = n;
    return SAEMON_OK;
}

uint64_t dict_resident_bytes(const saemon_dict *d)
{
    const uint64_t din = d->info.d_in, dsae = d->info.d_sae;
    uint64_t b = (uint64_t)d->n_rows * din * 4 + (d->W_dec ? dsae * din * 4 : 0) + din * 4;
    const float *vecs[] = {d->b_enc, d->threshold, d->b_gate, d->r_mag, d->b_mag, d->log_sparsity};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
        b += vecs[i] ? dsae * 4 : 0;
    if (d->row_slot)
        b += dsae * 4 + (uint64_t)d->n_rows * 4;
    return b;
}

/* First non-finite element of a [rows][cols] array, or -1. */
static long long first_nonfinite(const float *a, size_t n)
{
    if (saemon_all_finite(a, n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return (long long)i;
    return -1;
}

saemon_status saemon_dict_finish(saemon_dict *d, saemon_error *err)
{
    const char *who = d->path ? d->path : "(memory)";
    size_t din = d->info.d_in, dsae = d->info.d_sae;
    long long at;
    /* Indices are reported in SAELens' layout: W_enc [d_in][d_sae]. */
    /* A pack's rows are not scanned (that would read every page at start):
     * the writer checked them, and `saemon inspect --verify` checks the
     * data's SHA-256. */
    if (!d->map && (at = first_nonfinite(d->W_enc_rows, din * d->n_rows)) >= 0)
        return saemon_error_set(err, SAEMON_ERR_VALUE,
                                "%s: W_enc has a non-finite value (%g) at [%zu, %zu]", who,
                                d->W_enc_rows[at], (size_t)at % din,
                                d->row_latent ? (size_t)d->row_latent[at / din] : (size_t)at / din);
    if (!d->map && d->W_dec && (at = first_nonfinite(d->W_dec, din * dsae)) >= 0)
        return saemon_error_set(err, SAEMON_ERR_VALUE,
                                "%s: W_dec has a non-finite value (%g) at [%zu, %zu]", who,
                                d->W_dec[at], (size_t)at / din, (size_t)at % din);
    const struct {
        const char *name;
        const float *a;
        size_t n;
    } vecs[] = {
        {"b_dec", d->b_dec, din},        {"b_enc", d->b_enc, dsae}, {"threshold", d->threshold, dsae},
        {"b_gate", d->b_gate, dsae},     {"r_mag", d->r_mag, dsae}, {"b_mag", d->b_mag, dsae},
    };
    for (size_t v = 0; v < sizeof vecs / sizeof vecs[0]; v++)
        if (vecs[v].a && (at = first_nonfinite(vecs[v].a, vecs[v].n)) >= 0)
            return saemon_error_set(err, SAEMON_ERR_VALUE,
                                    "%s: %s has a non-finite value (%g) at [%lld]", who,
                                    vecs[v].name, vecs[v].a[at], at);

    saemon_dict_info *in = &d->info;
    in->path = d->path ? d->path : "(memory)";
    in->format = d->format ? d->format : "memory";
    in->name = d->id.name ? d->id.name : "";
    in->hook_name = d->id.hook_name ? d->id.hook_name : "";
    in->model_name = d->id.model_name ? d->id.model_name : "";
    in->normalize_activations = d->id.normalize_activations ? d->id.normalize_activations
                                                         : saemon_norm_name(in->norm);
    in->compute_dtype = d->id.compute_dtype ? d->id.compute_dtype : "float32";
    in->width_tag = d->id.width_tag ? d->id.width_tag : "";
    in->l0_tag = d->id.l0_tag ? d->id.l0_tag : "";
    in->log_feature_sparsity = d->log_sparsity;
    in->n_dead_features = 0;
    for (size_t j = 0; d->log_sparsity && j < dsae; j++)
        in->n_dead_features += d->log_sparsity[j] <= SAEMON_DEAD_LOG_SPARSITY;
    if (in->arch != SAEMON_ARCH_TOPK) {
        in->k = 0;
        in->rescale_acts_by_decoder_norm = false;
    }
    d->stats.latents_loaded = d->n_rows;
    d->stats.decoder_loaded = d->W_dec != NULL;
    d->stats.resident_bytes = dict_resident_bytes(d);
    return SAEMON_OK;
}

static saemon_status dup_str(char **dst, const char *src, saemon_error *err)
{
    *dst = strdup(src);
    return *dst ? SAEMON_OK : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
}

saemon_status saemon_dict_from_arrays(const saemon_dict_arrays *a, saemon_dict **out,
                                      saemon_error *err)
{
    if (!out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_from_arrays: out is NULL");
    *out = NULL;
    if (!a)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_from_arrays: arrays is NULL");
    if ((unsigned)a->arch > SAEMON_ARCH_TOPK || (unsigned)a->norm > SAEMON_NORM_LAYER_NORM)
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "saemon_dict_from_arrays: invalid architecture or norm");
    if (a->d_in == 0 || a->d_sae == 0)
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "saemon_dict_from_arrays: d_in and d_sae must be positive");
    bool gated = a->arch == SAEMON_ARCH_GATED;
    const char *missing = !a->W_enc                                   ? "W_enc"
                          : !a->W_dec                                 ? "W_dec"
                          : !a->b_dec                                 ? "b_dec"
                          : !gated && !a->b_enc                       ? "b_enc"
                          : a->arch == SAEMON_ARCH_JUMPRELU && !a->threshold ? "threshold"
                          : gated && !a->b_gate                       ? "b_gate"
                          : gated && !a->r_mag                        ? "r_mag"
                          : gated && !a->b_mag                        ? "b_mag"
                                                                      : NULL;
    if (missing)
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "saemon_dict_from_arrays: %s is NULL (required for %s)", missing,
                                saemon_arch_name(a->arch));
    if (a->arch == SAEMON_ARCH_TOPK && (a->k < 1 || a->k > a->d_sae))
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "saemon_dict_from_arrays: k = %zu must be in 1..d_sae (%zu)",
                                a->k, a->d_sae);

    size_t din = a->d_in, dsae = a->d_sae;
    saemon_dict *d = saemon_dict_alloc(din, dsae, a->arch, err);
    if (!d)
        return err ? err->code : SAEMON_ERR_NOMEM;
    for (size_t i = 0; i < din; i++)
        for (size_t j = 0; j < dsae; j++)
            d->W_enc_rows[j * din + i] = a->W_enc[i * dsae + j];
    size_t wbytes = din * dsae * sizeof(float);
    memcpy(d->W_dec, a->W_dec, wbytes);
    memcpy(d->b_dec, a->b_dec, din * sizeof(float));
    if (d->b_enc)
        memcpy(d->b_enc, a->b_enc, dsae * sizeof(float));
    if (d->threshold)
        memcpy(d->threshold, a->threshold, dsae * sizeof(float));
    if (gated) {
        memcpy(d->b_gate, a->b_gate, dsae * sizeof(float));
        memcpy(d->r_mag, a->r_mag, dsae * sizeof(float));
        memcpy(d->b_mag, a->b_mag, dsae * sizeof(float));
    }

    /* Identity: SHA-256 over the float32 bytes in the documented order. */
    const void *parts[8] = {a->W_enc, d->b_enc, a->W_dec, a->b_dec};
    size_t lens[8] = {wbytes, d->b_enc ? dsae * sizeof(float) : 0, wbytes, din * sizeof(float)};
    size_t n = 4;
    if (d->threshold)
        parts[n] = a->threshold, lens[n++] = dsae * sizeof(float);
    if (gated) {
        parts[n] = a->b_gate, lens[n++] = dsae * sizeof(float);
        parts[n] = a->r_mag, lens[n++] = dsae * sizeof(float);
        parts[n] = a->b_mag, lens[n++] = dsae * sizeof(float);
    }
    saemon_status st = SAEMON_OK;
    if (saemon_sha256_hex(parts, lens, n, d->info.sha256))
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "saemon_dict_from_arrays: SHA-256 failed");

    d->info.k = a->arch == SAEMON_ARCH_TOPK ? a->k : 0;
    d->info.apply_b_dec_to_input = a->apply_b_dec_to_input;
    d->info.norm = a->norm;
    d->info.weight_dtype = SAEMON_DTYPE_F32;
    if (!st)
        st = dup_str(&d->path, "(memory)", err);
    if (!st)
        st = dup_str(&d->format, "memory", err);
    if (!st)
        st = dup_str(&d->id.name, a->name && *a->name ? a->name : "memory", err);
    if (!st)
        st = dup_str(&d->id.normalize_activations, saemon_norm_name(a->norm), err);
    if (!st)
        st = saemon_dict_finish(d, err);
    if (st) {
        saemon_dict_close(d);
        return st;
    }
    *out = d;
    return SAEMON_OK;
}

const saemon_dict_info *saemon_dict_get_info(const saemon_dict *dict)
{
    return dict ? &dict->info : NULL;
}

bool saemon_dict_get_feature_log_sparsity(const saemon_dict *d, size_t feature, float *log10_density)
{
    if (!d || !d->log_sparsity || feature >= d->info.d_sae)
        return false;
    if (log10_density)
        *log10_density = d->log_sparsity[feature];
    return true;
}

const char *saemon_dict_get_feature_label(const saemon_dict *d, size_t feature)
{
    if (!d || !d->labels || feature >= d->info.d_sae)
        return NULL;
    size_t lo = 0, hi = d->n_labels; /* entries sorted by feature */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->labels[3 * mid] < feature)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->n_labels && d->labels[3 * lo] == feature ? d->labels_base + d->labels[3 * lo + 1] : NULL;
}

size_t saemon_dict_get_label_count(const saemon_dict *d) { return d ? d->n_labels : 0; }

const char *const *saemon_dict_get_feature_labels(const saemon_dict *d)
{
    return d ? (const char *const *)d->label_ptrs : NULL;
}

bool saemon_dict_is_feature_dead(const saemon_dict *d, size_t feature)
{
    float v;
    return saemon_dict_get_feature_log_sparsity(d, feature, &v) && v <= SAEMON_DEAD_LOG_SPARSITY;
}

void dict_identity_free(dict_identity *id)
{
    free(id->name);
    free(id->hook_name);
    free(id->model_name);
    free(id->normalize_activations);
    free(id->compute_dtype);
    free(id->width_tag);
    free(id->l0_tag);
    memset(id, 0, sizeof *id);
}

/* free(p) unless p points into the dictionary's pack mapping */
static void dict_free(const saemon_dict *d, void *p)
{
    if (!d->map || (const char *)p < (const char *)d->map || (const char *)p >= (const char *)d->map + d->map_len)
        free(p);
}

void saemon_dict_close(saemon_dict *d)
{
    if (!d)
        return;
    free(d->path);
    free(d->format);
    dict_identity_free(&d->id);
    dict_free(d, d->log_sparsity);
    dict_free(d, d->W_enc_rows);
    free(d->row_slot);
    free(d->label_ptrs);
    dict_free(d, d->row_latent);
    free(d->src.weights);
    free(d->src.tensor);
    dict_free(d, d->W_dec);
    dict_free(d, d->b_dec);
    dict_free(d, d->b_enc);
    dict_free(d, d->threshold);
    dict_free(d, d->b_gate);
    dict_free(d, d->r_mag);
    dict_free(d, d->b_mag);
    if (d->map)
        munmap(d->map, d->map_len);
    free(d);
}

void saemon_dict_get_load_stats(const saemon_dict *d, saemon_dict_load_stats *out)
{
    if (!out)
        return;
    *out = (saemon_dict_load_stats){0};
    if (!d)
        return;
    /* the fields saemon_dict_add_latents changes, read atomically (/metrics
     * reads them on its own thread) */
    out->bytes_read = __atomic_load_n(&d->stats.bytes_read, __ATOMIC_RELAXED);
    out->latents_loaded = __atomic_load_n(&d->stats.latents_loaded, __ATOMIC_RELAXED);
    out->resident_bytes = __atomic_load_n(&d->stats.resident_bytes, __ATOMIC_RELAXED);
    out->seconds = d->stats.seconds;
    out->decoder_loaded = d->stats.decoder_loaded;
    out->mapped_bytes = d->stats.mapped_bytes;
}

bool saemon_dict_has_latent(const saemon_dict *d, size_t latent)
{
    return d && latent < d->info.d_sae && dict_row(d, latent) != NULL;
}

const char *saemon_arch_name(saemon_arch arch)
{
    switch (arch) {
    case SAEMON_ARCH_STANDARD: return "standard";
    case SAEMON_ARCH_JUMPRELU: return "jumprelu";
    case SAEMON_ARCH_GATED: return "gated";
    case SAEMON_ARCH_TOPK: return "topk";
    case SAEMON_ARCH_PROBE_SIGMOID: return "probe-sigmoid";
    case SAEMON_ARCH_PROBE_IDENTITY: return "probe-identity";
    }
    return "unknown";
}

const char *saemon_norm_name(saemon_norm norm)
{
    switch (norm) {
    case SAEMON_NORM_NONE: return "none";
    case SAEMON_NORM_CONSTANT_NORM_RESCALE: return "constant_norm_rescale";
    case SAEMON_NORM_LAYER_NORM: return "layer_norm";
    }
    return "unknown";
}

const char *saemon_dtype_name(saemon_dtype dtype)
{
    switch (dtype) {
    case SAEMON_DTYPE_F32: return "F32";
    case SAEMON_DTYPE_F16: return "F16";
    case SAEMON_DTYPE_BF16: return "BF16";
    case SAEMON_DTYPE_F64: return "F64";
    }
    return "unknown";
}
