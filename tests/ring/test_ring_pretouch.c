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
    fake_ring r = ring_new();
    set_indices(&r, 10, 10);
    pretouch t;
    pretouch_init(&t);
    pretouch_set(&t, r.h, r.slots, 64 + ROW_BYTES);
    pretouch_span s;
    uint64_t now = 5000 * MS;
    cr_assert_eq(pretouch_run(&t, now, &s), now + 100 * MS);
    cr_assert_eq(s.first, 10);
    cr_assert_eq(s.count, 4);
    pretouch_clear(&t);
    cr_assert_eq(pretouch_run(&t, now, &s), 0, "a cleared segment is never written");
    cr_assert_eq(s.count, 0);
    pretouch_destroy(&t);
    ring_free(&r);
}

Test(ring_pretouch, flowing_frames_are_written_ahead_every_5_to_10ms)
{
    fake_ring r = ring_new();
    pretouch t;
    pretouch_init(&t);
    set_indices(&r, 0, 0);
    pretouch_set(&t, r.h, r.slots, 64 + ROW_BYTES);
    pretouch_span s;
    /* 500 frames a second (one every 2 ms), the consumer keeping up */
    uint64_t now = 1000 * MS, next = 0;
    for (uint64_t f = 1; f <= 200; f++) {
        now += 2 * MS;
        set_indices(&r, f, f);
        next = pretouch_run(&t, now, &s);
    }
    cr_assert_eq(next, now + 5 * MS, "every 5 ms at 500 frames/s");
    cr_assert_eq(s.first, 200);
    cr_assert_eq(s.count, 6, "the next two intervals' 5 slots, plus one");
    /* 50 frames a second: every 10 ms, three slots */
    for (uint64_t f = 201; f <= 260; f++) {
        now += 20 * MS;
        set_indices(&r, f, f);
        next = pretouch_run(&t, now, &s);
    }
    cr_assert(next > now + 9 * MS && next <= now + 10 * MS, "every ~10 ms at 50 frames/s");
    cr_assert_eq(s.count, 2);
    /* 2 s without a frame: idle cadence */
    next = pretouch_run(&t, now + 2001 * MS, &s);
    cr_assert_eq(next, now + 2001 * MS + 100 * MS);
    /* 50,000 frames a second: capped at 64 slots, and at the free ones */
    for (uint64_t f = 261; f <= 2261; f += 50) {
        now += 1 * MS;
        set_indices(&r, f, f);
        next = pretouch_run(&t, now, &s);
    }
    cr_assert_eq(s.count, 64, "at most 64 slots ahead");
    pretouch_destroy(&t);
    ring_free(&r);
}

Test(ring_pretouch, never_a_slot_saemon_has_not_consumed)
{
    fake_ring r = ring_new();
    pretouch t;
    pretouch_init(&t);
    set_indices(&r, 100, 100);
    pretouch_set(&t, r.h, r.slots, 64 + ROW_BYTES);
    pretouch_span s;
    set_indices(&r, 100 + 62, 100); /* two free slots */
    pretouch_run(&t, 1000 * MS, &s);
    cr_assert_leq(s.count, 2);
    cr_assert_gt(s.count, 0);
    set_indices(&r, 100 + N_SLOTS, 100); /* full */
    pretouch_run(&t, 1001 * MS, &s);
    cr_assert_eq(s.count, 0);
    /* hostile indices: head behind tail, head a lap and more ahead */
    set_indices(&r, 5, 100);
    pretouch_run(&t, 1002 * MS, &s);
    cr_assert_eq(s.count, 0);
    set_indices(&r, UINT64_MAX - 3, 7);
    pretouch_run(&t, 1003 * MS, &s);
    cr_assert_eq(s.count, 0);
    pretouch_destroy(&t);
    ring_free(&r);
}

Test(ring_pretouch, no_byte_changes)
{
    fake_ring r = ring_new();
    size_t bytes = (size_t)N_SLOTS * SLOT_BYTES;
    uint8_t *before = malloc(bytes);
    cr_assert_not_null(before);
    memcpy(before, r.slots, bytes);
    pretouch t;
    pretouch_init(&t);
    set_indices(&r, 0, 0);
    pretouch_set(&t, r.h, r.slots, SLOT_BYTES); /* whole slots */
    uint64_t now = 1000 * MS;
    size_t written = 0;
    for (uint64_t f = 1; f <= 300; f++) {
        now += MS;
        set_indices(&r, f, f);
        pretouch_span s;
        pretouch_run(&t, now, &s);
        written += s.count;
    }
    cr_assert_gt(written, 300, "slots were written ahead");
    cr_assert_eq(memcmp(before, r.slots, bytes), 0);
    pretouch_destroy(&t);
    free(before);
    ring_free(&r);
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
    fake_ring r = ring_new();
    pretouch t;
    pretouch_init(&t);
    set_indices(&r, 0, 0);
    pretouch_set(&t, r.h, r.slots, 64 + ROW_BYTES);
    race x = {.r = &r, .t = &t};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, toucher, &x), 0);
    uint8_t *row = malloc(ROW_BYTES + 64);
    cr_assert_not_null(row);
    for (uint64_t f = 0; f < 20000; f++) {
        for (size_t i = 0; i < ROW_BYTES + 64; i++)
            row[i] = (uint8_t)(f * 31 + i);
        uint8_t *slot = r.slots + (size_t)(f % N_SLOTS) * SLOT_BYTES;
        memcpy(slot, row, ROW_BYTES + 64);
        __atomic_store_n(&r.h->head, f + 1, __ATOMIC_RELEASE);
        __atomic_store_n(&r.h->tail, f + 1, __ATOMIC_RELEASE);
        cr_assert_eq(memcmp(slot, row, ROW_BYTES + 64), 0, "frame %llu", (unsigned long long)f);
    }
    __atomic_store_n(&x.stop, true, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    free(row);
    pretouch_destroy(&t);
    ring_free(&r);
}
