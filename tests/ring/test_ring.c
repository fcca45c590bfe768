/* The activation ring in one process: handshake, ordering, wrap-around, drops
 * and gap marking, lossless mode, refusals, malformed frames, conversions. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/ring/ring_test_util.h"

#define D 8

static saemon_ring *make_ring(const char *tag, uint32_t slots, uint32_t d_in, const char *hook,
                              char *name, size_t name_len)
{
    ring_test_name(name, name_len, tag);
    saemon_ring_options o = {.name = name, .slots = slots, .max_rows_per_frame = 4, .d_in = d_in, .hook = hook};
    saemon_ring *r = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "create: %s", err.message);
    return r;
}

/* Attach in another thread: attach waits for the consumer's judgement, which
 * happens inside saemon_ring_next, so the test thread must poll meanwhile. */
typedef struct attach_job {
    const char *ring;
    uint32_t d_in;
    const char *hook;
    saemon_producer_dtype dtype;
    uint32_t lossless;
    saemon_producer *p;
    int rc;
    char msg[256];
    int done;
} attach_job;

static void *attach_thread(void *arg)
{
    attach_job *j = arg;
    saemon_producer_options o = {.ring = j->ring, .model = "m", .hook = j->hook, .d_in = j->d_in,
                                 .dtype = j->dtype, .lossless_wait_us = j->lossless,
                                 .handshake_timeout_ms = 5000};
    j->rc = saemon_producer_attach(&o, &j->p, j->msg, sizeof j->msg);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static saemon_producer *attach_polling(saemon_ring *r, attach_job *j)
{
    pthread_t t;
    pthread_create(&t, NULL, attach_thread, j);
    saemon_frame f;
    while (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE)) /* the consumer judges inside next() */
        saemon_ring_next(r, &f, 1, NULL);
    pthread_join(t, NULL);
    return j->p;
}

static saemon_producer *producer_for(saemon_ring *r, const char *name, uint32_t d_in, const char *hook,
                                     saemon_producer_dtype dtype, uint32_t lossless)
{
    attach_job j = {.ring = name, .d_in = d_in, .hook = hook, .dtype = dtype, .lossless = lossless};
    saemon_producer *p = attach_polling(r, &j);
    cr_assert_eq(j.rc, SAEMON_PRODUCER_OK, "attach: %s", j.msg);
    return p;
}

Test(ring, handshake_publish_consume_verdict)
{
    char name[64];
    saemon_ring *r = make_ring("basic", 16, D, "blocks.8.hook_resid_post", name, sizeof name);
    saemon_producer *p = producer_for(r, name, D, "blocks.8.hook_resid_post", SAEMON_PRODUCER_F32, 0);

    float rows[3 * D];
    ring_test_rows(rows, 7, 0, 3, D);
    cr_assert_eq(saemon_producer_publish(p, 7, 0, rows, 3), SAEMON_PRODUCER_OK);
    ring_test_rows(rows, 7, 3, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 7, 3, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_end_stream(p, 7, 4), SAEMON_PRODUCER_OK);

    saemon_frame f;
    saemon_error err;
    cr_assert_eq(saemon_ring_next(r, &f, 1000, &err), 1);
    cr_assert_eq(f.seq, 0);
    cr_assert_eq(f.stream, 7);
    cr_assert_eq(f.token, 0);
    cr_assert_eq(f.n_rows, 3);
    cr_assert_eq(f.d_in, D);
    cr_assert(!f.gap && !f.end_of_stream && f.dropped == 0);
    cr_assert(ring_test_rows_ok(f.rows, 7, 0, 3, D));
    saemon_ring_release(r);
    cr_assert_eq(saemon_ring_next(r, &f, 1000, &err), 1);
    cr_assert_eq(f.token, 3);
    cr_assert(ring_test_rows_ok(f.rows, 7, 3, 1, D));
    cr_assert_eq(saemon_ring_next(r, &f, 1000, &err), 1);
    cr_assert(f.end_of_stream);
    cr_assert_eq(f.n_rows, 0);
    cr_assert_eq(saemon_ring_next(r, &f, 0, &err), 0, "nothing more");

    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.tokens_received, 4);
    cr_assert_eq(st.tokens_produced, 4);
    cr_assert_eq(st.frames_received, 3);
    cr_assert_eq(st.frames_rejected_total, 0);
    cr_assert_eq(st.lag_tokens, 0);
    cr_assert(st.producer_alive);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_ACCEPTED);
    cr_assert_str_eq(st.hook, "blocks.8.hook_resid_post");
    cr_assert_str_eq(st.model, "m");
    cr_assert_str_eq(st.dtype, "f32");
    cr_assert_eq(st.d_in, D);
    cr_assert(st.heartbeat_age_s >= 0);

    /* verdicts: highest wins, visible to the producer */
    cr_assert_eq(saemon_producer_get_verdict(p, 7), 0);
    saemon_ring_set_verdict(r, 7, SAEMON_VERDICT_WARNING);
    cr_assert_eq(saemon_producer_get_verdict(p, 7), 2);
    saemon_ring_set_verdict(r, 7, SAEMON_VERDICT_INFO);
    cr_assert_eq(saemon_producer_get_verdict(p, 7), 2, "never lowered");
    saemon_ring_set_verdict(r, 7, SAEMON_VERDICT_BLOCK);
    cr_assert_eq(saemon_producer_get_verdict(p, 7), 4);
    cr_assert_eq(saemon_producer_get_verdict(p, 8), 0);

    saemon_producer_detach(p);
    saemon_ring_get_stats(r, &st);
    cr_assert(!st.producer_alive, "detach releases the producer lock");
    saemon_ring_destroy(r);
}

Test(ring, verdict_table_many_streams_and_eviction)
{
    char name[64];
    ring_test_name(name, sizeof name, "verdicts");
    saemon_ring_options o = {.name = name, .slots = 4, .d_in = 4, .verdict_entries = 16};
    saemon_ring *r = NULL;
    cr_assert_eq(saemon_ring_create(&o, &r, NULL), SAEMON_OK);
    for (uint64_t s = 0; s < 16; s++)
        saemon_ring_set_verdict(r, s, (saemon_verdict)(1 + s % 4));
    for (uint64_t s = 0; s < 16; s++)
        cr_assert_eq(saemon_ring_get_verdict(r, s), (saemon_verdict)(1 + s % 4), "stream %llu",
                     (unsigned long long)s);
    saemon_ring_set_verdict(r, 1000, SAEMON_VERDICT_BLOCK); /* table full: evicts one */
    cr_assert_eq(saemon_ring_get_verdict(r, 1000), SAEMON_VERDICT_BLOCK);
    int kept = 0;
    for (uint64_t s = 0; s < 16; s++)
        kept += saemon_ring_get_verdict(r, s) != SAEMON_VERDICT_NONE;
    cr_assert_eq(kept, 15);
    cr_assert_eq(saemon_ring_get_verdict(r, RING_STREAM_LIMIT), SAEMON_VERDICT_NONE);
    cr_assert_eq(saemon_verdict_parse("Block"), 4);
    cr_assert_eq(saemon_verdict_parse("nope"), -1);
    cr_assert_str_eq(saemon_verdict_name(SAEMON_VERDICT_CRITICAL), "critical");
    saemon_ring_destroy(r);
}

Test(ring, wrap_around_keeps_order_and_content)
{
    char name[64];
    saemon_ring *r = make_ring("wrap", 4, D, NULL, name, sizeof name);
    saemon_producer *p = producer_for(r, name, D, "h", SAEMON_PRODUCER_F32, 0);
    float rows[2 * D];
    saemon_frame f;
    uint64_t token = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t n = 1 + (uint32_t)(i % 2);
        for (uint32_t k = 0; k < 3; k++) { /* 3 frames in flight on 4 slots */
            ring_test_rows(rows, 1, token + k * 2, n, D);
            cr_assert_eq(saemon_producer_publish(p, 1, token + k * 2, rows, n), SAEMON_PRODUCER_OK);
        }
        for (uint32_t k = 0; k < 3; k++) {
            cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
            cr_assert_eq(f.seq, (uint64_t)i * 3 + k);
            cr_assert_eq(f.token, token + k * 2);
            cr_assert(ring_test_rows_ok(f.rows, 1, token + k * 2, n, D));
            saemon_ring_release(r);
        }
        token += 6;
    }
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_dropped, 0);
    cr_assert_eq(st.frames_rejected_total, 0);
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

Test(ring, rows_larger_than_a_slot_are_split)
{
    char name[64];
    saemon_ring *r = make_ring("split", 8, D, NULL, name, sizeof name); /* 4 rows per slot */
    saemon_producer *p = producer_for(r, name, D, "h", SAEMON_PRODUCER_F32, 0);
    float rows[10 * D];
    ring_test_rows(rows, 3, 100, 10, D);
    cr_assert_eq(saemon_producer_publish(p, 3, 100, rows, 10), SAEMON_PRODUCER_OK);
    saemon_frame f;
    uint32_t expect[] = {4, 4, 2};
    uint64_t tok = 100;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
        cr_assert_eq(f.n_rows, expect[i]);
        cr_assert_eq(f.token, tok);
        cr_assert(ring_test_rows_ok(f.rows, 3, tok, f.n_rows, D));
        tok += f.n_rows;
    }
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

Test(ring, producer_faster_than_consumer_drops_are_exact_and_marked)
{
    char name[64];
    saemon_ring *r = make_ring("drops", 8, D, NULL, name, sizeof name);
    saemon_producer *p = producer_for(r, name, D, "h", SAEMON_PRODUCER_F32, 0);
    float rows[D];
    int ok = 0, dropped = 0;
    for (uint64_t t = 0; t < 20; t++) { /* consumer is not reading: 8 fit */
        ring_test_rows(rows, 1, t, 1, D);
        int rc = saemon_producer_publish(p, 1, t, rows, 1);
        ok += rc == SAEMON_PRODUCER_OK;
        dropped += rc == SAEMON_PRODUCER_DROPPED;
    }
    cr_assert_eq(ok, 8);
    cr_assert_eq(dropped, 12);
    saemon_frame f;
    for (uint64_t t = 0; t < 8; t++) {
        cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
        cr_assert_eq(f.token, t);
        cr_assert(!f.gap);
        saemon_ring_release(r);
    }
    /* stream 2 never lost anything; stream 1 did */
    ring_test_rows(rows, 2, 0, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 2, 0, rows, 1), SAEMON_PRODUCER_OK);
    ring_test_rows(rows, 1, 20, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 1, 20, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    cr_assert_eq(f.stream, 2);
    cr_assert_eq(f.dropped, 12, "the first frame after the drops carries their count");
    cr_assert(!f.gap, "stream 2 lost nothing");
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    cr_assert_eq(f.stream, 1);
    cr_assert_eq(f.dropped, 0);
    cr_assert(f.gap, "stream 1 lost tokens 8..19");
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_dropped, 12);
    cr_assert_eq(st.tokens_dropped, 12);
    cr_assert_eq(st.tokens_produced, 22);
    cr_assert_eq(st.tokens_received, 10);
    cr_assert_eq(st.lag_tokens, 0);
    saemon_producer_stats ps;
    saemon_producer_get_stats(p, &ps);
    cr_assert_eq(ps.frames_dropped, 12);
    cr_assert_eq(ps.frames_published, 10);
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

/* Lossless: a slow consumer thread, a producer that may wait; nothing lost. */
typedef struct slow_consumer {
    saemon_ring *r;
    int n;
    int got;
    bool in_order;
} slow_consumer;

static void *slow_consume(void *arg)
{
    slow_consumer *c = arg;
    saemon_frame f;
    c->in_order = true;
    while (c->got < c->n) {
        int rc = saemon_ring_next(c->r, &f, 10000, NULL);
        if (rc != 1)
            break;
        c->in_order &= f.token == (uint64_t)c->got && ring_test_rows_ok(f.rows, 5, f.token, 1, D);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        saemon_ring_release(c->r);
        c->got++;
    }
    return NULL;
}

Test(ring, lossless_mode_waits_instead_of_dropping)
{
    char name[64];
    saemon_ring *r = make_ring("lossless", 4, D, NULL, name, sizeof name);
    saemon_producer *p = producer_for(r, name, D, "h", SAEMON_PRODUCER_F32, 10 * 1000 * 1000);
    slow_consumer c = {.r = r, .n = 200};
    pthread_t t;
    pthread_create(&t, NULL, slow_consume, &c);
    float rows[D];
    for (uint64_t tok = 0; tok < 200; tok++) {
        ring_test_rows(rows, 5, tok, 1, D);
        cr_assert_eq(saemon_producer_publish(p, 5, tok, rows, 1), SAEMON_PRODUCER_OK, "token %llu",
                     (unsigned long long)tok);
    }
    pthread_join(t, NULL);
    cr_assert_eq(c.got, 200);
    cr_assert(c.in_order);
    saemon_producer_stats ps;
    saemon_producer_get_stats(p, &ps);
    cr_assert_eq(ps.frames_dropped, 0);
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

Test(ring, lossless_mode_gives_up_after_its_budget)
{
    char name[64];
    saemon_ring *r = make_ring("budget", 2, D, NULL, name, sizeof name);
    saemon_producer *p = producer_for(r, name, D, "h", SAEMON_PRODUCER_F32, 2000);
    float rows[D] = {0};
    cr_assert_eq(saemon_producer_publish(p, 1, 0, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_publish(p, 1, 1, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_publish(p, 1, 2, rows, 1), SAEMON_PRODUCER_DROPPED,
                 "nobody consumes: dropped after waiting 2 ms");
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

Test(ring, wrong_d_in_and_hook_are_refused_with_a_reason)
{
    char name[64];
    saemon_ring *r = make_ring("refuse", 4, D, "blocks.8.hook_resid_post", name, sizeof name);
    attach_job j = {.ring = name, .d_in = 16, .hook = "blocks.8.hook_resid_post"};
    attach_polling(r, &j);
    cr_assert_eq(j.rc, SAEMON_PRODUCER_EREFUSED);
    cr_assert(strstr(j.msg, "d_in 16"), "%s", j.msg);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_REFUSED);
    cr_assert_eq(st.producers_refused, 1);
    cr_assert(strstr(st.refuse_reason, "d_in 16 does not match"), "%s", st.refuse_reason);
    cr_assert(!st.producer_alive, "a refused producer lets go of the ring");

    attach_job k = {.ring = name, .d_in = D, .hook = "blocks.9.hook_resid_post"};
    attach_polling(r, &k);
    cr_assert_eq(k.rc, SAEMON_PRODUCER_EREFUSED);
    cr_assert(strstr(k.msg, "blocks.9.hook_resid_post"), "%s", k.msg);

    attach_job ok = {.ring = name, .d_in = D, .hook = "blocks.8.hook_resid_post"};
    saemon_producer *p = attach_polling(r, &ok);
    cr_assert_eq(ok.rc, SAEMON_PRODUCER_OK, "%s", ok.msg);
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.producers_refused, 2);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_ACCEPTED);

    /* a second live producer on the same ring is turned away */
    saemon_producer_options o = {.ring = name, .hook = "blocks.8.hook_resid_post", .d_in = D};
    saemon_producer *q = NULL;
    char msg[256];
    cr_assert_eq(saemon_producer_attach(&o, &q, msg, sizeof msg), SAEMON_PRODUCER_EBUSY);
    cr_assert(strstr(msg, "already has a live producer"), "%s", msg);
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

Test(ring, producer_before_consumer_connects_later)
{
    char name[64];
    ring_test_name(name, sizeof name, "early");
    saemon_producer_options o = {.ring = name, .hook = "h", .d_in = D};
    saemon_producer *p = NULL;
    char msg[256];
    cr_assert_eq(saemon_producer_attach(&o, &p, msg, sizeof msg), SAEMON_PRODUCER_OK, "%s", msg);
    cr_assert(strstr(msg, "not served yet"), "%s", msg);
    float rows[D];
    ring_test_rows(rows, 1, 0, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 1, 0, rows, 1), SAEMON_PRODUCER_DROPPED);

    saemon_ring_options ro = {.name = name, .slots = 8, .d_in = D};
    saemon_ring *r = NULL;
    cr_assert_eq(saemon_ring_create(&ro, &r, NULL), SAEMON_OK);
    saemon_frame f;
    saemon_producer_stats ps = {0};
    for (int i = 0; i < 100000 && !ps.connected; i++) { /* re-checks every 5 ms */
        saemon_producer_heartbeat(p);
        saemon_ring_next(r, &f, 0, NULL);
        saemon_producer_get_stats(p, &ps);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    cr_assert(ps.connected);
    ring_test_rows(rows, 1, 1, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 1, 1, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    cr_assert_eq(f.token, 1);
    cr_assert(f.gap, "token 0 was dropped before saemon started");
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

static uint16_t to_f16(float x) /* exact for the values used below */
{
    uint32_t b;
    memcpy(&b, &x, 4);
    uint32_t sign = (b >> 16) & 0x8000u;
    int exp = (int)((b >> 23) & 0xff) - 127 + 15;
    uint32_t man = (b >> 13) & 0x3ffu;
    if (x == 0)
        return (uint16_t)sign;
    return (uint16_t)(sign | (uint32_t)exp << 10 | man);
}

Test(ring, f16_and_bf16_rows_are_converted_exactly)
{
    const float vals[D] = {1.0f, -2.5f, 0.0f, 65504.0f, 0.000061035156f, -0.375f, 3.0f, 1000.5f};
    for (int bf = 0; bf < 2; bf++) {
        char name[64];
        saemon_ring *r = make_ring(bf ? "bf16" : "f16", 4, D, NULL, name, sizeof name);
        saemon_producer *p = producer_for(r, name, D, "h", bf ? SAEMON_PRODUCER_BF16 : SAEMON_PRODUCER_F16, 0);
        uint16_t half[D];
        float expect[D];
        for (int i = 0; i < D; i++) {
            uint32_t b;
            memcpy(&b, &vals[i], 4);
            half[i] = bf ? (uint16_t)(b >> 16) : to_f16(vals[i]);
            uint32_t back = (uint32_t)half[i] << 16;
            memcpy(&expect[i], &back, 4);
            if (!bf)
                expect[i] = vals[i];
        }
        cr_assert_eq(saemon_producer_publish(p, 1, 0, half, 1), SAEMON_PRODUCER_OK);
        saemon_frame f;
        cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
        for (int i = 0; i < D; i++)
            cr_assert_eq(f.rows[i], expect[i], "%s[%d]: %g vs %g", bf ? "bf16" : "f16", i,
                         (double)f.rows[i], (double)expect[i]);
        saemon_ring_stats st;
        saemon_ring_get_stats(r, &st);
        cr_assert_str_eq(st.dtype, bf ? "bf16" : "f16");
        saemon_producer_detach(p);
        saemon_ring_destroy(r);
    }
}

Test(ring, bad_options_are_refused)
{
    saemon_ring *r = NULL;
    saemon_error err;
    saemon_ring_options o = {.name = "../etc", .d_in = 4};
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_ERR_ARG);
    cr_assert(strstr(err.message, "ring name"));
    o = (saemon_ring_options){.name = "ok", .slots = 3};
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_ERR_ARG);
    saemon_producer *p = NULL;
    char msg[128];
    saemon_producer_options po = {.ring = "x/y", .hook = "h", .d_in = 4};
    cr_assert_eq(saemon_producer_attach(&po, &p, msg, sizeof msg), SAEMON_PRODUCER_EINVAL);
    po = (saemon_producer_options){.ring = "x", .hook = "h", .d_in = 0};
    cr_assert_eq(saemon_producer_attach(&po, &p, msg, sizeof msg), SAEMON_PRODUCER_EINVAL);
    cr_assert_null(p);
}

Test(ring, segment_is_owner_only)
{
    char name[64];
    saemon_ring *r = make_ring("mode", 4, D, NULL, name, sizeof name);
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", saemon_ring_shm_name(r));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    saemon_error err;
    saemon_ring *again = NULL;
    saemon_ring_options o = {.name = name, .d_in = D};
    cr_assert_eq(saemon_ring_create(&o, &again, &err), SAEMON_ERR_ARG, "a live consumer owns it");
    cr_assert(strstr(err.message, "already served"), "%s", err.message);
    saemon_ring_destroy(r);
    cr_assert_neq(stat(path, &st), 0, "destroy unlinks the segment");
}

Test(ring, more_dropping_streams_than_tracked_marks_every_stream)
{
    char name[64];
    saemon_ring *r = make_ring("gapall", 8, D, NULL, name, sizeof name);
    saemon_producer *p = producer_for(r, name, D, "h", SAEMON_PRODUCER_F32, 0);
    float rows[D] = {0};
    saemon_frame f;
    for (uint64_t s = 0; s < 200; s++) { /* 200 open streams the consumer knows */
        cr_assert_eq(saemon_producer_publish(p, s, 0, rows, 1), SAEMON_PRODUCER_OK);
        cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
        cr_assert(!f.gap);
    }
    saemon_ring_release(r);
    int dropped = 0;
    for (uint64_t s = 0; s < 200; s++) /* 8 fit, 192 streams lose a token: > 128 tracked */
        dropped += saemon_producer_publish(p, s, 1, rows, 1) == SAEMON_PRODUCER_DROPPED;
    cr_assert_eq(dropped, 192);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
    saemon_ring_release(r);
    for (uint64_t s = 8; s < 200; s++) { /* every stream that lost a token says so */
        cr_assert_eq(saemon_producer_publish(p, s, 2, rows, 1), SAEMON_PRODUCER_OK);
        cr_assert_eq(saemon_ring_next(r, &f, 1000, NULL), 1);
        cr_assert_eq(f.stream, s);
        cr_assert(f.gap, "stream %llu", (unsigned long long)s);
        saemon_ring_release(r);
    }
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}
