/* `saemon serve`: the sidecar daemon. One consumer thread per dictionary
 * reads that dictionary's shared-memory rings, encodes each frame and feeds
 * the tokens to one monitor per ring (streams of different producers never
 * mix); alerts go to the shared sinks and raise the stream's verdict in the
 * ring. The main thread handles signals, rule reloads (parsed there, never on
 * a consumer thread), producer health logging and systemd notification; the
 * metrics endpoint runs on libmicrohttpd's thread and only reads atomics and
 * snapshots. */
#ifndef SAEMON_CLI_SERVE_H
#define SAEMON_CLI_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"
#include "proto/request_map.h"
#include "serve/prom_text.h"
#include "serve/serve_config.h"
#include "serve/serve_history.h"
#include "saemon/ring.h"
#include "saemon/saemon.h"

/* Upper bounds (seconds) of the encode-latency histogram buckets. */
#define SERVE_HIST_BUCKETS 19
extern const double serve_hist_le[SERVE_HIST_BUCKETS];

typedef struct serve_hist {
    _Atomic uint64_t bucket[SERVE_HIST_BUCKETS]; /* not cumulative; +Inf = count */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} serve_hist;

void serve_hist_observe(serve_hist *h, double seconds);

/* Alerts counted by (rule, severity, status); rules come and go with reloads,
 * so this is a small list under a mutex (alerts are rare next to tokens). */
typedef struct serve_alert_count {
    char *rule, *severity, *status;
    uint64_t n;
} serve_alert_count;

typedef struct serve_dict serve_dict;

typedef struct serve_ring {
    const serve_ring_config *cfg;
    serve_dict *dict;
    saemon_ring *ring;
    saemon_monitor *monitor;
    serve_history *history;         /* raw rows for capture on demand, or NULL */
    _Atomic uint64_t tokens_encoded;
    _Atomic uint64_t gaps;          /* frames that arrived after lost tokens of their stream */
    _Atomic uint64_t streams_ended;
    _Atomic uint64_t verdicts[5];   /* raised to each saemon_verdict level */
    _Atomic uint64_t streams_open;  /* the monitor's stream count, after each batch */
    _Atomic uint64_t unmonitored;   /* sequences refused at max_streams (saemon_monitor_get_unmonitored) */
    _Atomic uint64_t unmonitored_ns; /* CLOCK_MONOTONIC of the last increase */
    _Atomic uint64_t streams_idle_ended; /* ended by stream_idle_timeout */
    request_map requests;           /* consumer thread: stream -> request id of its current sequence */
    _Atomic uint64_t request_ids;   /* request id frames received */
    _Atomic uint64_t request_ids_untracked; /* not kept: 65,536 tagged streams open already */
    /* main thread only: what was last logged about the producer */
    saemon_ring_producer_state logged_state;
    int32_t logged_pid;
    bool logged_down;
    uint64_t logged_dropped, logged_rejected, logged_gaps, logged_faults, logged_accepted;
} serve_ring;

struct serve_gather;

struct serve_dict {
    const serve_dict_config *cfg;
    const char *label; /* metrics/log name */
    struct serve *srv;
    saemon_dict *dict;
    const saemon_dict_info *info;
    saemon_encoder *encoder;
    saemon_ruleset *rules;                 /* in use by the consumer thread */
    _Atomic(saemon_ruleset *) pending;     /* loaded by the main thread, swapped in between frames */
    _Atomic(saemon_ruleset *) retired;     /* replaced, for the main thread to free */
    /* The encoder's latent set follows the rules (cli_plan.c): the main thread
     * packs the new set before handing over the rules, the consumer says
     * whether its monitors switched (1) or not (2), the main thread commits. */
    cli_plan plan;
    _Atomic int reload_result;
    bool reload_in_flight;                 /* main thread: a reload awaits its result */
    const char *reload_deferred;           /* main thread: a reload asked meanwhile */
    cli_capture capture;                   /* every-latent encoder for `capture:` rules */
    float *capture_rows;                   /* [window][d_in] scratch */
    serve_ring rings[SERVE_MAX_RINGS];
    size_t n_rings;
    pthread_t thread;
    bool thread_started;
    _Atomic bool failed;                   /* the consumer thread stopped on an error */
    char failure[1600];
    serve_hist encode_seconds;
    _Atomic uint64_t reloads_ok, reloads_failed;
    struct serve_gather *gather;           /* the consumer's batch of gathered frames */
    _Atomic uint64_t idle_cpu_ns;          /* consumer thread CPU spent waiting for frames */
    _Atomic uint64_t idle_waits;
    clockid_t cpu_clock;                   /* the consumer thread's CPU clock, valid while */
    _Atomic bool cpu_clock_ok;             /* ... this is set (the thread runs) */
    uint64_t idle_check_ns;                /* consumer thread: next stream_idle_timeout check */
    pthread_mutex_t alerts_mu;
    serve_alert_count *alerts;
    size_t n_alerts, cap_alerts;
};

typedef struct serve {
    serve_config cfg;
    serve_dict dicts[SERVE_MAX_DICTS];
    size_t n_dicts;
    saemon_sinks *sinks;
    FILE *features;             /* --features: one JSON line per token, or NULL */
    pthread_mutex_t features_mu;
    _Atomic bool stopping;      /* consumer threads drain and exit */
    double started;             /* monotonic seconds */
} serve;

/* Consumer thread body (serve_consumer.c); the gather buffer is sized from
 * the encoder's batch and allocated before the thread starts. */
void *serve_consumer_main(void *dict);
bool serve_gather_init(serve_dict *d);
/* saemon_capture_fn of a ring (user = serve_ring *): the stream's window from
 * its history, encoded with every latent. */
size_t serve_capture_fn(uint64_t stream, uint64_t token, uint32_t window, saemon_alert_feature *out, size_t cap,
                        void *user);
void serve_gather_free(serve_dict *d);

/* Metrics (serve_metrics.c). */
void serve_metrics_render(void *srv, prom_text *out);
bool serve_healthy(void *srv, char *why, size_t len);
/* Attached (not cleanly detached) and gone or silent past heartbeat_timeout. */
bool serve_producer_down(const struct serve *srv, const saemon_ring_stats *st);
void serve_count_alert(serve_dict *d, const saemon_alert *a);

/* "ts=... level=info msg=\"...\"" lines on stderr (logfmt). */
void serve_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Severity word of a rule -> verdict level. */
saemon_verdict serve_verdict_of(const saemon_alert *a);

#endif
