/* The screening bound, derived once, in plain C, for every screened kernel
 * (x86: kernels/x86/screen-common.h for the int8 AVX2 / AVX-VNNI /
 * AVX512-VNNI and the bf16 variants; NEON: kernels/arm/i8-screen-1x16-neondot.c).
 * It is the one fact that decides whether a screened kernel is exact.
 *
 * A screened kernel computes, per latent j, an approximate dot product D~_j
 * from small copies x^ (per token) and W^_j (packed), keeps the latents whose
 * exact result COULD pass the epilogue and recomputes exactly those in fp32.
 * Let d^r_j be the fp32 dot the recompute produces (any order, FMA, at most
 * d_in + 16 roundings deep: the x86 lane-wise sums and the NEON single FMA
 * chain both are), d_j the exact dot, u = 2^-24,
 * gamma = (d_in+16)u / (1 - (d_in+16)u). By Cauchy-Schwarz
 *   |d^r_j - d_j|          <= gamma * ||x||2 * ||W_j||2
 *   |d_j - sum x^ W^_j|    <= ||x||2 * ||W_j - W^_j||2 + ||x - x^||2 * ||W^_j||2
 *   |sum x^ W^_j - D~_j|   <= int8: 0 (exact int32) ; bf16: gamma*||x^||2*||W^_j||2
 *                             + (2 d_in + 64) 2^-126 (vdpbf16ps flushes denormals)
 * so |d^r_j - D~_j| <= E_j = c1_j * X2 + c2_j * R2 + e_abs with
 *   int8: c1_j = ||W_j - W^_j||2 + gamma ||W_j||2,  c2_j = ||W^_j||2
 *   bf16: c1_j = ||W_j - W^_j||2 + gamma (||W_j||2 + ||W^_j||2),  c2_j = (1 + gamma) ||W^_j||2
 * computed at pack time, and X2 = ||x||2, R2 = ||x - x^||2 per token. All
 * are computed in double from the values actually used and rounded up to
 * float through screen_round_up (x (1 + 2^-20), which covers the double
 * evaluation for d_in <= 2^16 and the rounding to float).
 *
 * The fp32 evaluation, in SIMD, of E, of D~ (int8: float(acc) * (s_j * s_x),
 * three roundings) and of the tests (D~ + E + b against the threshold t) is
 * covered by
 *   E' = E (1 + 2^-12) + 2^-20 (|D~| + |b| + |t| + E) + 1e-30
 * (SCREEN_SLACK_*; t = 0 outside THRESHOLD), and every candidate test
 * evaluates the epilogue at D~ - E' and D~ + E', which is rigorous because
 * the epilogue is monotone in d and rounding is monotone. All of this rests
 * on IEEE round-to-nearest, which saemon_kernels_rounding_ok() checks when
 * an encoder is created.
 *
 * Ranges. Rows whose x is not finite, or whose max|x| is outside
 * [2^-50, 2^50], take the fp32 path for every latent (screen_row_max); a
 * latent whose W is not finite or whose max|W_j| is outside that range gets
 * c1 = +inf (always recomputed). In range, the scale products and the fp32
 * epilogue can neither overflow nor underflow beyond the 1e-30 slack.
 *
 * SAEMON_TEST_MUTATE_BOUND (tests only, never in the library): 1 makes the
 * bound constants c1, c2 10% too small, 2 drops the gamma term. The
 * checkkernels suite builds both mutants of every screened kernel, x86
 * natively and NEON under qemu, and requires the bit-exact check to FAIL
 * on them (tests/checkkernels/meson.build). */
#ifndef SAEMON_KERNELS_SCREEN_BOUND_H
#define SAEMON_KERNELS_SCREEN_BOUND_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifndef SAEMON_TEST_MUTATE_BOUND
#define SAEMON_TEST_MUTATE_BOUND 0
#endif

#define SCREEN_TINY 0x1p-50
#define SCREEN_HUGE 0x1p50
#define SCREEN_ROUND_UP (1.0 + 0x1p-20)

/* E' = E * SCREEN_SLACK_E + SCREEN_SLACK_MAG * (|D~| + |b| + |t| + E) + SCREEN_SLACK_ABS */
#define SCREEN_SLACK_E (1.0f + 0x1p-12f)
#define SCREEN_SLACK_MAG 0x1p-20f
#define SCREEN_SLACK_ABS 1e-30f

/* int8 keeps |sum_i q_i w_ji| < 2^31 (255 * 127 * 65536 < 2^31 for the u8
 * offset form of VNNI; 2 * 127 * 127 * 32768 for vpmaddwd pairs; 127^2 *
 * 65536 for SDOT), and 128 * sum_i w_ji fits int32: past this d_in every row
 * takes the fp32 path. */
#define I8_MAX_D_IN 65536

/* gamma_(d_in+16): relative error bound of the fp32 recompute. */
static inline double screen_gamma(size_t d_in)
{
#if SAEMON_TEST_MUTATE_BOUND == 2
    (void)d_in;
    return 0.0; /* mutant: the fp32 recompute error ignored */
#else
    double nu = (double)(d_in + 16) * 0x1p-24;
    return nu / (1.0 - nu);
#endif
}

/* A per-token quantity (X2, R2) computed in double, rounded up to float. */
static inline float screen_round_up(double v) { return (float)(v * SCREEN_ROUND_UP); }

/* A per-latent bound constant (c1, c2), rounded up to float. */
static inline float screen_bound_const(double v)
{
#if SAEMON_TEST_MUTATE_BOUND == 1
    return screen_round_up(v) * 0.9f; /* mutant: a bound 10% too small */
#else
    return screen_round_up(v);
#endif
}

static inline int screen_in_range(double max_abs) { return max_abs >= SCREEN_TINY && max_abs <= SCREEN_HUGE; }

/* max|x| of a row and whether the row can be screened at all (finite, in range). */
static inline int screen_row_max(const float *x, size_t d_in, double *max_abs)
{
    double m = 0;
    for (size_t i = 0; i < d_in; i++) {
        double a = fabs((double)x[i]);
        if (!(a <= 3.5e38)) /* NaN or Inf */
            return 0;
        if (a > m)
            m = a;
    }
    *max_abs = m;
    return screen_in_range(m);
}

static inline long screen_i8_round(double v, float s)
{
    long q = lrint(v / (double)s);
    return q > 127 ? 127 : q < -127 ? -127 : q;
}

/* Quantise latent row w to int8 (per-latent scale s = max|w|/127) and compute
 * its bound constants; weight i goes to q[(i / block) * stride + i % block]
 * (the variant's panel layout). Returns 0 for an all-zero row (D~ = 0, bound
 * 0; nothing written), -1 when W is not finite or max|w| is out of range
 * (c1 = +inf: always recomputed; q not written), 1 otherwise. */
static inline int screen_i8_quantise_w(const float *w, size_t d_in, int8_t *q, size_t block, size_t stride,
                                       float *scale, float *c1, float *c2, int32_t *sum_out)
{
    double m = 0, nw = 0;
    for (size_t i = 0; i < d_in; i++) {
        const double a = fabs((double)w[i]);
        if (!(a <= 3.5e38)) { /* NaN or Inf */
            *c1 = __builtin_inff();
            return -1;
        }
        m = a > m ? a : m;
        nw += (double)w[i] * w[i];
    }
    if (m == 0)
        return 0;
    if (!screen_in_range(m)) {
        *c1 = __builtin_inff();
        return -1;
    }
    const float s = (float)(m / 127.0);
    double resid = 0, nq = 0;
    int32_t sum = 0;
    for (size_t i = 0; i < d_in; i++) {
        const long v = screen_i8_round(w[i], s);
        const double wh = (double)s * (double)v;
        resid += (w[i] - wh) * (w[i] - wh);
        nq += wh * wh;
        sum += (int32_t)v;
        q[(i / block) * stride + i % block] = (int8_t)v;
    }
    *scale = s;
    *sum_out = sum;
    *c1 = screen_bound_const(sqrt(resid) + screen_gamma(d_in) * sqrt(nw) * SCREEN_ROUND_UP);
    *c2 = screen_bound_const(sqrt(nq));
    return 1;
}

/* The token's side of the int8 bound. */
typedef struct screen_i8_row {
    float sx; /* x ~ sx * q */
    float x2; /* ||x||2, rounded up */
    float r2; /* ||x - sx q||2, rounded up */
} screen_i8_row;

/* Quantise one screenable row of x (max_abs from screen_row_max) into
 * q[0..d_in) with s_x = max|x|/127. */
static inline screen_i8_row screen_i8_quantise_x(const float *x, size_t d_in, double max_abs, int8_t *q)
{
    screen_i8_row r;
    r.sx = (float)(max_abs / 127.0);
    double xx = 0, rr = 0;
    for (size_t i = 0; i < d_in; i++) {
        const long v = screen_i8_round(x[i], r.sx);
        const double e = (double)x[i] - (double)r.sx * (double)v;
        xx += (double)x[i] * x[i];
        rr += e * e;
        q[i] = (int8_t)v;
    }
    r.x2 = screen_round_up(sqrt(xx));
    r.r2 = screen_round_up(sqrt(rr));
    return r;
}

#endif
