/* A small pool of pinned worker threads that run one job at a time together
 * with the submitting thread. Hand-off is lock-free: a generation counter the
 * workers spin on for a while, then sleep on (futex), so back-to-back tokens
 * never pay for a mutex or a wake-up, and an idle pool costs nothing. */
#ifndef SAEMON_WORKERS_H
#define SAEMON_WORKERS_H

#include <stddef.h>

#include "runtime/topology.h"
#include "saemon/error.h"

/* A job: called once per participant, part 0 on the submitting thread and
 * parts 1..n-1 on the workers. */
typedef void (*saemon_job_fn)(void *ctx, size_t part);

typedef struct saemon_workers saemon_workers;

/* Start n_parts - 1 threads. When topo is non-NULL, thread i binds itself to
 * pus[i] (pus[0] is the submitting thread's core, bound by the caller if it
 * wishes). spin_us: how long an idle worker spins before it sleeps. */
saemon_status saemon_workers_start(size_t n_parts, saemon_topology *topo, const unsigned *pus, unsigned spin_us,
                                   saemon_workers **out, saemon_error *err);

/* Run fn(ctx, part) for every part and return when all are done. */
void saemon_workers_run(saemon_workers *w, saemon_job_fn fn, void *ctx);

/* The PU worker `part` (>= 1) is bound to as read back from the OS, or -1. */
int saemon_workers_binding(const saemon_workers *w, size_t part);

/* Stop and join every thread. */
void saemon_workers_stop(saemon_workers *w);

#endif
