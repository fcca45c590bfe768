/* The roofline of several cores: every thread, pinned to its own allowed
 * CPU, streams its share of one buffer size at the same time; bandwidth =
 * total bytes / wall time of the slowest thread (best of N passes). Compute
 * peaks are taken as threads × one core's measured peak (not re-measured:
 * FMA throughput per core does not depend on the neighbours). */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

typedef struct mt_run {
    size_t threads, bytes_each;
    double seconds;
    pthread_barrier_t bar;
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int go, abandon; /* every reader started / one could not be: nobody measures */
    int stop;
    double best_gbs;
    int cpus[CPU_SETSIZE];
} mt_run;

typedef struct mt_arg {
    mt_run *run;
    size_t id;
} mt_arg;

static volatile uint64_t mt_sink;

static void *mt_reader(void *p)
{
    mt_arg *a = p;
    mt_run *r = a->run;
    pthread_mutex_lock(&r->gate_mu);
    while (!r->go && !r->abandon)
        pthread_cond_wait(&r->gate_cv, &r->gate_mu);
    int abandon = r->abandon;
    pthread_mutex_unlock(&r->gate_mu);
    if (abandon)
        return NULL;
    if (r->cpus[a->id] >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(r->cpus[a->id], &one);
        sched_setaffinity(0, sizeof one, &one);
    }
    void *buf = aligned_alloc(64, r->bytes_each);
    if (buf)
        memset(buf, 1, r->bytes_each); /* first touch by the reader: its NUMA node */
    double t_start = 0, t0 = 0;
    for (int rep = 0;; rep++) {
        pthread_barrier_wait(&r->bar);
        if (a->id == 0) {
            t0 = clock_now_s();
            if (rep == 0)
                t_start = t0;
        }
        if (buf)
            mt_sink ^= bench_read_stream(buf, r->bytes_each);
        pthread_barrier_wait(&r->bar);
        if (a->id == 0) {
            double now = clock_now_s(), gbs = (double)(r->bytes_each * r->threads) / (now - t0) * 1e-9;
            if (buf && gbs > r->best_gbs)
                r->best_gbs = gbs;
            r->stop = (now - t_start >= r->seconds && rep >= 2) || !buf;
        }
        pthread_barrier_wait(&r->bar);
        if (r->stop)
            break;
    }
    free(buf);
    return NULL;
}

static double read_bw_threads(size_t threads, size_t total, double seconds)
{
    mt_run *r = calloc(1, sizeof *r);
    pthread_t *tid = calloc(threads, sizeof *tid);
    mt_arg *args = calloc(threads, sizeof *args);
    double out = 0;
    if (!r || !tid || !args)
        goto done;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    sched_getaffinity(0, sizeof allowed, &allowed);
    size_t k = 0;
    for (int c = 0; c < CPU_SETSIZE && k < threads; c++)
        if (CPU_ISSET(c, &allowed))
            r->cpus[k++] = c;
    for (; k < threads; k++)
        r->cpus[k] = -1;
    r->threads = threads;
    r->bytes_each = (total / threads + 63) / 64 * 64;
    r->seconds = seconds;
    pthread_barrier_init(&r->bar, NULL, (unsigned)threads);
    pthread_mutex_init(&r->gate_mu, NULL);
    pthread_cond_init(&r->gate_cv, NULL);
    size_t started = 0;
    for (; started < threads; started++) {
        args[started] = (mt_arg){.run = r, .id = started};
        if (pthread_create(&tid[started], NULL, mt_reader, &args[started]) != 0)
            break;
    }
    pthread_mutex_lock(&r->gate_mu);
    r->go = started == threads;
    r->abandon = !r->go;
    pthread_cond_broadcast(&r->gate_cv);
    pthread_mutex_unlock(&r->gate_mu);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&r->bar);
    pthread_mutex_destroy(&r->gate_mu);
    pthread_cond_destroy(&r->gate_cv);
    out = r->go ? r->best_gbs : 0;
done:
    free(r);
    free(tid);
    free(args);
    return out;
}

void bench_roofline_measure_threads(bench_roofline *r, const bench_roofline *one, size_t threads, int quick)
{
    *r = *one;
    if (threads <= 1)
        return;
    double s = quick ? 0.1 : 0.4;
    r->bw_16m = read_bw_threads(threads, (size_t)16 << 20, s);
    r->bw_32m = read_bw_threads(threads, (size_t)32 << 20, s);
    r->bw_dram = read_bw_threads(threads, (size_t)1 << 30, quick ? 0.3 : 1.0);
    r->peak_f32 = one->peak_f32 * (double)threads;
    r->peak_bf16 = one->peak_bf16 * (double)threads;
    r->peak_i8 = one->peak_i8 * (double)threads;
}
