#include "serve/serve_history.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct hist_slot {
    uint64_t stream, last_token, last_use;
    uint32_t count, head; /* rows held; next write position in the slot's ring */
    bool used;
} hist_slot;

struct serve_history {
    size_t d_in, max_streams, index_cap; /* index_cap: power of two >= 2 * max_streams */
    uint32_t window;
    uint64_t clock;
    hist_slot *slots;   /* [max_streams] */
    float *rows;        /* [max_streams][window][d_in] */
    uint32_t *index;    /* stream -> slot + 1, open addressing; 0 empty */
};

static size_t home(const serve_history *h, uint64_t stream)
{
    uint64_t x = stream * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x ^ (x >> 29)) & (h->index_cap - 1);
}

/* Index position holding `stream`, or the empty position where it would go. */
static size_t probe(const serve_history *h, uint64_t stream)
{
    size_t i = home(h, stream);
    while (h->index[i] && h->slots[h->index[i] - 1].stream != stream)
        i = (i + 1) & (h->index_cap - 1);
    return i;
}

serve_history *serve_history_create(size_t d_in, uint32_t window, size_t max_streams)
{
    if (!d_in || !window || !max_streams || max_streams > (1u << 24))
        return NULL;
    serve_history *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->d_in = d_in;
    h->window = window;
    h->max_streams = max_streams;
    h->index_cap = 16;
    while (h->index_cap < 2 * max_streams)
        h->index_cap *= 2;
    h->slots = calloc(max_streams, sizeof *h->slots);
    h->index = calloc(h->index_cap, sizeof *h->index);
    size_t floats = max_streams * window * d_in;
    h->rows = floats / max_streams / window == d_in ? malloc(floats * sizeof *h->rows) : NULL;
    if (!h->slots || !h->index || !h->rows) {
        serve_history_destroy(h);
        return NULL;
    }
    return h;
}

/* Remove index entry i; later entries of its probe run shift back. */
static void index_remove(serve_history *h, size_t hole)
{
    size_t mask = h->index_cap - 1;
    h->index[hole] = 0;
    for (size_t j = (hole + 1) & mask; h->index[j]; j = (j + 1) & mask) {
        size_t want = home(h, h->slots[h->index[j] - 1].stream);
        bool between = hole <= j ? (want > hole && want <= j) : (want > hole || want <= j);
        if (!between) {
            h->index[hole] = h->index[j];
            h->index[j] = 0;
            hole = j;
        }
    }
}

void serve_history_forget(serve_history *h, uint64_t stream)
{
    size_t i = probe(h, stream);
    if (!h->index[i])
        return;
    h->slots[h->index[i] - 1].used = false;
    index_remove(h, i);
}

static uint32_t take_slot(serve_history *h)
{
    uint32_t best = 0;
    for (uint32_t s = 0; s < h->max_streams; s++) {
        if (!h->slots[s].used)
            return s;
        if (h->slots[s].last_use < h->slots[best].last_use)
            best = s;
    }
    serve_history_forget(h, h->slots[best].stream); /* the least recently used */
    return best;
}

void serve_history_push(serve_history *h, uint64_t stream, uint64_t token, const float *row)
{
    size_t i = probe(h, stream);
    hist_slot *sl;
    if (h->index[i]) {
        sl = &h->slots[h->index[i] - 1];
        if (token != sl->last_token + 1)
            sl->count = sl->head = 0; /* a new sequence, or tokens were lost */
    } else {
        uint32_t s = take_slot(h);
        i = probe(h, stream); /* the eviction may have moved entries */
        h->index[i] = s + 1;
        sl = &h->slots[s];
        *sl = (hist_slot){.stream = stream, .used = true};
    }
    memcpy(h->rows + ((size_t)(sl - h->slots) * h->window + sl->head) * h->d_in, row, h->d_in * sizeof *row);
    sl->head = (sl->head + 1) % h->window;
    if (sl->count < h->window)
        sl->count++;
    sl->last_token = token;
    sl->last_use = ++h->clock;
}

size_t serve_history_window(const serve_history *h, uint64_t stream, uint64_t token, uint32_t window, float *out)
{
    size_t i = probe(h, stream);
    if (!h->index[i])
        return 0;
    const hist_slot *sl = &h->slots[h->index[i] - 1];
    if (sl->last_token != token) /* the window must end at the firing token */
        return 0;
    uint32_t n = sl->count < window ? sl->count : window;
    const float *base = h->rows + (size_t)(sl - h->slots) * h->window * h->d_in;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t pos = (sl->head + h->window - n + k) % h->window;
        memcpy(out + (size_t)k * h->d_in, base + (size_t)pos * h->d_in, h->d_in * sizeof *out);
    }
    return n;
}

uint32_t serve_history_capacity(const serve_history *h)
{
    return h ? h->window : 0;
}

void serve_history_destroy(serve_history *h)
{
    if (!h)
        return;
    free(h->slots);
    free(h->index);
    free(h->rows);
    free(h);
}
