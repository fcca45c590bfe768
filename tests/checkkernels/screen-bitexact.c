/* screen-bitexact: every screened variant (.screened in the registry) gives,
 * bit for bit, the output of its own family's fp32 path — the same kernel
 * with SAEMON_PLAN_NO_SCREEN, which computes every latent the way the screen
 * recomputes its candidates. checkkernels' tolerance rule cannot see a
 * screening bound that is slightly too small (it excuses latents within
 * 8·eps·Σ|x·w| of a boundary); this check can, on data built to sit where
 * the bound is tight:
 *
 *  - random: shapes, batches and every epilogue, tiny/huge mag_scale, rows
 *    near the [2^-50, 2^50] screening range, batch == alone;
 *  - ulp: thresholds at, one ulp below and one ulp above the fp32 path's own
 *    dot product, on data with heavy cancellation (the fp32 recompute error
 *    then dominates: catches a bound without its gamma term);
 *  - aligned-i8 / aligned-bf16: x aligned with sign(W − Ŵ) for int8 (W a
 *    quarter-step off the int8 grid, x on it) and for bf16, so the actual
 *    quantisation error is ~99% of the bound, with thresholds 5% of that error
 *    under the fp32 value: catches a bound scaled by 0.9.
 *
 * Standalone (libc, libm, kernels/): also cross-compiled for aarch64 and run
 * under qemu. Variants this host cannot run are named; with none runnable
 * the check exits 77 (skip). The mutation tests build it against kernels with
 * SAEMON_TEST_MUTATE_BOUND set and require it to fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}
static double unit(void) { return (double)(rnd() >> 11) * 0x1p-53; }
static double normal(void)
{
    double u = unit(), v = unit();
    return sqrt(-2.0 * log(u < 1e-300 ? 1e-300 : u)) * cos(6.283185307179586 * v);
}
static int sign(void) { return rnd() >> 63 ? 1 : -1; }

typedef struct {
    size_t d_in, d_sae, n, k;
    float *w, *x, *bias, *thr, *ms, *mb;
    saemon_kernel_plan plan;
    char name[96];
} tcase;

static void *xalloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1))
        abort();
    memset(p, 0, bytes ? bytes : 1);
    return p;
}

static void tcase_init(tcase *c, size_t d_in, size_t d_sae, size_t n, saemon_epilogue epi, size_t k, int mag)
{
    c->d_in = d_in, c->d_sae = d_sae, c->n = n, c->k = k;
    c->w = xalloc(d_in * d_sae * 4);
    c->x = xalloc(d_in * n * 4);
    c->bias = xalloc(d_sae * 4);
    c->thr = xalloc(d_sae * 4);
    c->ms = xalloc(d_sae * 4);
    c->mb = xalloc(d_sae * 4);
    c->plan = (saemon_kernel_plan){.d_in = d_in, .d_sae = d_sae, .k = k, .index_base = 3, .epilogue = epi,
                                   .bias = c->bias, .threshold = c->thr, .mag_scale = mag ? c->ms : NULL,
                                   .mag_bias = c->mb};
}

static void tcase_free(tcase *c)
{
    free(c->w), free(c->x), free(c->bias), free(c->thr), free(c->ms), free(c->mb);
}

typedef struct {
    uint32_t *index, *count;
    float *value;
    size_t cap;
} output;

/* Encode rows [r0, r0+n) of the case with k; screen on or off. */
static output run(const saemon_kernel *k, tcase *c, size_t r0, size_t n, int no_screen)
{
    saemon_kernel_plan plan = c->plan;
    plan.flags = no_screen ? SAEMON_PLAN_NO_SCREEN : 0;
    output o;
    o.cap = plan.epilogue == SAEMON_EPI_TOPK ? plan.k : plan.d_sae;
    void *packed = xalloc(k->packed_size(&plan));
    k->pack(&plan, c->w, packed);
    size_t sb = k->scratch_size(&plan, n);
    void *scratch = sb ? xalloc(sb) : NULL;
    o.index = xalloc(n * o.cap * 4 + 4);
    o.value = xalloc(n * o.cap * 4 + 4);
    o.count = xalloc(n * 4);
    saemon_kernel_out out = {o.cap, o.index, o.value, o.count};
    k->encode(&plan, packed, c->x + r0 * plan.d_in, n, &out, scratch);
    free(scratch);
    free(packed);
    return o;
}

static void out_free(output *o) { free(o->index), free(o->value), free(o->count); }

/* Bitwise comparison of row ra of a with row rb of b. */
static int same_row(const saemon_kernel *k, const tcase *c, const char *what, const output *a, size_t ra,
                    const output *b, size_t rb)
{
    const uint32_t na = a->count[ra], nb = b->count[rb];
    const uint32_t *ia = a->index + ra * a->cap, *ib = b->index + rb * b->cap;
    const float *va = a->value + ra * a->cap, *vb = b->value + rb * b->cap;
    for (uint32_t i = 0, j = 0; i < na || j < nb;) {
        if (i < na && j < nb && ia[i] == ib[j]) {
            if (memcmp(&va[i], &vb[j], 4) != 0) {
                printf("FAIL %s %s %s row %zu: latent %u value %.9g != fp32 path %.9g\n", k->name, c->name, what, rb,
                       ia[i], va[i], vb[j]);
                return 0;
            }
            i++, j++;
        } else if (j >= nb || (i < na && ia[i] < ib[j])) {
            printf("FAIL %s %s %s row %zu: latent %u (%.9g) only in the screened output\n", k->name, c->name, what,
                   rb, ia[i], va[i]);
            return 0;
        } else {
            printf("FAIL %s %s %s row %zu: latent %u (%.9g) of the fp32 path missing from the screened output\n",
                   k->name, c->name, what, rb, ib[j], vb[j]);
            return 0;
        }
    }
    return 1;
}

/* Screened == fp32 path for every row; and, for random cases, each row
 * encoded alone == the same row in the batch. */
static int check(const saemon_kernel *k, tcase *c, int batch_invariance)
{
    output want = run(k, c, 0, c->n, 1), got = run(k, c, 0, c->n, 0);
    int ok = 1;
    for (size_t r = 0; r < c->n && ok; r++)
        ok = same_row(k, c, "screened vs fp32", &got, r, &want, r);
    for (size_t r = 0; batch_invariance && ok && c->n > 1 && r < c->n; r += c->n / 2) {
        output one = run(k, c, r, 1, 0);
        ok = same_row(k, c, "alone vs batch", &one, 0, &got, r);
        out_free(&one);
    }
    out_free(&want);
    out_free(&got);
    return ok ? 0 : 1;
}

/* The fp32 path's own dot products d^r (THRESHOLD at -inf, bias 0). */
static float *fp32_dots(const saemon_kernel *k, tcase *c)
{
    saemon_kernel_plan keep = c->plan;
    c->plan.epilogue = SAEMON_EPI_THRESHOLD;
    c->plan.threshold = c->thr;
    for (size_t j = 0; j < c->d_sae; j++)
        c->bias[j] = 0, c->thr[j] = -INFINITY;
    output o = run(k, c, 0, c->n, 1);
    float *d = xalloc(c->n * c->d_sae * 4);
    for (size_t r = 0; r < c->n; r++) {
        for (size_t j = 0; j < c->d_sae; j++)
            d[r * c->d_sae + j] = NAN;
        for (uint32_t i = 0; i < o.count[r]; i++)
            d[r * c->d_sae + o.index[r * o.cap + i] - c->plan.index_base] = o.value[r * o.cap + i];
    }
    out_free(&o);
    c->plan = keep;
    return d;
}

static const saemon_epilogue epis[] = {SAEMON_EPI_THRESHOLD, SAEMON_EPI_GATED, SAEMON_EPI_TOPK, SAEMON_EPI_TOPK};
static const char *const epi_names[] = {"threshold", "gated", "topk", "topk-mag"};

static int random_cases(const saemon_kernel *k)
{
    static const size_t shapes[][2] = {{1, 1}, {17, 33}, {64, 100}, {100, 257}, {768, 300}};
    static const size_t batches[] = {1, 3, 8, 9};
    static const float ms_scale[] = {1.0f, 1e-30f, 1e30f};
    static const double x_scale[] = {1.0, 0x1p-49, 0x1p49, 0x1p-51, 0x1p51};
    int fails = 0, count = 0;
    for (size_t s = 0; s < 5; s++)
        for (size_t b = 0; b < 4; b++)
            for (int e = 0; e < 4; e++) {
                tcase c;
                const size_t d_in = shapes[s][0], d_sae = shapes[s][1], n = batches[(b + s) % 4];
                const size_t kk = (size_t[]){1, 5, d_sae}[(b + e) % 3];
                tcase_init(&c, d_in, d_sae, n, epis[e], kk, e != 2);
                const float mss = ms_scale[(s + b) % 3];
                const double xs = x_scale[(s + b + e) % 5];
                snprintf(c.name, sizeof c.name, "random/%s %zux%zu n=%zu k=%zu ms*%g x*%g", epi_names[e], d_in, d_sae,
                         n, kk, mss, xs);
                for (size_t i = 0; i < d_in * d_sae; i++)
                    c.w[i] = (float)(normal() / sqrt((double)d_in));
                for (size_t i = 0; i < d_in * n; i++)
                    c.x[i] = (float)(normal() * xs);
                for (size_t j = 0; j < d_sae; j++) {
                    c.bias[j] = (float)(normal() * xs * 0.5);
                    c.thr[j] = (float)(fabs(normal()) * xs * 0.3);
                    c.ms[j] = (float)(exp(0.3 * normal()) * mss);
                    c.mb[j] = (float)(normal() * xs * mss);
                }
                fails += check(k, &c, 1);
                count++;
                tcase_free(&c);
            }
    printf("  %-28s random:  %d cases\n", k->name, count);
    return fails;
}

/* Thresholds on the fp32 path's own value, one ulp either side. */
static int ulp_cases(const saemon_kernel *k)
{
    int fails = 0, count = 0;
    static const char *const data_names[] = {"", " bf16-exact", " i8-grid"};
    for (int data = 0; data < 3; data++)
        for (int e = 0; e < 2; e++)
            for (size_t n = 1; n <= 5; n += 4) {
                tcase c;
                const size_t d_in = data == 2 ? 4096 : 256, d_sae = 96;
                tcase_init(&c, d_in, d_sae, n, epis[e], 0, 1);
                snprintf(c.name, sizeof c.name, "ulp/%s%s n=%zu", epi_names[e], data_names[data], n);
                /* Wide magnitudes and cancellation: fp32 rounding dominates. */
                for (size_t i = 0; i < d_in * d_sae; i++)
                    c.w[i] = (float)(normal() * ldexp(1.0, (int)(rnd() % 12) - 6));
                for (size_t i = 0; i < d_in * n; i++)
                    c.x[i] = (float)normal();
                if (data == 2) {
                    /* W exactly on an int8 grid (power-of-two scale) and x on a
                     * full-mantissa one (x_i = s_x 2^m, exact): no quantisation
                     * error to hide behind. The second half of the inputs
                     * mirrors the first (x the same, W negated), so the exact
                     * dot is 0 while the fp32 partial sums are large: the fp32
                     * path's result is its own rounding error, which only the
                     * gamma term of the bound covers. */
                    const float sx = (float)(1.37 / 127.0);
                    const size_t h = d_in / 2;
                    for (size_t i = 0; i < h; i++) {
                        const float xi = i == 0 ? sx * 127.0f : sx * (float)(1 << (rnd() % 7));
                        for (size_t r = 0; r < n; r++)
                            c.x[r * d_in + i] = c.x[r * d_in + h + i] = xi * (float)(1 << r);
                    }
                    for (size_t j = 0; j < d_sae; j++)
                        for (size_t i = 0; i < h; i++) {
                            const int q = i == 1 ? 127 : 1 + (int)(rnd() % 126);
                            const float wi = (float)ldexp(sign() * q, -7 - (int)(j % 5));
                            c.w[j * d_in + i] = wi;
                            c.w[j * d_in + h + i] = -wi;
                        }
                }
                if (data == 1) /* exactly representable in bf16 (and fp32) */
                    for (size_t i = 0; i < d_in * (d_sae + n); i++) {
                        float *f = i < d_in * d_sae ? &c.w[i] : &c.x[i - d_in * d_sae];
                        uint32_t u;
                        memcpy(&u, f, 4);
                        u &= 0xffff0000u;
                        memcpy(f, &u, 4);
                    }
                float *d = fp32_dots(k, &c);
                for (size_t j = 0; j < d_sae; j++) {
                    const float dr = d[(j % n) * d_sae + j]; /* latent j sits on its boundary in row j % n */
                    const float t = j % 3 == 0 ? dr : j % 3 == 1 ? nextafterf(dr, -INFINITY) : nextafterf(dr, INFINITY);
                    if (epis[e] == SAEMON_EPI_THRESHOLD) {
                        c.bias[j] = 0, c.thr[j] = t;
                    } else { /* GATED: the magnitude test carries it, gate always open */
                        c.bias[j] = 1e30f, c.ms[j] = 1.0f, c.mb[j] = -t;
                    }
                }
                free(d);
                fails += check(k, &c, 0);
                count++;
                tcase_free(&c);
            }
    printf("  %-28s ulp:     %d cases\n", k->name, count);
    return fails;
}

/* x aligned with the quantisation residual of every latent; thresholds 5%
 * of the quantisation error under the fp32 value. */
static int aligned_cases(const saemon_kernel *k)
{
    int fails = 0, count = 0;
    for (int kind = 0; kind < 2; kind++) /* 0: int8 grid, 1: bf16 grid */
        for (int e = 0; e < 2; e++)
            for (size_t n = 1; n <= 5; n += 4) {
                tcase c;
                const size_t d_in = kind == 0 ? 768 : 128, d_sae = 64;
                tcase_init(&c, d_in, d_sae, n, epis[e], 0, 1);
                snprintf(c.name, sizeof c.name, "aligned-%s/%s n=%zu", kind == 0 ? "i8" : "bf16", epi_names[e], n);
                int *sg = malloc(d_in * sizeof(int));
                for (size_t i = 0; i < d_in; i++)
                    sg[i] = i == 0 && kind == 0 ? 1 : sign();
                double *err = malloc(d_sae * sizeof(double));
                for (size_t j = 0; j < d_sae; j++) {
                    const int kexp = (int)(rnd() % 9) - 4;
                    float *w = c.w + j * d_in;
                    err[j] = 0;
                    for (size_t i = 0; i < d_in; i++) {
                        if (kind == 0) { /* s = 2^(kexp-7); w = s (q ± 3/8), q = 127 at i = 0 */
                            const double s = ldexp(1.0, kexp - 7);
                            const int q = i == 0 ? 127 : (int)(rnd() % 253) - 126;
                            const double r = i == 0 ? 0 : 0.375 * sg[i] * s;
                            w[i] = (float)(s * q + r);
                            err[j] += 127.0 / 128.0 * sg[i] * r; /* x_i = sg_i 127/128 */
                        } else { /* bf16 value (1 + m/128) 2^kexp, plus a quarter step */
                            const double wh = sign() * (1.0 + (double)(1 + rnd() % 127) / 128.0) * ldexp(1.0, kexp);
                            const double r = sg[i] * ldexp(1.0, kexp - 9);
                            w[i] = (float)(wh + r);
                            err[j] += sg[i] * r; /* x_i = sg_i */
                        }
                    }
                }
                for (size_t r = 0; r < n; r++) /* row r: the same direction, scaled by 2^r (still on the grid) */
                    for (size_t i = 0; i < d_in; i++)
                        c.x[r * d_in + i] = (float)(sg[i] * (kind == 0 ? 127.0 / 128.0 : 1.0) * ldexp(1.0, (int)r));
                float *d = fp32_dots(k, &c);
                for (size_t j = 0; j < d_sae; j++) {
                    const size_t r = j % n;
                    const float t = (float)(d[r * d_sae + j] - 0.05 * err[j] * ldexp(1.0, (int)r));
                    if (epis[e] == SAEMON_EPI_THRESHOLD) {
                        c.bias[j] = 0, c.thr[j] = t;
                    } else {
                        c.bias[j] = -t, c.ms[j] = 1.0f, c.mb[j] = 1e30f;
                    }
                }
                free(d);
                free(err);
                free(sg);
                fails += check(k, &c, 0);
                count++;
                tcase_free(&c);
            }
    printf("  %-28s aligned: %d cases\n", k->name, count);
    return fails;
}

int main(void)
{
    size_t nk;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    int fails = 0, ran = 0;
    printf("screen-bitexact: screened variants vs their own fp32 path, bit for bit\n");
    for (size_t v = 0; v < nk; v++) {
        const saemon_kernel *k = ks[v];
        if (!k->screened)
            continue;
        if (saemon_kernel_missing_features(k)) {
            char why[160];
            printf("  %-28s NOT RUN on this host (%s)\n", k->name, saemon_kernel_reason(k, NULL, why, sizeof why));
            continue;
        }
        ran++;
        fails += random_cases(k) + ulp_cases(k) + aligned_cases(k);
    }
    if (!ran) {
        printf("screen-bitexact: SKIP, no screened variant runs on this host\n");
        return 77;
    }
    printf("screen-bitexact: %s\n", fails ? "FAILED" : "all OK");
    return fails ? 1 : 0;
}
