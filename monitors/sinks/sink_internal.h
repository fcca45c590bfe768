/* The inside of the sink layer: a refcounted alert copy shared by all sinks,
 * and the per-sink object every kind (jsonl, http, exec) implements. */
#ifndef SAEMON_MONITORS_SINKS_SINK_INTERNAL_H
#define SAEMON_MONITORS_SINKS_SINK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/clock.h"
#include "saemon/sinks.h"

/* A deep copy of one saemon_alert in a single allocation (the monitor's
 * pointers are only valid during the callback). */
typedef struct sink_alert {
    atomic_int refs;
    size_t size;        /* bytes of the whole block (queue byte bound) */
    saemon_alert alert; /* every pointer points into this block */
} sink_alert;

sink_alert *sink_alert_copy(const saemon_alert *a); /* refs = 1; NULL on OOM */
void sink_alert_release(sink_alert *a);

/* SHA-256 (hex) of what identifies an alert event: run id, dictionary, rule,
 * stream, token, status. The same event always gets the same key, also when
 * the same input is replayed (the run id tells runs apart when wanted). */
void sink_alert_key(const saemon_alert *a, const char *run_id, char out[65]);

typedef struct sink sink;

typedef struct sink_ops {
    /* Handle one alert (on the sink thread). */
    void (*handle)(sink *s, const saemon_alert *a);
    /* Periodic work (retries); returns seconds until it wants to run again,
     * or a negative number for "only when an alert arrives". May be NULL. */
    double (*poll)(sink *s, bool closing);
    /* Nothing more will come: finish (flush, fsync, give up on what is left
     * after the drain deadline). Returns false after setting s->error. */
    bool (*finish)(sink *s, double deadline);
    void (*destroy)(sink *s);
    /* close() stops handling queued alerts at the drain deadline (slow
     * sinks: exec); the rest count as failed. Files are always written out. */
    bool drain_bounded;
} sink_ops;

struct sink {
    const sink_ops *ops;
    void *impl;
    char *name;
    saemon_sink_kind kind;
    double drain_timeout_s;

    /* queue (ring of sink_alert *) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t space;        /* signalled when an alert leaves a full queue */
    sink_alert **ring;
    size_t cap, head, len;
    bool closing, thread_started;
    pthread_t thread;

    _Atomic uint64_t received, delivered, retried, spooled, dropped, failed;
    _Atomic uint64_t spool_errors, quarantined;
    _Atomic uint64_t enqueued;    /* alerts pushed onto the queue (taken or not yet) */
    _Atomic size_t queued_bytes;  /* of the alerts in the ring */
    size_t max_queued_bytes;
    bool failed_hard;            /* error holds why the run must fail */
    uint64_t drop_logged_ns;     /* last "queue full" log line (under mu) */
    bool stalled;                /* a local sink made no room within its wait: drop without
                                  * waiting until it takes an alert again (under mu) */
    char last_failure[200];      /* why the last alert failed for good (under mu) */
    _Atomic double drain_deadline; /* set by close(): handle() must be done by then */
    saemon_error error;
};

/* One kind of sink (sink_jsonl.c, sink_http.c, sink_exec.c): sinks.c picks
 * the kind's descriptor by saemon_sink_kind and calls open, which fills
 * s->ops and s->impl or fails with err. Calls go one way: sinks.c -> kind
 * -> the helpers below (sink_kind.c, sink_alert.c, spool.c). */
typedef struct sink_kind {
    saemon_status (*open)(sink *s, const saemon_sink_options *o, saemon_error *err);
} sink_kind;

extern const sink_kind sink_kind_jsonl; /* jsonl and stdout */
extern const sink_kind sink_kind_http;  /* webhook, alertmanager and otlp */
extern const sink_kind sink_kind_exec;

/* Count one alert failed for good and say why (kept for the stats). */
void sink_failed_one(sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the first hard failure of a sink (it ends the run with an error). */
void sink_fail(sink *s, saemon_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Alertmanager v2 postableAlerts body ([one alert]); free() it. NULL on OOM.
 * A firing alert gets endsAt = ends_at when ends_at > 0 (re-sent before then
 * while it holds); a resolved one endsAt = its timestamp. */
char *sink_alertmanager_body(const saemon_alert *a, const char *generator_url, double ends_at);

/* OTLP/HTTP JSON logs (sink_otlp.c): the resource (service.name,
 * service.instance.id) fixed when the sink opens, then one export request
 * body per alert (free() it; NULL on OOM). */
typedef struct sink_otlp sink_otlp;
sink_otlp *sink_otlp_open(const saemon_sink_options *o); /* NULL on OOM */
void sink_otlp_free(sink_otlp *x);
char *sink_otlp_body(const sink_otlp *x, const saemon_alert *a);
/* SeverityNumber (1..24) of a rule severity; 0 when it is not one we know. */
int sink_otlp_severity_number(const char *severity);

#endif
