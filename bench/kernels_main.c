/* saemon-bench-kernels (also `saemon bench kernels`): roofline, every kernel
 * variant on SAE-sized dictionaries, numpy/PyTorch peers and the small real
 * SAEs, in one run, single thread. See docs/benchmarks.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "kernels/kernel.h"
#include "synth.h"


typedef struct shape_def {
    const char *name, *alias;
    size_t d_in, d_sae;
} shape_def;

static const shape_def shapes[] = {
    {"gpt2", "768x24576", 768, 24576},   /* GPT-2-small residual SAE */
    {"gemma", "2304x16384", 2304, 16384}, /* Gemma-2-2B, Gemma Scope 16k */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: saemon-bench-kernels [--quick] [--shape gpt2|gemma] [--batch 1,8,64,256]\n"
            "                            [--json FILE] [--csv FILE] [--no-peers] [--no-real]\n"
            "                            [--l0 N] [--shared-dir DIR] [--peers-script FILE]\n"
            "Shapes: gpt2 = 768x24576, gemma = 2304x16384. Single thread throughout.\n");
}

static int parse_batches(bench_opts *o, const char *s)
{
    o->n_batches = 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return -1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > 4096 || o->n_batches == BENCH_MAX_BATCHES) {
            fprintf(stderr, "saemon-bench-kernels: bad --batch entry '%s' (1..4096, at most %d)\n",
                    t, BENCH_MAX_BATCHES);
            free(copy);
            return -1;
        }
        o->batches[o->n_batches++] = (size_t)v;
    }
    free(copy);
    return o->n_batches ? 0 : -1;
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
    const char *batch_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG                                                                      \
    if (!next) {                                                                      \
        fprintf(stderr, "saemon-bench-kernels: %s needs a value\n", a);               \
        return -1;                                                                    \
    }                                                                                 \
    i++;
        if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--no-peers")) {
            o->no_peers = 1;
        } else if (!strcmp(a, "--no-real")) {
            o->no_real = 1;
        } else if (!strcmp(a, "--shape")) {
            NEED_ARG o->shape_filter = next;
        } else if (!strcmp(a, "--batch")) {
            NEED_ARG batch_arg = next;
        } else if (!strcmp(a, "--json")) {
            NEED_ARG o->json_path = next;
        } else if (!strcmp(a, "--csv")) {
            NEED_ARG o->csv_path = next;
        } else if (!strcmp(a, "--shared-dir")) {
            NEED_ARG o->shared_dir = next;
        } else if (!strcmp(a, "--peers-script")) {
            NEED_ARG o->peers_script = next;
        } else if (!strcmp(a, "--l0")) {
            NEED_ARG o->target_l0 = atof(next);
            if (o->target_l0 < 1 || o->target_l0 > 1000) {
                fprintf(stderr, "saemon-bench-kernels: --l0 must be in 1..1000\n");
                return -1;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "saemon-bench-kernels: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
#undef NEED_ARG
    }
    if (o->shape_filter) {
        int ok = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            ok |= !strcmp(o->shape_filter, shapes[s].name) || !strcmp(o->shape_filter, shapes[s].alias);
        if (!ok) {
            fprintf(stderr, "saemon-bench-kernels: unknown --shape '%s' (gpt2, gemma)\n",
                    o->shape_filter);
            return -1;
        }
    }
    if (batch_arg)
        return parse_batches(o, batch_arg);
    return parse_batches(o, o->quick ? "1,64" : "1,8,64,256");
}

typedef struct call_ctx {
    bench_kinst *ki;
    const float *x;
    size_t n;
} call_ctx;

static void call_kernel(void *p)
{
    call_ctx *c = p;
    bench_kinst_run(c->ki, c->x, c->n);
}

static size_t max_batch(const bench_opts *o)
{
    size_t m = 1;
    for (size_t i = 0; i < o->n_batches; i++)
        if (o->batches[i] > m)
            m = o->batches[i];
    return m;
}

static void run_variants(bench_results *res, const bench_opts *o, const shape_def *sh,
                         const bench_synth *s, bench_synth_note *note)
{
    size_t nk;
    const saemon_kernel *const *all = saemon_kernels_all(&nk);
    const saemon_kernel *best = saemon_kernel_select(NULL);
    saemon_kernel_plan plan = {.d_in = sh->d_in, .d_sae = sh->d_sae,
                               .epilogue = SAEMON_EPI_THRESHOLD, .bias = s->b_enc,
                               .threshold = s->threshold};
    for (size_t v = 0; v < nk; v++) {
        const saemon_kernel *k = all[v];
        if (k->cpu_features & ~saemon_cpu_features()) {
            printf("  %-24s not runnable on this CPU (needs features 0x%x)\n", k->name,
                   k->cpu_features);
            continue;
        }
        bench_kinst ki;
        if (bench_kinst_init(&ki, k, &plan, s->w_rows, s->n_tokens) != 0) {
            fprintf(stderr, "saemon-bench-kernels: out of memory packing %s for %s\n", k->name,
                    sh->name);
            continue;
        }
        char dtype[16];
        double wb = bench_variant_weight_bytes(k->name, dtype, sizeof dtype);
        double bytes = wb > 0 ? wb * (double)sh->d_in * (double)sh->d_sae
                              : (double)k->packed_size(&plan);
        for (size_t b = 0; b < o->n_batches; b++) {
            size_t n = o->batches[b];
            call_ctx c = {.ki = &ki, .x = s->x, .n = n};
            bench_cell *cell = bench_results_add_cell(res);
            if (!cell)
                break;
            cell->variant = k->name;
            cell->shape = sh->name;
            cell->d_in = sh->d_in;
            cell->d_sae = sh->d_sae;
            cell->batch = n;
            cell->st = bench_measure(call_kernel, &c, o);
            cell->bytes = bytes;
            cell->flops = 2.0 * (double)n * (double)sh->d_in * (double)sh->d_sae;
            cell->ideal_s = bench_roofline_ideal_s(&res->roof, bytes, cell->flops, dtype);
            cell->mean_l0 = bench_kinst_mean_l0(&ki, n);
            if (k == best && n == s->n_tokens)
                note->measured_l0 = cell->mean_l0;
            printf("  %-24s %-6s batch %4zu: median %9.3f ms  p99 %9.3f ms  (%zu calls)  L0 %.1f\n",
                   k->name, sh->name, n, cell->st.median_s * 1e3, cell->st.p99_s * 1e3,
                   cell->st.calls, cell->mean_l0);
            fflush(stdout);
        }
        bench_kinst_free(&ki);
    }
}

static void run_peers_for(bench_results *res, const bench_opts *o, const shape_def *sh,
                          const bench_synth *s)
{
    char dir[] = "/tmp/saemon-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("saemon-bench-kernels: mkdtemp");
        return;
    }
    char path[3][64];
    snprintf(path[0], sizeof path[0], "%s/W_rows.npy", dir);
    snprintf(path[1], sizeof path[1], "%s/b.npy", dir);
    snprintf(path[2], sizeof path[2], "%s/x.npy", dir);
    size_t wshape[2] = {sh->d_sae, sh->d_in}, bshape[1] = {sh->d_sae}, xshape[2] = {s->n_tokens, sh->d_in};
    if (bench_write_npy(path[0], s->w_rows, 2, wshape) == 0 &&
        bench_write_npy(path[1], s->b_enc, 1, bshape) == 0 &&
        bench_write_npy(path[2], s->x, 2, xshape) == 0) {
        printf("  peers (numpy, torch) on %s ...\n", sh->name);
        fflush(stdout);
        bench_run_peers(res, o, dir, sh->name, s->theta);
    } else {
        fprintf(stderr, "saemon-bench-kernels: cannot write peer inputs to %s\n", dir);
    }
    for (int i = 0; i < 3; i++)
        unlink(path[i]);
    rmdir(dir);
}

static void attach_peers(bench_results *res)
{
    for (size_t i = 0; i < res->n_cells; i++) {
        bench_cell *c = &res->cells[i];
        for (size_t j = 0; j < res->n_peers; j++) {
            const bench_peer_row *p = &res->peers[j];
            if (strcmp(p->shape, c->shape) || p->batch != c->batch)
                continue;
            double *slot = !strcmp(p->peer, "numpy") ? &c->numpy_s : &c->torch_s;
            if (*slot == 0 || p->median_s < *slot)
                *slot = p->median_s;
        }
    }
}

static void describe_machine(bench_results *res)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    snprintf(res->cpu, sizeof res->cpu, "unknown");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *v = strchr(line, ':');
            if (v) {
                v += strspn(v, ": ");
                v[strcspn(v, "\n")] = 0;
                snprintf(res->cpu, sizeof res->cpu, "%s (%ld online CPUs)", v,
                         sysconf(_SC_NPROCESSORS_ONLN));
            }
            break;
        }
    }
    if (f)
        fclose(f);
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    snprintf(res->openblas_env, sizeof res->openblas_env,
             "environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s", ct ? ct : "(unset)",
             l2 ? l2 : "(unset)");
}

int bench_kernels_main(int argc, char **argv)
{
    bench_opts o = {.target_l0 = 70, .python = "/usr/bin/python3"};
    if (parse_args(&o, argc, argv) != 0)
        return 2;
    o.min_time = o.quick ? 0.1 : 0.5;
    o.max_time = o.quick ? 0.4 : 2.0;
    o.min_calls = o.quick ? 10 : 30;
    if (!o.shared_dir)
        o.shared_dir = bench_default_shared_dir();
    if (!o.peers_script)
        o.peers_script = bench_data_file("peers.py");
    if (!o.no_peers && access(o.python, X_OK) != 0) {
        fprintf(stderr, "saemon-bench-kernels: %s not found; peers disabled\n", o.python);
        o.no_peers = 1;
    }

    bench_results res = {0};
    describe_machine(&res);
    double t_start = clock_now_s();
    printf("saemon-bench-kernels%s: single thread; cell = warm-up, then >= %zu calls and >= %.1f s "
           "(or stop at %.1f s)\n",
           o.quick ? " --quick" : "", o.min_calls, o.min_time, o.max_time);
    printf("measuring roofline ...\n");
    fflush(stdout);
    bench_roofline_measure(&res.roof, o.quick);

    const saemon_kernel *calib = saemon_kernel_select(NULL);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape_def *sh = &shapes[si];
        if (o.shape_filter && strcmp(o.shape_filter, sh->name) && strcmp(o.shape_filter, sh->alias))
            continue;
        printf("generating %s %zux%zu dictionary and calibrating ...\n", sh->name, sh->d_in, sh->d_sae);
        fflush(stdout);
        double t0 = clock_now_s();
        bench_synth s;
        if (bench_synth_make(&s, sh->d_in, sh->d_sae, max_batch(&o), o.quick ? 32 : 64, o.target_l0,
                             0x5AE0u + si, calib) != 0) {
            fprintf(stderr, "saemon-bench-kernels: cannot build the %s dictionary (out of memory?)\n",
                    sh->name);
            continue;
        }
        bench_synth_note *note = &res.synth[res.n_synth++];
        *note = (bench_synth_note){.shape = sh->name, .d_in = sh->d_in, .d_sae = sh->d_sae,
                                   .n_calib = s.n_calib, .n_tokens = s.n_tokens,
                                   .target_l0 = s.target_l0, .theta = s.theta,
                                   .calib_l0 = s.calib_l0, .gen_s = clock_now_s() - t0,
                                   .calib_variant = calib->name};
        printf("  theta %.5f -> mean L0 %.2f on %zu calibration tokens (target %.0f)\n", s.theta,
               s.calib_l0, s.n_calib, s.target_l0);
        run_variants(&res, &o, sh, &s, note);
        if (!o.no_peers)
            run_peers_for(&res, &o, sh, &s);
        bench_synth_free(&s);
    }
    attach_peers(&res);
    if (!o.no_real) {
        printf("real SAEs under %s/data/sae ...\n", o.shared_dir);
        fflush(stdout);
        bench_real_saes(&res, &o);
    }

    bench_report_table(&res, &o);
    printf("\ntotal run time %.1f s. Numbers are from a shared machine: other processes add noise.\n",
           clock_now_s() - t_start);
    int rc = 0;
    if (o.json_path && bench_report_json(&res, &o, o.json_path) != 0) {
        fprintf(stderr, "saemon-bench-kernels: cannot write %s\n", o.json_path);
        rc = 1;
    }
    if (o.csv_path && bench_report_csv(&res, o.csv_path) != 0) {
        fprintf(stderr, "saemon-bench-kernels: cannot write %s\n", o.csv_path);
        rc = 1;
    }
    bench_results_free(&res);
    return rc;
}
