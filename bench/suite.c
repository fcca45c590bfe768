/* `saemon bench`: options, then roofline, the generated dictionaries (saemon
 * and the peers), the real SAEs, and the reports. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/kernel.h"
#include "saemon/saemon.h"
#include "suite.h"
#include "suite_synth.h"


typedef struct shape_def {
    const char *name, *alias;
    size_t d_in, d_sae;
} shape_def;

static const shape_def shapes[] = {
    {"gpt2", "768x24576", 768, 24576},   /* GPT-2-small residual SAE */
    {"gemma", "2304x16384", 2304, 16384}, /* Gemma-2-2B, Gemma Scope 16k */
};

void bench_suite_usage(FILE *f)
{
    fprintf(f,
            "usage: saemon bench [options]          latency / throughput of the encoder, with peers\n"
            "       saemon bench kernels [options]  the same, one thread, every kernel variant incl. scalar\n"
            "       saemon bench rules [--quick]    rule evaluation cost per token (10/100/1000 rules)\n"
            "       saemon bench watched [options]  cost per watched feature (subset plans) vs full encodes\n"
            "\n"
            "  --quick              short run (~1 minute): fewer tokens, shorter cells\n"
            "  --shape LIST         gpt2 (768x24576), gemma (2304x16384), real (the small real SAEs)\n"
            "  --batch LIST         1 = batch-1 latency distribution; others = throughput (default 1,8,64,256)\n"
            "  --threads LIST       thread configurations, numbers or 'all' (default 1,all)\n"
            "  --variant LIST       kernel variants or ISAs (default: every one this CPU runs, except the\n"
            "                       scalar reference when a SIMD variant runs; --variant scalar adds it)\n"
            "  --tokens N           batch-1 calls per latency cell (default 10000, --quick 1000)\n"
            "  --cpus LIST          only these CPUs (hwloc list, e.g. 2-5)\n"
            "  --exclude-cpus LIST  never these CPUs\n"
            "  --out DIR            write DIR/bench.json, DIR/bench.csv, DIR/bench-*.png\n"
            "  --compare OLD.json   print what got faster or slower than an earlier run (beyond +-5%%)\n"
            "  --co-runner          batch-1 latency also beside a thread on another core that streams\n"
            "                       512 MiB through the caches (as the watched model does), for saemon and peers\n"
            "  --no-peers           skip numpy / PyTorch\n"
            "  --peer-openblas-core NAME  run the peers with OPENBLAS_CORETYPE=NAME (e.g. NEHALEM: SSE\n"
            "                       only), to compare the portable fallback with numpy on a CPU without AVX2\n"
            "  --no-real            skip the real SAEs\n"
            "  --no-plot            do not run gnuplot\n"
            "  --progress           draw the progress bar even when stderr is not a terminal\n"
            "  --l0 N               target mean L0 of the generated dictionaries (default 70)\n"
            "  --shared-dir DIR     shared data (default $SAEMON_SHARED_DIR, else ../shared)\n"
            "  --peers-script FILE  the peer script (default: peers.py installed with saemon-bench)\n");
}

static int parse_list(const char *opt, const char *s, size_t *out, size_t max, size_t *n, int allow_all)
{
    *n = 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return -1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = allow_all && !strcmp(t, "all") ? 0 : strtol(t, &end, 10);
        int bad = !(allow_all && !strcmp(t, "all")) && (*end || v < 1 || v > 4096);
        if (bad || *n == max) {
            fprintf(stderr, "saemon bench: bad %s entry '%s' (1..4096%s, at most %zu entries)\n", opt, t,
                    allow_all ? " or 'all'" : "", max);
            free(copy);
            return -1;
        }
        out[(*n)++] = (size_t)v;
    }
    free(copy);
    if (!*n)
        fprintf(stderr, "saemon bench: %s needs at least one entry\n", opt);
    return *n ? 0 : -1;
}

int bench_suite_parse(suite_opts *o, int argc, char **argv, int kernels)
{
    static const struct option longs[] = {
        {"quick", no_argument, 0, 'q'},          {"shape", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'},    {"threads", required_argument, 0, 'T'},
        {"variant", required_argument, 0, 'v'},  {"tokens", required_argument, 0, 'n'},
        {"cpus", required_argument, 0, 'C'},     {"exclude-cpus", required_argument, 0, 'X'},
        {"out", required_argument, 0, 'o'},      {"compare", required_argument, 0, 'c'},
        {"no-peers", no_argument, 0, 'P'},       {"no-real", no_argument, 0, 'R'},
        {"no-plot", no_argument, 0, 'G'},        {"progress", no_argument, 0, 'p'},
        {"l0", required_argument, 0, 'l'},       {"shared-dir", required_argument, 0, 'd'},
        {"peers-script", required_argument, 0, 'S'}, {"help", no_argument, 0, 'h'},
        {"co-runner", no_argument, 0, 'K'},      {"peer-openblas-core", required_argument, 0, 'B'},
        {0, 0, 0, 0}};
    const char *batch_arg = "1,8,64,256", *threads_arg = kernels ? "1" : "1,all";
    long tokens = 0;
    memset(o, 0, sizeof *o);
    o->all_variants = kernels;
    o->target_l0 = 70;
    o->python = "/usr/bin/python3";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'q': o->quick = 1; break;
        case 's': o->shape_filter = optarg; break;
        case 'b': batch_arg = optarg; break;
        case 'T': threads_arg = optarg; break;
        case 'v': o->variant_filter = optarg; break;
        case 'n':
            tokens = strtol(optarg, &end, 10);
            if (*end || tokens < 10 || tokens > 10000000) {
                fprintf(stderr, "saemon bench: --tokens must be 10..10000000\n");
                return 2;
            }
            break;
        case 'C': o->cpus = optarg; break;
        case 'X': o->exclude_cpus = optarg; break;
        case 'o': o->out_dir = optarg; break;
        case 'c': o->compare_path = optarg; break;
        case 'P': o->no_peers = 1; break;
        case 'R': o->no_real = 1; break;
        case 'G': o->no_plot = 1; break;
        case 'p': o->progress = 1; break;
        case 'K': o->co_runner = 1; break;
        case 'l':
            o->target_l0 = strtod(optarg, &end);
            if (*end || o->target_l0 < 1 || o->target_l0 > 1000) {
                fprintf(stderr, "saemon bench: --l0 must be in 1..1000\n");
                return 2;
            }
            break;
        case 'd': o->shared_dir = optarg; break;
        case 'S': o->peers_script = optarg; break;
        case 'B':
            if (!*optarg || strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") !=
                                strlen(optarg)) {
                fprintf(stderr, "saemon bench: --peer-openblas-core takes an OpenBLAS core name, e.g. NEHALEM\n");
                return 2;
            }
            o->peer_openblas_core = optarg;
            break;
        case 'h': bench_suite_usage(stdout); exit(0);
        default: bench_suite_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "saemon bench: unexpected argument '%s'\n", argv[optind]);
        bench_suite_usage(stderr);
        return 2;
    }
    if (o->shape_filter) {
        char *copy = strdup(o->shape_filter), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
            int ok = !strcmp(t, "real");
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                ok |= !strcmp(t, shapes[s].name) || !strcmp(t, shapes[s].alias);
            if (!ok) {
                fprintf(stderr, "saemon bench: unknown --shape '%s' (gpt2, gemma, real)\n", t);
                free(copy);
                return 2;
            }
        }
        free(copy);
    }
    size_t b[BENCH_MAX_BATCHES], nb;
    if (parse_list("--batch", batch_arg, b, BENCH_MAX_BATCHES, &nb, 0) != 0 ||
        parse_list("--threads", threads_arg, o->threads, SUITE_MAX_THREADS, &o->n_threads, 1) != 0)
        return 2;
    for (size_t i = 0; i < nb; i++) {
        if (b[i] == 1)
            o->want_latency = 1;
        else
            o->tput_batches[o->n_tput_batches++] = b[i];
    }
    o->latency_tokens = tokens ? (size_t)tokens : o->quick ? 1000 : 10000;
    o->latency_max_s = o->quick ? 4 : 60;
    o->peer_latency_tokens = o->latency_tokens;
    o->peer_latency_max_s = o->quick ? 2 : 20;
    o->cell = (bench_opts){.min_time = o->quick ? 0.1 : 0.5, .max_time = o->quick ? 0.4 : 2.0,
                           .min_calls = o->quick ? 10 : 30};
    if (!o->shared_dir)
        o->shared_dir = bench_default_shared_dir();
    if (!o->peers_script)
        o->peers_script = bench_data_file("peers.py");
    return 0;
}

static int shape_wanted(const suite_opts *o, const char *name, const char *alias)
{
    if (!o->shape_filter)
        return 1;
    char *copy = strdup(o->shape_filter), *save = NULL;
    int hit = 0;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !hit; t = strtok_r(NULL, ",", &save))
        hit = !strcmp(t, name) || (alias && !strcmp(t, alias));
    free(copy);
    return hit;
}

static void describe_cpu(suite_results *res)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    snprintf(res->cpu, sizeof res->cpu, "unknown CPU");
    while (f && fgets(line, sizeof line, f)) {
        char *v = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && v) {
            v += strspn(v, ": ");
            v[strcspn(v, "\n")] = 0;
            snprintf(res->cpu, sizeof res->cpu, "%s", v);
            break;
        }
    }
    if (f)
        fclose(f);
}

/* Thread configurations as numbers (0 = all allowed cores), in order, without repeats. */
static void resolve_threads(suite_opts *o, size_t allowed)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n_threads; i++) {
        size_t t = o->threads[i] ? o->threads[i] : allowed;
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= o->threads[j] == t;
        if (!dup)
            o->threads[n++] = t;
    }
    o->n_threads = n;
}

static size_t max_batch(const suite_opts *o)
{
    size_t m = 1;
    for (size_t i = 0; i < o->n_tput_batches; i++)
        m = o->tput_batches[i] > m ? o->tput_batches[i] : m;
    return m;
}

static void write_peer_inputs_and_run(suite_results *res, const suite_opts *o, const bench_synth *s,
                                      const suite_pool *pool, char used[][64])
{
    char dir[] = "/tmp/saemon-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        suite_note(res, "peers skipped: mkdtemp: %s", strerror(errno));
        for (size_t t = 0; t < o->n_threads; t++)
            progress_end_unit();
        return;
    }
    char path[3][64];
    snprintf(path[0], sizeof path[0], "%s/W_rows.npy", dir);
    snprintf(path[1], sizeof path[1], "%s/b.npy", dir);
    snprintf(path[2], sizeof path[2], "%s/x.npy", dir);
    size_t wshape[2] = {s->d_sae, s->d_in}, bshape[1] = {s->d_sae}, xshape[2] = {s->n_tokens, s->d_in};
    saemon_error err;
    int ok = saemon_npy_write_f32(path[0], s->w_rows, 2, wshape, &err) == SAEMON_OK &&
             saemon_npy_write_f32(path[1], s->b_enc, 1, bshape, &err) == SAEMON_OK &&
             saemon_npy_write_f32(path[2], s->x, 2, xshape, &err) == SAEMON_OK;
    for (size_t t = 0; t < o->n_threads; t++) {
        if (ok)
            suite_run_peers(res, o, dir, pool, s->theta, o->threads[t], used[t]);
        else
            progress_end_unit();
    }
    if (!ok)
        suite_note(res, "peers skipped: cannot write their inputs: %s", err.message);
    for (int i = 0; i < 3; i++)
        unlink(path[i]);
    rmdir(dir);
}

static void run_synthetic(suite_results *res, const suite_opts *o)
{
    const saemon_kernel *calib = saemon_kernel_select(NULL);
    const size_t pool_tokens = o->quick ? 256 : 1024;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape_def *sh = &shapes[si];
        if (!shape_wanted(o, sh->name, sh->alias))
            continue;
        char label[96];
        snprintf(label, sizeof label, "generating %s %zux%zu", sh->name, sh->d_in, sh->d_sae);
        progress_begin(label);
        size_t n_tok = pool_tokens > max_batch(o) ? pool_tokens : max_batch(o);
        bench_synth s;
        saemon_dict *dict = NULL;
        saemon_error err = {0};
        char name[32];
        snprintf(name, sizeof name, "synthetic-%s", sh->name);
        if (bench_synth_make(&s, sh->d_in, sh->d_sae, n_tok, o->quick ? 32 : 64, o->target_l0, 0x5AE0u + si,
                             calib) != 0) {
            suite_note(res, "%s: cannot build the generated dictionary (out of memory?)", sh->name);
            progress_end_unit();
            continue;
        }
        if (suite_synth_dict(&s, name, &dict, &err) != SAEMON_OK) {
            suite_note(res, "%s: saemon_dict_from_arrays: %s", sh->name, err.message);
            bench_synth_free(&s);
            progress_end_unit();
            continue;
        }
        progress_end_unit();
        suite_synth_note *note = &res->synth[res->n_synth++];
        *note = (suite_synth_note){.d_in = sh->d_in, .d_sae = sh->d_sae, .n_tokens = s.n_tokens,
                                   .n_calib = s.n_calib, .theta = s.theta, .target_l0 = s.target_l0,
                                   .calib_l0 = s.calib_l0};
        snprintf(note->shape, sizeof note->shape, "%s", sh->name);
        suite_pool pool = {.source = "synthetic", .shape = sh->name, .d_in = sh->d_in, .d_sae = sh->d_sae,
                           .n_tokens = s.n_tokens, .x = s.x};
        char used[SUITE_MAX_THREADS][64] = {{0}};
        suite_run_saemon(res, o, dict, &pool, used);
        saemon_dict_close(dict);
        if (!o->no_peers)
            write_peer_inputs_and_run(res, o, &s, &pool, used);
        bench_synth_free(&s);
    }
}

static int write_outputs(const suite_results *res, const suite_opts *o, cJSON *root)
{
    int rc = 0;
    if (o->out_dir) {
        if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "saemon bench: cannot create %s: %s\n", o->out_dir, strerror(errno));
            return 1;
        }
        char *json_path = NULL, *csv_path = NULL;
        if (asprintf(&json_path, "%s/bench.json", o->out_dir) < 0 || asprintf(&csv_path, "%s/bench.csv", o->out_dir) < 0)
            return 1;
        char *text = cJSON_Print(root);
        FILE *f = text ? fopen(json_path, "w") : NULL;
        if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF || fclose(f) != 0) {
            fprintf(stderr, "saemon bench: cannot write %s: %s\n", json_path, strerror(errno));
            rc = 1;
        } else {
            printf("wrote %s\n", json_path);
        }
        free(text);
        if (suite_write_csv(res, csv_path) != 0) {
            fprintf(stderr, "saemon bench: cannot write %s: %s\n", csv_path, strerror(errno));
            rc = 1;
        } else {
            printf("wrote %s\n", csv_path);
        }
        free(json_path);
        free(csv_path);
        if (!o->no_plot)
            suite_plot(res, o->out_dir); /* a missing gnuplot is reported, not an error */
    }
    return rc;
}

int bench_suite_run(const suite_opts *in)
{
    suite_opts o = *in;
    suite_results res = {0};
    double t_start = clock_now_s();
    suite_affinity_save();
    res.allowed_cores = suite_allowed_cpus();
    resolve_threads(&o, res.allowed_cores);
    describe_cpu(&res);
    if (!o.no_peers && access(o.python, X_OK) != 0) {
        suite_note(&res, "peers not run: %s not found", o.python);
        o.no_peers = 1;
    }
    if (!o.no_peers && access(o.peers_script, R_OK) != 0) {
        suite_note(&res, "peers not run: %s not readable", o.peers_script);
        o.no_peers = 1;
    }
    o.no_synth = !shape_wanted(&o, "gpt2", "768x24576") && !shape_wanted(&o, "gemma", "2304x16384");
    int real = !o.no_real && shape_wanted(&o, "real", NULL);

    size_t nv = suite_count_variants(&o), per_enc = (size_t)o.want_latency + o.n_tput_batches;
    size_t n_shapes = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        n_shapes += (size_t)shape_wanted(&o, shapes[si].name, shapes[si].alias);
    size_t units = 1 + n_shapes * (1 + nv * o.n_threads * per_enc + (o.no_peers ? 0 : o.n_threads));
    if (real)
        units += suite_count_real(&o) * nv * o.n_threads * per_enc;
    for (size_t t = 0; t < o.n_threads; t++)
        units += o.threads[t] > 1;
    progress_init(units, o.progress);

    printf("saemon bench%s on %s (%zu allowed CPUs); thread configurations:", o.quick ? " --quick" : "", res.cpu,
           res.allowed_cores);
    for (size_t t = 0; t < o.n_threads; t++)
        printf(" %zu", o.threads[t]);
    printf("\n");
    fflush(stdout);

    /* Roofline: one core, then each multi-core configuration. */
    progress_begin("roofline (1 core)");
    bench_roofline_measure(&res.roof[0], o.quick);
    res.roof_threads[0] = 1;
    res.n_roof = 1;
    progress_end_unit();
    for (size_t t = 0; t < o.n_threads; t++) {
        if (o.threads[t] <= 1)
            continue;
        char label[64];
        snprintf(label, sizeof label, "roofline (%zu cores)", o.threads[t]);
        progress_begin(label);
        res.roof_threads[res.n_roof] = o.threads[t];
        bench_roofline_measure_threads(&res.roof[res.n_roof++], &res.roof[0], o.threads[t], o.quick);
        progress_end_unit();
    }
    if (!o.no_synth)
        run_synthetic(&res, &o);
    if (real) {
        char used[SUITE_MAX_THREADS][64] = {{0}};
        suite_run_real(&res, &o, used);
    }
    suite_attach_ratios(&res);
    progress_finish();
    res.run_s = clock_now_s() - t_start;

    suite_print(&res, &o, stdout);
    cJSON *root = suite_json(&res, &o);
    int rc = root ? write_outputs(&res, &o, root) : 1;
    if (root && o.compare_path && suite_compare(root, o.compare_path, stdout) < 0)
        rc = 1;
    cJSON_Delete(root);
    suite_results_free(&res);
    return rc;
}
