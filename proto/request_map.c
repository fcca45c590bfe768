/* Request id <-> stream maps of the C producer (request_map.h). */
#include "proto/request_map.h"

#include <stdlib.h>
#include <string.h>

static uint64_t id_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a 64 */
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= UINT64_C(1099511628211);
    }
    return ring_hash64(h);
}

static uint32_t home(const request_table *t, const request_entry *x)
{
    return (uint32_t)(t->by_id ? id_hash(x->id) : ring_hash64(x->key - 1)) & (t->cap - 1);
}

static request_entry *find(const request_table *t, uint64_t key, const char *id)
{
    if (!t->cap)
        return NULL;
    request_entry probe = {.key = key};
    if (t->by_id)
        strncpy(probe.id, id, RING_REQUEST_ID_MAX);
    for (uint32_t i = home(t, &probe), n = 0; n < t->cap; i = (i + 1) & (t->cap - 1), n++) {
        request_entry *e = &t->e[i];
        if (!e->key)
            return NULL;
        if (t->by_id ? strcmp(e->id, id) == 0 : e->key == key)
            return e;
    }
    return NULL;
}

static void place(request_table *t, const request_entry *v)
{
    uint32_t i = home(t, v);
    while (t->e[i].key)
        i = (i + 1) & (t->cap - 1);
    t->e[i] = *v;
    t->n++;
}

static bool reserve(request_table *t)
{
    if (t->cap && (t->n + 1) * 2 <= t->cap)
        return true;
    uint32_t ncap = t->cap ? t->cap * 2 : 64;
    if (ncap > 2 * REQUEST_MAP_MAX)
        return false;
    request_entry *ne = calloc(ncap, sizeof *ne);
    if (!ne)
        return false;
    request_entry *old = t->e;
    uint32_t ocap = t->cap;
    t->e = ne;
    t->cap = ncap;
    t->n = 0;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i].key)
            place(t, &old[i]);
    free(old);
    return true;
}

static void erase(request_table *t, request_entry *at)
{
    uint32_t mask = t->cap - 1, hole = (uint32_t)(at - t->e);
    for (uint32_t j = (hole + 1) & mask; t->e[j].key; j = (j + 1) & mask) {
        uint32_t h = home(t, &t->e[j]);
        bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            t->e[hole] = t->e[j];
            hole = j;
        }
    }
    t->e[hole].key = 0;
    t->n--;
}

void request_map_forget(request_map *m, uint64_t stream)
{
    request_entry *s = find(&m->by_stream, stream + 1, NULL);
    if (!s)
        return;
    request_entry *i = find(&m->by_id, 0, s->id);
    if (i && i->key == stream + 1)
        erase(&m->by_id, i);
    erase(&m->by_stream, s);
}

bool request_map_set(request_map *m, uint64_t stream, const char *id)
{
    m->by_stream.by_id = false;
    m->by_id.by_id = true;
    request_map_forget(m, stream);
    request_entry *old = find(&m->by_id, 0, id);
    if (old)
        request_map_forget(m, old->key - 1);
    if (m->by_stream.n >= REQUEST_MAP_MAX || !reserve(&m->by_stream) || !reserve(&m->by_id))
        return false;
    request_entry v = {.key = stream + 1};
    strncpy(v.id, id, RING_REQUEST_ID_MAX);
    place(&m->by_stream, &v);
    place(&m->by_id, &v);
    return true;
}

const char *request_map_id(const request_map *m, uint64_t stream)
{
    const request_entry *e = find(&m->by_stream, stream + 1, NULL);
    return e ? e->id : NULL;
}

bool request_map_stream(const request_map *m, const char *id, uint64_t *stream)
{
    const request_entry *e = find(&m->by_id, 0, id);
    if (e)
        *stream = e->key - 1;
    return e != NULL;
}

void request_map_each(const request_map *m, void (*fn)(uint64_t stream, const char *id, void *user), void *user)
{
    for (uint32_t i = 0; i < m->by_stream.cap; i++)
        if (m->by_stream.e[i].key)
            fn(m->by_stream.e[i].key - 1, m->by_stream.e[i].id, user);
}

void request_map_free(request_map *m)
{
    free(m->by_stream.e);
    free(m->by_id.e);
    *m = (request_map){0};
}
