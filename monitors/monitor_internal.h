/* The inside of a saemon_monitor, shared by monitor.c (observe) and
 * monitor_reload.c (switching rule sets). */
#ifndef SAEMON_MONITORS_MONITOR_INTERNAL_H
#define SAEMON_MONITORS_MONITOR_INTERNAL_H

#include <locale.h>
#include <stdint.h>

#include "monitors/exact_sum.h"
#include "monitors/rules_internal.h"
#include "monitors/stream_map.h"

/* Per-stream blob layouts (see monitor_layout). */
typedef struct tracker_state {
    exact_sum sum; /* of the ring's values, exact (no drift after an outlier) */
    uint32_t pos, count;
    /* followed by float ring[tokens] */
} tracker_state;

typedef struct window_state {
    uint32_t pos, seen, n_true, pad;
    /* followed by uint8_t ring[tokens] */
} window_state;

struct saemon_monitor {
    const saemon_ruleset *rules;
    const rules_rule **enabled; /* enabled rules in file order */
    size_t n_enabled;
    char *dict_name;
    bool emit_resolved;
    saemon_alert_feature *features; /* scratch for one alert: max_features entries */
    saemon_kv *annotations;         /* scratch: max_annotations */
    char *annotation_text;          /* scratch: max_annotations_len bytes */
    locale_t c_locale;              /* numbers in templates print with '.' */
    /* Dense view of the current token for features 0..dense_len-1 (the
     * largest index any enabled rule names), so a leaf costs one load; all
     * zero between tokens. NULL when that range is too large: binary search. */
    float *dense;
    size_t dense_len;
    /* Rules that cannot hold on a token where every feature they read is
     * absent (quiet[i]: feature leaves under any/all/at_least only, false
     * with all of them 0, no window). Such a rule, not holding and not
     * firing in this stream, is evaluated only when the token carries one
     * of its features: rules_of[rules_at[f] .. rules_at[f + 1]) lists the
     * quiet rules reading feature f < dense_len, and touched[i] marks them
     * for the current token (all 0 between tokens). NULL without dense. */
    uint8_t *quiet, *touched;
    uint32_t *rules_at, *rules_of;
    float *means;                   /* per tracker, for the current token */
    size_t *tracker_offset;         /* per tracker: byte offset in the stream blob */
    size_t *window_offset;          /* per enabled rule: offset, or SIZE_MAX without a window */
    stream_map streams;
    uint64_t dropped;
    size_t max_streams;          /* 0 = no limit */
    uint64_t unmonitored;        /* sequences refused at the limit */
    uint64_t last_refused;       /* stream id + 1 of the last refused token */
    saemon_capture_fn capture_fn;   /* capture on demand, or NULL */
    void *capture_user;
    saemon_alert_feature *captured; /* scratch: RULES_MAX_CAPTURE entries */
};

static inline size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Bytes of one stream's running mean over `tokens` / window of `tokens`. */
static inline size_t tracker_bytes(uint32_t tokens)
{
    return round8(sizeof(tracker_state) + tokens * sizeof(float));
}

static inline size_t window_bytes(uint32_t tokens)
{
    return round8(sizeof(window_state) + tokens);
}

/* Report `r` (firing in `stream`) as resolved at `token`, if the monitor
 * reports resolved alerts. */
void monitor_resolve(saemon_monitor *mon, const rules_rule *r, uint64_t stream, uint64_t token,
                     const rule_state *st, saemon_alert_fn fn, void *user);

#endif
