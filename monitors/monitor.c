/* The monitor: per-(rule, stream) state machines fed one token at a time. */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "monitors/monitor_internal.h"
#include "monitors/rules_eval.h"
#include "monitors/rules_internal.h"
#include "monitors/rules_template.h"
#include "monitors/stream_map.h"

#define DENSE_MAX_FEATURES (1u << 20) /* 4 MiB of scratch at most */

/* In-place heapsort by index: qsort may malloc, and observe must not. */
static void sift_down(saemon_alert_feature *f, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && f[child + 1].index > f[child].index)
            child++;
        if (f[root].index >= f[child].index)
            return;
        saemon_alert_feature t = f[root];
        f[root] = f[child];
        f[child] = t;
        root = child;
    }
}

static void sort_by_index(saemon_alert_feature *f, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(f, i, n);
    for (size_t end = n; end > 1; end--) {
        saemon_alert_feature t = f[0];
        f[0] = f[end - 1];
        f[end - 1] = t;
        sift_down(f, 0, end - 1);
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Render the rule's annotations for this alert into the monitor's scratch. */
static void render_annotations(saemon_monitor *mon, const rules_rule *r, const saemon_alert *a)
{
    template_ctx ctx = {.rule = r->name, .token = a->token, .stream = a->stream, .value = a->value,
                        .feature = a->n_features ? &a->features[0] : NULL};
    locale_t previous = mon->c_locale ? uselocale(mon->c_locale) : (locale_t)0;
    char *at = mon->annotation_text;
    for (size_t i = 0; i < r->n_annotations; i++) {
        mon->annotations[i].key = r->annotations[i].key;
        if (r->templates[i].is_plain) {
            mon->annotations[i].value = r->annotations[i].value;
            continue;
        }
        mon->annotations[i].value = at;
        at += rules_template_render(&r->templates[i], &ctx, at) + 1;
    }
    if (mon->c_locale)
        uselocale(previous);
}

static void emit(saemon_monitor *mon, const rules_rule *r, saemon_alert *a, saemon_alert_fn fn, void *user)
{
    a->rule = r->name;
    a->description = r->description;
    a->severity = r->severity;
    a->block = r->block;
    a->group = r->group;
    a->labels = r->labels;
    a->n_labels = r->n_labels;
    a->dictionary = mon->dict_name;
    a->timestamp = now_seconds();
    render_annotations(mon, r, a);
    a->annotations = mon->annotations;
    a->n_annotations = r->n_annotations;
    fn(a, user);
}

static void fire(saemon_monitor *mon, const rules_rule *r, const eval_ctx *ctx, saemon_alert_fn fn, void *user)
{
    size_t n = 0;
    eval_collect(r->cond, ctx, mon->features, &n);
    sort_by_index(mon->features, n);
    size_t u = 0; /* one entry per feature index, ascending */
    for (size_t i = 0; i < n; i++)
        if (u == 0 || mon->features[u - 1].index != mon->features[i].index)
            mon->features[u++] = mon->features[i];
    if (mon->rules->n_labels)
        for (size_t i = 0; i < u; i++)
            mon->features[i].label = rules_label_of(mon->rules, mon->features[i].index);
    saemon_alert a = {.status = "firing", .stream = ctx->tok->stream, .token = ctx->tok->token,
                      .fired_token = ctx->tok->token, .value = eval_value(r->cond, ctx),
                      .features = mon->features, .n_features = u};
    if (r->capture_count && mon->capture_fn && mon->captured) {
        size_t c = mon->capture_fn(a.stream, a.token, r->capture_window, mon->captured, r->capture_count,
                                   mon->capture_user);
        a.n_captured = c < r->capture_count ? c : r->capture_count;
        for (size_t i = 0; i < a.n_captured; i++)
            mon->captured[i].label = mon->rules->n_labels ? rules_label_of(mon->rules, mon->captured[i].index) : NULL;
        a.captured = mon->captured;
        a.capture_window = r->capture_window;
    }
    emit(mon, r, &a, fn, user);
}

void monitor_resolve(saemon_monitor *mon, const rules_rule *r, uint64_t stream, uint64_t token,
                     const rule_state *st, saemon_alert_fn fn, void *user)
{
    if (!mon->emit_resolved || !fn)
        return;
    saemon_alert a = {.status = "resolved", .stream = stream, .token = token, .fired_token = st->last_fire,
                      .value = NAN, .features = mon->features, .n_features = 0};
    emit(mon, r, &a, fn, user);
}

/* Byte offsets of every tracker ring and rule window inside a stream blob. */
static size_t monitor_layout(saemon_monitor *mon)
{
    const saemon_ruleset *rs = mon->rules;
    size_t off = 0;
    for (size_t t = 0; t < rs->n_trackers; t++) {
        mon->tracker_offset[t] = off;
        off += tracker_bytes(rs->trackers[t].tokens);
    }
    for (size_t i = 0; i < mon->n_enabled; i++) {
        const rules_rule *r = mon->enabled[i];
        mon->window_offset[i] = SIZE_MAX;
        if (r->window_tokens) {
            mon->window_offset[i] = off;
            off += window_bytes(r->window_tokens);
        }
    }
    return off;
}

/* A condition made only of feature leaves (no running mean, probe or
 * health measure) under any / all / at_least. */
static bool features_only(const rules_cond *c)
{
    if (c->kind == RULES_COND_LEAF)
        return c->tracker < 0;
    if (c->kind != RULES_COND_ANY && c->kind != RULES_COND_ALL && c->kind != RULES_COND_AT_LEAST)
        return false;
    for (size_t i = 0; i < c->n_children; i++)
        if (!features_only(&c->children[i]))
            return false;
    return true;
}

/* Count (rules_of == NULL) or list rule `rule` under each feature it reads. */
static void index_features(const rules_cond *c, uint32_t rule, uint32_t *rules_at, uint32_t *rules_of)
{
    if (c->kind == RULES_COND_LEAF) {
        if (rules_of)
            rules_of[rules_at[c->feature]++] = rule;
        else
            rules_at[c->feature + 1]++;
        return;
    }
    for (size_t i = 0; i < c->n_children; i++)
        index_features(&c->children[i], rule, rules_at, rules_of);
}

/* quiet / touched / rules_at / rules_of (monitor_internal.h); false only
 * when out of memory. */
static bool index_quiet_rules(saemon_monitor *mon)
{
    const saemon_token_view none = {.nnz = 0};
    const eval_ctx zero = {.tok = &none, .dense = mon->dense, .means = mon->means}; /* dense is all 0 */
    const size_t n = mon->n_enabled;
    if (!(mon->quiet = calloc(n, 1)) || !(mon->touched = calloc(n, 1)) ||
        !(mon->rules_at = calloc(mon->dense_len + 1, sizeof *mon->rules_at)))
        return false;
    for (size_t i = 0; i < n; i++) {
        const rules_rule *r = mon->enabled[i];
        mon->quiet[i] = mon->window_offset[i] == SIZE_MAX && features_only(r->cond) && !eval_cond(r->cond, &zero);
        if (mon->quiet[i])
            index_features(r->cond, (uint32_t)i, mon->rules_at, NULL);
    }
    for (size_t f = 0; f < mon->dense_len; f++)
        mon->rules_at[f + 1] += mon->rules_at[f];
    if (!(mon->rules_of = malloc((mon->rules_at[mon->dense_len] ? mon->rules_at[mon->dense_len] : 1) *
                                 sizeof *mon->rules_of)))
        return false;
    for (size_t i = 0; i < n; i++) /* rules_at[f] moves to the end of f's list... */
        if (mon->quiet[i])
            index_features(mon->enabled[i]->cond, (uint32_t)i, mon->rules_at, mon->rules_of);
    for (size_t f = mon->dense_len; f > 0; f--) /* ...and back to its start */
        mon->rules_at[f] = mon->rules_at[f - 1];
    mon->rules_at[0] = 0;
    return true;
}

saemon_status saemon_monitor_create(const saemon_ruleset *rules, const saemon_dict_info *dict,
                                    const saemon_monitor_options *opts, saemon_monitor **out,
                                    saemon_error *err)
{
    if (!rules || !out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_monitor_create: NULL argument");
    *out = NULL;
    if (dict) {
        saemon_status s = saemon_rules_bind(rules, dict, err);
        if (s != SAEMON_OK)
            return s;
    }
    saemon_monitor *mon = calloc(1, sizeof *mon);
    if (!mon)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "saemon_monitor_create: out of memory");
    mon->rules = rules;
    mon->emit_resolved = opts && opts->resolved;
    mon->max_streams = opts ? opts->max_streams : 0;
    mon->enabled = calloc(rules->n_enabled ? rules->n_enabled : 1, sizeof *mon->enabled);
    mon->window_offset = calloc(rules->n_enabled ? rules->n_enabled : 1, sizeof *mon->window_offset);
    mon->features = calloc(rules->max_features ? rules->max_features : 1, sizeof *mon->features);
    mon->annotations = calloc(rules->max_annotations ? rules->max_annotations : 1, sizeof *mon->annotations);
    mon->annotation_text = calloc(rules->max_annotations_len ? rules->max_annotations_len : 1, 1);
    mon->means = calloc(rules->n_trackers ? rules->n_trackers : 1, sizeof *mon->means);
    mon->tracker_offset = calloc(rules->n_trackers ? rules->n_trackers : 1, sizeof *mon->tracker_offset);
    mon->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    mon->dict_name = dict && dict->name ? strdup(dict->name) : NULL;
    bool ok = mon->enabled && mon->window_offset && mon->features && mon->annotations && mon->annotation_text &&
              mon->means && mon->tracker_offset && mon->c_locale && (!dict || !dict->name || mon->dict_name);
    uint32_t top = 0;
    for (size_t i = 0; ok && i < rules->n_rules; i++) {
        if (rules->rules[i].enabled) {
            mon->enabled[mon->n_enabled++] = &rules->rules[i];
            uint32_t m = eval_max_feature(rules->rules[i].cond);
            top = m > top ? m : top;
        }
    }
    ok = ok && stream_map_init(&mon->streams, rules->n_enabled, ok ? monitor_layout(mon) : 0, 16);
    if (!ok) {
        saemon_monitor_destroy(mon);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "saemon_monitor_create: out of memory");
    }
    for (size_t t = 0; t < rules->n_trackers; t++)
        top = rules->trackers[t].feature > top ? rules->trackers[t].feature : top;
    if (mon->n_enabled && top < DENSE_MAX_FEATURES) {
        mon->dense_len = (size_t)top + 1;
        mon->dense = calloc(mon->dense_len, sizeof *mon->dense); /* NULL: fall back to search */
    }
    if (mon->dense && !index_quiet_rules(mon)) {
        saemon_monitor_destroy(mon);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "saemon_monitor_create: out of memory");
    }
    *out = mon;
    return SAEMON_OK;
}

/* Push this token's feature values into every running mean of the stream. */
static void update_trackers(saemon_monitor *mon, unsigned char *blob, const eval_ctx *ctx)
{
    const saemon_ruleset *rs = mon->rules;
    for (size_t t = 0; t < rs->n_trackers; t++) {
        tracker_state *ts = (tracker_state *)(blob + mon->tracker_offset[t]);
        float *ring = (float *)(ts + 1);
        uint32_t n = rs->trackers[t].tokens;
        float v = eval_feature(ctx, rs->trackers[t].feature);
        if (!isfinite(v))
            v = 0.0f; /* one bad value must not poison the window forever */
        if (ts->count == n)
            exact_sum_add(&ts->sum, ring[ts->pos], 1);
        else
            ts->count++;
        ring[ts->pos] = v;
        exact_sum_add(&ts->sum, v, 0);
        ts->pos = ts->pos + 1 == n ? 0 : ts->pos + 1;
        /* exact sum, rounded to double, divided in double, rounded to float */
        mon->means[t] = ts->count == n ? (float)(exact_sum_value(&ts->sum) / n) : NAN;
    }
}

/* The condition through the rule's window: true on >= m of the last n evaluations. */
static bool apply_window(const rules_rule *r, window_state *ws, bool raw)
{
    uint8_t *ring = (uint8_t *)(ws + 1);
    if (ws->seen == r->window_tokens)
        ws->n_true -= ring[ws->pos];
    else
        ws->seen++;
    ring[ws->pos] = raw;
    ws->n_true += raw;
    ws->pos = ws->pos + 1 == r->window_tokens ? 0 : ws->pos + 1;
    return ws->n_true >= r->window_count;
}

static void start_sequence(saemon_monitor *mon, size_t slot, bool is_new, saemon_alert_fn fn, void *user)
{
    stream_slot *sl = &mon->streams.slots[slot];
    rule_state *state = stream_map_states(&mon->streams, slot);
    for (size_t i = 0; i < mon->n_enabled; i++) {
        if (!is_new && state[i].firing) /* the sequence it fired in has ended */
            monitor_resolve(mon, mon->enabled[i], sl->id, sl->last_token, &state[i], fn, user);
        state[i] = (rule_state){0};
    }
    if (mon->streams.blob_size)
        memset(stream_map_blob(&mon->streams, slot), 0, mon->streams.blob_size);
}

void saemon_monitor_end_stream(saemon_monitor *mon, uint64_t stream, saemon_alert_fn fn, void *user)
{
    if (!mon)
        return;
    size_t slot = stream_map_find(&mon->streams, stream);
    if (slot == SIZE_MAX)
        return;
    const stream_slot *sl = &mon->streams.slots[slot];
    rule_state *state = stream_map_states(&mon->streams, slot);
    for (size_t i = 0; i < mon->n_enabled; i++)
        if (state[i].firing)
            monitor_resolve(mon, mon->enabled[i], sl->id, sl->last_token, &state[i], fn, user);
    stream_map_remove(&mon->streams, stream);
}

size_t saemon_monitor_end_all_streams(saemon_monitor *mon, saemon_alert_fn fn, void *user)
{
    if (!mon)
        return 0;
    size_t ended = 0;
    /* removal shifts later entries back into the freed slot: re-check it */
    for (size_t i = 0; i < mon->streams.cap; i++)
        while (mon->streams.slots[i].used) {
            saemon_monitor_end_stream(mon, mon->streams.slots[i].id, fn, user);
            ended++;
        }
    return ended;
}

void saemon_monitor_observe(saemon_monitor *mon, const saemon_token_view *tok, saemon_alert_fn fn,
                            void *user)
{
    if (!mon || !tok || (tok->nnz && (!tok->index || !tok->value))) {
        if (mon)
            mon->dropped++;
        return;
    }
    if (mon->max_streams && mon->streams.count >= mon->max_streams &&
        stream_map_find(&mon->streams, tok->stream) == SIZE_MAX) {
        /* at the limit: this stream goes unevaluated, and says so */
        mon->dropped++;
        if (tok->token == 0 || mon->last_refused != tok->stream + 1)
            mon->unmonitored++;
        mon->last_refused = tok->stream + 1;
        return;
    }
    bool is_new;
    size_t slot = stream_map_get(&mon->streams, tok->stream, &is_new);
    if (slot == SIZE_MAX) { /* out of memory for a new stream */
        mon->dropped++;
        return;
    }
    stream_slot *sl = &mon->streams.slots[slot];
    if (is_new || tok->token == 0 || tok->token != sl->last_token + 1)
        start_sequence(mon, slot, is_new, fn, user);
    sl->last_token = tok->token;
    rule_state *state = stream_map_states(&mon->streams, slot);
    unsigned char *blob = mon->streams.blob_size ? stream_map_blob(&mon->streams, slot) : NULL;

    eval_ctx ctx = {.tok = tok, .dense = mon->dense, .means = mon->means};
    if (mon->dense)
        for (size_t i = 0; i < tok->nnz; i++) {
            const uint32_t f = tok->index[i];
            if (f >= mon->dense_len)
                continue;
            mon->dense[f] = tok->value[i];
            for (uint32_t k = mon->rules_at[f]; k < mon->rules_at[f + 1]; k++)
                mon->touched[mon->rules_of[k]] = 1;
        }
    if (blob)
        update_trackers(mon, blob, &ctx);

    const uint8_t *quiet = mon->quiet;
    uint8_t *touched = mon->touched;
    for (size_t i = 0, n = mon->n_enabled; i < n; i++) {
        rule_state *st = &state[i];
        if (quiet && quiet[i]) {
            /* With none of its features on this token the condition is
             * false; not holding and not firing, that changes nothing. */
            if (touched[i])
                touched[i] = 0;
            else if (st->held == 0 && !st->firing)
                continue;
        }
        const rules_rule *r = mon->enabled[i];
        if (r->interval > 1 && tok->token % r->interval != 0)
            continue;
        if (r->needs_full && tok->subset) /* L0 / reconstruction unknown on this token */
            continue;
        bool holds = eval_cond(r->cond, &ctx);
        if (mon->window_offset[i] != SIZE_MAX)
            holds = apply_window(r, (window_state *)(blob + mon->window_offset[i]), holds);
        if (!holds) {
            st->held = 0;
            if (st->firing && ++st->cleared > r->keep_firing_for) {
                st->firing = false;
                monitor_resolve(mon, r, tok->stream, tok->token, st, fn, user);
            }
            continue;
        }
        st->cleared = 0;
        if (st->held < UINT64_MAX)
            st->held++;
        bool cooled = !st->has_fired || tok->token - st->last_fire > r->cooldown;
        if (!st->firing && st->held >= r->for_tokens && cooled) {
            st->firing = true;
            st->has_fired = true;
            st->last_fire = tok->token;
            if (fn)
                fire(mon, r, &ctx, fn, user);
        }
    }

    if (mon->dense) /* back to all zero for the next token */
        for (size_t i = 0; i < tok->nnz; i++)
            if (tok->index[i] < mon->dense_len)
                mon->dense[tok->index[i]] = 0.0f;
}

void saemon_monitor_set_capture(saemon_monitor *mon, saemon_capture_fn fn, void *user)
{
    if (!mon)
        return;
    if (fn && !mon->captured)
        mon->captured = calloc(RULES_MAX_CAPTURE, sizeof *mon->captured);
    mon->capture_fn = fn;
    mon->capture_user = user;
}

size_t saemon_monitor_get_stream_count(const saemon_monitor *mon)
{
    return mon ? mon->streams.count : 0;
}

void saemon_monitor_observe_batch(saemon_monitor *mon, const saemon_features *f, const uint64_t *streams,
                                  const uint64_t *tokens, saemon_alert_fn fn, void *user)
{
    if (!mon)
        return;
    if (!f || !streams || !tokens || !f->offsets || (f->n_tokens && (!f->input_norm || !f->input_nonfinite))) {
        mon->dropped += f ? f->n_tokens : 0;
        return;
    }
    for (size_t t = 0; t < f->n_tokens; t++) {
        size_t lo = f->offsets[t], hi = f->offsets[t + 1];
        saemon_token_view tok = {
            .stream = streams[t],
            .token = tokens[t],
            .index = f->index + lo,
            .value = f->value + lo,
            .nnz = hi - lo,
            .input_norm = f->input_norm[t],
            .input_nonfinite = f->input_nonfinite[t],
            .recon_error = f->recon_error ? f->recon_error[t] : NAN,
            .subset = f->subset && f->subset[t],
        };
        saemon_monitor_observe(mon, &tok, fn, user);
    }
}

uint64_t saemon_monitor_get_unmonitored(const saemon_monitor *mon)
{
    return mon ? mon->unmonitored : 0;
}

uint64_t saemon_monitor_get_dropped(const saemon_monitor *mon)
{
    return mon ? mon->dropped : 0;
}

void saemon_monitor_destroy(saemon_monitor *mon)
{
    if (!mon)
        return;
    stream_map_free(&mon->streams);
    free(mon->enabled);
    free(mon->window_offset);
    free(mon->features);
    free(mon->annotations);
    free(mon->annotation_text);
    free(mon->means);
    free(mon->tracker_offset);
    if (mon->c_locale)
        freelocale(mon->c_locale);
    free(mon->dense);
    free(mon->quiet);
    free(mon->touched);
    free(mon->rules_at);
    free(mon->rules_of);
    free(mon->dict_name);
    free(mon->captured);
    free(mon);
}
