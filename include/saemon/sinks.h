/* saemon — alert sinks: where alerts go once a rule fires.
 *
 * A saemon_sinks set is fed by the monitor's alert callback
 * (saemon_sinks_alert is a saemon_alert_fn). Every sink has its own bounded
 * queue and its own thread, so a slow or unreachable receiver never blocks
 * encoding: when a queue is full the alert is dropped for that sink and
 * counted. Kinds:
 *   jsonl        append one JSON line per alert to a file (fsync policy, size rotation)
 *   stdout       one JSON line per alert on standard output
 *   webhook      JSON POST (libcurl) with timeout, retries with exponential backoff,
 *                an Idempotency-Key header and an optional on-disk spool
 *   alertmanager Prometheus Alertmanager v2: POST /api/v2/alerts
 *   exec         run a command (argv, no shell) with the alert JSON on stdin
 *   otlp         OpenTelemetry logs, OTLP/HTTP JSON: POST to the /v1/logs URL,
 *                one LogRecord per alert (same delivery as webhook)
 * See docs/sinks.md. */
#ifndef SAEMON_SINKS_H
#define SAEMON_SINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/api.h"
#include "saemon/error.h"
#include "saemon/rules.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum saemon_sink_kind {
    SAEMON_SINK_JSONL = 0,
    SAEMON_SINK_STDOUT,
    SAEMON_SINK_WEBHOOK,
    SAEMON_SINK_ALERTMANAGER,
    SAEMON_SINK_EXEC,
    SAEMON_SINK_OTLP,
} saemon_sink_kind;

typedef enum saemon_fsync_policy {
    SAEMON_FSYNC_NEVER = 0, /* only when the sink is closed */
    SAEMON_FSYNC_EVERY,     /* after every alert */
    SAEMON_FSYNC_EVERY_N,   /* after every `fsync_every` alerts */
} saemon_fsync_policy;

/* Where one secret comes from (at most one of the three; all NULL = none):
 * the value itself, a file (re-read whenever its inode, size or mtime
 * changes, checked before every request, so a rotated file is picked up
 * without a restart; one trailing newline is dropped), or the name of an
 * environment variable (read once, when the sink opens). */
typedef struct saemon_secret {
    const char *value;
    const char *file;
    const char *env;
} saemon_secret;

/* A header whose value is a secret (an API key): from the YAML value, a file
 * (re-read when it changes) or an environment variable, like passwords. */
typedef struct saemon_http_header {
    const char *name;
    saemon_secret value;
} saemon_http_header;

/* Authentication and TLS of an HTTP sink, named as in Prometheus'
 * http_config (docs/sinks.md, "Authentication and TLS"). All zero = none,
 * with TLS certificate verification ON (the system CA store). */
typedef struct saemon_http_client {
    const char *const *headers;   /* NULL-terminated "Name: value" lines, sent as given */
    const char *basic_username;   /* basic_auth: username + password */
    saemon_secret basic_password;
    const char *auth_type;        /* authorization: type, default "Bearer" */
    saemon_secret auth_credentials;
    const char *ca_file;          /* tls_config */
    const char *cert_file;        /* client certificate (PEM) ... */
    const char *key_file;         /* ... and its key (PEM, unencrypted) */
    const char *server_name;      /* name the server certificate must carry (SNI + check) */
    const char *min_version;      /* "TLS10" "TLS11" "TLS12" "TLS13"; default TLS12 */
    bool insecure_skip_verify;    /* no certificate/name check: loudly warned about */
    const saemon_http_header *secret_headers; /* headers with value_file / value_env (or value) */
    size_t n_secret_headers;
} saemon_http_client;

/* One sink. Zero means "default" for every number; strings are copied. */
typedef struct saemon_sink_options {
    saemon_sink_kind kind;
    const char *name;             /* shown in counters and messages; default "<kind>:<target>" */
    size_t queue_capacity;        /* alerts waiting for this sink; default 65536 */

    /* jsonl */
    const char *path;
    saemon_fsync_policy fsync;
    size_t fsync_every;           /* for SAEMON_FSYNC_EVERY_N */
    uint64_t rotate_bytes;        /* rotate before a line would pass this size; 0 = never */
    size_t rotate_keep;           /* keep path.1 .. path.K; default 5 */

    /* webhook, alertmanager, otlp */
    const char *url;              /* alertmanager: base URL, /api/v2/alerts is appended;
                                     otlp: the full logs URL, e.g. http://collector:4318/v1/logs */
    double timeout_s;             /* per request; default 5 */
    unsigned max_retries;         /* retries after the first attempt; default 5 */
    double backoff_initial_s;     /* first retry delay, doubled each retry; default 0.5 */
    double backoff_max_s;         /* cap on the delay; default 30 */
    const char *spool_dir;        /* one file per pending alert; NULL = in memory only */
    const char *generator_url;    /* alertmanager: generatorURL of every alert, optional */
    saemon_http_client http;      /* headers, basic/bearer auth, TLS */
    double resend_interval_s;     /* alertmanager: re-send firing alerts this often, with
                                     endsAt = now + 4 x this; default 60 */
    const char *service_name;     /* otlp: resource attribute service.name; default "saemon" */
    const char *service_instance; /* otlp: service.instance.id; default the host name */

    /* exec */
    const char *const *argv;      /* NULL-terminated; argv[0] searched in PATH */
    double exec_timeout_s;        /* child killed after this; default 10 */

    /* close(): how long to keep trying to deliver what is queued; default 10 */
    double drain_timeout_s;

    /* Memory bound in bytes of the alerts waiting for this sink (its queue,
     * and an HTTP sink's pending bodies; with a spool the bodies beyond it
     * stay on disk only); default SAEMON_SINK_DEFAULT_QUEUE_BYTES. */
    size_t queue_bytes;
    /* webhook/alertmanager: part of every Idempotency-Key, so replays of the
     * same input dedupe and different runs do not; default "" */
    const char *run_id;
} saemon_sink_options;

#define SAEMON_SINK_DEFAULT_QUEUE_BYTES ((size_t)64 << 20)

/* Counters of one sink. delivered/retried/dropped/failed only grow; spooled is
 * the number of alerts currently waiting in the spool (what a restart will
 * deliver first). */
typedef struct saemon_sink_stats {
    const char *name;
    const char *kind;
    uint64_t received;  /* alerts offered to the sink */
    uint64_t delivered; /* written / accepted by the receiver / command exited 0 */
    uint64_t retried;   /* delivery attempts after a failed one */
    uint64_t spooled;   /* waiting in the on-disk spool */
    uint64_t dropped;   /* queue full, alert not taken */
    uint64_t failed;    /* refused (HTTP 4xx, exit status != 0, timeout, write error) or given up */
    uint64_t spool_errors; /* alerts whose spool write failed (kept in memory only) */
    uint64_t quarantined;  /* bad spool entries set aside as *.bad at start */
    uint64_t queued_bytes; /* memory held by the alerts in the queue now */
    char last_failure[200]; /* why the last failed alert failed ("" if none) */
} saemon_sink_stats;

typedef struct saemon_sinks saemon_sinks;

SAEMON_API saemon_status saemon_sinks_create(saemon_sinks **out, saemon_error *err);

/* Open the sink (file, spool lock, HTTP handle) and start its thread. A
 * spool left by an earlier run is delivered before any new alert. */
SAEMON_API saemon_status saemon_sinks_add(saemon_sinks *sinks, const saemon_sink_options *opt, saemon_error *err);

/* The run id of the sinks added from now on that do not set their own
 * (saemon_sink_options.run_id): part of every Idempotency-Key, so a replay
 * of the same input under the same id repeats the same keys. */
SAEMON_API saemon_status saemon_sinks_set_run_id(saemon_sinks *sinks, const char *run_id, saemon_error *err);

/* Add every sink of a YAML config file (see docs/sinks.md); errors name
 * file:line:column. */
SAEMON_API saemon_status saemon_sinks_add_config(saemon_sinks *sinks, const char *path, saemon_error *err);
SAEMON_API saemon_status saemon_sinks_add_config_string(saemon_sinks *sinks, const char *yaml, size_t len,
                                             const char *filename, saemon_error *err);

/* The alert callback (a saemon_alert_fn; `sinks` is the saemon_sinks *).
 * Copies the alert and queues it for every sink; never blocks on I/O. */
SAEMON_API void saemon_sinks_alert(const saemon_alert *alert, void *sinks);

/* Backpressure: when a queue is full, saemon_sinks_alert waits for room
 * instead of dropping. For recorded replays (`saemon run` on a file), where
 * losing an alert is worse than slowing down; a live monitor keeps the
 * default (drop and count, never stall the model's sidecar). */
SAEMON_API void saemon_sinks_set_backpressure(saemon_sinks *sinks, bool wait_for_room);

SAEMON_API size_t saemon_sinks_get_count(const saemon_sinks *sinks);
/* Alerts offered through saemon_sinks_alert. */
SAEMON_API uint64_t saemon_sinks_get_received(const saemon_sinks *sinks);
/* Counters of sink i (0-based, in the order added); safe while running. */
SAEMON_API void saemon_sinks_get_stats(const saemon_sinks *sinks, size_t i, saemon_sink_stats *out);

/* Deliver what is queued (each sink up to its drain_timeout_s), stop the
 * threads, flush/fsync/close. Returns the first sink failure (write error,
 * alerts lost) with a message naming the sink; counters stay readable until
 * saemon_sinks_destroy. Idempotent. */
SAEMON_API saemon_status saemon_sinks_stop(saemon_sinks *sinks, saemon_error *err);
/* Stops if needed, then frees. */
SAEMON_API void saemon_sinks_destroy(saemon_sinks *sinks);

SAEMON_API const char *saemon_sink_kind_name(saemon_sink_kind kind);

/* Validate a sinks config file without opening anything or sending anything:
 * the YAML (file:line:column), secret files readable (and not readable by
 * group/others: a warning), certificates and keys parse, are within their
 * validity period, a client key matches its certificate. Problems that do
 * not stop the file from working are appended to `warnings` (one per line,
 * may be NULL); *n_sinks is the number of sinks. No secret value is ever
 * part of a message. */
SAEMON_API saemon_status saemon_sinks_check_config(const char *path, size_t *n_sinks, char *warnings,
                                                   size_t warnings_len, saemon_error *err);

#ifdef __cplusplus
}
#endif
#endif
