/* An alert as an Alertmanager v2 postableAlerts body (a one-element array).
 * Labels identify the alert in Alertmanager (its dedup key), so they hold
 * what is stable while a rule keeps firing on a stream: alertname (= rule),
 * severity, stream, dictionary, ring, replica and the rule's own labels
 * (docs/serve.md: which of them to group by). The token, the
 * features and the engine's request id go to annotations (most recent wins). A "resolved" alert carries
 * endsAt, which is what tells Alertmanager the alert is over. */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "monitors/sinks/sink_internal.h"

static void rfc3339(double t, char *buf, size_t len)
{
    if (!isfinite(t) || t < 0 || t > 253402300799.0)
        t = 0;
    double whole = floor(t);
    int ms = (int)((t - whole) * 1000.0);
    time_t secs = (time_t)whole;
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ms > 999 ? 999 : ms);
}

static bool set(cJSON *obj, const char *key, const char *value)
{
    if (!value)
        return true;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key); /* later writers win */
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

/* "12=3.5 40=0.25" (at most 16 features, then "..."). */
static void feature_list(const saemon_alert *a, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < a->n_features && used + 1 < len; i++) {
        int w = i == 16 ? snprintf(buf + used, len - used, " ...")
                        : snprintf(buf + used, len - used, "%s%" PRIu32 "=%.6g", i ? " " : "",
                                   a->features[i].index, (double)a->features[i].value);
        if (w < 0)
            break;
        used += (size_t)w;
        if (i == 16)
            break;
    }
}

char *sink_alertmanager_body(const saemon_alert *a, const char *generator_url, double ends_at)
{
    char stream[24], token[24], when[96], until[96], features[512];
    snprintf(stream, sizeof stream, "%" PRIu64, a->stream);
    snprintf(token, sizeof token, "%" PRIu64, a->token);
    rfc3339(a->timestamp, when, sizeof when);
    feature_list(a, features, sizeof features);
    bool resolved = a->status && !strcmp(a->status, "resolved");

    cJSON *arr = cJSON_CreateArray(), *alert = cJSON_CreateObject();
    cJSON *labels = cJSON_CreateObject(), *ann = cJSON_CreateObject();
    bool ok = arr && alert && labels && ann;
    for (size_t i = 0; ok && i < a->n_labels; i++)
        ok = !a->labels[i].key || set(labels, a->labels[i].key, a->labels[i].value ? a->labels[i].value : "");
    ok = ok && set(labels, "alertname", a->rule ? a->rule : "saemon") && set(labels, "severity", a->severity) &&
         set(labels, "stream", stream) && set(labels, "dictionary", a->dictionary) &&
         set(labels, "ring", a->ring) && set(labels, "replica", a->replica) &&
         set(labels, "group", a->group && *a->group ? a->group : NULL);
    for (size_t i = 0; ok && i < a->n_annotations; i++)
        ok = !a->annotations[i].key ||
             set(ann, a->annotations[i].key, a->annotations[i].value ? a->annotations[i].value : "");
    char fired[24], value[32];
    snprintf(fired, sizeof fired, "%" PRIu64, a->fired_token);
    snprintf(value, sizeof value, "%.6g", a->value);
    ok = ok && set(ann, "description", a->description) && set(ann, "token", token) &&
         (!resolved || set(ann, "fired_token", fired)) && (!isfinite(a->value) || set(ann, "value", value)) &&
         (!a->n_features || set(ann, "features", features)) && set(ann, "request_id", a->request_id);
    if (ok) {
        cJSON_AddItemToObject(alert, "labels", labels);
        cJSON_AddItemToObject(alert, "annotations", ann);
        labels = ann = NULL;
        /* A resolved alert keeps the startsAt Alertmanager already has (it
         * keeps the earliest); endsAt <= now marks it resolved. */
        ok = cJSON_AddStringToObject(alert, resolved ? "endsAt" : "startsAt", when) &&
             (resolved || ends_at <= 0 || (rfc3339(ends_at, until, sizeof until), cJSON_AddStringToObject(alert, "endsAt", until))) &&
             (!generator_url || cJSON_AddStringToObject(alert, "generatorURL", generator_url));
    }
    char *text = NULL;
    if (ok && cJSON_AddItemToArray(arr, alert)) {
        alert = NULL;
        text = cJSON_PrintUnformatted(arr);
    }
    cJSON_Delete(labels);
    cJSON_Delete(ann);
    cJSON_Delete(alert);
    cJSON_Delete(arr);
    return text;
}
