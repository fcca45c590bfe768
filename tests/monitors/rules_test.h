/* Shared helpers for the monitors tests. */
#ifndef SAEMON_TESTS_MONITORS_RULES_TEST_H
#define SAEMON_TESTS_MONITORS_RULES_TEST_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/rules.h"

static inline saemon_ruleset *load_ok(const char *yaml)
{
    saemon_ruleset *rs = NULL;
    saemon_error err = {0};
    saemon_status s = saemon_rules_from_string(yaml, strlen(yaml), "t.yaml", NULL, &rs, &err);
    cr_assert_eq(s, SAEMON_OK, "load failed: %s", err.message);
    cr_assert_not_null(rs);
    return rs;
}

/* Loading must fail with `code`, a message starting with `prefix`
 * ("t.yaml:L:C:") and containing `phrase`. */
#define EXPECT_ERR(yaml, code, prefix, phrase)                                                    \
    do {                                                                                          \
        const char *y_ = (yaml);                                                                  \
        saemon_ruleset *rs_ = NULL;                                                               \
        saemon_error err_ = {0};                                                                  \
        saemon_status s_ = saemon_rules_from_string(y_, strlen(y_), "t.yaml", NULL, &rs_, &err_);       \
        cr_expect_eq(s_, (code), "status %s for %s (message: %s)", saemon_status_name(s_), prefix, \
                     err_.message);                                                               \
        cr_expect_null(rs_);                                                                      \
        cr_expect(strncmp(err_.message, prefix, strlen(prefix)) == 0,                             \
                  "expected prefix '%s', got: %s", prefix, err_.message);                        \
        cr_expect(strstr(err_.message, phrase) != NULL, "expected '%s' in: %s", phrase,           \
                  err_.message);                                                                  \
        cr_expect(strstr(err_.message, "expected") != NULL, "no 'expected' in: %s", err_.message); \
        saemon_rules_close(rs_);                                                                   \
    } while (0)

/* Alerts recorded by capture_alert (copies of what the tests check). */
#define CAPTURE_MAX 64
typedef struct captured {
    char rule[64];
    char status[16];
    char group[32];
    uint64_t fired_token;
    double value;
    char feature_label[8][64];
    char annotation[4][256]; /* values, in rule order */
    char severity[32];
    char description[128];
    uint64_t stream, token;
    size_t n_features;
    saemon_alert_feature features[8];
    size_t n_labels, n_annotations;
    char json[2048];
} captured;

typedef struct capture {
    size_t n;
    captured a[CAPTURE_MAX];
} capture;

static inline void capture_alert(const saemon_alert *alert, void *user)
{
    capture *c = user;
    cr_assert_lt(c->n, CAPTURE_MAX, "too many alerts");
    captured *k = &c->a[c->n++];
    snprintf(k->rule, sizeof k->rule, "%s", alert->rule);
    snprintf(k->status, sizeof k->status, "%s", alert->status);
    snprintf(k->group, sizeof k->group, "%s", alert->group ? alert->group : "(null)");
    k->fired_token = alert->fired_token;
    k->value = alert->value;
    for (size_t i = 0; i < alert->n_features && i < 8; i++)
        snprintf(k->feature_label[i], sizeof k->feature_label[i], "%s",
                 alert->features[i].label ? alert->features[i].label : "(null)");
    for (size_t i = 0; i < alert->n_annotations && i < 4; i++)
        snprintf(k->annotation[i], sizeof k->annotation[i], "%s", alert->annotations[i].value);
    snprintf(k->severity, sizeof k->severity, "%s", alert->severity);
    snprintf(k->description, sizeof k->description, "%s", alert->description);
    k->stream = alert->stream;
    k->token = alert->token;
    k->n_features = alert->n_features;
    for (size_t i = 0; i < alert->n_features && i < 8; i++)
        k->features[i] = alert->features[i];
    k->n_labels = alert->n_labels;
    k->n_annotations = alert->n_annotations;
    char *json = saemon_alert_to_json(alert);
    cr_assert_not_null(json);
    snprintf(k->json, sizeof k->json, "%s", json);
    free(json);
}

/* Feed one token with the given (index, value) pairs. */
static inline void feed(saemon_monitor *mon, uint64_t stream, uint64_t token, const uint32_t *index,
                        const float *value, size_t nnz, capture *c)
{
    saemon_token_view t = {.stream = stream, .token = token, .index = index, .value = value, .nnz = nnz};
    saemon_monitor_observe(mon, &t, capture_alert, c);
}

#endif
