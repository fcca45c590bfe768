/* Deterministic dictionaries with the statistics of trained SAEs:
 *  - decoder rows W_dec[j] are random unit vectors;
 *  - encoder rows W_enc[:, j] = W_dec[j] + noise of norm ~0.2 (trained
 *    encoders sit close to the decoder's transpose);
 *  - activations are sparse non-negative combinations of 40-80 decoder
 *    directions plus isotropic noise of ~10% of their norm;
 *  - b_enc is small, and one JumpReLU threshold shared by all latents is set
 *    so that the mean L0 on a separate calibration set hits the target
 *    (Gemma Scope releases are named by such an average_l0, 50-100).
 * Screening kernels' speed depends on L0, so the benchmark prints it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t seed_of(uint64_t seed, uint64_t stream, uint64_t j)
{
    uint64_t s = seed ^ (stream * 0x632be59bd9b4e019ull);
    splitmix(&s);
    s ^= j * 0xd1b54a32d192ed03ull;
    splitmix(&s);
    return s;
}

/* Uniform in (0, 1]. */
static double uniform(uint64_t *s)
{
    return ((double)(splitmix(s) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static void gaussians(uint64_t *s, float *out, size_t n, double scale)
{
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform(s))), a = 2.0 * M_PI * uniform(s);
        out[i] = (float)(scale * r * cos(a));
        if (i + 1 < n)
            out[i + 1] = (float)(scale * r * sin(a));
    }
}

enum { STREAM_DEC = 1, STREAM_ENC_NOISE, STREAM_BIAS, STREAM_ACTS = 16 };

void bench_synth_dec_row(uint64_t seed, size_t j, size_t d_in, float *out)
{
    uint64_t s = seed_of(seed, STREAM_DEC, j);
    gaussians(&s, out, d_in, 1.0);
    double n2 = 0;
    for (size_t i = 0; i < d_in; i++)
        n2 += (double)out[i] * out[i];
    float inv = (float)(1.0 / sqrt(n2));
    for (size_t i = 0; i < d_in; i++)
        out[i] *= inv;
}

void bench_synth_acts(uint64_t seed, uint64_t stream, size_t d_in, size_t d_sae, size_t n, float *x)
{
    float *dir = malloc(d_in * sizeof *dir);
    if (!dir)
        abort();
    const double noise = 0.1 * sqrt(60.0 * 3.25 / (double)d_in); /* ~10% of the signal norm */
    for (size_t t = 0; t < n; t++) {
        uint64_t s = seed_of(seed, STREAM_ACTS + stream, t);
        float *row = x + t * d_in;
        gaussians(&s, row, d_in, noise);
        size_t k = 40 + (size_t)(splitmix(&s) % 41);
        for (size_t f = 0; f < k; f++) {
            size_t j = (size_t)(splitmix(&s) % d_sae);
            float a = (float)(0.5 - log(uniform(&s))); /* 0.5 + Exp(1) */
            bench_synth_dec_row(seed, j, d_in, dir);
            for (size_t i = 0; i < d_in; i++)
                row[i] += a * dir[i];
        }
    }
    free(dir);
}

int bench_kinst_init(bench_kinst *ki, const saemon_kernel *k, const saemon_kernel_plan *plan,
                     const float *w_rows, size_t max_batch)
{
    memset(ki, 0, sizeof *ki);
    ki->k = k;
    ki->plan = *plan;
    ki->max_batch = max_batch;
    size_t psz = k->packed_size(plan), ssz = k->scratch_size(plan, max_batch);
    size_t cap = plan->epilogue == SAEMON_EPI_TOPK ? plan->k : plan->d_sae;
    ki->packed = aligned_alloc(64, (psz + 63) / 64 * 64);
    ki->scratch = aligned_alloc(64, (ssz + 63) / 64 * 64 + 64);
    ki->out.row_capacity = cap;
    ki->out.index = malloc(max_batch * cap * sizeof *ki->out.index);
    ki->out.value = malloc(max_batch * cap * sizeof *ki->out.value);
    ki->out.count = calloc(max_batch, sizeof *ki->out.count);
    if (!ki->packed || !ki->scratch || !ki->out.index || !ki->out.value || !ki->out.count) {
        bench_kinst_free(ki);
        return -1;
    }
    k->pack(plan, w_rows, ki->packed);
    return 0;
}

void bench_kinst_run(bench_kinst *ki, const float *x, size_t n)
{
    ki->k->encode(&ki->plan, ki->packed, x, n, &ki->out, ki->scratch);
}

double bench_kinst_mean_l0(const bench_kinst *ki, size_t n)
{
    double sum = 0;
    for (size_t r = 0; r < n; r++)
        sum += ki->out.count[r];
    return n ? sum / (double)n : 0;
}

void bench_kinst_free(bench_kinst *ki)
{
    free(ki->packed);
    free(ki->scratch);
    free(ki->out.index);
    free(ki->out.value);
    free(ki->out.count);
    memset(ki, 0, sizeof *ki);
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Shared threshold: with all calib pre-activations sorted descending, put
 * theta between the m-th and (m+1)-th so that exactly m = target * n_calib
 * of them exceed it (an exact bisection on the calibration set). */
static int calibrate(bench_synth *s, const saemon_kernel *k, uint64_t seed)
{
    size_t n = s->n_calib, d_sae = s->d_sae;
    float *xc = malloc(n * s->d_in * sizeof *xc);
    float *lo = malloc(d_sae * sizeof *lo);
    float *all = malloc(n * d_sae * sizeof *all);
    bench_kinst ki;
    int rc = -1;
    if (!xc || !lo || !all)
        goto out;
    bench_synth_acts(seed, 1, s->d_in, d_sae, n, xc);
    for (size_t j = 0; j < d_sae; j++)
        lo[j] = -INFINITY;
    saemon_kernel_plan plan = {.d_in = s->d_in, .d_sae = d_sae, .epilogue = SAEMON_EPI_THRESHOLD,
                               .bias = s->b_enc, .threshold = lo};
    if (bench_kinst_init(&ki, k, &plan, s->w_rows, n) != 0)
        goto out;
    bench_kinst_run(&ki, xc, n);
    size_t m = 0;
    for (size_t r = 0; r < n; r++)
        for (uint32_t e = 0; e < ki.out.count[r]; e++)
            all[m++] = ki.out.value[r * ki.out.row_capacity + e];
    bench_kinst_free(&ki);
    size_t want = (size_t)llround(s->target_l0 * (double)n);
    if (m <= want || want == 0)
        goto out;
    qsort(all, m, sizeof *all, cmp_desc);
    s->theta = 0.5f * (all[want - 1] + all[want]);
    size_t above = 0;
    for (size_t i = 0; i < m; i++)
        above += all[i] > s->theta;
    s->calib_l0 = (double)above / (double)n;
    for (size_t j = 0; j < d_sae; j++)
        s->threshold[j] = s->theta;
    rc = 0;
out:
    free(xc);
    free(lo);
    free(all);
    return rc;
}

int bench_synth_make(bench_synth *s, size_t d_in, size_t d_sae, size_t n_tokens, size_t n_calib,
                     double target_l0, uint64_t seed, const saemon_kernel *k)
{
    memset(s, 0, sizeof *s);
    s->d_in = d_in;
    s->d_sae = d_sae;
    s->n_tokens = n_tokens;
    s->n_calib = n_calib;
    s->target_l0 = target_l0;
    s->w_rows = aligned_alloc(64, (d_sae * d_in * sizeof(float) + 63) / 64 * 64);
    s->b_enc = malloc(d_sae * sizeof(float));
    s->threshold = malloc(d_sae * sizeof(float));
    s->x = malloc(n_tokens * d_in * sizeof(float));
    float *noise = malloc(d_in * sizeof(float));
    if (!s->w_rows || !s->b_enc || !s->threshold || !s->x || !noise) {
        free(noise);
        bench_synth_free(s);
        return -1;
    }
    const double enc_noise = 0.2 / sqrt((double)d_in);
    for (size_t j = 0; j < d_sae; j++) {
        float *w = s->w_rows + j * d_in;
        bench_synth_dec_row(seed, j, d_in, w);
        uint64_t ns = seed_of(seed, STREAM_ENC_NOISE, j);
        gaussians(&ns, noise, d_in, enc_noise);
        for (size_t i = 0; i < d_in; i++)
            w[i] += noise[i];
    }
    free(noise);
    uint64_t bs = seed_of(seed, STREAM_BIAS, 0);
    gaussians(&bs, s->b_enc, d_sae, 0.05);
    bench_synth_acts(seed, 0, d_in, d_sae, n_tokens, s->x);
    if (calibrate(s, k, seed) != 0) {
        bench_synth_free(s);
        return -1;
    }
    return 0;
}

void bench_synth_free(bench_synth *s)
{
    free(s->w_rows);
    free(s->b_enc);
    free(s->threshold);
    free(s->x);
    memset(s, 0, sizeof *s);
}
