/* webhook, alertmanager and otlp sinks: JSON POST with libcurl (the body
 * is the kind's: the alert's JSON, a postableAlerts array, an OTLP logs
 * export request; sink_otlp.c). Alerts wait in a
 * FIFO (mirrored on disk when a spool directory is set) and are delivered
 * strictly in order: the head is retried with exponential backoff, and
 * nothing overtakes it. 2xx = delivered; 408, 429, 5xx and transport errors
 * are retried; any other status is a refusal (counted failed, set aside). */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/sha256.h"
#include "monitors/sinks/am_active.h"
#include "monitors/sinks/http_auth.h"
#include "monitors/sinks/sink_internal.h"
#include "monitors/sinks/spool.h"

#define MAX_PENDING 100000

typedef struct http_sink {
    bool alertmanager;
    sink_otlp *otlp;  /* otlp: the resource, NULL for the other kinds */
    const char *name; /* the sink's, for messages */
    char *url, *generator_url;
    double timeout_s, backoff_initial, backoff_max;
    unsigned max_retries;
    CURL *curl;
    http_auth auth;
    char curl_error[CURL_ERROR_SIZE];
    bool warned_credentials;
    bool has_spool;
    spool sp;
    spool_entry *q; /* FIFO: q[head .. head+len) */
    size_t head, len, cap;
    unsigned head_failures;
    double next_attempt;
    uint64_t lost;  /* given up without a spool to keep them */
    char last_error[256];
    /* Delivery runs on its own thread, so the sink thread only ever writes
     * the spool: an alert is on disk before any delivery attempt that
     * follows it, however slow the receiver (docs/sinks.md, "Spool"). */
    pthread_t deliverer;
    bool deliverer_started, stopping;
    double stop_deadline;          /* stopping: give up attempts after this */
    pthread_mutex_t mu;            /* q, head, len, pending_bytes, stopping */
    pthread_cond_t cv;
    size_t pending_bytes, max_pending_bytes; /* bodies held in memory */
    uint64_t on_disk;              /* entries of q in the spool */
    uint64_t handled;              /* alerts http_handle has taken (spooled or not) */
    char run_id[128];
    /* alertmanager: firing alerts re-sent every resend_s with endsAt =
     * now + 4 resend_s, as Prometheus does (sink thread only) */
    am_active active;
    double resend_s, next_resend;
    uint64_t resends;
} http_sink;

typedef enum { POST_OK, POST_RETRY, POST_REFUSED } post_result;

/* The reply body is counted, never kept: a receiver that echoes the request
 * would hand back the credentials and header values saemon sent. */
static size_t count_reply(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    *(size_t *)user += size * n;
    return size * n;
}

/* noinline: inlined into deliver_loop, gcc 12 trips over libcurl's
 * CURLOPT_WRITEDATA type check for the reply buffer. */
__attribute__((noinline)) static post_result post(http_sink *h, const spool_entry *e)
{
    char key_header[96];
    size_t reply_bytes = 0;
    snprintf(key_header, sizeof key_header, "Idempotency-Key: %s", e->key);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *more = headers ? curl_slist_append(headers, key_header) : NULL;
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    more = more ? curl_slist_append(more, "Expect:") : NULL;
    if (!more) {
        curl_slist_free_all(headers);
        snprintf(h->last_error, sizeof h->last_error, "out of memory");
        return POST_RETRY;
    }
    headers = more;
    CURL *c = h->curl;
    if (!http_auth_prepare(&h->auth, c, &headers, h->last_error, sizeof h->last_error)) {
        curl_slist_free_all(headers);
        return POST_RETRY; /* e.g. a secret file being rotated: try again later */
    }
    curl_easy_setopt(c, CURLOPT_URL, h->auth.url ? h->auth.url : h->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_reply);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply_bytes);
    h->curl_error[0] = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(h->last_error, sizeof h->last_error, "%s%s%.180s", curl_easy_strerror(rc), *h->curl_error ? ": " : "",
                 h->curl_error);
        return POST_RETRY;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return POST_OK;
    snprintf(h->last_error, sizeof h->last_error, "HTTP %ld (a reply of %zu bytes, not shown: it may echo credentials)",
             code, reply_bytes);
    if ((code == 401 || code == 403) && !h->warned_credentials) {
        /* Wrong or missing credentials: every alert will be refused the same
         * way; say so once, loudly (each refusal is counted failed). */
        h->warned_credentials = true;
        fprintf(stderr, "saemon: sink %s: the receiver refused the credentials (HTTP %ld); alerts are counted failed\n",
                h->name, code);
    }
    return code == 408 || code == 429 || code >= 500 ? POST_RETRY : POST_REFUSED;
}

/* Drop the head (delivered, refused or given up). Called with h->mu held. */
static void pop_head(sink *s, http_sink *h)
{
    spool_entry *e = &h->q[h->head];
    if (e->body)
        h->pending_bytes -= e->len;
    if (e->on_disk)
        h->on_disk--;
    free(e->body);
    h->head++;
    h->len--;
    h->head_failures = 0;
    h->next_attempt = 0;
    if (h->has_spool)
        atomic_store(&s->spooled, h->on_disk);
    if (h->len == 0)
        h->head = 0;
}

static bool push(http_sink *h, spool_entry e)
{
    if (h->head + h->len == h->cap) {
        if (h->head > 0) { /* slide the live part to the front */
            memmove(h->q, h->q + h->head, h->len * sizeof *h->q);
            h->head = 0;
        } else {
            size_t nc = h->cap ? 2 * h->cap : 64;
            spool_entry *g = realloc(h->q, nc * sizeof *g);
            if (!g)
                return false;
            h->q = g;
            h->cap = nc;
        }
    }
    h->q[h->head + h->len++] = e;
    return true;
}

/* Seconds to wait after the head's n-th failure. */
static double backoff(const http_sink *h)
{
    unsigned doublings = h->head_failures - 1 < 40 ? h->head_failures - 1 : 40;
    double delay = h->backoff_initial * ldexp(1.0, (int)doublings);
    return delay > h->backoff_max ? h->backoff_max : delay;
}

static void wait_until(http_sink *h, double when)
{
    double wait = when - clock_now_s();
    if (wait <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = floor(wait > 3600 ? 3600 : wait);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((wait - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->cv, &h->mu, &ts);
}

/* The delivery thread: strictly in order, the head retried with exponential
 * backoff; nothing overtakes it. While stopping, attempts end at the drain
 * deadline (each request's timeout is cut to what is left of it). */
static void *deliver_loop(void *arg)
{
    sink *s = arg;
    http_sink *h = s->impl;
    uint64_t wal_mark = 0;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        double now = clock_now_s();
        if (h->stopping && (h->len == 0 || now >= h->stop_deadline))
            break;
        if (h->len == 0) {
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        if (now < h->next_attempt) {
            wait_until(h, h->stopping && h->stop_deadline < h->next_attempt ? h->stop_deadline : h->next_attempt);
            continue;
        }
        /* Write-ahead: whatever was queued for this sink when this attempt
         * became due is spooled first (the sink thread does that; wait for
         * it). The mark is taken once per attempt: alerts queued while we
         * wait do not move it, or a steady stream would starve delivery. */
        if (!wal_mark)
            wal_mark = atomic_load(&s->enqueued) + 1; /* +1: 0 means "not taken" */
        if (h->has_spool && h->handled + 1 < wal_mark && !h->stopping) {
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        wal_mark = 0;
        spool_entry e = h->q[h->head]; /* the array may move; the body does not */
        bool reread = !e.body;
        pthread_mutex_unlock(&h->mu);
        if (reread && !spool_read(&h->sp, &e)) {
            /* set aside by a person, or unreadable now: nothing to send */
            pthread_mutex_lock(&h->mu);
            snprintf(h->last_error, sizeof h->last_error, "spooled alert %" PRIu64 " could not be read back", e.seq);
            sink_failed_one(s, "%s", h->last_error);
            pop_head(s, h);
            continue;
        }
        double budget = h->timeout_s;
        if (h->stopping && h->stop_deadline - now < budget)
            budget = h->stop_deadline - now > 0.001 ? h->stop_deadline - now : 0.001;
        long ms = (long)(budget * 1000.0);
        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
        if (h->head_failures > 0)
            atomic_fetch_add(&s->retried, 1);
        post_result r = post(h, &e);
        if (r == POST_OK && e.on_disk)
            spool_remove(&h->sp, &e);
        else if (r == POST_REFUSED && e.on_disk)
            spool_reject(&h->sp, &e);
        if (reread)
            free(e.body);
        pthread_mutex_lock(&h->mu);
        if (r == POST_OK) {
            atomic_fetch_add(&s->delivered, 1);
            pop_head(s, h);
            continue;
        }
        if (r == POST_REFUSED) {
            sink_failed_one(s, "refused: %s", h->last_error);
            pop_head(s, h);
            continue;
        }
        h->head_failures++;
        if (h->q[h->head].resend && h->head_failures > h->max_retries) {
            pop_head(s, h); /* the next round re-sends it anyway */
            continue;
        }
        if (!h->q[h->head].on_disk && h->head_failures > h->max_retries) {
            sink_failed_one(s, "given up after %u retries: %s", h->max_retries, h->last_error);
            h->lost++;
            pop_head(s, h);
            continue;
        }
        /* On disk the head is never given up: past max_retries it is tried
         * every backoff_max seconds until the run ends, and stays spooled. */
        h->next_attempt = clock_now_s() + backoff(h);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void mark_handled(http_sink *h)
{
    pthread_mutex_lock(&h->mu);
    h->handled++;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void http_handle(sink *s, const saemon_alert *a)
{
    http_sink *h = s->impl;
    spool_entry e = {0};
    e.body = h->alertmanager ? sink_alertmanager_body(a, h->generator_url, a->timestamp + 4 * h->resend_s)
             : h->otlp       ? sink_otlp_body(h->otlp, a)
                             : saemon_alert_to_json(a);
    if (h->alertmanager && e.body && !am_active_note(&h->active, a))
        sink_failed_one(s, "too many active alerts to re-send (max %d)", AM_ACTIVE_MAX);
    if (!e.body) {
        atomic_fetch_add(&s->dropped, 1);
        mark_handled(h);
        return;
    }
    e.len = strlen(e.body);
    sink_alert_key(a, h->run_id, e.key);
    if (h->has_spool) {
        /* Write-ahead: on disk (fsynced) before it is handed to delivery. */
        if (!spool_write(&h->sp, &e)) {
            /* Counted and reported; the alert stays in memory for delivery,
             * but a crash before it is delivered would lose it. */
            atomic_fetch_add(&s->spool_errors, 1);
            sink_fail(s, SAEMON_ERR_IO, "sink %s: writing to spool %s failed: %s (alert kept in memory)", s->name,
                      h->sp.dir, strerror(errno));
        }
    }
    pthread_mutex_lock(&h->mu);
    bool full = h->pending_bytes + e.len > h->max_pending_bytes || h->len >= MAX_PENDING;
    if (full && e.on_disk) { /* keep only the spool file; read back at the head */
        free(e.body);
        e.body = NULL;
        full = false;
    }
    h->handled++;
    if (full || !push(h, e)) {
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        if (e.on_disk) /* cannot even track it: leave it for the next start */
            atomic_fetch_add(&s->failed, 1);
        free(e.body);
        atomic_fetch_add(&s->dropped, 1);
        return;
    }
    if (e.body)
        h->pending_bytes += e.len;
    if (e.on_disk)
        h->on_disk++;
    if (h->has_spool)
        atomic_store(&s->spooled, h->on_disk);
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Alertmanager: queue a fresh copy of every active alert (memory only: a
 * re-send lost in a crash only shortens the alert's endsAt). Sink thread. */
static double resend_active(sink *s, bool closing)
{
    http_sink *h = s->impl;
    if (!h->alertmanager || closing)
        return -1;
    double now = clock_now_s();
    if (h->next_resend == 0)
        h->next_resend = now + h->resend_s;
    if (now < h->next_resend)
        return h->next_resend - now;
    h->next_resend = now + h->resend_s;
    h->resends++;
    double wall = (double)time(NULL);
    for (size_t i = 0; i < h->active.n; i++) {
        const saemon_alert *a = &h->active.v[i]->alert;
        spool_entry e = {0};
        e.body = sink_alertmanager_body(a, h->generator_url, wall + 4 * h->resend_s);
        if (!e.body)
            continue;
        e.len = strlen(e.body);
        e.resend = true;
        char key[65], round[24];
        sink_alert_key(a, h->run_id, key);
        snprintf(round, sizeof round, "resend %" PRIu64, h->resends);
        const void *parts[] = {key, round};
        const size_t lens[] = {64, strlen(round)};
        if (saemon_sha256_hex(parts, lens, 2, e.key) != 0)
            memcpy(e.key, key, sizeof e.key);
        pthread_mutex_lock(&h->mu);
        if (h->pending_bytes + e.len > h->max_pending_bytes || !push(h, e)) {
            pthread_mutex_unlock(&h->mu);
            free(e.body);
            continue;
        }
        h->pending_bytes += e.len;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    return h->resend_s;
}

static void stop_deliverer(http_sink *h, double deadline)
{
    if (!h->deliverer_started)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    h->stop_deadline = deadline;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->deliverer, NULL);
    h->deliverer_started = false;
}

static bool http_finish(sink *s, double deadline)
{
    http_sink *h = s->impl;
    stop_deliverer(h, isfinite(deadline) ? deadline : clock_now_s() + s->drain_timeout_s);
    uint64_t memory_only = 0; /* what is on disk waits for the next run; the rest is lost */
    for (size_t i = 0; i < h->len; i++)
        memory_only += !h->q[h->head + i].on_disk && !h->q[h->head + i].resend;
    if (memory_only) {
        atomic_fetch_add(&s->failed, memory_only);
        h->lost += memory_only;
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_failure, sizeof s->last_failure, "undelivered at the drain timeout: %.160s", h->last_error);
        pthread_mutex_unlock(&s->mu);
    }
    if (h->lost)
        sink_fail(s, SAEMON_ERR_IO, "sink %s: %" PRIu64 " alerts could not be delivered to %s (last error: %s)",
                  s->name, h->lost, h->url, h->last_error);
    return !s->failed_hard;
}

static void http_destroy(sink *s)
{
    http_sink *h = s->impl;
    if (!h)
        return;
    stop_deliverer(h, clock_now_s());
    while (h->len)
        pop_head(s, h);
    free(h->q);
    if (h->has_spool)
        spool_close(&h->sp);
    if (h->curl)
        curl_easy_cleanup(h->curl);
    http_auth_close(&h->auth);
    free(h->url);
    free(h->generator_url);
    sink_otlp_free(h->otlp);
    am_active_free(&h->active);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static const sink_ops http_ops = {
    .handle = http_handle,
    .poll = resend_active,
    .finish = http_finish,
    .destroy = http_destroy,
};

static char *alertmanager_url(const char *base)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    const char *suffix = "/api/v2/alerts";
    if (n >= strlen(suffix) && !strncmp(base + n - strlen(suffix), suffix, strlen(suffix)))
        suffix = "";
    char *url = NULL;
    if (asprintf(&url, "%.*s%s", (int)n, base, suffix) < 0)
        return NULL;
    return url;
}

static bool valid_seconds(double v, double max)
{
    return v >= 0 && v <= max; /* false for NaN */
}

static saemon_status open_http(sink *s, const saemon_sink_options *o, saemon_error *err)
{
    if (http_url_has_userinfo(o->url)) /* before any message quotes the URL */
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: the URL holds credentials (user:password@); use "
                                "basic_auth", s->name);
    if (!o->url || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)))
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: needs an http:// or https:// URL, got '%s'", s->name,
                                o->url ? o->url : "(none)");
    if (!valid_seconds(o->timeout_s, 3600) || !valid_seconds(o->backoff_initial_s, 3600) ||
        !valid_seconds(o->backoff_max_s, 86400))
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: timeout/backoff out of range", s->name);
    http_sink *h = calloc(1, sizeof *h);
    if (!h)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->impl = h;
    s->ops = &http_ops;
    h->alertmanager = o->kind == SAEMON_SINK_ALERTMANAGER;
    h->name = s->name;
    h->timeout_s = o->timeout_s > 0 ? o->timeout_s : 5.0;
    h->backoff_initial = o->backoff_initial_s > 0 ? o->backoff_initial_s : 0.5;
    h->backoff_max = o->backoff_max_s > 0 ? o->backoff_max_s : 30.0;
    if (h->backoff_max < h->backoff_initial)
        h->backoff_max = h->backoff_initial;
    h->max_retries = o->max_retries ? o->max_retries : 5;
    h->url = h->alertmanager ? alertmanager_url(o->url) : strdup(o->url);
    h->generator_url = o->generator_url ? strdup(o->generator_url) : NULL;
    h->curl = curl_easy_init();
    if (o->kind == SAEMON_SINK_OTLP && !(h->otlp = sink_otlp_open(o)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    if (!h->url || (o->generator_url && !h->generator_url) || !h->curl)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    long timeout_ms = (long)(h->timeout_s * 1000.0);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "saemon/" "0.1");
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->curl_error);
    saemon_status st = http_auth_open(&h->auth, &o->http, h->url, s->name, h->curl, err);
    if (st != SAEMON_OK)
        return st;
    if (o->spool_dir) {
        spool_entry *pending = NULL;
        size_t n = 0;
        saemon_status st = spool_open(&h->sp, o->spool_dir, &pending, &n, err);
        if (st != SAEMON_OK)
            return st;
        h->has_spool = true;
        h->q = pending;
        h->len = h->cap = n;
        h->on_disk = n;
        for (size_t i = 0; i < n; i++)
            h->pending_bytes += pending[i].len;
        atomic_store(&s->spooled, n);
        atomic_store(&s->quarantined, h->sp.quarantined);
        if (h->sp.quarantined)
            fprintf(stderr, "saemon: sink %s: %" PRIu64 " bad spool entries set aside as *.bad in %s (last: %s)\n",
                    s->name, h->sp.quarantined, h->sp.dir, h->sp.last_quarantined);
    }
    h->max_pending_bytes = o->queue_bytes ? o->queue_bytes : SAEMON_SINK_DEFAULT_QUEUE_BYTES;
    snprintf(h->run_id, sizeof h->run_id, "%s", o->run_id ? o->run_id : "");
    h->resend_s = o->resend_interval_s > 0 ? o->resend_interval_s : 60.0;
    /* Signals go to the application's threads, as for the sink thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&h->deliverer, NULL, deliver_loop, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "sink %s: cannot start its delivery thread: %s", s->name,
                                strerror(rc));
    h->deliverer_started = true;
    return SAEMON_OK;
}

const sink_kind sink_kind_http = {.open = open_http};
