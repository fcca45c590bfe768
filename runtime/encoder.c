/* The encoder: preprocessing, one kernel variant chosen at creation, the
 * latents split into contiguous slices (one per pinned thread), and the
 * merge of the slices' per-row slots into CSR. Every buffer is sized at
 * creation for max_batch rows; encoding allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "kernels/kernel.h"
#include "runtime/dict_internal.h"
#include "runtime/preprocess.h"
#include "runtime/topology.h"
#include "runtime/workers.h"
#include "saemon/encoder.h"

#define DEFAULT_MAX_BATCH 256
#define DEFAULT_SPIN_US 200
#define MAX_THREADS 256
#define SLICE_ALIGN 64 /* slice bounds on 64-latent boundaries: whole SIMD panels */

typedef struct slice {
    saemon_kernel_plan plan; /* arrays offset to the slice, index_base = first latent */
    size_t cap;              /* slots per row */
    void *packed, *scratch;
    uint32_t *index, *count;
    float *value;
} slice;

struct saemon_encoder {
    const saemon_dict *dict;
    const saemon_kernel *kernel;
    saemon_kernel_plan plan; /* the whole dictionary */
    size_t max_batch;
    float *threshold, *mag_scale, *bias, *mag_bias; /* owned epilogue arrays, [d_sae] */
    size_t n_slices;
    slice *slices;
    saemon_topology *topo;
    saemon_workers *workers;
    unsigned pus[MAX_THREADS];
    int bound[MAX_THREADS];
    char warning[256];
    /* the current job */
    const float *job_x;
    size_t job_n;
    /* results */
    float *x; /* preprocessed rows, [max_batch][d_in] */
    uint32_t *index; /* CSR (aliases slice 0's slots when there is one slice) */
    float *value;
    saemon_topk_entry *heap; /* TopK merge across slices */
    size_t *offsets;
    float *input_norm;
    bool *nonfinite;
    double *row_shift, *row_scale; /* per-row normalisation, for decoding */
    float *recon_error;            /* NULL unless reconstruction was asked for */
    double *decoded;               /* [d_in] scratch for one decoded row */
    saemon_features features;
};

/* (x − b_dec)·W_j = x·W_j − b_dec·W_j: the b_dec term is a per-latent
 * constant, computed once in double and folded into the biases, so the input
 * row is used exactly as given instead of being rounded after a subtraction. */
static saemon_status fold_b_dec(saemon_encoder *enc, saemon_error *err)
{
    const saemon_dict *d = enc->dict;
    const size_t n = d->info.d_sae, d_in = d->info.d_in;
    saemon_kernel_plan *p = &enc->plan;
    if (!(enc->bias = saemon_aligned_alloc(n * sizeof(float))))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for biases");
    if (p->mag_bias && !(enc->mag_bias = saemon_aligned_alloc(n * sizeof(float))))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for biases");
    for (size_t j = 0; j < n; j++) {
        double bw = 0.0;
        if (d->info.apply_b_dec_to_input)
            for (size_t i = 0; i < d_in; i++)
                bw += (double)d->b_dec[i] * d->W_enc_rows[j * d_in + i];
        enc->bias[j] = (float)((double)p->bias[j] - bw);
        if (enc->mag_bias)
            enc->mag_bias[j] = (float)((double)p->mag_bias[j] - (double)p->mag_scale[j] * bw);
    }
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
    case SAEMON_ARCH_STANDARD:
    case SAEMON_ARCH_JUMPRELU:
        p->epilogue = SAEMON_EPI_THRESHOLD;
        p->bias = d->b_enc;
        if (!(enc->threshold = saemon_aligned_alloc(n * sizeof(float))))
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for thresholds");
        /* ReLU(h)·[h > θ] is active exactly when h > max(θ, 0). */
        for (size_t j = 0; j < n; j++)
            enc->threshold[j] = info->arch == SAEMON_ARCH_JUMPRELU ? fmaxf(d->threshold[j], 0.0f) : 0.0f;
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

/* Allocate and pack one slice. Runs on the thread that will encode it, so
 * its packed weights are first touched on that core's NUMA node. */
static void setup_slice_job(void *ctx, size_t part)
{
    saemon_encoder *enc = ctx;
    slice *s = &enc->slices[part];
    if (s->plan.d_sae == 0)
        return;
    const size_t slots = enc->max_batch * s->cap;
    size_t scratch = enc->kernel->scratch_size(&s->plan, enc->max_batch);
    s->packed = saemon_aligned_alloc(enc->kernel->packed_size(&s->plan));
    s->scratch = scratch ? saemon_aligned_alloc(scratch) : NULL;
    s->index = malloc(slots * sizeof(uint32_t));
    s->value = malloc(slots * sizeof(float));
    s->count = malloc(enc->max_batch * sizeof(uint32_t));
    if (!s->packed || (scratch && !s->scratch) || !s->index || !s->value || !s->count)
        return; /* checked by the creator */
    const float *rows = enc->dict->W_enc_rows + (size_t)s->plan.index_base * enc->plan.d_in;
    enc->kernel->pack(&s->plan, rows, s->packed);
}

static void encode_slice_job(void *ctx, size_t part)
{
    saemon_encoder *enc = ctx;
    slice *s = &enc->slices[part];
    if (s->plan.d_sae == 0)
        return;
    saemon_kernel_out out = {.row_capacity = s->cap, .index = s->index, .value = s->value, .count = s->count};
    enc->kernel->encode(&s->plan, s->packed, enc->x, enc->job_n, &out, s->scratch);
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
    saemon_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    enc->dict = dict;
    enc->kernel = kernel;
    enc->max_batch = opts && opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    saemon_status st = plan_for_dict(enc, err);
    if (st == SAEMON_OK)
        st = choose_placement(enc, opts, err);
    if (st != SAEMON_OK) {
        saemon_encoder_destroy(enc);
        return st;
    }
    const size_t d_in = dict->info.d_in, d_sae = dict->info.d_sae, nb = enc->max_batch;
    const size_t cap = row_capacity(&enc->plan);
    size_t slots;
    if (__builtin_mul_overflow(nb, cap, &slots) || slots > SIZE_MAX / 8 || nb > SIZE_MAX / (d_in ? d_in : 1) / 4) {
        saemon_encoder_destroy(enc);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "max_batch %zu × %zu latents overflows", nb, cap);
    }
    enc->slices = calloc(enc->n_slices, sizeof(slice));
    enc->x = saemon_aligned_alloc(nb * d_in * sizeof(float));
    enc->offsets = malloc((nb + 1) * sizeof(size_t));
    enc->input_norm = malloc(nb * sizeof(float));
    enc->nonfinite = malloc(nb * sizeof(bool));
    enc->row_shift = malloc(nb * sizeof(double));
    enc->row_scale = malloc(nb * sizeof(double));
    if (opts && opts->reconstruction) {
        enc->recon_error = malloc(nb * sizeof(float));
        enc->decoded = malloc(d_in * sizeof(double));
    }
    if (!enc->slices || !enc->x || !enc->offsets || !enc->input_norm || !enc->nonfinite || !enc->row_shift ||
        !enc->row_scale || (opts && opts->reconstruction && (!enc->recon_error || !enc->decoded))) {
        saemon_encoder_destroy(enc);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for encoder buffers (max_batch %zu)", nb);
    }
    for (size_t s = 0; s < enc->n_slices; s++) {
        size_t j0 = (d_sae * s / enc->n_slices + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
        size_t j1 = (d_sae * (s + 1) / enc->n_slices + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
        j0 = j0 < d_sae ? j0 : d_sae;
        j1 = s + 1 == enc->n_slices || j1 > d_sae ? d_sae : j1;
        enc->slices[s].plan = slice_plan(&enc->plan, j0, j1);
        enc->slices[s].cap = row_capacity(&enc->slices[s].plan);
    }
    if (enc->n_slices > 1) {
        st = saemon_workers_start(enc->n_slices, enc->topo, enc->pus, opts->spin_us ? opts->spin_us : DEFAULT_SPIN_US,
                                  &enc->workers, err);
        if (st != SAEMON_OK) {
            saemon_encoder_destroy(enc);
            return st;
        }
        for (size_t s = 1; s < enc->n_slices; s++)
            enc->bound[s] = opts->no_pin ? -1 : saemon_workers_binding(enc->workers, s);
        saemon_workers_run(enc->workers, setup_slice_job, enc);
        enc->index = malloc(slots * sizeof(uint32_t));
        enc->value = malloc(slots * sizeof(float));
        enc->heap = enc->plan.epilogue == SAEMON_EPI_TOPK ? malloc(cap * sizeof(saemon_topk_entry) + 1) : NULL;
        if (!enc->index || !enc->value || (enc->plan.epilogue == SAEMON_EPI_TOPK && !enc->heap)) {
            saemon_encoder_destroy(enc);
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for merge buffers");
        }
    } else {
        setup_slice_job(enc, 0);
        enc->index = enc->slices[0].index;
        enc->value = enc->slices[0].value;
    }
    for (size_t s = 0; s < enc->n_slices; s++) {
        slice *sl = &enc->slices[s];
        if (sl->plan.d_sae && (!sl->packed || !sl->index || !sl->value || !sl->count)) {
            saemon_encoder_destroy(enc);
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory packing weights for slice %zu", s);
        }
    }
    *out = enc;
    return SAEMON_OK;
}

/* One slice: compact its row slots towards the front (rows only move left). */
static size_t compact_single(saemon_encoder *enc, size_t n)
{
    const slice *s = &enc->slices[0];
    size_t at = 0;
    for (size_t r = 0; r < n; r++) {
        enc->offsets[r] = at;
        uint32_t c = s->plan.d_sae ? s->count[r] : 0;
        if (at != r * s->cap && c) {
            memmove(enc->index + at, enc->index + r * s->cap, c * sizeof(uint32_t));
            memmove(enc->value + at, enc->value + r * s->cap, c * sizeof(float));
        }
        at += c;
    }
    return at;
}

/* Several slices: concatenate in slice order (indices stay ascending), or for
 * TopK keep the k best of the slices' candidates. A latent in the global top
 * k is in its own slice's top k, and both use the same tie rule. */
static size_t merge_slices(saemon_encoder *enc, size_t n)
{
    const int topk = enc->plan.epilogue == SAEMON_EPI_TOPK;
    size_t at = 0;
    for (size_t r = 0; r < n; r++) {
        enc->offsets[r] = at;
        size_t heap_size = 0;
        for (size_t si = 0; si < enc->n_slices; si++) {
            const slice *s = &enc->slices[si];
            if (s->plan.d_sae == 0)
                continue;
            const uint32_t *ix = s->index + r * s->cap;
            const float *v = s->value + r * s->cap;
            if (topk) {
                for (uint32_t e = 0; e < s->count[r]; e++)
                    saemon_topk_push(enc->heap, &heap_size, enc->plan.k, v[e], ix[e]);
            } else {
                memcpy(enc->index + at, ix, s->count[r] * sizeof(uint32_t));
                memcpy(enc->value + at, v, s->count[r] * sizeof(float));
                at += s->count[r];
            }
        }
        if (topk)
            at += saemon_topk_emit(enc->heap, heap_size, enc->index + at, enc->value + at);
    }
    return at;
}

/* ||x − x̂|| / ||x|| for row r: x̂ = Σ_j f_j·W_dec[j] + b_dec (SAELens decode,
 * a gather-axpy over the active features only), then the normalisation undone
 * (x = x'/scale + shift). TopK's decoder-norm rescale divides the features
 * back first, as SAELens' decode does. */
static float reconstruction_error(saemon_encoder *enc, const float *x, size_t r)
{
    const saemon_dict *d = enc->dict;
    const size_t d_in = d->info.d_in;
    double *y = enc->decoded;
    for (size_t i = 0; i < d_in; i++)
        y[i] = d->b_dec[i];
    const int unscale = d->info.arch == SAEMON_ARCH_TOPK && enc->plan.mag_scale;
    for (size_t e = enc->offsets[r]; e < enc->offsets[r + 1]; e++) {
        const uint32_t j = enc->index[e];
        const double f = unscale ? (double)enc->value[e] / enc->plan.mag_scale[j] : enc->value[e];
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

saemon_status saemon_encoder_encode(saemon_encoder *enc, const float *x, size_t n,
                                    const saemon_features **out, saemon_error *err)
{
    if (n > enc->max_batch)
        return saemon_error_set(err, SAEMON_ERR_ARG, "batch of %zu rows exceeds max_batch %zu", n,
                                enc->max_batch);
    const saemon_dict_info *info = &enc->dict->info;
    const size_t d_in = info->d_in;
    for (size_t r = 0; r < n; r++) {
        /* b_dec is folded into the biases (fold_b_dec). */
        saemon_row_stats st = saemon_preprocess_row(x + r * d_in, enc->x + r * d_in, d_in, info->norm);
        enc->input_norm[r] = st.input_norm;
        enc->nonfinite[r] = st.nonfinite;
        enc->row_shift[r] = st.shift;
        enc->row_scale[r] = st.scale;
    }
    enc->job_n = n;
    if (n) {
        if (enc->workers)
            saemon_workers_run(enc->workers, encode_slice_job, enc);
        else
            encode_slice_job(enc, 0);
    }
    enc->offsets[n] = enc->n_slices > 1 ? merge_slices(enc, n) : compact_single(enc, n);
    if (enc->recon_error)
        for (size_t r = 0; r < n; r++)
            enc->recon_error[r] = reconstruction_error(enc, x + r * d_in, r);
    enc->features = (saemon_features){.n_tokens = n, .offsets = enc->offsets, .index = enc->index,
                                      .value = enc->value, .input_norm = enc->input_norm,
                                      .input_nonfinite = enc->nonfinite, .recon_error = enc->recon_error};
    *out = &enc->features;
    return SAEMON_OK;
}

const char *saemon_encoder_variant(const saemon_encoder *enc) { return enc->kernel->name; }
size_t saemon_encoder_max_batch(const saemon_encoder *enc) { return enc->max_batch; }
size_t saemon_encoder_threads(const saemon_encoder *enc) { return enc->n_slices; }
const char *saemon_encoder_warning(const saemon_encoder *enc) { return enc->warning; }

int saemon_encoder_thread_cpu(const saemon_encoder *enc, size_t slice)
{
    return slice < enc->n_slices && slice < MAX_THREADS ? enc->bound[slice] : -1;
}

void saemon_encoder_destroy(saemon_encoder *enc)
{
    if (!enc)
        return;
    saemon_workers_stop(enc->workers);
    if (enc->slices) {
        if (enc->n_slices > 1) {
            free(enc->index);
            free(enc->value);
        }
        for (size_t s = 0; s < enc->n_slices; s++) {
            free(enc->slices[s].packed);
            free(enc->slices[s].scratch);
            free(enc->slices[s].index);
            free(enc->slices[s].value);
            free(enc->slices[s].count);
        }
        free(enc->slices);
    }
    saemon_topology_destroy(enc->topo);
    free(enc->heap);
    free(enc->threshold);
    free(enc->mag_scale);
    free(enc->bias);
    free(enc->mag_bias);
    free(enc->x);
    free(enc->offsets);
    free(enc->input_norm);
    free(enc->nonfinite);
    free(enc->row_shift);
    free(enc->row_scale);
    free(enc->recon_error);
    free(enc->decoded);
    free(enc);
}
