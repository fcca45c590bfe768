/* Per-stream rule state in an open-addressing hash map keyed by stream id.
 * It grows by doubling when a new stream appears; lookups never allocate. */
#ifndef SAEMON_MONITORS_STREAM_MAP_H
#define SAEMON_MONITORS_STREAM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rule_state {
    uint64_t held;        /* consecutive evaluations the condition was true, this one included */
    uint64_t cleared;     /* consecutive false evaluations while firing */
    uint64_t last_fire;   /* token of the last firing (valid when has_fired) */
    bool firing;          /* fired and not resolved yet */
    bool has_fired;
} rule_state;

typedef struct stream_slot {
    uint64_t id;
    uint64_t last_token;
    bool used;
} stream_slot;

typedef struct stream_map {
    size_t cap;   /* power of two */
    size_t count;
    size_t n_rules;
    size_t blob_size;   /* bytes of window / running-mean state per stream (multiple of 8) */
    stream_slot *slots;
    rule_state *states; /* [cap][n_rules] */
    unsigned char *blobs; /* [cap][blob_size] */
} stream_map;

bool stream_map_init(stream_map *m, size_t n_rules, size_t blob_size, size_t initial_cap);
/* Slot of stream `id`, inserted (with *is_new = true) if absent; SIZE_MAX when
 * growing failed. */
size_t stream_map_get(stream_map *m, uint64_t id, bool *is_new);
static inline rule_state *stream_map_states(stream_map *m, size_t slot)
{
    return m->states ? m->states + slot * m->n_rules : NULL; /* NULL: no enabled rules */
}
static inline unsigned char *stream_map_blob(stream_map *m, size_t slot)
{
    return m->blobs ? m->blobs + slot * m->blob_size : NULL;
}
/* Slot of stream `id`, or SIZE_MAX if absent (never allocates). */
size_t stream_map_find(const stream_map *m, uint64_t id);
/* Forget stream `id` (no-op if absent); other slots may move. */
void stream_map_remove(stream_map *m, uint64_t id);
void stream_map_free(stream_map *m);

#endif
