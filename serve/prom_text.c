#include "serve/prom_text.h"
#include "base/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(prom_text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = true;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
}

static void appendf(prom_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(prom_text *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        append(t, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        t->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    append(t, big, (size_t)n);
    free(big);
}

/* HELP text escapes \ and newline; label values also escape ". Bytes that
 * are not UTF-8 become U+FFFD: one of them would make Prometheus reject the
 * whole scrape. */
static void append_escaped(prom_text *t, const char *s, bool quote)
{
    for (size_t left = strlen(s); *s; s++, left--) {
        size_t k = utf8_sequence((const unsigned char *)s, left);
        if (k == 0) {
            append(t, "\xEF\xBF\xBD", 3);
        } else if (k > 1) {
            append(t, s, k);
            s += k - 1;
            left -= k - 1;
        } else if (*s == '\\') {
            append(t, "\\\\", 2);
        } else if (*s == '\n') {
            append(t, "\\n", 2);
        } else if (quote && *s == '"') {
            append(t, "\\\"", 2);
        } else {
            append(t, s, 1);
        }
    }
}

void prom_family(prom_text *t, const char *name, const char *type, const char *help)
{
    appendf(t, "# HELP %s ", name);
    append_escaped(t, help, false);
    appendf(t, "\n# TYPE %s %s\n", name, type);
}

static void labels_out(prom_text *t, const prom_label *labels, size_t n, const char *extra_name,
                       const char *extra_value)
{
    if (n == 0 && !extra_name)
        return;
    append(t, "{", 1);
    for (size_t i = 0; i < n; i++) {
        appendf(t, "%s%s=\"", i ? "," : "", labels[i].name);
        append_escaped(t, labels[i].value ? labels[i].value : "", true);
        append(t, "\"", 1);
    }
    if (extra_name)
        appendf(t, "%s%s=\"%s\"", n ? "," : "", extra_name, extra_value);
    append(t, "}", 1);
}

static void value_out(prom_text *t, double v)
{
    if (isnan(v))
        append(t, " NaN\n", 5);
    else if (isinf(v))
        appendf(t, " %s\n", v > 0 ? "+Inf" : "-Inf");
    else
        appendf(t, " %.17g\n", v);
}

void prom_sample(prom_text *t, const char *name, const prom_label *labels, size_t n_labels, double value)
{
    append(t, name, strlen(name));
    labels_out(t, labels, n_labels, NULL, NULL);
    value_out(t, value);
}

void prom_sample_u64(prom_text *t, const char *name, const prom_label *labels, size_t n_labels,
                     uint64_t value)
{
    append(t, name, strlen(name));
    labels_out(t, labels, n_labels, NULL, NULL);
    appendf(t, " %" PRIu64 "\n", value);
}

void prom_histogram(prom_text *t, const char *name, const prom_label *labels, size_t n_labels,
                    const double *le, const uint64_t *buckets, size_t n_buckets, uint64_t count, double sum)
{
    for (size_t i = 0; i <= n_buckets; i++) {
        char bound[32];
        if (i < n_buckets)
            snprintf(bound, sizeof bound, "%g", le[i]);
        else
            snprintf(bound, sizeof bound, "+Inf");
        appendf(t, "%s_bucket", name);
        labels_out(t, labels, n_labels, "le", bound);
        appendf(t, " %" PRIu64 "\n", i < n_buckets ? buckets[i] : count);
    }
    appendf(t, "%s_sum", name);
    labels_out(t, labels, n_labels, NULL, NULL);
    value_out(t, sum);
    appendf(t, "%s_count", name);
    labels_out(t, labels, n_labels, NULL, NULL);
    appendf(t, " %" PRIu64 "\n", count);
}

void prom_text_free(prom_text *t)
{
    free(t->buf);
    *t = (prom_text){0};
}
