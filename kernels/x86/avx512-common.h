/* Helpers shared by the AVX-512 encode kernels in kernels/x86: panel
 * geometry, the fused sparsify epilogue on one 16-latent panel, the per-row
 * output sink, and an fp32 dot product for screened kernels' recompute.
 *
 * Only included by translation units compiled with AVX-512 flags. */
#ifndef SAEMON_X86_AVX512_COMMON_H
#define SAEMON_X86_AVX512_COMMON_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

#define AVX512_PANEL 16 /* latents per panel: one zmm of fp32 lanes */

static inline size_t avx512_round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }
static inline size_t avx512_panels(size_t d_sae) { return (d_sae + AVX512_PANEL - 1) / AVX512_PANEL; }

/* Lanes of the panel starting at latent j0 that are real latents. */
static inline __mmask16 avx512_valid_lanes(size_t d_sae, size_t j0)
{
    size_t left = d_sae - j0;
    return left >= AVX512_PANEL ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* Where one input row's features go. THRESHOLD/GATED append (index, value)
 * in ascending index order; TOPK feeds a min-heap whose smallest kept value
 * (or 0 before it is full: ReLU drops non-positive values anyway) is the bar
 * a new latent must clear, so most panels are rejected with one compare. */
typedef struct avx512_sink {
    uint32_t *index;
    float *value;
    uint32_t count;
    saemon_topk_entry *heap;
    size_t heap_size;
    float topk_bar;
} avx512_sink;

static inline void avx512_sink_init(avx512_sink *s, const saemon_kernel_plan *plan,
                                    const saemon_kernel_out *out, size_t row, saemon_topk_entry *heap)
{
    s->index = out->index + row * out->row_capacity;
    s->value = out->value + row * out->row_capacity;
    s->count = 0;
    s->heap = heap;
    s->heap_size = 0;
    s->topk_bar = plan->k == 0 ? __builtin_inff() : 0.0f;
}

static inline void avx512_topk_offer(avx512_sink *s, const saemon_kernel_plan *plan, float v, uint32_t ix)
{
    if (!(v > s->topk_bar))
        return;
    saemon_topk_push(s->heap, &s->heap_size, plan->k, v, ix);
    if (s->heap_size == plan->k)
        s->topk_bar = s->heap[0].value;
}

static inline uint32_t avx512_sink_finish(avx512_sink *s, const saemon_kernel_plan *plan)
{
    if (plan->epilogue == SAEMON_EPI_TOPK)
        return saemon_topk_emit(s->heap, s->heap_size, s->index, s->value);
    return s->count;
}

/* Append the lanes in m (values v, indices idx) to the sink. Compress in a
 * register and masked-store: on Zen 4 the memory form of vcompressps is
 * microcoded and far slower. */
static inline void avx512_append(avx512_sink *s, __mmask16 m, __m512 v, __m512i idx)
{
    unsigned n = (unsigned)__builtin_popcount(m);
    __mmask16 first = (__mmask16)((1u << n) - 1);
    _mm512_mask_storeu_ps(s->value + s->count, first, _mm512_maskz_compress_ps(m, v));
    _mm512_mask_storeu_epi32(s->index + s->count, first, _mm512_maskz_compress_epi32(m, idx));
    s->count += n;
}

/* Bias + ReLU/JumpReLU threshold / gate / TopK bar on the 16 dot products
 * d of the panel starting at latent j0, all in registers; only the active
 * lanes reach memory. Same fp32 operations as the scalar reference. */
static inline void avx512_epilogue_panel(const saemon_kernel_plan *plan, size_t j0, __m512 d, avx512_sink *s)
{
    const __mmask16 valid = avx512_valid_lanes(plan->d_sae, j0);
    const __m512 b = _mm512_maskz_loadu_ps(valid, plan->bias + j0);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 pre = _mm512_add_ps(d, b);
    __mmask16 m;
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        m = _mm512_mask_cmp_ps_mask(valid, pre, _mm512_maskz_loadu_ps(valid, plan->threshold + j0), _CMP_GT_OQ);
        break;
    case SAEMON_EPI_GATED: {
        __m512 mag = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(valid, plan->mag_scale + j0), d),
                                   _mm512_maskz_loadu_ps(valid, plan->mag_bias + j0));
        m = _mm512_mask_cmp_ps_mask(valid, pre, _mm512_setzero_ps(), _CMP_GT_OQ);
        m = _mm512_mask_cmp_ps_mask(m, mag, _mm512_setzero_ps(), _CMP_GT_OQ);
        pre = mag;
        break;
    }
    default: /* TOPK */
        if (plan->mag_scale)
            pre = _mm512_mul_ps(pre, _mm512_maskz_loadu_ps(valid, plan->mag_scale + j0));
        m = _mm512_mask_cmp_ps_mask(valid, pre, _mm512_set1_ps(s->topk_bar), _CMP_GT_OQ);
        if (m) {
            float v[16];
            _mm512_storeu_ps(v, pre);
            while (m) {
                unsigned l = (unsigned)__builtin_ctz(m);
                m &= (__mmask16)(m - 1);
                avx512_topk_offer(s, plan, v[l], plan->index_base + (uint32_t)(j0 + l));
            }
        }
        return;
    }
    if (m)
        avx512_append(s, m, pre, _mm512_add_epi32(_mm512_set1_epi32((int)(plan->index_base + j0)), iota));
}

/* The same epilogue for one latent j with dot product d (screened kernels'
 * recompute and their fp32 fallback). */
static inline void avx512_epilogue_one(const saemon_kernel_plan *plan, size_t j, float d, avx512_sink *s)
{
    const uint32_t ix = plan->index_base + (uint32_t)j;
    float pre = d + plan->bias[j];
    switch (plan->epilogue) {
    case SAEMON_EPI_THRESHOLD:
        if (pre > plan->threshold[j]) {
            s->index[s->count] = ix;
            s->value[s->count++] = pre;
        }
        break;
    case SAEMON_EPI_GATED: {
        float mag = plan->mag_scale[j] * d + plan->mag_bias[j];
        if (pre > 0.0f && mag > 0.0f) {
            s->index[s->count] = ix;
            s->value[s->count++] = mag;
        }
        break;
    }
    default:
        if (plan->mag_scale)
            pre *= plan->mag_scale[j];
        avx512_topk_offer(s, plan, pre, ix);
        break;
    }
}

/* fp32 dot of a zero-padded 64-byte-aligned row w (length round_up(n,16))
 * with x[0..n): four accumulators, masked tail load of x. */
static inline float avx512_dot_row(const float *w, const float *x, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_load_ps(w + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_load_ps(w + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_load_ps(w + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_load_ps(w + i + 48), a3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = avx512_valid_lanes(n, i);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_load_ps(w + i), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

#endif
