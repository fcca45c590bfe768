/* Portable fp32 encode: C with GNU vector types (gcc and clang lower them to
 * whatever the build targets: SSE2 on baseline x86-64, ASIMD, VSX, RVV, or
 * scalar code), so it vectorises without intrinsics. Plain loops were tried
 * first: gcc 12 vectorised them across the wrong dimension (shuffles on every
 * step, slower than scalar), so the lanes are written as vectors.
 * The fallback for CPUs without a hand-written variant; the double-accumulating
 * reference (f32-encode-1x1-scalar) is never chosen automatically.
 *
 * Layout: panels of 16 latents interleaved along d_in (as the x86 fp32
 * kernels): panel p is d_in groups of 16 floats, group i = W[16p+l][i].
 * A group is 4 vectors of 4 fp32 lanes; accumulation is fp32 (multiply and
 * add rounded separately: built with -ffp-contract=off). 1 row: four panels at once (64 independent accumulators, enough
 * to hide add latency). 2+ rows: tiles of 3 rows x 16 latents (12 accumulator vectors + 4 weight vectors: the 16 registers of SSE2; 4 rows spilled), panels outer
 * and rows inner, so a panel (64*d_in bytes) stays in cache while the rows
 * pass over it and W is read from memory once per call. The epilogue is the
 * scalar reference's, operation for operation. */
#include <string.h>

#include "kernels/kernel.h"

#define LANES 16 /* latents per panel */
#define NV (LANES / 4)
#define TILE_ROWS 3

typedef float v4f __attribute__((vector_size(16)));
/* Unaligned, aliasing-safe loads (packed is 64-byte aligned, but x is not). */
typedef float v4f_u __attribute__((vector_size(16), aligned(4), may_alias));
static inline v4f load4(const float *p) { return *(const v4f_u *)p; }
static inline v4f splat(float a) { return (v4f){a, a, a, a}; }
#define ONE_ROW_PANELS 4

static size_t n_panels(size_t d_sae) { return (d_sae + LANES - 1) / LANES; }

static size_t packed_size(const saemon_kernel_plan *plan)
{
    return n_panels(plan->d_sae) * LANES * plan->d_in * sizeof(float);
}

/* Scratch: one row_out per row, then (TOPK) one k-entry heap per row. */
static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch);

static void pack(const saemon_kernel_plan *plan, const float *w_rows, void *packed)
{
    const size_t d_in = plan->d_in, d_sae = plan->d_sae;
    float *dst = packed;
    for (size_t p = 0; p < n_panels(d_sae); p++)
        for (size_t i = 0; i < d_in; i++)
            for (size_t l = 0; l < LANES; l++) {
                size_t j = p * LANES + l;
                *dst++ = j < d_sae ? w_rows[j * d_in + i] : 0.0f;
            }
}

typedef struct row_out {
    uint32_t *index;
    float *value;
    uint32_t count;
    saemon_topk_entry *heap;
    size_t heap_size;
} row_out;

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    size_t heaps = plan->epilogue == SAEMON_EPI_TOPK ? plan->k * sizeof(saemon_topk_entry) : 0;
    return max_batch * (sizeof(row_out) + heaps);
}

/* The reference's epilogue on the dot products of latents j0..j0+n. */
static void epilogue(const saemon_kernel_plan *plan, size_t j0, size_t n, const float *d, row_out *o)
{
    for (size_t l = 0; l < n; l++) {
        const size_t j = j0 + l;
        const uint32_t ix = plan->index_base + (uint32_t)j;
        float pre = d[l] + plan->bias[j];
        switch (plan->epilogue) {
        case SAEMON_EPI_THRESHOLD:
            if (pre > plan->threshold[j]) {
                o->index[o->count] = ix;
                o->value[o->count++] = pre;
            }
            break;
        case SAEMON_EPI_GATED: {
            float mag = plan->mag_scale[j] * d[l] + plan->mag_bias[j];
            if (pre > 0.0f && mag > 0.0f) {
                o->index[o->count] = ix;
                o->value[o->count++] = mag;
            }
            break;
        }
        case SAEMON_EPI_TOPK:
            if (plan->mag_scale)
                pre *= plan->mag_scale[j];
            saemon_topk_push(o->heap, &o->heap_size, plan->k, pre, ix);
            break;
        }
    }
}

static size_t lanes_in(const saemon_kernel_plan *plan, size_t p)
{
    size_t left = plan->d_sae - p * LANES;
    return left < LANES ? left : LANES;
}

static void epilogue_vec(const saemon_kernel_plan *plan, size_t p, const v4f acc[NV], row_out *o)
{
    float d[LANES];
    for (int v = 0; v < NV; v++)
        for (int l = 0; l < 4; l++)
            d[4 * v + l] = acc[v][l];
    epilogue(plan, p * LANES, lanes_in(plan, p), d, o);
}

/* One row against panels p0..p0+np (np <= ONE_ROW_PANELS), streamed side by side. */
static void row_panels(const saemon_kernel_plan *plan, const float *w, const float *x, size_t p0, size_t np,
                       row_out *o)
{
    const size_t d_in = plan->d_in, stride = d_in * LANES;
    const float *w0 = w + p0 * stride;
    v4f acc[ONE_ROW_PANELS][NV];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < d_in; i++) {
        const v4f xi = splat(x[i]);
        for (size_t q = 0; q < np; q++)
            for (int v = 0; v < NV; v++)
                acc[q][v] += xi * load4(w0 + q * stride + i * LANES + 4 * v);
    }
    for (size_t q = 0; q < np; q++)
        epilogue_vec(plan, p0 + q, acc[q], o);
}

/* R rows x one panel p; R is a constant in each instantiation below, so the
 * accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(const saemon_kernel_plan *plan, const float *w,
                                                       const float *x, size_t p, const size_t R, row_out *o)
{
    const size_t d_in = plan->d_in;
    const float *wp = w + p * d_in * LANES;
    v4f acc[TILE_ROWS][NV];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < d_in; i++) {
        v4f wv[NV];
        for (int v = 0; v < NV; v++)
            wv[v] = load4(wp + i * LANES + 4 * v);
        for (size_t r = 0; r < R; r++) {
            const v4f xr = splat(x[r * d_in + i]);
            for (int v = 0; v < NV; v++)
                acc[r][v] += xr * wv[v];
        }
    }
    for (size_t r = 0; r < R; r++)
        epilogue_vec(plan, p, acc[r], &o[r]);
}

static void tile_dispatch(const saemon_kernel_plan *plan, const float *w, const float *x, size_t p, size_t R,
                          row_out *o)
{
    switch (R) {
    case 1: tile(plan, w, x, p, 1, o); break;
    case 2: tile(plan, w, x, p, 2, o); break;
    case 3: tile(plan, w, x, p, 3, o); break;
    default: tile(plan, w, x, p, TILE_ROWS, o); break;
    }
}

static void encode(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch)
{
    const float *w = packed;
    const size_t np = n_panels(plan->d_sae), d_in = plan->d_in;
    row_out *o = scratch; /* one per row: rows keep appending across panels */
    saemon_topk_entry *heaps = (saemon_topk_entry *)(o + n);
    for (size_t r = 0; r < n; r++)
        o[r] = (row_out){out->index + r * out->row_capacity, out->value + r * out->row_capacity, 0,
                         heaps + r * plan->k, 0};
    if (n == 1) {
        for (size_t p = 0; p < np; p += ONE_ROW_PANELS)
            row_panels(plan, w, x, p, np - p < ONE_ROW_PANELS ? np - p : ONE_ROW_PANELS, &o[0]);
    } else {
        for (size_t p = 0; p < np; p++)
            for (size_t r0 = 0; r0 < n; r0 += TILE_ROWS)
                tile_dispatch(plan, w, x + r0 * d_in, p, n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS, &o[r0]);
    }
    for (size_t r = 0; r < n; r++)
        out->count[r] = plan->epilogue == SAEMON_EPI_TOPK
                            ? saemon_topk_emit(o[r].heap, o[r].heap_size, o[r].index, o[r].value)
                            : o[r].count;
}

const saemon_kernel saemon_kernel_f32_encode_3x16_portable = {
    .name = "f32-encode-3x16-portable",
    .packed_layout = 1,
    .family = "portable",
    .cpu_features = 0,
    .priority = 2,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
