#include "monitors/rules_canon.h"

#include <stdlib.h>
#include <string.h>

/* A growable byte buffer; `failed` sticks after the first allocation failure. */
typedef struct canon_buf {
    unsigned char *data;
    size_t len, cap;
    bool failed;
} canon_buf;

static void put(canon_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u64(canon_buf *b, uint64_t v)
{
    put(b, &v, sizeof v);
}

/* Floats by bit pattern: 0.5 and 0.50 in the file are the same float. */
static void put_f32(canon_buf *b, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u64(b, bits);
}

static void put_str(canon_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u64(b, s ? n : UINT64_MAX);
    put(b, s ? s : "", n);
}

/* A tracker is named by what it averages, not by its index in the file. */
static void put_cond(canon_buf *b, const saemon_ruleset *rs, const rules_cond *c)
{
    put_u64(b, c->kind);
    switch (c->kind) {
    case RULES_COND_LEAF:
        put_u64(b, c->feature);
        put_u64(b, (uint64_t)c->has_above | (uint64_t)c->has_below << 1 | (uint64_t)c->has_between << 2);
        put_f32(b, c->above);
        put_f32(b, c->below);
        put_f32(b, c->lo);
        put_f32(b, c->hi);
        put_u64(b, c->tracker >= 0 ? rs->trackers[c->tracker].tokens : 0);
        return;
    case RULES_COND_PROBE:
        put_u64(b, c->n_weights);
        for (size_t i = 0; i < c->n_weights; i++) {
            put_u64(b, c->probe_features[i]);
            put_f32(b, c->probe_weights[i]);
        }
        put_f32(b, c->bias);
        put_f32(b, c->above);
        return;
    case RULES_COND_HEALTH:
        put_u64(b, c->health);
        put_f32(b, c->lo);
        put_f32(b, c->hi);
        return;
    case RULES_COND_ANY:
    case RULES_COND_ALL:
    case RULES_COND_AT_LEAST:
        put_u64(b, c->count);
        put_u64(b, c->n_children);
        for (size_t i = 0; i < c->n_children; i++)
            put_cond(b, rs, &c->children[i]);
        return;
    }
}

bool rules_canon_build(arena *mem, const saemon_ruleset *rs, rules_rule *r)
{
    canon_buf b = {0};
    put_str(&b, r->name);
    put_str(&b, r->description);
    put_str(&b, r->severity);
    put_str(&b, r->group);
    put_u64(&b, r->enabled);
    put_u64(&b, r->block);
    put_u64(&b, r->interval);
    put_u64(&b, r->for_tokens);
    put_u64(&b, r->cooldown);
    put_u64(&b, r->keep_firing_for);
    put_u64(&b, r->window_count);
    put_u64(&b, r->window_tokens);
    put_u64(&b, r->every);
    put_u64(&b, r->capture_count);
    put_u64(&b, r->capture_window);
    put_cond(&b, rs, r->cond);
    put_u64(&b, r->n_labels);
    for (size_t i = 0; i < r->n_labels; i++) {
        put_str(&b, r->labels[i].key);
        put_str(&b, r->labels[i].value);
    }
    put_u64(&b, r->n_annotations);
    for (size_t i = 0; i < r->n_annotations; i++) { /* template text as written */
        put_str(&b, r->annotations[i].key);
        put_str(&b, r->annotations[i].value);
    }
    unsigned char *copy = b.failed ? NULL : arena_calloc(mem, b.len ? b.len : 1, 1);
    if (copy)
        memcpy(copy, b.data, b.len);
    free(b.data);
    r->canon = copy;
    r->canon_len = b.len;
    return copy != NULL;
}

bool rules_canon_equal(const rules_rule *a, const rules_rule *b)
{
    return strcmp(a->name, b->name) == 0 && a->canon && b->canon && a->canon_len == b->canon_len &&
           memcmp(a->canon, b->canon, a->canon_len) == 0;
}
