/* Scalar reference kernel: one latent at a time, dot product over d_in.
 *
 * The reference every SIMD variant is checked against. It accumulates in
 * double so that its answer is the fp32 weights' exact result rounded once;
 * SIMD variants accumulate in fp32 and are compared with a tolerance derived
 * from sum_i |x_i * W_ji| (see tests/checkkernels). */
#include <string.h>

#include "kernels/kernel.h"

static size_t packed_size(const saemon_kernel_plan *plan)
{
    return plan->d_sae * plan->d_in * sizeof(float);
}

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    (void)max_batch;
    return plan->epilogue == SAEMON_EPI_TOPK ? plan->k * sizeof(saemon_topk_entry) : 0;
}

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    memcpy(packed, w_rows, packed_size(plan));
}

static double dot(const float *w, const float *x, size_t n)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++)
        acc += (double)w[i] * (double)x[i];
    return acc;
}

static uint32_t encode_row(const saemon_kernel_plan *plan, const float *w, const float *x,
                           uint32_t *index, float *value, saemon_topk_entry *heap)
{
    const size_t d_in = plan->d_in;
    uint32_t n = 0;
    size_t heap_size = 0;
    for (size_t j = 0; j < plan->d_sae; j++) {
        float d = (float)dot(w + j * d_in, x, d_in);
        uint32_t ix = plan->index_base + (uint32_t)j;
        switch (plan->epilogue) {
        case SAEMON_EPI_THRESHOLD: {
            float pre = d + plan->bias[j];
            if (pre > plan->threshold[j]) {
                index[n] = ix;
                value[n++] = pre;
            }
            break;
        }
        case SAEMON_EPI_GATED: {
            float gate = d + plan->bias[j];
            float mag = plan->mag_scale[j] * d + plan->mag_bias[j];
            if (gate > 0.0f && mag > 0.0f) {
                index[n] = ix;
                value[n++] = mag;
            }
            break;
        }
        case SAEMON_EPI_TOPK: {
            float pre = d + plan->bias[j];
            if (plan->mag_scale)
                pre *= plan->mag_scale[j];
            saemon_topk_push(heap, &heap_size, plan->k, pre, ix);
            break;
        }
        }
    }
    if (plan->epilogue == SAEMON_EPI_TOPK)
        n = saemon_topk_emit(heap, heap_size, index, value);
    return n;
}

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    for (size_t r = 0; r < n; r++) {
        size_t slot = r * out->row_capacity;
        out->count[r] = encode_row(plan, packed, x + r * plan->d_in, out->index + slot,
                                   out->value + slot, scratch);
    }
}

const saemon_kernel saemon_kernel_f32_encode_1x1_scalar = {
    .name = "f32-encode-1x1-scalar",
    .packed_layout = 1,
    .family = "scalar",
    .cpu_features = 0,
    .priority = 0,
    .reference = 1,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
