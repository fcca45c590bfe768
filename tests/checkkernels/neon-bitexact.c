/* neon-bitexact: the NEON variants' promises that checkkernels' tolerance
 * comparison with the scalar reference cannot see (docs/kernels-neon.md):
 *  - f32-encode-4x16-neon gives the same bits for a row whether it is encoded
 *    in a batch (4-row tiles) or alone (batch-1 path);
 *  - i8-screen-1x16-neondot gives exactly the fp32 kernel's output: its
 *    screen drops only latents that cannot pass.
 * Trained-like data (unit-norm rows, sparse activity), every epilogue, odd
 * shapes, and rows with NaN / Inf / tiny / zero / huge inputs. Standalone
 * (libc + kernels), cross-compiled for aarch64 and run under qemu. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double unit(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

static float normal(void)
{
    return (float)(sqrt(-2.0 * log(unit() + 1e-300)) * cos(6.283185307179586 * unit()));
}

static const saemon_kernel *find(const char *name)
{
    size_t n;
    const saemon_kernel *const *ks = saemon_kernels_all(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(ks[i]->name, name) == 0)
            return (ks[i]->cpu_features & ~saemon_cpu_features()) == 0 ? ks[i] : NULL;
    return NULL;
}

typedef struct {
    uint32_t *index, *count;
    float *value;
} result;

/* Encode rows [0, n) with k, in one call (rowwise = 0) or one call per row. */
static result run(const saemon_kernel *k, const saemon_kernel_plan *p, const float *w,
                  const float *x, size_t n, size_t cap, int rowwise)
{
    size_t psize = (k->packed_size(p) + 63) & ~(size_t)63;
    void *packed = aligned_alloc(64, psize ? psize : 64);
    void *scratch = aligned_alloc(64, ((k->scratch_size(p, n) + 63) & ~(size_t)63) + 64);
    result r = {calloc(n * cap + 1, 4), calloc(n, 4), calloc(n * cap + 1, 4)};
    k->pack(p, w, packed);
    for (size_t i = 0; i < n; i += rowwise ? 1 : n) {
        saemon_kernel_out o = {cap, r.index + i * cap, r.value + i * cap, r.count + i};
        k->encode(p, packed, x + i * p->d_in, rowwise ? 1 : n, &o, scratch);
    }
    free(packed);
    free(scratch);
    return r;
}

static int same(const result *a, const result *b, size_t n, size_t cap)
{
    for (size_t r = 0; r < n; r++)
        if (a->count[r] != b->count[r] ||
            memcmp(a->index + r * cap, b->index + r * cap, 4 * a->count[r]) ||
            memcmp(a->value + r * cap, b->value + r * cap, 4 * a->count[r]))
            return 0;
    return 1;
}

int main(void)
{
    const saemon_kernel *f32 = find("f32-encode-4x16-neon"), *i8 = find("i8-screen-1x16-neondot");
    if (!f32) {
        printf("neon-bitexact: f32-encode-4x16-neon not runnable here: SKIP\n");
        return 77;
    }
    static const size_t dims[][2] = {{1, 1}, {3, 17}, {16, 31}, {33, 100}, {64, 257}, {130, 512}};
    int failures = 0, cases = 0;
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
        for (int e = 0; e < 4; e++) {
            const size_t d_in = dims[s][0], d_sae = dims[s][1], n = 11;
            float *w = malloc(4 * d_in * d_sae), *x = malloc(4 * d_in * n);
            float *b = malloc(4 * d_sae), *t = malloc(4 * d_sae), *ms = malloc(4 * d_sae),
                  *mb = malloc(4 * d_sae);
            for (size_t j = 0; j < d_sae; j++) {
                for (size_t i = 0; i < d_in; i++)
                    w[j * d_in + i] = normal() / sqrtf((float)d_in);
                b[j] = normal() * 0.2f - 1.5f;
                t[j] = e == 0 ? 0.0f : fabsf(normal()) * 0.3f;
                ms[j] = expf(normal() * 0.3f);
                mb[j] = normal() * 0.2f - 1.0f;
            }
            for (size_t i = 0; i < d_in * n; i++)
                x[i] = normal();
            x[1 * d_in] = NAN;                            /* row 1: NaN */
            x[2 * d_in + d_in / 2] = INFINITY;            /* row 2: Inf */
            memset(x + 3 * d_in, 0, 4 * d_in);            /* row 3: zero */
            for (size_t i = 0; i < d_in; i++) {
                x[4 * d_in + i] *= 1e-40f;                /* row 4: denormal */
                x[5 * d_in + i] *= 1e30f;                 /* row 5: huge */
            }
            saemon_kernel_plan p = {
                .d_in = d_in, .d_sae = d_sae, .k = (size_t)(1 + unit() * 12), .index_base = 5,
                .epilogue = e == 3 ? SAEMON_EPI_TOPK : e == 2 ? SAEMON_EPI_GATED : SAEMON_EPI_THRESHOLD,
                .bias = b, .threshold = t, .mag_scale = ms, .mag_bias = mb};
            for (int mag = 0; mag < (e == 3 ? 2 : 1); mag++) {
                if (e == 3 && !mag)
                    p.mag_scale = NULL;
                else
                    p.mag_scale = ms;
                const size_t cap = p.epilogue == SAEMON_EPI_TOPK ? p.k : d_sae;
                result batch = run(f32, &p, w, x, n, cap, 0), alone = run(f32, &p, w, x, n, cap, 1);
                cases++;
                if (!same(&batch, &alone, n, cap)) {
                    printf("FAIL f32-encode-4x16-neon batch != alone: d_in=%zu d_sae=%zu epilogue=%d\n",
                           d_in, d_sae, e);
                    failures++;
                }
                if (i8) {
                    result screened = run(i8, &p, w, x, n, cap, 0);
                    if (!same(&batch, &screened, n, cap)) {
                        printf("FAIL i8-screen-1x16-neondot != f32: d_in=%zu d_sae=%zu epilogue=%d\n",
                               d_in, d_sae, e);
                        failures++;
                    }
                    free(screened.index), free(screened.count), free(screened.value);
                }
                free(batch.index), free(batch.count), free(batch.value);
                free(alone.index), free(alone.count), free(alone.value);
            }
            free(w), free(x), free(b), free(t), free(ms), free(mb);
        }
    printf("neon-bitexact: %d cases, %d failures%s\n", cases, failures,
           i8 ? "" : " (i8-screen-1x16-neondot not runnable: only batch invariance checked)");
    return failures ? 1 : 0;
}
