/* libsaemon-producer: publishes activation rows into a saemon ring.
 * libc only. Protocol and layout: docs/ring.md, proto/ring_wire.h. */
#include "saemon/producer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "producers/c/pretouch.h"
#include "proto/request_map.h"
#include "proto/ring_wire.h"

#define RECHECK_NS 5000000u /* look for a restarted consumer at most every 5 ms */
#define CONSUMER_FRESH_NS 1000000000u /* a consumer heartbeat this recent: it is alive */
#define GAP_SET 128         /* streams remembered as "lost a frame" until their next frame */
#define ENDED_MAX 1024      /* ended streams whose end saemon has not evaluated yet */
#define EOS_PENDING_MAX (1u << 20) /* end-of-stream frames waiting for room (16 B each, grown on demand) */
#define HEARTBEAT_MS_DEFAULT 1000

enum { P_DISCONNECTED, P_PENDING, P_ACCEPTED, P_REFUSED };

struct saemon_producer {
    char shm_name[sizeof RING_SHM_PREFIX + RING_NAME_MAX];
    char model[RING_TEXT_MAX];
    char hook[RING_TEXT_MAX];
    bool hook_from_consumer; /* announce whatever hook the consumer expects */
    uint32_t hook_id;
    uint32_t d_in;
    uint32_t dtype;
    size_t row_bytes;
    uint32_t lossless_wait_us;

    /* the current segment (state != P_DISCONNECTED) */
    int fd;
    void *map;
    size_t map_bytes;
    ring_header *h;
    uint8_t *slots;
    const uint64_t *verdicts;
    dev_t dev;
    ino_t ino;
    uint32_t rows_per_frame;
    uint32_t my_gen;
    uint64_t head;
    int state;
    uint64_t next_check_ns;
    uint64_t seen_tail; /* the consumer's tail at the previous check */

    /* loss bookkeeping carried by the next published frame */
    uint64_t dropped_pending;
    bool gap_all_pending;
    uint64_t gap_streams[GAP_SET]; /* stream + 1; 0 = empty; at most 3/4 full */
    uint32_t gap_count;

    /* verdict freshness (see saemon_producer_get_verdict): verdicts are this
     * producer's only once saemon evaluated its first frame (flag RESET), and
     * a stream's verdict belongs to its new sequence only once saemon
     * evaluated the previous sequence's end. */
    bool reset_pending;   /* the next frame carries FRAME_FLAG_RESET */
    uint64_t reset_seq;   /* seq of that frame; UINT64_MAX before it is published */
    struct { uint64_t stream, after; } ended[ENDED_MAX]; /* FIFO: after = EOS seq + 1 */
    uint32_t ended_first, ended_n;

    /* end-of-stream frames that found the ring full: published before any
     * other frame, never dropped (unless EOS_PENDING_MAX are waiting) */
    struct eos_entry { uint64_t stream, token; char *rid; } *eos; /* circular, eos_cap entries;
                                * rid != NULL: a request id frame (malloc'd), else an end */
    uint32_t eos_first, eos_n, eos_cap;

    /* every call below runs under `mu` */
    pthread_mutex_t mu;
    /* library heartbeat thread: sleeps on stop_cv under hb_mu (never `mu`,
     * which it takes only for the heartbeat proper) */
    pthread_mutex_t hb_mu;
    pthread_cond_t stop_cv;
    pthread_t hb_thread;
    bool hb_running, hb_stop;
    uint32_t hb_ms;
    pretouch touch; /* the heartbeat thread writes ahead of head (pretouch.h) */

    /* tokens lost while no consumer served the ring (dropped while
     * disconnected, or left unconsumed in a dead consumer's segment) */
    uint64_t lost_consumer_down;
    uint32_t *slot_rows; /* rows of the frame in each slot, for that count */
    uint32_t slot_rows_n;

    /* request ids (saemon_producer_begin_request): stream <-> id, so the
     * verdict can be asked by id and a new consumer learns the open ids */
    request_map requests;

    /* refusals found after attach() returned (by the heartbeat thread or a
     * call): reported once through on_refused, outside the mutex */
    void (*on_refused)(const char *reason, void *user);
    void *on_refused_user;
    bool refusal_unreported;
    bool version_mismatch; /* the ring speaks another protocol version (refuse_reason says) */

    saemon_producer_stats stats;
    char refuse_reason[256];
};

static void set_msg(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *msg, size_t len, const char *fmt, ...)
{
    if (!msg || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
}

/* ---- pending-gap set: streams that lost a frame since their last one ---- */

static void gap_add(saemon_producer *p, uint64_t stream)
{
    uint64_t key = stream + 1;
    uint32_t h = (uint32_t)ring_hash64(stream) % GAP_SET;
    for (uint32_t i = 0; i < GAP_SET; i++) {
        uint64_t *e = &p->gap_streams[(h + i) % GAP_SET];
        if (*e == key)
            return;
        if (*e == 0) {
            /* keep a quarter empty: probing and deletion need empty slots */
            if (p->gap_count >= GAP_SET * 3 / 4)
                break;
            *e = key;
            p->gap_count++;
            return;
        }
    }
    p->gap_all_pending = true; /* too many: every open stream is suspect */
}

/* True (and forgotten) if `stream` lost frames since its previous frame.
 * Removal uses backward-shift deletion to keep linear probing exact. */
static bool gap_take(saemon_producer *p, uint64_t stream)
{
    uint64_t key = stream + 1;
    uint32_t i = (uint32_t)ring_hash64(stream) % GAP_SET;
    for (uint32_t n = 0; n < GAP_SET; n++, i = (i + 1) % GAP_SET) {
        if (p->gap_streams[i] == 0)
            return false;
        if (p->gap_streams[i] != key)
            continue;
        uint32_t hole = i;
        for (uint32_t j = (i + 1) % GAP_SET; p->gap_streams[j]; j = (j + 1) % GAP_SET) {
            uint32_t home = (uint32_t)ring_hash64(p->gap_streams[j] - 1) % GAP_SET;
            /* move j into the hole unless its home lies cyclically in (hole, j] */
            bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!stays) {
                p->gap_streams[hole] = p->gap_streams[j];
                hole = j;
            }
        }
        p->gap_streams[hole] = 0;
        p->gap_count--;
        return true;
    }
    return false;
}

/* ---- segment attach / detach ---- */

/* Dekker-style hand-off with idle_wait() in runtime/ring.c: the producer
 * publishes (head or announce_gen, seq_cst) then reads `waiters` (seq_cst);
 * the consumer sets `waiters` (seq_cst) then re-reads head/announce_gen
 * (seq_cst) before sleeping. All four being seq_cst, one of the two sides
 * sees the other's write: no lost wake-up. (No fences: ThreadSanitizer
 * does not model them.) */
static void wake_consumer(ring_header *h)
{
    if (__atomic_load_n(&h->waiters, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&h->wake, 1, __ATOMIC_RELEASE);
        syscall(SYS_futex, &h->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

static void disconnect(saemon_producer *p)
{
    if (p->map) {
        pretouch_clear(&p->touch);
        munmap(p->map, p->map_bytes);
        p->map = NULL;
    }
    if (p->fd >= 0)
        close(p->fd); /* releases the producer lock */
    p->fd = -1;
    p->h = NULL;
    p->slots = NULL;
    p->verdicts = NULL;
    p->state = P_DISCONNECTED;
}

/* Validate the geometry the consumer wrote; the producer trusts it no more
 * than the consumer trusts frames. */
static bool geometry_ok(const ring_header *h, size_t size)
{
    uint64_t slots_end = h->slots_offset + (uint64_t)h->slots * h->slot_bytes;
    uint64_t verdict_end = h->verdict_offset + (uint64_t)h->verdict_entries * 8u;
    return h->magic == RING_MAGIC && h->version == RING_VERSION
        && h->header_bytes == RING_HEADER_BYTES && h->segment_bytes == size
        && h->slots >= 2 && (h->slots & (h->slots - 1)) == 0 && h->slots <= 65536
        && h->slot_bytes >= 128 && h->slot_bytes % 64 == 0
        && h->verdict_entries >= RING_VERDICT_WINDOW
        && (h->verdict_entries & (h->verdict_entries - 1)) == 0
        && h->verdict_offset >= RING_HEADER_BYTES && h->verdict_offset % 64 == 0
        && verdict_end <= h->slots_offset && h->slots_offset % 64 == 0 && slots_end <= size;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Read one byte of every page in [start, end): see prefault_slots(). */
static void touch_pages(uintptr_t start, uintptr_t end, uintptr_t page)
{
    for (uintptr_t a = start & ~(page - 1); a < end; a += page)
        (void)*(volatile const uint8_t *)a;
}

/* Map, now, the pages a one-row frame touches in every slot, so that the
 * first lap of publishing does not take a page fault per slot on the model's
 * thread (on a VM a fault costs as much as a system call: 20-60 us). Then
 * read one byte of each: on the KVM guests measured (docs/benchmarks.md,
 * issue 25) the first user-space access of a page mapped by
 * MADV_POPULATE_WRITE still cost ~5 us (no fault is counted in the guest:
 * the cost is the hypervisor's), 15-20 us for a 2304-float row, and
 * a read here pays it at attach instead of on the first lap of tokens.
 * Larger frames map and touch their extra pages once. Best effort (older
 * kernels lack MADV_POPULATE_WRITE); no byte of the segment is written. */
static void prefault_slots(const saemon_producer *p)
{
    const ring_header *h = p->h;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    /* the verdict table too: saemon_producer_get_verdict() reads it */
    uintptr_t verdicts = (uintptr_t)p->map + (h->verdict_offset & ~(uint64_t)(page - 1));
    size_t verdict_len = h->verdict_offset % page + (size_t)h->verdict_entries * 8u;
    madvise((void *)verdicts, verdict_len, MADV_POPULATE_READ);
    touch_pages(verdicts, verdicts + verdict_len, page);
    size_t bytes = FRAME_HEADER_BYTES + p->row_bytes;
    if (bytes * 2 >= h->slot_bytes) { /* most of every slot: the whole region at once */
        size_t all = (size_t)h->slots * h->slot_bytes;
        madvise(p->slots, all, MADV_POPULATE_WRITE);
        touch_pages((uintptr_t)p->slots, (uintptr_t)p->slots + all, page);
        return;
    }
    for (uint32_t i = 0; i < h->slots; i++) {
        uintptr_t a = (uintptr_t)(p->slots + (size_t)i * h->slot_bytes);
        uintptr_t start = a & ~(page - 1), end = (a + bytes + page - 1) & ~(page - 1);
        if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) != 0)
            return;
        touch_pages(start, end, page);
    }
}

enum { CONNECT_OK = 0, CONNECT_ABSENT = 1, CONNECT_BUSY = -1, CONNECT_SYS = -2, CONNECT_VERSION = -3 };

static bool consumer_alive(const saemon_producer *p);

static int connect_segment(saemon_producer *p, char *msg, size_t msg_len)
{
    int fd = shm_open(p->shm_name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return CONNECT_ABSENT;
        set_msg(msg, msg_len, "ring %s: %s", p->shm_name, strerror(errno));
        return CONNECT_SYS;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)RING_HEADER_BYTES) {
        close(fd);
        return CONNECT_ABSENT; /* being created: try again later */
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        set_msg(msg, msg_len, "ring %s: mmap: %s", p->shm_name, strerror(errno));
        close(fd);
        return CONNECT_SYS;
    }
    ring_header *h = map;
    if (h->magic == RING_MAGIC && h->version != RING_VERSION
        && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) == RING_STATE_READY) {
        /* a saemon of another release: say so instead of waiting forever */
        snprintf(p->refuse_reason, sizeof p->refuse_reason,
                 "ring %s speaks ring protocol version %u, this producer version %u: use a "
                 "libsaemon-producer / saemon_producer of the same saemon release",
                 p->shm_name + sizeof RING_SHM_PREFIX - 1, (unsigned)h->version, RING_VERSION);
        set_msg(msg, msg_len, "%s", p->refuse_reason);
        munmap(map, size);
        close(fd);
        return CONNECT_VERSION;
    }
    if (__atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != RING_STATE_READY || !geometry_ok(h, size)) {
        munmap(map, size);
        close(fd);
        return CONNECT_ABSENT; /* retired, half-created or not a saemon ring */
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        unsigned owner = __atomic_load_n(&h->producer_pid, __ATOMIC_RELAXED);
        munmap(map, size);
        close(fd);
        if (e == EAGAIN || e == EACCES) {
            set_msg(msg, msg_len, "ring %s already has a live producer (pid %u)", p->shm_name, owner);
            return CONNECT_BUSY;
        }
        set_msg(msg, msg_len, "ring %s: lock: %s", p->shm_name, strerror(e));
        return CONNECT_SYS;
    }
    p->fd = fd;
    if (!consumer_alive(p)) { /* a dead consumer's segment: wait for the next one */
        p->fd = -1;
        munmap(map, size);
        close(fd);
        return CONNECT_ABSENT;
    }
    p->map = map;
    p->map_bytes = size;
    p->h = h;
    p->slots = (uint8_t *)map + h->slots_offset;
    p->verdicts = (const uint64_t *)((uint8_t *)map + h->verdict_offset);
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->rows_per_frame = (uint32_t)((h->slot_bytes - FRAME_HEADER_BYTES) / p->row_bytes);
    prefault_slots(p);
    pretouch_set(&p->touch, h, p->slots, FRAME_HEADER_BYTES + p->row_bytes);
    if (p->hook_from_consumer) {
        const char *want = memchr(h->expected_hook, 0, sizeof h->expected_hook) ? h->expected_hook : "";
        snprintf(p->hook, sizeof p->hook, "%.119s", *want ? want : "any");
        p->hook_id = ring_fnv1a32(p->hook);
    }
    /* Continue after a previous producer (possibly killed mid-frame: its
     * unpublished slot is simply overwritten). */
    p->head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);

    h->ann_d_in = p->d_in;
    h->ann_dtype = p->dtype;
    h->ann_flags = p->lossless_wait_us ? RING_ANN_LOSSLESS : 0;
    h->ann_lossless_wait_us = p->lossless_wait_us;
    h->ann_hook_id = p->hook_id;
    memset(h->ann_model, 0, sizeof h->ann_model);
    memset(h->ann_hook, 0, sizeof h->ann_hook);
    memcpy(h->ann_model, p->model, strlen(p->model));
    memcpy(h->ann_hook, p->hook, strlen(p->hook));
    __atomic_store_n(&h->lost_consumer_down, p->lost_consumer_down, __ATOMIC_RELAXED);
    if (p->slot_rows_n != h->slots) {
        free(p->slot_rows);
        p->slot_rows = calloc(h->slots, sizeof *p->slot_rows);
        p->slot_rows_n = p->slot_rows ? h->slots : 0;
    } else {
        memset(p->slot_rows, 0, (size_t)h->slots * sizeof *p->slot_rows);
    }
    __atomic_store_n(&h->producer_pid, (uint32_t)getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&h->heartbeat_ns, ring_now_ns(), __ATOMIC_RELAXED);
    p->my_gen = __atomic_load_n(&h->announce_gen, __ATOMIC_RELAXED) + 1;
    if (p->my_gen == 0)
        p->my_gen = 1;
    __atomic_store_n(&h->announce_gen, p->my_gen, __ATOMIC_SEQ_CST);
    p->state = P_PENDING;
    p->reset_pending = true;
    p->reset_seq = UINT64_MAX;
    p->ended_n = 0;
    wake_consumer(h);
    return CONNECT_OK;
}

/* PENDING -> ACCEPTED/REFUSED once the consumer has judged our announcement. */
static void poll_judgement(saemon_producer *p)
{
    if (p->state != P_PENDING)
        return;
    if (__atomic_load_n(&p->h->judged_gen, __ATOMIC_ACQUIRE) != p->my_gen)
        return;
    if (p->h->judgement == RING_JUDGE_ACCEPTED) {
        p->state = P_ACCEPTED;
        p->refuse_reason[0] = 0;
    } else {
        p->state = P_REFUSED;
        memcpy(p->refuse_reason, p->h->refuse_reason, sizeof p->refuse_reason);
        p->refuse_reason[sizeof p->refuse_reason - 1] = 0;
        p->refusal_unreported = true;
    }
}

/* Does a live consumer hold lock byte 1 (it dies with its process)? */
static bool consumer_alive(const saemon_producer *p)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
    if (fcntl(p->fd, F_OFD_GETLK, &fl) != 0)
        return true; /* cannot tell: assume alive */
    return fl.l_type != F_UNLCK;
}

/* The consumer died: what it had not consumed is lost. */
static void abandon_unconsumed(saemon_producer *p)
{
    uint64_t tail = __atomic_load_n(&p->h->tail, __ATOMIC_ACQUIRE);
    if (!p->slot_rows || p->head < tail || p->head - tail > p->h->slots)
        return;
    for (uint64_t seq = tail; seq < p->head; seq++)
        p->lost_consumer_down += p->slot_rows[seq & (p->slot_rows_n - 1)];
}

/* Is the segment we hold still the one behind the name, with a consumer? */
static bool segment_current(saemon_producer *p)
{
    if (__atomic_load_n(&p->h->state, __ATOMIC_ACQUIRE) != RING_STATE_READY)
        return false;
    if (!consumer_alive(p)) {
        abandon_unconsumed(p);
        return false; /* stop writing into a ring nobody reads; wait for the next consumer */
    }
    int fd = shm_open(p->shm_name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && st.st_dev == p->dev && st.st_ino == p->ino;
    close(fd);
    return same;
}

/* The consumer of the segment we hold is alive: it refreshed its heartbeat
 * recently or consumed since the previous check. A consumer that replaces
 * this one retires the segment first (state != READY), so while this holds
 * the name need not be looked up: no system call on the model's thread. */
static bool consumer_live(saemon_producer *p, uint64_t now)
{
    const ring_header *h = p->h;
    if (__atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != RING_STATE_READY)
        return false;
    uint64_t hb = __atomic_load_n(&h->consumer_heartbeat_ns, __ATOMIC_RELAXED);
    uint64_t tail = __atomic_load_n(&h->tail, __ATOMIC_RELAXED);
    bool moved = tail != p->seen_tail;
    p->seen_tail = tail;
    /* a full ring whose tail stands still may have a dead consumer behind a
     * heartbeat not yet stale: then look (the lock byte) before trusting it */
    bool stuck = p->head - tail >= h->slots;
    return moved || (!stuck && hb && hb + CONSUMER_FRESH_NS > now);
}

static void eos_clear(saemon_producer *p);
static void requeue_request_id(uint64_t stream, const char *id, void *user);

/* Periodic housekeeping: heartbeat, judgement, consumer restarts. */
static void maintain(saemon_producer *p, uint64_t now)
{
    if (p->h) {
        __atomic_store_n(&p->h->heartbeat_ns, now, __ATOMIC_RELAXED);
        poll_judgement(p);
    }
    if (now < p->next_check_ns)
        return;
    p->next_check_ns = now + RECHECK_NS;
    if (p->state != P_DISCONNECTED && (consumer_live(p, now) || segment_current(p)))
        return;
    disconnect(p);
    eos_clear(p); /* ends for a consumer that is gone: the next one never saw those streams */
    int c = connect_segment(p, NULL, 0);
    if (c == CONNECT_VERSION && !p->version_mismatch) {
        p->version_mismatch = true; /* reported once, until a ring of our version appears */
        p->refusal_unreported = true;
    }
    if (c == CONNECT_OK) {
        p->version_mismatch = false;
        p->stats.reattaches++;
        /* Unconsumed frames of the old ring are gone and the new consumer has
         * not seen the streams' beginnings: every open stream has a gap. */
        if (p->stats.frames_published || p->stats.frames_dropped)
            p->gap_all_pending = true;
        /* ... nor their request ids: send them again, before any later frame */
        request_map_each(&p->requests, requeue_request_id, p);
        poll_judgement(p);
    }
}

/* ---- verdict freshness ---- */

static uint64_t evaluated_frames(const saemon_producer *p)
{
    return __atomic_load_n(&p->h->evaluated, __ATOMIC_ACQUIRE);
}

/* Forget ends saemon has evaluated (their verdicts were cleared). */
static void ended_prune(saemon_producer *p)
{
    if (!p->ended_n || !p->h)
        return;
    uint64_t ev = evaluated_frames(p);
    while (p->ended_n && p->ended[p->ended_first].after <= ev) {
        p->ended_first = (p->ended_first + 1) % ENDED_MAX;
        p->ended_n--;
    }
}

static void ended_push(saemon_producer *p, uint64_t stream, uint64_t after)
{
    ended_prune(p);
    if (p->ended_n == ENDED_MAX) { /* the oldest end is the likeliest evaluated already */
        p->ended_first = (p->ended_first + 1) % ENDED_MAX;
        p->ended_n--;
    }
    uint32_t i = (p->ended_first + p->ended_n) % ENDED_MAX;
    p->ended[i].stream = stream;
    p->ended[i].after = after;
    p->ended_n++;
}

/* The verdict word of `stream`, or 0 while it may belong to someone else:
 * before saemon evaluated this producer's first frame, or (after
 * end_stream) the previous sequence's end. */
static int fresh_verdict(saemon_producer *p, uint64_t stream)
{
    if (!p->h)
        return 0;
    uint64_t ev = evaluated_frames(p);
    if (ev <= p->reset_seq)
        return 0;
    ended_prune(p);
    for (uint32_t n = 0; n < p->ended_n; n++)
        if (p->ended[(p->ended_first + n) % ENDED_MAX].stream == stream)
            return 0;
    return ring_verdict_lookup(p->verdicts, p->h->verdict_entries, stream);
}

/* ---- publishing ---- */

static void count_drop(saemon_producer *p, uint64_t stream, uint32_t n_rows)
{
    if (p->state == P_DISCONNECTED)
        p->lost_consumer_down += n_rows;
    p->dropped_pending++;
    p->stats.frames_dropped++;
    p->stats.tokens_dropped += n_rows;
    gap_add(p, stream);
    ring_header *h = p->h;
    if (h && p->state != P_REFUSED) {
        /* single writer: plain read-modify-write, atomic stores for the reader */
        __atomic_store_n(&h->frames_dropped, h->frames_dropped + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&h->tokens_dropped, h->tokens_dropped + n_rows, __ATOMIC_RELAXED);
        __atomic_store_n(&h->tokens_produced, h->tokens_produced + n_rows, __ATOMIC_RELAXED);
    }
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static bool has_room(const saemon_producer *p)
{
    return p->head - __atomic_load_n(&p->h->tail, __ATOMIC_ACQUIRE) < p->h->slots;
}

static void write_frame(saemon_producer *p, uint64_t stream, uint64_t token, const void *rows, uint32_t n_rows,
                        uint16_t flags);

/* Publish the end-of-stream frames that found the ring full, oldest first,
 * as long as there is room. */
static void flush_eos(saemon_producer *p)
{
    while (p->eos_n && has_room(p)) {
        struct eos_entry *e = &p->eos[p->eos_first];
        if (e->rid)
            write_frame(p, e->stream, e->token, e->rid, 0, FRAME_FLAG_REQUEST_ID);
        else
            write_frame(p, e->stream, e->token, NULL, 0, FRAME_FLAG_END_OF_STREAM);
        free(e->rid);
        e->rid = NULL;
        p->eos_first = (p->eos_first + 1) % p->eos_cap;
        p->eos_n--;
    }
    p->stats.eos_pending = p->eos_n;
}

/* Forget the pending control frames (their consumer is gone). */
static void eos_clear(saemon_producer *p)
{
    for (uint32_t n = 0; n < p->eos_n; n++) {
        struct eos_entry *e = &p->eos[(p->eos_first + n) % p->eos_cap];
        free(e->rid);
        e->rid = NULL;
    }
    p->eos_n = 0;
    p->stats.eos_pending = 0;
}

/* Room in the pending-ends queue for one more (grown by doubling). */
static bool eos_reserve(saemon_producer *p)
{
    if (p->eos_n < p->eos_cap)
        return true;
    if (p->eos_cap >= EOS_PENDING_MAX)
        return false;
    uint32_t ncap = p->eos_cap ? p->eos_cap * 2 : 64;
    struct eos_entry *ne = malloc((size_t)ncap * sizeof *ne);
    if (!ne)
        return false;
    for (uint32_t n = 0; n < p->eos_n; n++) /* unwrap */
        ne[n] = p->eos[(p->eos_first + n) % p->eos_cap];
    free(p->eos);
    p->eos = ne;
    p->eos_cap = ncap;
    p->eos_first = 0;
    return true;
}

/* Room for one frame after the pending ends. */
static bool ready_for_frame(saemon_producer *p)
{
    flush_eos(p);
    return p->eos_n == 0 && has_room(p);
}

/* Wait (lossless mode) until the consumer frees a slot for a frame of
 * `n_rows` or the budget ends. A consumer that dies meanwhile, or is
 * replaced, is found as at any publish (maintain(), every RECHECK_NS) and
 * the frame goes to its successor, instead of waiting out the budget
 * against a ring nobody reads and then dropping it. */
static bool wait_for_space(saemon_producer *p, uint64_t start_ns, uint32_t n_rows)
{
    uint64_t deadline = start_ns + (uint64_t)p->lossless_wait_us * 1000u;
    for (unsigned spin = 0;; spin++) {
        if (p->state == P_REFUSED)
            return false;
        bool attached = p->state != P_DISCONNECTED;
        if (attached && ready_for_frame(p))
            return n_rows <= p->rows_per_frame; /* a successor's slots may be smaller */
        uint64_t now = ring_now_ns();
        if (now >= deadline)
            return false;
        if (spin < 64 && attached) {
            cpu_relax();
        } else {
            maintain(p, now);
            if (p->h)
                wake_consumer(p->h);
            struct timespec ts = {0, 20000}; /* 20 µs */
            nanosleep(&ts, NULL);
        }
    }
}

static int publish_frame(saemon_producer *p, uint64_t stream, uint64_t token, const void *rows,
                         uint32_t n_rows, uint16_t flags, uint64_t now)
{
    if (!ready_for_frame(p) && !(p->lossless_wait_us && wait_for_space(p, now, n_rows))) {
        bool control = flags & (FRAME_FLAG_END_OF_STREAM | FRAME_FLAG_REQUEST_ID);
        char *rid = flags & FRAME_FLAG_REQUEST_ID ? strdup(rows) : NULL;
        if (control && n_rows == 0 && (rid || !(flags & FRAME_FLAG_REQUEST_ID)) && eos_reserve(p)) {
            /* never lost: published before the next frame, heartbeat or detach */
            uint32_t i = (p->eos_first + p->eos_n) % p->eos_cap;
            p->eos[i].stream = stream;
            p->eos[i].token = token;
            p->eos[i].rid = rid;
            p->eos_n++;
            p->stats.eos_pending = p->eos_n;
            return SAEMON_PRODUCER_OK;
        }
        free(rid);
        if (flags & FRAME_FLAG_REQUEST_ID) {
            p->stats.request_ids_lost++;
            return SAEMON_PRODUCER_DROPPED; /* no rows lost: no gap */
        }
        if (flags & FRAME_FLAG_END_OF_STREAM)
            p->stats.eos_lost++;
        count_drop(p, stream, n_rows);
        return SAEMON_PRODUCER_DROPPED;
    }
    write_frame(p, stream, token, rows, n_rows, flags);
    return SAEMON_PRODUCER_OK;
}

/* Write and publish one frame; the caller made sure there is room. */
static void write_frame(saemon_producer *p, uint64_t stream, uint64_t token, const void *rows, uint32_t n_rows,
                        uint16_t flags)
{
    ring_header *h = p->h;
    frame_header fh = {
        .magic = FRAME_MAGIC,
        .version = FRAME_VERSION,
        .flags = flags,
        .seq = p->head,
        .stream = stream,
        .token = token,
        .hook_id = p->hook_id,
        .d_in = p->d_in,
        .n_rows = n_rows,
        .dtype = (uint8_t)p->dtype,
        .checksum_kind = FRAME_CSUM_CRC32C,
        .dropped = p->dropped_pending > UINT32_MAX ? UINT32_MAX : (uint32_t)p->dropped_pending,
    };
    if (gap_take(p, stream))
        fh.flags |= FRAME_FLAG_GAP;
    if (p->gap_all_pending)
        fh.flags |= FRAME_FLAG_GAP_ALL;
    if (p->reset_pending) {
        fh.flags |= FRAME_FLAG_RESET;
        p->reset_pending = false;
        __atomic_store_n(&p->reset_seq, p->head, __ATOMIC_RELAXED);
    }
    if (flags & FRAME_FLAG_END_OF_STREAM)
        ended_push(p, stream, p->head + 1);
    size_t bytes = (size_t)n_rows * p->row_bytes;
    if (flags & FRAME_FLAG_REQUEST_ID) { /* rows = the id; the caller checked it fits */
        fh.aux = (uint16_t)strlen(rows);
        bytes = fh.aux + 1u;
    }
    uint8_t *slot = p->slots + (size_t)(p->head & (h->slots - 1)) * h->slot_bytes;
    if (p->slot_rows)
        p->slot_rows[p->head & (h->slots - 1)] = n_rows;
    /* Copy first, then checksum the slot's bytes while they are in L1: the
     * rows are read from memory once (the source is often cold at low token
     * rates), and the checksum covers exactly what the consumer will read. */
    if (bytes)
        memcpy(slot + FRAME_HEADER_BYTES, rows, bytes);
    uint32_t crc = ring_crc32c(0, (const uint8_t *)&fh + FRAME_CSUM_HEADER_OFFSET, FRAME_CSUM_HEADER_BYTES);
    fh.checksum = ring_crc32c(crc, slot + FRAME_HEADER_BYTES, bytes);
    memcpy(slot + 8, (const uint8_t *)&fh + 8, FRAME_HEADER_BYTES - 8);
    /* Publication: the commit word, then head, both with release semantics.
     * A producer killed before this point leaves the slot invisible. */
    __atomic_store_n((uint64_t *)slot, p->head + 1, __ATOMIC_RELEASE);
    p->head++;
    __atomic_store_n(&h->head, p->head, __ATOMIC_SEQ_CST);
    __atomic_store_n(&h->frames_published, h->frames_published + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->tokens_produced, h->tokens_produced + n_rows, __ATOMIC_RELAXED);
    p->dropped_pending = 0;
    p->gap_all_pending = false;
    p->stats.frames_published++;
    p->stats.tokens_published += n_rows;
    wake_consumer(h);
}

static int publish_rows(saemon_producer *p, uint64_t stream, uint64_t token, const void *rows,
                        uint32_t n_rows, bool end)
{
    if (!p || stream >= RING_STREAM_LIMIT || (n_rows && !rows) || (!n_rows && !end))
        return SAEMON_PRODUCER_EINVAL;
    uint64_t now = ring_now_ns();
    maintain(p, now);
    uint32_t per = p->rows_per_frame;
    if (p->state == P_DISCONNECTED || p->state == P_REFUSED || per == 0) {
        /* count the frames the rows would have taken */
        uint32_t done = 0;
        do {
            uint32_t n = per == 0 || n_rows - done < per ? n_rows - done : per;
            count_drop(p, stream, n);
            done += n;
        } while (done < n_rows);
        return SAEMON_PRODUCER_DROPPED;
    }
    int rc = SAEMON_PRODUCER_OK;
    const uint8_t *src = rows;
    uint32_t done = 0;
    do {
        uint32_t n = n_rows - done < per ? n_rows - done : per;
        bool last = done + n == n_rows;
        uint16_t flags = end && last ? FRAME_FLAG_END_OF_STREAM : 0;
        if (publish_frame(p, stream, token + done, src ? src + (size_t)done * p->row_bytes : NULL, n,
                          flags, now)
            != SAEMON_PRODUCER_OK)
            rc = SAEMON_PRODUCER_DROPPED;
        done += n;
    } while (done < n_rows);
    return rc;
}

/* Unlock; then tell the application (once) about a refusal found since:
 * outside the mutex, so the callback may call the producer. */
static void unlock_and_report(saemon_producer *p)
{
    char reason[sizeof p->refuse_reason];
    bool tell = p->refusal_unreported && p->on_refused;
    p->refusal_unreported = false;
    if (tell)
        memcpy(reason, p->refuse_reason, sizeof reason);
    pthread_mutex_unlock(&p->mu);
    if (tell)
        p->on_refused(reason, p->on_refused_user);
}

int saemon_producer_publish(saemon_producer *p, uint64_t stream, uint64_t token, const void *rows,
                            uint32_t n_rows)
{
    if (!p || n_rows == 0)
        return SAEMON_PRODUCER_EINVAL;
    pthread_mutex_lock(&p->mu);
    int rc = publish_rows(p, stream, token, rows, n_rows, false);
    unlock_and_report(p);
    return rc;
}

int saemon_producer_end_stream(saemon_producer *p, uint64_t stream, uint64_t token)
{
    if (!p)
        return SAEMON_PRODUCER_EINVAL;
    pthread_mutex_lock(&p->mu);
    int rc = publish_rows(p, stream, token, NULL, 0, true);
    if (rc != SAEMON_PRODUCER_EINVAL)
        request_map_forget(&p->requests, stream);
    unlock_and_report(p);
    return rc;
}

/* Does a request id frame for `id` fit a slot of the current segment? */
static bool request_id_fits(const saemon_producer *p, const char *id)
{
    return !p->h || strlen(id) + 1 <= p->h->slot_bytes - FRAME_HEADER_BYTES;
}

/* Reattached: the new consumer learns the open requests' ids first. */
static void requeue_request_id(uint64_t stream, const char *id, void *user)
{
    saemon_producer *p = user;
    char *copy = request_id_fits(p, id) && eos_reserve(p) ? strdup(id) : NULL;
    if (!copy) {
        p->stats.request_ids_lost++;
        return;
    }
    uint32_t i = (p->eos_first + p->eos_n) % p->eos_cap;
    p->eos[i] = (struct eos_entry){.stream = stream, .token = 0, .rid = copy};
    p->eos_n++;
    p->stats.eos_pending = p->eos_n;
}

int saemon_producer_begin_request(saemon_producer *p, uint64_t stream, const char *request_id)
{
    if (!p || stream >= RING_STREAM_LIMIT || !ring_request_id_valid(request_id))
        return SAEMON_PRODUCER_EINVAL;
    pthread_mutex_lock(&p->mu);
    maintain(p, ring_now_ns());
    int rc = SAEMON_PRODUCER_OK;
    if (!request_map_set(&p->requests, stream, request_id))
        p->stats.request_ids_lost++; /* sent, but not answerable by id here */
    if (p->state == P_REFUSED) {
        rc = SAEMON_PRODUCER_DROPPED;
    } else if (p->state == P_DISCONNECTED || p->rows_per_frame == 0) {
        /* sent once a consumer serves the ring (maintain() requeues the ids) */
    } else if (!request_id_fits(p, request_id)) {
        p->stats.request_ids_lost++;
        rc = SAEMON_PRODUCER_DROPPED;
    } else {
        rc = publish_frame(p, stream, 0, request_id, 0, FRAME_FLAG_REQUEST_ID, ring_now_ns());
    }
    unlock_and_report(p);
    return rc;
}

int saemon_producer_get_request_stream(const saemon_producer *cp, const char *request_id, uint64_t *stream)
{
    saemon_producer *p = (saemon_producer *)cp; /* locks only */
    if (!p || !request_id || !stream)
        return SAEMON_PRODUCER_EINVAL;
    pthread_mutex_lock(&p->mu);
    bool known = request_map_stream(&p->requests, request_id, stream);
    pthread_mutex_unlock(&p->mu);
    return known ? SAEMON_PRODUCER_OK : SAEMON_PRODUCER_EINVAL;
}

int saemon_producer_get_request_verdict(const saemon_producer *p, const char *request_id)
{
    uint64_t stream;
    int rc = saemon_producer_get_request_stream(p, request_id, &stream);
    return rc == SAEMON_PRODUCER_OK ? saemon_producer_get_verdict(p, stream) : rc;
}

int saemon_producer_request_verdict_wait(saemon_producer *p, const char *request_id, uint32_t wait_us)
{
    uint64_t stream;
    int rc = saemon_producer_get_request_stream(p, request_id, &stream);
    return rc == SAEMON_PRODUCER_OK ? saemon_producer_verdict_wait(p, stream, wait_us) : rc;
}

/* Heartbeat, judgement, re-attach, pending ends: under p->mu. */
static void heartbeat_locked(saemon_producer *p)
{
    maintain(p, ring_now_ns());
    if (p->state == P_ACCEPTED || p->state == P_PENDING)
        flush_eos(p);
}

void saemon_producer_heartbeat(saemon_producer *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    heartbeat_locked(p);
    unlock_and_report(p);
}

int saemon_producer_get_verdict(const saemon_producer *cp, uint64_t stream)
{
    saemon_producer *p = (saemon_producer *)cp; /* locks only */
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int v = fresh_verdict(p, stream);
    pthread_mutex_unlock(&p->mu);
    return v;
}

uint64_t saemon_producer_in_flight(const saemon_producer *p)
{
    if (!p || !p->h)
        return 0;
    uint64_t tail = __atomic_load_n(&p->h->tail, __ATOMIC_ACQUIRE);
    return p->head > tail ? p->head - tail : 0;
}

/* Sleep on verdict_wake until `evaluated` reaches target or the deadline
 * passes (Dekker hand-off with ring_set_evaluated in runtime/ring_verdict.c). */
static bool wait_evaluated(saemon_producer *p, uint64_t target, uint64_t deadline)
{
    ring_header *h = p->h;
    for (unsigned spin = 0;; spin++) {
        if (__atomic_load_n(&h->evaluated, __ATOMIC_ACQUIRE) >= target)
            return true;
        uint64_t now = ring_now_ns();
        if (now >= deadline)
            return false;
        if (spin < 256) { /* the consumer usually answers within microseconds */
            cpu_relax();
            continue;
        }
        uint32_t seen = __atomic_load_n(&h->verdict_wake, __ATOMIC_ACQUIRE);
        __atomic_store_n(&h->verdict_waiters, 1u, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&h->evaluated, __ATOMIC_SEQ_CST) < target) {
            uint64_t left = deadline - now;
            struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
            syscall(SYS_futex, &h->verdict_wake, FUTEX_WAIT, seen, &ts, NULL, 0);
        }
        __atomic_store_n(&h->verdict_waiters, 0u, __ATOMIC_RELAXED);
    }
}

int saemon_producer_verdict_wait(saemon_producer *p, uint64_t stream, uint32_t wait_us)
{
    if (!p)
        return SAEMON_PRODUCER_EINVAL;
    pthread_mutex_lock(&p->mu);
    int v;
    if (p->state != P_ACCEPTED && p->state != P_PENDING) {
        v = SAEMON_PRODUCER_ETIMEDOUT; /* nobody evaluates: no verdict can be trusted */
    } else {
        uint64_t target = p->head; /* every frame this producer has published */
        wake_consumer(p->h);       /* a sleeping consumer would otherwise see it up to 1 ms late */
        bool done = wait_evaluated(p, target, ring_now_ns() + (uint64_t)wait_us * 1000u);
        v = done && p->eos_n == 0 ? fresh_verdict(p, stream) : SAEMON_PRODUCER_ETIMEDOUT;
    }
    if (v == SAEMON_PRODUCER_ETIMEDOUT)
        p->stats.verdict_timeouts++;
    unlock_and_report(p);
    return v;
}

void saemon_producer_get_stats(const saemon_producer *cp, saemon_producer_stats *out)
{
    saemon_producer *p = (saemon_producer *)cp; /* locks only */
    if (!p || !out)
        return;
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    out->connected = p->state == P_PENDING || p->state == P_ACCEPTED;
    out->refused = p->state == P_REFUSED;
    out->tokens_lost_consumer_down = p->lost_consumer_down;
    out->refused = out->refused || p->version_mismatch;
    if (out->refused)
        memcpy(out->refuse_reason, p->refuse_reason, sizeof out->refuse_reason);
    pthread_mutex_unlock(&p->mu);
}

/* ---- the library heartbeat thread ---- */

/* Every hb_ms (every 1 ms while end-of-stream frames are pending): refresh
 * heartbeat_ns, poll the judgement, re-attach after a consumer restart and
 * publish pending end-of-stream frames, so saemon sees the process alive
 * while the model is idle (docs/ring.md). Between heartbeats, write ahead of
 * the model's thread (pretouch.h): every 5-10 ms while frames flow, every
 * 100 ms while the ring is idle. */
static void *heartbeat_main(void *arg)
{
    saemon_producer *p = arg;
    uint64_t next_beat = 0;
    pthread_mutex_lock(&p->hb_mu);
    while (!p->hb_stop) {
        uint64_t now = ring_now_ns();
        if (now >= next_beat) {
            pthread_mutex_unlock(&p->hb_mu);
            pthread_mutex_lock(&p->mu);
            heartbeat_locked(p);
            /* pending end-of-stream frames: look for room every millisecond; an
             * announcement not judged yet: look every millisecond (a refusal is
             * known before the model's first forward); no ring yet: every 100 ms */
            uint32_t ms = p->eos_n || p->state == P_PENDING ? 1
                        : p->state == P_DISCONNECTED && p->hb_ms > 100 ? 100 : p->hb_ms;
            if (p->refusal_unreported)
                unlock_and_report(p);
            else
                pthread_mutex_unlock(&p->mu);
            pthread_mutex_lock(&p->hb_mu);
            now = ring_now_ns();
            next_beat = now + (uint64_t)ms * 1000000u;
        }
        uint64_t wake = next_beat, touch = pretouch_run(&p->touch, now, NULL);
        if (touch && touch < wake)
            wake = touch;
        struct timespec until = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
        while (!p->hb_stop && pthread_cond_timedwait(&p->stop_cv, &p->hb_mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&p->hb_mu);
    return NULL;
}

static bool start_heartbeat(saemon_producer *p, int heartbeat_ms)
{
    if (heartbeat_ms < 0)
        return true;
    p->hb_ms = heartbeat_ms == 0 ? HEARTBEAT_MS_DEFAULT : (uint32_t)heartbeat_ms;
    p->hb_running = pthread_create(&p->hb_thread, NULL, heartbeat_main, p) == 0;
    return p->hb_running;
}

static void stop_heartbeat(saemon_producer *p)
{
    if (p->hb_running) {
        pthread_mutex_lock(&p->hb_mu);
        p->hb_stop = true;
        pthread_cond_signal(&p->stop_cv);
        pthread_mutex_unlock(&p->hb_mu);
        pthread_join(p->hb_thread, NULL);
        p->hb_running = false;
    }
}

/* ---- attach / detach ---- */

static int check_options(const saemon_producer_options *o, char *msg, size_t len)
{
    if (!o || !ring_name_valid(o->ring)) {
        set_msg(msg, len, "ring name must be 1-%d characters of [A-Za-z0-9._-]", RING_NAME_MAX);
        return SAEMON_PRODUCER_EINVAL;
    }
    if (o->hook && strlen(o->hook) >= RING_TEXT_MAX) {
        set_msg(msg, len, "hook name must be shorter than %d bytes", RING_TEXT_MAX);
        return SAEMON_PRODUCER_EINVAL;
    }
    if (o->model && strlen(o->model) >= RING_TEXT_MAX) {
        set_msg(msg, len, "model id must be shorter than %d bytes", RING_TEXT_MAX);
        return SAEMON_PRODUCER_EINVAL;
    }
    if (o->d_in == 0 || o->d_in > (1u << 24) || ring_dtype_size(o->dtype) == 0) {
        set_msg(msg, len, "d_in must be 1..2^24 and dtype f32, f16 or bf16");
        return SAEMON_PRODUCER_EINVAL;
    }
    return SAEMON_PRODUCER_OK;
}

/* Everything a producer owns but its segment (disconnect() first). */
static void producer_free(saemon_producer *p)
{
    pretouch_destroy(&p->touch);
    pthread_cond_destroy(&p->stop_cv);
    pthread_mutex_destroy(&p->hb_mu);
    pthread_mutex_destroy(&p->mu);
    eos_clear(p);
    free(p->eos);
    free(p->slot_rows);
    request_map_free(&p->requests);
    free(p);
}

int saemon_producer_attach(const saemon_producer_options *opt, saemon_producer **out, char *msg,
                           size_t msg_len)
{
    if (out)
        *out = NULL;
    set_msg(msg, msg_len, "ok");
    int rc = check_options(opt, msg, msg_len);
    if (rc != SAEMON_PRODUCER_OK || !out)
        return rc ? rc : SAEMON_PRODUCER_EINVAL;
    saemon_producer *p = calloc(1, sizeof *p);
    if (!p) {
        set_msg(msg, msg_len, "out of memory");
        return SAEMON_PRODUCER_ESYS;
    }
    p->fd = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->hb_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    pretouch_init(&p->touch);
    p->reset_seq = UINT64_MAX;
    snprintf(p->shm_name, sizeof p->shm_name, "%s%s", RING_SHM_PREFIX, opt->ring);
    snprintf(p->model, sizeof p->model, "%s", opt->model ? opt->model : "");
    p->hook_from_consumer = !opt->hook || !*opt->hook;
    snprintf(p->hook, sizeof p->hook, "%s", p->hook_from_consumer ? "any" : opt->hook);
    p->hook_id = ring_fnv1a32(p->hook);
    p->d_in = opt->d_in;
    p->dtype = opt->dtype;
    p->row_bytes = (size_t)opt->d_in * ring_dtype_size(opt->dtype);
    p->lossless_wait_us = opt->lossless_wait_us;
    p->on_refused = opt->on_refused;
    p->on_refused_user = opt->on_refused_user;
    p->requests.by_id.by_id = true;

    int c = connect_segment(p, msg, msg_len);
    if (c == CONNECT_VERSION) {
        producer_free(p);
        return SAEMON_PRODUCER_EREFUSED;
    }
    if (c == CONNECT_BUSY || c == CONNECT_SYS) {
        producer_free(p);
        return c == CONNECT_BUSY ? SAEMON_PRODUCER_EBUSY : SAEMON_PRODUCER_ESYS;
    }
    p->next_check_ns = ring_now_ns() + RECHECK_NS;
    int wait_ms = opt->handshake_timeout_ms == 0 ? 1000 : opt->handshake_timeout_ms;
    if (c == CONNECT_OK && wait_ms > 0) {
        uint64_t deadline = ring_now_ns() + (uint64_t)wait_ms * 1000000u;
        while (p->state == P_PENDING && ring_now_ns() < deadline) {
            struct timespec ts = {0, 200000}; /* 0.2 ms */
            nanosleep(&ts, NULL);
            poll_judgement(p);
        }
        if (p->state == P_REFUSED) {
            set_msg(msg, msg_len, "saemon refused the producer on ring %s: %s", opt->ring,
                    p->refuse_reason);
            disconnect(p);
            producer_free(p);
            return SAEMON_PRODUCER_EREFUSED;
        }
    }
    p->refusal_unreported = false; /* attach() itself reports what it saw */
    if (!start_heartbeat(p, opt->heartbeat_ms)) {
        set_msg(msg, msg_len, "ring %s: cannot start the heartbeat thread", opt->ring);
        disconnect(p);
        producer_free(p);
        return SAEMON_PRODUCER_ESYS;
    }
    if (c == CONNECT_ABSENT)
        set_msg(msg, msg_len, "ring %s not served yet: frames are dropped (and counted) until saemon starts",
                opt->ring);
    else if (p->state == P_PENDING)
        set_msg(msg, msg_len, "ring %s: saemon has not answered the announcement yet", opt->ring);
    *out = p;
    return SAEMON_PRODUCER_OK;
}

void saemon_producer_detach(saemon_producer *p)
{
    if (!p)
        return;
    stop_heartbeat(p);
    if (p->h && p->eos_n && p->state == P_ACCEPTED) {
        /* pending ends go out while the consumer keeps making room; give up
         * after 1 s without progress (a consumer that stopped reading) */
        uint64_t deadline = ring_now_ns() + 1000000000u;
        uint32_t left = p->eos_n;
        while (!ready_for_frame(p) && ring_now_ns() < deadline && consumer_alive(p)) {
            if (p->eos_n < left) {
                left = p->eos_n;
                deadline = ring_now_ns() + 1000000000u;
            }
            wake_consumer(p->h);
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        p->stats.eos_lost += p->eos_n;
    }
    if (p->h)
        __atomic_store_n(&p->h->producer_pid, 0u, __ATOMIC_RELAXED);
    disconnect(p);
    producer_free(p);
}
