/* Strict parser for the .npy header dict, e.g.
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * Keys in any order, optional trailing comma, spaces; nothing else. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "runtime/npy_internal.h"

typedef struct cursor {
    const char *p, *end, *start;
    const char *name;
    saemon_error *err;
} cursor;

static saemon_status syntax(cursor *c, const char *what)
{
    size_t at = (size_t)(c->p - c->start);
    if (c->p < c->end && (unsigned char)*c->p >= 0x20 && (unsigned char)*c->p < 0x7f)
        return saemon_error_set(c->err, SAEMON_ERR_FORMAT,
                                "%s: bad .npy header: expected %s at byte %zu of the dict, found '%c'",
                                c->name, what, at, *c->p);
    if (c->p < c->end)
        return saemon_error_set(c->err, SAEMON_ERR_FORMAT,
                                "%s: bad .npy header: expected %s at byte %zu of the dict, found byte 0x%02x",
                                c->name, what, at, (unsigned char)*c->p);
    return saemon_error_set(c->err, SAEMON_ERR_FORMAT,
                            "%s: bad .npy header: expected %s, header ended after %zu bytes", c->name,
                            what, at);
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int accept(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes; [*s, *s + *n) is its content. */
static saemon_status parse_string(cursor *c, const char **s, size_t *n, const char *what)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return syntax(c, what);
    char quote = *c->p++;
    const char *begin = c->p;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || (unsigned char)*c->p < 0x20 || (unsigned char)*c->p >= 0x7f)
            return syntax(c, "a plain ASCII string");
        c->p++;
    }
    if (c->p >= c->end)
        return syntax(c, "closing quote");
    *s = begin;
    *n = (size_t)(c->p - begin);
    c->p++;
    return SAEMON_OK;
}

/* The dtype string is only checked once the whole dict parsed, so syntax
 * errors are reported as such. */
static saemon_status parse_descr(cursor *c, const char **s, size_t *n)
{
    skip_space(c);
    if (c->p < c->end && *c->p == '[')
        return saemon_error_set(c->err, SAEMON_ERR_UNSUPPORTED,
                                "%s: unsupported dtype: structured (record) arrays are not read; "
                                "accepted dtypes are '<f4', '>f4', '<f2', '>f2'",
                                c->name);
    return parse_string(c, s, n, "a dtype string after 'descr':");
}

static saemon_status check_descr(const char *s, size_t n, const char *name, npy_header *h, saemon_error *err)
{
    static const struct {
        const char *name;
        size_t itemsize;
        int big;
    } ok[] = {{"<f4", 4, 0}, {">f4", 4, 1}, {"<f2", 2, 0}, {">f2", 2, 1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (n == 3 && !memcmp(s, ok[i].name, 3)) {
            h->descr = ok[i].name;
            h->itemsize = ok[i].itemsize;
            h->big_endian = ok[i].big;
            return SAEMON_OK;
        }
    }
    return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                            "%s: unsupported dtype '%.*s': saemon reads float32 or float16 "
                            "('<f4', '>f4', '<f2', '>f2'); convert with arr.astype('<f4')",
                            name, (int)(n > 40 ? 40 : n), s);
}

static saemon_status parse_bool(cursor *c, bool *out)
{
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && !memcmp(c->p, "True", 4)) {
        c->p += 4;
        *out = true;
    } else if (left >= 5 && !memcmp(c->p, "False", 5)) {
        c->p += 5;
        *out = false;
    } else {
        return syntax(c, "True or False after 'fortran_order':");
    }
    return SAEMON_OK;
}

static saemon_status parse_dim(cursor *c, size_t *out)
{
    skip_space(c);
    int negative = c->p < c->end && *c->p == '-';
    if (negative)
        c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return syntax(c, "a dimension (non-negative integer)");
    if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9')
        return syntax(c, "an integer without leading zeros");
    uint64_t v = 0;
    int huge = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (v > (UINT64_MAX - d) / 10)
            huge = 1;
        else
            v = v * 10 + d;
    }
    if (negative)
        return saemon_error_set(c->err, SAEMON_ERR_FORMAT, "%s: bad .npy header: negative dimension in 'shape'",
                                c->name);
    if (huge || v > SIZE_MAX)
        return saemon_error_set(c->err, SAEMON_ERR_FORMAT,
                                "%s: bad .npy header: dimension in 'shape' is too large", c->name);
    *out = (size_t)v;
    return SAEMON_OK;
}

/* Python tuple: "()", "(5,)", "(3, 4)", "(3, 4,)". */
static saemon_status parse_shape(cursor *c, npy_header *h)
{
    if (!accept(c, '('))
        return syntax(c, "'(' starting the shape tuple");
    h->ndim = 0;
    if (accept(c, ')'))
        return SAEMON_OK;
    for (;;) {
        if (h->ndim == SAEMON_NPY_MAX_DIMS)
            return saemon_error_set(c->err, SAEMON_ERR_UNSUPPORTED,
                                    "%s: array has more than %d dimensions", c->name, SAEMON_NPY_MAX_DIMS);
        saemon_status st = parse_dim(c, &h->shape[h->ndim]);
        if (st)
            return st;
        h->ndim++;
        int comma = accept(c, ',');
        if (accept(c, ')')) {
            /* Python needs the comma for a 1-tuple: "(5)" is just 5. */
            if (h->ndim == 1 && !comma)
                return syntax(c, "',' in a one-element shape tuple");
            return SAEMON_OK;
        }
        if (!comma)
            return syntax(c, "',' or ')' in the shape tuple");
    }
}

saemon_status saemon_npy_parse_header(const char *text, size_t len, const char *name,
                                      npy_header *out, saemon_error *err)
{
    cursor c = {.p = text, .end = text + len, .start = text, .name = name, .err = err};
    memset(out, 0, sizeof *out);
    enum { DESCR = 1, FORTRAN = 2, SHAPE = 4 };
    unsigned seen = 0;
    const char *descr = NULL;
    size_t descr_len = 0;

    if (!accept(&c, '{'))
        return syntax(&c, "'{' opening the header dict");
    for (;;) {
        if (accept(&c, '}'))
            break;
        const char *key;
        size_t n;
        saemon_status st = parse_string(&c, &key, &n, "a quoted key or '}'");
        if (st)
            return st;
        unsigned which;
        if (n == 5 && !memcmp(key, "descr", 5))
            which = DESCR;
        else if (n == 13 && !memcmp(key, "fortran_order", 13))
            which = FORTRAN;
        else if (n == 5 && !memcmp(key, "shape", 5))
            which = SHAPE;
        else
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: bad .npy header: unknown key '%.*s' (expected 'descr', "
                                    "'fortran_order', 'shape')",
                                    name, (int)(n > 40 ? 40 : n), key);
        if (seen & which)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: bad .npy header: key '%.*s' given twice",
                                    name, (int)n, key);
        seen |= which;
        if (!accept(&c, ':'))
            return syntax(&c, "':' after the key");
        if (which == DESCR)
            st = parse_descr(&c, &descr, &descr_len);
        else if (which == FORTRAN)
            st = parse_bool(&c, &out->fortran_order);
        else
            st = parse_shape(&c, out);
        if (st)
            return st;
        if (accept(&c, ','))
            continue;
        if (accept(&c, '}'))
            break;
        return syntax(&c, "',' or '}' after a value");
    }
    /* After the dict: padding spaces and the terminating newline only. */
    skip_space(&c);
    if (c.p != c.end)
        return syntax(&c, "only padding after the header dict");
    static const char *const key_names[] = {"descr", "fortran_order", "shape"};
    for (unsigned i = 0; i < 3; i++)
        if (!(seen & (1u << i)))
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: bad .npy header: missing key '%s'", name,
                                    key_names[i]);
    return check_descr(descr, descr_len, name, out, err);
}
