/* `saemon bench`: latency distribution and throughput of the public encoder
 * API (1 core and all cores, pinned), numpy/PyTorch peers with the same
 * thread counts, roofline fractions, JSON/CSV/PNG output and comparison with
 * an earlier run. See docs/benchmarks.md. */
#ifndef SAEMON_BENCH_SUITE_H
#define SAEMON_BENCH_SUITE_H

#include <stddef.h>
#include <stdio.h>

#include "bench.h"

#define SUITE_MAX_THREADS 8   /* thread configurations, not threads */
#define SUITE_MAX_VARIANTS 16

typedef struct suite_opts {
    int quick;
    int progress;               /* 1: always draw the progress bar; 0: only on a TTY */
    const char *shape_filter;   /* "gpt2", "gemma", "real" or NULL */
    int want_latency;           /* batch 1 in --batch */
    size_t tput_batches[BENCH_MAX_BATCHES];
    size_t n_tput_batches;
    size_t threads[SUITE_MAX_THREADS]; /* 0 = every allowed core */
    size_t n_threads;
    const char *variant_filter; /* comma list of kernel names or ISAs, NULL = all runnable */
    int all_variants;           /* with no filter: the scalar reference too (`kernels`) */
    const char *cpus, *exclude_cpus;
    const char *out_dir;
    const char *compare_path;
    const char *shared_dir, *peers_script, *python;
    const char *peer_openblas_core; /* OPENBLAS_CORETYPE for the peers, NULL = unset */
    int no_peers, no_real, no_synth, no_plot;
    int co_runner;              /* batch-1 latency also beside a cache-polluting co-runner (co_runner.c) */
    double target_l0;
    size_t latency_tokens;      /* batch-1 calls per latency cell */
    double latency_max_s;       /* ... unless the cell has taken this long */
    size_t peer_latency_tokens;
    double peer_latency_max_s;
    bench_opts cell;            /* stopping rule of throughput cells (timing.c) */
    const char *command_line;
} suite_opts;

/* One measured cell, saemon's or a peer's. Latency cells (batch 1) carry the
 * percentile fields; throughput cells median/p99 per call. */
typedef enum { SUITE_LATENCY = 0, SUITE_THROUGHPUT } suite_kind;

typedef struct suite_row {
    suite_kind kind;
    char *source;   /* "synthetic" or "real" */
    char *shape;    /* "gpt2", "gemma", or the real SAE's path under data/sae */
    char *impl;     /* "saemon", "numpy", "torch" */
    char *variant;  /* kernel variant; "fp32-dense" for peers */
    size_t threads; /* threads actually used */
    char cpus[64];  /* the cores, e.g. "0,1" ("" for peers: same cores as saemon) */
    size_t d_in, d_sae, batch;
    size_t calls;   /* latency: tokens timed */
    double p50_s, p90_s, p99_s, p999_s, max_s, mean_s; /* per call */
    double tokens_per_s;
    double ideal_s; /* roofline time of one call on `threads` cores */
    double mean_l0;
    double scaling; /* throughput on N cores / (N × 1 core), 0 when n/a */
    double vs_numpy[5], vs_torch[5]; /* saemon/peer: latency p50..max; throughput [0] = tok/s */
    int stopped_early; /* latency cell hit its time cap before latency_tokens */
    int co_runner;     /* latency measured beside the co-runner (caches polluted), not warm */
    float *cdf_ms;     /* latency: SUITE_CDF_POINTS quantiles for the plot, NULL otherwise */
    /* latency, over the timed calls, per token: page faults (minor + major),
     * voluntary context switches (the thread waited: saemon's own) and
     * involuntary ones (preempted: the machine's load) of the encoding
     * thread (getrusage), heap allocations of the process (-1: not counted,
     * e.g. under a sanitizer) */
    double faults_per_token, waits_per_token, preempted_per_token, allocs_per_token;
    char *note;        /* skipped: why */
} suite_row;

#define SUITE_CDF_POINTS 201

typedef struct suite_synth_note {
    char shape[16];
    size_t d_in, d_sae, n_tokens, n_calib;
    double theta, target_l0, calib_l0;
} suite_synth_note;

typedef struct suite_results {
    char cpu[160];
    size_t allowed_cores;
    bench_roofline roof[SUITE_MAX_THREADS + 1]; /* 1 core, then each multi-core configuration */
    size_t roof_threads[SUITE_MAX_THREADS + 1];
    size_t n_roof;
    suite_synth_note synth[2];
    size_t n_synth;
    suite_row *rows;
    size_t n_rows, cap_rows;
    char **notes;
    size_t n_notes;
    double run_s;
} suite_results;

suite_row *suite_add_row(suite_results *r);
void suite_note(suite_results *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void suite_results_free(suite_results *r);
/* Roofline of `threads` cores (nearest measured configuration). */
const bench_roofline *suite_roof(const suite_results *r, size_t threads);

/* ---- suite.c ---- */
int bench_suite_run(const suite_opts *o);
/* Parse `saemon bench` arguments (argv[0] = "bench"); 0 ok, 2 usage error.
 * kernels: the `saemon bench kernels` preset (one thread, every runnable
 * variant including the scalar reference), options still apply on top. */
int bench_suite_parse(suite_opts *o, int argc, char **argv, int kernels);
void bench_suite_usage(FILE *f);

/* ---- suite_encode.c: saemon through the public API ---- */
typedef struct suite_pool {
    const char *source, *shape;
    size_t d_in, d_sae, n_tokens;
    const float *x;   /* [n_tokens][d_in] tokens cycled through */
} suite_pool;

struct saemon_dict;
/* Every runnable (and filtered) variant × thread configuration on `dict`:
 * latency and throughput rows. `used_cpus[t]` receives the cores thread
 * configuration t ran on (for the peers). */
void suite_run_saemon(suite_results *res, const suite_opts *o, const struct saemon_dict *dict,
                      const suite_pool *pool, char used_cpus[][64]);
/* Number of variants suite_run_saemon would run (for the progress bar). */
size_t suite_count_variants(const suite_opts *o);

/* ---- suite_peers.c ---- */
/* numpy and PyTorch on the same dictionary and tokens, `threads` threads,
 * on the cores `cpus` (affinity inherited). */
void suite_run_peers(suite_results *res, const suite_opts *o, const char *npy_dir,
                     const suite_pool *pool, double theta, size_t threads, const char *cpus);
/* Fill vs_numpy / vs_torch / scaling on every saemon row. */
void suite_attach_ratios(suite_results *res);

/* ---- suite_real.c ---- */
void suite_run_real(suite_results *res, const suite_opts *o, char used_cpus[][64]);
size_t suite_count_real(const suite_opts *o);

/* ---- suite_report.c ---- */
void suite_print(const suite_results *res, const suite_opts *o, FILE *f);
/* The whole run as JSON (caller cJSON_Delete's it). */
struct cJSON *suite_json(const suite_results *res, const suite_opts *o);
int suite_write_csv(const suite_results *res, const char *path);

/* ---- suite_compare.c ---- */
/* Print per cell old → new, ratio, and a flag beyond ±5 %; returns the number
 * of cells compared, -1 if `old_path` cannot be read. */
int suite_compare(struct cJSON *now, const char *old_path, FILE *f);

/* ---- suite_plot.c ---- */
/* Write data files and a gnuplot script to dir, run gnuplot; 0 ok, -1 with a
 * message on stderr (gnuplot missing: skipped). */
int suite_plot(const suite_results *res, const char *dir);

/* ---- progress.c ---- */
void progress_init(size_t total_units, int force);
void progress_begin(const char *label);
/* Fraction of the current unit done (0..1). */
void progress_update(double fraction);
void progress_end_unit(void);
void progress_finish(void);
/* Print a line on stdout without tearing the bar. */
void progress_clear(void);

/* ---- affinity.c ---- */
void suite_affinity_save(void);
void suite_affinity_restore(void);
/* Pin the calling thread (and children it starts) to a CPU list "0,3"; 0 ok. */
int suite_affinity_set_list(const char *cpus);
size_t suite_allowed_cpus(void);

/* ---- roofline_mt.c ---- */
/* Streaming-read bandwidths with `threads` threads reading at once, each
 * pinned to one of the allowed CPUs; compute peaks = threads × one core's. */
void bench_roofline_measure_threads(bench_roofline *r, const bench_roofline *one, size_t threads, int quick);

#endif
