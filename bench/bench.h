/* saemon-bench-kernels: shared types of the kernel benchmark (bench/). */
#ifndef SAEMON_BENCH_H
#define SAEMON_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/clock.h"

#define BENCH_MAX_BATCHES 8
#define BENCH_MAX_PEER_CONFIGS 2

typedef struct bench_opts {
    int quick;
    const char *shape_filter;     /* "gpt2", "gemma" or NULL for both */
    size_t batches[BENCH_MAX_BATCHES];
    size_t n_batches;
    const char *json_path, *csv_path;
    const char *shared_dir;
    const char *peers_script;
    const char *python;
    int no_peers, no_real;
    double target_l0;
    /* Stopping rule of every timed cell (see bench_measure). */
    double min_time, max_time;
    size_t min_calls;
} bench_opts;

/* ---- timing.c ---- */
typedef struct bench_stats {
    double median_s, p99_s, mean_s, total_s;
    size_t calls;
} bench_stats;

/* Warm up, then call fn until (calls >= min_calls and elapsed >= min_time)
 * or elapsed >= max_time (a slow cell may stop below min_calls, never below 1).
 * p99 is nearest-rank: with fewer than 100 calls it is the slowest call. */
bench_stats bench_measure(void (*fn)(void *), void *ctx, const bench_opts *o);
double bench_percentile(double *sorted, size_t n, double p);

/* ---- roofline.c / roofline_avx512.c ---- */
typedef struct bench_roofline {
    double bw_dram;   /* GB/s, streaming read of a 1 GiB buffer */
    double bw_16m;    /* GB/s, 16 MiB buffer (cache-resident on this machine class) */
    double bw_32m;    /* GB/s, 32 MiB buffer */
    double peak_f32;  /* GFLOP/s, vfmadd231ps zmm; 0 when not measured */
    double peak_bf16; /* GFLOP/s, vdpbf16ps zmm */
    double peak_i8;   /* GOP/s, vpdpbusd zmm */
    const char *compute_note; /* why a peak is missing, or NULL */
} bench_roofline;

void bench_roofline_measure(bench_roofline *r, int quick);
/* Read bandwidth that applies to streaming `bytes` of weights. */
double bench_roofline_bw(const bench_roofline *r, double bytes);
/* Peak for a variant's weight datatype ("f32", "bf16", "i8"). */
double bench_roofline_peak(const bench_roofline *r, const char *dtype);
/* Ideal seconds per call: max(bytes / BW, flops / peak). */
double bench_roofline_ideal_s(const bench_roofline *r, double bytes, double flops, const char *dtype);

/* One streaming read of buf (zmm loads when the CPU has AVX-512F). */
uint64_t bench_read_stream(const void *buf, size_t bytes);
/* Bytes per weight of a variant's screening dtype (first field of its name,
 * copied to dtype), 0 if unknown. */
double bench_variant_weight_bytes(const char *variant, char *dtype, size_t n);

#if defined(__x86_64__)
/* In the AVX-512 TU; only call when the CPU has the feature. Return
 * GFLOP/s (GOP/s for int8) of one core. */
double bench_peak_fma_f32(double seconds);
double bench_peak_dpbf16(double seconds);
double bench_peak_vnni(double seconds);
/* Streaming read with zmm loads; returns a value that depends on the data. */
uint64_t bench_read_avx512(const void *buf, size_t bytes);
#endif

/* ---- results (report.c) ---- */
typedef struct bench_peer_cell {
    double median_s, p99_s;
    size_t calls;
    int valid;
} bench_peer_cell;

typedef struct bench_cell {
    const char *variant;   /* kernel name, or peer name for peer rows */
    const char *shape;
    size_t d_in, d_sae, batch;
    bench_stats st;
    double bytes, flops, ideal_s;
    double mean_l0;
    double numpy_s, torch_s; /* best peer config median, 0 if absent */
} bench_cell;

typedef struct bench_peer_row {
    const char *peer;      /* "numpy" / "torch" */
    const char *config;    /* "env-as-set" / "openblas-env-unset" */
    const char *shape;
    size_t batch;
    double median_s, p99_s;
    size_t calls;
    double mean_l0;
} bench_peer_row;

typedef struct bench_real_row {
    char *sae;             /* path relative to the shared dir */
    char *variant;
    size_t d_in, d_sae, n_tokens, batch;
    bench_stats st;        /* per encode of the whole acts file */
    double mean_l0;
    char *note;            /* skip reason, NULL when measured */
} bench_real_row;

typedef struct bench_synth_note {
    const char *shape;
    size_t d_in, d_sae, n_calib, n_tokens;
    double target_l0, theta, calib_l0, measured_l0, gen_s;
    const char *calib_variant;
} bench_synth_note;

typedef struct bench_results {
    bench_roofline roof;
    char cpu[128];
    char openblas_env[256];
    bench_cell *cells;
    size_t n_cells, cap_cells;
    bench_peer_row *peers;
    size_t n_peers, cap_peers;
    char *peer_note;
    bench_real_row *real;
    size_t n_real, cap_real;
    char *real_note;
    bench_synth_note synth[2];
    size_t n_synth;
} bench_results;

bench_cell *bench_results_add_cell(bench_results *res);
bench_peer_row *bench_results_add_peer(bench_results *res);
bench_real_row *bench_results_add_real(bench_results *res);
void bench_results_free(bench_results *res);
void bench_report_table(const bench_results *res, const bench_opts *o);
int bench_report_json(const bench_results *res, const bench_opts *o, const char *path);
int bench_report_csv(const bench_results *res, const char *path);

/* ---- real_saes.c ---- */
void bench_real_saes(bench_results *res, const bench_opts *o);

/* ---- paths.c ---- */
/* A helper file shipped with the benchmark ("peers.py"): next to the program
 * (build tree), else in the installed data directory. Static buffer. */
const char *bench_data_file(const char *name);
/* $SAEMON_SHARED_DIR, else "../shared". */
const char *bench_default_shared_dir(void);

/* ---- main.c: `saemon-bench rules` (bench_rules.c) ---- */
int bench_rules_main(int argc, char **argv);

/* ---- kernels_main.c: the saemon-bench-kernels program ---- */
int bench_kernels_main(int argc, char **argv);
/* acts file paired with an SAELens dir (real_saes.c); malloc'd or NULL. */
char *bench_real_acts_path(const char *sae_dir);

/* ---- peers.c ---- */
/* Run peers.py on the dictionary in `dir` (W.npy, b.npy, x.npy, theta).
 * Appends peer rows; returns 0, or -1 with res->peer_note set. */
int bench_run_peers(bench_results *res, const bench_opts *o, const char *dir, const char *shape,
                    double theta);
/* Tiny float32 C-order .npy writer (peers only). */
int bench_write_npy(const char *path, const float *data, size_t ndim, const size_t *shape);

#endif
