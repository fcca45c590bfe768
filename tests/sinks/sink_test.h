/* Hand-made alerts for the sink tests (firing and resolved). */
#ifndef SAEMON_TESTS_SINKS_SINK_TEST_H
#define SAEMON_TESTS_SINKS_SINK_TEST_H

#include <stdint.h>
#include <string.h>

#include "saemon/sinks.h"

/* Alert number i: rule "deception", stream 7, token i, two features, one
 * label and one annotation. Strings live in `buf` so a test can overwrite
 * them after the callback to prove the sinks copied the alert. */
typedef struct test_alert {
    char rule[32], status[16], group[16], label[32];
    saemon_alert_feature features[2];
    saemon_kv labels[1], annotations[1];
    saemon_alert alert;
} test_alert;

static inline const saemon_alert *test_alert_make(test_alert *t, uint64_t token, const char *status)
{
    memset(t, 0, sizeof *t);
    strcpy(t->rule, "deception");
    strcpy(t->status, status);
    strcpy(t->group, "safety-pack");
    strcpy(t->label, "talks about lying");
    t->features[0] = (saemon_alert_feature){.index = 12, .value = 3.5f, .label = t->label};
    t->features[1] = (saemon_alert_feature){.index = 40, .value = 0.25f};
    t->labels[0] = (saemon_kv){"team", "safety"};
    t->annotations[0] = (saemon_kv){"runbook", "https://example.invalid/runbook"};
    t->alert = (saemon_alert){
        .rule = t->rule,
        .description = "deception features active",
        .severity = "critical",
        .status = t->status,
        .stream = 7,
        .token = token,
        .fired_token = token > 2 ? token - 2 : 0,
        .value = 3.5,
        .group = t->group,
        .features = t->features,
        .n_features = 2,
        .labels = t->labels,
        .n_labels = 1,
        .annotations = t->annotations,
        .n_annotations = 1,
        .dictionary = "gpt2-small-res-jb/blocks.8",
        .timestamp = 1700000000.0 + (double)token,
    };
    return &t->alert;
}

#endif
