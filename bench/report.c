/* Results of one run: table on stdout, JSON and CSV files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define GROW(arr, n, cap)                                                          \
    do {                                                                           \
        if ((n) == (cap)) {                                                        \
            size_t nc = (cap) ? 2 * (cap) : 16;                                    \
            void *p = realloc((arr), nc * sizeof *(arr));                          \
            if (!p)                                                                \
                return NULL;                                                       \
            (arr) = p;                                                             \
            (cap) = nc;                                                            \
        }                                                                          \
        memset(&(arr)[(n)], 0, sizeof *(arr));                                     \
        return &(arr)[(n)++];                                                      \
    } while (0)

bench_cell *bench_results_add_cell(bench_results *res) { GROW(res->cells, res->n_cells, res->cap_cells); }
bench_peer_row *bench_results_add_peer(bench_results *res) { GROW(res->peers, res->n_peers, res->cap_peers); }
bench_real_row *bench_results_add_real(bench_results *res) { GROW(res->real, res->n_real, res->cap_real); }

void bench_results_free(bench_results *res)
{
    for (size_t i = 0; i < res->n_real; i++) {
        free(res->real[i].sae);
        free(res->real[i].variant);
        free(res->real[i].note);
    }
    free(res->real);
    free(res->cells);
    free(res->peers);
    free(res->peer_note);
    free(res->real_note);
    memset(res, 0, sizeof *res);
}

static double ratio(double peer_s, double ours_s)
{
    return peer_s > 0 && ours_s > 0 ? peer_s / ours_s : 0;
}

static void fmt_ratio(char *buf, size_t n, double r)
{
    if (r > 0)
        snprintf(buf, n, "%.2fx", r);
    else
        snprintf(buf, n, "-");
}

void bench_report_table(const bench_results *res, const bench_opts *o)
{
    const bench_roofline *r = &res->roof;
    printf("\n== Machine ==\nCPU: %s; 1 thread; %s\n", res->cpu, res->openblas_env);
    printf("\n== Roofline (one core) ==\n");
    printf("streaming read: 1 GiB %.1f GB/s | 32 MiB %.1f GB/s | 16 MiB %.1f GB/s\n", r->bw_dram,
           r->bw_32m, r->bw_16m);
    printf("peak: fp32 FMA zmm %.0f GFLOP/s | bf16 dot zmm %.0f GFLOP/s | int8 VNNI zmm %.0f GOP/s\n",
           r->peak_f32, r->peak_bf16, r->peak_i8);
    if (r->compute_note)
        printf("note: %s\n", r->compute_note);

    printf("\n== Synthetic dictionaries (deterministic; JumpReLU, one shared threshold) ==\n");
    for (size_t i = 0; i < res->n_synth; i++) {
        const bench_synth_note *s = &res->synth[i];
        printf("%-6s %zux%zu: theta=%.5f calibrated on %zu tokens (target mean L0 %.0f, got %.2f; "
               "pre-activations from %s); measured mean L0 on the %zu benchmark tokens: %.2f; "
               "generated in %.1f s\n",
               s->shape, s->d_in, s->d_sae, s->theta, s->n_calib, s->target_l0, s->calib_l0,
               s->calib_variant, s->n_tokens, s->measured_l0, s->gen_s);
    }

    printf("\n== Kernel variants (single thread; bytes = weights in the variant's screening dtype, "
           "see docs/benchmarks.md) ==\n");
    printf("%-24s %-6s %5s %9s %9s %5s %10s %7s %8s %9s %6s %7s %8s %8s\n", "variant", "shape",
           "batch", "med_ms", "p99_ms", "calls", "tok/s", "GB/s", "GFLOP/s", "ideal_ms", "%roof",
           "L0", "vs_numpy", "vs_torch");
    for (size_t i = 0; i < res->n_cells; i++) {
        const bench_cell *c = &res->cells[i];
        double t = c->st.median_s;
        char rn[16], rt[16];
        fmt_ratio(rn, sizeof rn, ratio(c->numpy_s, t));
        fmt_ratio(rt, sizeof rt, ratio(c->torch_s, t));
        printf("%-24s %-6s %5zu %9.3f %9.3f %5zu %10.0f %7.1f %8.1f %9.3f %5.0f%% %7.1f %8s %8s\n",
               c->variant, c->shape, c->batch, t * 1e3, c->st.p99_s * 1e3, c->st.calls,
               (double)c->batch / t, c->bytes / t * 1e-9, c->flops / t * 1e-9, c->ideal_s * 1e3,
               100.0 * c->ideal_s / t, c->mean_l0, rn, rt);
    }
    printf("vs_numpy / vs_torch = peer median / saemon median (>1: saemon faster), against the "
           "faster of the peer's OpenBLAS configurations.\n");

    printf("\n== Peers (/usr/bin/python3, 1 thread, dense fp32 output, same weights and tokens) ==\n");
    if (res->n_peers) {
        printf("%-6s %-26s %-6s %5s %9s %9s %5s %10s %7s %8s %6s %7s\n", "peer", "openblas env",
               "shape", "batch", "med_ms", "p99_ms", "calls", "tok/s", "GB/s", "GFLOP/s", "%roof",
               "L0");
        for (size_t i = 0; i < res->n_peers; i++) {
            const bench_peer_row *p = &res->peers[i];
            double ideal = 0;
            for (size_t j = 0; j < res->n_cells; j++)
                if (strcmp(res->cells[j].shape, p->shape) == 0 && res->cells[j].batch == p->batch &&
                    strncmp(res->cells[j].variant, "f32", 3) == 0)
                    ideal = res->cells[j].ideal_s;
            double d_in = 0, d_sae = 0;
            for (size_t j = 0; j < res->n_synth; j++)
                if (strcmp(res->synth[j].shape, p->shape) == 0) {
                    d_in = (double)res->synth[j].d_in;
                    d_sae = (double)res->synth[j].d_sae;
                }
            double t = p->median_s;
            printf("%-6s %-26s %-6s %5zu %9.3f %9.3f %5zu %10.0f %7.1f %8.1f %5.0f%% %7.1f\n", p->peer,
                   p->config, p->shape, p->batch, t * 1e3, p->p99_s * 1e3, p->calls,
                   (double)p->batch / t, 4 * d_in * d_sae / t * 1e-9,
                   2 * (double)p->batch * d_in * d_sae / t * 1e-9, ideal > 0 ? 100 * ideal / t : 0,
                   p->mean_l0);
        }
    }
    if (res->peer_note)
        printf("note: %s\n", res->peer_note);
    if (o->no_peers)
        printf("(peers not run: --no-peers)\n");

    printf("\n== Real SAEs (public API, variant forced; one row = encode of the whole acts file) ==\n");
    if (res->real_note)
        printf("%s\n", res->real_note);
    for (size_t i = 0; i < res->n_real; i++) {
        const bench_real_row *w = &res->real[i];
        if (w->note) {
            printf("%-40s %-24s skipped: %s\n", w->sae, w->variant, w->note);
            continue;
        }
        double t = w->st.median_s;
        printf("%-40s %-24s %4zux%-6zu tokens %5zu batch %3zu: %8.3f ms/pass (p99 %.3f), "
               "%10.0f tok/s, mean L0 %.2f\n",
               w->sae, w->variant, w->d_in, w->d_sae, w->n_tokens, w->batch, t * 1e3,
               w->st.p99_s * 1e3, (double)w->n_tokens / t, w->mean_l0);
    }
    if (o->no_real)
        printf("(real SAEs not run: --no-real)\n");
}

static cJSON *stats_json(const bench_stats *st)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "median_s", st->median_s);
    cJSON_AddNumberToObject(j, "p99_s", st->p99_s);
    cJSON_AddNumberToObject(j, "mean_s", st->mean_s);
    cJSON_AddNumberToObject(j, "calls", (double)st->calls);
    return j;
}

int bench_report_json(const bench_results *res, const bench_opts *o, const char *path)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "cpu", res->cpu);
    cJSON_AddStringToObject(root, "openblas_env", res->openblas_env);
    cJSON_AddBoolToObject(root, "quick", o->quick);
    cJSON *roof = cJSON_AddObjectToObject(root, "roofline");
    cJSON_AddNumberToObject(roof, "read_1GiB_GBps", res->roof.bw_dram);
    cJSON_AddNumberToObject(roof, "read_32MiB_GBps", res->roof.bw_32m);
    cJSON_AddNumberToObject(roof, "read_16MiB_GBps", res->roof.bw_16m);
    cJSON_AddNumberToObject(roof, "fp32_fma_GFLOPs", res->roof.peak_f32);
    cJSON_AddNumberToObject(roof, "bf16_dot_GFLOPs", res->roof.peak_bf16);
    cJSON_AddNumberToObject(roof, "int8_vnni_GOPs", res->roof.peak_i8);
    if (res->roof.compute_note)
        cJSON_AddStringToObject(roof, "note", res->roof.compute_note);
    cJSON *syn = cJSON_AddArrayToObject(root, "synthetic");
    for (size_t i = 0; i < res->n_synth; i++) {
        const bench_synth_note *s = &res->synth[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "shape", s->shape);
        cJSON_AddNumberToObject(j, "d_in", (double)s->d_in);
        cJSON_AddNumberToObject(j, "d_sae", (double)s->d_sae);
        cJSON_AddNumberToObject(j, "theta", s->theta);
        cJSON_AddNumberToObject(j, "target_l0", s->target_l0);
        cJSON_AddNumberToObject(j, "calib_tokens", (double)s->n_calib);
        cJSON_AddNumberToObject(j, "calib_l0", s->calib_l0);
        cJSON_AddNumberToObject(j, "bench_tokens", (double)s->n_tokens);
        cJSON_AddNumberToObject(j, "measured_l0", s->measured_l0);
        cJSON_AddItemToArray(syn, j);
    }
    cJSON *cells = cJSON_AddArrayToObject(root, "kernels");
    for (size_t i = 0; i < res->n_cells; i++) {
        const bench_cell *c = &res->cells[i];
        double t = c->st.median_s;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "variant", c->variant);
        cJSON_AddStringToObject(j, "shape", c->shape);
        cJSON_AddNumberToObject(j, "d_in", (double)c->d_in);
        cJSON_AddNumberToObject(j, "d_sae", (double)c->d_sae);
        cJSON_AddNumberToObject(j, "batch", (double)c->batch);
        cJSON_AddItemToObject(j, "stats", stats_json(&c->st));
        cJSON_AddNumberToObject(j, "tokens_per_s", (double)c->batch / t);
        cJSON_AddNumberToObject(j, "bytes", c->bytes);
        cJSON_AddNumberToObject(j, "GBps", c->bytes / t * 1e-9);
        cJSON_AddNumberToObject(j, "GFLOPs", c->flops / t * 1e-9);
        cJSON_AddNumberToObject(j, "ideal_s", c->ideal_s);
        cJSON_AddNumberToObject(j, "roofline_fraction", c->ideal_s / t);
        cJSON_AddNumberToObject(j, "mean_l0", c->mean_l0);
        cJSON_AddNumberToObject(j, "speedup_vs_numpy", ratio(c->numpy_s, t));
        cJSON_AddNumberToObject(j, "speedup_vs_torch", ratio(c->torch_s, t));
        cJSON_AddItemToArray(cells, j);
    }
    cJSON *peers = cJSON_AddArrayToObject(root, "peers");
    for (size_t i = 0; i < res->n_peers; i++) {
        const bench_peer_row *p = &res->peers[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "peer", p->peer);
        cJSON_AddStringToObject(j, "openblas_env", p->config);
        cJSON_AddStringToObject(j, "shape", p->shape);
        cJSON_AddNumberToObject(j, "batch", (double)p->batch);
        cJSON_AddNumberToObject(j, "median_s", p->median_s);
        cJSON_AddNumberToObject(j, "p99_s", p->p99_s);
        cJSON_AddNumberToObject(j, "calls", (double)p->calls);
        cJSON_AddNumberToObject(j, "mean_l0", p->mean_l0);
        cJSON_AddItemToArray(peers, j);
    }
    if (res->peer_note)
        cJSON_AddStringToObject(root, "peer_note", res->peer_note);
    cJSON *real = cJSON_AddArrayToObject(root, "real_saes");
    for (size_t i = 0; i < res->n_real; i++) {
        const bench_real_row *w = &res->real[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "sae", w->sae);
        cJSON_AddStringToObject(j, "variant", w->variant);
        if (w->note) {
            cJSON_AddStringToObject(j, "skipped", w->note);
        } else {
            cJSON_AddNumberToObject(j, "d_in", (double)w->d_in);
            cJSON_AddNumberToObject(j, "d_sae", (double)w->d_sae);
            cJSON_AddNumberToObject(j, "tokens", (double)w->n_tokens);
            cJSON_AddNumberToObject(j, "batch", (double)w->batch);
            cJSON_AddItemToObject(j, "stats_per_pass", stats_json(&w->st));
            cJSON_AddNumberToObject(j, "tokens_per_s", (double)w->n_tokens / w->st.median_s);
            cJSON_AddNumberToObject(j, "mean_l0", w->mean_l0);
        }
        cJSON_AddItemToArray(real, j);
    }
    if (res->real_note)
        cJSON_AddStringToObject(root, "real_note", res->real_note);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f) {
        fputs(text, f);
        fputc('\n', f);
        rc = fclose(f) == 0 ? 0 : -1;
    }
    free(text);
    return rc;
}

int bench_report_csv(const bench_results *res, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "kind,name,config,shape,d_in,d_sae,batch,median_s,p99_s,calls,tokens_per_s,GBps,"
               "GFLOPs,ideal_s,roofline_fraction,mean_l0,speedup_vs_numpy,speedup_vs_torch\n");
    for (size_t i = 0; i < res->n_cells; i++) {
        const bench_cell *c = &res->cells[i];
        double t = c->st.median_s;
        fprintf(f, "kernel,%s,,%s,%zu,%zu,%zu,%.9g,%.9g,%zu,%.6g,%.6g,%.6g,%.9g,%.4f,%.3f,%.4f,%.4f\n",
                c->variant, c->shape, c->d_in, c->d_sae, c->batch, t, c->st.p99_s, c->st.calls,
                (double)c->batch / t, c->bytes / t * 1e-9, c->flops / t * 1e-9, c->ideal_s,
                c->ideal_s / t, c->mean_l0, ratio(c->numpy_s, t), ratio(c->torch_s, t));
    }
    for (size_t i = 0; i < res->n_peers; i++) {
        const bench_peer_row *p = &res->peers[i];
        fprintf(f, "peer,%s,%s,%s,,,%zu,%.9g,%.9g,%zu,%.6g,,,,,%.3f,,\n", p->peer, p->config,
                p->shape, p->batch, p->median_s, p->p99_s, p->calls, (double)p->batch / p->median_s,
                p->mean_l0);
    }
    for (size_t i = 0; i < res->n_real; i++) {
        const bench_real_row *w = &res->real[i];
        if (w->note)
            continue;
        fprintf(f, "real,%s,%s,,%zu,%zu,%zu,%.9g,%.9g,%zu,%.6g,,,,,%.3f,,\n", w->variant, w->sae,
                w->d_in, w->d_sae, w->batch, w->st.median_s, w->st.p99_s, w->st.calls,
                (double)w->n_tokens / w->st.median_s, w->mean_l0);
    }
    return fclose(f) == 0 ? 0 : -1;
}
