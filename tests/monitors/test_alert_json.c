/* saemon_alert_to_json: one line, fixed key order, every field parsed back. */
#include "rules_test.h"

#include <cJSON.h>
#include <math.h>
#include <time.h>

static const saemon_alert_feature feats[] = {{7, 5.25f, NULL}, {300, 0.1f, "past tense"}};
static const saemon_kv labels[] = {{"team", "safety"}, {"quote", "a \"b\"\n\\c"}};
static const saemon_kv annotations[] = {{"summary", "alarm feature active"}};

static saemon_alert sample(void)
{
    saemon_alert a = {
        .rule = "alarm-direction",
        .description = "the planted alarm direction is active",
        .severity = "critical",
        .status = "firing",
        .stream = 18446744073709551615ULL, /* beyond double precision */
        .token = 9007199254740993ULL,
        .features = feats,
        .n_features = 2,
        .labels = labels,
        .n_labels = 2,
        .annotations = annotations,
        .n_annotations = 1,
        .dictionary = "pasttense-mlp/saelens",
        .timestamp = 1795608000.123456, /* 2026-11-25T12:00:00.123Z */
        .value = NAN,
    };
    return a;
}

Test(alert_json, exact_text_and_key_order)
{
    saemon_alert a = sample();
    char *json = saemon_alert_to_json(&a);
    cr_assert_not_null(json);
    cr_expect_null(strchr(json, '\n'), "must be one line: %s", json);
    cr_expect_str_eq(json,
                     "{\"timestamp\":\"2026-11-25T12:00:00.123Z\",\"status\":\"firing\","
                     "\"rule\":\"alarm-direction\",\"severity\":\"critical\","
                     "\"description\":\"the planted alarm direction is active\","
                     "\"stream\":18446744073709551615,\"token\":9007199254740993,"
                     "\"features\":[{\"index\":7,\"value\":5.25},{\"index\":300,\"value\":0.100000001,\"label\":\"past tense\"}],"
                     "\"labels\":{\"team\":\"safety\",\"quote\":\"a \\\"b\\\"\\n\\\\c\"},"
                     "\"annotations\":{\"summary\":\"alarm feature active\"},"
                     "\"dictionary\":\"pasttense-mlp/saelens\"}");
    free(json);
}

Test(alert_json, parses_back_with_every_field)
{
    saemon_alert a = sample();
    char *json = saemon_alert_to_json(&a);
    cJSON *o = cJSON_Parse(json);
    cr_assert_not_null(o, "invalid JSON: %s", json);
    const char *keys[] = {"timestamp", "status", "rule", "severity", "description", "stream",
                          "token", "features", "labels", "annotations", "dictionary"};
    size_t i = 0;
    for (cJSON *it = o->child; it; it = it->next, i++) {
        cr_assert_lt(i, 11);
        cr_expect_str_eq(it->string, keys[i]);
    }
    cr_expect_eq(i, 11);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "rule")->valuestring, "alarm-direction");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "severity")->valuestring, "critical");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "firing");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "dictionary")->valuestring, "pasttense-mlp/saelens");
    cJSON *f = cJSON_GetObjectItem(o, "features");
    cr_assert_eq(cJSON_GetArraySize(f), 2);
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 1), "index")->valueint, 300);
    /* the printed value reads back as exactly the same float */
    float v = (float)cJSON_GetObjectItem(cJSON_GetArrayItem(f, 1), "value")->valuedouble;
    cr_expect_eq(v, 0.1f);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "labels"), "quote")->valuestring,
                     "a \"b\"\n\\c");
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "annotations"), "summary")->valuestring,
                     "alarm feature active");
    cJSON_Delete(o);
    free(json);
}

Test(alert_json, floats_round_trip)
{
    const float values[] = {1e-10f, 3.4028235e38f, 1.17549435e-38f, 0.33333334f, 16777217.0f, 1.0f};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        saemon_alert_feature f = {1, values[i], NULL};
        saemon_alert a = sample();
        a.features = &f;
        a.n_features = 1;
        char *json = saemon_alert_to_json(&a);
        cJSON *o = cJSON_Parse(json);
        cr_assert_not_null(o, "%s", json);
        double back = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "features"), 0), "value")->valuedouble;
        cr_expect_eq((float)back, values[i], "%.9g came back as %.17g", (double)values[i], back);
        cJSON_Delete(o);
        free(json);
    }
}

Test(alert_json, non_finite_value_and_missing_strings_become_null)
{
    saemon_alert_feature f = {1, NAN, NULL};
    saemon_alert a = sample();
    a.features = &f;
    a.n_features = 1;
    a.dictionary = NULL;
    a.labels = NULL;
    a.n_labels = 0;
    char *json = saemon_alert_to_json(&a);
    cJSON *o = cJSON_Parse(json);
    cr_assert_not_null(o, "%s", json);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "features"), 0), "value")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(o, "dictionary")));
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "labels")), 0);
    cJSON_Delete(o);
    free(json);
}

Test(alert_json, timestamp_millisecond_boundaries)
{
    saemon_alert a = sample();
    a.timestamp = 0.9999;
    char *json = saemon_alert_to_json(&a);
    cr_expect(strstr(json, "\"timestamp\":\"1970-01-01T00:00:00.999Z\"") != NULL, "%s", json);
    free(json);
}

Test(alert_json, from_a_live_monitor)
{
    saemon_ruleset *rs = load_ok("rules:\n  - name: alarm\n    description: d\n    severity: INFO\n"
                                 "    labels: {team: safety}\n    annotations: {summary: s}\n"
                                 "    condition: {feature: 7, above: 4}\n");
    saemon_dict_info info = {0};
    info.name = "toy";
    info.d_sae = 8;
    saemon_monitor *mon = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_monitor_create(rs, &info, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    capture c = {0};
    const uint32_t idx[] = {7};
    const float val[] = {5.25f};
    struct timespec before;
    clock_gettime(CLOCK_REALTIME, &before);
    feed(mon, 42, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 1);
    cJSON *o = cJSON_Parse(c.a[0].json);
    cr_assert_not_null(o);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "severity")->valuestring, "informational");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "dictionary")->valuestring, "toy");
    cr_expect_eq(cJSON_GetObjectItem(o, "stream")->valuedouble, 42.0);
    cr_expect_eq(cJSON_GetObjectItem(o, "token")->valuedouble, 0.0);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "labels"), "team")->valuestring, "safety");
    /* the timestamp is "now": same UTC date prefix as the clock read just before */
    struct tm tm;
    gmtime_r(&before.tv_sec, &tm);
    char year[16];
    snprintf(year, sizeof year, "%04d-", tm.tm_year + 1900);
    cr_expect(strncmp(cJSON_GetObjectItem(o, "timestamp")->valuestring, year, 5) == 0, "%s", c.a[0].json);
    cJSON_Delete(o);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
}
