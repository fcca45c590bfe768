/* Typed, strict access to a libyaml document for the YAML parsers (rules,
 * rule tests, sink configs): every failure becomes "FILE:LINE:COLUMN: what is wrong; expected what" at the
 * offending node. Plain scalars are typed with the YAML 1.2 core schema;
 * quoted scalars are always strings. */
#ifndef SAEMON_BASE_YAML_WALK_H
#define SAEMON_BASE_YAML_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "base/arena.h"
#include "saemon/error.h"

/* Limits every walked file shares: they bound alias expansion ("billion
 * laughs") and the cost of the duplicate-key check. */
#define WALK_MAX_NODES 200000     /* YAML nodes visited */
#define WALK_MAX_MAP_ENTRIES 1024 /* keys in any one mapping */
#define WALK_MAX_DEPTH 256        /* nested sequences/mappings (checked on events) */

/* A source position, 1-based, for messages ("file:line:column"). */
typedef struct walk_pos {
    size_t line, column;
} walk_pos;

typedef struct walk {
    const char *file;
    yaml_document_t *doc;
    arena *mem;
    saemon_error *err;
    size_t nodes_visited; /* against WALK_MAX_NODES */
} walk;

typedef enum scalar_type {
    SCALAR_STRING = 0, /* quoted, or plain text that is no other type */
    SCALAR_NULL,
    SCALAR_BOOL,
    SCALAR_INT,
    SCALAR_FLOAT,      /* includes .inf / .nan */
} scalar_type;

walk_pos walk_mark(const yaml_node_t *node);

/* Record an error at node (code SAEMON_ERR_RULES unless given) and return it. */
saemon_status walk_fail(walk *w, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
saemon_status walk_fail_code(walk *w, saemon_status code, const yaml_node_t *at, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

/* Count one visited node; fails once the file expands past WALK_MAX_NODES. */
saemon_status walk_visit(walk *w, const yaml_node_t *node);

scalar_type walk_scalar_type(const yaml_node_t *node);
/* "a mapping", "a sequence", "the string \"abc\"", "the number -1", "null", ... */
const char *walk_describe(const yaml_node_t *node, char *buf, size_t len);

/* The i-th item of a sequence / pair of a mapping. */
size_t walk_seq_len(const yaml_node_t *node);
yaml_node_t *walk_seq_item(walk *w, const yaml_node_t *node, size_t i);
size_t walk_map_len(const yaml_node_t *node);
void walk_map_pair(walk *w, const yaml_node_t *node, size_t i, yaml_node_t **key, yaml_node_t **value);

/* Check `node` is a mapping whose keys are unique scalar strings from
 * `allowed` (NULL-terminated). Reserved future keys fail as "not supported
 * yet" (SAEMON_ERR_UNSUPPORTED). `what` names the mapping in messages. */
saemon_status walk_check_map(walk *w, const yaml_node_t *node, const char *what,
                             const char *const *allowed);
/* Value of key in a checked mapping, or NULL; key_node optional. */
yaml_node_t *walk_get(walk *w, const yaml_node_t *map, const char *key, yaml_node_t **key_node);

/* Typed getters; each fails at the node with a message naming `what`. */
saemon_status walk_string(walk *w, const yaml_node_t *node, const char *what, const char **out);
saemon_status walk_bool(walk *w, const yaml_node_t *node, const char *what, bool *out);
/* The non-empty string under `key` of a checked mapping, or *out untouched
 * when the key is absent; messages name it "'key'" (prefixed by `section`
 * when not NULL: "tls_config 'ca_file'"). */
saemon_status walk_get_text(walk *w, const yaml_node_t *map, const char *section, const char *key,
                            const char **out);
saemon_status walk_uint(walk *w, const yaml_node_t *node, const char *what, uint64_t max,
                        uint64_t *out);
/* The integer in [0, max] under `key` of a checked mapping, or *out
 * untouched when the key is absent; messages name it "'key'". */
saemon_status walk_get_uint(walk *w, const yaml_node_t *map, const char *key, uint64_t max, uint64_t *out);
/* A finite number that fits a float (integers accepted). */
saemon_status walk_float(walk *w, const yaml_node_t *node, const char *what, float *out);
/* Any number a float can hold, .inf, -.inf and .nan included (test inputs). */
saemon_status walk_float_any(walk *w, const yaml_node_t *node, const char *what, float *out);

/* Refuse a document whose collections nest deeper than WALK_MAX_DEPTH,
 * from the event stream, before yaml_parser_load builds it: libyaml's
 * scanner costs O(depth) per token inside flow collections, so 100k levels of
 * '[' take quadratic time to load. Stops at the first level too deep (or at
 * a syntax error, which it leaves to the loader to report). */
saemon_status walk_check_depth(const char *file, const char *text, size_t len, saemon_status code,
                               saemon_error *err);

/* The error of a failed yaml_parser_load as "FILE:LINE:COL: YAML syntax error: ...". */
saemon_status walk_syntax_error(const yaml_parser_t *p, const char *file, const char *text, size_t len,
                                saemon_error *err);

#endif
