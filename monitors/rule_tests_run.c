/* saemon_rules_run_tests: feed each test's tokens to fresh monitors and diff
 * the alerts against the expectations. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/read_file.h"
#include "monitors/rule_tests.h"

typedef struct got_alert {
    const rules_rule *rule;
    bool resolved, matched;
    uint64_t stream, token;
    char **annotations;   /* rendered values, malloc'd */
} got_alert;

typedef struct recorder {
    got_alert *a;
    size_t n, cap;
    const saemon_ruleset *rs;
    bool nomem;
} recorder;

static const rules_rule *find_rule(const saemon_ruleset *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_rules; i++)
        if (!strcmp(rs->rules[i].name, name))
            return &rs->rules[i];
    return NULL;
}

static void record(const saemon_alert *alert, void *user)
{
    recorder *r = user;
    if (r->nomem)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        got_alert *a = realloc(r->a, cap * sizeof *a);
        if (!a) {
            r->nomem = true;
            return;
        }
        r->a = a;
        r->cap = cap;
    }
    got_alert *g = &r->a[r->n];
    *g = (got_alert){.rule = find_rule(r->rs, alert->rule), .resolved = !strcmp(alert->status, "resolved"),
                     .stream = alert->stream, .token = alert->token};
    g->annotations = calloc(alert->n_annotations ? alert->n_annotations : 1, sizeof *g->annotations);
    if (!g->annotations) {
        r->nomem = true;
        return;
    }
    r->n++;
    for (size_t i = 0; i < alert->n_annotations; i++)
        if (!(g->annotations[i] = strdup(alert->annotations[i].value)))
            r->nomem = true;
}

static void recorder_clear(recorder *r)
{
    for (size_t i = 0; i < r->n; i++) {
        for (size_t k = 0; k < r->a[i].rule->n_annotations; k++)
            free(r->a[i].annotations[k]);
        free(r->a[i].annotations);
    }
    r->n = 0;
}

static bool same_kv(const saemon_kv *want, size_t n_want, const saemon_kv *keys, char *const *values, size_t n)
{
    if (n_want != n)
        return false;
    for (size_t i = 0; i < n_want; i++) {
        size_t k = 0;
        while (k < n && strcmp(keys[k].key, want[i].key))
            k++;
        if (k == n || strcmp(values ? values[k] : keys[k].value, want[i].value))
            return false;
    }
    return true;
}

static bool matches(const rt_expect *e, const rt_expect_alert *x, const got_alert *g)
{
    const rules_rule *r = g->rule;
    return !g->matched && g->token == e->token && (!e->has_stream || g->stream == e->stream) &&
           !strcmp(r->name, x->rule) && g->resolved == !strcmp(x->status, "resolved") &&
           (!x->has_labels || same_kv(x->labels, x->n_labels, r->labels, NULL, r->n_labels)) &&
           (!x->has_annotations ||
            same_kv(x->annotations, x->n_annotations, r->annotations, g->annotations, r->n_annotations));
}

static void print_kv(FILE *f, const char *what, const saemon_kv *kv, char *const *values, size_t n)
{
    fprintf(f, " %s{", what);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s=\"%s\"", i ? ", " : "", kv[i].key, values ? values[i] : kv[i].value);
    fprintf(f, "}");
}

/* Compare and print the diff; true when everything matched. */
static bool diff(const rt_test *t, recorder *rec, FILE *out)
{
    bool ok = true;
    /* Two passes: expectations that pin labels/annotations pick their alert
     * before looser ones could take it. */
    for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < t->n_expect; i++) {
        const rt_expect *e = &t->expect[i];
        for (size_t j = 0; j < e->n; j++) {
            const rt_expect_alert *x = &e->alerts[j];
            if ((x->has_labels || x->has_annotations) != (pass == 0))
                continue;
            size_t k = 0;
            while (k < rec->n && !matches(e, x, &rec->a[k]))
                k++;
            if (k < rec->n) {
                rec->a[k].matched = true;
                continue;
            }
            ok = false;
            fprintf(out, "    - token %" PRIu64, e->token);
            if (e->has_stream)
                fprintf(out, " stream %" PRIu64, e->stream);
            fprintf(out, ": %s %s", x->status, x->rule);
            if (x->has_labels)
                print_kv(out, "labels", x->labels, NULL, x->n_labels);
            if (x->has_annotations)
                print_kv(out, "annotations", x->annotations, NULL, x->n_annotations);
            fprintf(out, "   (expected, not raised)\n");
        }
    }
    for (size_t k = 0; k < rec->n; k++) {
        const got_alert *g = &rec->a[k];
        if (g->matched)
            continue;
        ok = false;
        fprintf(out, "    + token %" PRIu64 " stream %" PRIu64 ": %s %s", g->token, g->stream,
                g->resolved ? "resolved" : "firing", g->rule->name);
        print_kv(out, "labels", g->rule->labels, NULL, g->rule->n_labels);
        print_kv(out, "annotations", g->rule->annotations, g->annotations, g->rule->n_annotations);
        fprintf(out, "   (raised, not expected)\n");
    }
    return ok;
}

typedef struct stream_pos {
    uint64_t stream, next;
    bool past_end; /* token 2^64-1 was fed: no implicit next token */
} stream_pos;

/* Feed every input token to every monitor. */
static saemon_status feed(const rule_test_file *tf, const rt_test *t, saemon_monitor **mons,
                          recorder *recs, size_t n_rs, saemon_error *err)
{
    stream_pos *pos = calloc(t->n_input, sizeof *pos);
    if (!pos)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
    size_t n_pos = 0;
    uint64_t stream = 0;
    for (size_t i = 0; i < t->n_input; i++) {
        const rt_input *in = &t->input[i];
        if (in->has_stream)
            stream = in->stream;
        size_t p = 0;
        while (p < n_pos && pos[p].stream != stream)
            p++;
        if (p == n_pos)
            pos[n_pos++] = (stream_pos){stream, 0, false};
        if (in->has_token) {
            pos[p].next = in->token;
            pos[p].past_end = false;
        }
        for (uint64_t r = 0; r < in->repeat; r++) {
            if (pos[p].past_end) {
                free(pos);
                return saemon_error_set(err, SAEMON_ERR_RULES,
                                        "%s: test '%s', input %zu: stream %llu has no token after "
                                        "18446744073709551615; expected an explicit 'token'",
                                        tf->filename, t->name, i + 1, (unsigned long long)stream);
            }
            pos[p].past_end = pos[p].next == UINT64_MAX;
            saemon_token_view tok = {.stream = stream, .token = pos[p].next++, .index = in->index,
                                     .value = in->value, .nnz = in->nnz, .input_norm = in->input_norm,
                                     .input_nonfinite = in->nonfinite, .recon_error = in->recon_error};
            for (size_t m = 0; m < n_rs; m++)
                saemon_monitor_observe(mons[m], &tok, record, &recs[m]);
        }
    }
    free(pos);
    return SAEMON_OK;
}

static saemon_status run_test(const rule_test_file *tf, const rt_test *t, saemon_ruleset **rs, size_t n_rs,
                              FILE *out, bool *passed, saemon_error *err)
{
    saemon_monitor **mons = calloc(n_rs, sizeof *mons);
    recorder *recs = calloc(n_rs, sizeof *recs);
    saemon_status s = mons && recs ? SAEMON_OK : saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
    saemon_monitor_options opts = {.resolved = true};
    for (size_t m = 0; s == SAEMON_OK && m < n_rs; m++) {
        recs[m].rs = rs[m];
        s = saemon_monitor_create(rs[m], NULL, &opts, &mons[m], err);
    }
    if (s == SAEMON_OK)
        s = feed(tf, t, mons, recs, n_rs, err);
    /* One recorder per ruleset; merge them for the diff. */
    recorder all = {0};
    for (size_t m = 0; s == SAEMON_OK && m < n_rs; m++) {
        if (recs[m].nomem)
            s = saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
        for (size_t k = 0; s == SAEMON_OK && k < recs[m].n; k++) {
            if (all.n == all.cap) {
                size_t cap = all.cap ? all.cap * 2 : 16;
                got_alert *a = realloc(all.a, cap * sizeof *a);
                if (!a) {
                    s = saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
                    break;
                }
                all.a = a, all.cap = cap;
            }
            all.a[all.n++] = recs[m].a[k];
        }
    }
    if (s == SAEMON_OK) {
        char *report = NULL;
        size_t report_len = 0;
        FILE *mem = open_memstream(&report, &report_len);
        if (!mem)
            s = saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
        else {
            *passed = diff(t, &all, mem);
            fclose(mem);
            fprintf(out, "%s  %s\n%s", *passed ? "PASS" : "FAIL", t->name, *passed ? "" : report);
            free(report);
        }
    }
    free(all.a);
    for (size_t m = 0; m < n_rs && recs; m++) {
        recorder_clear(&recs[m]);
        free(recs[m].a);
    }
    for (size_t m = 0; m < n_rs && mons; m++)
        saemon_monitor_destroy(mons[m]);
    free(mons);
    free(recs);
    return s;
}

/* Every expected rule must exist in some rule file. */
static saemon_status check_rule_names(const rule_test_file *tf, saemon_ruleset **rs, size_t n_rs, saemon_error *err)
{
    for (size_t i = 0; i < tf->n_tests; i++)
        for (size_t j = 0; j < tf->tests[i].n_expect; j++)
            for (size_t k = 0; k < tf->tests[i].expect[j].n; k++) {
                const rt_expect_alert *x = &tf->tests[i].expect[j].alerts[k];
                bool found = false;
                for (size_t m = 0; m < n_rs && !found; m++)
                    found = find_rule(rs[m], x->rule) != NULL;
                if (!found)
                    return saemon_error_set(err, SAEMON_ERR_RULES,
                                            "%s:%zu:%zu: unknown rule '%s'; expected a rule of the rule_files",
                                            tf->filename, x->rule_mark.line, x->rule_mark.column, x->rule);
            }
    return SAEMON_OK;
}

static saemon_status run_file(const rule_test_file *tf, FILE *out, size_t *n_tests, size_t *n_failed,
                              saemon_error *err)
{
    saemon_ruleset **rs = calloc(tf->n_rule_files, sizeof *rs);
    if (!rs)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
    saemon_status s = SAEMON_OK;
    for (size_t i = 0; s == SAEMON_OK && i < tf->n_rule_files; i++) {
        char *path = path_relative_to(tf->filename, tf->rule_files[i]);
        s = path ? saemon_rules_open(path, NULL, &rs[i], err)
                 : saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", tf->filename);
        free(path);
    }
    if (s == SAEMON_OK)
        s = check_rule_names(tf, rs, tf->n_rule_files, err);
    for (size_t i = 0; s == SAEMON_OK && i < tf->n_tests; i++) {
        bool passed = false;
        s = run_test(tf, &tf->tests[i], rs, tf->n_rule_files, out, &passed, err);
        ++*n_tests;
        *n_failed += s == SAEMON_OK && !passed;
    }
    for (size_t i = 0; i < tf->n_rule_files; i++)
        saemon_rules_close(rs[i]);
    free(rs);
    return s;
}

saemon_status saemon_rules_run_tests(const char *path, FILE *report, size_t *n_tests, size_t *n_failed,
                                     saemon_error *err)
{
    if (!path || !report || !n_tests || !n_failed)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_rules_run_tests: NULL argument");
    *n_tests = *n_failed = 0;
    char *text;
    size_t len;
    saemon_status s = read_whole_file(path, RULES_MAX_FILE_BYTES, "rule test file", &text, &len, err);
    if (s != SAEMON_OK)
        return s;
    rule_test_file *tf = NULL;
    s = rule_tests_parse_string(text, len, path, &tf, err);
    free(text);
    if (s == SAEMON_OK)
        s = run_file(tf, report, n_tests, n_failed, err);
    rule_tests_free(tf);
    return s;
}
