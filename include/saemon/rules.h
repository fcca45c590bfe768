/* saemon — alert rules (YAML) and the per-stream monitor that evaluates them. */
#ifndef SAEMON_RULES_H
#define SAEMON_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saemon_ruleset saemon_ruleset;

/* Parse and validate a rule file. Errors carry "file:line:column: what was
 * expected". */
saemon_status saemon_rules_load(const char *path, saemon_ruleset **out, saemon_error *err);
/* Same, from memory; `filename` is only used in messages. */
saemon_status saemon_rules_load_string(const char *yaml, size_t len, const char *filename,
                                       saemon_ruleset **out, saemon_error *err);

/* Check the rules against the dictionary they will watch: the file's pin
 * (name, d_sae, sha256) must match, and every feature index must be < d_sae.
 * A mismatch is SAEMON_ERR_MISMATCH / SAEMON_ERR_RULES with file:line:column. */
saemon_status saemon_rules_bind(const saemon_ruleset *rules, const saemon_dict_info *dict,
                                saemon_error *err);

size_t saemon_rules_count(const saemon_ruleset *rules);          /* enabled + disabled */
size_t saemon_rules_enabled_count(const saemon_ruleset *rules);
void saemon_rules_free(saemon_ruleset *rules);

/* One token as the monitor sees it. */
typedef struct saemon_token_view {
    uint64_t stream;        /* sequence / stream id (0 when unknown) */
    uint64_t token;         /* token position within the stream */
    const uint32_t *index;  /* active features, ascending */
    const float *value;
    size_t nnz;
    float input_norm;       /* ||x|| of the raw activation */
    bool input_nonfinite;   /* raw activation held NaN/Inf */
} saemon_token_view;

typedef struct saemon_alert_feature {
    uint32_t index;
    float value;
} saemon_alert_feature;

typedef struct saemon_kv {
    const char *key;
    const char *value;
} saemon_kv;

typedef struct saemon_alert {
    const char *rule;
    const char *description;
    const char *severity;
    const char *status;            /* "firing" */
    uint64_t stream;
    uint64_t token;
    const saemon_alert_feature *features; /* the features whose conditions held */
    size_t n_features;
    const saemon_kv *labels;
    size_t n_labels;
    const saemon_kv *annotations;
    size_t n_annotations;
    const char *dictionary;        /* name of the bound dictionary, may be NULL */
    double timestamp;              /* unix time, seconds */
} saemon_alert;

typedef void (*saemon_alert_fn)(const saemon_alert *alert, void *user);

typedef struct saemon_monitor saemon_monitor;

/* A monitor keeps per-stream rule state. The ruleset must outlive it. */
saemon_status saemon_monitor_create(const saemon_ruleset *rules, const saemon_dict_info *dict,
                                    saemon_monitor **out, saemon_error *err);
/* Evaluate every enabled rule on one token; `fn` is called for each alert that
 * fires. A token position that does not follow the stream's previous one (or
 * is 0) starts a new sequence and resets that stream's state. */
void saemon_monitor_observe(saemon_monitor *mon, const saemon_token_view *tok, saemon_alert_fn fn,
                            void *user);
void saemon_monitor_destroy(saemon_monitor *mon);

/* Streams the monitor currently tracks (one state block each). */
size_t saemon_monitor_stream_count(const saemon_monitor *mon);
/* Tokens observe() could not evaluate: NULL/inconsistent views, or no memory
 * to start tracking a new stream. 0 in a healthy run. */
uint64_t saemon_monitor_dropped(const saemon_monitor *mon);

/* The alert as one line of JSON (no newline); free() the result. NULL on
 * allocation failure. */
char *saemon_alert_to_json(const saemon_alert *alert);

#ifdef __cplusplus
}
#endif
#endif
