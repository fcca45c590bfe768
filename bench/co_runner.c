/* The co-runner of `saemon bench --co-runner`: a thread on another core that
 * streams (reads and writes back) a buffer larger than any last-level cache,
 * as the model beside a sidecar does, so batch-1 latency is also measured
 * with the caches polluted instead of warm from the benchmark loop itself. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define CO_RUNNER_BYTES ((size_t)512 << 20) /* > any L3 this runs on (EPYC: 32 MiB per CCD, up to 1 GiB with V-Cache) */

struct bench_co_runner {
    pthread_t thread;
    volatile int stop;
    unsigned char *buf;
    size_t bytes;
    int self;         /* the measuring thread's CPU: never used */
    volatile int cpu; /* -2 until the thread has placed itself, -1 if it could not */
};

/* Place the thread on the first CPU other than the measuring one that the
 * process may use (the measuring thread itself is pinned to one CPU, so its
 * own mask does not say which others exist). */
static int place(int self)
{
    const long n = sysconf(_SC_NPROCESSORS_CONF);
    for (int i = 0; i < n && i < CPU_SETSIZE; i++) {
        if (i == self)
            continue;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(i, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0)
            return i;
    }
    return -1;
}

static void *co_run(void *arg)
{
    bench_co_runner *c = arg;
    c->cpu = place(c->self);
    while (c->cpu >= 0 && !c->stop)
        /* One write per cache line: the lines come in, get dirtied, and
         * evict the benchmark's data on their way through the LLC. */
        for (size_t i = 0; i < c->bytes && !c->stop; i += 64)
            c->buf[i]++;
    return NULL;
}

bench_co_runner *bench_co_runner_start(char *desc, size_t len)
{
    bench_co_runner *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->bytes = CO_RUNNER_BYTES;
    c->self = sched_getcpu();
    c->cpu = -2;
    c->buf = malloc(c->bytes);
    if (!c->buf) {
        free(c);
        snprintf(desc, len, "co-runner: out of memory");
        return NULL;
    }
    memset(c->buf, 1, c->bytes);
    if (pthread_create(&c->thread, NULL, co_run, c) != 0) {
        free(c->buf);
        free(c);
        snprintf(desc, len, "co-runner: pthread_create failed");
        return NULL;
    }
    while (c->cpu == -2)
        sched_yield();
    if (c->cpu < 0) {
        pthread_join(c->thread, NULL);
        free(c->buf);
        free(c);
        snprintf(desc, len, "no second CPU the co-runner may run on");
        return NULL;
    }
    snprintf(desc, len, "co-runner on CPU %d streaming %zu MiB (one write per line), measuring on CPU %d", c->cpu,
             c->bytes >> 20, c->self);
    return c;
}

void bench_co_runner_stop(bench_co_runner *c)
{
    if (!c)
        return;
    c->stop = 1;
    pthread_join(c->thread, NULL);
    free(c->buf);
    free(c);
}
