/* The peak-throughput loop shared by bench/roofline_avx512.c and
 * bench/roofline_avx2.c: 12 independent accumulator chains, so that the
 * FMA/dot latency (4-6 cycles) is hidden behind 2 issue ports. The including
 * file defines DECL(c) and STEP(c) around each use. */
#ifndef SAEMON_BENCH_ROOFLINE_PEAK_H
#define SAEMON_BENCH_ROOFLINE_PEAK_H

#include "bench.h"

/* Keep a register live without letting the compiler see through it. */
#define OPAQUE(v) __asm__ volatile("" : "+v"(v))

/* 12 named accumulators (an array may be spilled to the stack at -O2). */
#define X12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define CHAINS 12
#define INNER 256

#define PEAK_LOOP()                                                                  \
    X12(DECL)                                                                        \
    uint64_t iters = 0;                                                              \
    double t0 = clock_now_s(), t;                                                    \
    do {                                                                             \
        for (int i = 0; i < INNER; i++) {                                            \
            X12(STEP)                                                                \
        }                                                                            \
        X12(KEEP)                                                                    \
        iters += INNER;                                                              \
        t = clock_now_s() - t0;                                                      \
    } while (t < seconds);

#define KEEP(c) OPAQUE(acc##c);

#endif
