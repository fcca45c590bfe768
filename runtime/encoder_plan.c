/* Encoder plans: the full dictionary, or a subset of its latents gathered
 * and packed contiguously. Latents are independent of each other for every
 * architecture but TopK, and a kernel computes latent j from row j of W_enc,
 * its bias and its threshold alone (the same dot product, in the same order,
 * wherever the row sits), so a subset plan gives bit-identical values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "runtime/encoder_internal.h"

static size_t row_capacity(const saemon_kernel_plan *p)
{
    if (p->epilogue == SAEMON_EPI_TOPK)
        return p->k < p->d_sae ? p->k : p->d_sae;
    return p->d_sae;
}

static const float *offset(const float *a, size_t j0) { return a ? a + j0 : NULL; }

static saemon_kernel_plan slice_plan(const saemon_kernel_plan *whole, size_t j0, size_t j1)
{
    saemon_kernel_plan p = *whole;
    p.d_sae = j1 - j0;
    p.index_base = (uint32_t)j0;
    p.bias = offset(whole->bias, j0);
    p.threshold = offset(whole->threshold, j0);
    p.mag_scale = offset(whole->mag_scale, j0);
    p.mag_bias = offset(whole->mag_bias, j0);
    return p;
}

/* Split the plan's latents into the encoder's slices, on 64-latent bounds. */
static bool split(plan_set *set, size_t n_slices)
{
    const size_t n = set->whole.d_sae;
    if (!(set->slices = calloc(n_slices, sizeof(slice))))
        return false;
    set->n_slices = n_slices;
    for (size_t s = 0; s < n_slices; s++) {
        size_t j0 = (n * s / n_slices + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
        size_t j1 = (n * (s + 1) / n_slices + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
        j0 = j0 < n ? j0 : n;
        j1 = s + 1 == n_slices || j1 > n ? n : j1;
        set->slices[s].plan = slice_plan(&set->whole, j0, j1);
        set->slices[s].cap = row_capacity(&set->slices[s].plan);
    }
    return true;
}

/* Allocate and pack one slice. On the worker that will encode it when
 * called through the pool, so the packed weights are first touched on that
 * core's NUMA node. */
static void setup_slice(const saemon_encoder *enc, const plan_set *set, slice *s)
{
    if (s->plan.d_sae == 0)
        return;
    const size_t d_in = enc->plan.d_in;
    const size_t slots = enc->max_batch * s->cap;
    const saemon_dict *d = enc->dict;
    size_t scratch = enc->kernel->scratch_size(&s->plan, enc->max_batch), bytes = enc->kernel->packed_size(&s->plan);
    /* A pack that stores this variant's packed form of these latents: used
     * in place, read-only and shared (pack() made it from the same rows). */
    const void *stored = set->map || d->row_slot ? NULL
                         : dict_find_packed(d, enc->kernel->name, enc->kernel->packed_layout, s->plan.index_base,
                                            s->plan.d_sae, bytes);
    s->mapped = stored != NULL;
    /* The whole plan in one slice, with a variant that keeps the rows first
     * in its packed form: pack in place behind the dictionary's own rows
     * (allocated with that room), so the rows are held once. One plan at a
     * time holds the room; another packs its own copy. */
    s->in_rows = !stored && !set->map && !d->row_slot && !d->map && s->plan.index_base == 0 &&
                 s->plan.d_sae == d->info.d_sae && enc->kernel->packed_rows_align &&
                 d_in % enc->kernel->packed_rows_align == 0 && d->rows_capacity >= bytes &&
                 !__atomic_exchange_n(&((saemon_dict *)d)->rows_tail_taken, 1, __ATOMIC_ACQ_REL);
    s->packed = stored ? (void *)stored : s->in_rows ? (void *)d->W_enc_rows : saemon_aligned_alloc(bytes);
    s->scratch = scratch ? saemon_aligned_alloc(scratch) : NULL;
    s->index = malloc(slots * sizeof(uint32_t));
    s->value = malloc(slots * sizeof(float));
    s->count = malloc(enc->max_batch * sizeof(uint32_t));
    if (!s->packed || (scratch && !s->scratch) || !s->index || !s->value || !s->count || s->mapped)
        return; /* checked by the caller */
    if (!set->map && !d->row_slot) {
        /* in_rows: the rows are already where pack() puts them; it writes only past them */
        enc->kernel->pack(&s->plan, d->W_enc_rows + (size_t)s->plan.index_base * d_in, s->packed);
        return;
    }
    float *rows = saemon_aligned_alloc(s->plan.d_sae * d_in * sizeof(float));
    if (!rows) {
        free(s->packed);
        s->packed = NULL;
        return;
    }
    for (size_t j = 0; j < s->plan.d_sae; j++) {
        size_t at = s->plan.index_base + j;
        memcpy(rows + j * d_in, dict_row(d, set->map ? set->map[at] : at), d_in * sizeof(float));
    }
    enc->kernel->pack(&s->plan, rows, s->packed);
    free(rows);
}

static void setup_slice_job(void *ctx, size_t part)
{
    saemon_encoder *enc = ctx;
    setup_slice(enc, enc->job_set, &((plan_set *)enc->job_set)->slices[part]);
}

static saemon_status pack(saemon_encoder *enc, plan_set *set, bool on_workers, size_t csr_slots,
                          saemon_error *err)
{
    if (on_workers && enc->workers) {
        enc->job_set = set;
        saemon_workers_run(enc->workers, setup_slice_job, enc);
        enc->job_set = NULL;
    } else {
        for (size_t s = 0; s < set->n_slices; s++)
            setup_slice(enc, set, &set->slices[s]);
    }
    for (size_t s = 0; s < set->n_slices; s++) {
        const slice *sl = &set->slices[s];
        if (sl->plan.d_sae && (!sl->packed || !sl->index || !sl->value || !sl->count))
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory packing weights for slice %zu", s);
    }
    if (set->n_slices == 1 && !set->map) {
        set->csr_aliases = true; /* compacted in place */
        set->csr_index = set->slices[0].index;
        set->csr_value = set->slices[0].value;
        return SAEMON_OK;
    }
    set->csr_index = malloc((csr_slots ? csr_slots : 1) * sizeof(uint32_t));
    set->csr_value = malloc((csr_slots ? csr_slots : 1) * sizeof(float));
    if (!set->csr_index || !set->csr_value)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for merge buffers");
    return SAEMON_OK;
}

/* The first latent of latents[0..n) (NULL: every latent) whose row the
 * dictionary does not hold, or -1. */
static long long missing_row(const saemon_dict *d, const uint32_t *latents, size_t n)
{
    if (!d->row_slot)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!dict_row(d, latents ? latents[i] : i))
            return latents ? latents[i] : (long long)i;
    return -1;
}

/* MiB of packed weights a plan holds (mapped: used in place from a pack). */
static double packed_mib(const saemon_encoder *enc, const plan_set *set, bool mapped)
{
    double b = 0;
    for (size_t s = 0; set && s < set->n_slices; s++)
        if (set->slices[s].plan.d_sae && set->slices[s].mapped == mapped)
            b += (double)enc->kernel->packed_size(&set->slices[s].plan);
    return b / 1048576.0;
}

/* The full plan's packing, for the start-up log: where the packed form came
 * from and, on a pack that did not have it, why. */
static void describe_packing(const saemon_encoder *enc, const plan_set *set, char *buf, size_t len)
{
    const saemon_dict *d = enc->dict;
    const double mapped = packed_mib(enc, set, true), own = packed_mib(enc, set, false);
    if (mapped > 0 && own == 0) {
        snprintf(buf, len, "%.1f MiB packed for %s, used in place from the pack (mapped, shared)", mapped,
                 enc->kernel->name);
        return;
    }
    int at = snprintf(buf, len, "%.1f MiB packed at load", own);
    if (set->n_slices && set->slices[0].in_rows) {
        snprintf(buf + at, len - (size_t)at, ", in place behind the dictionary's rows (the fp32 rows held once)");
        return;
    }
    if (!d->map || at < 0 || (size_t)at >= len)
        return;
    if (mapped > 0) {
        snprintf(buf + at, len - (size_t)at, " (%.1f MiB used in place from the pack)", mapped);
        return;
    }
    if (d->n_packed == 0) {
        snprintf(buf + at, len - (size_t)at,
                 ": the pack stores no kernel's packed form (written without --kernels, or an older pack)");
        return;
    }
    at += snprintf(buf + at, len - (size_t)at, ": the pack stores no packed form for %s (layout %u) in %zu slice%s; it has",
                   enc->kernel->name, enc->kernel->packed_layout, set->n_slices, set->n_slices == 1 ? "" : "s");
    for (size_t i = 0; i < d->n_packed && at > 0 && (size_t)at < len; i++)
        at += snprintf(buf + at, len - (size_t)at, "%s %s (layout %u, latents %zu..%zu)", i ? "," : "",
                       d->packed[i].kernel, d->packed[i].layout, d->packed[i].index_base,
                       d->packed[i].index_base + d->packed[i].d_sae - 1);
}

saemon_status plan_set_full(saemon_encoder *enc, plan_set **out, saemon_error *err)
{
    *out = NULL;
    long long gone = missing_row(enc->dict, NULL, enc->plan.d_sae);
    if (gone >= 0)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "every latent is needed (%s) but the dictionary holds only %zu of its %zu latents "
                                "(latent %lld is not loaded); expected the dictionary opened whole",
                                enc->full_why[0] ? enc->full_why : "the full plan", enc->dict->n_rows,
                                enc->plan.d_sae, gone);
    for (size_t j = 0; j < enc->plan.d_sae; j++)
        encoder_fold_latent(enc, j); /* a no-op for latents folded at create */
    plan_set *set = calloc(1, sizeof *set);
    if (set)
        set->whole = enc->plan, set->dict = enc->dict;
    if (!set || !split(set, enc->n_slices)) {
        plan_set_free(set);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for the encoder plan");
    }
    saemon_status st = pack(enc, set, true, enc->max_batch * row_capacity(&enc->plan), err);
    if (st != SAEMON_OK) {
        plan_set_free(set);
        return st;
    }
    char how[256];
    describe_packing(enc, set, how, sizeof how);
    snprintf(set->describe, sizeof set->describe, "every latent (%zu): %s; %s", enc->plan.d_sae, enc->full_why, how);
    *out = set;
    return SAEMON_OK;
}

static int by_index(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static float *gather(const float *src, const uint32_t *map, size_t n, bool *ok)
{
    if (!src)
        return NULL;
    float *dst = saemon_aligned_alloc((n ? n : 1) * sizeof(float));
    if (!dst) {
        *ok = false;
        return NULL;
    }
    for (size_t j = 0; j < n; j++)
        dst[j] = src[map[j]];
    return dst;
}

/* Subsets up to this size skip the screen (below) on batches; single rows
 * on a vpdpbusd screen are screened anyway (encoder.c, screen_one_row). An
 * estimate, not a measured crossover: x's quantisation (now vectorised) and
 * the screen against ~d_in/16 FMAs per fp32 latent that read each row once
 * for several rows. Measured on the Zen 5 VM with the VNNI kernel (noisy,
 * docs/benchmarks.md): at batch 256 the fp32 path wins at 64 latents and the
 * screen at 256. */
#define SUBSET_FP32_MAX_LATENTS 512

saemon_status plan_set_subset(saemon_encoder *enc, const uint32_t *latents, size_t n, bool on_workers,
                              plan_set **out, saemon_error *err)
{
    *out = NULL;
    const size_t d_sae = enc->plan.d_sae;
    if (enc->plan.epilogue == SAEMON_EPI_TOPK)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "a subset plan cannot be exact for a TopK dictionary (the top k needs every "
                                "pre-activation); expected encode mode all or auto");
    if (n && !latents)
        return saemon_error_set(err, SAEMON_ERR_ARG, "subset plan: %zu latents but no array", n);
    for (size_t i = 0; i < n; i++)
        if (latents[i] >= d_sae)
            return saemon_error_set(err, SAEMON_ERR_ARG,
                                    "subset plan: latent %u is out of range; expected an index < d_sae %zu",
                                    latents[i], d_sae);
    plan_set *set = calloc(1, sizeof *set);
    uint32_t *map = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!set || !map) {
        free(set);
        free(map);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for the subset plan");
    }
    if (n)
        memcpy(map, latents, n * sizeof(uint32_t));
    qsort(map, n, sizeof(uint32_t), by_index);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || map[u - 1] != map[i])
            map[u++] = map[i];
    set->map = map;
    set->dict = enc->dict;
    long long gone = missing_row(enc->dict, map, u);
    if (gone >= 0) {
        plan_set_free(set);
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "subset plan: latent %lld is not loaded in the dictionary (it was opened for a "
                                "subset); expected saemon_dict_add_latents first",
                                gone);
    }
    for (size_t i = 0; i < u; i++)
        encoder_fold_latent(enc, map[i]); /* rows read since the encoder was created */
    const saemon_kernel_plan *p = &enc->plan;
    bool ok = true;
    set->own[0] = gather(p->bias, map, u, &ok);
    set->own[1] = gather(p->threshold, map, u, &ok);
    set->own[2] = gather(p->mag_scale, map, u, &ok);
    set->own[3] = gather(p->mag_bias, map, u, &ok);
    set->whole = *p;
    set->whole.d_sae = u;
    set->whole.index_base = 0;
    set->whole.bias = set->own[0];
    set->whole.threshold = set->own[1];
    set->whole.mag_scale = set->own[2];
    set->whole.mag_bias = set->own[3];
    /* A few watched latents: computing each one exactly in fp32 costs less
     * than quantising x and screening (the fp32 path reads each weight row
     * once for several rows of a batch), and a screened
     * kernel's fp32 path (SAEMON_PLAN_NO_SCREEN) gives bit for bit its
     * screened output (tests/checkkernels/screen-bitexact.c), so alerts stay
     * identical to --encode all's. */
    if (enc->kernel->screened && u <= SUBSET_FP32_MAX_LATENTS)
        set->whole.flags |= SAEMON_PLAN_NO_SCREEN;
    if (!ok || !split(set, enc->n_slices)) {
        plan_set_free(set);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for the subset plan");
    }
    size_t full_cap = row_capacity(&enc->plan);
    saemon_status st = pack(enc, set, on_workers, enc->max_batch * u + enc->full_rows_cap * full_cap, err);
    if (st != SAEMON_OK) {
        plan_set_free(set);
        return st;
    }
    int at = snprintf(set->describe, sizeof set->describe, "subset of %zu of %zu latents (exact for %s)", u, d_sae,
                      saemon_arch_name(enc->dict->info.arch));
    if (enc->full_every && at > 0 && (size_t)at < sizeof set->describe)
        at += snprintf(set->describe + at, sizeof set->describe - (size_t)at, "; every latent on 1 row in %zu",
                       enc->full_every);
    if (at > 0 && (size_t)at < sizeof set->describe)
        at += snprintf(set->describe + at, sizeof set->describe - (size_t)at, "; %.2f MiB packed", packed_mib(enc, set, false));
    if (enc->full && at > 0 && (size_t)at < sizeof set->describe)
        snprintf(set->describe + at, sizeof set->describe - (size_t)at,
                 " + the full plan kept for `every:`/capture, %.1f MiB packed (%.1f MiB of it mapped)",
                 packed_mib(enc, enc->full, false) + packed_mib(enc, enc->full, true), packed_mib(enc, enc->full, true));
    *out = set;
    return SAEMON_OK;
}

void plan_set_free(plan_set *set)
{
    if (!set)
        return;
    for (size_t s = 0; set->slices && s < set->n_slices; s++) {
        if (set->slices[s].in_rows)
            __atomic_store_n(&((saemon_dict *)set->dict)->rows_tail_taken, 0, __ATOMIC_RELEASE);
        else if (!set->slices[s].mapped)
            free(set->slices[s].packed);
        free(set->slices[s].scratch);
        free(set->slices[s].index);
        free(set->slices[s].value);
        free(set->slices[s].count);
    }
    free(set->slices);
    if (!set->csr_aliases) {
        free(set->csr_index);
        free(set->csr_value);
    }
    free(set->map);
    for (size_t i = 0; i < 4; i++)
        free(set->own[i]);
    free(set);
}
