/* The encoder: preprocessing, one kernel variant chosen at creation, the
 * latents split into contiguous slices (one per pinned thread), the plan in
 * use (every latent, or a packed subset: encoder_plan.c) and the merge of the
 * slices' per-row slots into CSR. Every buffer is sized at creation for
 * max_batch rows; encoding allocates nothing. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "runtime/encoder_internal.h"
#include "runtime/preprocess.h"
#include "runtime/probe_sigmoid.h"

#define DEFAULT_MAX_BATCH 256
#define DEFAULT_SPIN_US 200

/* (x − b_dec)·W_j = x·W_j − b_dec·W_j: the b_dec term is a per-latent
 * constant, computed once in double and folded into the biases, so the input
 * row is used exactly as given instead of being rounded after a subtraction.
 * Only for latents whose row the dictionary holds; a row read later (a
 * reload's new latents) is folded when a plan first uses it. */
void encoder_fold_latent(saemon_encoder *enc, size_t j)
{
    const saemon_dict *d = enc->dict;
    const float *w = dict_row(d, j);
    if (!w || enc->folded[j])
        return;
    const float *bias = enc->raw_bias, *mag_bias = enc->raw_mag_bias;
    const double bw = d->info.apply_b_dec_to_input ? dict_b_dec_dot(d, w, j) : 0.0;
    enc->bias[j] = (float)((double)bias[j] - bw);
    if (enc->mag_bias)
        enc->mag_bias[j] = (float)((double)mag_bias[j] - (double)enc->plan.mag_scale[j] * bw);
    enc->folded[j] = 1;
}

static saemon_status fold_b_dec(saemon_encoder *enc, saemon_error *err)
{
    const size_t n = enc->dict->info.d_sae;
    saemon_kernel_plan *p = &enc->plan;
    if (!(enc->bias = saemon_aligned_alloc(n * sizeof(float))) || !(enc->folded = calloc(n, 1)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for biases");
    if (p->mag_bias && !(enc->mag_bias = saemon_aligned_alloc(n * sizeof(float))))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for biases");
    enc->raw_bias = p->bias;
    enc->raw_mag_bias = p->mag_bias;
    memcpy(enc->bias, p->bias, n * sizeof(float));
    if (enc->mag_bias)
        memcpy(enc->mag_bias, p->mag_bias, n * sizeof(float));
    /* A pack's rows are mapped: folding every latent here would fault in
     * every row of a multi-GiB file for a subset plan; plans fold the
     * latents they use (plan_set_full, plan_set_subset). */
    for (size_t j = 0; j < n && !enc->dict->map; j++)
        encoder_fold_latent(enc, j);
    p->bias = enc->bias;
    if (enc->mag_bias)
        p->mag_bias = enc->mag_bias;
    return SAEMON_OK;
}

static saemon_status plan_for_dict(saemon_encoder *enc, saemon_error *err)
{
    const saemon_dict *d = enc->dict;
    const saemon_dict_info *info = &d->info;
    saemon_kernel_plan *p = &enc->plan;
    size_t n = info->d_sae;
    p->d_in = info->d_in;
    p->d_sae = n;
    switch (info->arch) {
    case SAEMON_ARCH_PROBE_SIGMOID:
    case SAEMON_ARCH_PROBE_IDENTITY:
    case SAEMON_ARCH_STANDARD:
    case SAEMON_ARCH_JUMPRELU:
        p->epilogue = SAEMON_EPI_THRESHOLD;
        p->bias = d->b_enc;
        if (!(enc->threshold = saemon_aligned_alloc(n * sizeof(float))))
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for thresholds");
        /* ReLU(h)·[h > θ] is active exactly when h > max(θ, 0). */
        for (size_t j = 0; j < n; j++)
            enc->threshold[j] = info->arch == SAEMON_ARCH_JUMPRELU ? fmaxf(d->threshold[j], 0.0f) : 0.0f;
        /* a sigmoid probe reports every score: every pre-activation passes */
        for (size_t j = 0; info->arch == SAEMON_ARCH_PROBE_SIGMOID && j < n; j++)
            enc->threshold[j] = -FLT_MAX;
        p->threshold = enc->threshold;
        break;
    case SAEMON_ARCH_GATED:
        p->epilogue = SAEMON_EPI_GATED;
        p->bias = d->b_gate;
        p->mag_bias = d->b_mag;
        if (!(enc->mag_scale = saemon_aligned_alloc(n * sizeof(float))))
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for gated scales");
        for (size_t j = 0; j < n; j++)
            enc->mag_scale[j] = (float)exp((double)d->r_mag[j]);
        p->mag_scale = enc->mag_scale;
        break;
    case SAEMON_ARCH_TOPK:
        p->epilogue = SAEMON_EPI_TOPK;
        p->bias = d->b_enc;
        p->k = info->k;
        if (info->rescale_acts_by_decoder_norm) {
            if (!(enc->mag_scale = saemon_aligned_alloc(n * sizeof(float))))
                return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for decoder norms");
            for (size_t j = 0; j < n; j++) {
                double s = 0.0;
                for (size_t i = 0; i < info->d_in; i++)
                    s += (double)d->W_dec[j * info->d_in + i] * d->W_dec[j * info->d_in + i];
                enc->mag_scale[j] = (float)sqrt(s);
            }
            p->mag_scale = enc->mag_scale;
        }
        break;
    }
    return fold_b_dec(enc, err);
}

static saemon_status choose_placement(saemon_encoder *enc, const saemon_encoder_options *o, saemon_error *err)
{
    size_t want = o ? o->threads : 0;
    for (size_t i = 0; i < MAX_THREADS; i++)
        enc->bound[i] = -1;
    if (want == 0) {
        enc->n_slices = 1;
        return SAEMON_OK;
    }
    if (want > MAX_THREADS)
        want = MAX_THREADS;
    saemon_status st = saemon_topology_create(&enc->topo, err);
    if (st != SAEMON_OK)
        return st;
    size_t n = saemon_topology_choose(enc->topo, o->cpus, o->exclude_cpus, want, enc->pus, MAX_THREADS,
                                      enc->warning, sizeof enc->warning, err);
    if (n == 0)
        return err ? err->code : SAEMON_ERR_ARG;
    enc->n_slices = n;
    if (!o->no_pin) {
        if ((st = saemon_topology_bind_thread(enc->topo, enc->pus[0], err)) != SAEMON_OK)
            return st;
        enc->bound[0] = saemon_topology_thread_binding(enc->topo);
    }
    return SAEMON_OK;
}

/* Which plan creation builds: the subset when asked for and exact, else the
 * full one with the reason in enc->full_why. */
static saemon_status choose_plan(saemon_encoder *enc, const saemon_encoder_options *o, bool *subset,
                                 saemon_error *err)
{
    const saemon_encode_mode mode = o ? o->encode : SAEMON_ENCODE_ALL;
    const char *why = NULL;
    *subset = false;
    if (mode != SAEMON_ENCODE_ALL && mode != SAEMON_ENCODE_AUTO && mode != SAEMON_ENCODE_RULES)
        return saemon_error_set(err, SAEMON_ERR_ARG, "unknown encode mode %d", (int)mode);
    if (mode == SAEMON_ENCODE_ALL)
        why = "encode mode 'all'";
    else if (enc->plan.epilogue == SAEMON_EPI_TOPK)
        why = "TopK needs every pre-activation (no subset is exact)";
    else if (o->full_reason)
        why = o->full_reason;
    else if (o->reconstruction && !o->full_every)
        why = "the reconstruction error needs every latent";
    else if (!o->latents && o->n_latents == 0)
        why = "no latent list given";
    if (why && mode == SAEMON_ENCODE_RULES)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "encode mode 'rules' asks for a subset plan but %s; expected encode mode "
                                "'auto' or 'all'", why);
    snprintf(enc->full_why, sizeof enc->full_why, "%s", why ? why : "");
    *subset = why == NULL;
    return SAEMON_OK;
}

static saemon_status create_buffers(saemon_encoder *enc, const saemon_encoder_options *opts, saemon_error *err)
{
    const size_t d_in = enc->dict->info.d_in, nb = enc->max_batch;
    size_t slots, cap = enc->plan.epilogue == SAEMON_EPI_TOPK && enc->plan.k < enc->plan.d_sae ? enc->plan.k
                                                                                                : enc->plan.d_sae;
    if (__builtin_mul_overflow(nb, cap, &slots) || slots > SIZE_MAX / 8 || nb > SIZE_MAX / (d_in ? d_in : 1) / 4)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "max_batch %zu × %zu latents overflows", nb, cap);
    enc->x = saemon_aligned_alloc(nb * d_in * sizeof(float));
    enc->offsets = malloc((nb + 1) * sizeof(size_t));
    enc->input_norm = malloc(nb * sizeof(float));
    enc->nonfinite = malloc(nb * sizeof(bool));
    enc->row_shift = malloc(nb * sizeof(double));
    enc->row_scale = malloc(nb * sizeof(double));
    enc->row_full = malloc(nb * sizeof(bool));
    enc->row_subset = malloc(nb * sizeof(bool));
    bool ok = enc->x && enc->offsets && enc->input_norm && enc->nonfinite && enc->row_shift && enc->row_scale &&
              enc->row_full && enc->row_subset;
    if (enc->full_rows_cap)
        ok = ok && (enc->x_full = saemon_aligned_alloc(enc->full_rows_cap * d_in * sizeof(float)));
    if (opts && opts->reconstruction) {
        enc->recon_error = malloc(nb * sizeof(float));
        enc->decoded = malloc(d_in * sizeof(double));
        ok = ok && enc->recon_error && enc->decoded;
    }
    if (enc->plan.epilogue == SAEMON_EPI_TOPK)
        ok = ok && (enc->heap = malloc((cap + 1) * sizeof(saemon_topk_entry)));
    if (!ok)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for encoder buffers (max_batch %zu)", nb);
    return SAEMON_OK;
}

saemon_status saemon_encoder_create(const saemon_dict *dict, const saemon_encoder_options *opts,
                                    saemon_encoder **out, saemon_error *err)
{
    *out = NULL;
    if (!dict)
        return saemon_error_set(err, SAEMON_ERR_ARG, "no dictionary given");
    /* Every kernel's "same result as the reference", and the screened
     * kernels' bound, assume IEEE round-to-nearest (kernels/kernel.h). */
    if (!saemon_kernels_rounding_ok())
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "the floating-point rounding mode is not round-to-nearest (fesetround or MXCSR "
                                "was changed): saemon's kernels are only exact under it");
    const char *request = opts ? opts->variant : NULL;
    const saemon_kernel *kernel = saemon_kernel_select(request);
    if (!kernel) {
        const char *asked = request && *request ? request : getenv("SAEMON_ISA");
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "no kernel variant '%s' runs on this CPU (see `saemon inspect --kernels`)",
                                asked ? asked : "(any)");
    }
    if (opts && opts->reconstruction && !dict->W_dec)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "the reconstruction error needs W_dec, but the dictionary was opened without it "
                                "(saemon_dict_load_options.no_decoder)");
    saemon_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    enc->dict = dict;
    enc->kernel = kernel;
    enc->max_batch = opts && opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    enc->screen_one_row = kernel->screened && (kernel->cpu_features & SAEMON_CPU_AVX512VNNI);
    bool subset = false;
    saemon_status st = plan_for_dict(enc, err);
    if (st == SAEMON_OK)
        st = choose_plan(enc, opts, &subset, err);
    if (st == SAEMON_OK) {
        enc->full_every = subset ? opts->full_every : 0;
        enc->full_rows_cap = enc->full_every ? (enc->max_batch + enc->full_every - 1) / enc->full_every : 0;
        st = choose_placement(enc, opts, err);
    }
    if (st == SAEMON_OK)
        st = create_buffers(enc, opts, err);
    if (st == SAEMON_OK && enc->n_slices > 1) {
        st = saemon_workers_start(enc->n_slices, enc->topo, enc->pus, opts->spin_us ? opts->spin_us : DEFAULT_SPIN_US,
                                  &enc->workers, err);
        for (size_t s = 1; st == SAEMON_OK && s < enc->n_slices; s++)
            enc->bound[s] = opts->no_pin ? -1 : saemon_workers_binding(enc->workers, s);
    }
    if (st == SAEMON_OK && (!subset || opts->keep_full || opts->full_every))
        st = plan_set_full(enc, &enc->full, err);
    if (st == SAEMON_OK && subset) {
        plan_set *sub = NULL;
        st = plan_set_subset(enc, opts->latents, opts->n_latents, true, &sub, err);
        atomic_init(&enc->cur, sub);
    } else {
        atomic_init(&enc->cur, enc->full);
    }
    if (st != SAEMON_OK) {
        saemon_encoder_destroy(enc);
        return st;
    }
    *out = enc;
    return SAEMON_OK;
}

saemon_status saemon_encoder_set_latents(saemon_encoder *enc, const uint32_t *latents, size_t n,
                                         saemon_error *err)
{
    plan_set_free(atomic_exchange(&enc->retired, NULL));
    plan_set *next = NULL;
    if (!latents && n == 0) {
        if (!enc->full)
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "this encoder keeps only a subset plan; expected an encoder created "
                                    "with keep_full to switch back to every latent");
        next = enc->full;
    } else {
        saemon_status st = plan_set_subset(enc, latents, n, false, &next, err);
        if (st != SAEMON_OK)
            return st;
    }
    plan_set *unused = atomic_exchange(&enc->pending, next);
    if (unused != enc->full)
        plan_set_free(unused); /* never installed */
    return SAEMON_OK;
}

/* Between batches, on the encoding thread: install the plan set_latents
 * prepared. The replaced one is freed by the next set_latents (off the hot
 * path) or by destroy. */
static void install_pending(saemon_encoder *enc)
{
    plan_set *next = atomic_exchange(&enc->pending, NULL);
    if (!next)
        return;
    plan_set *old = atomic_load_explicit(&enc->cur, memory_order_relaxed);
    atomic_store_explicit(&enc->cur, next, memory_order_release);
    if (old != enc->full && old != next)
        plan_set_free(atomic_exchange(&enc->retired, old));
}

/* Single rows of a subset plan are screened (screen_one_row) from this many
 * latents on: below, the fp32 path costs less than quantising x. Measured on
 * the Zen 5 VM (noisy): 1 latent 0.5 us fp32 against 1.2 us screened, 64
 * latents 1.9-2.3 against 1.4-1.8 us. */
#define SCREEN_ONE_ROW_MIN_LATENTS 32

static size_t set_latents(const plan_set *set) { return set->whole.d_sae; }

static void encode_slice_job(void *ctx, size_t part)
{
    saemon_encoder *enc = ctx;
    const slice *s = &enc->job_set->slices[part];
    if (s->plan.d_sae == 0)
        return;
    saemon_kernel_out out = {.row_capacity = s->cap, .index = s->index, .value = s->value, .count = s->count};
    const saemon_kernel_plan *plan = &s->plan;
    saemon_kernel_plan screened;
    if (enc->job_n == 1 && enc->screen_one_row && (plan->flags & SAEMON_PLAN_NO_SCREEN) &&
        set_latents(enc->job_set) >= SCREEN_ONE_ROW_MIN_LATENTS) {
        /* A small subset, one row, on a vpdpbusd screen: screening costs
         * less than the fp32 path (encoder_plan.c); the packed form serves
         * both, and both give the same bits. */
        screened = *plan;
        screened.flags &= ~(uint32_t)SAEMON_PLAN_NO_SCREEN;
        plan = &screened;
    }
    enc->kernel->encode(plan, s->packed, enc->job_x, enc->job_n, &out, s->scratch);
}

static void run_plan(saemon_encoder *enc, const plan_set *set, const float *x, size_t n)
{
    if (n == 0)
        return;
    enc->job_set = set;
    enc->job_x = x;
    enc->job_n = n;
    /* A small subset plan fills slice 0 alone (slices split on 64-latent
     * bounds): the workers are then not woken at all. */
    bool others = false;
    for (size_t s = 1; s < set->n_slices; s++)
        others = others || set->slices[s].plan.d_sae != 0;
    if (enc->workers && others)
        saemon_workers_run(enc->workers, encode_slice_job, enc);
    else
        encode_slice_job(enc, 0);
}

/* The full plan on one slice: compact its row slots towards the front
 * (rows only move left). */
static size_t compact_single(saemon_encoder *enc, const plan_set *set, size_t n)
{
    const slice *s = &set->slices[0];
    size_t at = 0;
    for (size_t r = 0; r < n; r++) {
        enc->offsets[r] = at;
        uint32_t c = s->plan.d_sae ? s->count[r] : 0;
        if (at != r * s->cap && c) {
            memmove(set->csr_index + at, set->csr_index + r * s->cap, c * sizeof(uint32_t));
            memmove(set->csr_value + at, set->csr_value + r * s->cap, c * sizeof(float));
        }
        at += c;
    }
    return at;
}

/* Row r of a plan's slices into CSR at index/value: concatenated in slice
 * order (positions mapped back to dictionary indices for a subset; both
 * stay ascending), or for TopK the k best of the slices' candidates. A
 * latent in the global top k is in its own slice's top k, and both use the
 * same tie rule. Returns the entries written. */
static size_t append_row(saemon_encoder *enc, const plan_set *set, size_t r, uint32_t *index, float *value)
{
    const int topk = set->whole.epilogue == SAEMON_EPI_TOPK;
    size_t at = 0, heap_size = 0;
    for (size_t si = 0; si < set->n_slices; si++) {
        const slice *s = &set->slices[si];
        if (s->plan.d_sae == 0)
            continue;
        const uint32_t *ix = s->index + r * s->cap;
        const float *v = s->value + r * s->cap;
        const uint32_t c = s->count[r];
        if (topk) {
            for (uint32_t e = 0; e < c; e++)
                saemon_topk_push(enc->heap, &heap_size, set->whole.k, v[e], ix[e]);
        } else if (set->map) {
            for (uint32_t e = 0; e < c; e++)
                index[at + e] = set->map[ix[e]];
            memcpy(value + at, v, c * sizeof(float));
            at += c;
        } else {
            memcpy(index + at, ix, c * sizeof(uint32_t));
            memcpy(value + at, v, c * sizeof(float));
            at += c;
        }
    }
    if (topk)
        at = saemon_topk_emit(enc->heap, heap_size, index, value);
    return at;
}

/* ||x − x̂|| / ||x|| for row r: x̂ = Σ_j f_j·W_dec[j] + b_dec (SAELens decode,
 * a gather-axpy over the active features only), then the normalisation undone
 * (x = x'/scale + shift). TopK's decoder-norm rescale divides the features
 * back first, as SAELens' decode does. */
static float reconstruction_error(saemon_encoder *enc, const float *x, size_t r, const uint32_t *index,
                                  const float *value)
{
    const saemon_dict *d = enc->dict;
    const size_t d_in = d->info.d_in;
    double *y = enc->decoded;
    for (size_t i = 0; i < d_in; i++)
        y[i] = d->b_dec[i];
    const int unscale = d->info.arch == SAEMON_ARCH_TOPK && enc->plan.mag_scale;
    for (size_t e = enc->offsets[r]; e < enc->offsets[r + 1]; e++) {
        const uint32_t j = index[e];
        const double f = unscale ? (double)value[e] / enc->plan.mag_scale[j] : value[e];
        const float *w = d->W_dec + (size_t)j * d_in;
        for (size_t i = 0; i < d_in; i++)
            y[i] += f * w[i];
    }
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < d_in; i++) {
        double xi = x[i], yi = y[i] / enc->row_scale[r] + enc->row_shift[r];
        err += (xi - yi) * (xi - yi);
        norm += xi * xi;
    }
    return (float)(sqrt(err) / sqrt(norm));
}

static saemon_status encode_with(saemon_encoder *enc, const plan_set *set, const float *x, size_t n,
                                 const saemon_features **out, saemon_error *err)
{
    const saemon_dict_info *info = &enc->dict->info;
    const size_t d_in = info->d_in;
    for (size_t r = 0; r < n; r++) {
        /* b_dec is folded into the biases (fold_b_dec). */
        saemon_row_stats st = saemon_preprocess_row(x + r * d_in, enc->x + r * d_in, d_in, info->norm,
                                                    enc->kernel->cpu_features);
        enc->input_norm[r] = st.input_norm;
        enc->nonfinite[r] = st.nonfinite;
        enc->row_shift[r] = st.shift;
        enc->row_scale[r] = st.scale;
    }
    /* A subset plan with full_every: the sampled rows also go through the
     * full plan, and their CSR rows come from it. */
    const bool is_subset = set->map != NULL;
    size_t n_full = 0;
    for (size_t r = 0; r < n; r++) {
        enc->row_full[r] = !is_subset || (enc->full_every && (enc->rows_seen + r) % enc->full_every == 0);
        if (is_subset && enc->row_full[r])
            memcpy(enc->x_full + n_full++ * d_in, enc->x + r * d_in, d_in * sizeof(float));
        enc->row_subset[r] = !enc->row_full[r];
    }
    if (set == atomic_load_explicit(&enc->cur, memory_order_relaxed))
        enc->rows_seen += n;
    run_plan(enc, set, enc->x, n);
    run_plan(enc, enc->full, enc->x_full, n_full);
    if (set->csr_aliases) {
        enc->offsets[n] = compact_single(enc, set, n);
    } else {
        size_t at = 0, k = 0;
        for (size_t r = 0; r < n; r++) {
            enc->offsets[r] = at;
            const plan_set *from = is_subset && enc->row_full[r] ? enc->full : set;
            at += append_row(enc, from, from == set ? r : k++, set->csr_index + at, set->csr_value + at);
        }
        enc->offsets[n] = at;
    }
    if (info->arch == SAEMON_ARCH_PROBE_SIGMOID)
        saemon_probe_sigmoid(set->csr_value, enc->offsets[n], enc->kernel->cpu_features);
    if (enc->recon_error)
        for (size_t r = 0; r < n; r++)
            enc->recon_error[r] = enc->row_full[r]
                                      ? reconstruction_error(enc, x + r * d_in, r, set->csr_index, set->csr_value)
                                      : NAN;
    enc->features = (saemon_features){.n_tokens = n, .offsets = enc->offsets, .index = set->csr_index,
                                      .value = set->csr_value, .input_norm = enc->input_norm,
                                      .input_nonfinite = enc->nonfinite, .recon_error = enc->recon_error,
                                      .subset = is_subset ? enc->row_subset : NULL};
    *out = &enc->features;
    (void)err;
    return SAEMON_OK;
}

saemon_status saemon_encoder_encode(saemon_encoder *enc, const float *x, size_t n,
                                    const saemon_features **out, saemon_error *err)
{
    if (n > enc->max_batch)
        return saemon_error_set(err, SAEMON_ERR_ARG, "batch of %zu rows exceeds max_batch %zu", n,
                                enc->max_batch);
    install_pending(enc);
    return encode_with(enc, atomic_load_explicit(&enc->cur, memory_order_relaxed), x, n, out, err);
}

saemon_status saemon_encoder_encode_full(saemon_encoder *enc, const float *x, size_t n,
                                         const saemon_features **out, saemon_error *err)
{
    if (n > enc->max_batch)
        return saemon_error_set(err, SAEMON_ERR_ARG, "batch of %zu rows exceeds max_batch %zu", n,
                                enc->max_batch);
    if (!enc->full)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "this encoder keeps only a subset plan; expected an encoder created with "
                                "keep_full for full encodes on demand");
    return encode_with(enc, enc->full, x, n, out, err);
}

/* The plan the next encode uses: a pending one if set_latents left one. */
static const plan_set *plan_in_effect(const saemon_encoder *enc)
{
    saemon_encoder *e = (saemon_encoder *)enc;
    const plan_set *p = atomic_load(&e->pending);
    return p ? p : atomic_load_explicit(&e->cur, memory_order_acquire);
}

bool saemon_encoder_is_subset(const saemon_encoder *enc) { return plan_in_effect(enc)->map != NULL; }
size_t saemon_encoder_get_latent_count(const saemon_encoder *enc) { return plan_in_effect(enc)->whole.d_sae; }
const char *saemon_encoder_get_plan(const saemon_encoder *enc) { return plan_in_effect(enc)->describe; }

const char *saemon_encoder_get_variant(const saemon_encoder *enc) { return enc->kernel->name; }
size_t saemon_encoder_get_max_batch(const saemon_encoder *enc) { return enc->max_batch; }
size_t saemon_encoder_get_threads(const saemon_encoder *enc) { return enc->n_slices; }
const char *saemon_encoder_get_warning(const saemon_encoder *enc) { return enc->warning; }

int saemon_encoder_get_thread_cpu(const saemon_encoder *enc, size_t slice)
{
    return slice < enc->n_slices && slice < MAX_THREADS ? enc->bound[slice] : -1;
}

void saemon_encoder_destroy(saemon_encoder *enc)
{
    if (!enc)
        return;
    saemon_workers_stop(enc->workers);
    plan_set *pending = atomic_exchange(&enc->pending, NULL);
    if (pending != enc->full)
        plan_set_free(pending);
    plan_set_free(atomic_exchange(&enc->retired, NULL));
    plan_set *cur = atomic_load(&enc->cur);
    if (cur != enc->full)
        plan_set_free(cur);
    plan_set_free(enc->full);
    saemon_topology_destroy(enc->topo);
    free(enc->heap);
    free(enc->threshold);
    free(enc->mag_scale);
    free(enc->bias);
    free(enc->folded);
    free(enc->mag_bias);
    free(enc->x);
    free(enc->x_full);
    free(enc->row_full);
    free(enc->row_subset);
    free(enc->offsets);
    free(enc->input_norm);
    free(enc->nonfinite);
    free(enc->row_shift);
    free(enc->row_scale);
    free(enc->recon_error);
    free(enc->decoded);
    free(enc);
}
