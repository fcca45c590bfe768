/* saemon_alert_to_json: one alert as one line of JSON, keys in a fixed order. */
#include <cJSON.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "saemon/rules.h"

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-25T12:00:00.123Z. */
static void format_timestamp(double t, char *buf, size_t len)
{
    if (!isfinite(t) || t < 0 || t > 253402300799.0) /* after 9999-12-31 */
        t = 0;
    double whole = floor(t);
    int ms = (int)((t - whole) * 1000.0);
    if (ms > 999)
        ms = 999;
    time_t secs = (time_t)whole;
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

static cJSON *string_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *kv_object(const saemon_kv *kv, size_t n)
{
    cJSON *obj = cJSON_CreateObject();
    for (size_t i = 0; obj && i < n; i++) {
        if (!kv[i].key)
            continue;
        cJSON *v = string_or_null(kv[i].value);
        if (!v || !cJSON_AddItemToObject(obj, kv[i].key, v)) {
            cJSON_Delete(v);
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

/* Floats print with 9 significant digits: enough to round-trip a float. The
 * C locale keeps '.' as the decimal point whatever the caller's locale. */
static cJSON *features_array_of(const saemon_alert_feature *feats, size_t n)
{
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!c_locale)
        return NULL;
    locale_t previous = uselocale(c_locale);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        char value[32];
        float v = feats[i].value;
        if (isfinite(v))
            snprintf(value, sizeof value, "%.9g", (double)v);
        else
            snprintf(value, sizeof value, "null");
        cJSON *f = cJSON_CreateObject();
        if (!f || !cJSON_AddNumberToObject(f, "index", feats[i].index) ||
            !cJSON_AddRawToObject(f, "value", value) ||
            (feats[i].label && !cJSON_AddStringToObject(f, "label", feats[i].label)) ||
            !cJSON_AddItemToArray(arr, f)) {
            cJSON_Delete(f);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    uselocale(previous);
    freelocale(c_locale);
    return arr;
}

static cJSON *features_array(const saemon_alert *a)
{
    return features_array_of(a->features, a->n_features);
}

/* "captured": {"window": W, "features": [...]} (capture on demand). */
static cJSON *captured_object(const saemon_alert *a)
{
    cJSON *o = cJSON_CreateObject(), *f = features_array_of(a->captured, a->n_captured);
    if (!o || !f || !cJSON_AddNumberToObject(o, "window", a->capture_window) ||
        !cJSON_AddItemToObject(o, "features", f)) {
        cJSON_Delete(o);
        cJSON_Delete(f);
        return NULL;
    }
    return o;
}

/* %.9g in the C locale. */
static bool format_number(double v, char *buf, size_t len)
{
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!c_locale)
        return false;
    locale_t previous = uselocale(c_locale);
    snprintf(buf, len, "%.9g", v);
    uselocale(previous);
    freelocale(c_locale);
    return true;
}

static bool add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

char *saemon_alert_to_json(const saemon_alert *a)
{
    if (!a)
        return NULL;
    char ts[96], stream[24], token[24], fired[24], value[40];
    format_timestamp(a->timestamp, ts, sizeof ts);
    snprintf(stream, sizeof stream, "%" PRIu64, a->stream);
    snprintf(token, sizeof token, "%" PRIu64, a->token);
    snprintf(fired, sizeof fired, "%" PRIu64, a->fired_token);
    bool resolved = a->status && !strcmp(a->status, "resolved");
    bool has_value = isfinite(a->value);
    if (has_value && !format_number(a->value, value, sizeof value))
        return NULL;

    cJSON *o = cJSON_CreateObject();
    bool ok = o && add(o, "timestamp", cJSON_CreateString(ts)) &&
              add(o, "status", string_or_null(a->status)) && add(o, "rule", string_or_null(a->rule)) &&
              add(o, "severity", string_or_null(a->severity)) &&
              add(o, "description", string_or_null(a->description)) &&
              add(o, "stream", cJSON_CreateRaw(stream)) && add(o, "token", cJSON_CreateRaw(token)) &&
              (!resolved || add(o, "fired_token", cJSON_CreateRaw(fired))) &&
              (!has_value || add(o, "value", cJSON_CreateRaw(value))) &&
              (!a->group || !*a->group || add(o, "group", cJSON_CreateString(a->group))) &&
              (!a->block || add(o, "action", cJSON_CreateString("block"))) &&
              add(o, "features", features_array(a)) && add(o, "labels", kv_object(a->labels, a->n_labels)) &&
              add(o, "annotations", kv_object(a->annotations, a->n_annotations)) &&
              add(o, "dictionary", string_or_null(a->dictionary)) &&
              (!a->ring || add(o, "ring", cJSON_CreateString(a->ring))) &&
              (!a->replica || add(o, "replica", cJSON_CreateString(a->replica))) &&
              (!a->request_id || add(o, "request_id", cJSON_CreateString(a->request_id))) &&
              (!a->capture_window || add(o, "captured", captured_object(a)));
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}
