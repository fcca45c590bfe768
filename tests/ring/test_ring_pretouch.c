/* Writing ahead of the model's thread (producers/c/pretouch.c): which slots
 * the heartbeat thread writes, how often it runs, that it never writes a
 * slot saemon has not consumed, survives hostile head/tail values, and
 * changes no byte, even while another thread copies rows into those slots. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "producers/c/pretouch.h"

#define N_SLOTS 64u
#define SLOT_BYTES 16384u
#define ROW_BYTES 9216u /* a 2304-wide fp32 row: three pages of a slot */
#define MS 1000000u

typedef struct fake_ring {
    uint8_t *map;
    ring_header *h;
    uint8_t *slots;
} fake_ring;

static fake_ring ring_new(void)
{
    size_t bytes = RING_HEADER_BYTES + (size_t)N_SLOTS * SLOT_BYTES;
    uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    fake_ring r = {.map = m, .h = (ring_header *)m, .slots = m + RING_HEADER_BYTES};
    r.h->slots = N_SLOTS;
    r.h->slot_bytes = SLOT_BYTES;
    for (size_t i = 0; i < (size_t)N_SLOTS * SLOT_BYTES; i++)
        r.slots[i] = (uint8_t)(i * 2654435761u >> 13);
    return r;
}

static void ring_free(fake_ring *r)
{
    munmap(r->map, RING_HEADER_BYTES + (size_t)N_SLOTS * SLOT_BYTES);
}

static void set_indices(fake_ring *r, uint64_t head, uint64_t tail)
{
    __atomic_store_n(&r->h->head, head, __ATOMIC_RELEASE);
    __atomic_store_n(&r->h->tail, tail, __ATOMIC_RELEASE);
}

/* A fake ring whose head and tail stand at `head`, and a pretouch keeping
 * the first `bytes` of its slots warm. */
typedef struct fixture {
    fake_ring r;
    pretouch t;
} fixture;

static void fixture_start(fixture *x, uint64_t head, size_t bytes)
{
    x->r = ring_new();
    set_indices(&x->r, head, head);
    pretouch_init(&x->t);
    pretouch_set(&x->t, x->r.h, x->r.slots, bytes);
}

static void fixture_end(fixture *x)
{
    pretouch_destroy(&x->t);
    ring_free(&x->r);
}

/* Frames first..last (every `step`), one run every `dt` ns of *now: the
 * consumer keeps up. Returns the last run's next wake-up; *s its span. */
static uint64_t flow(fixture *x, uint64_t *now, uint64_t first, uint64_t last, uint64_t step, uint64_t dt,
                     pretouch_span *s)
{
    uint64_t next = 0;
    for (uint64_t f = first; f <= last; f += step) {
        *now += dt;
        set_indices(&x->r, f, f);
        next = pretouch_run(&x->t, *now, s);
    }
    return next;
}

Test(ring_pretouch, no_segment_no_run)
{
    pretouch t;
    pretouch_init(&t);
    pretouch_span s;
    cr_assert_eq(pretouch_run(&t, 1000 * MS, &s), 0);
    cr_assert_eq(s.count, 0);
    pretouch_destroy(&t);
}

Test(ring_pretouch, idle_ring_keeps_the_next_slots_fresh_every_100ms)
{
    fixture x;
    fixture_start(&x, 10, 64 + ROW_BYTES);
    pretouch_span s;
    uint64_t now = 5000 * MS;
    cr_assert_eq(pretouch_run(&x.t, now, &s), now + 100 * MS);
    cr_assert_eq(s.first, 10);
    cr_assert_eq(s.count, 4);
    pretouch_clear(&x.t);
    cr_assert_eq(pretouch_run(&x.t, now, &s), 0, "a cleared segment is never written");
    cr_assert_eq(s.count, 0);
    fixture_end(&x);
}

Test(ring_pretouch, flowing_frames_are_written_ahead_every_5_to_10ms)
{
    fixture x;
    fixture_start(&x, 0, 64 + ROW_BYTES);
    pretouch_span s;
    uint64_t now = 1000 * MS;
    /* 500 frames a second (one every 2 ms) */
    uint64_t next = flow(&x, &now, 1, 200, 1, 2 * MS, &s);
    cr_assert_eq(next, now + 5 * MS, "every 5 ms at 500 frames/s");
    cr_assert_eq(s.first, 200);
    cr_assert_eq(s.count, 6, "the next two intervals' 5 slots, plus one");
    /* 50 frames a second: every ~10 ms, two slots */
    next = flow(&x, &now, 201, 260, 1, 20 * MS, &s);
    cr_assert(next > now + 9 * MS && next <= now + 10 * MS, "every ~10 ms at 50 frames/s");
    cr_assert_eq(s.count, 2);
    /* 2 s without a frame: idle cadence */
    next = pretouch_run(&x.t, now + 2001 * MS, &s);
    cr_assert_eq(next, now + 2001 * MS + 100 * MS);
    /* 50,000 frames a second: capped at 64 slots */
    flow(&x, &now, 261, 2261, 50, 1 * MS, &s);
    cr_assert_eq(s.count, 64, "at most 64 slots ahead");
    fixture_end(&x);
}

Test(ring_pretouch, never_a_slot_saemon_has_not_consumed)
{
    fixture x;
    fixture_start(&x, 100, 64 + ROW_BYTES);
    pretouch_span s;
    set_indices(&x.r, 100 + 62, 100); /* two free slots */
    pretouch_run(&x.t, 1000 * MS, &s);
    cr_assert_leq(s.count, 2);
    cr_assert_gt(s.count, 0);
    set_indices(&x.r, 100 + N_SLOTS, 100); /* full */
    pretouch_run(&x.t, 1001 * MS, &s);
    cr_assert_eq(s.count, 0);
    /* hostile indices: head behind tail, head a lap and more ahead */
    set_indices(&x.r, 5, 100);
    pretouch_run(&x.t, 1002 * MS, &s);
    cr_assert_eq(s.count, 0);
    set_indices(&x.r, UINT64_MAX - 3, 7);
    pretouch_run(&x.t, 1003 * MS, &s);
    cr_assert_eq(s.count, 0);
    fixture_end(&x);
}

Test(ring_pretouch, no_byte_changes)
{
    fixture x;
    fixture_start(&x, 0, SLOT_BYTES); /* whole slots */
    size_t bytes = (size_t)N_SLOTS * SLOT_BYTES;
    uint8_t *before = malloc(bytes);
    cr_assert_not_null(before);
    memcpy(before, x.r.slots, bytes);
    uint64_t now = 1000 * MS;
    size_t written = 0;
    for (uint64_t f = 1; f <= 300; f++) {
        pretouch_span s;
        flow(&x, &now, f, f, 1, MS, &s);
        written += s.count;
    }
    cr_assert_gt(written, 300, "slots were written ahead");
    cr_assert_eq(memcmp(before, x.r.slots, bytes), 0);
    free(before);
    fixture_end(&x);
}

/* The model's thread copies rows into the slots the heartbeat thread is
 * writing ahead into: every row arrives intact. */
typedef struct race {
    fake_ring *r;
    pretouch *t;
    bool stop;
} race;

static void *toucher(void *arg)
{
    race *x = arg;
    uint64_t now = 1000 * MS;
    while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
        now += MS;
        pretouch_run(x->t, now, NULL);
    }
    return NULL;
}

Test(ring_pretouch, rows_copied_meanwhile_arrive_intact)
{
    fixture x;
    fixture_start(&x, 0, 64 + ROW_BYTES);
    race rc = {.r = &x.r, .t = &x.t};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, toucher, &rc), 0);
    uint8_t *row = malloc(ROW_BYTES + 64);
    cr_assert_not_null(row);
    for (uint64_t f = 0; f < 20000; f++) {
        for (size_t i = 0; i < ROW_BYTES + 64; i++)
            row[i] = (uint8_t)(f * 31 + i);
        uint8_t *slot = x.r.slots + (size_t)(f % N_SLOTS) * SLOT_BYTES;
        memcpy(slot, row, ROW_BYTES + 64);
        set_indices(&x.r, f + 1, f + 1);
        cr_assert_eq(memcmp(slot, row, ROW_BYTES + 64), 0, "frame %llu", (unsigned long long)f);
    }
    __atomic_store_n(&rc.stop, true, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    free(row);
    fixture_end(&x);
}
