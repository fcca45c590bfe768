#include "monitors/feature_labels.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/read_file.h"

static int by_index(const void *a, const void *b)
{
    const rules_label *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool parse_index_text(const char *s, uint32_t *out)
{
    if (!s || !*s || s[0] == '-' || s[0] == '+' || s[0] == ' ')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_index(const cJSON *item, uint32_t *out)
{
    if (cJSON_IsNumber(item)) {
        double d = item->valuedouble;
        if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d)
            return false;
        *out = (uint32_t)d;
        return true;
    }
    return parse_index_text(cJSON_GetStringValue(item), out);
}

static saemon_status syntax(const char *path, const char *text, const char *at, saemon_error *err)
{
    size_t line = 1, col = 1;
    for (const char *p = text; at && p < at && *p; p++) {
        if (*p == '\n')
            line++, col = 1;
        else
            col++;
    }
    return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s:%zu:%zu: feature labels are not valid JSON; "
                            "expected an object {\"index\": \"explanation\"} or a list of "
                            "{\"index\", \"description\"} objects", path, line, col);
}

static saemon_status add(saemon_ruleset *rs, size_t *n, uint32_t index, const char *text, const char *path,
                         saemon_error *err)
{
    size_t len = strlen(text);
    char *copy = arena_strndup(&rs->mem, text, len);
    if (!copy)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    rs->labels[*n].index = index;
    rs->labels[(*n)++].text = copy;
    if (len > rs->max_label_len)
        rs->max_label_len = len;
    return SAEMON_OK;
}

static saemon_status fill(saemon_ruleset *rs, const cJSON *root, const char *path, saemon_error *err)
{
    size_t n = 0, i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) n++;
    if (!(rs->labels = arena_calloc(&rs->mem, n ? n : 1, sizeof *rs->labels)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    size_t got = 0;
    cJSON_ArrayForEach(item, root) {
        uint32_t index;
        const char *text;
        if (cJSON_IsObject(root)) {
            text = cJSON_GetStringValue(item);
            if (!parse_index_text(item->string, &index))
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: key \"%.40s\" is not a feature index; "
                                        "expected a non-negative integer below 2^32", path, item->string);
            if (!text)
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: the value of \"%.40s\" is not a string; "
                                        "expected the feature's explanation", path, item->string);
        } else {
            const cJSON *idx = cJSON_GetObjectItemCaseSensitive(item, "index");
            text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "description"));
            if (!text)
                text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "explanation"));
            if (!cJSON_IsObject(item) || !idx || !parse_index(idx, &index))
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: entry %zu has no valid \"index\"; "
                                        "expected a non-negative integer (or numeric string)", path, i);
            if (!text)
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: entry %zu has no \"description\" or "
                                        "\"explanation\" string; expected the feature's explanation", path, i);
        }
        saemon_status s = add(rs, &got, index, text, path, err);
        if (s != SAEMON_OK)
            return s;
        i++;
    }
    qsort(rs->labels, got, sizeof *rs->labels, by_index);
    for (size_t k = 1; k < got; k++)
        if (rs->labels[k].index == rs->labels[k - 1].index)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: feature %u is labelled twice; "
                                    "expected one explanation per feature", path, rs->labels[k].index);
    rs->n_labels = got;
    return SAEMON_OK;
}

saemon_status rules_labels_load(saemon_ruleset *rs, const char *path, saemon_error *err)
{
    char *text;
    size_t len;
    saemon_status s = read_whole_file(path, RULES_MAX_LABELS_BYTES, "feature label file", &text, &len, err);
    if (s != SAEMON_OK)
        return s;
    const char *end = NULL;
    /* len + 1: cJSON's "nothing after the value" check wants to see the NUL. */
    cJSON *root = memchr(text, '\0', len) ? NULL : cJSON_ParseWithLengthOpts(text, len + 1, &end, true);
    if (!root) {
        s = syntax(path, text, cJSON_GetErrorPtr(), err);
    } else if (!cJSON_IsObject(root) && !cJSON_IsArray(root)) {
        s = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: feature labels are neither an object nor a list; "
                             "expected {\"index\": \"explanation\"} or [{\"index\", \"description\"}]", path);
    } else {
        s = fill(rs, root, path, err);
    }
    cJSON_Delete(root);
    free(text);
    if (s == SAEMON_OK && !(rs->labels_path = arena_strndup(&rs->mem, path, strlen(path))))
        s = saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    return s;
}

saemon_status saemon_rules_use_labels(saemon_ruleset *rs, const char *const *labels, size_t n, saemon_error *err)
{
    if (!rs || !labels || rs->labels)
        return SAEMON_OK;
    size_t count = 0, k = 0, longest = 0;
    for (size_t j = 0; j < n && j <= UINT32_MAX; j++)
        count += labels[j] != NULL;
    if (!count)
        return SAEMON_OK;
    rules_label *out = arena_calloc(&rs->mem, count, sizeof *out);
    for (size_t j = 0; out && j < n && k < count; j++) {
        if (!labels[j])
            continue;
        size_t len = strlen(labels[j]);
        if (!(out[k].text = arena_strndup(&rs->mem, labels[j], len)))
            out = NULL;
        else
            out[k++].index = (uint32_t)j, longest = len > longest ? len : longest;
    }
    if (!out)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for feature labels");
    rs->labels = out; /* ascending index, as rules_label_of needs */
    rs->n_labels = k;
    rs->max_label_len = longest > rs->max_label_len ? longest : rs->max_label_len;
    return SAEMON_OK;
}

const char *rules_label_of(const saemon_ruleset *rs, uint32_t index)
{
    size_t lo = 0, hi = rs->n_labels;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->labels[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rs->n_labels && rs->labels[lo].index == index ? rs->labels[lo].text : NULL;
}

int rules_label_find(const saemon_ruleset *rs, const char *text, uint32_t *index, uint32_t *other)
{
    int found = 0;
    for (size_t i = 0; i < rs->n_labels; i++) {
        if (strcmp(rs->labels[i].text, text) != 0)
            continue;
        if (found) {
            *other = rs->labels[i].index;
            return -1;
        }
        *index = rs->labels[i].index;
        found = 1;
    }
    return found;
}
