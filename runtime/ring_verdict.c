/* The per-stream verdict back-channel: a table of 64-bit words in the shared
 * segment, (stream + 1) << 8 | severity, written only by the consumer (under
 * its lock), read lock-free by the producer (ring_verdict_lookup). */
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/ring_internal.h"

const char *saemon_verdict_name(saemon_verdict v)
{
    switch (v) {
    case SAEMON_VERDICT_NONE: return "none";
    case SAEMON_VERDICT_INFO: return "info";
    case SAEMON_VERDICT_WARNING: return "warning";
    case SAEMON_VERDICT_CRITICAL: return "critical";
    case SAEMON_VERDICT_BLOCK: return "block";
    }
    return "unknown";
}

int saemon_verdict_parse(const char *name)
{
    static const struct { const char *name; saemon_verdict v; } names[] = {
        {"none", SAEMON_VERDICT_NONE},         {"info", SAEMON_VERDICT_INFO},
        {"warning", SAEMON_VERDICT_WARNING},   {"warn", SAEMON_VERDICT_WARNING},
        {"critical", SAEMON_VERDICT_CRITICAL}, {"error", SAEMON_VERDICT_CRITICAL},
        {"block", SAEMON_VERDICT_BLOCK},
    };
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0)
            return (int)names[i].v;
    return -1;
}

/* Store `word` at e (release: readers see the whole word or the old one). */
static void put(uint64_t *e, uint64_t word)
{
    __atomic_store_n(e, word, __ATOMIC_RELEASE);
}

static void count_eviction(saemon_ring *r, unsigned severity)
{
    __atomic_add_fetch(&r->verdicts_evicted[severity], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->h->verdict_evictions, 1, __ATOMIC_RELAXED);
}

/* Insert or raise. When the stream's 16-word window is full, the entry of the
 * lowest severity goes (ended streams were cleared already, see
 * saemon_ring_end_verdict); a verdict never displaces one of equal or higher
 * severity, so a live block is never evicted: a block that finds 16 blocks is
 * itself the one counted as evicted. */
void saemon_ring_set_verdict(saemon_ring *r, uint64_t stream, saemon_verdict severity)
{
    if (!r || !r->verdicts || stream >= RING_STREAM_LIMIT || severity <= SAEMON_VERDICT_NONE)
        return;
    if (severity > SAEMON_VERDICT_BLOCK)
        severity = SAEMON_VERDICT_BLOCK;
    uint64_t key = stream + 1;
    uint64_t word = key << 8 | (uint64_t)severity;
    uint32_t mask = r->verdict_entries - 1;
    uint32_t h = (uint32_t)ring_hash64(stream) & mask;
    uint64_t *free_slot = NULL, *lowest = NULL;
    unsigned lowest_sev = 0;
    pthread_mutex_lock(&r->lock);
    for (uint32_t i = 0; i < RING_VERDICT_WINDOW; i++) {
        uint64_t *e = &r->verdicts[(h + i) & mask];
        uint64_t w = __atomic_load_n(e, __ATOMIC_RELAXED);
        if (w != 0 && w != RING_VERDICT_TOMBSTONE && (w >> 8) == key) {
            if ((w & 0xff) < (uint64_t)severity)
                put(e, word);
            pthread_mutex_unlock(&r->lock);
            return;
        }
        if (w == 0 || w == RING_VERDICT_TOMBSTONE) {
            if (!free_slot)
                free_slot = e;
            if (w == 0)
                break; /* the key is not further on */
            continue;
        }
        unsigned sev = (unsigned)(w & 0xff);
        if (!lowest || sev < lowest_sev) {
            lowest = e;
            lowest_sev = sev > SAEMON_VERDICT_BLOCK ? SAEMON_VERDICT_BLOCK : sev;
        }
    }
    if (free_slot) {
        put(free_slot, word);
    } else if (lowest_sev < (unsigned)severity) {
        count_eviction(r, lowest_sev);
        put(lowest, word);
    } else {
        count_eviction(r, (unsigned)severity); /* the newcomer is the lowest: it is the one lost */
    }
    pthread_mutex_unlock(&r->lock);
}

/* Tombstone the stream's entry; tombstones followed by an empty word become
 * empty again (nothing is stored beyond an empty word). */
void saemon_ring_end_verdict(saemon_ring *r, uint64_t stream)
{
    if (!r || !r->verdicts || stream >= RING_STREAM_LIMIT)
        return;
    uint64_t key = stream + 1;
    uint32_t mask = r->verdict_entries - 1;
    uint32_t h = (uint32_t)ring_hash64(stream) & mask;
    pthread_mutex_lock(&r->lock);
    for (uint32_t i = 0; i < RING_VERDICT_WINDOW; i++) {
        uint32_t at = (h + i) & mask;
        uint64_t w = __atomic_load_n(&r->verdicts[at], __ATOMIC_RELAXED);
        if (w == 0)
            break;
        if (w == RING_VERDICT_TOMBSTONE || (w >> 8) != key)
            continue;
        bool next_empty = __atomic_load_n(&r->verdicts[(at + 1) & mask], __ATOMIC_RELAXED) == 0;
        put(&r->verdicts[at], next_empty ? 0 : RING_VERDICT_TOMBSTONE);
        for (uint32_t j = (at - 1) & mask; next_empty && j != at; j = (j - 1) & mask) {
            if (__atomic_load_n(&r->verdicts[j], __ATOMIC_RELAXED) != RING_VERDICT_TOMBSTONE)
                break;
            put(&r->verdicts[j], 0);
        }
        break;
    }
    pthread_mutex_unlock(&r->lock);
}

void saemon_ring_clear_verdicts(saemon_ring *r)
{
    if (!r || !r->verdicts)
        return;
    pthread_mutex_lock(&r->lock);
    for (uint32_t i = 0; i < r->verdict_entries; i++)
        put(&r->verdicts[i], 0);
    pthread_mutex_unlock(&r->lock);
}

/* Producers waiting in saemon_producer_verdict_wait() sleep on verdict_wake
 * (Dekker hand-off as with `wake`: seq_cst store of `evaluated`, seq_cst
 * load of `verdict_waiters`, on both sides). */
void ring_set_evaluated(saemon_ring *r, uint64_t frames)
{
    ring_header *h = r->h;
    if (!h || frames <= r->evaluated)
        return;
    r->evaluated = frames;
    __atomic_store_n(&h->evaluated, frames, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&h->verdict_waiters, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&h->verdict_wake, 1, __ATOMIC_RELEASE);
        syscall(SYS_futex, &h->verdict_wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

void saemon_ring_evaluated(saemon_ring *r)
{
    if (r)
        ring_set_evaluated(r, r->tail);
}

saemon_verdict saemon_ring_get_verdict(saemon_ring *r, uint64_t stream)
{
    if (!r || !r->verdicts)
        return SAEMON_VERDICT_NONE;
    return (saemon_verdict)ring_verdict_lookup(r->verdicts, r->verdict_entries, stream);
}
