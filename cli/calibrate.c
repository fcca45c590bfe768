/* The threshold search of `saemon calibrate` (docs/authoring.md "calibrate").
 *
 * The candidate thresholds of a rule are the distinct values its feature
 * takes on the recordings (and 0): each is the least strict threshold that
 * lets exactly the tokens above it (for `above`; below it for `below`)
 * through. When the rule's condition is that leaf alone, the candidates that
 * let at most target x benign tokens through hold without a replay (each
 * firing needs a token on which the condition held). The others are tried
 * from the strictest on, every rule at once in one
 * replay per round: the first CALIB_DENSE one by one, then steps that let
 * through at least CALIB_GROWTH times as many tokens as the last; once a step
 * exceeds the target, the candidates between the last step that held and it
 * are bisected. The firing-event rate is not monotone in the threshold, so a
 * candidate skipped between two steps that held could in principle exceed
 * it; every reported number is the monitor's own for the chosen threshold. */
#include "cli/calibrate.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "cli/auth_args.h"
#include "base/clock.h"
#include "cli/cli.h"

#define CALIB_DENSE 8
#define CALIB_GROWTH 1.25
#define RULES_MAX_BYTES ((size_t)64 << 20)

typedef struct cand_rule {
    auth_tunable *t;
    float *cand;        /* candidate thresholds, strictest first */
    uint64_t *passing;  /* tokens let through at each */
    size_t n_cand;
    size_t *steps;      /* candidate indices of the coarse scan */
    size_t n_steps, si;
    long lo, hi;        /* last candidate that held / first that exceeded (-1: none) */
    bool done, unreachable;
    double rate_at_strictest;
    float chosen;
} cand_rule;

static int cmp_float_asc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Distinct values of the rule's feature over every token, as candidates.
 * `bound`: when the rule's whole condition is this leaf, a candidate letting
 * at most `bound` tokens through (of any side) holds without a replay: every
 * firing needs a token on which the condition held. */
/* A probe's probability on every token, sigmoid(bias + sum w·v), in (0, 1). */
static float *probe_values(const auth_tunable *t, const auth_encoded *e, uint64_t *n_out)
{
    float *v = malloc((e->n_tokens + 1) * sizeof *v);
    uint64_t n = 0;
    for (uint64_t tok = 0; v && tok < e->n_tokens; tok++) {
        double z = t->probe_bias;
        for (uint64_t i = e->offsets[tok]; i < e->offsets[tok + 1]; i++)
            for (size_t k = 0; k < t->n_probe; k++)
                if (e->index[i] == t->probe_feature[k])
                    z += t->probe_weight[k] * (double)e->value[i];
        float p = (float)(1.0 / (1.0 + exp(-z)));
        if (p > 0 && p < 1)
            v[n++] = p;
    }
    *n_out = n;
    return v;
}

static bool probe_candidates(cand_rule *r, const auth_encoded *e);

static bool candidates(cand_rule *r, const auth_encoded *e, double bound)
{
    if (r->t->probe)
        return probe_candidates(r, e);
    uint64_t n = 0;
    for (uint64_t i = 0; i < e->offsets[e->n_tokens]; i++)
        n += e->index[i] == r->t->feature;
    float *v = malloc((n + 1) * sizeof *v);
    r->cand = malloc((n + 1) * sizeof *r->cand);
    r->passing = malloc((n + 1) * sizeof *r->passing);
    r->steps = malloc((n + 1) * sizeof *r->steps);
    if (!v || !r->cand || !r->passing || !r->steps) {
        free(v);
        return false;
    }
    uint64_t k = 0;
    for (uint64_t i = 0; i < e->offsets[e->n_tokens]; i++)
        if (e->index[i] == r->t->feature && e->value[i] > 0)
            v[k++] = e->value[i];
    qsort(v, k, sizeof *v, cmp_float_asc);
    const uint64_t zeros = e->n_tokens - k;
    size_t m = 0;
    if (r->t->above) { /* strictest: the largest value; then down to 0 */
        uint64_t through = 0;
        for (uint64_t i = k; i > 0;) {
            float u = v[i - 1];
            r->cand[m] = u;
            r->passing[m++] = through;
            while (i > 0 && v[i - 1] == u)
                i--, through++;
        }
        r->cand[m] = 0;
        r->passing[m++] = through;
    } else { /* strictest: below 0 lets nothing through; then up */
        uint64_t through = 0;
        r->cand[m] = 0;
        r->passing[m++] = 0;
        through = zeros;
        for (uint64_t i = 0; i < k;) {
            float u = v[i];
            r->cand[m] = u;
            r->passing[m++] = through;
            while (i < k && v[i] == u)
                i++, through++;
        }
    }
    free(v);
    r->n_cand = m;
    r->lo = r->hi = -1;
    size_t from = 0;
    bool leaf = !strcmp(r->t->path, "condition.above") || !strcmp(r->t->path, "condition.below");
    while (leaf && from < m && (double)r->passing[from] <= bound)
        r->lo = (long)from++;
    if (from == m) { /* even the loosest candidate holds */
        r->done = true;
        r->chosen = r->cand[m - 1];
        return true;
    }
    uint64_t last = r->lo >= 0 ? r->passing[r->lo] : 0;
    for (size_t i = from; i < m; i++)
        if (i < from + CALIB_DENSE || i + 1 == m || (double)r->passing[i] >= CALIB_GROWTH * (double)last) {
            r->steps[r->n_steps++] = i;
            last = r->passing[i] ? r->passing[i] : 1;
        }
    return true;
}

/* A probe's candidates: its distinct probabilities, the largest first (a
 * probe's `above` must stay strictly inside (0, 1)). */
static bool probe_candidates(cand_rule *r, const auth_encoded *e)
{
    uint64_t k = 0;
    float *v = probe_values(r->t, e, &k);
    r->cand = malloc((k + 1) * sizeof *r->cand);
    r->passing = malloc((k + 1) * sizeof *r->passing);
    r->steps = malloc((k + 1) * sizeof *r->steps);
    if (!v || !r->cand || !r->passing || !r->steps) {
        free(v);
        return false;
    }
    qsort(v, k, sizeof *v, cmp_float_asc);
    size_t m = 0;
    uint64_t through = 0;
    for (uint64_t i = k; i > 0;) {
        float u = v[i - 1];
        r->cand[m] = u;
        r->passing[m++] = through;
        while (i > 0 && v[i - 1] == u)
            i--, through++;
    }
    free(v);
    r->n_cand = m;
    r->lo = r->hi = -1;
    if (!m) {
        r->done = r->unreachable = true;
        return true;
    }
    uint64_t last = 0;
    for (size_t i = 0; i < m; i++)
        if (i < CALIB_DENSE || i + 1 == m || (double)r->passing[i] >= CALIB_GROWTH * (double)last) {
            r->steps[r->n_steps++] = i;
            last = r->passing[i] ? r->passing[i] : 1;
        }
    return true;
}

/* The candidate this rule tries in the current round, or -1 when done. */
static long next_try(const cand_rule *r)
{
    if (r->done)
        return -1;
    if (r->hi < 0)
        return (long)r->steps[r->si];
    return r->lo + (r->hi - r->lo) / 2;
}

/* Record the outcome of trying candidate k. */
static void outcome(cand_rule *r, long k, bool held, double rate)
{
    if (k == 0 && r->hi < 0 && r->si == 0)
        r->rate_at_strictest = rate;
    if (r->hi < 0) {
        if (held) {
            r->lo = k;
            if (++r->si == r->n_steps)
                r->done = true;
        } else {
            r->hi = k;
            if (r->lo < 0)
                r->done = r->unreachable = true;
        }
    } else if (held) {
        r->lo = k;
    } else {
        r->hi = k;
    }
    if (!r->done && r->hi >= 0 && r->hi - r->lo <= 1)
        r->done = true;
    if (r->done && !r->unreachable)
        r->chosen = r->cand[r->lo];
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

static bool scan(calib_ctx *c, cand_rule *cr, size_t n, size_t *rounds)
{
    edit *ed = malloc((n ? n : 1) * sizeof *ed);
    long *trying = malloc((n ? n : 1) * sizeof *trying);
    bool ok = ed && trying;
    for (;;) {
        size_t ne = 0;
        for (size_t i = 0; ok && i < n; i++) {
            trying[i] = next_try(&cr[i]);
            if (trying[i] < 0)
                continue;
            ed[ne].start = cr[i].t->start;
            ed[ne].end = cr[i].t->end;
            auth_format_threshold(ed[ne].text, sizeof ed[ne].text, cr[i].cand[trying[i]]);
            ne++;
        }
        if (!ok || !ne)
            break;
        size_t tl;
        char *t = apply_edits(c->text, c->len, ed, ne, &tl);
        auth_scores sc;
        ok = t && score_text(c, t, tl, &sc);
        free(t);
        if (!ok)
            break;
        (*rounds)++;
        for (size_t i = 0; i < n; i++) {
            if (trying[i] < 0)
                continue;
            const auth_rule_score *s = NULL;
            for (size_t k = 0; k < sc.n_rules; k++)
                if (!strcmp(sc.rule[k].name, cr[i].t->rule))
                    s = &sc.rule[k];
            double rate = s ? rate_of(c, s) : 0;
            outcome(&cr[i], trying[i], rate <= c->o->max_rate, rate);
        }
        auth_scores_free(&sc);
    }
    free(ed);
    free(trying);
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
    for (size_t i = 0; i < n_t; i++) {
        if (t[i].why[0])
            continue;
        cr[n_cr].t = &t[i];
        if (!candidates(&cr[n_cr++], &e, o->max_rate * (double)c.benign))
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
        free(cr[i].passing);
        free(cr[i].steps);
    }
    free(cr);
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
