#include "base/yaml_walk.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* Keys kept for later versions of the language (none at the moment). */
static const char *const reserved_keys[] = {NULL};

walk_pos walk_mark(const yaml_node_t *node)
{
    walk_pos m = {1, 1};
    if (node) {
        m.line = node->start_mark.line + 1;
        m.column = node->start_mark.column + 1;
    }
    return m;
}

static saemon_status vfail(walk *w, saemon_status code, const yaml_node_t *at, const char *fmt,
                           va_list ap)
{
    char what[SAEMON_ERROR_MESSAGE_MAX];
    vsnprintf(what, sizeof what, fmt, ap);
    walk_pos m = walk_mark(at);
    return saemon_error_set(w->err, code, "%s:%zu:%zu: %s", w->file, m.line, m.column, what);
}

saemon_status walk_fail(walk *w, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    saemon_status s = vfail(w, SAEMON_ERR_RULES, at, fmt, ap);
    va_end(ap);
    return s;
}

saemon_status walk_fail_code(walk *w, saemon_status code, const yaml_node_t *at, const char *fmt,
                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    saemon_status s = vfail(w, code, at, fmt, ap);
    va_end(ap);
    return s;
}

saemon_status walk_visit(walk *w, const yaml_node_t *node)
{
    if (++w->nodes_visited > WALK_MAX_NODES)
        return walk_fail(w, node,
                         "file expands to more than %d YAML nodes (aliases included); "
                         "expected a smaller file",
                         WALK_MAX_NODES);
    const char *tag = (const char *)node->tag;
    const char *want = node->type == YAML_SCALAR_NODE     ? YAML_STR_TAG
                       : node->type == YAML_SEQUENCE_NODE ? YAML_SEQ_TAG
                                                          : YAML_MAP_TAG;
    if (tag && strcmp(tag, want) != 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.48s", tag);
        return walk_fail(w, node, "explicit YAML tag '%s' is not supported; expected an untagged value",
                         buf);
    }
    return SAEMON_OK;
}

static bool text_is(const yaml_node_t *n, const char *s)
{
    size_t len = strlen(s);
    return n->data.scalar.length == len && memcmp(n->data.scalar.value, s, len) == 0;
}

static bool all_in(const char *s, size_t len, const char *set)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

/* YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_core_float(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t int_digits = 0, frac_digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, int_digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, frac_digits++;
    }
    if (int_digits == 0 && frac_digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    return i == len;
}

scalar_type walk_scalar_type(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return SCALAR_STRING;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (len == 0 || text_is(n, "~") || text_is(n, "null") || text_is(n, "Null") || text_is(n, "NULL"))
        return SCALAR_NULL;
    if (text_is(n, "true") || text_is(n, "True") || text_is(n, "TRUE") || text_is(n, "false") ||
        text_is(n, "False") || text_is(n, "FALSE"))
        return SCALAR_BOOL;
    size_t sign = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (all_in(s + sign, len - sign, "0123456789"))
        return SCALAR_INT;
    if (len > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, len - 2, "01234567"))
        return SCALAR_INT;
    if (len > 2 && s[0] == '0' && s[1] == 'x' && all_in(s + 2, len - 2, "0123456789abcdefABCDEF"))
        return SCALAR_INT;
    if (is_core_float(s, len))
        return SCALAR_FLOAT;
    const char *special[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
                             "-.INF", ".nan", ".NaN", ".NAN"};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (text_is(n, special[i]))
            return SCALAR_FLOAT;
    return SCALAR_STRING;
}

/* Up to 40 bytes of s, non-printable ASCII shown as '?', "..." when cut. */
static void sanitize(const char *s, size_t len, char *buf, size_t cap)
{
    size_t keep = len > 40 ? 40 : len;
    while (keep < len && keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--; /* do not cut a UTF-8 sequence */
    size_t o = 0;
    for (size_t i = 0; i < keep && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (keep < len)
        for (int i = 0; i < 3 && o + 1 < cap; i++)
            buf[o++] = '.';
    buf[o] = '\0';
}

const char *walk_describe(const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a sequence";
    char text[64];
    sanitize((const char *)n->data.scalar.value, n->data.scalar.length, text, sizeof text);
    switch (walk_scalar_type(n)) {
    case SCALAR_NULL: return "null (empty)";
    case SCALAR_BOOL: snprintf(buf, len, "the boolean %s", text); break;
    case SCALAR_INT:
    case SCALAR_FLOAT: snprintf(buf, len, "the number %s", text); break;
    case SCALAR_STRING: snprintf(buf, len, "the string \"%s\"", text); break;
    }
    return buf;
}

size_t walk_seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *walk_seq_item(walk *w, const yaml_node_t *n, size_t i)
{
    return yaml_document_get_node(w->doc, n->data.sequence.items.start[i]);
}

size_t walk_map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

void walk_map_pair(walk *w, const yaml_node_t *n, size_t i, yaml_node_t **key, yaml_node_t **value)
{
    yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
    *key = yaml_document_get_node(w->doc, p->key);
    *value = yaml_document_get_node(w->doc, p->value);
}

static bool key_in(const yaml_node_t *key, const char *const *list)
{
    for (; *list; list++)
        if (text_is(key, *list))
            return true;
    return false;
}

static void join(const char *const *list, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (; *list && o < cap; list++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", *list);
}

saemon_status walk_check_map(walk *w, const yaml_node_t *node, const char *what,
                             const char *const *allowed)
{
    char desc[96], name[64], other[64], expected[256];
    if (node->type != YAML_MAPPING_NODE)
        return walk_fail(w, node, "%s is %s; expected a mapping", what,
                         walk_describe(node, desc, sizeof desc));
    size_t n = walk_map_len(node);
    if (n > WALK_MAX_MAP_ENTRIES)
        return walk_fail(w, node, "%s has %zu entries; expected at most %d", what, n,
                         WALK_MAX_MAP_ENTRIES);
    if (allowed)
        join(allowed, expected, sizeof expected);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key, *value;
        walk_map_pair(w, node, i, &key, &value);
        saemon_status s = walk_visit(w, key);
        if (s == SAEMON_OK)
            s = walk_visit(w, value);
        if (s != SAEMON_OK)
            return s;
        if (key->type != YAML_SCALAR_NODE || walk_scalar_type(key) == SCALAR_NULL)
            return walk_fail(w, key, "%s has a key that is %s; expected a string key", what,
                             walk_describe(key, desc, sizeof desc));
        sanitize((const char *)key->data.scalar.value, key->data.scalar.length, name, sizeof name);
        if (allowed && !key_in(key, allowed)) {
            if (key_in(key, reserved_keys))
                return walk_fail_code(w, SAEMON_ERR_UNSUPPORTED, key,
                                      "'%s' in %s is not supported yet (reserved for a later "
                                      "version of the rule language); expected one of: %s",
                                      name, what, expected);
            return walk_fail(w, key, "unknown key '%s' in %s; expected one of: %s", name, what,
                             expected);
        }
        for (size_t j = 0; j < i; j++) {
            yaml_node_t *prev, *unused;
            walk_map_pair(w, node, j, &prev, &unused);
            if (prev->type == YAML_SCALAR_NODE && prev->data.scalar.length == key->data.scalar.length &&
                memcmp(prev->data.scalar.value, key->data.scalar.value, key->data.scalar.length) == 0) {
                walk_pos m = walk_mark(prev);
                snprintf(other, sizeof other, "%zu:%zu", m.line, m.column);
                return walk_fail(w, key, "duplicate key '%s' in %s (first at %s); expected each key once",
                                 name, what, other);
            }
        }
    }
    return SAEMON_OK;
}

yaml_node_t *walk_get(walk *w, const yaml_node_t *map, const char *key, yaml_node_t **key_node)
{
    for (size_t i = 0, n = walk_map_len(map); i < n; i++) {
        yaml_node_t *k, *v;
        walk_map_pair(w, map, i, &k, &v);
        if (k->type == YAML_SCALAR_NODE && text_is(k, key)) {
            if (key_node)
                *key_node = k;
            return v;
        }
    }
    return NULL;
}

saemon_status walk_string(walk *w, const yaml_node_t *node, const char *what, const char **out)
{
    char desc[96];
    if (node->type != YAML_SCALAR_NODE || walk_scalar_type(node) == SCALAR_NULL)
        return walk_fail(w, node, "%s is %s; expected a string", what,
                         walk_describe(node, desc, sizeof desc));
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (memchr(s, '\0', len))
        return walk_fail(w, node, "%s contains a NUL character; expected text without NUL", what);
    *out = arena_strndup(w->mem, s, len);
    if (!*out)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    return SAEMON_OK;
}

saemon_status walk_get_text(walk *w, const yaml_node_t *map, const char *section, const char *key,
                            const char **out)
{
    yaml_node_t *v = walk_get(w, map, key, NULL);
    if (!v)
        return SAEMON_OK;
    char what[96];
    snprintf(what, sizeof what, "%s%s'%s'", section ? section : "", section ? " " : "", key);
    saemon_status s = walk_string(w, v, what, out);
    if (s == SAEMON_OK && !**out)
        return walk_fail(w, v, "%s is empty", what);
    return s;
}

saemon_status walk_get_uint(walk *w, const yaml_node_t *map, const char *key, uint64_t max, uint64_t *out)
{
    yaml_node_t *v = walk_get(w, map, key, NULL);
    if (!v)
        return SAEMON_OK;
    char what[96];
    snprintf(what, sizeof what, "'%s'", key);
    return walk_uint(w, v, what, max, out);
}

saemon_status walk_bool(walk *w, const yaml_node_t *node, const char *what, bool *out)
{
    char desc[96];
    if (node->type != YAML_SCALAR_NODE || walk_scalar_type(node) != SCALAR_BOOL)
        return walk_fail(w, node, "%s is %s; expected true or false", what,
                         walk_describe(node, desc, sizeof desc));
    *out = node->data.scalar.value[0] == 't' || node->data.scalar.value[0] == 'T';
    return SAEMON_OK;
}

/* Magnitude of a core-schema integer; false on overflow. */
static bool parse_uint(const char *s, size_t len, bool *negative, uint64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    *negative = false;
    if (s[0] == '-' || s[0] == '+')
        *negative = s[i++] == '-';
    else if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x'))
        base = s[1] == 'o' ? 8 : 16, i = 2;
    uint64_t v = 0;
    for (; i < len; i++) {
        char c = s[i];
        unsigned d = c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

saemon_status walk_uint(walk *w, const yaml_node_t *node, const char *what, uint64_t max,
                        uint64_t *out)
{
    char desc[96];
    if (node->type != YAML_SCALAR_NODE || walk_scalar_type(node) != SCALAR_INT)
        return walk_fail(w, node, "%s is %s; expected a non-negative integer", what,
                         walk_describe(node, desc, sizeof desc));
    bool negative;
    uint64_t v;
    bool ok = parse_uint((const char *)node->data.scalar.value, node->data.scalar.length, &negative, &v);
    if (ok && negative && v != 0)
        return walk_fail(w, node, "%s is negative; expected a non-negative integer", what);
    if (!ok || v > max)
        return walk_fail(w, node, "%s is %s, which is too large; expected an integer <= %llu", what,
                         walk_describe(node, desc, sizeof desc), (unsigned long long)max);
    *out = v;
    return SAEMON_OK;
}

/* The number a YAML int/float scalar spells, in double: ±inf for .inf /
 * -.inf and for decimals beyond double range, NaN for .nan. */
static saemon_status scalar_number(walk *w, const yaml_node_t *node, const char *what, double *out)
{
    char desc[96];
    scalar_type t = node->type == YAML_SCALAR_NODE ? walk_scalar_type(node) : SCALAR_STRING;
    if (t != SCALAR_INT && t != SCALAR_FLOAT)
        return walk_fail(w, node, "%s is %s; expected a number", what,
                         walk_describe(node, desc, sizeof desc));
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    double d;
    bool negative;
    uint64_t u;
    if (t == SCALAR_INT && len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        d = parse_uint(s, len, &negative, &u) ? (double)u : INFINITY;
    } else if (s[len - 1] == 'f' || s[len - 1] == 'F') {
        d = s[0] == '-' ? -INFINITY : INFINITY; /* .inf, +.inf, -.inf */
    } else if (s[len - 1] == 'n' || s[len - 1] == 'N') {
        d = NAN; /* .nan */
    } else {
        /* strtod in the C locale: the caller's LC_NUMERIC must not change '.'. */
        locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!c_locale)
            return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
        d = strtod_l(s, NULL, c_locale);
        freelocale(c_locale);
    }
    *out = d;
    return SAEMON_OK;
}

saemon_status walk_float(walk *w, const yaml_node_t *node, const char *what, float *out)
{
    char desc[96];
    double d = 0;
    saemon_status st = scalar_number(w, node, what, &d);
    if (st != SAEMON_OK)
        return st;
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return walk_fail(w, node, "%s is %s; expected a finite number within float range", what,
                         walk_describe(node, desc, sizeof desc));
    *out = (float)d;
    return SAEMON_OK;
}

saemon_status walk_float_any(walk *w, const yaml_node_t *node, const char *what, float *out)
{
    double d = 0;
    saemon_status st = scalar_number(w, node, what, &d);
    if (st == SAEMON_OK)
        *out = (float)d; /* beyond float range: ±inf, as the encoder would produce */
    return st;
}

/* libyaml reader errors carry a byte offset, not a line. */
static walk_pos mark_of_offset(const char *text, size_t len, size_t offset)
{
    walk_pos m = {1, 1};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n')
            m.line++, m.column = 1;
        else if (((unsigned char)text[i] & 0xC0) != 0x80)
            m.column++;
    }
    return m;
}

saemon_status walk_syntax_error(const yaml_parser_t *p, const char *file, const char *text,
                                  size_t len, saemon_error *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory while parsing YAML", file);
    walk_pos m = {p->problem_mark.line + 1, p->problem_mark.column + 1};
    if (p->error == YAML_READER_ERROR)
        m = mark_of_offset(text, len, p->problem_offset);
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->context)
        return saemon_error_set(err, SAEMON_ERR_RULES,
                                "%s:%zu:%zu: YAML syntax error: %s (%s at %zu:%zu); expected well-formed YAML",
                                file, m.line, m.column, problem, p->context,
                                (size_t)p->context_mark.line + 1, (size_t)p->context_mark.column + 1);
    return saemon_error_set(err, SAEMON_ERR_RULES, "%s:%zu:%zu: YAML syntax error: %s; expected well-formed YAML",
                            file, m.line, m.column, problem);
}


saemon_status walk_check_depth(const char *file, const char *text, size_t len, saemon_status code,
                               saemon_error *err)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    saemon_status s = SAEMON_OK;
    size_t depth = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev))
            break; /* a syntax error: the loader reports it with its own message */
        yaml_event_type_t type = ev.type;
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
            if (++depth > WALK_MAX_DEPTH) {
                s = saemon_error_set(err, code,
                                     "%s:%zu:%zu: collections nested more than %d deep; expected a shallower "
                                     "document",
                                     file, (size_t)ev.start_mark.line + 1, (size_t)ev.start_mark.column + 1,
                                     WALK_MAX_DEPTH);
                yaml_event_delete(&ev);
                break;
            }
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return s;
}
