/* numpy and PyTorch doing the same encode as saemon, on the same tokens, with
 * the same number of threads and on the same cores (the child process
 * inherits the affinity set here). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
 * removed for the peers (some machines set them to a slower code path, see
 * docs/benchmarks.md), unless --peer-openblas-core forces the core. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

static double num(const cJSON *j, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(j, key));
}

static void peer_row(suite_results *res, const cJSON *j, const suite_pool *pool, size_t threads, const char *cpus)
{
    const char *peer = cJSON_GetStringValue(cJSON_GetObjectItem(j, "peer"));
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind"));
    if (!peer || !kind)
        return;
    suite_row *r = suite_add_row(res);
    if (!r)
        return;
    r->source = strdup(pool->source);
    r->shape = strdup(pool->shape);
    r->impl = strdup(peer);
    r->variant = strdup("fp32-dense");
    r->threads = threads;
    snprintf(r->cpus, sizeof r->cpus, "%s", cpus ? cpus : "");
    r->d_in = pool->d_in;
    r->d_sae = pool->d_sae;
    r->batch = (size_t)num(j, "batch");
    r->calls = (size_t)num(j, "calls");
    r->mean_l0 = num(j, "mean_l0");
    r->p99_s = num(j, "p99_s");
    if (!strcmp(kind, "latency")) {
        r->kind = SUITE_LATENCY;
        r->p50_s = num(j, "p50_s");
        r->p90_s = num(j, "p90_s");
        r->p999_s = num(j, "p999_s");
        r->max_s = num(j, "max_s");
        r->mean_s = num(j, "mean_s");
        r->tokens_per_s = r->mean_s > 0 ? 1.0 / r->mean_s : 0;
        const cJSON *cdf = cJSON_GetObjectItem(j, "cdf_ms");
        if (cJSON_GetArraySize(cdf) == SUITE_CDF_POINTS && (r->cdf_ms = malloc(SUITE_CDF_POINTS * sizeof(float))))
            for (int i = 0; i < SUITE_CDF_POINTS; i++)
                r->cdf_ms[i] = (float)cJSON_GetNumberValue(cJSON_GetArrayItem(cdf, i));
    } else {
        r->kind = SUITE_THROUGHPUT;
        r->p50_s = num(j, "median_s");
        r->tokens_per_s = r->p50_s > 0 ? (double)r->batch / r->p50_s : 0;
    }
    double flops = 2.0 * (double)r->batch * (double)pool->d_in * (double)pool->d_sae;
    r->ideal_s = bench_roofline_ideal_s(suite_roof(res, threads), 4.0 * (double)pool->d_in * (double)pool->d_sae,
                                        flops, "f32");
}

/* One run of peers.py (batches "" = latency only); rows tagged co_runner. */
static void run_peers_once(suite_results *res, const suite_opts *o, const char *npy_dir, const suite_pool *pool,
                           double theta, size_t threads, const char *cpus, const char *batches, int co_runner,
                           size_t expect)
{
    /* OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed (the faster setting), or
     * the core is forced with --peer-openblas-core: numpy limited to the
     * vector ISA of a CPU without AVX2 (e.g. NEHALEM: SSE only), the peer the
     * portable fallback meets on such a CPU. */
    char core_env[96], config[96];
    const char *core = o->peer_openblas_core;
    snprintf(core_env, sizeof core_env, core ? "OPENBLAS_CORETYPE=%s" : "-u OPENBLAS_CORETYPE", core ? core : "");
    snprintf(config, sizeof config, core ? "openblas-coretype=%s" : "openblas-env-unset", core ? core : "");
    char *cmd = NULL;
    if (asprintf(&cmd,
                 "env -u OPENBLAS_L2_SIZE %s OPENBLAS_NUM_THREADS=%zu OMP_NUM_THREADS=%zu "
                 "MKL_NUM_THREADS=%zu '%s' '%s' --dir '%s' --shape '%s' --theta %.9g --batches '%s' "
                 "--min-time %g --max-time %g --min-calls %zu --config %s --threads %zu "
                 "--latency-tokens %zu --latency-max-time %g --cdf-points %d",
                 core_env, threads, threads, threads, o->python, o->peers_script, npy_dir, pool->shape, theta,
                 batches, o->cell.min_time, o->cell.max_time, o->cell.min_calls, config, threads,
                 o->want_latency ? o->peer_latency_tokens : 0, o->peer_latency_max_s, SUITE_CDF_POINTS) < 0)
        return;
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) {
        suite_note(res, "peers: could not start %s %s", o->python, o->peers_script);
        return;
    }
    size_t got = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, p) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            continue;
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
        const char *info = cJSON_GetStringValue(cJSON_GetObjectItem(j, "info"));
        if (err) {
            suite_note(res, "%s (%s, %zu threads): %s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "peer")),
                       pool->shape, threads, err);
        } else if (info && co_runner) {
            /* reported by the warm run already */
        } else if (info && !strcmp(info, "numpy") && res->n_notes < 64) {
            char *blas = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "blas"));
            suite_note(res, "numpy %s, %zu threads, BLAS %s, %s (%s)",
                       cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")), threads, blas ? blas : "?",
                       cJSON_GetStringValue(cJSON_GetObjectItem(j, "config")), pool->shape);
            free(blas);
        } else if (info && !strcmp(info, "torch")) {
            suite_note(res, "torch %s, torch.get_num_threads() = %.0f (%s)",
                       cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")), num(j, "threads"), pool->shape);
        } else {
            size_t before = res->n_rows;
            peer_row(res, j, pool, threads, cpus);
            if (res->n_rows > before)
                res->rows[res->n_rows - 1].co_runner = co_runner;
            if (res->n_rows > before && co_runner)
                res->rows[res->n_rows - 1].ideal_s = 0; /* the roofline assumes an idle machine */
            progress_update((double)++got / (double)(expect ? expect : 1));
        }
        cJSON_Delete(j);
    }
    free(line);
    int status = pclose(p);
    if (status != 0)
        suite_note(res, "peers.py (%s, %zu threads) exited with status %d", pool->shape, threads, status);
}

void suite_run_peers(suite_results *res, const suite_opts *o, const char *npy_dir, const suite_pool *pool,
                     double theta, size_t threads, const char *cpus)
{
    char label[96];
    snprintf(label, sizeof label, "%s numpy+torch %zuT", pool->shape, threads);
    progress_begin(label);
    char batches[128] = "";
    for (size_t i = 0, len = 0; i < o->n_tput_batches; i++)
        len += (size_t)snprintf(batches + len, sizeof batches - len, "%s%zu", i ? "," : "", o->tput_batches[i]);
    if (cpus && *cpus && suite_affinity_set_list(cpus) != 0)
        suite_note(res, "peers: could not pin to CPUs %s; they ran unpinned", cpus);
    size_t expect = 2 * ((size_t)o->want_latency + o->n_tput_batches);
    run_peers_once(res, o, npy_dir, pool, theta, threads, cpus, batches, 0, expect);
    if (o->co_runner && o->want_latency) {
        /* Batch-1 latency again, beside the co-runner (on a CPU outside the
         * peers' set when the set leaves one free). */
        char desc[160];
        bench_co_runner *c = bench_co_runner_start(desc, sizeof desc);
        if (c) {
            run_peers_once(res, o, npy_dir, pool, theta, threads, cpus, "", 1, 2);
            bench_co_runner_stop(c);
        } else {
            suite_note(res, "peers beside a co-runner skipped: %s", desc);
        }
    }
    suite_affinity_restore();
    progress_end_unit();
}

static const suite_row *find_peer(const suite_results *res, const suite_row *r, const char *peer, size_t threads)
{
    for (size_t i = 0; i < res->n_rows; i++) {
        const suite_row *q = &res->rows[i];
        if (!q->note && q->kind == r->kind && q->batch == r->batch && q->threads == threads &&
            q->co_runner == r->co_runner &&
            !strcmp(q->impl, peer) && !strcmp(q->shape, r->shape) && !strcmp(q->source, r->source) &&
            !strcmp(q->variant, r->variant))
            return q;
    }
    return NULL;
}

static void ratios(const suite_row *r, const suite_row *peer, double out[5])
{
    memset(out, 0, 5 * sizeof *out);
    if (!peer)
        return;
    if (r->kind == SUITE_LATENCY) {
        const double mine[5] = {r->p50_s, r->p90_s, r->p99_s, r->p999_s, r->max_s};
        const double theirs[5] = {peer->p50_s, peer->p90_s, peer->p99_s, peer->p999_s, peer->max_s};
        for (int i = 0; i < 5; i++)
            out[i] = theirs[i] > 0 ? mine[i] / theirs[i] : 0;
    } else {
        out[0] = peer->tokens_per_s > 0 ? r->tokens_per_s / peer->tokens_per_s : 0;
    }
}

void suite_attach_ratios(suite_results *res)
{
    for (size_t i = 0; i < res->n_rows; i++) {
        suite_row *r = &res->rows[i];
        if (r->note)
            continue;
        if (!strcmp(r->impl, "saemon")) {
            suite_row probe = *r;
            probe.variant = "fp32-dense";
            ratios(r, find_peer(res, &probe, "numpy", r->threads), r->vs_numpy);
            ratios(r, find_peer(res, &probe, "torch", r->threads), r->vs_torch);
        }
        if (r->kind == SUITE_THROUGHPUT && r->threads > 1) {
            const suite_row *one = find_peer(res, r, r->impl, 1);
            if (one && one->tokens_per_s > 0)
                r->scaling = r->tokens_per_s / ((double)r->threads * one->tokens_per_s);
        }
    }
}
