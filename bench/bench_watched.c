/* saemon-bench watched: the "watched features" axis (issue 10). For a
 * generated JumpReLU dictionary and rule packs watching W features, the cost
 * of encode + rule evaluation per token with the subset plan (batch 1, mean
 * and p50) and its throughput at batch 256, against the full (screened)
 * encode of the same encoder code and a full numpy/OpenBLAS encode, all on
 * one pinned core. Also: whether the alerts equal --encode all's, the cost
 * per watched feature, the crossover to the full encode, and several
 * dictionaries watched at once. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "bench.h"
#include "kernels/kernel.h"
#include "saemon/saemon.h"
#include "suite_synth.h"
#include "synth.h"

#define MAX_W 16
#define BATCH 256

typedef struct watched_opts {
    size_t watched[MAX_W], n_watched;
    const char *shapes;
    size_t big_d_sae, tokens, dicts;
    int no_peers, quick;
    const char *python;
} watched_opts;

/* A rule pack of `w` single-feature rules on distinct features. */
static char *rule_pack(size_t w, size_t d_sae, float above, uint64_t seed)
{
    size_t cap = 64 + w * 80, len = 0;
    char *y = malloc(cap);
    uint8_t *used = calloc(d_sae, 1);
    if (!y || !used)
        abort();
    len += (size_t)snprintf(y, cap, "version: 1\nrules:\n");
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < w && i < d_sae; i++) {
        uint32_t f;
        do {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            f = (uint32_t)(s % d_sae);
        } while (used[f]);
        used[f] = 1;
        len += (size_t)snprintf(y + len, cap - len, "  - {name: w%zu, condition: {feature: %u, above: %.6g}}\n", i, f,
                                (double)above);
    }
    free(used);
    return y;
}

typedef struct alerts_log {
    uint64_t n;
    uint64_t hash; /* order-sensitive hash of (rule, stream, token, value bits) */
} alerts_log;

static void log_alert(const saemon_alert *a, void *user)
{
    alerts_log *l = user;
    uint64_t h = l->hash ^ 0xcbf29ce484222325ull;
    for (const char *c = a->rule; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    float v = (float)a->value;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    h = (h ^ a->token) * 0x100000001b3ull;
    h = (h ^ a->stream) * 0x100000001b3ull;
    h = (h ^ bits) * 0x100000001b3ull;
    l->hash = h;
    l->n++;
}

typedef struct cell {
    double b1_mean_us, b1_p50_us, b256_tok_s;
    alerts_log alerts;
    size_t latents;
    int cpu;
} cell;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median empty interval between two reads of the thread CPU clock. */
static double clock_read_cost_s(void)
{
    double d[101];
    for (int i = 0; i < 101; i++) {
        double a = clock_thread_cpu_s();
        d[i] = clock_thread_cpu_s() - a;
    }
    qsort(d, 101, sizeof *d, cmp_double);
    return d[50];
}

/* Encode + observe `n_tokens` tokens (cycling the pool) at batch 1, then at
 * batch 256; one stream, positions counting up. */
static int measure(const saemon_dict *dict, const saemon_ruleset *rules, saemon_encode_mode mode, const float *pool,
                   size_t pool_n, size_t n_tokens, cell *c)
{
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    const size_t d_in = info->d_in;
    saemon_error err = {0};
    saemon_rules_needs nd;
    size_t n = saemon_rules_needed_latents(rules, NULL, 0, &nd);
    uint32_t *lat = malloc((n ? n : 1) * sizeof *lat);
    saemon_rules_needed_latents(rules, lat, n, &nd);
    saemon_encoder_options eo = {.max_batch = BATCH, .threads = 1, .encode = mode, .latents = lat, .n_latents = n};
    saemon_encoder *enc = NULL;
    saemon_monitor *mon = NULL;
    if (saemon_encoder_create(dict, &eo, &enc, &err) != SAEMON_OK ||
        saemon_monitor_create(rules, info, NULL, &mon, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon bench watched: %s\n", err.message);
        free(lat);
        saemon_encoder_destroy(enc);
        return -1;
    }
    c->latents = saemon_encoder_get_latent_count(enc);
    c->cpu = saemon_encoder_get_thread_cpu(enc, 0);
    uint64_t *streams = calloc(BATCH, sizeof *streams), *tokens = malloc(BATCH * sizeof *tokens);
    double *lat_s = malloc(n_tokens * sizeof *lat_s);
    c->alerts = (alerts_log){0};
    const saemon_features *f;
    uint64_t pos = 0;
    /* Reading the thread CPU clock is a system call (no vDSO for it): 1.3 us
     * a call in a VM, as much as a small subset's whole token. The mean is
     * therefore taken over the whole loop (two reads), and each token's
     * figure for the p50 has the clock's own empty interval (its median)
     * taken off. */
    const double clock_s = clock_read_cost_s();
    for (size_t t = 0; t < n_tokens; t++) {
        double t0 = clock_thread_cpu_s();
        saemon_encoder_encode(enc, pool + (t % pool_n) * d_in, 1, &f, &err);
        tokens[0] = pos++;
        saemon_monitor_observe_batch(mon, f, streams, tokens, log_alert, &c->alerts);
        lat_s[t] = clock_thread_cpu_s() - t0 - clock_s;
    }
    qsort(lat_s, n_tokens, sizeof *lat_s, cmp_double);
    c->b1_p50_us = lat_s[n_tokens / 2] * 1e6;
    double t_loop = clock_thread_cpu_s();
    for (size_t t = 0; t < n_tokens; t++) {
        saemon_encoder_encode(enc, pool + (t % pool_n) * d_in, 1, &f, &err);
        tokens[0] = pos++;
        saemon_monitor_observe_batch(mon, f, streams, tokens, log_alert, &c->alerts);
    }
    c->b1_mean_us = (clock_thread_cpu_s() - t_loop) / (double)n_tokens * 1e6;
    /* batch 256: at least 8 batches and 0.5 s */
    size_t batches = 0;
    double t0 = clock_thread_cpu_s(), dt = 0;
    while (batches < 8 || dt < 0.5) {
        size_t first = (batches * BATCH) % (pool_n - BATCH + 1);
        saemon_encoder_encode(enc, pool + first * d_in, BATCH, &f, &err);
        for (size_t r = 0; r < BATCH; r++)
            tokens[r] = pos++;
        saemon_monitor_observe_batch(mon, f, streams, tokens, log_alert, &c->alerts);
        batches++;
        dt = clock_thread_cpu_s() - t0;
    }
    c->b256_tok_s = (double)(batches * BATCH) / dt;
    free(streams), free(tokens), free(lat_s), free(lat);
    saemon_monitor_destroy(mon);
    saemon_encoder_destroy(enc);
    return 0;
}

/* Alerts of the subset plan against --encode all on the same 9,216 tokens
 * (one stream, 8,192 at batch 256, then 1,024 at batch 1), as a whole
 * `saemon run` would see them. */
static int same_alerts(const saemon_dict *dict, const saemon_ruleset *rules, const float *pool, size_t pool_n,
                       uint64_t *n_alerts)
{
    alerts_log logs[2] = {{0}, {0}};
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    for (int m = 0; m < 2; m++) {
        saemon_error err = {0};
        size_t n = saemon_rules_needed_latents(rules, NULL, 0, NULL);
        uint32_t *lat = malloc((n ? n : 1) * sizeof *lat);
        saemon_rules_needed_latents(rules, lat, n, NULL);
        saemon_encoder_options eo = {.max_batch = BATCH, .encode = m ? SAEMON_ENCODE_ALL : SAEMON_ENCODE_RULES,
                                     .latents = lat, .n_latents = n};
        saemon_encoder *enc = NULL;
        saemon_monitor *mon = NULL;
        if (saemon_encoder_create(dict, &eo, &enc, &err) != SAEMON_OK ||
            saemon_monitor_create(rules, info, NULL, &mon, &err) != SAEMON_OK) {
            free(lat);
            saemon_encoder_destroy(enc);
            return -1;
        }
        uint64_t streams[BATCH] = {0}, tokens[BATCH];
        for (size_t b = 0; b < 8192 / BATCH; b++) {
            const saemon_features *f;
            size_t first = (b * BATCH) % (pool_n - BATCH + 1);
            saemon_encoder_encode(enc, pool + first * info->d_in, BATCH, &f, &err);
            for (size_t r = 0; r < BATCH; r++)
                tokens[r] = b * BATCH + r;
            saemon_monitor_observe_batch(mon, f, streams, tokens, log_alert, &logs[m]);
        }
        /* and 1,024 more one row per call (a single row may take another
         * kernel path: vpdpbusd screens single rows of a subset) */
        for (size_t t = 0; t < 1024; t++) {
            const saemon_features *f;
            saemon_encoder_encode(enc, pool + (t % pool_n) * info->d_in, 1, &f, &err);
            tokens[0] = 8192 + t;
            saemon_monitor_observe_batch(mon, f, streams, tokens, log_alert, &logs[m]);
        }
        saemon_monitor_destroy(mon);
        saemon_encoder_destroy(enc);
        free(lat);
    }
    *n_alerts = logs[1].n;
    return logs[0].n == logs[1].n && logs[0].hash == logs[1].hash;
}

/* Full encode by numpy (OpenBLAS, one thread, pinned to `cpu`) at batch 256:
 * seconds per batch, or -1. */
static double numpy_full(const watched_opts *o, const bench_synth *s, int cpu)
{
    char dir[] = "/tmp/saemon-watched-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    char w[256], x[256], t[256], cmd[2048];
    snprintf(w, sizeof w, "%s/w.npy", dir);
    snprintf(x, sizeof x, "%s/x.npy", dir);
    snprintf(t, sizeof t, "%s/t.npy", dir);
    saemon_error err = {0};
    /* W_enc rows [d_sae][d_in]; numpy computes x @ rows.T, the same GEMM as x @ W_enc */
    size_t shape_w[2] = {s->d_sae, s->d_in}, shape_x[2] = {BATCH, s->d_in}, shape_t[1] = {s->d_sae};
    double secs = -1;
    if (saemon_npy_write_f32(w, s->w_rows, 2, shape_w, &err) == SAEMON_OK &&
        saemon_npy_write_f32(x, s->x, 2, shape_x, &err) == SAEMON_OK &&
        saemon_npy_write_f32(t, s->threshold, 1, shape_t, &err) == SAEMON_OK) {
        snprintf(cmd, sizeof cmd,
                 "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 '%s' -c \""
                 "import os, time, numpy as np\n"
                 "os.sched_setaffinity(0, {%d})\n"
                 "w = np.ascontiguousarray(np.load('%s').T); x = np.load('%s'); t = np.load('%s')\n"
                 "def enc():\n"
                 "    h = x @ w\n"
                 "    return np.where(h > t, h, 0)\n"
                 "enc(); n = 0; t0 = time.thread_time()\n"
                 "while n < 5 or time.thread_time() - t0 < 1.0:\n"
                 "    enc(); n += 1\n"
                 "print((time.thread_time() - t0) / n)\n\"",
                 o->python, cpu < 0 ? 0 : cpu, w, x, t);
        FILE *p = popen(cmd, "r");
        if (p) {
            if (fscanf(p, "%lf", &secs) != 1)
                secs = -1;
            pclose(p);
        }
    }
    unlink(w), unlink(x), unlink(t), rmdir(dir);
    return secs;
}

static int run_shape(const watched_opts *o, const char *name, size_t d_in, size_t d_sae)
{
    const saemon_kernel *k = saemon_kernel_select(NULL);
    bench_synth s;
    double g0 = clock_now_s();
    size_t pool_n = o->quick ? 1024 : 2048;
    if (bench_synth_make(&s, d_in, d_sae, pool_n, 256, 70.0, 11, k) != 0) {
        fprintf(stderr, "saemon bench watched: out of memory generating %zux%zu\n", d_in, d_sae);
        return -1;
    }
    saemon_dict *dict = NULL;
    saemon_error err = {0};
    if (suite_synth_dict(&s, name, &dict, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon bench watched: %s\n", err.message);
        bench_synth_free(&s);
        return -1;
    }
    printf("\n== %s: %zux%zu JumpReLU (generated, mean L0 %.1f, %.0f s to generate), kernel %s, 1 pinned core, "
           "thread CPU time ==\n",
           name, d_in, d_sae, s.calib_l0, clock_now_s() - g0, k->name);
    printf("%8s %9s | %12s %12s | %14s | %10s %10s | %s\n", "watched", "latents", "b1 mean us", "b1 p50 us",
           "b256 tok/s", "x full", "x numpy", "alerts (9216 tok) vs --encode all");
    double xs[MAX_W], ys[MAX_W], y256[MAX_W];
    size_t np = 0;
    cell full;
    char *pack64 = rule_pack(64, d_sae, 1.2f * s.theta, 1);
    saemon_ruleset *rs64 = NULL;
    saemon_rules_from_string(pack64, strlen(pack64), "pack", NULL, &rs64, &err);
    measure(dict, rs64, SAEMON_ENCODE_ALL, s.x, pool_n, o->tokens, &full);
    double np_s = o->no_peers ? -1 : numpy_full(o, &s, full.cpu);
    double np_tok_s = np_s > 0 ? BATCH / np_s : 0;
    for (size_t i = 0; i < o->n_watched; i++) {
        size_t w = o->watched[i];
        if (w >= d_sae)
            continue;
        char *y = rule_pack(w, d_sae, 1.2f * s.theta, 1);
        saemon_ruleset *rs = NULL;
        if (saemon_rules_from_string(y, strlen(y), "pack", NULL, &rs, &err) != SAEMON_OK) {
            fprintf(stderr, "saemon bench watched: %s\n", err.message);
            free(y);
            continue;
        }
        cell c;
        if (measure(dict, rs, SAEMON_ENCODE_RULES, s.x, pool_n, o->tokens, &c) == 0) {
            uint64_t n_alerts = 0;
            int same = same_alerts(dict, rs, s.x, pool_n, &n_alerts);
            printf("%8zu %9zu | %12.2f %12.2f | %14.0f | %9.1fx %9.1fx | %s (%" PRIu64 " alerts)\n", w, c.latents,
                   c.b1_mean_us, c.b1_p50_us, c.b256_tok_s, c.b256_tok_s / full.b256_tok_s,
                   np_tok_s > 0 ? c.b256_tok_s / np_tok_s : 0.0, same == 1 ? "identical" : "DIFFERENT", n_alerts);
            xs[np] = (double)w, ys[np] = c.b1_mean_us, y256[np] = 1e6 / c.b256_tok_s;
            np++;
        }
        saemon_rules_close(rs);
        free(y);
    }
    printf("%8s %9zu | %12.2f %12.2f | %14.0f | %9.1fx %9.1fx | (full screened encode, 64-feature pack)\n", "all",
           full.latents, full.b1_mean_us, full.b1_p50_us, full.b256_tok_s, 1.0,
           np_tok_s > 0 ? full.b256_tok_s / np_tok_s : 0.0);
    if (np_tok_s > 0)
        printf("numpy full encode (OpenBLAS, 1 thread, same core), batch 256: %.0f tok/s (%.1f us/token)\n",
               np_tok_s, 1e6 / np_tok_s);
    if (np >= 2) { /* least squares: us/token = a + b * watched */
        double sx = 0, sy = 0, sxx = 0, sxy = 0, sy2 = 0, sxy2 = 0;
        for (size_t i = 0; i < np; i++)
            sx += xs[i], sy += ys[i], sxx += xs[i] * xs[i], sxy += xs[i] * ys[i], sy2 += y256[i],
                sxy2 += xs[i] * y256[i];
        double b = (np * sxy - sx * sy) / (np * sxx - sx * sx), a = (sy - b * sx) / np;
        double b2 = (np * sxy2 - sx * sy2) / (np * sxx - sx * sx), a2 = (sy2 - b2 * sx) / np;
        printf("cost per watched feature: batch 1 %.1f ns (fixed %.2f us/token); batch 256 %.1f ns/token "
               "(fixed %.3f us/token)\n", b * 1e3, a, b2 * 1e3, a2);
        printf("crossover with the full screened encode: ~%.0f watched features at batch 1, ~%.0f at batch 256 "
               "(of %zu)\n", b > 0 ? (full.b1_mean_us - a) / b : 0.0,
               b2 > 0 ? (1e6 / full.b256_tok_s - a2) / b2 : 0.0, d_sae);
    }
    printf("start-up: the dictionary is read whole (W_enc [d_in, d_sae] is column-strided in SAELens files); "
           "only the subset is packed\n");
    saemon_rules_close(rs64);
    free(pack64);
    saemon_dict_close(dict);
    bench_synth_free(&s);
    return 0;
}

/* K dictionaries (layers) on one core, each with its own 64-feature pack. */
static int run_many(const watched_opts *o)
{
    const size_t K = o->dicts, d_in = 768, d_sae = 24576;
    const saemon_kernel *k = saemon_kernel_select(NULL);
    printf("\n== %zu dictionaries at once (768x24576 JumpReLU each, own seed and 64-feature pack), 1 pinned core ==\n",
           K);
    double sub_b1 = 0, full_b1 = 0, sub_256 = 0, full_256 = 0;
    for (size_t i = 0; i < K; i++) {
        bench_synth s;
        if (bench_synth_make(&s, d_in, d_sae, 1024, 256, 70.0, 100 + i, k) != 0)
            return -1;
        saemon_dict *dict = NULL;
        saemon_error err = {0};
        char name[32];
        snprintf(name, sizeof name, "layer%zu", i);
        if (suite_synth_dict(&s, name, &dict, &err) != SAEMON_OK) {
            bench_synth_free(&s);
            return -1;
        }
        char *y = rule_pack(64, d_sae, 1.2f * s.theta, 7 + i);
        saemon_ruleset *rs = NULL;
        saemon_rules_from_string(y, strlen(y), "pack", NULL, &rs, &err);
        cell c, f;
        measure(dict, rs, SAEMON_ENCODE_RULES, s.x, 1024, o->tokens, &c);
        measure(dict, rs, SAEMON_ENCODE_ALL, s.x, 1024, o->tokens / 4 + 1, &f);
        sub_b1 += c.b1_mean_us, full_b1 += f.b1_mean_us;
        sub_256 += 1e6 / c.b256_tok_s, full_256 += 1e6 / f.b256_tok_s;
        saemon_rules_close(rs);
        free(y);
        saemon_dict_close(dict);
        bench_synth_free(&s);
    }
    printf("subset plans: %.2f us/token at batch 1, %.3f us/token at batch 256 (all %zu dictionaries)\n", sub_b1,
           sub_256, K);
    printf("full encodes: %.2f us/token at batch 1, %.3f us/token at batch 256\n", full_b1, full_256);
    return 0;
}

static int parse_watched(const char *s, watched_opts *o)
{
    o->n_watched = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && o->n_watched < MAX_W; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1) {
            fprintf(stderr, "saemon bench watched: bad --watched entry '%s'\n", t);
            free(copy);
            return -1;
        }
        o->watched[o->n_watched++] = (size_t)v;
    }
    free(copy);
    return o->n_watched ? 0 : -1;
}

int bench_watched_main(int argc, char **argv)
{
    watched_opts o = {.shapes = "gpt2,gemma", .big_d_sae = 65536, .tokens = 4000, .dicts = 4,
                      .python = "/usr/bin/python3"};
    parse_watched("16,64,256,1024,4096", &o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick"))
            o.quick = 1, o.tokens = 1000;
        else if (!strcmp(a, "--no-peers"))
            o.no_peers = 1;
        else if (!strcmp(a, "--watched") && v && ++i)
            { if (parse_watched(v, &o)) return 2; }
        else if (!strcmp(a, "--shape") && v && ++i)
            o.shapes = v;
        else if (!strcmp(a, "--big-d-sae") && v && ++i)
            o.big_d_sae = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--dicts") && v && ++i)
            o.dicts = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--tokens") && v && ++i)
            o.tokens = strtoul(v, NULL, 10);
        else {
            fprintf(stderr,
                    "usage: saemon bench watched [--watched LIST] [--shape gpt2,gemma,big,many] [--big-d-sae N]\n"
                    "                            [--dicts K] [--tokens N] [--quick] [--no-peers]\n"
                    "Cost of encode + rule evaluation per watched feature (subset plans) vs the full encode\n"
                    "and numpy; big = 4096 x --big-d-sae (default 65536); many = K 768x24576 dictionaries.\n");
            return 2;
        }
    }
    if (!o.tokens)
        o.tokens = 1;
    char *shapes = strdup(o.shapes), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(shapes, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "gpt2"))
            rc = run_shape(&o, "gpt2", 768, 24576);
        else if (!strcmp(t, "gemma"))
            rc = run_shape(&o, "gemma", 2304, 16384);
        else if (!strcmp(t, "big"))
            rc = run_shape(&o, "big", 4096, o.big_d_sae);
        else if (!strcmp(t, "many"))
            rc = run_many(&o);
        else {
            fprintf(stderr, "saemon bench watched: unknown shape '%s'\n", t);
            rc = 2;
        }
        fflush(stdout);
    }
    free(shapes);
    return rc;
}
