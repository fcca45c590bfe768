/* Ring under threads (run under ThreadSanitizer by scripts/test.sh, suite
 * 'stress'): a producer thread, the consumer thread, and a third thread
 * reading stats and writing/reading verdicts, all at once. No Criterion (its
 * runner forks, which TSan dislikes); exits non-zero on any mismatch. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saemon/producer.h"
#include "saemon/ring.h"

#define D 16
#define FRAMES 20000

static char name[64];
static int stop;
static int failures;

static void fail(const char *what)
{
    fprintf(stderr, "stress-ring: %s\n", what);
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

static void *produce(void *arg)
{
    (void)arg;
    saemon_producer_options o = {.ring = name, .hook = "h", .d_in = D, .lossless_wait_us = 2000000,
                                 .handshake_timeout_ms = 10000};
    saemon_producer *p = NULL;
    char msg[256];
    if (saemon_producer_attach(&o, &p, msg, sizeof msg) != SAEMON_PRODUCER_OK) {
        fail(msg);
        return NULL;
    }
    float row[2 * D];
    for (uint64_t t = 0; t < FRAMES; t++) {
        uint32_t n = 1 + (uint32_t)(t & 1);
        for (uint32_t i = 0; i < n * D; i++)
            row[i] = (float)(t * 2 * D + i);
        if (saemon_producer_publish(p, t % 7, t, row, n) != SAEMON_PRODUCER_OK)
            fail("publish dropped in lossless mode");
        (void)saemon_producer_get_verdict(p, t % 7);
    }
    saemon_producer_detach(p);
    return NULL;
}

static void *consume(void *arg)
{
    saemon_ring *r = arg;
    saemon_frame f;
    uint64_t next = 0;
    while (next < FRAMES) {
        int rc = saemon_ring_next(r, &f, 5000, NULL);
        if (rc != 1) {
            fail("consumer timed out");
            break;
        }
        if (f.token != next || f.stream != next % 7 || f.n_rows != 1 + (next & 1) || f.gap)
            fail("frame out of order");
        for (uint32_t i = 0; i < f.n_rows * D; i++)
            if (f.rows[i] != (float)(next * 2 * D + i)) {
                fail("row content");
                break;
            }
        if (next % 1000 == 0)
            saemon_ring_set_verdict(r, f.stream, SAEMON_VERDICT_WARNING);
        saemon_ring_release(r);
        next++;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *observe(void *arg)
{
    saemon_ring *r = arg;
    saemon_ring_stats st;
    uint64_t s = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        saemon_ring_get_stats(r, &st);
        saemon_ring_set_verdict(r, 100 + s++ % 50, SAEMON_VERDICT_INFO);
        (void)saemon_ring_get_verdict(r, s % 7);
        usleep(100);
    }
    return NULL;
}

/* ---- the verdict contract under threads (issue 21): a producer with its
 * heartbeat thread, a consumer that evaluates after release, and a third
 * thread reading the producer's verdicts and stats ---- */
#define SEQS 2000
#define BAD 1000.0f
static char vc_name[64];
static int vc_stop, vc_observe_stop;
static saemon_producer *vc_p;

static void *vc_consume(void *arg)
{
    saemon_ring *r = arg;
    while (!__atomic_load_n(&vc_stop, __ATOMIC_ACQUIRE)) {
        saemon_frame f;
        if (saemon_ring_next(r, &f, 5, NULL) != 1)
            continue;
        bool bad = f.n_rows && f.rows[0] == BAD, eos = f.end_of_stream;
        uint64_t stream = f.stream;
        if (f.new_producer)
            saemon_ring_clear_verdicts(r);
        saemon_ring_release(r);
        if (bad)
            saemon_ring_set_verdict(r, stream, SAEMON_VERDICT_BLOCK);
        if (eos)
            saemon_ring_end_verdict(r, stream);
        saemon_ring_evaluated(r);
    }
    return NULL;
}

static void *vc_observe(void *arg)
{
    (void)arg;
    saemon_producer_stats st;
    uint64_t s = 0;
    while (!__atomic_load_n(&vc_observe_stop, __ATOMIC_ACQUIRE)) {
        saemon_producer *p = __atomic_load_n(&vc_p, __ATOMIC_ACQUIRE);
        if (p) {
            (void)saemon_producer_get_verdict(p, s++ % 5);
            saemon_producer_get_stats(p, &st);
        }
        usleep(50);
    }
    return NULL;
}

static void verdict_contract(void)
{
    snprintf(vc_name, sizeof vc_name, "stressv%ld", (long)getpid());
    saemon_ring_options o = {.name = vc_name, .slots = 4, .max_rows_per_frame = 1, .d_in = D, .hook = "h",
                             .evaluated_by_caller = true};
    saemon_ring *r = NULL;
    if (saemon_ring_create(&o, &r, NULL) != SAEMON_OK) {
        fail("verdict contract: create");
        return;
    }
    pthread_t tc, to;
    pthread_create(&tc, NULL, vc_consume, r);
    pthread_create(&to, NULL, vc_observe, NULL);
    saemon_producer_options po = {.ring = vc_name, .hook = "h", .d_in = D, .lossless_wait_us = 2000000,
                                  .handshake_timeout_ms = 10000, .heartbeat_ms = 1};
    saemon_producer *p = NULL;
    if (saemon_producer_attach(&po, &p, NULL, 0) != SAEMON_PRODUCER_OK) {
        fail("verdict contract: attach");
    } else {
        __atomic_store_n(&vc_p, p, __ATOMIC_RELEASE);
        float good[D] = {0}, bad[D] = {BAD};
        for (uint64_t i = 0; i < SEQS; i++) {
            uint64_t s = i % 5;
            saemon_producer_publish(p, s, 0, good, 1);
            saemon_producer_publish(p, s, 1, bad, 1);
            if (saemon_producer_verdict_wait(p, s, 5000000) != SAEMON_VERDICT_BLOCK)
                fail("verdict contract: the bad token's block was not seen by the wait");
            saemon_producer_end_stream(p, s, 2);
            saemon_producer_publish(p, s, 0, good, 1); /* the next sequence on the same id */
            if (saemon_producer_get_verdict(p, s) != SAEMON_VERDICT_NONE)
                fail("verdict contract: a reused stream id read the old block");
            if (saemon_producer_verdict_wait(p, s, 5000000) != SAEMON_VERDICT_NONE)
                fail("verdict contract: the new sequence is not clean once evaluated");
            saemon_producer_end_stream(p, s, 1);
        }
    }
    __atomic_store_n(&vc_observe_stop, 1, __ATOMIC_RELEASE);
    pthread_join(to, NULL); /* before the producer it reads goes away */
    if (p)
        saemon_producer_detach(p);
    __atomic_store_n(&vc_stop, 1, __ATOMIC_RELEASE);
    pthread_join(tc, NULL);
    saemon_ring_destroy(r);
}

int main(void)
{
    snprintf(name, sizeof name, "stress%ld", (long)getpid());
    saemon_ring_options o = {.name = name, .slots = 8, .max_rows_per_frame = 2, .d_in = D, .hook = "h"};
    saemon_ring *r = NULL;
    saemon_error err;
    if (saemon_ring_create(&o, &r, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    pthread_t tp, tc, to;
    pthread_create(&tc, NULL, consume, r);
    pthread_create(&to, NULL, observe, r);
    pthread_create(&tp, NULL, produce, NULL);
    pthread_join(tp, NULL);
    pthread_join(tc, NULL);
    pthread_join(to, NULL);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    if (st.frames_received != FRAMES || st.frames_rejected_total || st.frames_dropped)
        fail("counters");
    if (saemon_ring_get_verdict(r, 0) != SAEMON_VERDICT_WARNING)
        fail("verdict");
    saemon_ring_destroy(r);
    verdict_contract();
    printf("stress-ring: %d failure(s), %llu frames, %d verdict-contract sequences\n", failures,
           (unsigned long long)st.frames_received, SEQS);
    return failures ? 1 : 0;
}
