/* The inside of a saemon_ruleset: rules as parsed and validated, with the
 * source position of every node a later check (bind) may need to blame. */
#ifndef SAEMON_MONITORS_RULES_INTERNAL_H
#define SAEMON_MONITORS_RULES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitors/arena.h"
#include "saemon/rules.h"

#define RULES_MAX_DEPTH 32            /* nesting of any/all */
#define RULES_MAX_NODES 200000        /* YAML nodes visited (bounds alias expansion) */
#define RULES_MAX_MAP_ENTRIES 1024    /* keys in any one mapping */
#define RULES_MAX_FILE_BYTES (16u << 20)

typedef struct rules_mark {
    size_t line, column; /* 1-based */
} rules_mark;

typedef enum rules_cond_kind {
    RULES_COND_LEAF = 0,
    RULES_COND_ANY,
    RULES_COND_ALL,
} rules_cond_kind;

typedef struct rules_cond {
    rules_cond_kind kind;
    /* leaf */
    uint32_t feature;
    bool has_above, has_below;
    float above, below;    /* value > above, value < below */
    rules_mark feature_mark;
    /* any / all */
    struct rules_cond *children;
    size_t n_children;
} rules_cond;

typedef struct rules_rule {
    const char *name;
    const char *description; /* "" when absent */
    const char *severity;    /* canonical lower-case Falco priority */
    bool enabled;
    uint64_t for_tokens;     /* >= 1 */
    uint64_t cooldown;
    rules_cond *cond;
    size_t n_leaves;
    saemon_kv *labels;
    size_t n_labels;
    saemon_kv *annotations;
    size_t n_annotations;
    rules_mark mark;         /* the rule's mapping */
    rules_mark name_mark;
} rules_rule;

typedef struct rules_pin {
    const char *name;        /* NULL: not pinned */
    rules_mark name_mark;
    bool has_d_sae;
    uint64_t d_sae;
    rules_mark d_sae_mark;
    const char *sha256;      /* NULL: not pinned; 64 hex, lower-case */
    rules_mark sha256_mark;
} rules_pin;

struct saemon_ruleset {
    arena mem;
    const char *filename;
    uint64_t version;
    rules_pin pin;
    rules_rule *rules;
    size_t n_rules, n_enabled;
    size_t max_leaves;       /* most leaves in one enabled rule */
};

#endif
