/* Consumer state of one ring (runtime/ring.c, ring_shm.c, ring_verdict.c). */
#ifndef SAEMON_RING_INTERNAL_H
#define SAEMON_RING_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/ring_wire.h"
#include "runtime/ring_streams.h"
#include "saemon/ring.h"

struct saemon_ring {
    char name[RING_NAME_MAX + 1];
    char shm_name[sizeof RING_SHM_PREFIX + RING_NAME_MAX];

    /* the segment */
    int fd;
    void *map;
    size_t map_bytes;
    ring_header *h;
    uint8_t *slots;
    uint64_t *verdicts;
    dev_t dev;
    ino_t ino;
    int faulted;            /* (__atomic) set by the SIGBUS guard: the mapping is zero pages now */
    uint64_t segment_faults;
    int dead;               /* (__atomic) the segment could not be recreated; see dead_reason */
    uint64_t retry_ns;      /* next attempt (next() thread) */
    uint64_t progress_ns;   /* last time the tail moved (atomic, for stats) */
    uint32_t n_slots;       /* private copies: never re-read from shared memory */
    uint32_t slot_bytes;
    uint32_t verdict_entries;

    /* what this consumer accepts */
    uint32_t expected_d_in;
    char expected_hook[128];
    bool allow_nonfinite;
    bool evaluated_by_caller; /* saemon_ring_evaluated() publishes `evaluated`, not release() */

    /* consumer progress (next() thread only) */
    uint64_t tail;
    uint64_t evaluated;     /* last value stored in the header's `evaluated` */
    bool holding;           /* a frame was returned and not released yet */
    uint8_t *raw;           /* private copy of one slot */
    float *rows;            /* converted rows of that slot */
    ring_streams streams;
    uint32_t judged_gen;
    int judgement;          /* RING_JUDGE_* */
    uint32_t ann_d_in, ann_dtype, ann_hook_id;

    /* waiting (ring_wait.c, next() thread only) */
    uint64_t wait_activity_ns; /* last frame or announcement seen: warm for a while after */
    uint64_t wait_cold_ns;     /* ... this long (ring_wait_cold_after); 0 = not known yet */
    uint64_t wait_mark_ns;     /* when wait_tail/wait_gen were noted */
    uint64_t wait_tail;
    uint32_t wait_gen;
    bool wait_dense;           /* frames arrive closer than a sleep costs: spin first */

    /* counters read by get_stats from other threads: atomic (relaxed) */
    uint64_t tokens_received, frames_received;
    uint64_t rejected[SAEMON_RING_REJECT_COUNT];
    uint64_t producers_refused;
    uint64_t gap_table_resets; /* = streams.resets, for stats */
    uint64_t producers_accepted;
    uint64_t last_frame_ns;
    uint64_t tail_shared;   /* = tail, for stats */

    /* announcement copy + verdict writes, shared with other threads */
    pthread_mutex_t lock;
    char ann_model[RING_TEXT_MAX];
    char ann_hook[RING_TEXT_MAX];
    char refuse_reason[256];
    char dead_reason[256];
    uint64_t verdicts_evicted[SAEMON_VERDICT_BLOCK + 1]; /* atomic, by severity */
};

/* ring_verdict.c: publish `evaluated` (monotonic) and wake verdict waiters. */
void ring_set_evaluated(saemon_ring *r, uint64_t frames);

/* ring_shm.c: create (replacing a dead consumer's segment) / retire. */
saemon_status ring_segment_create(saemon_ring *r, saemon_error *err);
void ring_segment_destroy(saemon_ring *r);
/* Replace a segment that broke under us (SIGBUS guard), at the same address. */
saemon_status ring_segment_recreate(saemon_ring *r, saemon_error *err);
/* ring_guard.c: SIGBUS in a registered mapping -> zero pages + r->faulted. */
bool ring_guard_register(saemon_ring *r);
void ring_guard_unregister(saemon_ring *r);
/* ring_wait.c: wait until one of the rings has a frame or an announcement
 * (1) or deadline_ns (CLOCK_MONOTONIC, 0 = none) passes (0). */
int ring_wait(saemon_ring *const *rings, size_t n, uint64_t deadline_ns);
/* How long a ring stays warm after its last frame, given the silence its
 * last frame broke (0: none seen yet). */
uint64_t ring_wait_cold_after(uint64_t last_silence_ns);
/* Does a live process hold the lock byte `which` (0 producer, 1 consumer)? */
bool ring_lock_held(int fd, int which);

#endif
