/* An alert as an OpenTelemetry logs export request, OTLP/HTTP JSON
 * (opentelemetry-proto collector/logs/v1 ExportLogsServiceRequest in the
 * proto3 JSON mapping: lowerCamelCase field names, 64-bit integers as
 * decimal strings, enums as integers):
 *
 *   {"resourceLogs":[{"resource":{"attributes":[service.name, service.instance.id]},
 *     "scopeLogs":[{"scope":{"name":"saemon"},"logRecords":[ONE RECORD]}]}]}
 *
 * The record: timeUnixNano (the alert's time), observedTimeUnixNano (now),
 * severityNumber/severityText from the rule's severity, body = the summary
 * (annotation "summary", else the description, else the rule name), and the
 * attributes rule, status, stream, token, dictionary, group, value, features
 * (array of {index, value}) and labels (a key/value list). Nothing else of
 * the alert goes out: no annotation but the summary, no captured rows, and
 * never prompt text (saemon does not have any). Delivery (retries, spool,
 * Idempotency-Key, auth, TLS) is the webhook's (sink_http.c). */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "monitors/sinks/sink_internal.h"

#define OTLP_MAX_FEATURES 64

struct sink_otlp {
    char *service_name;
    char *service_instance;
};

sink_otlp *sink_otlp_open(const saemon_sink_options *o)
{
    sink_otlp *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    char host[256] = "";
    if (!o->service_instance && gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    x->service_name = strdup(o->service_name && *o->service_name ? o->service_name : "saemon");
    x->service_instance = strdup(o->service_instance ? o->service_instance : host);
    if (!x->service_name || !x->service_instance) {
        sink_otlp_free(x);
        return NULL;
    }
    return x;
}

void sink_otlp_free(sink_otlp *x)
{
    if (!x)
        return;
    free(x->service_name);
    free(x->service_instance);
    free(x);
}

int sink_otlp_severity_number(const char *severity)
{
    /* The log data model's mapping of syslog severities (RFC 5424 names and
     * the short forms rules use); 0 = SEVERITY_NUMBER_UNSPECIFIED (omitted). */
    static const struct {
        const char *name;
        int number;
    } map[] = {
        {"trace", 1},  {"debug", 5},     {"info", 9},          {"informational", 9}, {"notice", 10},
        {"warn", 13},  {"warning", 13},  {"error", 17},        {"err", 17},          {"critical", 18},
        {"crit", 18},  {"alert", 21},    {"emergency", 22},    {"emerg", 22},        {"fatal", 21},
    };
    for (size_t i = 0; severity && i < sizeof map / sizeof map[0]; i++)
        if (!strcasecmp(severity, map[i].name))
            return map[i].number;
    return 0;
}

/* {"key": k, "value": {"stringValue": v}} and friends, appended to arr. */
static cJSON *kv(cJSON *arr, const char *key)
{
    cJSON *item = cJSON_CreateObject();
    if (!item || !cJSON_AddStringToObject(item, "key", key) || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return NULL;
    }
    return cJSON_AddObjectToObject(item, "value");
}

static bool kv_string(cJSON *arr, const char *key, const char *value)
{
    cJSON *v = kv(arr, key);
    return v && cJSON_AddStringToObject(v, "stringValue", value ? value : "");
}

/* int64 in the proto3 JSON mapping: a decimal string. */
static bool any_int(cJSON *v, uint64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, value > INT64_MAX ? INT64_MAX : (int64_t)value);
    return cJSON_AddStringToObject(v, "intValue", text) != NULL;
}

static bool kv_int(cJSON *arr, const char *key, uint64_t value)
{
    cJSON *v = kv(arr, key);
    return v && any_int(v, value);
}

static bool kv_double(cJSON *arr, const char *key, double value)
{
    cJSON *v = kv(arr, key);
    return v && cJSON_AddNumberToObject(v, "doubleValue", value);
}

static bool add_features(cJSON *attrs, const saemon_alert *a)
{
    cJSON *v = kv(attrs, "features");
    cJSON *arr = v ? cJSON_AddObjectToObject(v, "arrayValue") : NULL;
    cJSON *values = arr ? cJSON_AddArrayToObject(arr, "values") : NULL;
    if (!values)
        return false;
    for (size_t i = 0; i < a->n_features && i < OTLP_MAX_FEATURES; i++) {
        cJSON *any = cJSON_CreateObject();
        if (!any || !cJSON_AddItemToArray(values, any)) {
            cJSON_Delete(any);
            return false;
        }
        cJSON *kvl = cJSON_AddObjectToObject(any, "kvlistValue");
        cJSON *pairs = kvl ? cJSON_AddArrayToObject(kvl, "values") : NULL;
        double value = a->features[i].value;
        if (!pairs || !kv_int(pairs, "index", a->features[i].index) ||
            (isfinite(value) && !kv_double(pairs, "value", value)))
            return false;
    }
    return true;
}

static bool add_labels(cJSON *attrs, const saemon_alert *a)
{
    cJSON *v = kv(attrs, "labels");
    cJSON *kvl = v ? cJSON_AddObjectToObject(v, "kvlistValue") : NULL;
    cJSON *pairs = kvl ? cJSON_AddArrayToObject(kvl, "values") : NULL;
    if (!pairs)
        return false;
    for (size_t i = 0; i < a->n_labels; i++) {
        if (!a->labels[i].key)
            continue;
        bool dup = false; /* keys of a KeyValueList must be unique: the last one wins, as elsewhere */
        for (size_t j = i + 1; j < a->n_labels && !dup; j++)
            dup = a->labels[j].key && !strcmp(a->labels[j].key, a->labels[i].key);
        if (!dup && !kv_string(pairs, a->labels[i].key, a->labels[i].value))
            return false;
    }
    return true;
}

static const char *summary_of(const saemon_alert *a)
{
    for (size_t i = a->n_annotations; i-- > 0;)
        if (a->annotations[i].key && !strcmp(a->annotations[i].key, "summary") && a->annotations[i].value)
            return a->annotations[i].value;
    if (a->description && *a->description)
        return a->description;
    return a->rule ? a->rule : "saemon alert";
}

static void unix_nanos(double seconds, char out[24])
{
    if (!isfinite(seconds) || seconds < 0 || seconds > 1.8e10)
        seconds = 0; /* 0 = unknown, as the proto says */
    double whole = floor(seconds);
    uint64_t ns = (uint64_t)whole * 1000000000ull + (uint64_t)llround((seconds - whole) * 1e9);
    snprintf(out, 24, "%" PRIu64, ns);
}

static bool add_record(cJSON *records, const saemon_alert *a)
{
    cJSON *r = cJSON_CreateObject();
    if (!r || !cJSON_AddItemToArray(records, r)) {
        cJSON_Delete(r);
        return false;
    }
    char when[24], seen[24];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unix_nanos(a->timestamp, when);
    unix_nanos((double)now.tv_sec + (double)now.tv_nsec * 1e-9, seen);
    int number = sink_otlp_severity_number(a->severity);
    bool resolved = a->status && !strcmp(a->status, "resolved");
    cJSON *body = cJSON_AddObjectToObject(r, "body");
    bool ok = cJSON_AddStringToObject(r, "timeUnixNano", when) &&
              cJSON_AddStringToObject(r, "observedTimeUnixNano", seen) &&
              (!number || cJSON_AddNumberToObject(r, "severityNumber", number)) &&
              (!a->severity || !*a->severity || cJSON_AddStringToObject(r, "severityText", a->severity)) && body &&
              cJSON_AddStringToObject(body, "stringValue", summary_of(a));
    cJSON *attrs = ok ? cJSON_AddArrayToObject(r, "attributes") : NULL;
    ok = attrs && kv_string(attrs, "rule", a->rule) && kv_string(attrs, "status", a->status ? a->status : "firing");
    char stream[24];
    snprintf(stream, sizeof stream, "%" PRIu64, a->stream); /* an id, not a quantity (and may pass int64) */
    ok = ok && kv_string(attrs, "stream", stream) && kv_int(attrs, "token", a->token) &&
         (!resolved || kv_int(attrs, "fired_token", a->fired_token)) &&
         (!a->dictionary || kv_string(attrs, "dictionary", a->dictionary)) &&
         (!a->group || !*a->group || kv_string(attrs, "group", a->group)) &&
         (!a->ring || kv_string(attrs, "ring", a->ring)) && (!a->replica || kv_string(attrs, "replica", a->replica)) &&
         (!a->request_id || kv_string(attrs, "request_id", a->request_id)) &&
         (!isfinite(a->value) || kv_double(attrs, "value", a->value)) && add_features(attrs, a) &&
         add_labels(attrs, a);
    return ok;
}

char *sink_otlp_body(const sink_otlp *x, const saemon_alert *a)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *rl = root ? cJSON_AddArrayToObject(root, "resourceLogs") : NULL;
    cJSON *one = cJSON_CreateObject();
    bool ok = rl && one && cJSON_AddItemToArray(rl, one);
    if (!ok)
        cJSON_Delete(one);
    cJSON *resource = ok ? cJSON_AddObjectToObject(one, "resource") : NULL;
    cJSON *rattrs = resource ? cJSON_AddArrayToObject(resource, "attributes") : NULL;
    ok = rattrs && kv_string(rattrs, "service.name", x->service_name) &&
         kv_string(rattrs, "service.instance.id", x->service_instance);
    cJSON *scope_logs = ok ? cJSON_AddArrayToObject(one, "scopeLogs") : NULL;
    cJSON *sl = cJSON_CreateObject();
    ok = scope_logs && sl && cJSON_AddItemToArray(scope_logs, sl);
    if (!ok)
        cJSON_Delete(sl); /* not attached (NULL is fine) */
    cJSON *scope = ok ? cJSON_AddObjectToObject(sl, "scope") : NULL;
    cJSON *records = scope && cJSON_AddStringToObject(scope, "name", "saemon") ? cJSON_AddArrayToObject(sl, "logRecords")
                                                                            : NULL;
    char *text = records && add_record(records, a) ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}
