#include "monitors/sinks/am_active.h"

#include <stdlib.h>
#include <string.h>

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static bool same_identity(const saemon_alert *a, const saemon_alert *b)
{
    return a->stream == b->stream && same_str(a->rule, b->rule) && same_str(a->dictionary, b->dictionary) &&
           same_str(a->group, b->group);
}

bool am_active_note(am_active *set, const saemon_alert *a)
{
    bool resolved = a->status && !strcmp(a->status, "resolved");
    size_t i = 0;
    while (i < set->n && !same_identity(&set->v[i]->alert, a))
        i++;
    if (resolved) {
        if (i < set->n) {
            sink_alert_release(set->v[i]);
            set->v[i] = set->v[--set->n];
        }
        return true;
    }
    sink_alert *copy = sink_alert_copy(a);
    if (!copy)
        return false;
    if (i < set->n) {
        sink_alert_release(set->v[i]);
        set->v[i] = copy;
        return true;
    }
    if (set->n == set->cap) {
        size_t nc = set->cap ? 2 * set->cap : 16;
        sink_alert **g = nc <= AM_ACTIVE_MAX ? realloc(set->v, nc * sizeof *g) : NULL;
        if (!g) {
            sink_alert_release(copy);
            return false;
        }
        set->v = g;
        set->cap = nc;
    }
    set->v[set->n++] = copy;
    return true;
}

void am_active_free(am_active *set)
{
    for (size_t i = 0; i < set->n; i++)
        sink_alert_release(set->v[i]);
    free(set->v);
    memset(set, 0, sizeof *set);
}
