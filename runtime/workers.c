#include "runtime/workers.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"

typedef struct worker {
    saemon_workers *pool;
    size_t part;
    pthread_t thread;
    int started;
    int bound_pu; /* read back after binding, -1 if unbound */
} worker;

struct saemon_workers {
    size_t n_parts;
    worker *workers;        /* [n_parts], entry 0 unused (the submitting thread) */
    saemon_topology *topo;
    const unsigned *pus;
    uint64_t spin_ns;
    _Atomic uint32_t generation;
    _Atomic uint32_t pending;
    _Atomic uint32_t sleepers;         /* workers asleep on generation */
    _Atomic uint32_t pending_sleepers; /* the submitting thread asleep on pending */
    _Atomic int stop;
    saemon_job_fn fn;
    void *ctx;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Wait until *addr != seen: spin for spin_ns, then sleep on the futex,
 * counted in *sleepers while asleep (the waker's futex_wake is a system call
 * it skips when nobody sleeps: the counter is raised before the futex checks
 * *addr, and the waker changes *addr before reading the counter, both
 * sequentially consistent, so one of them sees the other). */
static uint32_t wait_change(saemon_workers *p, _Atomic uint32_t *addr, uint32_t seen, _Atomic uint32_t *sleepers)
{
    uint64_t start = 0;
    for (unsigned i = 0;; i++) {
        uint32_t v = atomic_load_explicit(addr, memory_order_acquire);
        if (v != seen)
            return v;
        if ((i & 63) == 0) {
            uint64_t t = clock_now_ns();
            if (!start)
                start = t;
            else if (t - start > p->spin_ns)
                break;
        }
        cpu_relax();
    }
    for (;;) {
        atomic_fetch_add(sleepers, 1);
        futex_wait(addr, seen);
        atomic_fetch_sub(sleepers, 1);
        uint32_t v = atomic_load_explicit(addr, memory_order_acquire);
        if (v != seen)
            return v;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    saemon_workers *p = w->pool;
    uint32_t seen = 0; /* generation 0: nothing submitted yet */
    for (;;) {
        seen = wait_change(p, &p->generation, seen, &p->sleepers);
        if (atomic_load(&p->stop))
            return NULL;
        p->fn(p->ctx, w->part);
        /* the last one done wakes the submitting thread, if it sleeps: it
         * spins for spin_ns first, so most runs end without a system call */
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_seq_cst) == 1 &&
            atomic_load_explicit(&p->pending_sleepers, memory_order_seq_cst))
            futex_wake(&p->pending);
    }
}

/* The first job every worker runs: bind itself and read the binding back. */
static void bind_job(void *ctx, size_t part)
{
    saemon_workers *p = ctx;
    worker *w = &p->workers[part];
    w->bound_pu = -1;
    if (part == 0 || !p->topo)
        return;
    saemon_error err;
    if (saemon_topology_bind_thread(p->topo, p->pus[part], &err) == SAEMON_OK)
        w->bound_pu = saemon_topology_thread_binding(p->topo);
}

saemon_status saemon_workers_start(size_t n_parts, saemon_topology *topo, const unsigned *pus, unsigned spin_us,
                                   saemon_workers **out, saemon_error *err)
{
    *out = NULL;
    if (n_parts == 0)
        return saemon_error_set(err, SAEMON_ERR_ARG, "a worker pool needs at least one part");
    saemon_workers *p = calloc(1, sizeof *p);
    if (!p || !(p->workers = calloc(n_parts, sizeof(worker)))) {
        free(p);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for %zu workers", n_parts);
    }
    p->n_parts = n_parts;
    p->topo = topo;
    p->pus = pus;
    p->spin_ns = (uint64_t)spin_us * 1000u;
    for (size_t i = 1; i < n_parts; i++) {
        p->workers[i] = (worker){.pool = p, .part = i, .bound_pu = -1};
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            saemon_workers_stop(p);
            return saemon_error_set(err, SAEMON_ERR_IO, "cannot start worker thread %zu: %s", i, strerror(rc));
        }
        p->workers[i].started = 1;
    }
    saemon_workers_run(p, bind_job, p);
    if (topo) {
        for (size_t i = 1; i < n_parts; i++) {
            if (p->workers[i].bound_pu != (int)pus[i]) {
                unsigned pu = pus[i];
                saemon_workers_stop(p);
                return saemon_error_set(err, SAEMON_ERR_IO, "worker %zu could not be pinned to CPU %u", i, pu);
            }
        }
    }
    *out = p;
    return SAEMON_OK;
}

void saemon_workers_run(saemon_workers *p, saemon_job_fn fn, void *ctx)
{
    const uint32_t others = (uint32_t)(p->n_parts - 1);
    if (others) {
        p->fn = fn;
        p->ctx = ctx;
        atomic_store_explicit(&p->pending, others, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->generation, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst))
            futex_wake(&p->generation);
    }
    fn(ctx, 0);
    for (uint32_t left; others && (left = atomic_load_explicit(&p->pending, memory_order_acquire)) != 0;)
        wait_change(p, &p->pending, left, &p->pending_sleepers);
}

int saemon_workers_binding(const saemon_workers *p, size_t part)
{
    return part < p->n_parts ? p->workers[part].bound_pu : -1;
}

void saemon_workers_stop(saemon_workers *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->generation, 1);
    futex_wake(&p->generation);
    for (size_t i = 1; i < p->n_parts; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    free(p);
}
