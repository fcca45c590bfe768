/* saemon_monitor_reload: build a complete monitor for the new rule set, move
 * the per-stream state of unchanged rules into it, then swap. Nothing of the
 * live monitor is touched until every allocation has succeeded. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "monitors/monitor_internal.h"
#include "monitors/rules_canon.h"

#define NO_MATCH SIZE_MAX

enum { OLD_GONE = 0, OLD_CHANGED, OLD_KEPT };

/* For every new enabled rule, the old enabled rule it keeps the state of (or
 * NO_MATCH); old_fate[i] says what became of old rule i. */
static void match_rules(const saemon_monitor *old, const saemon_monitor *fresh, size_t *keep_from,
                        unsigned char *old_fate, saemon_reload_stats *st)
{
    for (size_t j = 0; j < fresh->n_enabled; j++) {
        const rules_rule *r = fresh->enabled[j];
        keep_from[j] = NO_MATCH;
        size_t i = 0;
        while (i < old->n_enabled && strcmp(old->enabled[i]->name, r->name) != 0)
            i++;
        if (i == old->n_enabled) {
            st->added++;
            continue;
        }
        if (rules_canon_equal(old->enabled[i], r)) {
            keep_from[j] = i;
            old_fate[i] = OLD_KEPT;
            st->kept++;
        } else {
            old_fate[i] = OLD_CHANGED;
            st->changed++;
        }
    }
    for (size_t i = 0; i < old->n_enabled; i++)
        st->removed += old_fate[i] == OLD_GONE;
}

/* Old tracker averaging the same (feature, tokens), or NO_MATCH. */
static size_t old_tracker(const saemon_ruleset *old, const rules_tracker *t)
{
    for (size_t i = 0; i < old->n_trackers; i++)
        if (old->trackers[i].feature == t->feature && old->trackers[i].tokens == t->tokens)
            return i;
    return NO_MATCH;
}

/* Carry one stream's state from `old` slot to the same slot of `fresh`, and
 * resolve the firing alerts of rules that do not carry over. */
static void move_stream(saemon_monitor *old, saemon_monitor *fresh, size_t slot, const size_t *keep_from,
                        const unsigned char *old_fate, const size_t *tracker_from, saemon_alert_fn fn,
                        void *user)
{
    const stream_slot *sl = &old->streams.slots[slot];
    rule_state *from = stream_map_states(&old->streams, slot);
    rule_state *to = stream_map_states(&fresh->streams, slot);
    unsigned char *from_blob = stream_map_blob(&old->streams, slot);
    unsigned char *to_blob = stream_map_blob(&fresh->streams, slot);
    for (size_t j = 0; j < fresh->n_enabled; j++) {
        size_t i = keep_from[j];
        if (i == NO_MATCH)
            continue;
        to[j] = from[i];
        if (fresh->window_offset[j] != SIZE_MAX)
            memcpy(to_blob + fresh->window_offset[j], from_blob + old->window_offset[i],
                   window_bytes(fresh->enabled[j]->window_tokens));
    }
    for (size_t t = 0; t < fresh->rules->n_trackers; t++)
        if (tracker_from[t] != NO_MATCH)
            memcpy(to_blob + fresh->tracker_offset[t], from_blob + old->tracker_offset[tracker_from[t]],
                   tracker_bytes(fresh->rules->trackers[t].tokens));
    /* Firing old rules whose state did not move: their alert has ended. */
    for (size_t i = 0; i < old->n_enabled; i++)
        if (from[i].firing && old_fate[i] != OLD_KEPT)
            monitor_resolve(old, old->enabled[i], sl->id, sl->last_token, &from[i], fn, user);
}

saemon_status saemon_monitor_reload(saemon_monitor *mon, const saemon_ruleset *new_rules,
                                    saemon_alert_fn fn, void *user, saemon_reload_stats *stats,
                                    saemon_error *err)
{
    if (!mon || !new_rules)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_monitor_reload: NULL argument");
    saemon_monitor *fresh = NULL;
    const saemon_monitor_options mo = {.resolved = mon->emit_resolved, .max_streams = mon->max_streams};
    saemon_status s = saemon_monitor_create(new_rules, NULL, &mo, &fresh, err);
    if (s != SAEMON_OK)
        return s;
    /* Same capacity, so every stream lands in the slot it has now. */
    size_t blob_size = fresh->streams.blob_size;
    stream_map_free(&fresh->streams);
    size_t *keep_from = calloc(fresh->n_enabled ? fresh->n_enabled : 1, sizeof *keep_from);
    unsigned char *old_fate = calloc(mon->n_enabled ? mon->n_enabled : 1, 1);
    size_t *tracker_from = calloc(new_rules->n_trackers ? new_rules->n_trackers : 1, sizeof *tracker_from);
    if (!keep_from || !old_fate || !tracker_from ||
        !stream_map_init(&fresh->streams, fresh->n_enabled, blob_size, mon->streams.cap)) {
        free(keep_from);
        free(old_fate);
        free(tracker_from);
        saemon_monitor_destroy(fresh);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "saemon_monitor_reload: out of memory");
    }
    saemon_reload_stats st = {.rules = fresh->n_enabled};
    match_rules(mon, fresh, keep_from, old_fate, &st);
    for (size_t t = 0; t < new_rules->n_trackers; t++)
        tracker_from[t] = old_tracker(mon->rules, &new_rules->trackers[t]);

    memcpy(fresh->streams.slots, mon->streams.slots, mon->streams.cap * sizeof *mon->streams.slots);
    fresh->streams.count = mon->streams.count;
    for (size_t slot = 0; slot < mon->streams.cap; slot++)
        if (mon->streams.slots[slot].used)
            move_stream(mon, fresh, slot, keep_from, old_fate, tracker_from, fn, user);
    free(keep_from);
    free(old_fate);
    free(tracker_from);

    /* The live monitor takes the new insides; `fresh` leaves with the old. */
    fresh->dict_name = mon->dict_name;
    mon->dict_name = NULL;
    fresh->dropped = mon->dropped;
    fresh->unmonitored = mon->unmonitored;
    fresh->last_refused = mon->last_refused;
    fresh->capture_fn = mon->capture_fn;
    fresh->capture_user = mon->capture_user;
    fresh->captured = mon->captured;
    mon->captured = NULL;
    saemon_monitor old = *mon;
    *mon = *fresh;
    *fresh = old;
    saemon_monitor_destroy(fresh);
    if (stats)
        *stats = st;
    return SAEMON_OK;
}

saemon_status saemon_rules_open_for_reload(const char *path, const saemon_reload_options *opts,
                                           saemon_ruleset **out, saemon_error *err)
{
    if (!path || !out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_rules_open_for_reload: NULL argument");
    *out = NULL;
    const saemon_reload_options none = {.can_reconstruct = true};
    if (!opts)
        opts = &none;
    saemon_ruleset *next = NULL;
    saemon_status s = saemon_rules_open(path, opts->rules, &next, err);
    if (s == SAEMON_OK && opts->dict)
        s = saemon_rules_bind(next, opts->dict, err);
    if (s == SAEMON_OK && saemon_rules_needs_reconstruction(next) && !opts->can_reconstruct)
        s = saemon_error_set(err, SAEMON_ERR_RULES,
                             "%s: the new rules use reconstruction_error_above but this run does not "
                             "decode; expected a restart to add reconstruction checks",
                             path);
    if (s != SAEMON_OK) {
        saemon_rules_close(next);
        return s;
    }
    *out = next;
    return SAEMON_OK;
}

saemon_status saemon_monitor_reload_file(saemon_monitor *mon, const char *path, const saemon_reload_options *opts,
                                         saemon_ruleset **rules, saemon_reload_stats *stats, saemon_error *err)
{
    if (!mon || !path || !rules)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_monitor_reload_file: NULL argument");
    const saemon_reload_options none = {.can_reconstruct = true};
    if (!opts)
        opts = &none;
    saemon_ruleset *next = NULL;
    saemon_status s = saemon_rules_open_for_reload(path, opts, &next, err);
    bool prepared = false;
    if (s == SAEMON_OK && opts->prepare)
        prepared = (s = opts->prepare(next, opts->hook_user, err)) == SAEMON_OK;
    if (s == SAEMON_OK)
        s = saemon_monitor_reload(mon, next, opts->on_alert, opts->user, stats, err);
    if (prepared && opts->finish)
        opts->finish(s == SAEMON_OK, opts->hook_user);
    if (s != SAEMON_OK) {
        saemon_rules_close(next);
        return s;
    }
    saemon_rules_close(*rules);
    *rules = next;
    return SAEMON_OK;
}
