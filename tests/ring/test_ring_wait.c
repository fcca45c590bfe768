/* saemon_ring_wait: one thread waiting on several rings (warm polling, then
 * the futex of every ring at once when they went cold) wakes for a frame or
 * an announcement on any of them, and times out when nothing comes. The
 * assertions are on what is returned, never on how long it took. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <time.h>

#include "runtime/ring_internal.h"
#include "tests/ring/ring_test_util.h"

#define D 8
#define HOOK "h"

static saemon_ring *make(const char *tag, char *name, size_t len)
{
    ring_test_name(name, len, tag);
    saemon_ring_options o = {.name = name, .slots = 8, .max_rows_per_frame = 2, .d_in = D, .hook = HOOK};
    saemon_ring *r = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    return r;
}

static saemon_producer *attach_nowait(const char *name)
{
    saemon_producer_options o = {.ring = name, .hook = HOOK, .d_in = D, .handshake_timeout_ms = -1};
    saemon_producer *p = NULL;
    char msg[256];
    cr_assert_eq(saemon_producer_attach(&o, &p, msg, sizeof msg), SAEMON_PRODUCER_OK, "%s", msg);
    return p;
}

/* Frames of `r` until it has none: returns how many. */
static int drain(saemon_ring *r)
{
    saemon_frame f;
    int n = 0;
    while (saemon_ring_next(r, &f, 0, NULL) == 1)
        n++;
    return n;
}

Test(ring_wait, any_of_two_rings)
{
    char na[64], nb[64];
    saemon_ring *a = make("wa", na, sizeof na), *b = make("wb", nb, sizeof nb);
    saemon_ring *both[2] = {a, b};
    cr_assert_eq(saemon_ring_wait(both, 2, 0), 0, "nothing yet");
    cr_assert_eq(saemon_ring_wait(both, 2, 20), 0, "times out");
    saemon_producer *p = attach_nowait(nb);
    cr_assert_eq(saemon_ring_wait(both, 2, 5000), 1, "an announcement wakes the waiter");
    cr_assert_eq(drain(a), 0);
    cr_assert_eq(drain(b), 0, "the announcement is judged, no frame");
    saemon_ring_stats st;
    saemon_ring_get_stats(b, &st);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_ACCEPTED);
    float rows[D];
    ring_test_rows(rows, 1, 0, 1, D);
    cr_assert_eq(saemon_producer_publish(p, 1, 0, rows, 1), SAEMON_PRODUCER_OK);
    cr_assert_eq(saemon_ring_wait(both, 2, 5000), 1);
    cr_assert_eq(drain(b), 1);
    cr_assert_eq(saemon_ring_wait(both, 2, 0), 0);
    saemon_producer_detach(p);
    saemon_ring_destroy(a);
    saemon_ring_destroy(b);
}

typedef struct late {
    const char *ring;
    saemon_producer *p;
} late;

/* Publish one frame after the waiter's rings went cold (> 250 ms). */
static void *publish_late(void *arg)
{
    late *l = arg;
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    float rows[D];
    ring_test_rows(rows, 2, 0, 1, D);
    saemon_producer_publish(l->p, 2, 0, rows, 1);
    return NULL;
}

Test(ring_wait, cold_rings_wake_for_a_frame)
{
    char na[64], nb[64];
    saemon_ring *a = make("ca", na, sizeof na), *b = make("cb", nb, sizeof nb);
    saemon_ring *both[2] = {a, b};
    late l = {.ring = na, .p = attach_nowait(na)};
    cr_assert_eq(saemon_ring_wait(both, 2, 5000), 1);
    cr_assert_eq(drain(a), 0); /* judge the announcement */
    pthread_t t;
    pthread_create(&t, NULL, publish_late, &l);
    int got = 0;
    for (int i = 0; i < 100 && !got; i++) /* the frame arrives while both rings are cold */
        if (saemon_ring_wait(both, 2, 5000) == 1)
            got = drain(a) + drain(b);
    pthread_join(t, NULL);
    cr_assert_eq(got, 1, "the frame published into a cold ring is seen");
    saemon_producer_detach(l.p);
    saemon_ring_destroy(a);
    saemon_ring_destroy(b);
}

Test(ring_wait, bad_arguments)
{
    cr_assert_eq(saemon_ring_wait(NULL, 1, 10), 0);
    char n[64];
    saemon_ring *r = make("ba", n, sizeof n);
    cr_assert_eq(saemon_ring_wait(&r, 0, 10), 0);
    saemon_ring_destroy(r);
}

/* How long a ring stays warm (polled, producers never wake the consumer)
 * after its last frame: 250 ms, or twice the silence its last frame broke
 * (steps of a batch decoding every 0.3 s stay warm), at most 2 s. */
Test(ring_wait, warm_for_twice_the_silence_a_frame_broke)
{
    const uint64_t ms = 1000000u;
    cr_assert_eq(ring_wait_cold_after(1 * ms), 250 * ms);
    cr_assert_eq(ring_wait_cold_after(125 * ms), 250 * ms);
    cr_assert_eq(ring_wait_cold_after(320 * ms), 640 * ms);
    cr_assert_eq(ring_wait_cold_after(900 * ms), 1800 * ms);
    cr_assert_eq(ring_wait_cold_after(1000 * ms), 2000 * ms);
    cr_assert_eq(ring_wait_cold_after(60000 * ms), 2000 * ms);
    cr_assert_eq(ring_wait_cold_after(UINT64_MAX), 2000 * ms, "no overflow");
}
