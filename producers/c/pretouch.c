/* Writing ahead of the model's thread: see pretouch.h. */
#include "producers/c/pretouch.h"

#include <unistd.h>

/* How often, and how far ahead. On the VM measured, a page written t ago
 * faulted on its next write with probability ~6.5 % per second of t
 * (docs/benchmarks.md): writing the slots of the next two intervals every
 * 5-10 ms leaves ~0.1 %, for ~100-200 wake-ups a second of this thread. */
#define PRETOUCH_ACTIVE_NS 2000000000u /* the ring counts as in use this long after a frame */
#define PRETOUCH_MIN_NS 5000000u       /* in use: run every 5 ms ... */
#define PRETOUCH_MAX_NS 10000000u      /* ... to 10 ms (half the gap between frames) */
#define PRETOUCH_IDLE_NS 100000000u    /* idle: keep the next few slots fresh every 100 ms */
#define PRETOUCH_IDLE_AHEAD 4u
#define PRETOUCH_AHEAD_MAX 64u         /* slots written ahead at most */

void pretouch_init(pretouch *t)
{
    *t = (pretouch){0};
    pthread_mutex_init(&t->mu, NULL);
    long ps = sysconf(_SC_PAGESIZE);
    t->page = ps > 0 ? (uintptr_t)ps : 4096u;
}

void pretouch_destroy(pretouch *t)
{
    pthread_mutex_destroy(&t->mu);
}

void pretouch_set(pretouch *t, const ring_header *h, uint8_t *slots, size_t bytes)
{
    pthread_mutex_lock(&t->mu);
    t->h = h;
    t->slots = slots;
    t->n_slots = h->slots;
    t->slot_bytes = h->slot_bytes;
    t->bytes = bytes < h->slot_bytes ? bytes : h->slot_bytes;
    t->last_head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
    t->last_move_ns = 0;
    t->active_until = 0;
    t->gap_ns = 2 * PRETOUCH_MAX_NS;
    pthread_mutex_unlock(&t->mu);
}

void pretouch_clear(pretouch *t)
{
    pthread_mutex_lock(&t->mu);
    t->h = NULL;
    t->slots = NULL;
    pthread_mutex_unlock(&t->mu);
}

/* One byte of every page of [a, a + n), written with an atomic add of zero.
 * The model's thread may be copying a row into the same slot at this moment
 * and saemon may read its commit word: the add changes no byte, and a locked
 * add cannot interleave with another store to its byte, so both see what
 * they would have seen without it. That is outside the C memory model's
 * view of a plain memcpy, hence no ThreadSanitizer instrumentation here. */
__attribute__((no_sanitize("thread"))) static void write_pages(uint8_t *a, size_t n, uintptr_t page)
{
    uintptr_t end = (uintptr_t)a + n;
    for (uintptr_t p = (uintptr_t)a; p < end; p = (p & ~(page - 1)) + page) {
#if defined(__x86_64__)
        __asm__ volatile("lock addb $0, %0" : "+m"(*(uint8_t *)p)::"memory");
#else
        __atomic_fetch_add((uint8_t *)p, 0, __ATOMIC_RELAXED);
#endif
    }
}

uint64_t pretouch_run(pretouch *t, uint64_t now, pretouch_span *done)
{
    if (done)
        *done = (pretouch_span){0};
    pthread_mutex_lock(&t->mu);
    if (!t->h) {
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    /* head and tail come from shared memory: used only modulo the ring, so a
     * hostile value can only choose which of our own slots gets the add */
    uint64_t head = __atomic_load_n(&t->h->head, __ATOMIC_ACQUIRE);
    uint64_t tail = __atomic_load_n(&t->h->tail, __ATOMIC_ACQUIRE);
    if (head != t->last_head) {
        uint64_t frames = head - t->last_head;
        if (frames > 4u * t->n_slots)
            frames = 1; /* a new producer's head, or garbage */
        uint64_t gap = (now - t->last_move_ns) / frames;
        t->gap_ns = t->last_move_ns ? (t->gap_ns + gap) / 2 : 2 * PRETOUCH_MAX_NS;
        t->last_head = head;
        t->last_move_ns = now;
        t->active_until = now + PRETOUCH_ACTIVE_NS;
    }
    uint64_t interval, ahead;
    if (now >= t->active_until) { /* the first frames after a pause find fresh pages */
        interval = PRETOUCH_IDLE_NS;
        ahead = PRETOUCH_IDLE_AHEAD;
    } else {
        interval = t->gap_ns / 2 < PRETOUCH_MIN_NS ? PRETOUCH_MIN_NS
                 : t->gap_ns / 2 > PRETOUCH_MAX_NS ? PRETOUCH_MAX_NS : t->gap_ns / 2;
        /* the slots the next two intervals will use, plus one */
        uint64_t gap = t->gap_ns ? t->gap_ns : 1;
        ahead = (2 * interval + gap - 1) / gap + 1;
        if (ahead > PRETOUCH_AHEAD_MAX)
            ahead = PRETOUCH_AHEAD_MAX;
    }
    /* never a slot saemon has not consumed yet */
    uint64_t free_slots = head - tail <= t->n_slots ? t->n_slots - (head - tail) : 0;
    if (ahead > free_slots)
        ahead = free_slots;
    for (uint64_t s = head; s < head + ahead; s++)
        write_pages(t->slots + (size_t)(s & (t->n_slots - 1)) * t->slot_bytes, t->bytes, t->page);
    if (done)
        *done = (pretouch_span){.first = head, .count = ahead};
    pthread_mutex_unlock(&t->mu);
    return now + interval;
}
