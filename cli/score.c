/* Scoring a replay against labelled spans (docs/authoring.md "backtest"):
 * each firing event is a true positive when its token lies in a span, else
 * a false positive; a span is detected when at least one firing lies in it;
 * the delay is the first such firing's position minus the span's start. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/authoring.h"
#include "cli/cli.h"

typedef struct score_ctx {
    auth_scores *s;
    const auth_span *spans; /* every span of the set, sorted by (stream, start) */
    size_t n_spans;
    uint8_t *hit;           /* [n_rules][n_spans] */
    bool ending;            /* the replay is ending a stream: its last token was firing too */
    size_t hit_rules;
} score_ctx;

static long find_rule(auth_scores *s, const char *name)
{
    for (size_t i = 0; i < s->n_rules; i++)
        if (!strcmp(s->rule[i].name, name))
            return (long)i;
    return -1;
}

/* The span holding (stream, token), or -1. */
static long find_span(const score_ctx *c, uint64_t stream, uint64_t token)
{
    size_t lo = 0, hi = c->n_spans;
    while (lo < hi) { /* first span with (stream, start) > (stream, token) */
        size_t mid = lo + (hi - lo) / 2;
        const auth_span *p = &c->spans[mid];
        if (p->stream < stream || (p->stream == stream && p->start <= token))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return -1;
    const auth_span *p = &c->spans[lo - 1];
    return p->stream == stream && token >= p->start && token < p->end ? (long)(lo - 1) : -1;
}

static void on_alert(const saemon_alert *a, void *user)
{
    score_ctx *c = user;
    auth_scores *s = c->s;
    if (s->failed)
        return;
    long r = find_rule(s, a->rule);
    if (r < 0) {
        s->failed = true; /* every enabled rule was listed from the file */
        return;
    }
    auth_rule_score *rs = &s->rule[r];
    if (!strcmp(a->status, "resolved")) {
        rs->firing_tokens += a->token - a->fired_token + (c->ending ? 1 : 0);
        return;
    }
    uint64_t *ps = rs->per_stream ? rs->per_stream + a->stream * 4 : NULL;
    rs->firings++;
    if (ps)
        ps[0]++;
    long sp = find_span(c, a->stream, a->token);
    if (sp < 0) {
        rs->fp++;
        return;
    }
    rs->tp++;
    if (ps)
        ps[1]++;
    uint8_t *h = &c->hit[(size_t)r * c->n_spans + (size_t)sp];
    if (*h)
        return;
    *h = 1;
    rs->spans_hit++;
    if (ps)
        ps[2]++;
    if (rs->n_delays == rs->cap_delays) {
        size_t cap = rs->cap_delays ? 2 * rs->cap_delays : 64;
        uint64_t *g = realloc(rs->delays, cap * sizeof *g);
        if (!g) {
            s->failed = true;
            return;
        }
        rs->delays = g;
        rs->cap_delays = cap;
    }
    rs->delays[rs->n_delays++] = a->token - c->spans[sp].start;
}

static bool score_rules(const char *what, const saemon_ruleset *rules, const saemon_dict_info *info,
                        const auth_encoded *e, const auth_set *set, char *const *names, size_t n_names,
                        bool per_stream, const uint64_t *only, size_t n_only, auth_scores *out);

bool auth_score_rules(const char *what, const saemon_ruleset *rules, const saemon_dict_info *info,
                      const auth_encoded *e, const auth_set *set, char *const *names, size_t n_names,
                      bool per_stream, auth_scores *out)
{
    return score_rules(what, rules, info, e, set, names, n_names, per_stream, NULL, 0, out);
}

bool auth_score_rules_streams(const char *what, const saemon_ruleset *rules, const saemon_dict_info *info,
                              const auth_encoded *e, const auth_set *set, char *const *names, size_t n_names,
                              const uint64_t *only, size_t n_only, auth_scores *out)
{
    return score_rules(what, rules, info, e, set, names, n_names, true, only, n_only, out);
}

static bool score_rules(const char *what, const saemon_ruleset *rules, const saemon_dict_info *info,
                        const auth_encoded *e, const auth_set *set, char *const *names, size_t n_names,
                        bool per_stream, const uint64_t *only, size_t n_only, auth_scores *out)
{
    memset(out, 0, sizeof *out);
    out->set = set;
    score_ctx c = {.s = out, .n_spans = set->n_spans};
    auth_span *spans = malloc((set->n_spans ? set->n_spans : 1) * sizeof *spans);
    out->rule = calloc(n_names ? n_names : 1, sizeof *out->rule);
    c.hit = calloc((n_names ? n_names : 1) * (set->n_spans ? set->n_spans : 1), 1);
    bool ok = spans && out->rule && c.hit;
    for (size_t i = 0; ok && i < n_names; i++) {
        ok = (out->rule[i].name = strdup(names[i])) != NULL;
        if (ok && per_stream)
            ok = (out->rule[i].per_stream = calloc(set->n_streams ? set->n_streams * 4 : 1, sizeof(uint64_t))) != NULL;
    }
    out->n_rules = n_names;
    if (!ok) {
        fprintf(stderr, "saemon %s: out of memory\n", what);
        free(spans);
        free(c.hit);
        auth_scores_free(out);
        return false;
    }
    for (size_t k = 0, at = 0; k < set->n; k++) {
        if (set->rec[k].n_spans)
            memcpy(spans + at, set->rec[k].spans, set->rec[k].n_spans * sizeof *spans);
        at += set->rec[k].n_spans;
    }
    for (size_t i = 0; per_stream && i < n_names; i++)
        for (size_t k = 0; k < set->n_spans; k++)
            out->rule[i].per_stream[spans[k].stream * 4 + 3]++;
    c.spans = spans;
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    if (saemon_monitor_create(rules, info, &(saemon_monitor_options){.resolved = true}, &mon, &err) != SAEMON_OK) {
        cli_fail(what, &err);
        ok = false;
    } else {
        if (only)
            auth_replay_streams(e, set, only, n_only, mon, on_alert, &c, &c.ending);
        else
            auth_replay(e, set, mon, on_alert, &c, &c.ending);
        if (saemon_monitor_get_dropped(mon)) {
            fprintf(stderr, "saemon %s: the monitor dropped %" PRIu64 " token(s) (out of memory)\n", what,
                    saemon_monitor_get_dropped(mon));
            ok = false;
        }
        saemon_monitor_destroy(mon);
    }
    if (out->failed) {
        fprintf(stderr, "saemon %s: out of memory scoring the alerts (or an alert of an unlisted rule)\n", what);
        ok = false;
    }
    free(spans);
    free(c.hit);
    if (!ok)
        auth_scores_free(out);
    return ok;
}

void auth_scores_free(auth_scores *s)
{
    for (size_t i = 0; s->rule && i < s->n_rules; i++) {
        free(s->rule[i].name);
        free(s->rule[i].delays);
        free(s->rule[i].per_stream);
    }
    free(s->rule);
    memset(s, 0, sizeof *s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

uint64_t auth_delay_percentile(const auth_rule_score *r, double p)
{
    if (!r->n_delays)
        return 0;
    qsort(r->delays, r->n_delays, sizeof *r->delays, cmp_u64);
    /* nearest rank: the smallest value with at least p% of the delays at or below it */
    double rank = p / 100.0 * (double)r->n_delays;
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    if (k < 1)
        k = 1;
    return r->delays[k - 1];
}
