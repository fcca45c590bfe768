#include "cli/feature_names.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"

static bool index_of(const cJSON *v, const char *key, size_t d_sae, size_t *out)
{
    char *end = NULL;
    double d;
    if (cJSON_IsNumber(v))
        d = v->valuedouble;
    else if (key || cJSON_IsString(v)) {
        const char *s = key ? key : v->valuestring;
        errno = 0;
        d = strtod(s, &end);
        if (end == s || *end || errno)
            return false;
    } else
        return false;
    if (d < 0 || d != (double)(size_t)d || (size_t)d >= d_sae)
        return false;
    *out = (size_t)d;
    return true;
}

static bool set(const char *what, const char *path, char **names, size_t i, const char *text)
{
    if (names[i]) {
        fprintf(stderr, "saemon %s: %s: feature %zu is labelled twice\n", what, path, i);
        return false;
    }
    if (!(names[i] = strdup(text))) {
        fprintf(stderr, "saemon %s: out of memory\n", what);
        return false;
    }
    return true;
}

bool feature_names_load(const char *what, const char *path, size_t d_sae, char ***out)
{
    saemon_error err = {0};
    char *text = NULL;
    size_t len = 0;
    if (read_whole_file(path, (size_t)1 << 30, "feature label file", &text, &len, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon %s: %s\n", what, err.message);
        return false;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    char **names = calloc(d_sae, sizeof *names);
    bool ok = j && names && (cJSON_IsObject(j) || cJSON_IsArray(j));
    if (!ok)
        fprintf(stderr, "saemon %s: %s: not a feature label file (a JSON object of index -> text, or a list of "
                        "{index, description})\n", what, path);
    for (const cJSON *it = ok ? j->child : NULL; ok && it; it = it->next) {
        size_t i;
        const cJSON *txt = it;
        if (cJSON_IsArray(j)) {
            txt = cJSON_GetObjectItemCaseSensitive(it, "description");
            if (!cJSON_IsString(txt))
                txt = cJSON_GetObjectItemCaseSensitive(it, "explanation");
            ok = index_of(cJSON_GetObjectItemCaseSensitive(it, "index"), NULL, d_sae, &i);
        } else {
            ok = index_of(it, it->string, d_sae, &i);
        }
        if (!ok || !cJSON_IsString(txt)) {
            fprintf(stderr, "saemon %s: %s: entry %s: expected a feature index below %zu with a text\n", what, path,
                    it->string ? it->string : "of the list", d_sae);
            ok = false;
            break;
        }
        ok = set(what, path, names, i, txt->valuestring);
    }
    cJSON_Delete(j);
    if (!ok) {
        feature_names_free(names, d_sae);
        return false;
    }
    *out = names;
    return true;
}

void feature_names_free(char **names, size_t d_sae)
{
    for (size_t i = 0; names && i < d_sae; i++)
        free(names[i]);
    free(names);
}
