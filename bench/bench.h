/* saemon-bench: timing, roofline and helper files shared by the benchmarks (bench/). */
#ifndef SAEMON_BENCH_H
#define SAEMON_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/clock.h"

#define BENCH_MAX_BATCHES 8

/* Stopping rule of every timed cell (see bench_measure). */
typedef struct bench_opts {
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
    double peak_i8;   /* GOP/s, vpdpbusd zmm (AVX2: vpmaddwd + vpaddd ymm) */
    const char *isa;  /* vector family the peaks and reads were measured with: "avx512", "avx2", "portable" */
    const char *compute_note; /* why a peak is missing, or NULL */
} bench_roofline;

void bench_roofline_measure(bench_roofline *r, int quick);
/* Read bandwidth that applies to streaming `bytes` of weights. */
double bench_roofline_bw(const bench_roofline *r, double bytes);
/* Peak for a variant's weight datatype ("f32", "bf16", "i8"). */
double bench_roofline_peak(const bench_roofline *r, const char *dtype);
/* Ideal seconds per call: max(bytes / BW, flops / peak). */
double bench_roofline_ideal_s(const bench_roofline *r, double bytes, double flops, const char *dtype);

/* One streaming read of buf with the widest vectors of the roofline's
 * family (bench_roofline_family). */
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
/* The same with AVX2 (roofline_avx2.c): vfmadd231ps ymm, vpmaddwd ymm, ymm loads. */
double bench_peak_fma_f32_avx2(double seconds);
double bench_peak_i8_avx2(double seconds);
uint64_t bench_read_avx2(const void *buf, size_t bytes);
#endif

/* ---- co_runner.c ---- */
/* A thread on another allowed CPU streaming a buffer larger than the LLC
 * until stopped. desc receives what runs where (or why it could not start,
 * then NULL is returned). */
typedef struct bench_co_runner bench_co_runner;
bench_co_runner *bench_co_runner_start(char *desc, size_t len);
void bench_co_runner_stop(bench_co_runner *c);

/* ---- paths.c ---- */
/* A helper file shipped with the benchmark ("peers.py"): next to the program
 * (build tree), else in the installed data directory. Static buffer. */
const char *bench_data_file(const char *name);
/* $SAEMON_SHARED_DIR, else "../shared". */
const char *bench_default_shared_dir(void);

/* ---- bench_rules.c: `saemon-bench rules` ---- */
int bench_rules_main(int argc, char **argv);

/* ---- sidecar.c ---- */
/* `saemon bench sidecar`: saemon serve beside a C producer. */
int bench_sidecar_main(int argc, char **argv);
/* ---- bench_watched.c: `saemon-bench watched` ---- */
int bench_watched_main(int argc, char **argv);
/* ---- bench_memory.c: `saemon-bench memory` ---- */
int bench_memory_main(int argc, char **argv);

#endif
