/* The ring under faults: forged/corrupted/truncated frames, producers killed
 * mid-frame, a consumer killed and restarted, two producers on two rings. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/ring/ring_test_util.h"

#define D 8
#define HOOK "h"

static saemon_ring *ring_with_raw_producer(const char *tag, char *name, size_t len, ring_raw *raw)
{
    ring_test_name(name, len, tag);
    saemon_ring_options o = {.name = name, .slots = 8, .max_rows_per_frame = 4, .d_in = D, .hook = HOOK};
    saemon_ring *r = NULL;
    saemon_error err;
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    cr_assert(ring_raw_open(name, raw));
    ring_raw_announce(raw, D, HOOK);
    return r;
}

static frame_header good_header(uint64_t stream, uint64_t token, uint32_t n_rows)
{
    return (frame_header){.magic = FRAME_MAGIC, .version = FRAME_VERSION, .stream = stream,
                          .token = token, .hook_id = ring_fnv1a32(HOOK), .d_in = D, .n_rows = n_rows,
                          .dtype = FRAME_DTYPE_F32, .checksum_kind = FRAME_CSUM_CRC32C};
}

/* Publish one malformed frame, then a good one of the same stream: the bad
 * one is counted under `why`, the good one arrives marked as a gap. */
static void expect_rejected(saemon_ring *r, ring_raw *raw, frame_header bad, const void *rows,
                            size_t bytes, int keep, saemon_ring_reject why, uint64_t stream)
{
    saemon_ring_stats before, after;
    saemon_ring_get_stats(r, &before);
    ring_raw_publish(raw, bad, rows, bytes, keep);
    float good[D];
    ring_test_rows(good, stream, 50, 1, D);
    ring_raw_publish(raw, good_header(stream, 50, 1), good, sizeof good, 0);
    saemon_frame f;
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    cr_assert_eq(f.token, 50);
    cr_assert(ring_test_rows_ok(f.rows, stream, 50, 1, D));
    saemon_ring_get_stats(r, &after);
    cr_assert_eq(after.frames_rejected[why], before.frames_rejected[why] + 1, "reason %s",
                 saemon_ring_reject_name(why));
    cr_assert_eq(after.frames_rejected_total, before.frames_rejected_total + 1);
    saemon_ring_release(r);
}

Test(ring_faults, malformed_frames_are_rejected_and_counted)
{
    char name[64];
    ring_raw raw;
    saemon_ring *r = ring_with_raw_producer("malformed", name, sizeof name, &raw);
    float rows[4 * D];
    ring_test_rows(rows, 9, 0, 4, D);

    frame_header h = good_header(9, 0, 1);
    h.magic ^= 1;
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_HEADER, 9);
    h = good_header(9, 0, 1);
    h.version = 2;
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_HEADER, 9);
    h = good_header(9, 0, 1);
    h.flags = 0x80;
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_HEADER, 9);
    h = good_header(9, 0, 1);
    h.dtype = 7;
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_HEADER, 9);
    h = good_header(9, 0, 1);
    h.hook_id ^= 1; /* frame claims another hook */
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_HEADER, 9);
    h = good_header(9, 0, 1);
    h.seq = 12345; /* sequence number does not match its slot */
    expect_rejected(r, &raw, h, rows, 4 * D, RAW_KEEP_SEQ, SAEMON_RING_REJECT_HEADER, 9);
    h = good_header(RING_STREAM_LIMIT, 0, 1);
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_HEADER, 9);

    /* sizes: more rows than a slot holds, wrong d_in, empty non-final frame */
    h = good_header(9, 0, 1000000);
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_SIZE, 9);
    h = good_header(9, 0, 5);
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_SIZE, 9);
    h = good_header(9, 0, 1);
    h.d_in = D * 2;
    expect_rejected(r, &raw, h, rows, 4 * D, 0, SAEMON_RING_REJECT_SIZE, 9);
    h = good_header(9, 0, 0);
    expect_rejected(r, &raw, h, rows, 0, 0, SAEMON_RING_REJECT_SIZE, 9);

    /* corrupted content: the checksum no longer matches (rows, header, kind 2) */
    h = good_header(9, 0, 1);
    h.checksum = 0xdeadbeef;
    expect_rejected(r, &raw, h, rows, D * 4, RAW_KEEP_CHECKSUM, SAEMON_RING_REJECT_CHECKSUM, 9);
    h = good_header(9, 0, 1);
    h.checksum_kind = FRAME_CSUM_CRC32; /* CRC-32C written, CRC-32 claimed */
    expect_rejected(r, &raw, h, rows, D * 4, 0, SAEMON_RING_REJECT_CHECKSUM, 9);
    h = good_header(9, 0, 1);
    h.checksum_kind = 9;
    expect_rejected(r, &raw, h, rows, D * 4, 0, SAEMON_RING_REJECT_HEADER, 9);

    /* non-finite activations */
    float nan_rows[D];
    memcpy(nan_rows, rows, sizeof nan_rows);
    nan_rows[3] = __builtin_nanf("");
    expect_rejected(r, &raw, good_header(9, 0, 1), nan_rows, sizeof nan_rows, 0,
                    SAEMON_RING_REJECT_NONFINITE, 9);

    /* a valid frame under the gap check: the stream that lost frames is marked */
    ring_raw_publish(&raw, good_header(9, 51, 1), rows, D * 4, 0);
    ring_raw_publish(&raw, good_header(10, 0, 1), rows, D * 4, RAW_KEEP_CHECKSUM); /* bad csum */
    float r10[D];
    ring_test_rows(r10, 10, 1, 1, D);
    ring_raw_publish(&raw, good_header(10, 1, 1), r10, sizeof r10, 0);
    saemon_frame f;
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    cr_assert_eq(f.stream, 9);
    cr_assert(!f.gap, "stream 9's gap was reported on its previous frame already");
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    cr_assert_eq(f.stream, 10);
    cr_assert(f.gap, "stream 10 lost its token 0 to a rejected frame");
    ring_raw_close(&raw);
    saemon_ring_destroy(r);
}

Test(ring_faults, truncated_and_unpublished_frames_stay_invisible)
{
    char name[64];
    ring_raw raw;
    saemon_ring *r = ring_with_raw_producer("trunc", name, sizeof name, &raw);
    float rows[D];
    ring_test_rows(rows, 1, 0, 1, D);
    /* written but head never advanced (producer died before publishing) */
    ring_raw_publish(&raw, good_header(1, 0, 1), rows, sizeof rows, RAW_NO_HEAD | RAW_NO_COMMIT);
    saemon_frame f;
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    /* head advanced but the commit word is stale: torn publication */
    ring_raw_publish(&raw, good_header(1, 0, 1), rows, sizeof rows, RAW_NO_COMMIT);
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected[SAEMON_RING_REJECT_HEADER], 1);
    /* rows truncated: only half the row bytes were written before publication */
    uint8_t half[D * 4];
    memset(half, 0, sizeof half);
    memcpy(half, rows, sizeof half / 2);
    frame_header h = good_header(1, 1, 1);
    uint32_t c = ring_crc32c(0, (uint8_t *)&h + 8, 52);
    (void)c;
    /* checksum computed over the full rows, but only half of them landed */
    ring_raw_publish(&raw, h, rows, sizeof rows, 0);
    uint8_t *slot = raw.slots + (size_t)((raw.h->head - 1) & (raw.h->slots - 1)) * raw.h->slot_bytes;
    memset(slot + FRAME_HEADER_BYTES + sizeof rows / 2, 0, sizeof rows / 2);
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected[SAEMON_RING_REJECT_CHECKSUM], 1);
    /* producer index garbage: far ahead of the consumer */
    __atomic_store_n(&raw.h->head, raw.h->head + 1000, __ATOMIC_RELEASE);
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected[SAEMON_RING_REJECT_INDEX], 1);
    ring_raw_publish(&raw, good_header(1, 2, 1), rows, sizeof rows, 0);
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1, "resynchronised after the jump");
    ring_raw_close(&raw);
    saemon_ring_destroy(r);
}

Test(ring_faults, unannounced_frames_are_refused)
{
    char name[64];
    ring_test_name(name, sizeof name, "unannounced");
    saemon_ring_options o = {.name = name, .slots = 4, .d_in = D};
    saemon_ring *r = NULL;
    cr_assert_eq(saemon_ring_create(&o, &r, NULL), SAEMON_OK);
    ring_raw raw;
    cr_assert(ring_raw_open(name, &raw));
    float rows[D] = {0};
    ring_raw_publish(&raw, good_header(1, 0, 1), rows, sizeof rows, 0);
    saemon_frame f;
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected[SAEMON_RING_REJECT_REFUSED], 1);
    /* a malformed announcement (hook id disagrees with the name) is refused */
    raw.h->ann_d_in = D;
    snprintf(raw.h->ann_hook, sizeof raw.h->ann_hook, "h");
    raw.h->ann_hook_id = 1;
    __atomic_add_fetch(&raw.h->announce_gen, 1, __ATOMIC_RELEASE);
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_REFUSED);
    cr_assert(strstr(st.refuse_reason, "malformed"), "%s", st.refuse_reason);
    cr_assert_eq(raw.h->judgement, RING_JUDGE_REFUSED);
    ring_raw_close(&raw);
    saemon_ring_destroy(r);
}

/* ---- processes ---- */

static saemon_ring *ring_for_processes(const char *tag, char *name, size_t len, uint32_t slots)
{
    ring_test_name(name, len, tag);
    saemon_ring_options o = {.name = name, .slots = slots, .max_rows_per_frame = 4, .d_in = D, .hook = HOOK};
    saemon_ring *r = NULL;
    saemon_error err;
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    return r;
}

/* Child: attach (no handshake wait; the parent judges while draining) and
 * publish frames of `stream` forever (or n frames), then optionally stop
 * half-way through writing one more frame and SIGKILL itself. */
static void child_producer(const char *name, uint64_t stream, long n, bool die_mid_frame)
{
    saemon_producer_options o = {.ring = name, .hook = HOOK, .d_in = D, .handshake_timeout_ms = -1,
                                 .lossless_wait_us = 1000000};
    saemon_producer *p = NULL;
    if (saemon_producer_attach(&o, &p, NULL, 0) != SAEMON_PRODUCER_OK)
        _exit(3);
    float rows[4 * D];
    for (long t = 0; n < 0 || t < n; t++) {
        uint32_t k = 1 + (uint32_t)(t % 4);
        ring_test_rows(rows, stream, (uint64_t)t * 4, k, D);
        saemon_producer_publish(p, stream, (uint64_t)t * 4, rows, k);
    }
    if (die_mid_frame) {
        ring_raw raw;
        if (!ring_raw_open(name, &raw))
            _exit(4);
        frame_header h = good_header(stream, 999, 1);
        ring_raw_publish(&raw, h, rows, D * 4, RAW_NO_COMMIT | RAW_NO_HEAD);
        raise(SIGKILL);
    }
    saemon_producer_detach(p);
    _exit(0);
}

static long drain(saemon_ring *r, uint64_t stream, int timeout_ms, long *bad)
{
    saemon_frame f;
    long n = 0;
    while (saemon_ring_next(r, &f, timeout_ms, NULL) == 1) {
        if (f.stream != stream || f.token % 4 || !ring_test_rows_ok(f.rows, stream, f.token, f.n_rows, D)
            || f.n_rows != 1 + (f.token / 4) % 4)
            (*bad)++;
        n++;
    }
    return n;
}

Test(ring_faults, producer_killed_mid_frame_leaves_no_half_frame)
{
    char name[64];
    saemon_ring *r = ring_for_processes("killmid", name, sizeof name, 16);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        child_producer(name, 4, 40, true);
    long bad = 0, got = 0;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0)
        got += drain(r, 4, 10, &bad);
    got += drain(r, 4, 50, &bad);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    cr_assert_eq(got, 40, "every complete frame and nothing else");
    cr_assert_eq(bad, 0);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected_total, 0);
    cr_assert(!st.producer_alive, "the dead producer's lock is gone");

    /* a new producer takes over the ring and continues the sequence */
    pid = fork();
    if (pid == 0)
        child_producer(name, 5, 3, false);
    long got2 = 0;
    while (waitpid(pid, &status, WNOHANG) == 0)
        got2 += drain(r, 5, 10, &bad);
    got2 += drain(r, 5, 50, &bad);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(got2, 3);
    cr_assert_eq(bad, 0);
    saemon_ring_destroy(r);
}

Test(ring_faults, producer_killed_at_random_points)
{
    char name[64];
    saemon_ring *r = ring_for_processes("killrand", name, sizeof name, 8);
    for (int round = 0; round < 5; round++) {
        pid_t pid = fork();
        if (pid == 0)
            child_producer(name, 6, -1, false);
        long bad = 0, got = 0;
        while (got < 50 * (round + 1)) /* kill after a varying amount of traffic */
            got += drain(r, 6, 1, &bad);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        drain(r, 6, 20, &bad);
        cr_assert_eq(bad, 0, "round %d", round);
        saemon_ring_stats st;
        saemon_ring_get_stats(r, &st);
        cr_assert_eq(st.frames_rejected_total, 0, "round %d", round);
    }
    saemon_ring_destroy(r);
}

Test(ring_faults, consumer_killed_and_restarted)
{
    char name[64];
    ring_test_name(name, sizeof name, "crestart");
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) { /* consumer 1: serve, then get killed */
        saemon_ring_options o = {.name = name, .slots = 8, .d_in = D, .hook = HOOK};
        saemon_ring *r = NULL;
        if (saemon_ring_create(&o, &r, NULL) != SAEMON_OK)
            _exit(2);
        if (write(ready[1], "x", 1) != 1)
            _exit(2);
        saemon_frame f;
        for (;;)
            saemon_ring_next(r, &f, 100, NULL);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    saemon_producer_options po = {.ring = name, .hook = HOOK, .d_in = D, .handshake_timeout_ms = 5000};
    saemon_producer *p = NULL;
    char msg[256];
    cr_assert_eq(saemon_producer_attach(&po, &p, msg, sizeof msg), SAEMON_PRODUCER_OK, "%s", msg);
    float rows[D];
    ring_test_rows(rows, 1, 0, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 1, 0, rows, 1), SAEMON_PRODUCER_OK);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* the producer keeps going without a consumer: never blocks, never fails */
    for (uint64_t t = 1; t < 40; t++) {
        ring_test_rows(rows, 1, t, 1, D);
        int rc = saemon_producer_publish(p, 1, t, rows, 1);
        cr_assert(rc == SAEMON_PRODUCER_OK || rc == SAEMON_PRODUCER_DROPPED);
    }
    /* consumer 2 replaces the dead one's segment */
    saemon_ring_options o = {.name = name, .slots = 8, .d_in = D, .hook = HOOK};
    saemon_ring *r = NULL;
    saemon_error err;
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    saemon_producer_stats ps = {0};
    saemon_frame f;
    uint64_t t = 40;
    int got = 0;
    bool gap = false;
    for (int i = 0; i < 200000 && got < 5; i++) {
        ring_test_rows(rows, 1, t, 1, D);
        saemon_producer_publish(p, 1, t++, rows, 1);
        while (saemon_ring_next(r, &f, 0, NULL) == 1) {
            cr_assert(ring_test_rows_ok(f.rows, 1, f.token, 1, D));
            gap |= got == 0 && f.gap;
            got++;
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    saemon_producer_get_stats(p, &ps);
    cr_assert_geq(got, 5, "frames reach the new consumer");
    cr_assert_eq(ps.reattaches, 1);
    cr_assert(gap, "the first frame after the restart is marked as a gap");
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_ACCEPTED);
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

/* While a lossless producer waits for room in a full ring, its consumer is
 * killed and another takes the ring's name: the waiting frame goes to the
 * successor (no drop) instead of waiting out the budget against the dead
 * ring (`saemon produce` lost 10 s and a frame per daemon restart). */
typedef struct replace_ctx {
    const char *name;
    pid_t victim;
    saemon_ring *successor;
} replace_ctx;

static void *kill_and_replace(void *arg)
{
    replace_ctx *c = arg;
    struct timespec ts = {0, 100000000}; /* let the publish start waiting */
    nanosleep(&ts, NULL);
    kill(c->victim, SIGKILL);
    waitpid(c->victim, NULL, 0);
    saemon_ring_options o = {.name = c->name, .slots = 8, .d_in = D, .hook = HOOK};
    saemon_ring_create(&o, &c->successor, NULL);
    return NULL;
}

Test(ring_faults, lossless_wait_moves_to_a_restarted_consumer)
{
    char name[64];
    ring_test_name(name, sizeof name, "lossrestart");
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) { /* consumer 1: takes the first frame, then stops reading */
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
        saemon_ring_options o = {.name = name, .slots = 8, .d_in = D, .hook = HOOK};
        saemon_ring *r = NULL;
        if (saemon_ring_create(&o, &r, NULL) != SAEMON_OK || write(ready[1], "r", 1) != 1)
            _exit(2);
        saemon_frame f;
        while (saemon_ring_next(r, &f, 100, NULL) != 1)
            ;
        saemon_ring_release(r);
        if (write(ready[1], "x", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1); /* the ring exists */
    saemon_producer *p = ring_test_producer(name, D, HOOK, SAEMON_PRODUCER_F32, 20u * 1000 * 1000);
    cr_assert_not_null(p);
    float rows[D];
    ring_test_rows(rows, 1, 0, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 1, 0, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(read(ready[0], &c, 1), 1); /* consumer 1 took it and stopped */
    for (uint64_t t = 1; t <= 8; t++) { /* fill the ring consumer 1 no longer reads */
        ring_test_rows(rows, 1, t, 1, D);
        cr_assert_eq(saemon_producer_publish(p, 1, t, rows, 1), SAEMON_PRODUCER_OK);
    }
    replace_ctx rc = {.name = name, .victim = pid};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, kill_and_replace, &rc), 0);
    ring_test_rows(rows, 1, 9, 1, D);
    int prc = saemon_producer_publish(p, 1, 9, rows, 1); /* waits: the ring is full */
    pthread_join(th, NULL);
    cr_assert_not_null(rc.successor);
    cr_assert_eq(prc, SAEMON_PRODUCER_OK, "the waiting frame reached the successor");
    saemon_producer_stats ps;
    saemon_producer_get_stats(p, &ps);
    cr_assert_eq(ps.frames_dropped, 0);
    cr_assert_eq(ps.reattaches, 1);
    saemon_frame f;
    bool got = false;
    for (int i = 0; i < 100 && !got; i++)
        while (saemon_ring_next(rc.successor, &f, 10, NULL) == 1) {
            cr_assert_eq(f.token, 9);
            cr_assert(ring_test_rows_ok(f.rows, 1, 9, 1, D));
            got = true;
        }
    cr_assert(got, "the successor received token 9");
    saemon_producer_detach(p);
    saemon_ring_destroy(rc.successor);
}

Test(ring_faults, two_producers_on_two_rings)
{
    char a[64], b[64];
    saemon_ring *ra = ring_for_processes("twoA", a, sizeof a, 8);
    saemon_ring *rb = ring_for_processes("twoB", b, sizeof b, 8);
    pid_t pa = fork();
    if (pa == 0)
        child_producer(a, 11, 300, false);
    pid_t pb = fork();
    if (pb == 0)
        child_producer(b, 22, 300, false);
    long bad = 0, ga = 0, gb = 0;
    int live = 2, sa = 0, sb = 0;
    while (live) {
        ga += drain(ra, 11, 1, &bad);
        gb += drain(rb, 22, 1, &bad);
        if (pa && waitpid(pa, &sa, WNOHANG) == pa) {
            pa = 0;
            live--;
        }
        if (pb && waitpid(pb, &sb, WNOHANG) == pb) {
            pb = 0;
            live--;
        }
    }
    ga += drain(ra, 11, 50, &bad);
    gb += drain(rb, 22, 50, &bad);
    cr_assert(WIFEXITED(sa) && WEXITSTATUS(sa) == 0 && WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    saemon_ring_stats st;
    saemon_ring_get_stats(ra, &st);
    cr_assert_eq(ga + (long)st.frames_dropped, 300, "ring A: received + dropped = produced");
    cr_assert_eq(st.frames_rejected_total, 0);
    saemon_ring_get_stats(rb, &st);
    cr_assert_eq(gb + (long)st.frames_dropped, 300);
    cr_assert_eq(bad, 0, "no frame crossed rings or streams");
    saemon_ring_destroy(ra);
    saemon_ring_destroy(rb);
}
