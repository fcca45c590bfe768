/* Rules from data (docs/authoring.md): labelled recordings, per-latent
 * separation statistics, and replaying encoded recordings through the real
 * monitor. Shared by `saemon features`, `calibrate` and `backtest`. */
#ifndef SAEMON_CLI_AUTHORING_H
#define SAEMON_CLI_AUTHORING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/npy_rows.h"
#include "saemon/saemon.h"

/* A labelled span of one stream: tokens [start, end). */
typedef struct auth_span {
    uint64_t stream; /* global stream id (the recording's first stream + its own id) */
    uint64_t start, end;
} auth_span;

/* One recording and its labels (cli/labels.c). Row r is stream
 * first_stream + r / tokens_per_stream, position r % tokens_per_stream. */
typedef struct auth_recording {
    const char *path;
    npy_rows rows;         /* read a chunk at a time */
    size_t n_rows, n_streams, tokens_per_stream;
    uint64_t first_stream; /* global id of its stream 0 */
    uint64_t first_row;    /* global index of its row 0 */
    uint8_t *mask;         /* [n_rows], 1 = positive token; NULL: every token negative */
    auth_span *spans;      /* positive spans, sorted by (stream, start) */
    size_t n_spans;
} auth_recording;

typedef struct auth_set {
    auth_recording *rec;
    size_t n;
    uint64_t n_rows, n_streams;
    uint64_t n_pos_tokens;
    size_t n_spans;
} auth_set;

/* Which side a --input/--positive/--negative file belongs to. */
typedef enum auth_role { AUTH_LABELLED = 0, AUTH_POSITIVE, AUTH_NEGATIVE } auth_role;

/* Open `path` as rows of d_in floats and attach its labels: `labels` (a
 * JSONL span file or a 0/1 .npy mask, may be NULL = no positives) for
 * AUTH_LABELLED, every token for AUTH_POSITIVE, none for AUTH_NEGATIVE.
 * Appends to `set`; false after a message naming the file and position. */
bool auth_set_add(auth_set *set, const char *what, const char *path, auth_role role, const char *labels,
                  size_t d_in, bool hook_z);
void auth_set_free(auth_set *set);
/* Refuse a set with no positive or no negative token. */
bool auth_set_check_both(const auth_set *set, const char *what);

/* Label parsing on their own, for a recording of n_streams x tokens_per_stream
 * (cli/labels.c): fills mask (calloc'd [n_streams*tps]) and spans. */
bool auth_labels_load(const char *what, const char *path, size_t n_streams, size_t tokens_per_stream,
                      uint64_t first_stream, uint8_t **mask, auth_span **spans, size_t *n_spans);

/* The encoded features of a whole set kept in memory (cli/replay.c), so a
 * rule file can be replayed many times (calibrate) without encoding again. */
typedef struct auth_encoded {
    uint64_t n_tokens;
    uint64_t *offsets;   /* [n_tokens + 1] */
    uint32_t *index;
    float *value;
    float *input_norm;
    bool *nonfinite;
    float *recon;        /* NULL when the encoder did not decode */
    bool *subset;        /* NULL when every token had every latent */
    size_t nnz_cap, tok_cap;
} auth_encoded;

/* Encode every recording of `set` with `enc` into `out`. */
bool auth_encode_set(const char *what, saemon_encoder *enc, size_t d_in, const auth_set *set, auth_encoded *out);
void auth_encoded_free(auth_encoded *e);

/* Replay the encoded tokens through `mon` exactly as `saemon run` does
 * (each sequence's streams ended after their last token). *ending (may be
 * NULL) is true while the alerts of an ended stream are reported. */
void auth_replay(const auth_encoded *e, const auth_set *set, saemon_monitor *mon, saemon_alert_fn fn,
                 void *user, bool *ending);

/* The same for the streams listed in `only` (global ids, ascending) alone:
 * each replayed from its first token to its end (calibrate's rounds). */
void auth_replay_streams(const auth_encoded *e, const auth_set *set, const uint64_t *only, size_t n_only,
                         saemon_monitor *mon, saemon_alert_fn fn, void *user, bool *ending);

/* Open the dictionary and an encoder for `rules` (subset plan when exact). */
bool auth_open_encoder(const char *what, const char *sae, const saemon_ruleset *rules, size_t threads,
                       saemon_dict **dict, saemon_encoder **enc);

/* Per-rule firing statistics of one replay against the labels (cli/score.c). */
typedef struct auth_rule_score {
    char *name;
    uint64_t firings;          /* firing events */
    uint64_t firing_tokens;    /* tokens spent firing: from the firing token to the last one
                                  before resolution (to the stream's end when it ends firing) */
    uint64_t tp, fp;           /* firings inside / outside a span */
    uint64_t spans_hit;        /* spans with at least one firing inside */
    uint64_t *delays;          /* per hit span: first firing - span start */
    size_t n_delays, cap_delays;
    uint64_t *per_stream;      /* with per_stream: [n_streams][4] firings, tp, spans hit, spans */
} auth_rule_score;

typedef struct auth_scores {
    const auth_set *set;
    auth_rule_score *rule;
    size_t n_rules;
    bool failed;
} auth_scores;

/* Replay `rules` over the encoded set and score each enabled rule (names:
 * the enabled rules in file order, from auth_find_tunables). */
bool auth_score_rules(const char *what, const saemon_ruleset *rules, const saemon_dict_info *info,
                      const auth_encoded *e, const auth_set *set, char *const *names, size_t n_names,
                      bool per_stream, auth_scores *out);
/* The same, per stream, replaying only the streams in `only` (ascending;
 * the other streams' counts stay 0). */
bool auth_score_rules_streams(const char *what, const saemon_ruleset *rules, const saemon_dict_info *info,
                              const auth_encoded *e, const auth_set *set, char *const *names, size_t n_names,
                              const uint64_t *only, size_t n_only, auth_scores *out);
void auth_scores_free(auth_scores *s);
/* Percentile (0..100, nearest rank) of a score's delays; 0 when none. */
uint64_t auth_delay_percentile(const auth_rule_score *r, double p);

/* Enabled rule names in file order, parsed from the YAML text (cli/rule_text.c). */
typedef struct auth_tunable {
    char *rule;          /* rule name */
    char *path;          /* "condition.above", or as given with --tune */
    bool above;          /* the key is `above` (else `below`) */
    uint32_t feature;    /* the leaf's feature */
    size_t start, end;   /* byte range of the threshold scalar in the text */
    double value;        /* its value */
    char why[160];       /* non-empty: not tunable, and why */
    /* a rule-language probe's `above` (the threshold is a probability) */
    bool probe;
    uint32_t *probe_feature;
    double *probe_weight, probe_bias;
    size_t n_probe;
    /* an upper bound on the rule's firing events, from the leaf alone
     * (docs/authoring.md "calibrate"): AUTH_BOUND_TOKENS when the leaf must
     * hold for the condition to (it is the condition, or under `all`s
     * only); AUTH_BOUND_RUNS when it is the whole condition, counting the
     * runs of at least run_min consecutive tokens where it held */
    enum { AUTH_BOUND_NONE, AUTH_BOUND_TOKENS, AUTH_BOUND_RUNS } bound;
    uint64_t run_min;
} auth_tunable;

/* Find each rule of the text and its tunable threshold: condition.above /
 * condition.below of a feature leaf, or the PATH given for that rule in
 * tune[] ("RULE:PATH"). */
bool auth_find_tunables(const char *what, const char *file, const char *text, size_t len, char *const *tune, size_t n_tune,
                        auth_tunable **out, size_t *n_out);
void auth_tunables_free(auth_tunable *t, size_t n);
/* The text with [start, end) replaced by `repl` (malloc'd). */
char *auth_text_replace(const char *text, size_t len, size_t start, size_t end, const char *repl,
                        size_t *out_len);
/* Write `text` to `path` through a temporary file in the same directory and a rename. */
bool auth_write_atomic(const char *what, const char *path, const char *text, size_t len);

/* Float formatting that round-trips through the rule parser (%.9g). */
void auth_format_threshold(char *buf, size_t len, float v);

#endif
