/* The inside of a saemon_ruleset: rules as parsed and validated, with the
 * source position of every node a later check (bind) may need to blame. */
#ifndef SAEMON_MONITORS_RULES_INTERNAL_H
#define SAEMON_MONITORS_RULES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/yaml_walk.h"
#include "saemon/rules.h"

#define RULES_MAX_DEPTH 32            /* nesting of any/all/at_least (macros included) */
/* Condition nodes of one rule or macro with every macro reference expanded:
 * evaluation, alert features and canonical hashing all walk the expanded
 * tree, so a macro that uses the previous one twice doubles it per level. */
#define RULES_MAX_EXPANDED 65536
#define RULES_MAX_FILE_BYTES (16u << 20)
#define RULES_MAX_WINDOW 65536        /* tokens in a window / mean_over */
#define RULES_MAX_LABELS_BYTES (256u << 20)
#define RULES_MAX_CAPTURE 1024        /* capture.count */
#define RULES_MAX_CAPTURE_WINDOW 4096 /* capture.window, tokens */

typedef enum rules_cond_kind {
    RULES_COND_LEAF = 0, /* one feature (or its running mean) against thresholds */
    RULES_COND_ANY,
    RULES_COND_ALL,
    RULES_COND_AT_LEAST, /* >= count children hold */
    RULES_COND_PROBE,    /* sigmoid(w·z + b) > above */
    RULES_COND_HEALTH,   /* a property of the raw activation / reconstruction */
} rules_cond_kind;

typedef enum rules_health_kind {
    RULES_HEALTH_RECON_ABOVE = 0, /* recon_error > lo */
    RULES_HEALTH_L0_OUTSIDE,      /* nnz < lo or nnz > hi */
    RULES_HEALTH_NONFINITE,       /* input_nonfinite */
    RULES_HEALTH_NORM_OUTSIDE,    /* input_norm < lo or > hi (NaN counts as outside) */
} rules_health_kind;

typedef struct rules_cond {
    rules_cond_kind kind;
    /* leaf: feature value v; holds when every given bound holds:
     * v > above, v < below, lo <= v <= hi (between) */
    uint32_t feature;
    bool has_above, has_below, has_between;
    float above, below, lo, hi;
    walk_pos feature_mark;
    int32_t tracker;       /* >= 0: compare the running mean (ruleset.trackers[tracker]) */
    /* any / all / at_least */
    struct rules_cond *children;
    size_t n_children;
    size_t count;          /* at_least */
    /* probe */
    uint32_t *probe_features;
    float *probe_weights;
    walk_pos *probe_marks;
    size_t n_weights;
    float bias;            /* also: probe threshold in `above` */
    /* health */
    rules_health_kind health;
} rules_cond;

/* A running mean of one feature over the last `tokens` tokens of a stream,
 * shared by every leaf that asks for the same (feature, tokens). */
typedef struct rules_tracker {
    uint32_t feature;
    uint32_t tokens;
} rules_tracker;

/* Annotation templates: literal text and {{ .name }} references. */
typedef enum rules_tpl_kind {
    TPL_TEXT = 0,
    TPL_RULE,
    TPL_TOKEN,
    TPL_STREAM,
    TPL_VALUE,
    TPL_FEATURE_VALUE,
    TPL_FEATURE_INDEX,
    TPL_FEATURE_LABEL,
    TPL_LABEL,             /* text = the label's value (resolved at parse time) */
} rules_tpl_kind;

typedef struct rules_tpl_part {
    rules_tpl_kind kind;
    const char *text;
    size_t len;
} rules_tpl_part;

typedef struct rules_template {
    rules_tpl_part *parts;
    size_t n_parts;
    size_t max_len;        /* longest rendering, NUL excluded */
    bool is_plain;         /* no references: the annotation is used as is */
} rules_template;

typedef struct rules_rule {
    const char *name;
    const char *description; /* "" when absent */
    const char *severity;    /* canonical lower-case Falco priority */
    const char *group;       /* "" for the flat rules: list */
    bool enabled;
    bool block;              /* action: block — ask the producer to stop the stream */
    uint64_t interval;       /* evaluate on tokens whose position % interval == 0 */
    uint64_t every;          /* health sampling: the full encode on one token in N; 0: not declared */
    bool needs_full;         /* reads L0 / reconstruction, or declares every: skip subset tokens */
    uint32_t capture_count, capture_window; /* capture: {features: top, ...}; 0: none */
    uint64_t for_tokens;     /* >= 1 */
    uint64_t cooldown;
    uint64_t keep_firing_for;
    uint32_t window_count, window_tokens; /* window_tokens 0: no window */
    rules_cond *cond;
    size_t max_features;     /* most alert features the condition can report */
    saemon_kv *labels;
    size_t n_labels;
    saemon_kv *annotations;
    rules_template *templates; /* one per annotation */
    size_t n_annotations;
    size_t annotations_len;  /* bytes to render every annotation (NULs included) */
    walk_pos mark;         /* the rule's mapping */
    walk_pos name_mark;
    /* Canonical form of everything that defines the rule (rules_canon.h):
     * two rules with equal bytes behave identically, so a reload keeps their
     * state. Source positions and comments are not part of it. */
    const unsigned char *canon;
    size_t canon_len;
} rules_rule;

typedef struct rules_pin {
    const char *name;        /* NULL: not pinned */
    walk_pos name_mark;
    bool has_d_sae;
    uint64_t d_sae;
    walk_pos d_sae_mark;
    const char *sha256;      /* NULL: not pinned; 64 hex, lower-case */
    walk_pos sha256_mark;
} rules_pin;

typedef struct rules_label {
    uint32_t index;
    const char *text;
} rules_label;

typedef struct rules_macro {
    const char *name;
    rules_cond *cond;
    int depth;               /* nesting depth the macro body uses */
    size_t expanded;         /* condition nodes of the body, macros expanded */
} rules_macro;

typedef struct rules_list {
    const char *name;
    uint32_t *features;
    walk_pos *marks;
    size_t n;
} rules_list;

struct saemon_ruleset {
    arena mem;
    const char *filename;
    uint64_t version;
    rules_pin pin;
    rules_rule *rules;
    size_t n_rules, n_enabled;
    size_t max_features;     /* most alert features of one enabled rule */
    size_t max_annotations, max_annotations_len;
    bool needs_reconstruction;
    const char *labels_path; /* NULL when no feature labels */
    rules_label *labels;     /* ascending index */
    size_t n_labels, max_label_len;
    rules_macro *macros;
    size_t n_macros;
    rules_list *lists;
    size_t n_lists;
    rules_tracker *trackers; /* malloc'd (grows while parsing) */
    size_t n_trackers, cap_trackers;
};

/* Explanation of feature `index`, or NULL. */
const char *rules_label_of(const saemon_ruleset *rs, uint32_t index);

#endif
