/* The consumer thread of one dictionary: frames from its rings -> encoder ->
 * one monitor per ring -> alerts to the sinks and verdicts back to the ring. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "serve/serve.h"

typedef struct alert_ctx {
    serve_ring *ring;
} alert_ctx;

saemon_verdict serve_verdict_of(const saemon_alert *a)
{
    if (a->block)
        return SAEMON_VERDICT_BLOCK;
    const char *s = a->severity ? a->severity : "";
    if (!strcmp(s, "emergency") || !strcmp(s, "alert") || !strcmp(s, "critical") || !strcmp(s, "error"))
        return SAEMON_VERDICT_CRITICAL;
    if (!strcmp(s, "warning"))
        return SAEMON_VERDICT_WARNING;
    return SAEMON_VERDICT_INFO;
}

static void on_alert(const saemon_alert *in, void *user)
{
    serve_ring *r = user;
    saemon_alert fleet = *in; /* fleet identity: which ring, which replica */
    fleet.ring = r->cfg->name;
    fleet.replica = r->dict->srv->cfg.replica;
    fleet.request_id = request_map_id(&r->requests, in->stream); /* an annotation, not identity */
    const saemon_alert *a = &fleet;
    if (a->status && strcmp(a->status, "firing") == 0) {
        /* The verdict first: the model server polls it, the sinks may be slow. */
        saemon_verdict v = serve_verdict_of(a);
        saemon_ring_set_verdict(r->ring, a->stream, v);
        atomic_fetch_add_explicit(&r->verdicts[v], 1, memory_order_relaxed);
    }
    serve_count_alert(r->dict, a);
    saemon_sinks_alert(a, r->dict->srv->sinks);
}

/* Swap in rules the main thread loaded, between two frames. */
static void apply_pending_rules(serve_dict *d)
{
    saemon_ruleset *next = atomic_exchange(&d->pending, NULL);
    if (!next)
        return;
    saemon_reload_stats st = {0};
    saemon_error err = {0};
    size_t done = 0;
    for (; done < d->n_rings; done++) {
        serve_ring *r = &d->rings[done];
        if (saemon_monitor_reload(r->monitor, next, on_alert, r, &st, &err) != SAEMON_OK)
            break;
    }
    if (done < d->n_rings) {
        /* Out of memory part way: the monitors that switched must switch
         * back, so every ring keeps evaluating one and the same rule set. */
        for (size_t i = 0; i < done; i++)
            saemon_monitor_reload(d->rings[i].monitor, d->rules, on_alert, &d->rings[i], NULL, NULL);
        atomic_fetch_add(&d->reloads_failed, 1);
        serve_log("error", "dictionary=%s rules not reloaded, keeping the old rules: %s", d->label, err.message);
        atomic_store(&d->retired, next);
        atomic_store(&d->reload_result, 2);
        return;
    }
    saemon_ruleset *old = d->rules;
    d->rules = next;
    atomic_fetch_add(&d->reloads_ok, 1);
    serve_log("info",
              "dictionary=%s rules reloaded: %zu rules (%zu kept state, %zu changed, %zu added, %zu removed)",
              d->label, st.rules, st.kept, st.changed, st.added, st.removed);
    atomic_store(&d->retired, old);
    atomic_store(&d->reload_result, 1);
}

/* Tokens of one encode call, gathered from consecutive frames of one ring
 * (many streams decoding one token each fill a batch together, and a batch
 * of 8 costs far less per token than 8 batches of 1). Entries keep the frames'
 * order so each stream sees its tokens, and its end, in sequence. */
typedef struct gather_entry {
    uint64_t stream, token; /* token of the entry's first row */
    uint32_t first, n_rows; /* rows [first, first + n_rows) of the gathered batch */
    bool end_of_stream;
    int16_t request_id;     /* >= 0: a request id frame (no rows), index into serve_gather.ids */
} gather_entry;

#define SERVE_GATHER_ENDS 64 /* zero-row end-of-stream frames one batch may carry */
#define SERVE_GATHER_IDS 16  /* request id frames one batch may carry */

struct serve_gather {
    float *rows;            /* [batch][d_in] */
    gather_entry *entries;  /* at most batch + SERVE_GATHER_ENDS */
    size_t n_rows, n_entries, cap_entries, n_ids;
    char ids[SERVE_GATHER_IDS][RING_REQUEST_ID_MAX + 1];
};

bool serve_gather_init(serve_dict *d)
{
    size_t batch = saemon_encoder_get_max_batch(d->encoder);
    struct serve_gather *g = calloc(1, sizeof *g);
    if (!g)
        return false;
    g->cap_entries = batch + SERVE_GATHER_ENDS;
    g->rows = malloc(batch * d->info->d_in * sizeof *g->rows);
    g->entries = malloc(g->cap_entries * sizeof *g->entries);
    d->gather = g;
    return g->rows && g->entries;
}

void serve_gather_free(serve_dict *d)
{
    if (d->gather) {
        free(d->gather->rows);
        free(d->gather->entries);
        free(d->gather);
        d->gather = NULL;
    }
}

static void write_features(serve *srv, const serve_ring *r, const gather_entry *e, const saemon_features *feat)
{
    pthread_mutex_lock(&srv->features_mu);
    for (uint32_t t = 0; t < e->n_rows; t++) {
        size_t lo = feat->offsets[e->first + t], hi = feat->offsets[e->first + t + 1];
        cli_write_sparse_line(srv->features, r->dict->label, r->cfg->name, e->stream, e->token + t,
                              feat->index + lo, feat->value + lo, hi - lo, feat->input_nonfinite[e->first + t]);
    }
    fflush(srv->features);
    pthread_mutex_unlock(&srv->features_mu);
}

/* The tokens of entry e (its rows start at e->first in the features) through
 * the ring's monitor, then its end of stream. */
static void observe(serve_ring *r, const gather_entry *e, const saemon_features *feat, const float *rows)
{
    if (e->request_id >= 0) { /* the stream's alerts carry this id from here on */
        if (!request_map_set(&r->requests, e->stream, r->dict->gather->ids[e->request_id]))
            atomic_fetch_add_explicit(&r->request_ids_untracked, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->request_ids, 1, memory_order_relaxed);
        return;
    }
    size_t d_in = r->dict->info->d_in;
    for (uint32_t t = 0; t < e->n_rows; t++) {
        size_t i = e->first + t, lo = feat->offsets[i], hi = feat->offsets[i + 1];
        if (r->history) /* before observing: a capture includes this token */
            serve_history_push(r->history, e->stream, e->token + t, rows + i * d_in);
        saemon_token_view v = {
            .stream = e->stream,
            .token = e->token + t,
            .index = feat->index + lo,
            .value = feat->value + lo,
            .nnz = hi - lo,
            .input_norm = feat->input_norm[i],
            .input_nonfinite = feat->input_nonfinite[i] != 0,
            .recon_error = feat->recon_error ? feat->recon_error[i] : NAN,
            .subset = feat->subset && feat->subset[i],
        };
        saemon_monitor_observe(r->monitor, &v, on_alert, r);
    }
    if (e->n_rows && r->dict->srv->features)
        write_features(r->dict->srv, r, e, feat);
    atomic_fetch_add_explicit(&r->tokens_encoded, e->n_rows, memory_order_relaxed);
    if (e->end_of_stream) {
        if (r->history)
            serve_history_forget(r->history, e->stream);
        saemon_monitor_end_stream(r->monitor, e->stream, on_alert, r);
        /* every row of the sequence was evaluated above: a new sequence on
         * this id starts with a clean verdict */
        saemon_ring_end_verdict(r->ring, e->stream);
        request_map_forget(&r->requests, e->stream); /* after its resolved alerts */
        atomic_fetch_add_explicit(&r->streams_ended, 1, memory_order_relaxed);
    }
}

/* Encode `n` contiguous rows and hand them to the entries. */
static bool encode_entries(serve_dict *d, serve_ring *r, const float *rows, size_t n, const gather_entry *entries,
                           size_t n_entries)
{
    const saemon_features *feat = NULL;
    if (n) {
        saemon_error err = {0};
        double t0 = clock_now_s();
        if (saemon_encoder_encode(d->encoder, rows, n, &feat, &err) != SAEMON_OK) {
            snprintf(d->failure, sizeof d->failure, "encode failed: %s", err.message);
            return false;
        }
        serve_hist_observe(&d->encode_seconds, clock_now_s() - t0);
    }
    for (size_t i = 0; i < n_entries; i++)
        observe(r, &entries[i], feat, rows);
    return true;
}

/* Publish the monitor's stream counts for /metrics and /healthz. */
static void note_streams(serve_ring *r)
{
    atomic_store_explicit(&r->streams_open, saemon_monitor_get_stream_count(r->monitor), memory_order_relaxed);
    uint64_t un = saemon_monitor_get_unmonitored(r->monitor);
    if (un != atomic_load_explicit(&r->unmonitored, memory_order_relaxed)) {
        atomic_store(&r->unmonitored_ns, clock_now_ns());
        atomic_store(&r->unmonitored, un);
    }
}

/* Encode and evaluate the gathered frames; then every frame released so far
 * has had its rules run, and producers waiting for verdicts may read them. */
static bool flush(serve_dict *d, serve_ring *r)
{
    struct serve_gather *g = d->gather;
    bool ok = encode_entries(d, r, g->rows, g->n_rows, g->entries, g->n_entries);
    g->n_rows = g->n_entries = g->n_ids = 0;
    if (ok) {
        saemon_ring_evaluated(r->ring);
        note_streams(r);
    }
    return ok;
}

/* Every stream ended at once: their request ids go with them. */
static void forget_requests(serve_ring *r)
{
    request_map_free(&r->requests);
}

/* The first frame of a newly attached producer: the previous producer is
 * gone, so are its streams. Evaluate what it published, resolve its streams,
 * forget its verdicts, before this frame's rows are evaluated. */
static bool new_producer(serve_dict *d, serve_ring *r)
{
    if (!flush(d, r))
        return false;
    size_t n = saemon_monitor_end_all_streams(r->monitor, on_alert, r);
    saemon_ring_clear_verdicts(r->ring);
    forget_requests(r);
    atomic_fetch_add_explicit(&r->streams_ended, n, memory_order_relaxed);
    if (n)
        serve_log("info", "dictionary=%s ring=%s new producer: %zu streams of the previous one ended", d->label,
                  r->cfg->name, n);
    return true;
}

/* A frame larger than a batch goes straight from the ring, in batch chunks. */
static bool encode_large_frame(serve_dict *d, serve_ring *r, const saemon_frame *f)
{
    size_t batch = saemon_encoder_get_max_batch(d->encoder);
    for (size_t first = 0; first < f->n_rows; first += batch) {
        size_t n = f->n_rows - first < batch ? f->n_rows - first : batch;
        bool last = first + n == f->n_rows;
        gather_entry e = {.stream = f->stream, .token = f->token + first, .first = 0, .n_rows = (uint32_t)n,
                          .end_of_stream = last && f->end_of_stream, .request_id = -1};
        if (!encode_entries(d, r, f->rows + first * f->d_in, n, &e, 1))
            return false;
    }
    return true;
}

static bool take_frame(serve_dict *d, serve_ring *r, const saemon_frame *f)
{
    struct serve_gather *g = d->gather;
    size_t batch = saemon_encoder_get_max_batch(d->encoder);
    if (f->new_producer && !new_producer(d, r))
        return false;
    if (f->gap) {
        /* The monitor starts a new sequence when token positions do not
         * follow each other, so windows never bridge the lost tokens. */
        atomic_fetch_add_explicit(&r->gaps, 1, memory_order_relaxed);
    }
    if (g->n_rows + f->n_rows > batch || g->n_entries == g->cap_entries
        || (f->request_id && g->n_ids == SERVE_GATHER_IDS))
        if (!flush(d, r))
            return false;
    if (f->request_id) { /* applied in order with the frames around it */
        snprintf(g->ids[g->n_ids], sizeof g->ids[0], "%s", f->request_id);
        g->entries[g->n_entries++] = (gather_entry){.stream = f->stream, .token = f->token,
                                                    .request_id = (int16_t)g->n_ids++};
        return true;
    }
    if (f->n_rows > batch)
        return encode_large_frame(d, r, f);
    memcpy(g->rows + g->n_rows * d->info->d_in, f->rows, (size_t)f->n_rows * f->d_in * sizeof(float));
    g->entries[g->n_entries++] = (gather_entry){.stream = f->stream, .token = f->token, .first = (uint32_t)g->n_rows,
                                                .n_rows = f->n_rows, .end_of_stream = f->end_of_stream,
                                                .request_id = -1};
    g->n_rows += f->n_rows;
    return true;
}

/* Frames of one ring: wait up to timeout_ms for the first, then take what
 * is already there, a few batches at most. Returns frames handled, -1 on a
 * fatal error. */
static int drain_ring(serve_dict *d, serve_ring *r, int timeout_ms)
{
    size_t batch = saemon_encoder_get_max_batch(d->encoder);
    size_t budget = 4 * batch + SERVE_GATHER_ENDS; /* then let reloads and stops in */
    int handled = 0;
    for (;;) {
        saemon_frame f;
        saemon_error err = {0};
        int got = saemon_ring_next(r->ring, &f, handled ? 0 : timeout_ms, &err);
        if (got < 0) {
            snprintf(d->failure, sizeof d->failure, "ring %s: %s", r->cfg->name, err.message);
            return -1;
        }
        if (got == 0)
            break;
        bool ok = take_frame(d, r, &f);
        saemon_ring_release(r->ring);
        if (!ok)
            return -1;
        handled++;
        if ((size_t)handled >= budget)
            break;
    }
    return flush(d, r) ? handled : -1;
}

/* One pass over the rings, taking what is there without waiting: returns
 * frames handled, -1 on a fatal error. */
static int poll_rings(serve_dict *d)
{
    int handled = 0;
    for (size_t i = 0; i < d->n_rings; i++) {
        int n = drain_ring(d, &d->rings[i], 0);
        if (n < 0)
            return -1;
        handled += n;
    }
    return handled;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nothing to read: wait for the next frame or announcement on any ring
 * (saemon_ring_wait polls a ring in use on a timer, so producers never call
 * the kernel to wake us) and count the CPU time the waiting costs. */
static void idle_wait(serve_dict *d, int timeout_ms)
{
    saemon_ring *rings[SERVE_MAX_RINGS];
    for (size_t i = 0; i < d->n_rings; i++)
        rings[i] = d->rings[i].ring;
    uint64_t c0 = thread_cpu_ns();
    saemon_ring_wait(rings, d->n_rings, timeout_ms);
    uint64_t c1 = thread_cpu_ns();
    if (c1 > c0)
        atomic_fetch_add_explicit(&d->idle_cpu_ns, c1 - c0, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->idle_waits, 1, memory_order_relaxed);
}

size_t serve_capture_fn(uint64_t stream, uint64_t token, uint32_t window, saemon_alert_feature *out, size_t cap,
                        void *user)
{
    serve_ring *r = user;
    serve_dict *d = r->dict;
    if (!r->history)
        return 0;
    uint32_t have = serve_history_capacity(r->history);
    size_t n = serve_history_window(r->history, stream, token, window < have ? window : have, d->capture_rows);
    return n ? cli_capture_rows(&d->capture, d->capture_rows, n, out, cap) : 0;
}

/* stream_idle_timeout: a ring without a frame that long (its producer
 * vanished, or leaks streams it never ends) ends its open streams, which
 * resolves their alerts and frees their state. Checked about once a second. */
static void end_idle_streams(serve_dict *d)
{
    double timeout = d->srv->cfg.stream_idle_timeout_s;
    uint64_t now = clock_now_ns();
    if (timeout <= 0 || now < d->idle_check_ns)
        return;
    d->idle_check_ns = now + 1000000000u;
    for (size_t i = 0; i < d->n_rings; i++) {
        serve_ring *r = &d->rings[i];
        if (!saemon_monitor_get_stream_count(r->monitor))
            continue;
        saemon_ring_stats st;
        saemon_ring_get_stats(r->ring, &st);
        if (st.last_frame_age_s < timeout)
            continue;
        size_t n = saemon_monitor_end_all_streams(r->monitor, on_alert, r);
        saemon_ring_clear_verdicts(r->ring);
        forget_requests(r);
        atomic_fetch_add(&r->streams_idle_ended, n);
        note_streams(r);
        serve_log("warning",
                  "dictionary=%s ring=%s no frame for %.0f s (stream_idle_timeout): %zu open streams ended, "
                  "alerts resolved",
                  d->label, r->cfg->name, st.last_frame_age_s, n);
    }
}

void *serve_consumer_main(void *arg)
{
    serve_dict *d = arg;
    serve *srv = d->srv;
    clockid_t clk;
    if (pthread_getcpuclockid(pthread_self(), &clk) == 0) {
        d->cpu_clock = clk;
        atomic_store(&d->cpu_clock_ok, true);
    }
    /* The 0.4 ms polls of a ring in use wake when asked, not up to 50 us
     * later (the default slack): measured on the 2-vCPU VM, a 400 us sleep
     * overshot by 86 us at p50 with the default, 33 us with 1 ns. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (;;) {
        apply_pending_rules(d);
        if (atomic_load(&srv->stopping)) {
            /* Drain: whatever the producers had published before the stop. */
            int n;
            while ((n = poll_rings(d)) > 0)
                ;
            if (n < 0)
                break;
            atomic_store(&d->cpu_clock_ok, false);
            /* Nothing evaluates these streams any more: resolve what fires. */
            for (size_t i = 0; i < d->n_rings; i++) {
                serve_ring *r = &d->rings[i];
                size_t ended = saemon_monitor_end_all_streams(r->monitor, on_alert, r);
                if (ended)
                    serve_log("info", "dictionary=%s ring=%s stopping: %zu open streams ended", d->label,
                              r->cfg->name, ended);
            }
            return NULL;
        }
        int n = poll_rings(d);
        if (n < 0)
            break;
        end_idle_streams(d);
        if (n == 0)
            idle_wait(d, 50);
    }
    atomic_store(&d->cpu_clock_ok, false);
    atomic_store(&d->failed, true);
    serve_log("error", "dictionary=%s consumer stopped: %s", d->label, d->failure);
    return NULL;
}
