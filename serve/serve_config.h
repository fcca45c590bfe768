/* What `saemon serve` runs: dictionaries, each tied to a hook point, its rule
 * file and the shared-memory rings its producers write to; the sinks; the
 * metrics endpoint. Read from a YAML file (`--config`, docs/serve.md) or built
 * from command-line flags for the one-dictionary case. */
#ifndef SAEMON_CLI_SERVE_CONFIG_H
#define SAEMON_CLI_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/error.h"

#define SERVE_MAX_DICTS 16
#define SERVE_MAX_RINGS 16 /* per dictionary */

typedef struct serve_ring_config {
    char *name;        /* shared-memory name, without the leading '/' */
    uint32_t slots;    /* frames the ring holds; a power of two */
    uint32_t max_rows; /* rows (tokens) per frame */
    uint32_t verdict_entries; /* per-stream verdict table, a power of two (docs/serve.md) */
} serve_ring_config;

typedef struct serve_dict_config {
    char *name;           /* label in metrics and logs; default: the dictionary's own name */
    char *sae;            /* dictionary directory or file */
    char *hook;           /* hook name producers must announce; NULL: the dictionary's hook_name, else any */
    char *rules;          /* rule file */
    char *feature_labels; /* optional Neuronpedia-style label JSON */
    size_t threads;       /* encoder threads (pinned cores); 0 = the consumer thread only */
    size_t batch;         /* most rows per encode call */
    serve_ring_config rings[SERVE_MAX_RINGS];
    size_t n_rings;
} serve_dict_config;

typedef struct serve_config {
    serve_dict_config dicts[SERVE_MAX_DICTS];
    size_t n_dicts;
    char *metrics;        /* "HOST:PORT" or NULL: no endpoint */
    char *web_config;     /* exporter-toolkit web config (TLS, basic auth) for it, or NULL */
    char *sinks;          /* sinks YAML, or NULL: the sink flags / stdout */
    char *cpus, *exclude_cpus;
    char *isa;
    char *encode;         /* auto | rules | all (docs/serve.md); NULL: auto */
    bool resolved;        /* also report resolved alerts */
    double heartbeat_timeout_s; /* a producer silent this long is reported down */
    double stream_idle_timeout_s; /* a ring without frames this long ends its open streams; 0 = never */
    uint64_t max_streams;       /* streams with rule state per ring; beyond, new ones go unmonitored */
    char *alerts;         /* JSONL file for alerts (flag mode convenience) */
    char *features;       /* optional: every token's features as JSON lines (capture/debug) */
    char *replica;        /* this daemon's name in a fleet: alert field and label; NULL: none */
    char *ring_group;     /* group owning the rings (with ring_mode 0660); NULL: the daemon's */
    uint32_t ring_mode;   /* 0600 (default) or 0660 */
} serve_config;

/* Defaults for a ring / dictionary entry. */
#define SERVE_DEFAULT_SLOTS 256
#define SERVE_DEFAULT_MAX_ROWS 64
#define SERVE_DEFAULT_VERDICT_ENTRIES 4096
#define SERVE_DEFAULT_BATCH 64
#define SERVE_DEFAULT_HEARTBEAT_S 10.0
#define SERVE_CAPTURE_BYTES ((size_t)64 << 20) /* raw rows kept for capture, per ring */
#define SERVE_DEFAULT_STREAM_IDLE_S 300.0
#define SERVE_DEFAULT_MAX_STREAMS 65536

/* Parse a config file; errors are "file:line:column: ...". Relative paths in
 * the file are taken relative to the file's directory. */
saemon_status serve_config_load(const char *path, serve_config *out, saemon_error *err);
/* Check what a config (from a file or flags) asks for is coherent. */
saemon_status serve_config_validate(const serve_config *c, saemon_error *err);
void serve_config_free(serve_config *c);

#endif
