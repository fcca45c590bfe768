/* saemon_sinks: per-sink bounded queue + one consumer thread per sink. The
 * producer (the monitor callback) only copies the alert and pushes a pointer;
 * when a queue is full the alert is dropped for that sink and counted. */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/error.h"
#include "monitors/sinks/http_auth.h"
#include "monitors/sinks/sink_internal.h"

#define DEFAULT_QUEUE 65536
#define MAX_QUEUE (1u << 24)

struct saemon_sinks {
    sink **v;
    size_t n;
    _Atomic uint64_t received;
    bool closed;
    bool backpressure; /* wait for room instead of dropping (recorded replays) */
    char *run_id;      /* for sinks added without their own (Idempotency-Keys) */
    saemon_status close_status;
    saemon_error close_error;
};

/* Which implementation serves each kind: the one place sinks.c knows of
 * the kinds; they know nothing of sinks.c. */
static const sink_kind *kind_of(saemon_sink_kind kind)
{
    switch (kind) {
    case SAEMON_SINK_JSONL:
    case SAEMON_SINK_STDOUT: return &sink_kind_jsonl;
    case SAEMON_SINK_WEBHOOK:
    case SAEMON_SINK_ALERTMANAGER:
    case SAEMON_SINK_OTLP: return &sink_kind_http;
    case SAEMON_SINK_EXEC: break;
    }
    return &sink_kind_exec;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *saemon_sink_kind_name(saemon_sink_kind kind)
{
    switch (kind) {
    case SAEMON_SINK_JSONL: return "jsonl";
    case SAEMON_SINK_STDOUT: return "stdout";
    case SAEMON_SINK_WEBHOOK: return "webhook";
    case SAEMON_SINK_ALERTMANAGER: return "alertmanager";
    case SAEMON_SINK_EXEC: return "exec";
    case SAEMON_SINK_OTLP: return "otlp";
    }
    return "?";
}

saemon_status saemon_sinks_create(saemon_sinks **out, saemon_error *err)
{
    if (!out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_create: NULL argument");
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK)
        return saemon_error_set(err, SAEMON_ERR_IO, "libcurl initialisation failed: %s",
                                curl_easy_strerror(curl_init_result));
    *out = calloc(1, sizeof **out);
    if (!*out)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sinks: out of memory");
    return SAEMON_OK;
}

static struct timespec abs_time_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (seconds > 3600)
        seconds = 3600;
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *sink_thread(void *arg)
{
    sink *s = arg;
    double deadline = INFINITY;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->closing && !isfinite(deadline))
            deadline = atomic_load(&s->drain_deadline);
        /* Take what is queued (a bounded batch, so retries still get their
         * turn under constant load), then let the sink do its periodic work:
         * an HTTP sink spools every alert it takes before it delivers. */
        for (int batch = 0; s->len && batch < 256; batch++) {
            /* close() may come in the middle of a batch: the drain deadline
             * starts then, not after up to 256 more slow alerts. */
            if (s->closing && !isfinite(deadline))
                deadline = atomic_load(&s->drain_deadline);
            sink_alert *a = s->ring[s->head];
            s->head = (s->head + 1) % s->cap;
            s->len--;
            atomic_fetch_sub(&s->queued_bytes, a->size);
            s->stalled = false;
            pthread_cond_broadcast(&s->space); /* room by count or by bytes */
            pthread_mutex_unlock(&s->mu);
            if (s->ops->drain_bounded && clock_now_s() >= deadline) {
                sink_failed_one(s, "left unhandled at the drain timeout (%.1f s)", s->drain_timeout_s);
                sink_fail(s, SAEMON_ERR_IO, "sink %s: alerts left unhandled at the drain timeout (%.1f s)",
                          s->name, s->drain_timeout_s);
            } else {
                s->ops->handle(s, &a->alert);
            }
            sink_alert_release(a);
            pthread_mutex_lock(&s->mu);
        }
        bool closing = s->closing;
        if (closing && !isfinite(deadline))
            deadline = atomic_load(&s->drain_deadline);
        pthread_mutex_unlock(&s->mu);
        double wait = s->ops->poll ? s->ops->poll(s, closing) : -1;
        pthread_mutex_lock(&s->mu);
        /* Anything that changed while poll() ran (a new alert, close()) was
         * signalled when nobody waited: look again instead of sleeping. */
        if (s->len || (s->closing && !closing) || wait == 0)
            continue;
        if (closing && (wait < 0 || clock_now_s() >= deadline))
            break;
        if (closing && clock_now_s() + wait > deadline)
            wait = deadline - clock_now_s();
        if (wait < 0) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else {
            struct timespec ts = abs_time_in(wait);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    s->ops->finish(s, deadline);
    return NULL;
}

static void sink_destroy(sink *s)
{
    if (!s)
        return;
    while (s->len) {
        sink_alert_release(s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->len--;
    }
    if (s->ops && s->ops->destroy)
        s->ops->destroy(s);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->space);
    pthread_mutex_destroy(&s->mu);
    free(s->ring);
    free(s->name);
    free(s);
}

static char *default_name(const saemon_sink_options *o)
{
    const char *target = "";
    char *origin = NULL;
    switch (o->kind) {
    case SAEMON_SINK_JSONL: target = o->path; break;
    case SAEMON_SINK_WEBHOOK:
    case SAEMON_SINK_ALERTMANAGER:
    case SAEMON_SINK_OTLP:
        /* never put a secret in a name (it reaches /metrics and logs): no
         * user info, no path (Slack-style tokens), no query (?token=) */
        if (o->url && !(target = origin = http_url_origin(o->url)))
            return NULL;
        break;
    case SAEMON_SINK_EXEC: target = o->argv ? o->argv[0] : NULL; break;
    case SAEMON_SINK_STDOUT: return strdup("stdout");
    }
    char *name = NULL;
    if (asprintf(&name, "%s:%s", saemon_sink_kind_name(o->kind), target ? target : "?") < 0)
        name = NULL;
    free(origin);
    return name;
}

saemon_status saemon_sinks_add(saemon_sinks *sinks, const saemon_sink_options *o, saemon_error *err)
{
    if (!sinks || !o)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_add: NULL argument");
    if (sinks->closed)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_add: the sinks are closed");
    if ((unsigned)o->kind > SAEMON_SINK_OTLP)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_add: unknown sink kind %d", (int)o->kind);
    if (o->queue_capacity > MAX_QUEUE)
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink queue capacity %zu is above the limit %u",
                                o->queue_capacity, MAX_QUEUE);
    if (!(o->drain_timeout_s >= 0) || o->drain_timeout_s > 86400)
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink drain timeout must be within 0..86400 s");
    sink **grown = realloc(sinks->v, (sinks->n + 1) * sizeof *grown);
    if (!grown)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sinks: out of memory");
    sinks->v = grown;
    sink *s = calloc(1, sizeof *s);
    if (!s)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sinks: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_cond_init(&s->space, &ca);
    pthread_condattr_destroy(&ca);
    s->kind = o->kind;
    s->cap = o->queue_capacity ? o->queue_capacity : DEFAULT_QUEUE;
    s->max_queued_bytes = o->queue_bytes ? o->queue_bytes : SAEMON_SINK_DEFAULT_QUEUE_BYTES;
    s->drain_timeout_s = o->drain_timeout_s > 0 ? o->drain_timeout_s : 10.0;
    atomic_init(&s->drain_deadline, INFINITY);
    s->name = o->name ? strdup(o->name) : default_name(o);
    if (s->name && !o->name) {
        /* Default names are coarse (no URL path): two sinks on one host get
         * "#2", "#3" so their /metrics series stay distinct. */
        size_t same = 0;
        for (size_t i = 0; i < sinks->n; i++)
            same += strncmp(sinks->v[i]->name, s->name, strlen(s->name)) == 0
                    && (sinks->v[i]->name[strlen(s->name)] == 0 || sinks->v[i]->name[strlen(s->name)] == '#');
        char *numbered = NULL;
        if (same && asprintf(&numbered, "%s#%zu", s->name, same + 1) > 0) {
            free(s->name);
            s->name = numbered;
        }
    }
    s->ring = calloc(s->cap, sizeof *s->ring);
    if (!s->name || !s->ring) {
        sink_destroy(s);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sinks: out of memory");
    }
    saemon_sink_options with_run = *o;
    if (!with_run.run_id)
        with_run.run_id = sinks->run_id;
    saemon_status st = kind_of(o->kind)->open(s, &with_run, err);
    if (st != SAEMON_OK) {
        sink_destroy(s);
        return st;
    }
    /* Signals go to the application's threads, never to a sink thread; a
     * closed pipe or socket then shows up as EPIPE instead of killing us. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, sink_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        sink_destroy(s);
        return saemon_error_set(err, SAEMON_ERR_IO, "sink %s: cannot start its thread: %s",
                                o->name ? o->name : saemon_sink_kind_name(o->kind), strerror(rc));
    }
    s->thread_started = true;
    sinks->v[sinks->n++] = s;
    return SAEMON_OK;
}

/* Full by count or by bytes; an empty queue always takes one alert, so a
 * single alert bigger than the bound still gets through. With s->mu held. */
static bool queue_full(const sink *s, size_t bytes)
{
    return s->len == s->cap || (s->len > 0 && atomic_load(&s->queued_bytes) + bytes > s->max_queued_bytes);
}

/* A file sink (jsonl, stdout) is local and fast: it holds the caller back
 * rather than dropping, up to this long per alert (a hung disk must not stop
 * the daemon forever); drops beyond are logged, at most every 10 s. */
#define LOCAL_WAIT_S 10
#define DROP_LOG_EVERY_NS 10000000000ull

static bool local_kind(const sink *s)
{
    return s->kind == SAEMON_SINK_JSONL || s->kind == SAEMON_SINK_STDOUT;
}

/* With s->mu held: the queue is full, wait (bounded) for room. A sink that
 * made no room in that time (a log shipper stopped reading a FIFO, a hung
 * disk) is stalled: later alerts are dropped at once, counted and logged,
 * until it takes an alert again, so one stuck sink cannot hold the monitor
 * up for LOCAL_WAIT_S per alert. */
static void wait_local_room(sink *s, const sink_alert *copy)
{
    if (s->stalled)
        return;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until); /* s->space uses CLOCK_MONOTONIC */
    until.tv_sec += LOCAL_WAIT_S;
    while (queue_full(s, copy->size) && !s->closing)
        if (pthread_cond_timedwait(&s->space, &s->mu, &until) != 0) {
            s->stalled = queue_full(s, copy->size);
            break;
        }
}

static void log_drop(sink *s)
{
    uint64_t now = clock_now_ns();
    if (s->drop_logged_ns && now - s->drop_logged_ns < DROP_LOG_EVERY_NS)
        return;
    s->drop_logged_ns = now;
    fprintf(stderr, "saemon: sink %s: queue full, alert dropped (%" PRIu64 " dropped so far)\n",
            s->name ? s->name : "?", atomic_load(&s->dropped));
}

void saemon_sinks_alert(const saemon_alert *alert, void *user)
{
    saemon_sinks *sinks = user;
    if (!sinks || !alert || sinks->closed)
        return;
    atomic_fetch_add(&sinks->received, 1);
    sink_alert *copy = sinks->n ? sink_alert_copy(alert) : NULL;
    for (size_t i = 0; i < sinks->n; i++) {
        sink *s = sinks->v[i];
        atomic_fetch_add(&s->received, 1);
        pthread_mutex_lock(&s->mu);
        while (sinks->backpressure && copy && queue_full(s, copy->size) && !s->closing)
            pthread_cond_wait(&s->space, &s->mu);
        if (copy && local_kind(s) && queue_full(s, copy->size))
            wait_local_room(s, copy);
        if (!copy || queue_full(s, copy->size)) {
            atomic_fetch_add(&s->dropped, 1);
            log_drop(s);
        } else {
            atomic_fetch_add(&copy->refs, 1);
            atomic_fetch_add(&s->queued_bytes, copy->size);
            atomic_fetch_add(&s->enqueued, 1);
            s->ring[(s->head + s->len) % s->cap] = copy;
            /* The consumer only sleeps on an empty queue: wake it (a futex
             * syscall) only on the first alert, not on every one. */
            if (s->len++ == 0)
                pthread_cond_signal(&s->cv);
        }
        pthread_mutex_unlock(&s->mu);
    }
    sink_alert_release(copy);
}

saemon_status saemon_sinks_set_run_id(saemon_sinks *sinks, const char *run_id, saemon_error *err)
{
    if (!sinks)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_set_run_id: NULL argument");
    char *copy = run_id ? strdup(run_id) : NULL;
    if (run_id && !copy)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sinks: out of memory");
    free(sinks->run_id);
    sinks->run_id = copy;
    return SAEMON_OK;
}

void saemon_sinks_set_backpressure(saemon_sinks *sinks, bool wait_for_room)
{
    if (sinks)
        sinks->backpressure = wait_for_room;
}

size_t saemon_sinks_get_count(const saemon_sinks *sinks)
{
    return sinks ? sinks->n : 0;
}

uint64_t saemon_sinks_get_received(const saemon_sinks *sinks)
{
    return sinks ? atomic_load(&sinks->received) : 0;
}

void saemon_sinks_get_stats(const saemon_sinks *sinks, size_t i, saemon_sink_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!sinks || i >= sinks->n)
        return;
    const sink *s = sinks->v[i];
    out->name = s->name;
    out->kind = saemon_sink_kind_name(s->kind);
    out->received = atomic_load(&s->received);
    out->delivered = atomic_load(&s->delivered);
    out->retried = atomic_load(&s->retried);
    out->spooled = atomic_load(&s->spooled);
    out->dropped = atomic_load(&s->dropped);
    out->failed = atomic_load(&s->failed);
    out->spool_errors = atomic_load(&s->spool_errors);
    out->quarantined = atomic_load(&s->quarantined);
    out->queued_bytes = atomic_load(&s->queued_bytes);
    sink *w = (sink *)s; /* the mutex only, for the text */
    pthread_mutex_lock(&w->mu);
    snprintf(out->last_failure, sizeof out->last_failure, "%s", s->last_failure);
    pthread_mutex_unlock(&w->mu);
}

saemon_status saemon_sinks_stop(saemon_sinks *sinks, saemon_error *err)
{
    if (!sinks)
        return SAEMON_OK;
    if (!sinks->closed) {
        sinks->closed = true;
        sinks->close_status = SAEMON_OK;
        for (size_t i = 0; i < sinks->n; i++) {
            sink *s = sinks->v[i];
            pthread_mutex_lock(&s->mu);
            atomic_store(&s->drain_deadline, clock_now_s() + s->drain_timeout_s);
            s->closing = true;
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
        }
        for (size_t i = 0; i < sinks->n; i++) {
            sink *s = sinks->v[i];
            if (s->thread_started) {
                pthread_join(s->thread, NULL);
                s->thread_started = false;
            }
            if (s->failed_hard && sinks->close_status == SAEMON_OK) {
                sinks->close_status = s->error.code;
                sinks->close_error = s->error;
            }
        }
    }
    if (sinks->close_status != SAEMON_OK) {
        if (err)
            *err = sinks->close_error;
        return sinks->close_status;
    }
    return SAEMON_OK;
}

void saemon_sinks_destroy(saemon_sinks *sinks)
{
    if (!sinks)
        return;
    saemon_sinks_stop(sinks, NULL);
    for (size_t i = 0; i < sinks->n; i++)
        sink_destroy(sinks->v[i]);
    free(sinks->v);
    free(sinks->run_id);
    free(sinks);
}
