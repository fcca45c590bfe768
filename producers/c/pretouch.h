/* Writing, ahead of the model's thread, the ring pages its next frames will
 * write (docs/ring.md, "What the model's thread pays").
 *
 * A page written a while ago can cost a fault on its next write: the kernel's
 * NUMA balancing unmaps pages to sample accesses, and a hypervisor tracking
 * dirty pages write-protects them again (on the VMs measured for issue 25, one
 * publish in eight at 500 tokens/s paid 7-50 us this way into a 1024-slot
 * ring). The library's heartbeat thread therefore writes one byte of each
 * page of the next few slots shortly before they are used, so any such fault
 * is taken on its thread. The write is an atomic add of zero: no byte
 * changes, whoever else reads or writes the slot.
 *
 * Thread use: pretouch_set/pretouch_clear by the producer (under its mutex),
 * pretouch_run by the heartbeat thread without the producer's mutex; the
 * segment is only unmapped after pretouch_clear returned. */
#ifndef SAEMON_PRODUCERS_PRETOUCH_H
#define SAEMON_PRODUCERS_PRETOUCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ring_wire.h"

typedef struct pretouch {
    pthread_mutex_t mu; /* guards the fields below against pretouch_clear */
    uintptr_t page;     /* the page size */
    const ring_header *h; /* NULL: no segment */
    uint8_t *slots;
    uint32_t n_slots, slot_bytes;
    size_t bytes;          /* bytes of a slot to keep warm (a one-row frame) */
    uint64_t last_head;    /* h->head at the previous run */
    uint64_t last_move_ns; /* when head last moved */
    uint64_t active_until; /* the ring counts as in use until then */
    uint64_t gap_ns;       /* mean time between frames, smoothed */
} pretouch;

void pretouch_init(pretouch *t);
void pretouch_destroy(pretouch *t);
/* A new segment: keep the first `bytes` of its slots warm. */
void pretouch_set(pretouch *t, const ring_header *h, uint8_t *slots, size_t bytes);
/* The segment is about to be unmapped: returns once no run uses it. */
void pretouch_clear(pretouch *t);
/* Slots [first, first + count) by sequence number. */
typedef struct pretouch_span {
    uint64_t first, count;
} pretouch_span;

/* Write the slots the next frames will use (which ones: *done, if given).
 * Returns when to run next (CLOCK_MONOTONIC ns): 5-10 ms while frames flow,
 * 100 ms while the ring is idle; 0 without a segment. */
uint64_t pretouch_run(pretouch *t, uint64_t now, pretouch_span *done);

#endif
