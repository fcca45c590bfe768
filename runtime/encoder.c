/* The encoder: preprocessing, one kernel variant chosen at creation, and the
 * compaction of the kernel's per-row slots into CSR. All buffers are sized at
 * creation for max_batch rows; encoding allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel.h"
#include "runtime/dict_internal.h"
#include "runtime/preprocess.h"
#include "saemon/encoder.h"

#define DEFAULT_MAX_BATCH 256

struct saemon_encoder {
    const saemon_dict *dict;
    const saemon_kernel *kernel;
    saemon_kernel_plan plan;
    size_t max_batch;
    float *threshold; /* owned epilogue arrays, [d_sae] */
    float *mag_scale;
    void *packed;
    void *scratch;
    float *x;         /* preprocessed rows, [max_batch][d_in] */
    uint32_t *index;  /* kernel slots, then CSR after compaction */
    float *value;
    uint32_t *count;
    size_t *offsets;
    float *input_norm;
    uint8_t *nonfinite;
    saemon_features features;
};

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
        enc->threshold = saemon_aligned_alloc(n * sizeof(float));
        if (!enc->threshold)
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
        enc->mag_scale = saemon_aligned_alloc(n * sizeof(float));
        if (!enc->mag_scale)
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
            enc->mag_scale = saemon_aligned_alloc(n * sizeof(float));
            if (!enc->mag_scale)
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
    return SAEMON_OK;
}

static size_t row_capacity(const saemon_kernel_plan *p)
{
    if (p->epilogue == SAEMON_EPI_TOPK)
        return p->k < p->d_sae ? p->k : p->d_sae;
    return p->d_sae;
}

saemon_status saemon_encoder_create(const saemon_dict *dict, const saemon_encoder_options *opts,
                                    saemon_encoder **out, saemon_error *err)
{
    *out = NULL;
    if (!dict)
        return saemon_error_set(err, SAEMON_ERR_ARG, "no dictionary given");
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
    if (st != SAEMON_OK) {
        saemon_encoder_destroy(enc);
        return st;
    }
    const size_t d_in = dict->info.d_in, nb = enc->max_batch;
    const size_t cap = row_capacity(&enc->plan);
    size_t slots;
    if (__builtin_mul_overflow(nb, cap, &slots) || slots > (SIZE_MAX / 8)) {
        saemon_encoder_destroy(enc);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "max_batch %zu × %zu latents overflows", nb, cap);
    }
    size_t scratch = kernel->scratch_size(&enc->plan, nb);
    enc->packed = saemon_aligned_alloc(kernel->packed_size(&enc->plan));
    enc->scratch = scratch ? saemon_aligned_alloc(scratch) : NULL;
    enc->x = saemon_aligned_alloc(nb * d_in * sizeof(float));
    enc->index = malloc((slots ? slots : 1) * sizeof(uint32_t));
    enc->value = malloc((slots ? slots : 1) * sizeof(float));
    enc->count = malloc(nb * sizeof(uint32_t));
    enc->offsets = malloc((nb + 1) * sizeof(size_t));
    enc->input_norm = malloc(nb * sizeof(float));
    enc->nonfinite = malloc(nb);
    if (!enc->packed || (scratch && !enc->scratch) || !enc->x || !enc->index || !enc->value ||
        !enc->count || !enc->offsets || !enc->input_norm || !enc->nonfinite) {
        saemon_encoder_destroy(enc);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for encoder buffers (max_batch %zu)", nb);
    }
    kernel->pack(&enc->plan, dict->W_enc_rows, enc->packed);
    *out = enc;
    return SAEMON_OK;
}

saemon_status saemon_encoder_encode(saemon_encoder *enc, const float *x, size_t n,
                                    const saemon_features **out, saemon_error *err)
{
    if (n > enc->max_batch)
        return saemon_error_set(err, SAEMON_ERR_ARG, "batch of %zu rows exceeds max_batch %zu", n,
                                enc->max_batch);
    const saemon_dict_info *info = &enc->dict->info;
    const size_t d_in = info->d_in;
    const float *b_dec = info->apply_b_dec_to_input ? enc->dict->b_dec : NULL;
    for (size_t r = 0; r < n; r++) {
        saemon_row_stats st =
            saemon_preprocess_row(x + r * d_in, enc->x + r * d_in, d_in, info->norm, b_dec);
        enc->input_norm[r] = st.input_norm;
        enc->nonfinite[r] = st.nonfinite;
    }
    const size_t cap = row_capacity(&enc->plan);
    saemon_kernel_out kout = {.row_capacity = cap, .index = enc->index, .value = enc->value,
                              .count = enc->count};
    if (n)
        enc->kernel->encode(&enc->plan, enc->packed, enc->x, n, &kout, enc->scratch);

    /* Compact row slots into CSR; rows only move towards the front. */
    size_t at = 0;
    for (size_t r = 0; r < n; r++) {
        enc->offsets[r] = at;
        uint32_t c = enc->count[r];
        if (at != r * cap && c) {
            memmove(enc->index + at, enc->index + r * cap, c * sizeof(uint32_t));
            memmove(enc->value + at, enc->value + r * cap, c * sizeof(float));
        }
        at += c;
    }
    enc->offsets[n] = at;
    enc->features = (saemon_features){.n_tokens = n, .offsets = enc->offsets, .index = enc->index,
                                      .value = enc->value, .input_norm = enc->input_norm,
                                      .input_nonfinite = enc->nonfinite};
    *out = &enc->features;
    return SAEMON_OK;
}

const char *saemon_encoder_variant(const saemon_encoder *enc) { return enc->kernel->name; }

size_t saemon_encoder_max_batch(const saemon_encoder *enc) { return enc->max_batch; }

void saemon_encoder_destroy(saemon_encoder *enc)
{
    if (!enc)
        return;
    free(enc->threshold);
    free(enc->mag_scale);
    free(enc->packed);
    free(enc->scratch);
    free(enc->x);
    free(enc->index);
    free(enc->value);
    free(enc->count);
    free(enc->offsets);
    free(enc->input_norm);
    free(enc->nonfinite);
    free(enc);
}
