/* The consumer thread of one dictionary: frames from its rings -> encoder ->
 * one monitor per ring -> alerts to the sinks and verdicts back to the ring. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/serve.h"

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

static void on_alert(const saemon_alert *a, void *user)
{
    serve_ring *r = user;
    if (a->status && strcmp(a->status, "firing") == 0) {
        /* The verdict first: the model server polls it, the sinks may be slow. */
        saemon_verdict v = serve_verdict_of(a);
        saemon_ring_set_verdict(r->ring, a->stream, v);
        atomic_fetch_add_explicit(&r->verdicts[v], 1, memory_order_relaxed);
    }
    serve_count_alert(r->dict, a);
    saemon_sinks_alert(a, r->dict->srv->sinks);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
        return;
    }
    saemon_ruleset *old = d->rules;
    d->rules = next;
    atomic_fetch_add(&d->reloads_ok, 1);
    serve_log("info",
              "dictionary=%s rules reloaded: %zu rules (%zu kept state, %zu changed, %zu added, %zu removed)",
              d->label, st.rules, st.kept, st.changed, st.added, st.removed);
    atomic_store(&d->retired, old);
}

static void write_features(serve *srv, const serve_ring *r, const saemon_frame *f, size_t first,
                           const saemon_features *feat)
{
    pthread_mutex_lock(&srv->features_mu);
    for (size_t t = 0; t < feat->n_tokens; t++) {
        size_t lo = feat->offsets[t], hi = feat->offsets[t + 1];
        cli_write_sparse_line(srv->features, r->dict->label, r->cfg->name, f->stream, f->token + first + t,
                              feat->index + lo, feat->value + lo, hi - lo);
    }
    fflush(srv->features);
    pthread_mutex_unlock(&srv->features_mu);
}

static bool process_frame(serve_dict *d, serve_ring *r, const saemon_frame *f)
{
    if (f->gap) {
        atomic_fetch_add_explicit(&r->gaps, 1, memory_order_relaxed);
        /* The monitor starts a new sequence when token positions do not
         * follow each other, so windows never span the hole; a frame that
         * continues right after the lost tokens' positions cannot exist. */
    }
    size_t batch = saemon_encoder_max_batch(d->encoder);
    for (size_t first = 0; first < f->n_rows; first += batch) {
        size_t n = f->n_rows - first < batch ? f->n_rows - first : batch;
        const saemon_features *feat;
        saemon_error err = {0};
        double t0 = now_s();
        if (saemon_encoder_encode(d->encoder, f->rows + first * f->d_in, n, &feat, &err) != SAEMON_OK) {
            snprintf(d->failure, sizeof d->failure, "encode failed: %s", err.message);
            return false;
        }
        serve_hist_observe(&d->encode_seconds, now_s() - t0);
        for (size_t t = 0; t < n; t++) {
            size_t lo = feat->offsets[t], hi = feat->offsets[t + 1];
            saemon_token_view v = {
                .stream = f->stream,
                .token = f->token + first + t,
                .index = feat->index + lo,
                .value = feat->value + lo,
                .nnz = hi - lo,
                .input_norm = feat->input_norm[t],
                .input_nonfinite = feat->input_nonfinite[t] != 0,
                .recon_error = feat->recon_error ? feat->recon_error[t] : NAN,
            };
            saemon_monitor_observe(r->monitor, &v, on_alert, r);
        }
        if (d->srv->features)
            write_features(d->srv, r, f, first, feat);
        atomic_fetch_add_explicit(&r->tokens_encoded, n, memory_order_relaxed);
    }
    if (f->end_of_stream) {
        saemon_monitor_end_stream(r->monitor, f->stream, on_alert, r);
        atomic_fetch_add_explicit(&r->streams_ended, 1, memory_order_relaxed);
    }
    return true;
}

/* One pass over the rings: returns frames handled, -1 on a fatal error. */
static int poll_rings(serve_dict *d, int timeout_ms)
{
    int handled = 0;
    for (size_t i = 0; i < d->n_rings; i++) {
        serve_ring *r = &d->rings[i];
        saemon_frame f;
        saemon_error err = {0};
        int got = saemon_ring_next(r->ring, &f, d->n_rings == 1 ? timeout_ms : 0, &err);
        if (got < 0) {
            snprintf(d->failure, sizeof d->failure, "ring %s: %s", r->cfg->name, err.message);
            return -1;
        }
        if (got == 0)
            continue;
        bool ok = process_frame(d, r, &f);
        saemon_ring_release(r->ring);
        if (!ok)
            return -1;
        handled++;
    }
    return handled;
}

void *serve_consumer_main(void *arg)
{
    serve_dict *d = arg;
    serve *srv = d->srv;
    for (;;) {
        apply_pending_rules(d);
        if (atomic_load(&srv->stopping)) {
            /* Drain: whatever the producers had published before the stop. */
            int n;
            while ((n = poll_rings(d, 0)) > 0)
                ;
            if (n < 0)
                break;
            return NULL;
        }
        int n = poll_rings(d, 50);
        if (n < 0)
            break;
        if (n == 0 && d->n_rings > 1) {
            /* several rings: wait on none of them for long */
            struct timespec ts = {0, 200 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&d->failed, true);
    serve_log("error", "dictionary=%s consumer stopped: %s", d->label, d->failure);
    return NULL;
}
