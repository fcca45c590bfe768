#include "monitors/stream_map.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t x) /* splitmix64 finaliser */
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static bool alloc_table(stream_map *m, size_t cap)
{
    if (cap > SIZE_MAX / sizeof(stream_slot) || (m->n_rules && cap > SIZE_MAX / m->n_rules / sizeof(rule_state)) ||
        (m->blob_size && cap > SIZE_MAX / m->blob_size))
        return false;
    stream_slot *slots = calloc(cap, sizeof *slots);
    rule_state *states = m->n_rules ? calloc(cap * m->n_rules, sizeof *states) : NULL;
    unsigned char *blobs = m->blob_size ? calloc(cap, m->blob_size) : NULL;
    if (!slots || (m->n_rules && !states) || (m->blob_size && !blobs)) {
        free(slots);
        free(states);
        free(blobs);
        return false;
    }
    m->slots = slots;
    m->states = states;
    m->blobs = blobs;
    m->cap = cap;
    return true;
}

bool stream_map_init(stream_map *m, size_t n_rules, size_t blob_size, size_t initial_cap)
{
    memset(m, 0, sizeof *m);
    m->n_rules = n_rules;
    m->blob_size = blob_size;
    size_t cap = 16;
    while (cap < initial_cap)
        cap *= 2;
    return alloc_table(m, cap);
}

static size_t probe(const stream_map *m, uint64_t id)
{
    size_t i = (size_t)mix(id) & (m->cap - 1);
    while (m->slots[i].used && m->slots[i].id != id)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static bool grow(stream_map *m)
{
    stream_map old = *m;
    if (old.cap > SIZE_MAX / 2 || !alloc_table(m, old.cap * 2)) {
        *m = old;
        return false;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].used)
            continue;
        size_t j = probe(m, old.slots[i].id);
        m->slots[j] = old.slots[i];
        if (m->n_rules)
            memcpy(stream_map_states(m, j), old.states + i * old.n_rules, m->n_rules * sizeof(rule_state));
        if (m->blob_size)
            memcpy(stream_map_blob(m, j), old.blobs + i * old.blob_size, m->blob_size);
    }
    free(old.slots);
    free(old.states);
    free(old.blobs);
    return true;
}

size_t stream_map_get(stream_map *m, uint64_t id, bool *is_new)
{
    size_t i = probe(m, id);
    *is_new = !m->slots[i].used;
    if (!*is_new)
        return i;
    if ((m->count + 1) * 2 > m->cap) { /* keep the load factor <= 1/2 */
        if (!grow(m))
            return SIZE_MAX;
        i = probe(m, id);
    }
    m->slots[i].used = true;
    m->slots[i].id = id;
    m->count++;
    return i;
}

size_t stream_map_find(const stream_map *m, uint64_t id)
{
    size_t i = probe(m, id);
    return m->slots[i].used ? i : SIZE_MAX;
}

static void move_slot(stream_map *m, size_t to, size_t from)
{
    m->slots[to] = m->slots[from];
    if (m->n_rules)
        memcpy(stream_map_states(m, to), stream_map_states(m, from), m->n_rules * sizeof(rule_state));
    if (m->blob_size)
        memcpy(stream_map_blob(m, to), stream_map_blob(m, from), m->blob_size);
}

/* Linear probing: deleting leaves no tombstone; later members of the probe
 * run shift back into the hole when their home slot allows it. */
void stream_map_remove(stream_map *m, uint64_t id)
{
    size_t hole = stream_map_find(m, id);
    if (hole == SIZE_MAX)
        return;
    size_t mask = m->cap - 1;
    for (size_t j = (hole + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
        size_t home = (size_t)mix(m->slots[j].id) & mask;
        /* j may move to the hole iff home is not cyclically in (hole, j]. */
        bool in_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_between) {
            move_slot(m, hole, j);
            hole = j;
        }
    }
    m->slots[hole] = (stream_slot){0};
    m->count--;
}

void stream_map_free(stream_map *m)
{
    free(m->slots);
    free(m->states);
    free(m->blobs);
    memset(m, 0, sizeof *m);
}
