/* Timing of one benchmark cell: warm-up, then repeated calls, median and p99. */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of an ascending array (p in [0, 100]). */
double bench_percentile(double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static double median(const double *sorted, size_t n)
{
    if (n == 0)
        return NAN;
    return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

bench_stats bench_measure(void (*fn)(void *), void *ctx, const bench_opts *o)
{
    bench_stats st = {0};
    /* Warm-up: one call, a second one when the first was quick (page faults,
     * frequency ramp). A call that already takes a long time warms itself. */
    double t0 = clock_now_s();
    fn(ctx);
    if (clock_now_s() - t0 < 0.05)
        fn(ctx);

    size_t cap = 256; /* grows below */
    double *samples = malloc(cap * sizeof *samples);
    if (!samples)
        return st;
    size_t n = 0;
    double start = clock_now_s();
    for (;;) {
        double a = clock_now_s();
        fn(ctx);
        double b = clock_now_s();
        if (n == cap) {
            double *grown = realloc(samples, 2 * cap * sizeof *samples);
            if (!grown)
                break;
            samples = grown;
            cap *= 2;
        }
        samples[n++] = b - a;
        double elapsed = b - start;
        if (elapsed >= o->max_time)
            break; /* slow cell: stop on time, even below min_calls */
        if (n >= o->min_calls && elapsed >= o->min_time)
            break;
        if (n >= 100000)
            break;
    }
    st.total_s = clock_now_s() - start;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += samples[i];
    qsort(samples, n, sizeof *samples, cmp_double);
    st.calls = n;
    st.mean_s = sum / (double)n;
    st.median_s = median(samples, n);
    st.p99_s = bench_percentile(samples, n, 99.0);
    free(samples);
    return st;
}
