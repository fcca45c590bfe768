/* saemon — alert rules (YAML) and the per-stream monitor that evaluates them. */
#ifndef SAEMON_RULES_H
#define SAEMON_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "saemon/api.h"
#include "saemon/dict.h"
#include "saemon/encoder.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saemon_ruleset saemon_ruleset;

/* Optional settings for loading. */
typedef struct saemon_rules_options {
    /* Feature label JSON (index -> explanation); overrides the file's own
     * `feature_labels:`. NULL: use the file's, if any. */
    const char *feature_labels;
} saemon_rules_options;

/* Parse and validate a rule file (opts may be NULL: defaults). Errors carry
 * "file:line:column: what was expected". Release with saemon_rules_close. */
SAEMON_API saemon_status saemon_rules_open(const char *path, const saemon_rules_options *opts,
                                saemon_ruleset **out, saemon_error *err);
/* Same, from memory; `filename` is only used in messages. */
SAEMON_API saemon_status saemon_rules_from_string(const char *yaml, size_t len, const char *filename,
                                       const saemon_rules_options *opts, saemon_ruleset **out,
                                       saemon_error *err);

/* True when an enabled rule reads saemon_token_view.recon_error
 * (`reconstruction_error_above`): the encoder must then decode each token. */
SAEMON_API bool saemon_rules_needs_reconstruction(const saemon_ruleset *rules);

/* What the encoder must compute for these rules (docs/rules.md "What the
 * encoder computes"). */
typedef struct saemon_rules_needs {
    size_t n_latents;        /* distinct features the enabled rules read */
    /* Why the enabled rules need every latent on every token (a rule reads L0
     * or the reconstruction error without `every:`); "" when nothing does. */
    char full_reason[160];
    uint64_t full_every;     /* smallest `every: N` of the enabled rules; 0: none */
    bool reconstruction;     /* = saemon_rules_needs_reconstruction */
    uint32_t capture_window; /* largest `capture.window` of the enabled rules; 0: no capture */
    bool out_of_memory;      /* the latent set could not be computed */
} saemon_rules_needs;

/* The latents the enabled rules read: features in conditions, lists, macros,
 * label-based selections, running means and probes' nonzero weights. Writes
 * the first min(count, cap) indices, ascending, to `out` (may be NULL to
 * count), fills `needs` (may be NULL) and returns the count. Pass the list
 * to saemon_encoder_options.latents (or saemon_encoder_set_latents after a
 * reload), with full_reason / full_every from `needs`. */
SAEMON_API size_t saemon_rules_needed_latents(const saemon_ruleset *rules, uint32_t *out, size_t cap,
                                              saemon_rules_needs *needs);

/* Check the rules against the dictionary they will watch: the file's pin
 * (name, d_sae, sha256) must match, and every feature index must be < d_sae.
 * A mismatch is SAEMON_ERR_MISMATCH / SAEMON_ERR_RULES with file:line:column. */
SAEMON_API saemon_status saemon_rules_bind(const saemon_ruleset *rules, const saemon_dict_info *dict,
                                saemon_error *err);

/* Use labels[0..n) (NULL entries: none; e.g. a pack's,
 * saemon_dict_get_feature_labels) as the feature labels of the alerts'
 * {{ feature_label }} and features, when the rule file names no
 * `feature_labels:` file (that one wins; labels NULL: nothing). Copied. Call
 * before a monitor uses the rules. Labels in conditions still need
 * `feature_labels:` (rules are parsed before the dictionary opens). */
SAEMON_API saemon_status saemon_rules_use_labels(saemon_ruleset *rules, const char *const *labels, size_t n,
                                                 saemon_error *err);

SAEMON_API size_t saemon_rules_get_count(const saemon_ruleset *rules);          /* enabled + disabled */
SAEMON_API size_t saemon_rules_get_enabled_count(const saemon_ruleset *rules);
SAEMON_API void saemon_rules_close(saemon_ruleset *rules);

/* One token as the monitor sees it. */
typedef struct saemon_token_view {
    uint64_t stream;        /* sequence / stream id (0 when unknown) */
    uint64_t token;         /* token position within the stream */
    const uint32_t *index;  /* active features, ascending */
    const float *value;
    size_t nnz;
    float input_norm;       /* ||x|| of the raw activation */
    bool input_nonfinite;   /* raw activation held NaN/Inf */
    float recon_error;      /* ||x - x_hat|| / ||x||; NaN (or 0) when not computed */
    /* The features come from a subset plan (saemon_features.subset): only
     * the watched latents are present, so L0 and the reconstruction error
     * are unknown and rules reading them (or declaring `every:`) skip this
     * token. false (the default): every latent was encoded. */
    bool subset;
} saemon_token_view;

typedef struct saemon_alert_feature {
    uint32_t index;
    float value;
    const char *label;      /* explanation from the feature-label file, or NULL */
} saemon_alert_feature;

typedef struct saemon_kv {
    const char *key;
    const char *value;
} saemon_kv;

typedef struct saemon_alert {
    const char *rule;
    const char *description;
    const char *severity;
    const char *status;            /* "firing" or "resolved" */
    uint64_t stream;
    uint64_t token;                /* firing: the token it fired on; resolved: where it resolved */
    uint64_t fired_token;          /* the token the (now resolved) alert fired on; = token when firing */
    double value;                  /* the rule's value (probe score, health measure, mean or
                                      feature value of the first part that held); NaN: none */
    const char *group;             /* rule group name, "" for the flat rules: list */
    const saemon_alert_feature *features; /* the features whose conditions held */
    size_t n_features;
    const saemon_kv *labels;
    size_t n_labels;
    const saemon_kv *annotations;
    size_t n_annotations;
    const char *dictionary;        /* name of the bound dictionary, may be NULL */
    double timestamp;              /* unix time, seconds */
    /* Capture on demand (a rule's `capture:`): the strongest features of the
     * last capture_window tokens of the stream encoded with the full
     * dictionary (value = the largest over the window), descending; with
     * labels where loaded. n_captured 0 and capture_window 0 without capture. */
    const saemon_alert_feature *captured;
    size_t n_captured;
    uint32_t capture_window;
    bool block;                    /* the rule says `action: block`: the stream should be stopped
                                      (saemon serve publishes it as the stream's verdict) */
    /* Fleet identity (saemon serve; NULL elsewhere): the ring the stream came
     * through and the daemon's replica name. With `stream` they identify the
     * alert: part of the Idempotency-Key and of the Alertmanager labels. */
    const char *ring;
    const char *replica;
    /* The engine's request id of the stream's current sequence (a producer's
     * saemon_producer_begin_request / new_stream(request_id=)), or NULL. An
     * annotation, not part of the identity: JSON "request_id", Alertmanager
     * annotation, OTLP attribute. */
    const char *request_id;
} saemon_alert;

typedef void (*saemon_alert_fn)(const saemon_alert *alert, void *user);

typedef struct saemon_monitor saemon_monitor;

typedef struct saemon_monitor_options {
    /* Also call the callback with status "resolved" when a firing alert's
     * condition stops holding (after keep_firing_for) or its sequence ends. */
    bool resolved;
    /* Streams tracked at once; 0 = no limit. Tokens of a stream that would
     * exceed it are not evaluated and counted (saemon_monitor_get_unmonitored). */
    size_t max_streams;
} saemon_monitor_options;

/* A monitor keeps per-stream rule state. The ruleset must outlive it. opts
 * NULL: the defaults (firing alerts only). dict (may be NULL) is bound first
 * (saemon_rules_bind). */
SAEMON_API saemon_status saemon_monitor_create(const saemon_ruleset *rules, const saemon_dict_info *dict,
                                    const saemon_monitor_options *opts, saemon_monitor **out,
                                    saemon_error *err);
/* Evaluate every enabled rule on one token; `fn` is called for each alert that
 * fires. A token position that does not follow the stream's previous one (or
 * is 0) starts a new sequence and resets that stream's state. */
SAEMON_API void saemon_monitor_observe(saemon_monitor *mon, const saemon_token_view *tok, saemon_alert_fn fn,
                            void *user);
/* Evaluate every token of an encoded batch, in order: token t of `features`
 * is position tokens[t] of stream streams[t] (both arrays hold
 * features->n_tokens entries). The same as calling saemon_monitor_observe on
 * each token's view (features, input norm, non-finite flag, reconstruction
 * error when the encoder computed it). */
SAEMON_API void saemon_monitor_observe_batch(saemon_monitor *mon, const saemon_features *features,
                                             const uint64_t *streams, const uint64_t *tokens,
                                             saemon_alert_fn fn, void *user);
SAEMON_API void saemon_monitor_destroy(saemon_monitor *mon);

/* Capture on demand: when a rule with `capture: {features: top, count: C,
 * window: W}` fires on token `token` of `stream`, the monitor asks the
 * caller for the strongest features of that stream's last `window` tokens
 * (token included) encoded with every latent: write at most `cap` (index,
 * value) pairs, strongest first, value the largest over the window, and
 * return how many. The caller keeps the raw rows (or the tokens' full
 * features) and a full encoder (saemon_encoder_encode_full, or a second
 * encoder: not the one whose features are being observed). Labels are
 * filled in by the monitor. Without a function, capture is skipped. */
typedef size_t (*saemon_capture_fn)(uint64_t stream, uint64_t token, uint32_t window, saemon_alert_feature *out,
                                    size_t cap, void *user);
SAEMON_API void saemon_monitor_set_capture(saemon_monitor *mon, saemon_capture_fn fn, void *user);

/* What a reload did, counted over enabled rules. */
typedef struct saemon_reload_stats {
    size_t rules;    /* enabled rules now */
    size_t kept;     /* same name and same definition: per-stream state carried over */
    size_t changed;  /* same name, new definition: starts fresh */
    size_t added;    /* new name (or newly enabled): starts fresh */
    size_t removed;  /* gone (or disabled) */
} saemon_reload_stats;

/* Switch the monitor to `new_rules` between two tokens (docs/rules.md
 * "Reloading"). The caller has loaded and bound `new_rules` (the monitor does
 * not bind again); the old ruleset must stay valid until this returns and may
 * be freed afterwards; `new_rules` must then outlive the monitor. Unchanged
 * rules keep their per-stream state (held/armed/cooldown/window/firing) and
 * running means carry over for every (feature, mean_over) still used; changed
 * and new rules start fresh. A removed or changed rule that was firing is
 * reported through `fn` as "resolved" (when the monitor reports resolved).
 * All allocation happens here; on failure (SAEMON_ERR_NOMEM) the monitor is
 * unchanged and still uses the old rules. `stats` may be NULL. */
SAEMON_API saemon_status saemon_monitor_reload(saemon_monitor *mon, const saemon_ruleset *new_rules,
                                    saemon_alert_fn fn, void *user, saemon_reload_stats *stats,
                                    saemon_error *err);

/* The reload policy of a running monitor (`saemon run`, `saemon serve`):
 * what a reload from a file needs besides the file. */
typedef struct saemon_reload_options {
    const saemon_rules_options *rules; /* how to load the file; NULL: defaults */
    const saemon_dict_info *dict;      /* bind the new rules to it (pin, feature range); NULL: none */
    /* The encoder decodes (saemon_encoder_options.reconstruction): new rules
     * may use reconstruction_error_above. When false such rules are refused
     * (they could never see a reconstruction error). */
    bool can_reconstruct;
    saemon_alert_fn on_alert;          /* resolved alerts of removed/changed firing rules */
    void *user;
    /* Optional hooks around the switch, e.g. to give the encoder the new
     * rules' latents (saemon_rules_needed_latents, saemon_encoder_set_latents)
     * so a feature the reload adds is encoded from the next batch. prepare
     * runs with the new, bound rules before the monitor switches; an error
     * from it refuses the reload. finish runs after a successful prepare and
     * says whether the monitor switched (false: undo what prepare did). */
    saemon_status (*prepare)(const saemon_ruleset *next, void *hook_user, saemon_error *err);
    void (*finish)(bool switched, void *hook_user);
    void *hook_user;
} saemon_reload_options;

/* The first half of saemon_monitor_reload_file, which touches no monitor:
 * load the rule file at `path`, bind it and check it against the policy
 * above. A long-running program calls it off its encoding thread (parsing a
 * large or hostile file takes time), then saemon_monitor_reload() with the
 * result between batches. *out is NULL on failure. */
SAEMON_API saemon_status saemon_rules_open_for_reload(const char *path, const saemon_reload_options *opts,
                                                      saemon_ruleset **out, saemon_error *err);

/* Load the rule file at `path`, bind it, check it against the policy above
 * and switch the monitor to it (saemon_monitor_reload). On success the
 * caller's ruleset *rules (the one the monitor used) is closed and replaced
 * by the new one. On any failure nothing changes: the monitor keeps the old
 * rules, *rules is untouched and err says why (file:line:column for a broken
 * file). opts may be NULL (no binding, reconstruction allowed, no callback);
 * stats may be NULL. */
SAEMON_API saemon_status saemon_monitor_reload_file(saemon_monitor *mon, const char *path,
                                                    const saemon_reload_options *opts,
                                                    saemon_ruleset **rules, saemon_reload_stats *stats,
                                                    saemon_error *err);

/* Streams the monitor currently tracks (one state block each). */
SAEMON_API size_t saemon_monitor_get_stream_count(const saemon_monitor *mon);
/* Tokens observe() could not evaluate: NULL/inconsistent views, or no memory
 * to start tracking a new stream. 0 in a healthy run. */
SAEMON_API uint64_t saemon_monitor_get_dropped(const saemon_monitor *mon);
/* Sequences (a stream's token 0, or a new stream id) that arrived while
 * max_streams streams were tracked, so went unevaluated; their tokens are
 * also in saemon_monitor_get_dropped. */
SAEMON_API uint64_t saemon_monitor_get_unmonitored(const saemon_monitor *mon);

/* The producer closed `stream`: every alert still firing in it is resolved
 * (reported through `fn` when the monitor reports resolved alerts) and the
 * stream's state is freed, so a long-running monitor does not grow with the
 * number of streams it has seen. A later token of the same id starts afresh. */
SAEMON_API void saemon_monitor_end_stream(saemon_monitor *mon, uint64_t stream, saemon_alert_fn fn, void *user);

/* saemon_monitor_end_stream for every stream tracked (their producer is gone,
 * or the daemon stops). Returns the number of streams ended. */
SAEMON_API size_t saemon_monitor_end_all_streams(saemon_monitor *mon, saemon_alert_fn fn, void *user);

/* Rule unit tests (docs/rules.md "Rule unit tests"): run every test of the
 * YAML test file at `path`, printing PASS/FAIL per test (with a diff) to
 * `report`. *n_failed gets the number of failing tests. A malformed test or
 * rule file is an error (file:line:column), not a failure. */
SAEMON_API saemon_status saemon_rules_run_tests(const char *path, FILE *report, size_t *n_tests, size_t *n_failed,
                                     saemon_error *err);

/* The alert as one line of JSON (no newline); free() the result. NULL on
 * allocation failure. */
SAEMON_API char *saemon_alert_to_json(const saemon_alert *alert);

#ifdef __cplusplus
}
#endif
#endif
