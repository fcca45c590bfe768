#include "monitors/rules_template.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

#define NUMBER_MAX 32 /* "%.9g" of a double, or a uint64 */

typedef struct name_entry {
    const char *name;
    rules_tpl_kind kind;
} name_entry;

static const name_entry names[] = {
    {"rule", TPL_RULE},
    {"token", TPL_TOKEN},
    {"stream", TPL_STREAM},
    {"value", TPL_VALUE},
    {"feature.value", TPL_FEATURE_VALUE},
    {"feature.index", TPL_FEATURE_INDEX},
    {"feature.label", TPL_FEATURE_LABEL},
};

/* Blame offset `at` of the scalar: exact for single-line plain or quoted text. */
static saemon_status fail_at(walk *w, const yaml_node_t *node, const char *text, size_t at, const char *fmt,
                             const char *arg)
{
    walk_pos m = walk_mark(node);
    yaml_scalar_style_t style = node->data.scalar.style;
    bool exact = !memchr(text, '\n', at) && (style == YAML_PLAIN_SCALAR_STYLE ||
                                             style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                                             style == YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    if (exact)
        m.column += at + (style != YAML_PLAIN_SCALAR_STYLE);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    return saemon_error_set(w->err, SAEMON_ERR_RULES, "%s:%zu:%zu: %s", w->file, m.line, m.column, msg);
}

static saemon_status add_part(walk *w, rules_template *out, size_t cap, rules_tpl_kind kind, const char *text,
                              size_t len)
{
    (void)w;
    if (out->n_parts == cap)
        return SAEMON_ERR_NOMEM;
    out->parts[out->n_parts++] = (rules_tpl_part){kind, text, len};
    return SAEMON_OK;
}

static size_t part_max(const rules_tpl_part *p, const rules_rule *r, const saemon_ruleset *rs)
{
    switch (p->kind) {
    case TPL_TEXT:
    case TPL_LABEL: return p->len;
    case TPL_RULE: return strlen(r->name);
    case TPL_FEATURE_LABEL: return rs->max_label_len;
    default: return NUMBER_MAX;
    }
}

saemon_status rules_template_parse(walk *w, const yaml_node_t *node, const char *text, const rules_rule *r,
                                   const saemon_ruleset *rs, rules_template *out)
{
    size_t len = strlen(text), cap = 1;
    for (const char *q = text; (q = strstr(q, "{{")); q += 2)
        cap += 2;
    memset(out, 0, sizeof *out);
    if (!(out->parts = arena_calloc(w->mem, cap, sizeof *out->parts)))
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    size_t i = 0;
    while (i < len) {
        const char *open = strstr(text + i, "{{");
        size_t lit_end = open ? (size_t)(open - text) : len;
        if (lit_end > i)
            add_part(w, out, cap, TPL_TEXT, text + i, lit_end - i);
        if (!open)
            break;
        size_t start = lit_end;
        const char *close = strstr(open + 2, "}}");
        if (!close)
            return fail_at(w, node, text, start, "'{{' is not closed%s; expected '{{ .name }}'", "");
        const char *a = open + 2, *b = close;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)(b - a > 80 ? 80 : b - a), a);
        bool found = false;
        if (b > a && *a == '.') {
            size_t n = (size_t)(b - a - 1);
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
                if (strlen(names[k].name) == n && !memcmp(names[k].name, a + 1, n)) {
                    add_part(w, out, cap, names[k].kind, NULL, 0);
                    found = true;
                }
            }
            if (!found && n > 7 && !memcmp(a + 1, "labels.", 7)) {
                for (size_t k = 0; k < r->n_labels; k++) {
                    if (strlen(r->labels[k].key) == n - 7 && !memcmp(r->labels[k].key, a + 8, n - 7)) {
                        add_part(w, out, cap, TPL_LABEL, r->labels[k].value, strlen(r->labels[k].value));
                        found = true;
                    }
                }
                if (!found)
                    return fail_at(w, node, text, (size_t)(a - text),
                                   "template refers to label '%s', which this rule does not have; "
                                   "expected one of the rule's 'labels' keys", name + 8);
            }
        }
        if (!found)
            return fail_at(w, node, text, (size_t)(a - text),
                           "unknown template name '%s'; expected one of .rule .token .stream .value "
                           ".feature.value .feature.index .feature.label .labels.KEY", name);
        i = (size_t)(close - text) + 2;
    }
    out->is_plain = out->n_parts == 0 || (out->n_parts == 1 && out->parts[0].kind == TPL_TEXT);
    for (size_t k = 0; k < out->n_parts; k++)
        out->max_len += part_max(&out->parts[k], r, rs);
    return SAEMON_OK;
}

static size_t put(char *buf, size_t at, const char *s, size_t n)
{
    memcpy(buf + at, s, n);
    return at + n;
}

size_t rules_template_render(const rules_template *t, const template_ctx *ctx, char *buf)
{
    size_t at = 0;
    char num[NUMBER_MAX + 1];
    for (size_t i = 0; i < t->n_parts; i++) {
        const rules_tpl_part *p = &t->parts[i];
        int n = 0;
        const saemon_alert_feature *f = ctx->feature;
        switch (p->kind) {
        case TPL_TEXT:
        case TPL_LABEL: at = put(buf, at, p->text, p->len); continue;
        case TPL_RULE: at = put(buf, at, ctx->rule, strlen(ctx->rule)); continue;
        case TPL_FEATURE_LABEL:
            if (f && f->label)
                at = put(buf, at, f->label, strlen(f->label));
            continue;
        case TPL_TOKEN: n = snprintf(num, sizeof num, "%" PRIu64, ctx->token); break;
        case TPL_STREAM: n = snprintf(num, sizeof num, "%" PRIu64, ctx->stream); break;
        case TPL_VALUE:
            if (!isnan(ctx->value))
                n = snprintf(num, sizeof num, "%.9g", ctx->value);
            break;
        case TPL_FEATURE_VALUE:
            if (f)
                n = snprintf(num, sizeof num, "%.9g", (double)f->value);
            break;
        case TPL_FEATURE_INDEX:
            if (f)
                n = snprintf(num, sizeof num, "%" PRIu32, f->index);
            break;
        }
        if (n > 0)
            at = put(buf, at, num, (size_t)n > NUMBER_MAX ? NUMBER_MAX : (size_t)n);
    }
    buf[at] = '\0';
    return at;
}
