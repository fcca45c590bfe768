/* The per-stream verdict back-channel: a table of 64-bit words in the shared
 * segment, (stream + 1) << 8 | severity, written only by the consumer (under
 * its lock), read lock-free by the producer (ring_verdict_lookup). */
#include <string.h>
#include <strings.h>

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
    pthread_mutex_lock(&r->lock);
    for (uint32_t i = 0; i < RING_VERDICT_WINDOW; i++) {
        uint64_t *e = &r->verdicts[(h + i) & mask];
        uint64_t w = __atomic_load_n(e, __ATOMIC_RELAXED);
        if ((w >> 8) == key) {
            if ((w & 0xff) < (uint64_t)severity)
                __atomic_store_n(e, word, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&r->lock);
            return;
        }
        if (w == 0) {
            __atomic_store_n(e, word, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&r->lock);
            return;
        }
    }
    /* Window full: evict round-robin (the evicted stream reads as "none"). */
    uint64_t *e = &r->verdicts[(h + r->evict_cursor++ % RING_VERDICT_WINDOW) & mask];
    __atomic_store_n(e, word, __ATOMIC_RELEASE);
    __atomic_add_fetch(&r->h->verdict_evictions, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&r->lock);
}

saemon_verdict saemon_ring_get_verdict(saemon_ring *r, uint64_t stream)
{
    if (!r || !r->verdicts)
        return SAEMON_VERDICT_NONE;
    return (saemon_verdict)ring_verdict_lookup(r->verdicts, r->verdict_entries, stream);
}
