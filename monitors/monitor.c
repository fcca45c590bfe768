/* The monitor: per-(rule, stream) state machines fed one token at a time. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "monitors/rules_internal.h"
#include "monitors/stream_map.h"

struct saemon_monitor {
    const saemon_ruleset *rules;
    const rules_rule **enabled; /* enabled rules in file order */
    size_t n_enabled;
    char *dict_name;
    saemon_alert_feature *features; /* scratch for one alert: max_leaves entries */
    /* Dense view of the current token for features 0..dense_len-1 (the
     * largest index any enabled rule names), so a leaf costs one load; all
     * zero between tokens. NULL when that range is too large: binary search. */
    float *dense;
    size_t dense_len;
    stream_map streams;
    uint64_t dropped;
};

#define DENSE_MAX_FEATURES (1u << 20) /* 4 MiB of scratch at most */

/* The token being evaluated, and where to look its features up. */
typedef struct token_ctx {
    const saemon_token_view *tok;
    const float *dense;
} token_ctx;

/* Value of `feature` in the token; absent features are 0. index is ascending. */
static float feature_value(const token_ctx *ctx, uint32_t feature)
{
    if (ctx->dense)
        return ctx->dense[feature];
    const saemon_token_view *tok = ctx->tok;
    size_t lo = 0, hi = tok->nnz;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok->index[mid] < feature)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < tok->nnz && tok->index[lo] == feature ? tok->value[lo] : 0.0f;
}

static bool leaf_holds(const rules_cond *c, float v)
{
    return (!c->has_above || v > c->above) && (!c->has_below || v < c->below);
}

static bool eval(const rules_cond *c, const token_ctx *tok)
{
    switch (c->kind) {
    case RULES_COND_LEAF: return leaf_holds(c, feature_value(tok, c->feature));
    case RULES_COND_ANY:
        for (size_t i = 0; i < c->n_children; i++)
            if (eval(&c->children[i], tok))
                return true;
        return false;
    case RULES_COND_ALL:
        for (size_t i = 0; i < c->n_children; i++)
            if (!eval(&c->children[i], tok))
                return false;
        return true;
    }
    return false;
}

/* Every leaf of the rule whose own condition holds on this token. */
static void collect(const rules_cond *c, const token_ctx *tok, saemon_alert_feature *out,
                    size_t *n)
{
    if (c->kind != RULES_COND_LEAF) {
        for (size_t i = 0; i < c->n_children; i++)
            collect(&c->children[i], tok, out, n);
        return;
    }
    float v = feature_value(tok, c->feature);
    if (leaf_holds(c, v))
        out[(*n)++] = (saemon_alert_feature){c->feature, v};
}

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

static void fire(saemon_monitor *mon, const rules_rule *r, const token_ctx *ctx, saemon_alert_fn fn,
                 void *user)
{
    const saemon_token_view *tok = ctx->tok;
    size_t n = 0;
    collect(r->cond, ctx, mon->features, &n);
    sort_by_index(mon->features, n);
    size_t u = 0; /* one entry per feature index, ascending */
    for (size_t i = 0; i < n; i++)
        if (u == 0 || mon->features[u - 1].index != mon->features[i].index)
            mon->features[u++] = mon->features[i];
    saemon_alert alert = {
        .rule = r->name,
        .description = r->description,
        .severity = r->severity,
        .status = "firing",
        .stream = tok->stream,
        .token = tok->token,
        .features = mon->features,
        .n_features = u,
        .labels = r->labels,
        .n_labels = r->n_labels,
        .annotations = r->annotations,
        .n_annotations = r->n_annotations,
        .dictionary = mon->dict_name,
        .timestamp = now_seconds(),
    };
    fn(&alert, user);
}

static uint32_t max_feature(const rules_cond *c)
{
    if (c->kind == RULES_COND_LEAF)
        return c->feature;
    uint32_t m = 0;
    for (size_t i = 0; i < c->n_children; i++) {
        uint32_t x = max_feature(&c->children[i]);
        m = x > m ? x : m;
    }
    return m;
}

saemon_status saemon_monitor_create(const saemon_ruleset *rules, const saemon_dict_info *dict,
                                    saemon_monitor **out, saemon_error *err)
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
    mon->enabled = calloc(rules->n_enabled ? rules->n_enabled : 1, sizeof *mon->enabled);
    mon->features = calloc(rules->max_leaves ? rules->max_leaves : 1, sizeof *mon->features);
    mon->dict_name = dict && dict->name ? strdup(dict->name) : NULL;
    bool ok = mon->enabled && mon->features && (!dict || !dict->name || mon->dict_name) &&
              stream_map_init(&mon->streams, rules->n_enabled, 16);
    if (!ok) {
        saemon_monitor_destroy(mon);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "saemon_monitor_create: out of memory");
    }
    uint32_t top = 0;
    for (size_t i = 0; i < rules->n_rules; i++) {
        if (rules->rules[i].enabled) {
            mon->enabled[mon->n_enabled++] = &rules->rules[i];
            uint32_t m = max_feature(rules->rules[i].cond);
            top = m > top ? m : top;
        }
    }
    if (mon->n_enabled && top < DENSE_MAX_FEATURES) {
        mon->dense_len = (size_t)top + 1;
        mon->dense = calloc(mon->dense_len, sizeof *mon->dense); /* NULL: fall back to search */
    }
    *out = mon;
    return SAEMON_OK;
}

void saemon_monitor_observe(saemon_monitor *mon, const saemon_token_view *tok, saemon_alert_fn fn,
                            void *user)
{
    if (!mon || !tok || (tok->nnz && (!tok->index || !tok->value))) {
        if (mon)
            mon->dropped++;
        return;
    }
    bool is_new;
    size_t slot = stream_map_get(&mon->streams, tok->stream, &is_new);
    if (slot == SIZE_MAX) { /* out of memory for a new stream */
        mon->dropped++;
        return;
    }
    stream_slot *sl = &mon->streams.slots[slot];
    rule_state *state = stream_map_states(&mon->streams, slot);
    if (is_new || tok->token == 0 || tok->token != sl->last_token + 1) {
        for (size_t i = 0; i < mon->n_enabled; i++)
            state[i] = (rule_state){.armed = true};
    }
    sl->last_token = tok->token;

    token_ctx ctx = {.tok = tok, .dense = mon->dense};
    if (mon->dense)
        for (size_t i = 0; i < tok->nnz; i++)
            if (tok->index[i] < mon->dense_len)
                mon->dense[tok->index[i]] = tok->value[i];

    for (size_t i = 0; i < mon->n_enabled; i++) {
        const rules_rule *r = mon->enabled[i];
        rule_state *st = &state[i];
        if (!eval(r->cond, &ctx)) {
            st->held = 0;
            st->armed = true;
            continue;
        }
        if (st->held < UINT64_MAX)
            st->held++;
        bool cooled = !st->has_fired || tok->token - st->last_fire > r->cooldown;
        if (st->held >= r->for_tokens && st->armed && cooled) {
            st->armed = false;
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

size_t saemon_monitor_stream_count(const saemon_monitor *mon)
{
    return mon ? mon->streams.count : 0;
}

uint64_t saemon_monitor_dropped(const saemon_monitor *mon)
{
    return mon ? mon->dropped : 0;
}

void saemon_monitor_destroy(saemon_monitor *mon)
{
    if (!mon)
        return;
    stream_map_free(&mon->streams);
    free(mon->enabled);
    free(mon->features);
    free(mon->dense);
    free(mon->dict_name);
    free(mon);
}
