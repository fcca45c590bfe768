/* Request ids on the ring (issue 21 item 10) and refusals found after
 * attach (item 4 when saemon starts after the model):
 *  - the C producer tags a stream with an engine's request id; the consumer
 *    hands it out once, validated; the verdict is answered by request id;
 *  - hostile request id frames (too long, invalid UTF-8, control
 *    characters, no NUL, empty, with rows) are rejected and counted under
 *    "request_id", and the ring goes on;
 *  - a ring speaking another protocol version is refused with a clear reason;
 *  - a producer attached before the ring exists learns a wrong hook from its
 *    heartbeat thread, reports it once (on_refused, stats), before any
 *    publish. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/ring/ring_test_util.h"

#define D 8
#define HOOK "h"

static saemon_ring *make_ring(const char *tag, char *name, size_t len, const char *hook)
{
    if (tag)
        ring_test_name(name, len, tag);
    saemon_ring_options o = {.name = name, .slots = 8, .max_rows_per_frame = 4, .d_in = D, .hook = hook};
    saemon_ring *r = NULL;
    saemon_error err;
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    return r;
}

/* A C producer attached while the consumer judges in next(). */
static saemon_producer *attach_served(saemon_ring *r, const char *name)
{
    saemon_producer *p = ring_test_attach_served(r, name, D, HOOK);
    cr_assert(p);
    return p;
}

static int next_frame(saemon_ring *r, saemon_frame *f)
{
    int got = 0;
    for (int i = 0; i < 50 && got != 1; i++)
        got = saemon_ring_next(r, f, 20, NULL);
    return got;
}

Test(ring_request_ids, c_producer_tags_a_stream_and_answers_the_verdict_by_id)
{
    char name[64];
    saemon_ring *r = make_ring("rid", name, sizeof name, HOOK);
    saemon_producer *p = attach_served(r, name);
    const char *id = "cmpl-8f3a9c2e-\xc3\xa9t\xc3\xa9"; /* UTF-8 is fine */
    cr_assert_eq(saemon_producer_begin_request(p, 7, id), SAEMON_PRODUCER_OK);
    float rows[D];
    ring_test_rows(rows, 7, 0, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 7, 0, rows, 1), SAEMON_PRODUCER_OK);
    saemon_frame f;
    cr_assert_eq(next_frame(r, &f), 1);
    cr_assert_eq(f.stream, 7);
    cr_assert_eq(f.n_rows, 0);
    cr_assert(f.request_id && strcmp(f.request_id, id) == 0, "request id handed out: %s", f.request_id);
    saemon_ring_release(r);
    cr_assert_eq(next_frame(r, &f), 1);
    cr_assert_eq(f.n_rows, 1);
    cr_assert_null(f.request_id);
    saemon_ring_set_verdict(r, 7, SAEMON_VERDICT_BLOCK);
    saemon_ring_release(r);

    uint64_t s = 0;
    cr_assert_eq(saemon_producer_get_request_stream(p, id, &s), SAEMON_PRODUCER_OK);
    cr_assert_eq(s, 7);
    cr_assert_eq(saemon_producer_request_verdict_wait(p, id, 2000000), SAEMON_VERDICT_BLOCK);
    cr_assert_eq(saemon_producer_get_request_verdict(p, id), SAEMON_VERDICT_BLOCK);
    cr_assert_eq(saemon_producer_get_request_verdict(p, "cmpl-unknown"), SAEMON_PRODUCER_EINVAL);

    /* the id moves to another stream: the old stream forgets it */
    cr_assert_eq(saemon_producer_begin_request(p, 9, id), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_get_request_stream(p, id, &s), SAEMON_PRODUCER_OK);
    cr_assert_eq(s, 9);
    /* ended: unknown */
    cr_assert_eq(saemon_producer_end_stream(p, 9, 0), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_producer_get_request_stream(p, id, &s), SAEMON_PRODUCER_EINVAL);

    /* what no producer may send */
    char longid[RING_REQUEST_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    cr_assert_eq(saemon_producer_begin_request(p, 1, longid), SAEMON_PRODUCER_EINVAL, "129 bytes");
    longid[RING_REQUEST_ID_MAX] = 0; /* 128 bytes: valid, but this ring's 128-byte slot payload cannot
                                       * hold it and its NUL: not sent, counted */
    cr_assert_eq(saemon_producer_begin_request(p, 1, longid), SAEMON_PRODUCER_DROPPED, "128 bytes");
    saemon_producer_stats pst;
    saemon_producer_get_stats(p, &pst);
    cr_assert_eq(pst.request_ids_lost, 1);
    const char *bad[] = {"", "a\nb", "a\tb", "tab\x7f", "\xc2\x85nel", "\xff\xfe", "\xc3", "\xed\xa0\x80",
                         "\xc0\xaf", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(saemon_producer_begin_request(p, 1, bad[i]), SAEMON_PRODUCER_EINVAL, "bad id %d", i);
    cr_assert_eq(saemon_producer_begin_request(p, 1, NULL), SAEMON_PRODUCER_EINVAL);
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}

/* A request id frame forged by hand: `aux` bytes, payload as given. */
static void forge(ring_raw *raw, uint64_t stream, const void *payload, size_t payload_bytes, uint16_t aux,
                  uint32_t n_rows, uint16_t flags)
{
    frame_header fh = {.magic = FRAME_MAGIC, .version = FRAME_VERSION, .flags = flags, .stream = stream,
                       .hook_id = ring_fnv1a32(HOOK), .d_in = D, .n_rows = n_rows, .dtype = FRAME_DTYPE_F32,
                       .checksum_kind = FRAME_CSUM_CRC32C, .aux = aux};
    ring_raw_publish(raw, fh, payload, payload_bytes, 0);
}

Test(ring_request_ids, hostile_request_id_frames_are_rejected_and_counted)
{
    char name[64];
    saemon_ring *r = make_ring("ridh", name, sizeof name, HOOK);
    ring_raw raw;
    cr_assert(ring_raw_open(name, &raw));
    ring_raw_announce(&raw, D, HOOK);
    saemon_frame f;
    saemon_ring_next(r, &f, 0, NULL); /* judge */
    char buf[512];
    memset(buf, 'x', sizeof buf);
    buf[200] = 0;
    forge(&raw, 1, buf, 130, 129, 0, FRAME_FLAG_REQUEST_ID);              /* too long */
    forge(&raw, 1, "\xff\xfe" "ab", 5, 4, 0, FRAME_FLAG_REQUEST_ID);       /* invalid UTF-8 */
    forge(&raw, 1, "a\x1b[31m", 7, 6, 0, FRAME_FLAG_REQUEST_ID);           /* control character */
    forge(&raw, 1, "abcd", 4, 3, 0, FRAME_FLAG_REQUEST_ID);                /* no NUL after the id */
    forge(&raw, 1, "a\0b", 4, 3, 0, FRAME_FLAG_REQUEST_ID);                /* a NUL inside */
    forge(&raw, 1, "", 1, 0, 0, FRAME_FLAG_REQUEST_ID);                    /* empty */
    forge(&raw, 1, "ab", 3, 2, 1, FRAME_FLAG_REQUEST_ID);                  /* with a row */
    forge(&raw, 1, "ab", 3, 2, 0, FRAME_FLAG_REQUEST_ID | FRAME_FLAG_END_OF_STREAM);
    cr_assert_eq(saemon_ring_next(r, &f, 0, NULL), 0, "no hostile id is handed out");
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected[SAEMON_RING_REJECT_REQUEST_ID], 8, "%llu",
                 (unsigned long long)st.frames_rejected[SAEMON_RING_REJECT_REQUEST_ID]);
    cr_assert_eq(st.frames_rejected_total, 8);
    cr_assert_str_eq(saemon_ring_reject_name(SAEMON_RING_REJECT_REQUEST_ID), "request_id");
    /* aux on a frame without the flag is a header error; the ring goes on */
    float row[D] = {0};
    forge(&raw, 2, row, sizeof row, 3, 1, 0);
    forge(&raw, 1, "ok-1", 5, 4, 0, FRAME_FLAG_REQUEST_ID); /* stream 1: its hostile ids marked no gap */
    cr_assert_eq(saemon_ring_next(r, &f, 0, NULL), 1);
    cr_assert_str_eq(f.request_id, "ok-1");
    cr_assert_not(f.gap, "a rejected id loses no rows: no gap");
    saemon_ring_release(r);
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.frames_rejected[SAEMON_RING_REJECT_HEADER], 1);
    ring_raw_close(&raw);
    saemon_ring_destroy(r);
}

Test(ring_request_ids, a_ring_of_another_protocol_version_is_refused_clearly)
{
    char name[64];
    saemon_ring *r = make_ring("ridv", name, sizeof name, HOOK);
    ring_raw raw;
    cr_assert(ring_raw_open(name, &raw));
    raw.h->version = RING_VERSION - 1;
    saemon_producer_options o = {.ring = name, .hook = HOOK, .d_in = D, .heartbeat_ms = -1};
    saemon_producer *p = NULL;
    char msg[256];
    cr_assert_eq(saemon_producer_attach(&o, &p, msg, sizeof msg), SAEMON_PRODUCER_EREFUSED);
    cr_assert(strstr(msg, "protocol version 2") && strstr(msg, "version 3"), "%s", msg);
    raw.h->version = RING_VERSION;
    ring_raw_close(&raw);
    saemon_ring_destroy(r);
}

static int refusals;
static char refusal[256];
static void on_refused(const char *reason, void *user)
{
    (void)user;
    snprintf(refusal, sizeof refusal, "%s", reason);
    __atomic_add_fetch(&refusals, 1, __ATOMIC_SEQ_CST);
}

static void *serve_thread(void *arg)
{
    saemon_ring *r = arg;
    saemon_frame f;
    for (int i = 0; i < 500 && !__atomic_load_n(&refusals, __ATOMIC_SEQ_CST); i++)
        saemon_ring_next(r, &f, 10, NULL);
    return NULL;
}

Test(ring_request_ids, a_wrong_hook_is_known_before_any_publish_when_saemon_starts_later)
{
    char name[64];
    ring_test_name(name, sizeof name, "ridl");
    saemon_producer_options o = {.ring = name, .hook = "wrong.hook", .d_in = D, .handshake_timeout_ms = -1,
                                 .heartbeat_ms = 1000, .on_refused = on_refused};
    saemon_producer *p = NULL;
    char msg[256];
    cr_assert_eq(saemon_producer_attach(&o, &p, msg, sizeof msg), SAEMON_PRODUCER_OK, "%s", msg);
    saemon_producer_stats st;
    saemon_producer_get_stats(p, &st);
    cr_assert_not(st.connected);
    cr_assert_not(st.refused);
    saemon_ring *r = make_ring(NULL, name, sizeof name, HOOK); /* saemon starts now */
    pthread_t t;
    pthread_create(&t, NULL, serve_thread, r);
    for (int i = 0; i < 1000 && !__atomic_load_n(&refusals, __ATOMIC_SEQ_CST); i++)
        usleep(10000);
    pthread_join(t, NULL);
    cr_assert_eq(__atomic_load_n(&refusals, __ATOMIC_SEQ_CST), 1, "told once, by the heartbeat thread");
    cr_assert(strstr(refusal, "wrong.hook"), "%s", refusal);
    saemon_producer_get_stats(p, &st);
    cr_assert(st.refused);
    cr_assert(strstr(st.refuse_reason, "does not match"), "%s", st.refuse_reason);
    cr_assert_eq(st.frames_published + st.frames_dropped, 0, "before any publish");
    float row[D] = {0};
    cr_assert_eq(saemon_producer_publish(p, 1, 0, row, 1), SAEMON_PRODUCER_DROPPED);
    usleep(20000);
    cr_assert_eq(__atomic_load_n(&refusals, __ATOMIC_SEQ_CST), 1, "not told again");
    saemon_producer_detach(p);
    saemon_ring_destroy(r);
}
