/* The threshold search of `saemon calibrate` (docs/authoring.md "calibrate").
 *
 * The candidate thresholds of a rule are the distinct values its tuned leaf
 * takes on the recordings (and 0), strictest first: each lets exactly the
 * tokens beyond it through. The scan is exact: it stops before the first
 * candidate whose firing-event rate on the benign tokens exceeds the target,
 * as if every candidate were replayed in turn through the monitor.
 *
 * Two facts make that cheap without approximating:
 * - The monitor keeps its state per (rule, stream) and resets it at each
 *   sequence start (docs/rules.md "Evaluation"), so a rule's firing count is
 *   the sum of its per-stream counts, and moving from candidate k to k+1
 *   changes the leaf's truth only on the tokens whose value lies between them
 *   (for `above`: the tokens equal to candidate k): only their streams'
 *   counts can change. A round therefore advances a rule over macro steps
 *   (each ending on a candidate the bound below does not prove) whose
 *   changed streams are disjoint: each such stream changes in one macro
 *   step of the batch, so replaying it at the batch's last candidate gives
 *   its count after its change, and the running sum of the per-stream
 *   differences is the exact count at the end of every macro step. Only the
 *   changed streams (of every rule at once) are replayed, each from its
 *   first token, in one monitor per round.
 * - A bound from the leaf alone (cli/rule_text.c leaf_bound: tokens where
 *   it held, or its runs of at least `for` tokens) proves the candidates
 *   within the target without a replay. */
#include "cli/calibrate.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "cli/auth_args.h"
#include "base/clock.h"
#include "cli/cli.h"

#define RULES_MAX_BYTES ((size_t)64 << 20)

typedef struct calib_ctx {
    const calib_opts *o;
    const char *text;
    size_t len;
    const saemon_dict_info *info;
    const auth_encoded *enc;
    const auth_set *set;
    char **names;
    size_t n_names;
    uint64_t benign;
} calib_ctx;

typedef struct cand_rule {
    auth_tunable *t;
    float *cand;        /* candidate thresholds, strictest first */
    uint64_t *ub;       /* an upper bound on the firing events at each (NULL: none) */
    size_t n_cand;
    uint64_t *chg;      /* streams whose tokens change from candidate k to k+1: */
    size_t *chg_at;     /* chg[chg_at[k] .. chg_at[k+1]), ascending, distinct */
    bool full0;         /* `below`: candidate 0 -> 1 changes every token where the feature is 0 */
    size_t *next;       /* [n_cand]: the first candidate after k the bound does not prove (n_cand: none) */
    size_t k;           /* current candidate (held) */
    int64_t fires;      /* its benign firing events */
    uint32_t *per;      /* [n_streams] benign firing events per stream at k */
    /* this round: macro steps k -> mend[0] -> mend[1] ..., each ending on a
     * candidate the bound does not prove, changing the streams
     * mst[mat[i] .. mat[i+1]), pairwise disjoint between macro steps */
    size_t *mend, *mat, n_macro;
    uint64_t *mst;
    bool full;          /* this round's single macro step changes every stream */
    bool done, unreachable;
    double rate_at_strictest;
    float chosen;
} cand_rule;

typedef struct vt {
    float v;
    uint64_t tok;
} vt;

static int cmp_vt_desc(const void *a, const void *b)
{
    const vt *x = a, *y = b;
    if (x->v != y->v)
        return (x->v < y->v) - (x->v > y->v);
    return (x->tok > y->tok) - (x->tok < y->tok);
}

static int cmp_vt_asc(const void *a, const void *b)
{
    const vt *x = a, *y = b;
    if (x->v != y->v)
        return (x->v > y->v) - (x->v < y->v);
    return (x->tok > y->tok) - (x->tok < y->tok);
}

/* The global stream of every token (non-decreasing in the token). */
static uint64_t *token_streams(const auth_set *set)
{
    uint64_t *st = malloc((set->n_rows + 1) * sizeof *st);
    for (size_t k = 0; st && k < set->n; k++) {
        const auth_recording *rec = &set->rec[k];
        for (size_t row = 0; row < rec->n_rows; row++)
            st[rec->first_row + row] = rec->first_stream + row / rec->tokens_per_stream;
    }
    return st;
}

/* The (value, token) of every token where the tuned value is > 0 (a
 * feature's activation) or in (0, 1) (a probe's probability,
 * sigmoid(bias + sum w·v)). */
static vt *leaf_values(const auth_tunable *t, const auth_encoded *e, uint64_t *n_out)
{
    uint64_t n = 0;
    if (t->probe)
        n = e->n_tokens;
    else
        for (uint64_t i = 0; i < e->offsets[e->n_tokens]; i++)
            n += e->index[i] == t->feature;
    vt *v = malloc((n + 1) * sizeof *v);
    uint64_t m = 0;
    for (uint64_t tok = 0; v && tok < e->n_tokens; tok++) {
        if (t->probe) {
            double z = t->probe_bias;
            for (uint64_t i = e->offsets[tok]; i < e->offsets[tok + 1]; i++)
                for (size_t k = 0; k < t->n_probe; k++)
                    if (e->index[i] == t->probe_feature[k])
                        z += t->probe_weight[k] * (double)e->value[i];
            float p = (float)(1.0 / (1.0 + exp(-z)));
            if (p > 0 && p < 1)
                v[m++] = (vt){p, tok};
            continue;
        }
        for (uint64_t i = e->offsets[tok]; i < e->offsets[tok + 1]; i++)
            if (e->index[i] == t->feature && e->value[i] > 0)
                v[m++] = (vt){e->value[i], tok};
    }
    *n_out = m;
    return v;
}

/* Runs of at least `min` consecutive tokens of one stream where the leaf
 * held, kept as tokens are let through one by one: other[] holds, at each
 * end of a run, its other end. */
typedef struct runs {
    uint8_t *on;
    uint64_t *other;
    const uint64_t *st;
    uint64_t n, min, count;
} runs;

static void runs_add(runs *r, uint64_t g)
{
    bool left = g > 0 && r->on[g - 1] == 1 && r->st[g - 1] == r->st[g];
    bool right = g + 1 < r->n && r->on[g + 1] == 1 && r->st[g + 1] == r->st[g];
    uint64_t a = left ? r->other[g - 1] : g, b = right ? r->other[g + 1] : g;
    if (left && g - a >= r->min)
        r->count--;
    if (right && b - g >= r->min)
        r->count--;
    if (b - a + 1 >= r->min)
        r->count++;
    r->on[g] = 1;
    r->other[a] = b;
    r->other[b] = a;
}

/* Candidates of one rule, the streams each step changes and, when the leaf
 * bounds the rule's firings, the bound at each candidate. */
static bool candidates(cand_rule *r, const auth_encoded *e, const uint64_t *tok_stream)
{
    uint64_t k = 0;
    vt *v = leaf_values(r->t, e, &k);
    r->cand = malloc((k + 2) * sizeof *r->cand);
    r->ub = r->t->bound != AUTH_BOUND_NONE ? malloc((k + 2) * sizeof *r->ub) : NULL;
    r->next = malloc((k + 2) * sizeof *r->next);
    r->chg_at = malloc((k + 3) * sizeof *r->chg_at);
    r->chg = malloc((k + 1) * sizeof *r->chg);
    runs ru = {.st = tok_stream, .n = e->n_tokens, .min = r->t->run_min ? r->t->run_min : 1};
    if (r->t->bound == AUTH_BOUND_RUNS) {
        ru.on = calloc(e->n_tokens + 1, 1);
        ru.other = malloc((e->n_tokens + 1) * sizeof *ru.other);
    }
    bool ok = v && r->cand && r->next && r->chg_at && r->chg &&
              (r->t->bound == AUTH_BOUND_NONE || r->ub) && (r->t->bound != AUTH_BOUND_RUNS || (ru.on && ru.other));
    if (!ok)
        goto out;
    const bool above = r->t->probe || r->t->above;
    qsort(v, k, sizeof *v, above ? cmp_vt_desc : cmp_vt_asc);
    size_t m = 0, nc = 0;
    uint64_t through = 0;
#define AT_CAND() \
    (r->ub ? (void)(r->ub[m] = r->t->bound == AUTH_BOUND_RUNS ? ru.count : through) : (void)0)
    if (!above) { /* strictest: below 0 lets nothing through; then the zeros */
        AT_CAND();
        r->cand[m] = 0;
        r->chg_at[m++] = 0;
        through = e->n_tokens - k;
        r->full0 = through > 0;
        if (r->t->bound == AUTH_BOUND_RUNS) { /* on[] marks the active tokens for a moment */
            for (uint64_t i = 0; i < k; i++)
                ru.on[v[i].tok] = 2;
            for (uint64_t g = 0; g < e->n_tokens; g++)
                if (ru.on[g] == 2)
                    ru.on[g] = 0;
                else
                    ru.on[g] = 3; /* to add */
            for (uint64_t g = 0; g < e->n_tokens; g++)
                if (ru.on[g] == 3)
                    ru.on[g] = 0, runs_add(&ru, g);
        }
    }
    for (uint64_t i = 0; i < k;) { /* one group of equal values: a candidate, then the step past it */
        float u = v[i].v;
        AT_CAND();
        r->cand[m] = u;
        r->chg_at[m++] = nc;
        for (; i < k && v[i].v == u; i++, through++) {
            uint64_t s = tok_stream[v[i].tok];
            if (nc == r->chg_at[m - 1] || r->chg[nc - 1] != s)
                r->chg[nc++] = s;
            if (r->t->bound == AUTH_BOUND_RUNS)
                runs_add(&ru, v[i].tok);
        }
    }
    if (above && !r->t->probe) { /* loosest: above 0 lets every active token through */
        AT_CAND();
        r->cand[m] = 0;
        r->chg_at[m++] = nc;
    }
#undef AT_CAND
    r->chg_at[m] = nc;
    r->n_cand = m;
    if (!m)
        r->done = r->unreachable = true;
out:
    free(v);
    free(ru.on);
    free(ru.other);
    return ok;
}

static bool holds(const calib_ctx *c, int64_t fires)
{
    return (c->benign ? (double)fires / (double)c->benign : 0) <= c->o->max_rate;
}

/* next[]: for each candidate, the first later one the bound does not prove
 * to hold; and where the scan starts (the last proven candidate before the
 * first unproven one, or 0). */
static void plan(const calib_ctx *c, cand_rule *r)
{
    size_t m = r->n_cand, nx = m;
    for (size_t k = m; k-- > 0;) {
        r->next[k] = nx;
        if (!r->ub || !holds(c, (int64_t)r->ub[k]))
            nx = k;
    }
    if (nx == m) { /* every candidate is proven to hold: the loosest wins without a replay */
        r->done = true;
        r->chosen = r->cand[m - 1];
    }
    r->k = nx > 0 ? nx - 1 : 0;
    free(r->ub); /* only the plan needs it */
    r->ub = NULL;
}

/* This round's macro steps of a rule (stamp[] == mark: a stream taken by an
 * earlier macro step of this batch). */
static void batch(cand_rule *r, uint32_t *stamp, uint32_t mark, uint64_t n_streams)
{
    size_t at = r->k;
    r->n_macro = 0;
    r->full = false;
    r->mat[0] = 0;
    while (at + 1 < r->n_cand) {
        size_t p = r->next[at];
        if (p == r->n_cand) { /* the rest is proven: reached next round, or now when nothing else is left */
            if (!r->n_macro) {
                r->done = true;
                r->chosen = r->cand[r->n_cand - 1];
            }
            return;
        }
        if (at == 0 && r->full0) {
            if (!r->n_macro) {
                r->full = true;
                r->mend[0] = p;
                r->mat[1] = 0;
                r->n_macro = 1;
            }
            return;
        }
        for (size_t i = r->chg_at[at]; i < r->chg_at[p]; i++)
            if (stamp[r->chg[i]] == mark)
                return;
        size_t n = r->mat[r->n_macro];
        for (size_t i = r->chg_at[at]; i < r->chg_at[p]; i++)
            if (stamp[r->chg[i]] != mark) {
                stamp[r->chg[i]] = mark;
                r->mst[n++] = r->chg[i];
            }
        r->mend[r->n_macro++] = p;
        r->mat[r->n_macro] = n;
        at = p;
        if (n == n_streams)
            return;
    }
}

typedef struct edit {
    size_t start, end;
    char text[32];
} edit;

static int cmp_edit_desc(const void *a, const void *b)
{
    const edit *x = a, *y = b;
    return (x->start < y->start) - (x->start > y->start);
}

/* The rule file with the given thresholds written in. */
static char *apply_edits(const char *text, size_t len, edit *ed, size_t n, size_t *out_len)
{
    qsort(ed, n, sizeof *ed, cmp_edit_desc); /* from the end: earlier offsets stay valid */
    char *cur = malloc(len + 1);
    if (!cur)
        return NULL;
    memcpy(cur, text, len);
    cur[len] = 0;
    size_t cl = len;
    for (size_t i = 0; i < n; i++) {
        size_t nl;
        char *next = auth_text_replace(cur, cl, ed[i].start, ed[i].end, ed[i].text, &nl);
        free(cur);
        if (!(cur = next))
            return NULL;
        cl = nl;
    }
    *out_len = cl;
    return cur;
}


static bool score_text(calib_ctx *c, const char *text, size_t len, auth_scores *out)
{
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    if (saemon_rules_from_string(text, len, c->o->rules_path, NULL, &rules, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon calibrate: %s\n", err.message);
        return false;
    }
    bool ok = auth_score_rules("calibrate", rules, c->info, c->enc, c->set, c->names, c->n_names, false, out);
    saemon_rules_close(rules);
    return ok;
}

static double rate_of(const calib_ctx *c, const auth_rule_score *s)
{
    return c->benign ? (double)s->fp / (double)c->benign : 0;
}

/* Replay the rules with each active one at `at(r)`, over `only` (NULL: every
 * stream); fills *sc per stream. */
static bool replay_round(calib_ctx *c, cand_rule *cr, size_t n, bool first, const uint64_t *only, size_t n_only,
                         auth_scores *sc)
{
    edit *ed = malloc((n ? n : 1) * sizeof *ed);
    size_t ne = 0;
    for (size_t i = 0; ed && i < n; i++) {
        if (cr[i].done)
            continue;
        ed[ne].start = cr[i].t->start;
        ed[ne].end = cr[i].t->end;
        auth_format_threshold(ed[ne].text, sizeof ed[ne].text, cr[i].cand[first ? cr[i].k : cr[i].mend[cr[i].n_macro - 1]]);
        ne++;
    }
    size_t tl;
    char *t = ed ? apply_edits(c->text, c->len, ed, ne, &tl) : NULL;
    free(ed);
    if (!t) {
        fprintf(stderr, "saemon calibrate: out of memory\n");
        return false;
    }
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    bool ok = saemon_rules_from_string(t, tl, c->o->rules_path, NULL, &rules, &err) == SAEMON_OK;
    if (!ok)
        fprintf(stderr, "saemon calibrate: %s\n", err.message);
    free(t);
    if (ok)
        ok = auth_score_rules_streams("calibrate", rules, c->info, c->enc, c->set, c->names, c->n_names,
                                      only, only ? n_only : 0, sc);
    saemon_rules_close(rules);
    return ok;
}

/* Benign firing events of rule r on stream s in a per-stream score. */
static uint32_t benign_on(const auth_rule_score *s, uint64_t stream)
{
    return s ? (uint32_t)(s->per_stream[stream * 4] - s->per_stream[stream * 4 + 1]) : 0;
}

static const auth_rule_score *score_of(const auth_scores *sc, const char *name)
{
    for (size_t k = 0; k < sc->n_rules; k++)
        if (!strcmp(sc->rule[k].name, name))
            return &sc->rule[k];
    return NULL;
}

/* After a round: walk the rule's macro steps; each changed stream changed
 * in one macro step only, so adding its new count minus its old one, macro
 * step by macro step, gives the exact count at each macro step's end. */
static void advance(const calib_ctx *c, cand_rule *r, const auth_rule_score *s, const uint64_t *only, size_t no)
{
    const uint64_t ns = c->set->n_streams;
    int64_t f = r->fires;
    for (size_t i = 0; i < r->n_macro; i++) {
        if (r->full)
            for (uint64_t st = 0; st < ns; st++)
                f += (int64_t)benign_on(s, st) - (int64_t)r->per[st];
        else
            for (size_t x = r->mat[i]; x < r->mat[i + 1]; x++)
                f += (int64_t)benign_on(s, r->mst[x]) - (int64_t)r->per[r->mst[x]];
        if (!holds(c, f)) { /* mend[i] is the first candidate over the target: every one before it held */
            r->done = true;
            r->chosen = r->cand[r->mend[i] - 1];
            return;
        }
    }
    r->fires = f;
    if (r->full)
        for (uint64_t st = 0; st < ns; st++)
            r->per[st] = benign_on(s, st);
    else
        for (size_t x = 0; x < no; x++)
            r->per[only[x]] = benign_on(s, only[x]);
    r->k = r->mend[r->n_macro - 1];
    if (r->k + 1 == r->n_cand)
        r->done = true, r->chosen = r->cand[r->k];
}

static bool scan(calib_ctx *c, cand_rule *cr, size_t n, size_t *rounds)
{
    const uint64_t ns = c->set->n_streams;
    uint32_t *stamp = calloc(ns ? ns : 1, sizeof *stamp);
    uint64_t *only = malloc((ns ? ns : 1) * sizeof *only);
    bool *in = calloc(ns ? ns : 1, sizeof *in);
    bool ok = stamp && only && in;
    for (size_t i = 0; ok && i < n; i++) {
        if (cr[i].done)
            continue;
        plan(c, &cr[i]);
        if (cr[i].done)
            continue;
        cr[i].per = calloc(ns ? ns : 1, sizeof *cr[i].per);
        cr[i].mst = malloc((ns ? ns : 1) * sizeof *cr[i].mst);
        cr[i].mend = malloc((ns + 2) * sizeof *cr[i].mend);
        cr[i].mat = malloc((ns + 3) * sizeof *cr[i].mat);
        ok = cr[i].per && cr[i].mst && cr[i].mend && cr[i].mat;
    }
    if (!ok) {
        fprintf(stderr, "saemon calibrate: out of memory\n");
        goto out;
    }
    /* the starting candidate of every rule, on every stream */
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= !cr[i].done;
    if (any) {
        auth_scores sc;
        if (!(ok = replay_round(c, cr, n, true, NULL, 0, &sc)))
            goto out;
        (*rounds)++;
        for (size_t i = 0; i < n; i++) {
            cand_rule *r = &cr[i];
            if (r->done)
                continue;
            const auth_rule_score *s = score_of(&sc, r->t->rule);
            r->fires = 0;
            for (uint64_t st = 0; st < ns; st++)
                r->fires += r->per[st] = benign_on(s, st);
            if (r->k == 0)
                r->rate_at_strictest = c->benign ? (double)r->fires / (double)c->benign : 0;
            if (!holds(c, r->fires)) /* only the strictest can: a later start is proven */
                r->done = r->unreachable = true;
            else if (r->k + 1 == r->n_cand)
                r->done = true, r->chosen = r->cand[r->k];
        }
        auth_scores_free(&sc);
    }
    for (uint32_t mark = 0;;) {
        bool full = false;
        size_t no = 0;
        any = false;
        for (size_t i = 0; i < n; i++) {
            cand_rule *r = &cr[i];
            if (r->done)
                continue;
            batch(r, stamp, ++mark, ns); /* a mark of its own per rule and round */
            if (r->done)
                continue;
            any = true;
            full |= r->full;
        }
        if (!any)
            break;
        /* the union of the batches' streams, ascending */
        for (size_t i = 0; !full && i < n; i++) {
            const cand_rule *r = &cr[i];
            for (size_t x = 0; !r->done && x < r->mat[r->n_macro]; x++)
                in[r->mst[x]] = true;
        }
        for (uint64_t st = 0; !full && st < ns; st++)
            if (in[st])
                only[no++] = st, in[st] = false;
        auth_scores sc;
        if (!(ok = replay_round(c, cr, n, false, full ? NULL : only, no, &sc)))
            goto out;
        (*rounds)++;
        for (size_t i = 0; i < n; i++)
            if (!cr[i].done)
                advance(c, &cr[i], score_of(&sc, cr[i].t->rule), only, no);
        auth_scores_free(&sc);
    }
out:
    free(stamp);
    free(only);
    free(in);
    return ok;
}

static const auth_rule_score *find(const auth_scores *s, const char *name)
{
    for (size_t k = 0; k < s->n_rules; k++)
        if (!strcmp(s->rule[k].name, name))
            return &s->rule[k];
    return NULL;
}

static void print_recall(const auth_set *set, const auth_rule_score *s)
{
    if (set->n_spans)
        printf(" %7.4f", s ? (double)s->spans_hit / (double)set->n_spans : 0.0);
    else
        printf(" %7s", "-");
}

static void report(const calib_ctx *c, auth_tunable *t, size_t n_t, const cand_rule *cr, size_t n_cr,
                   const auth_scores *before, const auth_scores *after)
{
    printf("target: at most %.6g firing events per benign token (%.4g per 1000); %" PRIu64
           " benign tokens, %zu positive span(s)\n", c->o->max_rate, 1000 * c->o->max_rate, c->benign,
           c->set->n_spans);
    printf("%-24s %-18s %12s %12s %9s %9s %8s %8s %9s  %s\n", "rule", "threshold", "before", "after", "per1k-was",
           "per1k-now", "recall-was", "recall", "firing", "status");
    for (size_t i = 0; i < n_t; i++) {
        const cand_rule *r = NULL;
        for (size_t k = 0; k < n_cr; k++)
            if (cr[k].t == &t[i])
                r = &cr[k];
        const auth_rule_score *b = find(before, t[i].rule), *a = find(after, t[i].rule);
        char was[32] = "-", now[32] = "-";
        if (!t[i].why[0]) {
            auth_format_threshold(was, sizeof was, (float)t[i].value);
            if (r && !r->unreachable)
                auth_format_threshold(now, sizeof now, r->chosen);
            else
                snprintf(now, sizeof now, "%s", was);
        }
        printf("%-24s %-18s %12s %12s %9.4g %9.4g", t[i].rule, t[i].path, was, now,
               b ? 1000 * rate_of(c, b) : 0.0, a ? 1000 * rate_of(c, a) : 0.0);
        print_recall(c->set, b);
        print_recall(c->set, a);
        printf(" %9.4g  ", a && c->set->n_rows ? (double)a->firing_tokens / (double)c->set->n_rows : 0.0);
        if (t[i].why[0])
            printf("not tunable: %s\n", t[i].why);
        else if (r && r->unreachable && !r->n_cand)
            printf("unreachable: the probe's probability is never strictly between 0 and 1\n");
        else if (r && r->unreachable)
            printf("unreachable: %.4g per 1000 even at the strictest threshold %s\n", 1000 * r->rate_at_strictest,
                   (snprintf(now, sizeof now, "%.9g", (double)r->cand[0]), now));
        else
            printf("%s\n", !strcmp(was, now) ? "unchanged" : "tuned");
    }
}

int calibrate_run(const calib_opts *o, const auth_files *files)
{
    int rc = CLI_FAIL;
    saemon_error err = {0};
    char *text = NULL;
    size_t len = 0, n_t = 0, n_cr = 0, rounds = 0;
    auth_tunable *t = NULL;
    cand_rule *cr = NULL;
    saemon_ruleset *rules = NULL;
    saemon_dict *dict = NULL;
    saemon_encoder *enc = NULL;
    auth_set set = {0};
    auth_encoded e = {0};
    auth_scores before = {0}, after = {0};
    char **names = NULL;
    char *final = NULL;
    uint64_t *tok_stream = NULL;
    if (read_whole_file(o->rules_path, RULES_MAX_BYTES, "rule file", &text, &len, &err) != SAEMON_OK ||
        saemon_rules_open(o->rules_path, NULL, &rules, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon calibrate: %s\n", err.message);
        goto done;
    }
    if (!auth_find_tunables("calibrate", o->rules_path, text, len, o->tune, o->n_tune, &t, &n_t))
        goto done;
    if (!auth_open_encoder("calibrate", o->sae, rules, o->threads, &dict, &enc))
        goto done;
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    if (!auth_files_open(files, "calibrate", info->d_in, info->reshape_hook_z, &set))
        goto done;
    if (set.n_pos_tokens == set.n_rows) {
        fprintf(stderr, "saemon calibrate: no benign token: every token of the recordings is labelled positive\n");
        goto done;
    }
    double t0 = clock_now_s();
    if (!auth_encode_set("calibrate", enc, info->d_in, &set, &e))
        goto done;
    double t_enc = clock_now_s() - t0;
    names = calloc(n_t ? n_t : 1, sizeof *names);
    cr = calloc(n_t ? n_t : 1, sizeof *cr);
    if (!names || !cr)
        goto oom;
    for (size_t i = 0; i < n_t; i++)
        names[i] = t[i].rule;
    calib_ctx c = {.o = o, .text = text, .len = len, .info = info, .enc = &e, .set = &set, .names = names,
                   .n_names = n_t, .benign = set.n_rows - set.n_pos_tokens};
    if (!score_text(&c, text, len, &before))
        goto done;
    if (!(tok_stream = token_streams(&set)))
        goto oom;
    for (size_t i = 0; i < n_t; i++) {
        if (t[i].why[0])
            continue;
        cr[n_cr].t = &t[i];
        if (!candidates(&cr[n_cr++], &e, tok_stream))
            goto oom;
    }
    if (!scan(&c, cr, n_cr, &rounds))
        goto done;
    edit *ed = malloc((n_cr ? n_cr : 1) * sizeof *ed);
    size_t ne = 0, fl = 0;
    for (size_t i = 0; ed && i < n_cr; i++)
        if (!cr[i].unreachable) {
            ed[ne].start = cr[i].t->start;
            ed[ne].end = cr[i].t->end;
            auth_format_threshold(ed[ne].text, sizeof ed[ne].text, cr[i].chosen);
            ne++;
        }
    final = ed ? apply_edits(text, len, ed, ne, &fl) : NULL;
    free(ed);
    if (!final)
        goto oom;
    if (!score_text(&c, final, fl, &after))
        goto done;
    report(&c, t, n_t, cr, n_cr, &before, &after);
    fprintf(stderr, "saemon calibrate: %" PRIu64 " tokens encoded in %.1f s, %zu replay round(s) in %.1f s\n",
            set.n_rows, t_enc, rounds + 2, clock_now_s() - t0 - t_enc);
    if (o->output && !auth_write_atomic("calibrate", o->output, final, fl))
        goto done;
    rc = CLI_OK;
    goto done;
oom:
    fprintf(stderr, "saemon calibrate: out of memory\n");
done:
    for (size_t i = 0; cr && i < n_cr; i++) {
        free(cr[i].cand);
        free(cr[i].chg);
        free(cr[i].chg_at);
        free(cr[i].per);
        free(cr[i].ub);
        free(cr[i].next);
        free(cr[i].mst);
        free(cr[i].mend);
        free(cr[i].mat);
    }
    free(cr);
    free(tok_stream);
    free(names);
    free(final);
    auth_scores_free(&before);
    auth_scores_free(&after);
    auth_encoded_free(&e);
    auth_set_free(&set);
    saemon_encoder_destroy(enc);
    saemon_dict_close(dict);
    saemon_rules_close(rules);
    auth_tunables_free(t, n_t);
    free(text);
    return rc;
}
