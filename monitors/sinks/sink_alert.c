/* sink_alert: one deep copy of an alert per callback, shared by all sinks. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sha256.h"
#include "monitors/sinks/sink_internal.h"

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copy s to *cursor and advance it; NULL stays NULL. */
static const char *put_str(char **cursor, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, n);
    *cursor += n;
    return d;
}

/* The copy below must know every pointer in saemon_alert and
 * saemon_alert_feature: a new field would otherwise dangle once the monitor's
 * callback returns. Update sink_alert_copy, then these sizes. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(saemon_alert) == 23 * 8, "saemon_alert changed: update sink_alert_copy");
_Static_assert(sizeof(saemon_alert_feature) == 16, "saemon_alert_feature changed: update sink_alert_copy");
#endif

sink_alert *sink_alert_copy(const saemon_alert *a)
{
    size_t strings = str_size(a->rule) + str_size(a->description) + str_size(a->severity) +
                     str_size(a->status) + str_size(a->dictionary) + str_size(a->group) + str_size(a->ring) +
                     str_size(a->replica) + str_size(a->request_id);
    for (size_t i = 0; i < a->n_features; i++)
        strings += str_size(a->features[i].label);
    for (size_t i = 0; i < a->n_captured; i++)
        strings += str_size(a->captured[i].label);
    for (size_t i = 0; i < a->n_labels; i++)
        strings += str_size(a->labels[i].key) + str_size(a->labels[i].value);
    for (size_t i = 0; i < a->n_annotations; i++)
        strings += str_size(a->annotations[i].key) + str_size(a->annotations[i].value);
    size_t size = sizeof(sink_alert) + (a->n_features + a->n_captured) * sizeof(saemon_alert_feature) +
                  (a->n_labels + a->n_annotations) * sizeof(saemon_kv) + strings;
    sink_alert *c = malloc(size);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->size = size;
    c->alert = *a;
    char *p = (char *)(c + 1);
    saemon_alert_feature *f = (saemon_alert_feature *)p;
    if (a->n_features)
        memcpy(f, a->features, a->n_features * sizeof *f);
    c->alert.features = a->n_features ? f : NULL;
    p += a->n_features * sizeof *f;
    saemon_alert_feature *cap = (saemon_alert_feature *)p;
    if (a->n_captured)
        memcpy(cap, a->captured, a->n_captured * sizeof *cap);
    c->alert.captured = a->n_captured ? cap : NULL;
    p += a->n_captured * sizeof *cap;
    saemon_kv *labels = (saemon_kv *)p;
    saemon_kv *annotations = labels + a->n_labels;
    p = (char *)(annotations + a->n_annotations);
    c->alert.rule = put_str(&p, a->rule);
    c->alert.description = put_str(&p, a->description);
    c->alert.severity = put_str(&p, a->severity);
    c->alert.status = put_str(&p, a->status);
    c->alert.dictionary = put_str(&p, a->dictionary);
    c->alert.group = put_str(&p, a->group);
    c->alert.ring = put_str(&p, a->ring);
    c->alert.replica = put_str(&p, a->replica);
    c->alert.request_id = put_str(&p, a->request_id);
    for (size_t i = 0; i < a->n_features; i++)
        f[i].label = put_str(&p, a->features[i].label);
    for (size_t i = 0; i < a->n_captured; i++)
        cap[i].label = put_str(&p, a->captured[i].label);
    for (size_t i = 0; i < a->n_labels; i++) {
        labels[i].key = put_str(&p, a->labels[i].key);
        labels[i].value = put_str(&p, a->labels[i].value);
    }
    for (size_t i = 0; i < a->n_annotations; i++) {
        annotations[i].key = put_str(&p, a->annotations[i].key);
        annotations[i].value = put_str(&p, a->annotations[i].value);
    }
    c->alert.labels = a->n_labels ? labels : NULL;
    c->alert.annotations = a->n_annotations ? annotations : NULL;
    return c;
}

void sink_alert_release(sink_alert *a)
{
    if (a && atomic_fetch_sub(&a->refs, 1) == 1)
        free(a);
}

/* Fields are separated by a byte that cannot occur in them (0x1f, unit
 * separator) so ("a", "bc") and ("ab", "c") hash differently. */
void sink_alert_key(const saemon_alert *a, const char *run_id, char out[65])
{
    char nums[64];
    snprintf(nums, sizeof nums, "%" PRIu64 "\x1f%" PRIu64, a->stream, a->token);
    /* No timestamp: a replay of the same input raises the same events, and
     * must carry the same keys so receivers can drop the duplicates. */
    /* v3: the ring and the replica too, so two rings (or replicas) firing
     * on the same stream id never share a key */
    const char *fields[] = {"saemon-alert-v3", run_id, a->dictionary, a->rule, nums, a->status, a->ring, a->replica};
    enum { N = sizeof fields / sizeof fields[0] };
    const void *parts[2 * N];
    size_t lens[2 * N];
    for (size_t i = 0; i < N; i++) {
        parts[2 * i] = fields[i] ? fields[i] : "";
        lens[2 * i] = strlen(parts[2 * i]);
        parts[2 * i + 1] = "\x1f";
        lens[2 * i + 1] = 1;
    }
    if (saemon_sha256_hex(parts, lens, 2 * N, out) != 0) {
        memset(out, '0', 64); /* only on OOM inside OpenSSL */
        out[64] = '\0';
    }
}
