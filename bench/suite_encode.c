/* saemon's side of `saemon bench`: every kernel variant through the public
 * encoder API, once per thread configuration (pinned), batch-1 latency
 * distribution over many distinct tokens and throughput at larger batches. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kernels/kernel.h"
#include "saemon/saemon.h"
#include "suite.h"

static int runnable(const saemon_kernel *k)
{
    return !(k->cpu_features & ~saemon_cpu_features());
}

/* Without --variant: every runnable variant except the reference (the
 * correctness oracle, and minutes slow; the registry marks it), which
 * `saemon bench kernels` adds. */
static int variant_wanted(const suite_opts *o, const saemon_kernel *k)
{
    if (!runnable(k))
        return 0;
    if (!o->variant_filter)
        return o->all_variants || !k->reference;
    char *copy = strdup(o->variant_filter), *save = NULL;
    int hit = 0;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !hit; t = strtok_r(NULL, ",", &save))
        hit = !strcmp(t, k->name) || !strcmp(t, k->family);
    free(copy);
    return hit;
}

size_t suite_count_variants(const suite_opts *o)
{
    size_t nk, n = 0;
    const saemon_kernel *const *all = saemon_kernels_all(&nk);
    for (size_t v = 0; v < nk; v++)
        n += variant_wanted(o, all[v]);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill_common(suite_row *r, const suite_pool *p, const char *variant, size_t threads,
                        const char *cpus)
{
    r->source = strdup(p->source);
    r->shape = strdup(p->shape);
    r->impl = strdup("saemon");
    r->variant = strdup(variant);
    r->threads = threads;
    snprintf(r->cpus, sizeof r->cpus, "%s", cpus);
    r->d_in = p->d_in;
    r->d_sae = p->d_sae;
}

/* Heap allocations of the process so far (bench/alloc_count.c, linked into
 * saemon-bench only), UINT64_MAX when not counted. */
uint64_t bench_alloc_calls(void) __attribute__((weak));

/* Batch 1, one distinct token after the other (cycling through the pool),
 * each call timed on its own. Page faults, context switches and heap
 * allocations over the timed calls are counted too: the tail's causes that
 * are saemon's own show there, deterministically. */
static void latency_cell(suite_row *r, const suite_opts *o, saemon_encoder *enc, const suite_pool *p)
{
    size_t want = o->latency_tokens, n = 0;
    double *s = malloc(want * sizeof *s);
    r->kind = SUITE_LATENCY;
    r->batch = 1;
    if (!s) {
        r->note = strdup("out of memory for latency samples");
        return;
    }
    const saemon_features *f;
    saemon_error err = {0};
    size_t warm = want < 50 ? want : 50;
    for (size_t i = 0; i < warm; i++)
        saemon_encoder_encode(enc, p->x + (i % p->n_tokens) * p->d_in, 1, &f, &err);
    double nnz = 0, t_cell = clock_now_s();
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    const uint64_t allocs0 = bench_alloc_calls ? bench_alloc_calls() : UINT64_MAX;
    while (n < want) {
        const float *x = p->x + (n % p->n_tokens) * p->d_in;
        double a = clock_now_s();
        saemon_status st = saemon_encoder_encode(enc, x, 1, &f, &err);
        double b = clock_now_s();
        if (st != SAEMON_OK) {
            if (asprintf(&r->note, "encode failed: %s", err.message) < 0)
                r->note = NULL;
            free(s);
            return;
        }
        s[n++] = b - a;
        nnz += (double)f->offsets[1];
        if ((n & 63) == 0) {
            progress_update((double)n / (double)want);
            if (b - t_cell > o->latency_max_s)
                break;
        }
    }
    const uint64_t allocs1 = bench_alloc_calls ? bench_alloc_calls() : UINT64_MAX;
    getrusage(RUSAGE_THREAD, &ru1);
    r->faults_per_token = (double)((ru1.ru_minflt - ru0.ru_minflt) + (ru1.ru_majflt - ru0.ru_majflt)) / (double)n;
    r->waits_per_token = (double)(ru1.ru_nvcsw - ru0.ru_nvcsw) / (double)n;
    r->preempted_per_token = (double)(ru1.ru_nivcsw - ru0.ru_nivcsw) / (double)n;
    r->allocs_per_token = allocs0 == UINT64_MAX ? -1 : (double)(allocs1 - allocs0) / (double)n;
    r->stopped_early = n < want;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s[i];
    qsort(s, n, sizeof *s, cmp_double);
    r->calls = n;
    r->p50_s = bench_percentile(s, n, 50);
    r->p90_s = bench_percentile(s, n, 90);
    r->p99_s = bench_percentile(s, n, 99);
    r->p999_s = bench_percentile(s, n, 99.9);
    r->max_s = s[n - 1];
    r->mean_s = sum / (double)n;
    r->tokens_per_s = 1.0 / r->mean_s;
    r->mean_l0 = nnz / (double)n;
    r->cdf_ms = malloc(SUITE_CDF_POINTS * sizeof *r->cdf_ms);
    for (size_t i = 0; r->cdf_ms && i < SUITE_CDF_POINTS; i++)
        r->cdf_ms[i] = (float)(1e3 * s[(size_t)llround((double)i / (SUITE_CDF_POINTS - 1) * (double)(n - 1))]);
    free(s);
}

/* The same latency cell again while a co-runner pollutes the caches. */
static void latency_beside_co_runner(suite_results *res, const suite_opts *o, saemon_encoder *enc,
                                     const suite_pool *pool, const char *variant, size_t threads, const char *cpus)
{
    suite_row *r = suite_add_row(res);
    if (!r)
        return;
    fill_common(r, pool, variant, threads, cpus);
    r->co_runner = 1;
    char desc[160];
    bench_co_runner *c = bench_co_runner_start(desc, sizeof desc);
    if (!c) {
        r->kind = SUITE_LATENCY;
        r->note = strdup(desc);
        return;
    }
    latency_cell(r, o, enc, pool);
    bench_co_runner_stop(c);
    r->ideal_s = 0; /* the roofline assumes the machine to itself */
    if (res->n_notes < 64)
        suite_note(res, "%s %s: %s", pool->shape, variant, desc);
}

typedef struct tput_ctx {
    saemon_encoder *enc;
    const float *x;
    size_t n;
    const saemon_features *f;
    int failed;
    saemon_error err;
} tput_ctx;

static void tput_call(void *p)
{
    tput_ctx *c = p;
    if (saemon_encoder_encode(c->enc, c->x, c->n, &c->f, &c->err) != SAEMON_OK)
        c->failed = 1;
}

static void throughput_cell(suite_row *r, const suite_opts *o, saemon_encoder *enc, const suite_pool *p,
                            size_t batch)
{
    r->kind = SUITE_THROUGHPUT;
    r->batch = batch;
    /* The pool holds at least the largest batch (suite.c sizes it). */
    tput_ctx c = {.enc = enc, .x = p->x, .n = batch};
    bench_stats st = bench_measure(tput_call, &c, &o->cell);
    if (c.failed) {
        if (asprintf(&r->note, "encode failed: %s", c.err.message) < 0)
            r->note = NULL;
        return;
    }
    r->calls = st.calls;
    r->p50_s = st.median_s;
    r->p99_s = st.p99_s;
    r->mean_s = st.mean_s;
    r->tokens_per_s = (double)batch / st.median_s;
    r->mean_l0 = c.f ? (double)c.f->offsets[batch] / (double)batch : 0;
}

static size_t max_tput_batch(const suite_opts *o)
{
    size_t m = 1;
    for (size_t i = 0; i < o->n_tput_batches; i++)
        m = o->tput_batches[i] > m ? o->tput_batches[i] : m;
    return m;
}

static void skip_units(const suite_opts *o)
{
    for (size_t i = 0; i < (size_t)o->want_latency + o->n_tput_batches; i++)
        progress_end_unit();
}

void suite_run_saemon(suite_results *res, const suite_opts *o, const struct saemon_dict *dict,
                      const suite_pool *pool, char used_cpus[][64])
{
    size_t nk;
    const saemon_kernel *const *all = saemon_kernels_all(&nk);
    for (size_t v = 0; v < nk; v++) {
        const saemon_kernel *k = all[v];
        if (!variant_wanted(o, k))
            continue;
        char dtype[16];
        double wb = bench_variant_weight_bytes(k->name, dtype, sizeof dtype);
        double bytes = (wb > 0 ? wb : 4) * (double)pool->d_in * (double)pool->d_sae;
        for (size_t t = 0; t < o->n_threads; t++) {
            char label[96];
            size_t want = o->threads[t] ? o->threads[t] : res->allowed_cores;
            snprintf(label, sizeof label, "%s %s %zuT", pool->shape, k->name, want);
            progress_begin(label);
            saemon_encoder_options eo = {.variant = k->name, .threads = want,
                                         .max_batch = max_tput_batch(o),
                                         .cpus = o->cpus, .exclude_cpus = o->exclude_cpus};
            saemon_encoder *enc = NULL;
            saemon_error err = {0};
            if (saemon_encoder_create((const saemon_dict *)dict, &eo, &enc, &err) != SAEMON_OK) {
                suite_row *r = suite_add_row(res);
                if (r) {
                    fill_common(r, pool, k->name, want, "");
                    if (asprintf(&r->note, "encoder_create (%zu threads): %s", want, err.message) < 0)
                        r->note = NULL;
                }
                skip_units(o);
                suite_affinity_restore();
                continue;
            }
            size_t got = saemon_encoder_get_threads(enc);
            char cpus[64] = "";
            for (size_t i = 0, len = 0; i < got && len < sizeof cpus; i++)
                len += (size_t)snprintf(cpus + len, sizeof cpus - len, "%s%d", i ? "," : "",
                                        saemon_encoder_get_thread_cpu(enc, i));
            if (!used_cpus[t][0])
                snprintf(used_cpus[t], 64, "%s", cpus);
            if (*saemon_encoder_get_warning(enc))
                suite_note(res, "%s %s: %s", pool->shape, k->name, saemon_encoder_get_warning(enc));
            if (o->want_latency) {
                suite_row *r = suite_add_row(res);
                if (r) {
                    fill_common(r, pool, k->name, got, cpus);
                    latency_cell(r, o, enc, pool);
                    r->ideal_s = bench_roofline_ideal_s(suite_roof(res, got), bytes,
                                                        2.0 * (double)pool->d_in * (double)pool->d_sae, dtype);
                }
                if (o->co_runner)
                    latency_beside_co_runner(res, o, enc, pool, k->name, got, cpus);
                progress_end_unit();
            }
            for (size_t b = 0; b < o->n_tput_batches; b++) {
                suite_row *r = suite_add_row(res);
                if (r) {
                    fill_common(r, pool, k->name, got, cpus);
                    throughput_cell(r, o, enc, pool, o->tput_batches[b]);
                    r->ideal_s = bench_roofline_ideal_s(
                        suite_roof(res, got), bytes,
                        2.0 * (double)r->batch * (double)pool->d_in * (double)pool->d_sae, dtype);
                }
                progress_end_unit();
            }
            saemon_encoder_destroy(enc);
            suite_affinity_restore(); /* the encoder left the calling thread pinned */
        }
    }
}
