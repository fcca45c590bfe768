/* webhook and alertmanager sinks: JSON POST with libcurl. Alerts wait in a
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
#include <string.h>

#include "base/error.h"
#include "monitors/sinks/sink_internal.h"
#include "monitors/sinks/spool.h"

#define MAX_PENDING 100000

typedef struct http_sink {
    bool alertmanager;
    char *url, *generator_url;
    double timeout_s, backoff_initial, backoff_max;
    unsigned max_retries;
    CURL *curl;
    bool has_spool;
    spool sp;
    spool_entry *q; /* FIFO: q[head .. head+len) */
    size_t head, len, cap;
    unsigned head_failures;
    double next_attempt;
    uint64_t lost;  /* given up without a spool to keep them */
    char last_error[256];
} http_sink;

typedef enum { POST_OK, POST_RETRY, POST_REFUSED } post_result;

static size_t keep_reply(char *data, size_t size, size_t n, void *user)
{
    char *buf = user;
    size_t have = strlen(buf), add = size * n;
    size_t room = 200 - have;
    if (add < room)
        room = add;
    memcpy(buf + have, data, room);
    buf[have + room] = 0;
    return size * n;
}

static post_result post(http_sink *h, const spool_entry *e)
{
    char key_header[96], reply[201] = "";
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
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_reply);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(h->last_error, sizeof h->last_error, "%s", curl_easy_strerror(rc));
        return POST_RETRY;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return POST_OK;
    for (char *p = reply; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    snprintf(h->last_error, sizeof h->last_error, "HTTP %ld %.160s", code, reply);
    return code == 408 || code == 429 || code >= 500 ? POST_RETRY : POST_REFUSED;
}

static void pop_head(sink *s, http_sink *h)
{
    free(h->q[h->head].body);
    h->head++;
    h->len--;
    h->head_failures = 0;
    h->next_attempt = 0;
    if (h->has_spool)
        atomic_store(&s->spooled, h->len);
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

/* Deliver from the head while the receiver takes them; returns the seconds
 * until the next attempt is due, or -1 when nothing is pending. */
static double pump(sink *s, bool closing)
{
    (void)closing;
    http_sink *h = s->impl;
    while (h->len) {
        double now = clock_now_s();
        if (now < h->next_attempt)
            return h->next_attempt - now;
        spool_entry *e = &h->q[h->head];
        if (h->head_failures > 0)
            atomic_fetch_add(&s->retried, 1);
        post_result r = post(h, e);
        if (r == POST_OK) {
            if (h->has_spool)
                spool_remove(&h->sp, e);
            atomic_fetch_add(&s->delivered, 1);
            pop_head(s, h);
            continue;
        }
        if (r == POST_REFUSED) {
            if (h->has_spool)
                spool_reject(&h->sp, e);
            atomic_fetch_add(&s->failed, 1);
            pop_head(s, h);
            continue;
        }
        h->head_failures++;
        if (!h->has_spool && h->head_failures > h->max_retries) {
            atomic_fetch_add(&s->failed, 1);
            h->lost++;
            pop_head(s, h);
            continue;
        }
        /* With a spool the head is never given up: past max_retries it is
         * tried every backoff_max seconds until the run ends. */
        unsigned doublings = h->head_failures - 1 < 40 ? h->head_failures - 1 : 40;
        double delay = h->backoff_initial * ldexp(1.0, (int)doublings);
        if (delay > h->backoff_max)
            delay = h->backoff_max;
        h->next_attempt = now + delay;
        return delay;
    }
    return -1;
}

static void http_handle(sink *s, const saemon_alert *a)
{
    http_sink *h = s->impl;
    spool_entry e = {0};
    e.body = h->alertmanager ? sink_alertmanager_body(a, h->generator_url) : saemon_alert_to_json(a);
    if (!e.body || h->len >= MAX_PENDING) {
        free(e.body);
        atomic_fetch_add(&s->dropped, 1);
        return;
    }
    e.len = strlen(e.body);
    sink_alert_key(a, e.key);
    if (h->has_spool && !spool_write(&h->sp, &e))
        /* Still delivered from memory; but a restart would lose it. */
        sink_fail(s, SAEMON_ERR_IO, "sink %s: writing to spool %s failed: %s", s->name, h->sp.dir,
                  strerror(errno));
    if (!push(h, e)) {
        free(e.body);
        atomic_fetch_add(&s->dropped, 1);
        return;
    }
    if (h->has_spool)
        atomic_store(&s->spooled, h->len);
    /* Delivery happens in pump(), called by the sink thread once the queue
     * is empty (or every 256 alerts). */
}

static bool http_finish(sink *s, double deadline)
{
    (void)deadline;
    http_sink *h = s->impl;
    if (!h->has_spool && h->len) { /* nowhere to keep them */
        atomic_fetch_add(&s->failed, h->len);
        h->lost += h->len;
        while (h->len)
            pop_head(s, h);
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
    while (h->len)
        pop_head(s, h);
    free(h->q);
    if (h->has_spool)
        spool_close(&h->sp);
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->url);
    free(h->generator_url);
    free(h);
}

static const sink_ops http_ops = {
    .handle = http_handle,
    .poll = pump,
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
    if (!o->url || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)))
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: needs an http:// or https:// URL, got '%s'", s->name,
                                o->url ? o->url : "(none)");
    if (!valid_seconds(o->timeout_s, 3600) || !valid_seconds(o->backoff_initial_s, 3600) ||
        !valid_seconds(o->backoff_max_s, 86400))
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: timeout/backoff out of range", s->name);
    http_sink *h = calloc(1, sizeof *h);
    if (!h)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    s->impl = h;
    s->ops = &http_ops;
    h->alertmanager = o->kind == SAEMON_SINK_ALERTMANAGER;
    h->timeout_s = o->timeout_s > 0 ? o->timeout_s : 5.0;
    h->backoff_initial = o->backoff_initial_s > 0 ? o->backoff_initial_s : 0.5;
    h->backoff_max = o->backoff_max_s > 0 ? o->backoff_max_s : 30.0;
    if (h->backoff_max < h->backoff_initial)
        h->backoff_max = h->backoff_initial;
    h->max_retries = o->max_retries ? o->max_retries : 5;
    h->url = h->alertmanager ? alertmanager_url(o->url) : strdup(o->url);
    h->generator_url = o->generator_url ? strdup(o->generator_url) : NULL;
    h->curl = curl_easy_init();
    if (!h->url || (o->generator_url && !h->generator_url) || !h->curl)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    long timeout_ms = (long)(h->timeout_s * 1000.0);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "saemon/" "0.1");
    if (o->spool_dir) {
        spool_entry *pending = NULL;
        size_t n = 0;
        saemon_status st = spool_open(&h->sp, o->spool_dir, &pending, &n, err);
        if (st != SAEMON_OK)
            return st;
        h->has_spool = true;
        h->q = pending;
        h->len = h->cap = n;
        atomic_store(&s->spooled, n);
    }
    return SAEMON_OK;
}

const sink_kind sink_kind_http = {.open = open_http};
