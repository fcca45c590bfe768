/* The verdict contract (issue 21 items 1-3, 6): a live block is never
 * evicted, evictions are counted by severity, a stream id reused after
 * end_stream or by a new producer starts with a clean verdict, a producer can
 * wait (bounded) for the verdict of what it just published, and end-of-stream
 * frames are never lost to a full ring. The consumer here does what
 * `saemon serve` does with the ring: evaluate, then say so. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/ring/ring_test_util.h"

#define D 4
#define HOOK "blocks.0.hook_resid_post"
#define BAD 1000.0f /* a row starting with this value makes the "rule" block its stream */

typedef struct consumer {
    saemon_ring *r;
    pthread_t t;
    atomic_bool stop, paused;
    atomic_int delay_us;        /* before evaluating each frame */
    atomic_uint_fast64_t eos_seen, frames_seen, resets_seen;
} consumer;

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void *consume(void *arg)
{
    consumer *c = arg;
    while (!atomic_load(&c->stop)) {
        if (atomic_load(&c->paused)) {
            sleep_us(200);
            continue;
        }
        saemon_frame f;
        int got = saemon_ring_next(c->r, &f, 1, NULL);
        if (got <= 0)
            continue;
        if (f.new_producer) {
            saemon_ring_clear_verdicts(c->r);
            atomic_fetch_add(&c->resets_seen, 1);
        }
        bool bad = f.n_rows && f.rows[0] == BAD;
        uint64_t stream = f.stream;
        bool eos = f.end_of_stream;
        saemon_ring_release(c->r);
        int delay = atomic_load(&c->delay_us);
        if (delay)
            sleep_us(delay);
        if (bad)
            saemon_ring_set_verdict(c->r, stream, SAEMON_VERDICT_BLOCK);
        if (eos) {
            saemon_ring_end_verdict(c->r, stream);
            atomic_fetch_add(&c->eos_seen, 1);
        }
        atomic_fetch_add(&c->frames_seen, 1);
        saemon_ring_evaluated(c->r);
    }
    return NULL;
}

static void start(consumer *c, const char *tag, char *name, size_t len, uint32_t slots, uint32_t verdict_entries)
{
    memset(c, 0, sizeof *c);
    ring_test_name(name, len, tag);
    saemon_ring_options o = {.name = name, .slots = slots, .max_rows_per_frame = 4, .d_in = D, .hook = HOOK,
                             .verdict_entries = verdict_entries, .evaluated_by_caller = true};
    saemon_error err = {0};
    cr_assert_eq(saemon_ring_create(&o, &c->r, &err), SAEMON_OK, "create: %s", err.message);
    pthread_create(&c->t, NULL, consume, c);
}

static void finish(consumer *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->t, NULL);
    saemon_ring_destroy(c->r);
}

static int publish(saemon_producer *p, uint64_t stream, uint64_t token, float first)
{
    float row[D] = {first, 1, 2, 3};
    return saemon_producer_publish(p, stream, token, row, 1);
}

/* Wait (bounded) until the consumer has seen n frames. */
static void wait_frames(consumer *c, uint64_t n)
{
    for (int i = 0; i < 20000 && atomic_load(&c->frames_seen) < n; i++)
        sleep_us(250);
    cr_assert_geq(atomic_load(&c->frames_seen), n, "consumer saw %llu of %llu frames",
                  (unsigned long long)atomic_load(&c->frames_seen), (unsigned long long)n);
}

/* The reported repro: 100 blocked streams never ended, then 16k other
 * streams reaching warning in a 4096-entry table. Before: 2 of 100 still
 * read block, no metric counted it. */
Test(verdicts, live_blocks_survive_a_flood_of_warnings)
{
    char name[64];
    ring_test_name(name, sizeof name, "evict");
    saemon_ring_options o = {.name = name, .slots = 4, .d_in = D, .verdict_entries = 4096};
    saemon_ring *r = NULL;
    cr_assert_eq(saemon_ring_create(&o, &r, NULL), SAEMON_OK);
    for (uint64_t s = 0; s < 100; s++)
        saemon_ring_set_verdict(r, s, SAEMON_VERDICT_BLOCK);
    for (uint64_t s = 1000; s < 1000 + 16384; s++)
        saemon_ring_set_verdict(r, s, SAEMON_VERDICT_WARNING);
    int blocked = 0;
    for (uint64_t s = 0; s < 100; s++)
        blocked += saemon_ring_get_verdict(r, s) == SAEMON_VERDICT_BLOCK;
    cr_assert_eq(blocked, 100, "%d of 100 live blocks left", blocked);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.verdicts_evicted[SAEMON_VERDICT_BLOCK], 0);
    cr_assert_gt(st.verdicts_evicted[SAEMON_VERDICT_WARNING], 0, "the warnings that did not fit are counted");
    cr_assert_eq(st.verdict_entries, 4096);
    saemon_ring_destroy(r);
}

Test(verdicts, lowest_severity_goes_first_and_ended_streams_free_their_entry)
{
    char name[64];
    ring_test_name(name, sizeof name, "evict16");
    saemon_ring_options o = {.name = name, .slots = 4, .d_in = D, .verdict_entries = 16};
    saemon_ring *r = NULL;
    cr_assert_eq(saemon_ring_create(&o, &r, NULL), SAEMON_OK);
    /* one window = the whole table: 15 blocks and one info */
    for (uint64_t s = 0; s < 15; s++)
        saemon_ring_set_verdict(r, s, SAEMON_VERDICT_BLOCK);
    saemon_ring_set_verdict(r, 15, SAEMON_VERDICT_INFO);
    saemon_ring_set_verdict(r, 100, SAEMON_VERDICT_CRITICAL); /* displaces the info */
    cr_assert_eq(saemon_ring_get_verdict(r, 15), SAEMON_VERDICT_NONE);
    cr_assert_eq(saemon_ring_get_verdict(r, 100), SAEMON_VERDICT_CRITICAL);
    saemon_ring_set_verdict(r, 101, SAEMON_VERDICT_WARNING); /* lower than all: itself lost */
    cr_assert_eq(saemon_ring_get_verdict(r, 101), SAEMON_VERDICT_NONE);
    saemon_ring_set_verdict(r, 102, SAEMON_VERDICT_BLOCK); /* displaces the critical, never a block */
    cr_assert_eq(saemon_ring_get_verdict(r, 102), SAEMON_VERDICT_BLOCK);
    for (uint64_t s = 0; s < 15; s++)
        cr_assert_eq(saemon_ring_get_verdict(r, s), SAEMON_VERDICT_BLOCK, "block %llu kept", (unsigned long long)s);
    saemon_ring_set_verdict(r, 103, SAEMON_VERDICT_BLOCK); /* 16 blocks: the newcomer is counted lost */
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.verdicts_evicted[SAEMON_VERDICT_INFO], 1);
    cr_assert_eq(st.verdicts_evicted[SAEMON_VERDICT_WARNING], 1);
    cr_assert_eq(st.verdicts_evicted[SAEMON_VERDICT_CRITICAL], 1);
    cr_assert_eq(st.verdicts_evicted[SAEMON_VERDICT_BLOCK], 1);
    /* an ended stream frees its entry; the others stay readable past the hole */
    saemon_ring_end_verdict(r, 3);
    cr_assert_eq(saemon_ring_get_verdict(r, 3), SAEMON_VERDICT_NONE);
    for (uint64_t s = 0; s < 15; s++)
        if (s != 3)
            cr_assert_eq(saemon_ring_get_verdict(r, s), SAEMON_VERDICT_BLOCK);
    cr_assert_eq(saemon_ring_get_verdict(r, 102), SAEMON_VERDICT_BLOCK);
    saemon_ring_set_verdict(r, 103, SAEMON_VERDICT_BLOCK);
    cr_assert_eq(saemon_ring_get_verdict(r, 103), SAEMON_VERDICT_BLOCK, "the freed entry is reused");
    for (uint64_t s = 0; s < 15; s++)
        saemon_ring_end_verdict(r, s);
    saemon_ring_end_verdict(r, 102);
    saemon_ring_end_verdict(r, 103);
    for (uint64_t s = 0; s < 200; s++)
        cr_assert_eq(saemon_ring_get_verdict(r, s), SAEMON_VERDICT_NONE);
    saemon_ring_destroy(r);
}

/* Default attach path: one stream id for every request. Before: once one
 * request was blocked every later request read block. */
Test(verdicts, a_reused_stream_id_starts_clean)
{
    consumer c;
    char name[64];
    start(&c, "reuse", name, sizeof name, 16, 0);
    saemon_producer *p = ring_test_producer(name, D, HOOK, SAEMON_PRODUCER_F32, 0);
    cr_assert_not_null(p);
    cr_assert_eq(publish(p, 0, 0, BAD), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_verdict_wait(p, 0, 5000000), SAEMON_VERDICT_BLOCK);
    /* the consumer is slow to see the end: the new sequence must not read the old block */
    atomic_store(&c.paused, true);
    sleep_us(2000);
    cr_assert_eq(saemon_producer_end_stream(p, 0, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(publish(p, 0, 0, 1.0f), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_get_verdict(p, 0), SAEMON_VERDICT_NONE, "old block read by a new sequence");
    atomic_store(&c.paused, false);
    cr_assert_eq(saemon_producer_verdict_wait(p, 0, 5000000), SAEMON_VERDICT_NONE);
    cr_assert_eq(saemon_producer_get_verdict(p, 0), SAEMON_VERDICT_NONE);
    /* and a block in the new sequence is seen again */
    cr_assert_eq(publish(p, 0, 1, BAD), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_verdict_wait(p, 0, 5000000), SAEMON_VERDICT_BLOCK);
    saemon_producer_detach(p);
    finish(&c);
}

/* A restarted model server reusing request ids: the new producer must not
 * inherit the old one's verdicts. */
Test(verdicts, a_new_producer_starts_clean)
{
    consumer c;
    char name[64];
    start(&c, "restart", name, sizeof name, 16, 0);
    saemon_producer *p = ring_test_producer(name, D, HOOK, SAEMON_PRODUCER_F32, 0);
    cr_assert_eq(publish(p, 42, 0, BAD), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_verdict_wait(p, 42, 5000000), SAEMON_VERDICT_BLOCK);
    saemon_producer_detach(p); /* no end_stream: the process "crashed" */
    p = ring_test_producer(name, D, HOOK, SAEMON_PRODUCER_F32, 0);
    cr_assert_eq(saemon_producer_get_verdict(p, 42), SAEMON_VERDICT_NONE, "before its first frame");
    cr_assert_eq(publish(p, 42, 0, 1.0f), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_verdict_wait(p, 42, 5000000), SAEMON_VERDICT_NONE);
    cr_assert_eq(atomic_load(&c.resets_seen), 2, "each producer's first frame says so");
    saemon_producer_detach(p);
    finish(&c);
}

/* "Block before the next token": the wait returns the verdict of the frame
 * just published, however slow the consumer, or says it timed out. */
Test(verdicts, verdict_wait_sees_the_token_just_published_or_times_out)
{
    consumer c;
    char name[64];
    start(&c, "wait", name, sizeof name, 16, 0);
    saemon_producer *p = ring_test_producer(name, D, HOOK, SAEMON_PRODUCER_F32, 0);
    atomic_store(&c.delay_us, 3000); /* 3 ms per frame: a plain read right after publish misses it */
    for (uint64_t s = 0; s < 5; s++) {
        cr_assert_eq(publish(p, s, 0, 1.0f), SAEMON_PRODUCER_OK);
        cr_assert_eq(publish(p, s, 1, BAD), SAEMON_PRODUCER_OK);
        cr_assert_eq(saemon_producer_verdict_wait(p, s, 5000000), SAEMON_VERDICT_BLOCK, "stream %llu",
                     (unsigned long long)s);
    }
    atomic_store(&c.paused, true);
    sleep_us(5000);
    cr_assert_eq(publish(p, 9, 0, BAD), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_verdict_wait(p, 9, 2000), SAEMON_PRODUCER_ETIMEDOUT);
    saemon_producer_stats ps;
    saemon_producer_get_stats(p, &ps);
    cr_assert_eq(ps.verdict_timeouts, 1);
    atomic_store(&c.paused, false);
    atomic_store(&c.delay_us, 0);
    cr_assert_eq(saemon_producer_verdict_wait(p, 9, 5000000), SAEMON_VERDICT_BLOCK);
    saemon_producer_detach(p);
    finish(&c);
}

/* The reported flood lost 96,815 of 100,000 end-of-stream frames: every one
 * must arrive, in order after its stream's rows. */
Test(verdicts, end_of_stream_frames_are_never_dropped)
{
    consumer c;
    char name[64];
    start(&c, "eos", name, sizeof name, 8, 0);
    saemon_producer *p = ring_test_producer(name, D, HOOK, SAEMON_PRODUCER_F32, 0);
    atomic_store(&c.paused, true);
    sleep_us(2000);
    uint64_t dropped_rows = 0;
    for (uint64_t s = 0; s < 3000; s++) {
        dropped_rows += publish(p, s, 0, 1.0f) == SAEMON_PRODUCER_DROPPED;
        cr_assert_eq(saemon_producer_end_stream(p, s, 1), SAEMON_PRODUCER_OK);
    }
    saemon_producer_stats ps;
    saemon_producer_get_stats(p, &ps);
    cr_assert_gt(dropped_rows, 0, "the ring was full: rows were dropped");
    cr_assert_gt(ps.eos_pending, 0);
    cr_assert_eq(ps.eos_lost, 0);
    atomic_store(&c.paused, false);
    /* the library heartbeat thread publishes the pending ends as room frees */
    for (int i = 0; i < 40000 && atomic_load(&c.eos_seen) < 3000; i++)
        sleep_us(250);
    cr_assert_eq(atomic_load(&c.eos_seen), 3000, "%llu of 3000 ends arrived",
                 (unsigned long long)atomic_load(&c.eos_seen));
    saemon_producer_get_stats(p, &ps);
    cr_assert_eq(ps.eos_pending, 0);
    saemon_producer_detach(p);
    finish(&c);
}

/* A replay that ends right after a flood (saemon produce --drop lost 83 % of
 * its ends at exit): detach publishes every pending end while the consumer
 * makes room. No heartbeat thread here: detach alone must do it. */
Test(verdicts, detach_publishes_every_pending_end)
{
    consumer c;
    char name[64];
    start(&c, "eosdetach", name, sizeof name, 4, 0);
    saemon_producer_options o = {.ring = name, .model = "m", .hook = HOOK, .d_in = D,
                                 .handshake_timeout_ms = 5000, .heartbeat_ms = -1};
    saemon_producer *p = NULL;
    cr_assert_eq(saemon_producer_attach(&o, &p, NULL, 0), SAEMON_PRODUCER_OK);
    atomic_store(&c.paused, true);
    sleep_us(2000);
    for (uint64_t s = 0; s < 5000; s++)
        cr_assert_eq(saemon_producer_end_stream(p, s, 0), SAEMON_PRODUCER_OK);
    atomic_store(&c.paused, false);
    saemon_producer_detach(p);
    for (int i = 0; i < 20000 && atomic_load(&c.eos_seen) < 5000; i++)
        sleep_us(250);
    cr_assert_eq(atomic_load(&c.eos_seen), 5000, "%llu of 5000 ends arrived",
                 (unsigned long long)atomic_load(&c.eos_seen));
    finish(&c);
}

/* The library heartbeat thread keeps an idle producer's heartbeat fresh. */
Test(verdicts, an_idle_producer_keeps_heartbeating)
{
    consumer c;
    char name[64];
    start(&c, "hb", name, sizeof name, 8, 0);
    saemon_producer_options o = {.ring = name, .model = "m", .hook = HOOK, .d_in = D,
                                 .handshake_timeout_ms = 5000, .heartbeat_ms = 20};
    saemon_producer *p = NULL;
    cr_assert_eq(saemon_producer_attach(&o, &p, NULL, 0), SAEMON_PRODUCER_OK);
    sleep_us(300000); /* 300 ms without a call: 15 heartbeats */
    saemon_ring_stats st;
    saemon_ring_get_stats(c.r, &st);
    cr_assert(st.producer_alive);
    cr_assert_lt(st.heartbeat_age_s, 0.25, "heartbeat age %.3f s after 300 ms idle", st.heartbeat_age_s);
    saemon_producer_detach(p);
    finish(&c);
    (void)wait_frames;
}

/* ring_group / ring_mode: a model server of another user in the group may
 * attach (rings were always 0600). */
Test(verdicts, ring_mode_and_group)
{
    char name[64], path[128];
    ring_test_name(name, sizeof name, "mode");
    saemon_ring_options o = {.name = name, .slots = 4, .d_in = D, .mode = 0660, .set_group = true,
                             .gid = (uint32_t)getgid()};
    saemon_ring *r = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    snprintf(path, sizeof path, "/dev/shm/saemon-ring.%s", name);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0660);
    cr_assert_eq(st.st_gid, getgid());
    saemon_ring_destroy(r);
    o.mode = 0666; /* world-writable: refused */
    cr_assert_neq(saemon_ring_create(&o, &r, &err), SAEMON_OK);
    cr_assert(strstr(err.message, "0600 or 0660"), "%s", err.message);
}
