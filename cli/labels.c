/* Labels of a recording (docs/authoring.md "Labels"): a JSONL file of spans
 * or a per-token 0/1 .npy mask. Every defect is refused with the file and
 * the line (or element) it is at. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "cli/authoring.h"
#include "cli/labels_npy.h"

#define LABELS_MAX_BYTES ((size_t)1 << 31)

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* A non-negative integer member; false after a message. */
static bool int_member(const char *what, const char *path, size_t line, const cJSON *obj, const char *key,
                       bool required, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required)
            fprintf(stderr, "saemon %s: %s:%zu: the span has no \"%s\"\n", what, path, line, key);
        return !required;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || d < 0 || d != floor(d) || d > 9007199254740992.0) {
        fprintf(stderr, "saemon %s: %s:%zu: \"%s\" must be a non-negative integer\n", what, path, line, key);
        return false;
    }
    *out = (uint64_t)d;
    return true;
}

static int cmp_span(const void *a, const void *b)
{
    const auth_span *x = a, *y = b;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

typedef struct span_line {
    auth_span s;
    size_t line;
} span_line;

static int cmp_span_line(const void *a, const void *b) { return cmp_span(&((const span_line *)a)->s, &((const span_line *)b)->s); }

static bool parse_one(const char *what, const char *path, size_t line, const char *text, size_t n_streams,
                      size_t tps, span_line *out)
{
    cJSON *obj = cJSON_ParseWithLength(text, strlen(text));
    bool ok = false;
    if (!obj || !cJSON_IsObject(obj)) {
        fprintf(stderr, "saemon %s: %s:%zu: not a JSON object (expected {\"stream\": S, \"start\": A, \"end\": B})\n",
                what, path, line);
        goto done;
    }
    for (const cJSON *it = obj->child; it; it = it->next)
        if (strcmp(it->string, "stream") && strcmp(it->string, "start") && strcmp(it->string, "end") &&
            strcmp(it->string, "label")) {
            fprintf(stderr, "saemon %s: %s:%zu: unknown key \"%s\" (expected stream, start, end, label)\n", what,
                    path, line, it->string);
            goto done;
        }
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(obj, "label");
    if (label && !cJSON_IsString(label)) {
        fprintf(stderr, "saemon %s: %s:%zu: \"label\" must be a string\n", what, path, line);
        goto done;
    }
    uint64_t stream = 0, start = 0, end = 0;
    if (!int_member(what, path, line, obj, "stream", n_streams > 1, &stream) ||
        !int_member(what, path, line, obj, "start", true, &start) ||
        !int_member(what, path, line, obj, "end", true, &end))
        goto done;
    if (stream >= n_streams) {
        fprintf(stderr, "saemon %s: %s:%zu: stream %" PRIu64 " is past the recording (%zu stream(s))\n", what,
                path, line, stream, n_streams);
        goto done;
    }
    if (end <= start) {
        fprintf(stderr, "saemon %s: %s:%zu: empty span: end %" PRIu64 " must be greater than start %" PRIu64
                        " (end is exclusive)\n", what, path, line, end, start);
        goto done;
    }
    if (end > tps) {
        fprintf(stderr, "saemon %s: %s:%zu: span end %" PRIu64 " is past the recording (%zu tokens per stream)\n",
                what, path, line, end, tps);
        goto done;
    }
    out->s = (auth_span){.stream = stream, .start = start, .end = end};
    out->line = line;
    ok = true;
done:
    cJSON_Delete(obj);
    return ok;
}

static bool load_jsonl(const char *what, const char *path, size_t n_streams, size_t tps, span_line **out,
                       size_t *n_out)
{
    saemon_error err = {0};
    char *text = NULL;
    size_t len = 0;
    if (read_whole_file(path, LABELS_MAX_BYTES, "labels file", &text, &len, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon %s: %s\n", what, err.message);
        return false;
    }
    if (strlen(text) != len) {
        fprintf(stderr, "saemon %s: %s: holds a NUL byte (expected JSON lines)\n", what, path);
        free(text);
        return false;
    }
    span_line *v = NULL;
    size_t n = 0, cap = 0, line = 0;
    bool ok = true;
    for (char *p = text; ok && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        line++;
        const char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (*q) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                span_line *g = realloc(v, cap * sizeof *g);
                if (!g) {
                    fprintf(stderr, "saemon %s: out of memory\n", what);
                    ok = false;
                    break;
                }
                v = g;
            }
            ok = parse_one(what, path, line, q, n_streams, tps, &v[n]);
            n += ok;
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(text);
    if (!ok) {
        free(v);
        return false;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_span_line);
    for (size_t i = 1; i < n; i++)
        if (v[i].s.stream == v[i - 1].s.stream && v[i].s.start < v[i - 1].s.end) {
            size_t a = v[i - 1].line < v[i].line ? v[i - 1].line : v[i].line;
            size_t b = v[i - 1].line < v[i].line ? v[i].line : v[i - 1].line;
            fprintf(stderr, "saemon %s: %s:%zu: span overlaps the span on line %zu (stream %" PRIu64 ")\n", what,
                    path, b, a, v[i].s.stream);
            free(v);
            return false;
        }
    *out = v;
    *n_out = n;
    return true;
}

/* Maximal runs of positive tokens within each stream. */
static bool spans_from_mask(const uint8_t *mask, size_t n_streams, size_t tps, auth_span **out, size_t *n_out)
{
    size_t n = 0, cap = 0;
    auth_span *v = NULL;
    for (size_t s = 0; s < n_streams; s++)
        for (size_t t = 0; t < tps; t++) {
            if (!mask[s * tps + t] || (t > 0 && mask[s * tps + t - 1]))
                continue;
            size_t e = t;
            while (e < tps && mask[s * tps + e])
                e++;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                auth_span *g = realloc(v, cap * sizeof *g);
                if (!g) {
                    free(v);
                    return false;
                }
                v = g;
            }
            v[n++] = (auth_span){.stream = s, .start = t, .end = e};
        }
    *out = v;
    *n_out = n;
    return true;
}

bool auth_labels_load(const char *what, const char *path, size_t n_streams, size_t tps, uint64_t first_stream,
                      uint8_t **mask_out, auth_span **spans, size_t *n_spans)
{
    uint8_t *mask = calloc(n_streams * tps > 0 ? n_streams * tps : 1, 1);
    if (!mask) {
        fprintf(stderr, "saemon %s: out of memory\n", what);
        return false;
    }
    auth_span *v = NULL;
    size_t n = 0;
    if (ends_with(path, ".npy")) {
        if (!labels_npy_mask(what, path, n_streams, tps, mask) || !spans_from_mask(mask, n_streams, tps, &v, &n)) {
            free(mask);
            return false;
        }
    } else {
        span_line *sl = NULL;
        if (!load_jsonl(what, path, n_streams, tps, &sl, &n)) {
            free(mask);
            return false;
        }
        v = malloc((n ? n : 1) * sizeof *v);
        if (!v) {
            free(sl);
            free(mask);
            fprintf(stderr, "saemon %s: out of memory\n", what);
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            v[i] = sl[i].s;
            memset(mask + v[i].stream * tps + v[i].start, 1, v[i].end - v[i].start);
        }
        free(sl);
    }
    for (size_t i = 0; i < n; i++)
        v[i].stream += first_stream;
    *mask_out = mask;
    *spans = v;
    *n_spans = n;
    return true;
}
