/* Waiting for frames, consumer side, so that the producer (the model's own
 * thread) never pays a system call in the common case.
 *
 * A ring is WARM while frames or announcements arrived recently (the last
 * WAIT_COLD_NS, or twice the last silence a frame broke, up to
 * WAIT_COLD_MAX_NS: steps of a batch decoding every 0.3 s keep it warm
 * instead of each paying the wake-up): the consumer then looks at the ring on a timer
 * (WAIT_POLL_NS) and keeps `waiters` at 0, so producers publish with plain
 * stores and never call futex. Dense traffic (frames closer than
 * WAIT_DENSE_NS on average) is first polled for WAIT_SPIN_NS, which on a VM
 * costs less than one sleep/wake-up. A ring silent longer goes
 * COLD: the consumer sets `waiters` and sleeps on the futex word (all its
 * rings at once with futex_waitv); the first frame after the pause pays one
 * FUTEX_WAKE on the producer's side, then the ring is warm again.
 * Dekker-style hand-off with wake_consumer() in producers/c/producer.c: the
 * producer stores head (seq_cst) then loads `waiters` (seq_cst); the
 * consumer stores `waiters` (seq_cst) then re-loads head (seq_cst) before
 * sleeping, so one side always sees the other (no lost wake-up).
 * Costs and figures: docs/serve.md ("What the model's thread pays"). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/ring_internal.h"

#define WAIT_POLL_NS 400000u          /* warm: look this often (the timer slack adds ≤ 50 µs) */
#define WAIT_COLD_NS 250000000u       /* silent this long: sleep on the futex ... */
#define WAIT_COLD_MAX_NS 2000000000u  /* ... or up to this, after longer silences */
#define WAIT_COLD_SLEEP_NS 100000000u /* cold: wake up this often anyway (heartbeat, non-waking producers) */
#define WAIT_SPIN_NS 20000u           /* dense traffic: poll this long before sleeping */
#define WAIT_DENSE_NS 50000u          /* mean gap between frames below which traffic is dense */
#define WAIT_MAX_RINGS 128            /* FUTEX_WAITV_MAX */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A segment that broke under us (ring_guard.c) is work too: saemon_ring_next
 * recovers it at once instead of sleeping on zero pages. */
static bool ready(const saemon_ring *r, int order)
{
    return __atomic_load_n(&r->faulted, __ATOMIC_ACQUIRE)
        || __atomic_load_n(&r->h->head, order) != r->tail
        || __atomic_load_n(&r->h->announce_gen, order) != r->judged_gen;
}

static bool any_ready(saemon_ring *const *rings, size_t n, int order)
{
    for (size_t i = 0; i < n; i++)
        if (rings[i] && rings[i]->h && ready(rings[i], order))
            return true;
    return false;
}

uint64_t ring_wait_cold_after(uint64_t last_silence_ns)
{
    if (last_silence_ns > WAIT_COLD_MAX_NS / 2)
        return WAIT_COLD_MAX_NS;
    return 2 * last_silence_ns > WAIT_COLD_NS ? 2 * last_silence_ns : WAIT_COLD_NS;
}

/* Note what the ring did since the last wait: activity keeps it warm (for
 * twice the silence it broke), the mean gap between its frames decides
 * whether to spin. */
static void observe(saemon_ring *r, uint64_t now)
{
    uint64_t frames = r->tail - r->wait_tail;
    if (frames || r->judged_gen != r->wait_gen) {
        if (r->wait_activity_ns && now - r->wait_activity_ns > 2 * WAIT_POLL_NS)
            r->wait_cold_ns = ring_wait_cold_after(now - r->wait_activity_ns);
        r->wait_activity_ns = now;
        if (frames)
            r->wait_dense = (now - r->wait_mark_ns) / frames < WAIT_DENSE_NS;
    } else if (now - r->wait_mark_ns >= WAIT_DENSE_NS) {
        r->wait_dense = false;
    }
    r->wait_tail = r->tail;
    r->wait_gen = r->judged_gen;
    r->wait_mark_ns = now;
    __atomic_store_n(&r->h->consumer_heartbeat_ns, now, __ATOMIC_RELAXED);
}

static void heartbeat(saemon_ring *const *rings, size_t n, uint64_t now)
{
    for (size_t i = 0; i < n; i++)
        if (rings[i] && rings[i]->h)
            __atomic_store_n(&rings[i]->h->consumer_heartbeat_ns, now, __ATOMIC_RELAXED);
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

/* Cold: sleep on the futex word(s) until a producer wakes us or `ns` passes.
 * Returns false if the futex wait is unavailable (caller polls instead). */
static bool futex_sleep(saemon_ring *const *rings, size_t n, uint64_t ns)
{
    uint32_t seen[WAIT_MAX_RINGS];
    for (size_t i = 0; i < n; i++)
        if (rings[i] && rings[i]->h) {
            seen[i] = __atomic_load_n(&rings[i]->h->wake, __ATOMIC_ACQUIRE);
            __atomic_store_n(&rings[i]->h->waiters, 1u, __ATOMIC_SEQ_CST);
        }
    bool ok = true;
    if (!any_ready(rings, n, __ATOMIC_SEQ_CST)) {
        if (n == 1) {
            struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
            syscall(SYS_futex, &rings[0]->h->wake, FUTEX_WAIT, seen[0], &ts, NULL, 0);
        } else {
#if defined(SYS_futex_waitv)
            struct futex_waitv w[WAIT_MAX_RINGS];
            unsigned m = 0;
            for (size_t i = 0; i < n; i++)
                if (rings[i] && rings[i]->h)
                    w[m++] = (struct futex_waitv){.val = seen[i],
                                                  .uaddr = (uint64_t)(uintptr_t)&rings[i]->h->wake,
                                                  .flags = FUTEX_32};
            uint64_t until = ring_now_ns() + ns;
            struct timespec abs = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
            if (syscall(SYS_futex_waitv, w, m, 0, &abs, CLOCK_MONOTONIC) < 0 && errno == ENOSYS)
                ok = false;
#else
            ok = false;
#endif
        }
    }
    for (size_t i = 0; i < n; i++)
        if (rings[i] && rings[i]->h)
            __atomic_store_n(&rings[i]->h->waiters, 0u, __ATOMIC_RELAXED);
    return ok;
}

int ring_wait(saemon_ring *const *rings, size_t n, uint64_t deadline_ns)
{
    if (n > WAIT_MAX_RINGS)
        n = WAIT_MAX_RINGS;
    uint64_t now = ring_now_ns();
    bool dense = false;
    for (size_t i = 0; i < n; i++)
        if (rings[i] && rings[i]->h) {
            observe(rings[i], now);
            dense |= rings[i]->wait_dense;
        }
    if (any_ready(rings, n, __ATOMIC_ACQUIRE))
        return 1;
    if (dense) {
        uint64_t spin_end = now + WAIT_SPIN_NS;
        do {
            for (int k = 0; k < 64; k++)
                cpu_relax();
            if (any_ready(rings, n, __ATOMIC_ACQUIRE))
                return 1;
            now = ring_now_ns();
        } while (now < spin_end && (!deadline_ns || now < deadline_ns));
    }
    bool futex_ok = true;
    for (;;) {
        if (deadline_ns && now >= deadline_ns)
            return 0;
        uint64_t left = deadline_ns ? deadline_ns - now : UINT64_MAX;
        bool warm = false;
        for (size_t i = 0; i < n; i++)
            if (rings[i] && rings[i]->h
                && now - rings[i]->wait_activity_ns < (rings[i]->wait_cold_ns ? rings[i]->wait_cold_ns : WAIT_COLD_NS))
                warm = true;
        if (warm || !futex_ok) {
            sleep_ns(left < WAIT_POLL_NS ? left : WAIT_POLL_NS);
        } else {
            futex_ok = futex_sleep(rings, n, left < WAIT_COLD_SLEEP_NS ? left : WAIT_COLD_SLEEP_NS);
        }
        now = ring_now_ns();
        heartbeat(rings, n, now);
        if (any_ready(rings, n, __ATOMIC_ACQUIRE))
            return 1;
    }
}

int saemon_ring_wait(saemon_ring *const *rings, size_t n, int timeout_ms)
{
    if (!rings || n == 0)
        return 0;
    if (timeout_ms == 0)
        return any_ready(rings, n, __ATOMIC_ACQUIRE) ? 1 : 0;
    uint64_t deadline = timeout_ms > 0 ? ring_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    return ring_wait(rings, n, deadline);
}
