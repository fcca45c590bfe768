/* checkkernels: every encode-kernel variant against the scalar reference.
 *
 * dav1d-checkasm style, standalone (libc + libm + the kernels/ sources only, so it can
 * be cross-compiled with `aarch64-linux-gnu-gcc -static` and run under qemu):
 * for each variant from saemon_kernels_all() that runs on this CPU, encode the
 * same seeded random inputs with it and with the reference (the variant marked
 * .reference, f32-encode-1x1-scalar) and compare.
 *
 * The rule (see docs/kernels.md): the same active set, except latents whose
 * reference pre-activation lies within tol of the threshold / k-th value /
 * zero; values within tol_j = 8*eps_f32*(sum_i |x_i*W_ji| + |bias_j|) + tiny.
 * Exact-mode cases (small integers, every sum exact in fp32) use tol = 0.
 *
 *   checkkernels [--seed=N] [--test=SUBSTR] [--isa=NAME] [--bench [--batch=N]] [--list] [--quick] [-v]
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kernel.h"
#include "tests/checkkernels/real-sae.h"

/* ---- options and RNG ------------------------------------------------------ */

static struct {
    uint64_t seed;
    const char *test;
    const char *isa;
    const char *sae, *acts;
    int bench, list, verbose, quick;
    size_t batch; /* --batch=N: bench only this batch size */
} opt;

static uint64_t rng_state;

static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void rnd_seed(uint64_t s)
{
    rng_state = s * 0x9E3779B97F4A7C15ULL + 0x1234567;
    if (!rng_state)
        rng_state = 1;
    for (int i = 0; i < 4; i++)
        rnd();
}

static uint32_t rnd_below(uint32_t n) { return (uint32_t)((rnd() >> 32) % n); }
static double rnd_unit(void) { return (double)(rnd() >> 11) * 0x1p-53; }

static double rnd_normal(void)
{
    double u = rnd_unit(), v = rnd_unit();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int rnd_int(int lo, int hi) { return lo + (int)rnd_below((uint32_t)(hi - lo + 1)); }

/* ---- crash context: a fault inside a kernel names the case ---------------- */

static char context[256];

static void on_fatal_signal(int sig)
{
    static const char prefix[] = "checkkernels: FATAL signal in ";
    (void)!write(2, prefix, sizeof prefix - 1);
    (void)!write(2, context, strlen(context));
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- one test case -------------------------------------------------------- */

typedef enum { MODE_RANDOM, MODE_SPARSE, MODE_EXACT, MODE_NEAR, MODE_EDGE, MODE_COUNT } data_mode;
static const char *const mode_names[] = {"random", "sparse", "exact", "near", "edge"};

typedef enum { EPI_RELU, EPI_JUMP, EPI_GATED, EPI_TOPK, EPI_TOPK_MAG, EPI_COUNT } epi_kind;
static const char *const epi_names[] = {"threshold-relu", "threshold-jump", "gated", "topk", "topk-mag"};

typedef struct {
    size_t d_in, d_sae, n, k;
    uint32_t index_base;
    epi_kind epi;
    data_mode mode;
    char name[64];
} case_desc;

typedef struct {
    saemon_kernel_plan plan;
    float *w, *x, *bias, *threshold, *mag_scale, *mag_bias;
} case_data;

static float exact_pow2(void) { return (float[]){0.5f, 1.0f, 2.0f}[rnd_below(3)]; }

/* The reference's own view of latent j on row x: the double dot product and
 * the sum of |x_i*W_ji| over finite terms (for the tolerance). */
static void ref_dot(const float *w, const float *x, size_t d_in, double *dot, double *abs_sum)
{
    double acc = 0, s = 0;
    for (size_t i = 0; i < d_in; i++) {
        double t = (double)w[i] * (double)x[i];
        acc += t;
        if (isfinite(t))
            s += fabs(t);
    }
    *dot = acc;
    *abs_sum = s;
}

static void fill_edge_row(float *x, size_t d_in, size_t r)
{
    size_t p = rnd_below((uint32_t)d_in);
    switch (r % 9) {
    case 1: x[p] = NAN; break;
    case 2: x[p] = INFINITY; break;
    case 3: x[p] = -INFINITY; break;
    case 4:
        x[p] = INFINITY;
        x[rnd_below((uint32_t)d_in)] = -INFINITY;
        break;
    case 5:
        for (size_t i = 0; i < d_in; i += 2)
            x[i] = (float)(rnd_normal() * 1e-40);
        break;
    case 6: memset(x, 0, d_in * sizeof *x); break;
    case 7:
        for (size_t i = 0; i < d_in; i++)
            x[i] = (float)(rnd_normal() * 1e-41);
        break;
    case 8: /* a large but finite row */
        for (size_t i = 0; i < d_in; i++)
            x[i] *= 1e12f;
        break;
    default: break;
    }
}

static void case_generate(const case_desc *c, case_data *d)
{
    const size_t d_in = c->d_in, d_sae = c->d_sae, n = c->n;
    const int exact = c->mode == MODE_EXACT;
    d->w = malloc(d_sae * d_in * sizeof(float));
    d->x = malloc(n * d_in * sizeof(float));
    d->bias = malloc(d_sae * sizeof(float));
    d->threshold = calloc(d_sae, sizeof(float));
    d->mag_scale = malloc(d_sae * sizeof(float));
    d->mag_bias = malloc(d_sae * sizeof(float));
    const double wscale = 1.0 / sqrt((double)d_in);
    for (size_t i = 0; i < d_sae * d_in; i++)
        d->w[i] = exact ? (float)rnd_int(-3, 3) : (float)(rnd_normal() * wscale);
    for (size_t i = 0; i < n * d_in; i++)
        d->x[i] = exact ? (float)rnd_int(-4, 4) : (float)rnd_normal();
    if (c->mode == MODE_EDGE)
        for (size_t r = 0; r < n; r++)
            fill_edge_row(d->x + r * d_in, d_in, r + rnd_below(9));
    for (size_t j = 0; j < d_sae; j++) {
        d->bias[j] = exact ? (float)rnd_int(-4, 4)
                     : c->mode == MODE_SPARSE ? (float)(-2.5 + 0.3 * rnd_normal())
                                              : (float)rnd_normal();
        if (c->epi == EPI_JUMP)
            d->threshold[j] = exact ? (float)rnd_int(0, 3) : (float)fabs(0.5 * rnd_normal());
        d->mag_scale[j] = exact ? exact_pow2() : (float)exp(0.3 * rnd_normal());
        d->mag_bias[j] = exact ? (float)rnd_int(-3, 3) : (float)rnd_normal();
    }
    if (c->mode == MODE_NEAR) {
        /* Put latent j's pre-activation on row j%n a hair above/below its
         * threshold (THRESHOLD/GATED) or into a cluster of near-equal values
         * around 1 (TOPK): adversarial for screening kernels. */
        static const double deltas[] = {0, 1e-7, 3e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2};
        for (size_t j = 0; j < d_sae; j++) {
            double dot, s;
            ref_dot(d->w + j * d_in, d->x + (j % n) * d_in, d_in, &dot, &s);
            double delta = deltas[rnd_below(8)] * (rnd_below(2) ? 1 : -1) * (1 + s);
            double target = c->epi >= EPI_TOPK ? 1.0 : c->epi == EPI_GATED ? 0.0 : d->threshold[j];
            if (c->epi == EPI_GATED && rnd_below(2)) { /* near the magnitude boundary instead */
                d->bias[j] = (float)(1.0 - dot);
                d->mag_bias[j] = (float)(-d->mag_scale[j] * dot + delta);
            } else {
                d->bias[j] = (float)(target - dot + delta);
            }
        }
    }
    saemon_kernel_plan *p = &d->plan;
    memset(p, 0, sizeof *p);
    p->d_in = d_in;
    p->d_sae = d_sae;
    p->k = c->k;
    p->index_base = c->index_base;
    p->bias = d->bias;
    switch (c->epi) {
    case EPI_RELU:
    case EPI_JUMP:
        p->epilogue = SAEMON_EPI_THRESHOLD;
        p->threshold = d->threshold;
        break;
    case EPI_GATED:
        p->epilogue = SAEMON_EPI_GATED;
        p->mag_scale = d->mag_scale;
        p->mag_bias = d->mag_bias;
        break;
    case EPI_TOPK:
    case EPI_TOPK_MAG:
        p->epilogue = SAEMON_EPI_TOPK;
        p->mag_scale = c->epi == EPI_TOPK_MAG ? d->mag_scale : NULL;
        break;
    default: break;
    }
}

static void case_free(case_data *d)
{
    free(d->w);
    free(d->x);
    free(d->bias);
    free(d->threshold);
    free(d->mag_scale);
    free(d->mag_bias);
}

/* ---- running a kernel ----------------------------------------------------- */

typedef struct {
    saemon_kernel_out out;
    size_t n;
} run_result;

static void *xaligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1)) {
        fprintf(stderr, "checkkernels: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

static size_t row_capacity(const saemon_kernel_plan *p)
{
    return p->epilogue == SAEMON_EPI_TOPK ? p->k : p->d_sae;
}

/* Pack W for kernel k and encode all n rows; exact-size buffers so that
 * ASan catches any overrun. Output slots are pre-filled with garbage. */
static void run_kernel(const saemon_kernel *k, const case_data *d, size_t n, run_result *res)
{
    const saemon_kernel_plan *p = &d->plan;
    size_t cap = row_capacity(p);
    void *packed = xaligned(k->packed_size(p));
    k->pack(p, d->w, packed);
    size_t scratch_bytes = k->scratch_size(p, n);
    void *scratch = scratch_bytes ? xaligned(scratch_bytes) : NULL;
    res->n = n;
    res->out.row_capacity = cap;
    size_t slots = n * cap > 0 ? n * cap : 1;
    res->out.index = malloc(slots * sizeof(uint32_t));
    res->out.value = malloc(slots * sizeof(float));
    res->out.count = malloc(n * sizeof(uint32_t));
    memset(res->out.index, 0xa5, slots * sizeof(uint32_t));
    memset(res->out.value, 0xff, slots * sizeof(float));
    memset(res->out.count, 0xa5, n * sizeof(uint32_t));
    k->encode(p, packed, d->x, n, &res->out, scratch);
    free(scratch);
    free(packed);
}

static void run_free(run_result *r)
{
    free(r->out.index);
    free(r->out.value);
    free(r->out.count);
}

/* ---- comparison ----------------------------------------------------------- */

typedef struct {
    double dot, abs_sum;
    double pre;  /* THRESHOLD/TOPK pre (exact, double); GATED gate */
    double mag;  /* GATED magnitude */
    double tol;  /* for pre / gate, and for the value of THRESHOLD/TOPK */
    double tol_mag;
    float pre_f; /* the reference's fp32 pre (TOPK ranking) */
} latent_ref;

static int fail_report(const saemon_kernel *k, const case_desc *c, size_t row, const char *what,
                       long latent, double want, double got, double tol)
{
    fprintf(stderr,
            "FAIL %s %s d_in=%zu d_sae=%zu n=%zu k=%zu index_base=%" PRIu32 " seed=%" PRIu64
            "\n     row %zu: %s",
            k->name, c->name, c->d_in, c->d_sae, c->n, c->k, c->index_base, opt.seed, row, what);
    if (latent >= 0)
        fprintf(stderr, " at latent %ld (want %.9g, got %.9g, tol %.3g)", latent, want, got, tol);
    fprintf(stderr, "\n     rerun: checkkernels --seed=%" PRIu64 " --test=%s --isa=%s\n", opt.seed,
            c->name, k->name);
    return 1;
}

static int near(double a, double b, double tol)
{
    if (isnan(a) || isnan(b))
        return 0;
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= tol;
}

/* The reference's view of row r: per-latent exact pre-activations and
 * tolerances, and for TOPK the k-th largest value and its tolerance.
 * Computed once per case, shared by every variant. */
static void row_refs(const case_desc *c, const case_data *d, size_t r, latent_ref *lr, double *kth_out,
                     double *kth_tol_out)
{
    const saemon_kernel_plan *p = &d->plan;
    const size_t d_sae = p->d_sae;
    const int exact = c->mode == MODE_EXACT;
    const float *x = d->x + r * p->d_in;
    const double tiny = 1e-30;
    for (size_t j = 0; j < d_sae; j++) {
        latent_ref *l = &lr[j];
        ref_dot(d->w + j * p->d_in, x, p->d_in, &l->dot, &l->abs_sum);
        float df = (float)l->dot;
        double b = p->bias[j];
        l->tol = exact ? 0 : 8.0 * FLT_EPSILON * (l->abs_sum + fabs(b)) + tiny;
        switch (p->epilogue) {
        case SAEMON_EPI_THRESHOLD: l->pre = l->dot + b - p->threshold[j]; break;
        case SAEMON_EPI_GATED:
            l->pre = l->dot + b;
            l->mag = p->mag_scale[j] * l->dot + p->mag_bias[j];
            l->tol_mag = exact ? 0
                               : 8.0 * FLT_EPSILON * (fabs(p->mag_scale[j]) * l->abs_sum +
                                                      fabs(p->mag_bias[j])) + tiny;
            break;
        case SAEMON_EPI_TOPK: {
            double ms = p->mag_scale ? p->mag_scale[j] : 1.0;
            l->pre = (l->dot + b) * ms;
            l->tol *= fabs(ms);
            l->pre_f = df + (float)b;
            if (p->mag_scale)
                l->pre_f *= p->mag_scale[j];
            break;
        }
        }
    }
    /* TOPK: the reference's k-th largest (non-NaN) pre and its tolerance. */
    double kth = -INFINITY, kth_tol = 0;
    if (p->epilogue == SAEMON_EPI_TOPK && p->k > 0 && p->k <= d_sae) {
        size_t count_above = 0;
        for (size_t j = 0; j < d_sae; j++)
            count_above += !isnan(lr[j].pre_f);
        if (count_above >= p->k) {
            /* k-th largest by selection: smallest among the ref's chosen set
             * is not enough (ReLU drops), so rank explicitly. */
            float *vals = malloc(d_sae * sizeof(float));
            size_t m = 0;
            for (size_t j = 0; j < d_sae; j++)
                if (!isnan(lr[j].pre_f))
                    vals[m++] = lr[j].pre_f;
            for (size_t a = 0; a < p->k; a++) { /* partial selection sort, k small or d_sae small */
                size_t best = a;
                for (size_t b2 = a + 1; b2 < m; b2++)
                    if (vals[b2] > vals[best])
                        best = b2;
                float t = vals[a];
                vals[a] = vals[best];
                vals[best] = t;
            }
            kth = vals[p->k - 1];
            for (size_t j = 0; j < d_sae; j++)
                if (lr[j].pre_f == (float)kth && lr[j].tol > kth_tol)
                    kth_tol = lr[j].tol;
            free(vals);
        }
    }
    *kth_out = kth;
    *kth_tol_out = kth_tol;
}

/* Compare one row; returns nonzero on failure (after printing it). */
static int compare_row(const saemon_kernel *k, const case_desc *c, const case_data *d, size_t r,
                       const run_result *ref, const run_result *got, const latent_ref *lr, double kth,
                       double kth_tol, signed char *ref_on, signed char *got_on, float *ref_v, float *got_v)
{
    const saemon_kernel_plan *p = &d->plan;
    const size_t d_sae = p->d_sae, cap = ref->out.row_capacity;
    const int exact = c->mode == MODE_EXACT;
    uint32_t gc = got->out.count[r];
    if (gc > cap || (p->epilogue == SAEMON_EPI_TOPK && gc > p->k))
        return fail_report(k, c, r, "count exceeds row capacity", -1, (double)cap, gc, 0);
    memset(ref_on, 0, d_sae);
    memset(got_on, 0, d_sae);
    for (uint32_t i = 0; i < ref->out.count[r]; i++) {
        uint32_t j = ref->out.index[r * cap + i] - p->index_base;
        ref_on[j] = 1;
        ref_v[j] = ref->out.value[r * cap + i];
    }
    for (uint32_t i = 0; i < gc; i++) {
        uint32_t ix = got->out.index[r * cap + i];
        if (ix < p->index_base || ix - p->index_base >= d_sae)
            return fail_report(k, c, r, "index out of range", (long)ix, 0, 0, 0);
        if (i > 0 && ix <= got->out.index[r * cap + i - 1])
            return fail_report(k, c, r, "indices not strictly ascending", (long)ix, 0, 0, 0);
        got_on[ix - p->index_base] = 1;
        got_v[ix - p->index_base] = got->out.value[r * cap + i];
    }
    for (size_t j = 0; j < d_sae; j++) {
        const latent_ref *l = &lr[j];
        const long jj = (long)(j + p->index_base);
        if (ref_on[j] != got_on[j]) {
            int excused = 0;
            switch (exact ? -1 : (int)p->epilogue) { /* exact cases: no excuses */
            case SAEMON_EPI_THRESHOLD: excused = near(l->pre, 0, l->tol); break;
            case SAEMON_EPI_GATED: excused = near(l->pre, 0, l->tol) || near(l->mag, 0, l->tol_mag); break;
            case SAEMON_EPI_TOPK:
                excused = near(l->pre, 0, l->tol) ||
                          (isfinite(kth) && near(l->pre, kth, l->tol + kth_tol));
                break;
            default: break;
            }
            if (!excused)
                return fail_report(k, c, r, ref_on[j] ? "latent missing" : "extra latent", jj,
                                   ref_on[j] ? ref_v[j] : (p->epilogue == SAEMON_EPI_GATED ? l->mag : l->pre),
                                   got_on[j] ? got_v[j] : NAN,
                                   p->epilogue == SAEMON_EPI_GATED ? l->tol_mag : l->tol);
            continue;
        }
        if (!ref_on[j])
            continue;
        double tol = p->epilogue == SAEMON_EPI_GATED ? l->tol_mag : l->tol;
        if (!(ref_v[j] == got_v[j] || near(ref_v[j], got_v[j], tol)))
            return fail_report(k, c, r, "value differs", jj, ref_v[j], got_v[j], tol);
        if (p->epilogue == SAEMON_EPI_TOPK && !(got_v[j] > 0))
            return fail_report(k, c, r, "non-positive TopK value emitted", jj, ref_v[j], got_v[j], tol);
    }
    return 0;
}

/* The variant the registry marks as the reference (exactly one). */
static const saemon_kernel *find_reference(void)
{
    size_t nk;
    const saemon_kernel *const *all = saemon_kernels_all(&nk);
    const saemon_kernel *ref = NULL;
    for (size_t i = 0; i < nk; i++)
        if (all[i]->reference) {
            if (ref) {
                fprintf(stderr, "checkkernels: two references registered: %s and %s\n", ref->name, all[i]->name);
                return NULL;
            }
            ref = all[i];
        }
    return ref;
}

static int runnable(const saemon_kernel *k)
{
    return (k->cpu_features & ~saemon_cpu_features()) == 0;
}

static int selected(const saemon_kernel *k, const saemon_kernel *ref)
{
    if (k == ref || !runnable(k))
        return 0;
    return !opt.isa || strcmp(opt.isa, k->name) == 0 || strcmp(opt.isa, k->family) == 0;
}

/* Run one case against every selected variant; returns the failure count. */
static int check_data(const case_desc *c, case_data *dp, const saemon_kernel *ref, const saemon_kernel *const *ks,
                      size_t nk, size_t *checked)
{
    case_data d = *dp;
    snprintf(context, sizeof context, "scalar reference, %s d_in=%zu d_sae=%zu n=%zu seed=%" PRIu64,
             c->name, c->d_in, c->d_sae, c->n, opt.seed);
    run_result want;
    run_kernel(ref, &d, c->n, &want);
    latent_ref *lr = malloc(c->n * c->d_sae * sizeof *lr);
    double *kth = malloc(c->n * sizeof *kth), *kth_tol = malloc(c->n * sizeof *kth_tol);
    for (size_t r = 0; r < c->n; r++)
        row_refs(c, &d, r, lr + r * c->d_sae, &kth[r], &kth_tol[r]);
    signed char *ref_on = malloc(c->d_sae), *got_on = malloc(c->d_sae);
    float *ref_v = malloc(c->d_sae * sizeof(float)), *got_v = malloc(c->d_sae * sizeof(float));
    float *x_copy = malloc(c->n * c->d_in * sizeof(float));
    memcpy(x_copy, d.x, c->n * c->d_in * sizeof(float));
    int failures = 0;
    for (size_t v = 0; v < nk; v++) {
        if (!selected(ks[v], ref))
            continue;
        snprintf(context, sizeof context, "%s, %s d_in=%zu d_sae=%zu n=%zu k=%zu seed=%" PRIu64,
                 ks[v]->name, c->name, c->d_in, c->d_sae, c->n, c->k, opt.seed);
        run_result got;
        run_kernel(ks[v], &d, c->n, &got);
        if (memcmp(x_copy, d.x, c->n * c->d_in * sizeof(float)) != 0)
            failures += fail_report(ks[v], c, 0, "input x was modified", -1, 0, 0, 0);
        for (size_t r = 0; r < c->n; r++)
            if (compare_row(ks[v], c, &d, r, &want, &got, lr + r * c->d_sae, kth[r], kth_tol[r], ref_on, got_on,
                            ref_v, got_v)) {
                failures++;
                break;
            }
        checked[v]++;
        run_free(&got);
    }
    free(x_copy);
    free(ref_v);
    free(got_v);
    free(ref_on);
    free(got_on);
    free(lr);
    free(kth);
    free(kth_tol);
    run_free(&want);
    return failures;
}

static int check_case(const case_desc *c, const saemon_kernel *ref, const saemon_kernel *const *ks,
                      size_t nk, size_t *checked)
{
    case_data d;
    case_generate(c, &d);
    int failures = check_data(c, &d, ref, ks, nk, checked);
    case_free(&d);
    return failures;
}

static int summarize(const saemon_kernel *const *ks, size_t nk, const saemon_kernel *ref, size_t *checked,
                     int failures)
{
    int any = 0;
    for (size_t v = 0; v < nk; v++) {
        if (!selected(ks[v], ref))
            continue;
        any = 1;
        printf(" - %-32s %6zu cases checked\n", ks[v]->name, checked[v]);
    }
    if (!any)
        printf(" - no variant runnable on this CPU%s%s; nothing to compare\n",
               opt.isa ? " matching " : "", opt.isa ? opt.isa : "");
    /* Name what was not run, so nobody mistakes "skipped" for "passed". */
    for (size_t v = 0; v < nk; v++)
        if (!runnable(ks[v])) {
            char why[160];
            printf(" - %-32s NOT RUN on this host (%s)\n", ks[v]->name, saemon_kernel_reason(ks[v], NULL, why, sizeof why));
        }
    printf("checkkernels: %s (seed %" PRIu64 ")\n", failures ? "FAILED" : "all OK", opt.seed);
    free(checked);
    return failures ? 1 : 0;
}

static int run_checks(void)
{
    static const size_t dims[] = {1, 3, 15, 16, 17, 31, 33, 64, 100, 257, 768};
    static const size_t batches[] = {1, 2, 3, 7, 8, 9, 64, 65};
    const size_t n_dims = sizeof dims / sizeof dims[0], n_batches = sizeof batches / sizeof batches[0];
    size_t nk;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    const saemon_kernel *ref = find_reference();
    if (!ref) {
        fprintf(stderr, "checkkernels: no (single) variant is marked .reference in kernels/registry.inc\n");
        return 1;
    }
    size_t *checked = calloc(nk, sizeof *checked);
    int failures = 0;
    size_t counter = 0;
    for (size_t a = 0; a < n_dims; a++)
        for (size_t b = 0; b < n_dims; b++)
            for (int e = 0; e < EPI_COUNT; e++)
                for (int m = 0; m < MODE_COUNT; m++, counter++) {
                    case_desc c;
                    c.d_in = dims[a];
                    c.d_sae = dims[b];
                    c.epi = (epi_kind)e;
                    c.mode = (data_mode)m;
                    /* Big shapes get small batches: keeps the run short
                     * while every batch size still meets every tail. */
                    c.n = batches[(counter * 5 + a + b) % n_batches];
                    if (c.d_in * c.d_sae > 16 * 1024 && c.n > 9)
                        c.n = batches[counter % 6];
                    const size_t ks_[] = {1, 5, c.d_sae, c.d_sae + 3};
                    c.k = ks_[(counter / 3 + a) % 4];
                    c.index_base = counter % 3 == 0 ? 0 : 1000 + (uint32_t)(counter % 7919);
                    snprintf(c.name, sizeof c.name, "%s/%s", epi_names[e], mode_names[m]);
                    if (opt.test && !strstr(c.name, opt.test))
                        continue;
                    /* --quick (emulators): every dim still meets every other
                     * dim, except the largest products, at batches <= 9
                     * (the fixed-shape cases below keep 64 and 65). */
                    if (opt.quick && c.d_in * c.d_sae > 20 * 1024)
                        continue;
                    if (opt.quick && c.n > 9)
                        c.n = 9 - counter % 3;
                    rnd_seed(opt.seed ^ (counter * 0x100000001b3ULL));
                    failures += check_case(&c, ref, ks, nk, checked);
                }
    /* Every batch size at two fixed shapes, one per epilogue. */
    static const size_t fixed[][2] = {{33, 100}, {100, 257}};
    for (size_t f = 0; f < 2; f++)
        for (size_t bi = 0; bi < n_batches; bi++)
            for (int e = 0; e < EPI_COUNT; e++, counter++) {
                case_desc c = {.d_in = fixed[f][0], .d_sae = fixed[f][1], .n = batches[bi], .k = 5,
                               .index_base = 77, .epi = (epi_kind)e, .mode = MODE_RANDOM};
                snprintf(c.name, sizeof c.name, "%s/%s", epi_names[e], "batch");
                if (opt.test && !strstr(c.name, opt.test))
                    continue;
                rnd_seed(opt.seed ^ (counter * 0x100000001b3ULL));
                failures += check_case(&c, ref, ks, nk, checked);
            }
    /* Long rows: fp32 accumulation depth, and int8's int32 range limit
     * (d_in > 65536 must take its fp32 path). */
    static const size_t long_rows[][2] = {{4096, 33}, {65537, 17}};
    for (size_t f = 0; f < 2; f++)
        for (int e = 0; e < EPI_COUNT; e++)
            for (int m = 0; m < MODE_COUNT; m += MODE_NEAR, counter++) { /* random, near */
                case_desc c = {.d_in = long_rows[f][0], .d_sae = long_rows[f][1], .n = 2, .k = 5,
                               .index_base = 5, .epi = (epi_kind)e, .mode = (data_mode)m};
                snprintf(c.name, sizeof c.name, "%s/%s-long", epi_names[e], mode_names[m]);
                if (opt.test && !strstr(c.name, opt.test))
                    continue;
                rnd_seed(opt.seed ^ (counter * 0x100000001b3ULL));
                failures += check_case(&c, ref, ks, nk, checked);
            }
    return summarize(ks, nk, ref, checked, failures);
}

/* ---- --sae=DIR --acts=FILE: a real trained dictionary ---------------------- */

/* Relative paths are under $SAEMON_SHARED_DIR/data/sae; if that is not
 * there the check is skipped (exit 77, meson's skip code). */
static int resolve(const char *arg, char *out, size_t len)
{
    if (arg[0] == '/') {
        snprintf(out, len, "%s", arg);
        return 1;
    }
    const char *shared = getenv("SAEMON_SHARED_DIR");
    if (!shared || !*shared)
        return 0;
    snprintf(out, len, "%s/data/sae/%s", shared, arg);
    return access(out, R_OK) == 0;
}

static int run_real(const char *sae_arg, const char *acts_arg)
{
    char dir[4096], acts_path[4096], err[512];
    if (!resolve(sae_arg, dir, sizeof dir) || !resolve(acts_arg, acts_path, sizeof acts_path)) {
        printf("checkkernels: SKIP real dictionary %s: shared data not found (set SAEMON_SHARED_DIR)\n", sae_arg);
        return 77;
    }
    real_sae sae;
    if (real_sae_load(dir, &sae, err, sizeof err) != 0) {
        fprintf(stderr, "checkkernels: %s\n", err);
        return 1;
    }
    size_t n_tok;
    float *acts = real_npy_load(acts_path, sae.d_in, &n_tok, err, sizeof err);
    if (!acts) {
        fprintf(stderr, "checkkernels: %s\n", err);
        real_sae_free(&sae);
        return 1;
    }
    if (sae.apply_b_dec)
        for (size_t t = 0; t < n_tok; t++)
            for (size_t i = 0; i < sae.d_in; i++)
                acts[t * sae.d_in + i] -= sae.b_dec[i];
    float *thr = calloc(sae.d_sae, sizeof(float));
    if (sae.threshold)
        for (size_t j = 0; j < sae.d_sae; j++)
            thr[j] = sae.threshold[j] > 0 ? sae.threshold[j] : 0.0f; /* JumpReLU: max(theta, 0) */
    size_t nk;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    const saemon_kernel *ref = find_reference();
    size_t *checked = calloc(nk, sizeof *checked);
    int failures = 0;
    static const size_t batches[] = {1, 7, 64};
    for (size_t t = 0, b = 0; t < n_tok; b++) {
        size_t n = batches[b % 3] < n_tok - t ? batches[b % 3] : n_tok - t;
        case_desc c = {.d_in = sae.d_in, .d_sae = sae.d_sae, .n = n, .k = sae.k, .index_base = 0,
                       .epi = sae.arch == REAL_TOPK ? EPI_TOPK : EPI_JUMP, .mode = MODE_RANDOM};
        snprintf(c.name, sizeof c.name, "real/tokens-%zu", t);
        case_data d = {.w = sae.w_rows, .x = acts + t * sae.d_in, .bias = sae.b_enc, .threshold = thr};
        d.plan = (saemon_kernel_plan){.d_in = sae.d_in, .d_sae = sae.d_sae, .k = sae.k,
                                      .epilogue = sae.arch == REAL_TOPK ? SAEMON_EPI_TOPK : SAEMON_EPI_THRESHOLD,
                                      .bias = sae.b_enc, .threshold = thr};
        failures += check_data(&c, &d, ref, ks, nk, checked);
        t += n;
    }
    printf("checkkernels: real dictionary %s (%zu -> %zu, %s), %zu tokens from %s\n", sae_arg, sae.d_in, sae.d_sae,
           sae.arch == REAL_TOPK ? "topk" : sae.arch == REAL_JUMPRELU ? "jumprelu" : "standard", n_tok, acts_arg);
    free(thr);
    free(acts);
    real_sae_free(&sae);
    return summarize(ks, nk, ref, checked, failures);
}

/* ---- --bench -------------------------------------------------------------- */

/* Thread CPU time: the machine is shared, and time spent descheduled is
 * not the kernel's. (Memory-bandwidth contention still shows.) */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A trained-like dictionary: unit-norm rows, inputs ~N(0,1) (pre-activation
 * sd ~1), biases set so ~0.3% of latents (~75 of 24576) fire per token. */
static void bench_generate(case_data *d, size_t d_in, size_t d_sae, size_t n, epi_kind epi)
{
    case_desc c = {.d_in = d_in, .d_sae = d_sae, .n = n, .k = 64, .epi = epi, .mode = MODE_RANDOM};
    case_generate(&c, d);
    for (size_t j = 0; j < d_sae; j++) {
        float *w = d->w + j * d_in;
        double s = 0;
        for (size_t i = 0; i < d_in; i++)
            s += (double)w[i] * w[i];
        for (size_t i = 0; i < d_in; i++)
            w[i] = (float)(w[i] / sqrt(s));
        d->bias[j] = (float)(-2.75 + 0.1 * rnd_normal());
        d->threshold[j] = epi == EPI_JUMP ? 0.05f : 0.0f;
    }
}

static int run_bench(void)
{
    static const size_t shapes[][2] = {{768, 24576}};
    static const size_t batches[] = {1, 8, 64};
    static const epi_kind epis[] = {EPI_JUMP, EPI_TOPK};
    size_t nk;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    printf("%-32s %-15s %5s %14s %12s %8s\n", "variant", "epilogue", "batch", "ns/call", "ns/token",
           "active");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t e = 0; e < sizeof epis / sizeof epis[0]; e++)
            for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
                const size_t d_in = shapes[s][0], d_sae = shapes[s][1], n = batches[bi];
                if (opt.batch && opt.batch != n)
                    continue;
                rnd_seed(opt.seed);
                case_data d;
                bench_generate(&d, d_in, d_sae, n, epis[e]);
                for (size_t v = 0; v < nk; v++) {
                    const saemon_kernel *k = ks[v];
                    if (!runnable(k) || (opt.isa && strcmp(opt.isa, k->name) && strcmp(opt.isa, k->family)))
                        continue;
                    const saemon_kernel_plan *p = &d.plan;
                    void *packed = xaligned(k->packed_size(p));
                    k->pack(p, d.w, packed);
                    size_t sb = k->scratch_size(p, n);
                    void *scratch = sb ? xaligned(sb) : NULL;
                    size_t cap = row_capacity(p);
                    saemon_kernel_out out = {cap, malloc(n * cap * sizeof(uint32_t)),
                                             malloc(n * cap * sizeof(float)),
                                             malloc(n * sizeof(uint32_t))};
                    double times[64];
                    int reps = 0;
                    double start = now_ns();
                    k->encode(p, packed, d.x, n, &out, scratch); /* warm-up */
                    while (reps < 64 && (reps < 3 || now_ns() - start < 0.4e9)) {
                        double t0 = now_ns();
                        k->encode(p, packed, d.x, n, &out, scratch);
                        times[reps++] = now_ns() - t0;
                    }
                    qsort(times, (size_t)reps, sizeof times[0], cmp_double);
                    double med = times[reps / 2];
                    size_t active = 0;
                    for (size_t r = 0; r < n; r++)
                        active += out.count[r];
                    printf("%-32s %-15s %5zu %14.0f %12.0f %8.1f   (%zux%zu, %d reps)\n", k->name,
                           epi_names[epis[e]], n, med, med / (double)n, (double)active / (double)n,
                           d_in, d_sae, reps);
                    fflush(stdout);
                    free(out.index);
                    free(out.value);
                    free(out.count);
                    free(scratch);
                    free(packed);
                }
                case_free(&d);
            }
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static int usage(const char *arg)
{
    fprintf(stderr,
            "checkkernels: unknown argument '%s'\n"
            "usage: checkkernels [--seed=N] [--test=SUBSTR] [--isa=NAME] [--bench [--batch=N]] [--list] [--quick] [-v]\n"
            "       checkkernels --sae=DIR --acts=FILE.npy   (a real SAELens dictionary; relative paths\n"
            "                    are under $SAEMON_SHARED_DIR/data/sae)\n",
            arg);
    return 2;
}

int main(int argc, char **argv)
{
    opt.seed = (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--seed=", 7) == 0)
            opt.seed = strtoull(a + 7, NULL, 0);
        else if (strcmp(a, "--seed") == 0 && i + 1 < argc)
            opt.seed = strtoull(argv[++i], NULL, 0);
        else if (strncmp(a, "--test=", 7) == 0)
            opt.test = a + 7;
        else if (strncmp(a, "--isa=", 6) == 0)
            opt.isa = a + 6;
        else if (strncmp(a, "--sae=", 6) == 0)
            opt.sae = a + 6;
        else if (strncmp(a, "--acts=", 7) == 0)
            opt.acts = a + 7;
        else if (strncmp(a, "--batch=", 8) == 0)
            opt.batch = strtoull(a + 8, NULL, 0);
        else if (strcmp(a, "--bench") == 0)
            opt.bench = 1;
        else if (strcmp(a, "--list") == 0)
            opt.list = 1;
        else if (strcmp(a, "-v") == 0)
            opt.verbose = 1;
        else if (strcmp(a, "--quick") == 0)
            opt.quick = 1;
        else
            return usage(a);
    }
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGILL, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
    if (opt.list) {
        size_t nk;
        const saemon_kernel *const *ks = saemon_kernels_all(&nk);
        for (size_t v = 0; v < nk; v++)
        {
            char why[160];
            printf("%-32s family=%-10s priority=%-3d %s%s\n", ks[v]->name, ks[v]->family, ks[v]->priority,
                   ks[v]->reference ? "[reference] " : "", saemon_kernel_reason(ks[v], opt.isa, why, sizeof why));
        }
        return 0;
    }
    if (!find_reference()) {
        fprintf(stderr, "checkkernels: no (single) variant is marked .reference in kernels/registry.inc\n");
        return 1;
    }
    printf("checkkernels: seed %" PRIu64 ", cpu features 0x%x\n", opt.seed, saemon_cpu_features());
    if (opt.sae || opt.acts) {
        if (!opt.sae || !opt.acts)
            return usage("--sae and --acts go together");
        return run_real(opt.sae, opt.acts);
    }
    return opt.bench ? run_bench() : run_checks();
}
