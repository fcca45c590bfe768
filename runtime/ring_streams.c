/* Open-addressing map stream -> pending-gap flag (linear probing with
 * backward-shift deletion, grows by doubling up to a cap). */
#include "runtime/ring_streams.h"

#include <stdlib.h>

#include "proto/ring_wire.h"

#define STREAMS_MIN 64u
#define STREAMS_MAX ((size_t)1 << 20) /* beyond this many open streams, forget them all */

void ring_streams_free(ring_streams *s)
{
    free(s->e);
    *s = (ring_streams){0};
}

static size_t home(const ring_streams *s, uint64_t key)
{
    return (size_t)ring_hash64(key - 1) & (s->cap - 1);
}

static ring_stream_entry *find(ring_streams *s, uint64_t key)
{
    if (!s->cap)
        return NULL;
    for (size_t i = home(s, key), n = 0; n < s->cap; i = (i + 1) & (s->cap - 1), n++) {
        if (s->e[i].key == key)
            return &s->e[i];
        if (s->e[i].key == 0)
            return NULL;
    }
    return NULL;
}

static void place(ring_streams *s, ring_stream_entry v)
{
    size_t i = home(s, v.key);
    while (s->e[i].key)
        i = (i + 1) & (s->cap - 1);
    s->e[i] = v;
    s->count++;
}

/* Make room for one more entry; false if memory ran out (the table is then
 * cleared, which only loses pending-gap marks, counted in resets). */
static bool reserve(ring_streams *s)
{
    if (s->cap && (s->count + 1) * 4 <= s->cap * 3)
        return true;
    size_t ncap = s->cap ? s->cap * 2 : STREAMS_MIN;
    ring_stream_entry *ne = ncap <= STREAMS_MAX ? calloc(ncap, sizeof *ne) : NULL;
    if (!ne) {
        if (!s->e)
            return false;
        for (size_t i = 0; i < s->cap; i++)
            s->e[i] = (ring_stream_entry){0};
        s->count = 0;
        s->resets++;
        return true;
    }
    ring_stream_entry *old = s->e;
    size_t ocap = s->cap;
    s->e = ne;
    s->cap = ncap;
    s->count = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            place(s, old[i]);
    free(old);
    return true;
}

static void erase(ring_streams *s, ring_stream_entry *at)
{
    size_t mask = s->cap - 1;
    size_t hole = (size_t)(at - s->e);
    for (size_t j = (hole + 1) & mask; s->e[j].key; j = (j + 1) & mask) {
        size_t h = home(s, s->e[j].key);
        bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            s->e[hole] = s->e[j];
            hole = j;
        }
    }
    s->e[hole] = (ring_stream_entry){0};
    s->count--;
}

static ring_stream_entry *get_or_add(ring_streams *s, uint64_t stream)
{
    uint64_t key = stream + 1;
    ring_stream_entry *e = find(s, key);
    if (e || !reserve(s))
        return e;
    place(s, (ring_stream_entry){.key = key});
    return find(s, key);
}

bool ring_streams_frame(ring_streams *s, uint64_t stream, bool end)
{
    ring_stream_entry *e = end ? find(s, stream + 1) : get_or_add(s, stream);
    if (!e)
        return false;
    bool gap = e->gap_pending;
    e->gap_pending = false;
    if (end)
        erase(s, e);
    return gap;
}

void ring_streams_mark_gap(ring_streams *s, uint64_t stream)
{
    ring_stream_entry *e = get_or_add(s, stream);
    if (e)
        e->gap_pending = true;
}

void ring_streams_mark_all(ring_streams *s)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->e[i].key)
            s->e[i].gap_pending = true;
}
