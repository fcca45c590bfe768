/* /metrics and /healthz of `saemon serve` (Prometheus text format). Runs on
 * the HTTP thread: reads atomics, ring snapshots and sink counters only. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "serve/serve.h"

const double serve_hist_le[SERVE_HIST_BUCKETS] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4,
                                                  2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
                                                  5e-2, 0.1, 0.25, 0.5, 1.0};

void serve_hist_observe(serve_hist *h, double seconds)
{
    size_t i = 0;
    while (i < SERVE_HIST_BUCKETS && seconds > serve_hist_le[i])
        i++;
    if (i < SERVE_HIST_BUCKETS)
        atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void serve_count_alert(serve_dict *d, const saemon_alert *a)
{
    const char *status = a->status ? a->status : "firing";
    const char *sev = a->severity ? a->severity : "";
    pthread_mutex_lock(&d->alerts_mu);
    for (size_t i = 0; i < d->n_alerts; i++) {
        serve_alert_count *c = &d->alerts[i];
        if (!strcmp(c->rule, a->rule) && !strcmp(c->severity, sev) && !strcmp(c->status, status)) {
            c->n++;
            pthread_mutex_unlock(&d->alerts_mu);
            return;
        }
    }
    if (d->n_alerts == d->cap_alerts) {
        size_t cap = d->cap_alerts ? 2 * d->cap_alerts : 16;
        serve_alert_count *g = realloc(d->alerts, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&d->alerts_mu);
            return;
        }
        d->alerts = g;
        d->cap_alerts = cap;
    }
    serve_alert_count c = {.rule = strdup(a->rule), .severity = strdup(sev), .status = strdup(status), .n = 1};
    if (c.rule && c.severity && c.status)
        d->alerts[d->n_alerts++] = c;
    else {
        free(c.rule);
        free(c.severity);
        free(c.status);
    }
    pthread_mutex_unlock(&d->alerts_mu);
}

void serve_log(const char *level, const char *fmt, ...)
{
    char when[32];
    clock_utc_stamp(when);
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line per event, logfmt: ts=… level=… then the message's own
     * key=value pairs and text. Newlines and every other control character
     * are folded (values from outside are quoted with utf8_logfmt_quote). */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    fprintf(stderr, "ts=%s level=%s component=serve %s\n", when, level, msg);
}

#define LABELS(...) ((prom_label[]){__VA_ARGS__}), (sizeof((prom_label[]){__VA_ARGS__}) / sizeof(prom_label))

static uint64_t ld(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

typedef struct ring_view {
    serve_ring *r;
    saemon_ring_stats st;
} ring_view;

static void render_rings(prom_text *t, serve *srv)
{
    /* One snapshot per ring, used by every family below. */
    ring_view v[SERVE_MAX_DICTS * SERVE_MAX_RINGS];
    size_t n = 0;
    for (size_t i = 0; i < srv->n_dicts; i++)
        for (size_t j = 0; j < srv->dicts[i].n_rings; j++) {
            v[n].r = &srv->dicts[i].rings[j];
            saemon_ring_get_stats(v[n].r->ring, &v[n].st);
            n++;
        }
#define EACH_RING for (size_t k = 0; k < n; k++)
#define RL {"dictionary", v[k].r->dict->label}, {"ring", v[k].r->cfg->name}
    prom_family(t, "saemon_tokens_received_total", "counter", "Tokens (rows) read from the ring.");
    EACH_RING prom_sample_u64(t, "saemon_tokens_received_total", LABELS(RL), v[k].st.tokens_received);
    prom_family(t, "saemon_tokens_produced_total", "counter",
                "Tokens the producer says it produced (published + dropped).");
    EACH_RING prom_sample_u64(t, "saemon_tokens_produced_total", LABELS(RL), v[k].st.tokens_produced);
    prom_family(t, "saemon_tokens_encoded_total", "counter", "Tokens encoded and evaluated by the rules.");
    EACH_RING prom_sample_u64(t, "saemon_tokens_encoded_total", LABELS(RL), ld(&v[k].r->tokens_encoded));
    prom_family(t, "saemon_frames_dropped_total", "counter", "Frames the producer dropped (ring full).");
    EACH_RING prom_sample_u64(t, "saemon_frames_dropped_total", LABELS(RL), v[k].st.frames_dropped);
    prom_family(t, "saemon_tokens_dropped_total", "counter", "Tokens in frames the producer dropped.");
    EACH_RING prom_sample_u64(t, "saemon_tokens_dropped_total", LABELS(RL), v[k].st.tokens_dropped);
    prom_family(t, "saemon_frames_rejected_total", "counter", "Malformed frames rejected, by reason.");
    EACH_RING for (int why = 0; why < SAEMON_RING_REJECT_COUNT; why++)
        prom_sample_u64(t, "saemon_frames_rejected_total",
                        LABELS(RL, {"reason", saemon_ring_reject_name((saemon_ring_reject)why)}),
                        v[k].st.frames_rejected[why]);
    prom_family(t, "saemon_tokens_lost_total", "counter",
                "Tokens that never reached the rules, by reason: ring_full (dropped by the producer), "
                "consumer_down (dropped or left unconsumed while no saemon served the ring; the producer's "
                "own count, carried across restarts).");
    EACH_RING {
        prom_sample_u64(t, "saemon_tokens_lost_total", LABELS(RL, {"reason", "ring_full"}), v[k].st.tokens_dropped);
        prom_sample_u64(t, "saemon_tokens_lost_total", LABELS(RL, {"reason", "consumer_down"}),
                        v[k].st.tokens_lost_consumer_down);
    }
    prom_family(t, "saemon_producer_refused_total", "counter",
                "Producer announcements refused (hook or d_in not the dictionary's).");
    EACH_RING prom_sample_u64(t, "saemon_producer_refused_total", LABELS(RL), v[k].st.producers_refused);
    prom_family(t, "saemon_ring_segment_faults_total", "counter",
                "Times the ring's shared segment broke under saemon (shrunk by a process that can open it, or "
                "/dev/shm out of room) and was recreated.");
    EACH_RING prom_sample_u64(t, "saemon_ring_segment_faults_total", LABELS(RL), v[k].st.segment_faults);
    prom_family(t, "saemon_ring_gap_table_resets_total", "counter",
                "Times the ring's table of streams with pending gaps was full and forgotten.");
    EACH_RING prom_sample_u64(t, "saemon_ring_gap_table_resets_total", LABELS(RL), v[k].st.gap_table_resets);
    prom_family(t, "saemon_stream_gaps_total", "counter", "Frames that followed lost tokens of their stream.");
    EACH_RING prom_sample_u64(t, "saemon_stream_gaps_total", LABELS(RL), ld(&v[k].r->gaps));
    prom_family(t, "saemon_streams_ended_total", "counter", "Streams the producer closed.");
    EACH_RING prom_sample_u64(t, "saemon_streams_ended_total", LABELS(RL), ld(&v[k].r->streams_ended));
    prom_family(t, "saemon_producer_lag_tokens", "gauge", "Tokens published but not yet encoded.");
    EACH_RING prom_sample_u64(t, "saemon_producer_lag_tokens", LABELS(RL), v[k].st.lag_tokens);
    prom_family(t, "saemon_producer_lag_frames", "gauge", "Producer sequence minus consumed sequence.");
    EACH_RING prom_sample_u64(t, "saemon_producer_lag_frames", LABELS(RL),
                              v[k].st.producer_seq - v[k].st.consumer_seq);
    prom_family(t, "saemon_last_frame_age_seconds", "gauge", "Seconds since the last frame (-1: none yet).");
    EACH_RING prom_sample(t, "saemon_last_frame_age_seconds", LABELS(RL), v[k].st.last_frame_age_s);
    prom_family(t, "saemon_producer_heartbeat_age_seconds", "gauge",
                "Seconds since the producer's last heartbeat (-1: never).");
    EACH_RING prom_sample(t, "saemon_producer_heartbeat_age_seconds", LABELS(RL), v[k].st.heartbeat_age_s);
    prom_family(t, "saemon_producer_up", "gauge",
                "1 when an accepted producer is attached and heartbeating within heartbeat_timeout "
                "(0 also when none is attached: alert on saemon_producer_down).");
    EACH_RING {
        bool up = v[k].st.producer_alive && v[k].st.producer_state == SAEMON_RING_PRODUCER_ACCEPTED &&
                  v[k].st.heartbeat_age_s >= 0 && v[k].st.heartbeat_age_s <= srv->cfg.heartbeat_timeout_s;
        prom_sample_u64(t, "saemon_producer_up", LABELS(RL), up);
    }
    prom_family(t, "saemon_producer_down", "gauge",
                "1 when an accepted producer that did not detach cleanly is gone or its library heartbeat "
                "is older than heartbeat_timeout (an idle model, a clean detach or no producer yet is 0).");
    EACH_RING prom_sample_u64(t, "saemon_producer_down", LABELS(RL), serve_producer_down(srv, &v[k].st));
    prom_family(t, "saemon_verdicts_evicted_total", "counter",
                "Verdicts lost because their stream's window of the verdict table was full, by the severity "
                "lost (a block is never displaced; a block counted here found its window full of blocks).");
    EACH_RING for (int lvl = 1; lvl <= SAEMON_VERDICT_BLOCK; lvl++)
        prom_sample_u64(t, "saemon_verdicts_evicted_total",
                        LABELS(RL, {"severity", saemon_verdict_name((saemon_verdict)lvl)}),
                        v[k].st.verdicts_evicted[lvl]);
    prom_family(t, "saemon_verdict_table_entries", "gauge", "Size of the ring's verdict table (verdict_entries).");
    EACH_RING prom_sample_u64(t, "saemon_verdict_table_entries", LABELS(RL), v[k].st.verdict_entries);
    prom_family(t, "saemon_streams_open", "gauge", "Streams with rule state (started, not ended yet).");
    EACH_RING prom_sample_u64(t, "saemon_streams_open", LABELS(RL), ld(&v[k].r->streams_open));
    prom_family(t, "saemon_streams_unmonitored_total", "counter",
                "Sequences that arrived while max_streams streams were open: not evaluated.");
    EACH_RING prom_sample_u64(t, "saemon_streams_unmonitored_total", LABELS(RL), ld(&v[k].r->unmonitored));
    prom_family(t, "saemon_streams_idle_ended_total", "counter",
                "Open streams ended because the ring saw no frame for stream_idle_timeout.");
    EACH_RING prom_sample_u64(t, "saemon_streams_idle_ended_total", LABELS(RL), ld(&v[k].r->streams_idle_ended));
    prom_family(t, "saemon_request_ids_total", "counter",
                "Request id frames received (a stream tagged with the engine's request id).");
    EACH_RING prom_sample_u64(t, "saemon_request_ids_total", LABELS(RL), ld(&v[k].r->request_ids));
    prom_family(t, "saemon_request_ids_untracked_total", "counter",
                "Request ids not kept because 65536 tagged streams were open: their alerts lack the id.");
    EACH_RING prom_sample_u64(t, "saemon_request_ids_untracked_total", LABELS(RL),
                              ld(&v[k].r->request_ids_untracked));
    prom_family(t, "saemon_producer_info", "gauge", "The producer's announcement (value 1).");
    EACH_RING if (v[k].st.producer_state != SAEMON_RING_PRODUCER_NONE)
        prom_sample_u64(t, "saemon_producer_info",
                        LABELS(RL, {"model", v[k].st.model}, {"hook", v[k].st.hook}, {"dtype", v[k].st.dtype},
                               {"state", v[k].st.producer_state == SAEMON_RING_PRODUCER_ACCEPTED ? "accepted"
                                                                                                 : "refused"}),
                        1);
    prom_family(t, "saemon_verdicts_total", "counter", "Verdicts raised for streams, by level.");
    EACH_RING for (int lvl = 1; lvl <= SAEMON_VERDICT_BLOCK; lvl++)
        prom_sample_u64(t, "saemon_verdicts_total", LABELS(RL, {"verdict", saemon_verdict_name((saemon_verdict)lvl)}),
                        ld(&v[k].r->verdicts[lvl]));
#undef EACH_RING
#undef RL
}

static void render_dicts(prom_text *t, serve *srv)
{
    prom_family(t, "saemon_encode_seconds", "histogram", "Time to encode one batch of a frame.");
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        uint64_t cum[SERVE_HIST_BUCKETS], acc = 0;
        for (size_t b = 0; b < SERVE_HIST_BUCKETS; b++)
            cum[b] = acc += ld(&d->encode_seconds.bucket[b]);
        prom_histogram(t, "saemon_encode_seconds", LABELS({"dictionary", d->label}), serve_hist_le, cum,
                       SERVE_HIST_BUCKETS, ld(&d->encode_seconds.count),
                       (double)ld(&d->encode_seconds.sum_ns) * 1e-9);
    }
    prom_family(t, "saemon_consumer_cpu_seconds_total", "counter",
                "CPU time of the dictionary's consumer thread (waiting, encoding, rules).");
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        struct timespec ts;
        if (atomic_load(&d->cpu_clock_ok) && clock_gettime(d->cpu_clock, &ts) == 0)
            prom_sample(t, "saemon_consumer_cpu_seconds_total", LABELS({"dictionary", d->label}),
                        (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
    }
    prom_family(t, "saemon_consumer_idle_cpu_seconds_total", "counter",
                "CPU time the consumer thread spent waiting for frames (polling a ring in use, "
                "sleeping on an idle one).");
    for (size_t i = 0; i < srv->n_dicts; i++)
        prom_sample(t, "saemon_consumer_idle_cpu_seconds_total", LABELS({"dictionary", srv->dicts[i].label}),
                    (double)ld(&srv->dicts[i].idle_cpu_ns) * 1e-9);
    prom_family(t, "saemon_consumer_idle_waits_total", "counter", "Times the consumer thread found no frame and waited.");
    for (size_t i = 0; i < srv->n_dicts; i++)
        prom_sample_u64(t, "saemon_consumer_idle_waits_total", LABELS({"dictionary", srv->dicts[i].label}),
                        ld(&srv->dicts[i].idle_waits));
    prom_family(t, "saemon_alerts_total", "counter", "Alerts raised, by rule, severity and status.");
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        pthread_mutex_lock(&d->alerts_mu);
        for (size_t a = 0; a < d->n_alerts; a++)
            prom_sample_u64(t, "saemon_alerts_total",
                            LABELS({"dictionary", d->label}, {"rule", d->alerts[a].rule},
                                   {"severity", d->alerts[a].severity}, {"status", d->alerts[a].status}),
                            d->alerts[a].n);
        pthread_mutex_unlock(&d->alerts_mu);
    }
    prom_family(t, "saemon_rules_reload_total", "counter", "Rule reloads, by result.");
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        prom_sample_u64(t, "saemon_rules_reload_total", LABELS({"dictionary", d->label}, {"result", "success"}),
                        ld(&d->reloads_ok));
        prom_sample_u64(t, "saemon_rules_reload_total", LABELS({"dictionary", d->label}, {"result", "failure"}),
                        ld(&d->reloads_failed));
    }
    prom_family(t, "saemon_dictionary_info", "gauge", "The dictionaries watched (value 1).");
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        char d_sae[32];
        snprintf(d_sae, sizeof d_sae, "%zu", d->info->d_sae);
        prom_sample_u64(t, "saemon_dictionary_info",
                        LABELS({"dictionary", d->label}, {"d_sae", d_sae},
                               {"kernel", saemon_encoder_get_variant(d->encoder)}),
                        1);
    }
    prom_family(t, "saemon_dictionary_bytes", "gauge",
                "Bytes of the dictionary's weights held: resident (read into memory) or mapped (a shared file "
                "mapping, packs).");
    for (size_t i = 0; i < srv->n_dicts; i++) {
        saemon_dict_load_stats ls;
        saemon_dict_get_load_stats(srv->dicts[i].dict, &ls);
        prom_sample_u64(t, "saemon_dictionary_bytes", LABELS({"dictionary", srv->dicts[i].label}, {"kind", "resident"}),
                        ls.resident_bytes);
        prom_sample_u64(t, "saemon_dictionary_bytes", LABELS({"dictionary", srv->dicts[i].label}, {"kind", "mapped"}),
                        ls.mapped_bytes);
    }
}

static void render_sinks(prom_text *t, serve *srv)
{
    size_t n = saemon_sinks_get_count(srv->sinks);
    saemon_sink_stats st[64];
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++)
        saemon_sinks_get_stats(srv->sinks, i, &st[i]);
    static const struct {
        const char *name, *help;
        size_t off;
    } fam[] = {
        {"saemon_sink_received_total", "Alerts offered to the sink.", offsetof(saemon_sink_stats, received)},
        {"saemon_sink_delivered_total", "Alerts delivered.", offsetof(saemon_sink_stats, delivered)},
        {"saemon_sink_retried_total", "Delivery retries.", offsetof(saemon_sink_stats, retried)},
        {"saemon_sink_dropped_total", "Alerts dropped (queue full).", offsetof(saemon_sink_stats, dropped)},
        {"saemon_sink_failed_total", "Alerts refused or given up.", offsetof(saemon_sink_stats, failed)},
        {"saemon_sink_spool_errors_total", "Spool writes that failed (the alert stayed in memory).",
         offsetof(saemon_sink_stats, spool_errors)},
        {"saemon_sink_quarantined_total", "Malformed spool entries set aside as *.bad.",
         offsetof(saemon_sink_stats, quarantined)},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        prom_family(t, fam[f].name, "counter", fam[f].help);
        for (size_t i = 0; i < n; i++)
            prom_sample_u64(t, fam[f].name, LABELS({"sink", st[i].name}, {"kind", st[i].kind}),
                            *(const uint64_t *)((const char *)&st[i] + fam[f].off));
    }
    prom_family(t, "saemon_sink_spooled", "gauge", "Alerts waiting in the on-disk spool.");
    for (size_t i = 0; i < n; i++)
        prom_sample_u64(t, "saemon_sink_spooled", LABELS({"sink", st[i].name}, {"kind", st[i].kind}), st[i].spooled);
    prom_family(t, "saemon_sink_queued_bytes", "gauge", "Bytes of alerts queued in memory for the sink.");
    for (size_t i = 0; i < n; i++)
        prom_sample_u64(t, "saemon_sink_queued_bytes", LABELS({"sink", st[i].name}, {"kind", st[i].kind}),
                        st[i].queued_bytes);
    prom_family(t, "saemon_sink_queue_depth", "gauge", "Alerts queued for the sink, not yet handled.");
    for (size_t i = 0; i < n; i++) {
        uint64_t done = st[i].delivered + st[i].dropped + st[i].failed;
        prom_sample_u64(t, "saemon_sink_queue_depth", LABELS({"sink", st[i].name}, {"kind", st[i].kind}),
                        st[i].received > done ? st[i].received - done : 0);
    }
}

void serve_metrics_render(void *arg, prom_text *t)
{
    serve *srv = arg;
    prom_family(t, "saemon_build_info", "gauge", "saemon version (value 1).");
    prom_sample_u64(t, "saemon_build_info", LABELS({"version", SAEMON_VERSION}), 1);
    prom_family(t, "saemon_up_seconds", "gauge", "Seconds since the daemon started.");
    prom_sample(t, "saemon_up_seconds", NULL, 0, clock_now_s() - srv->started);
    render_rings(t, srv);
    render_dicts(t, srv);
    render_sinks(t, srv);
}

/* A consumer that has frames waiting and has not moved for this long is stuck. */
#define SERVE_STUCK_S 30.0

/* /healthz stays 503 this long after a stream last went unmonitored. */
#define SERVE_UNMONITORED_HOLD_NS 10000000000ull

bool serve_producer_down(const serve *srv, const saemon_ring_stats *st)
{
    bool detached = st->producer_pid == 0; /* a clean detach clears the pid */
    return st->producer_state == SAEMON_RING_PRODUCER_ACCEPTED && !detached &&
           (!st->producer_alive || st->heartbeat_age_s > srv->cfg.heartbeat_timeout_s);
}

bool serve_healthy(void *arg, char *why, size_t len)
{
    serve *srv = arg;
    uint64_t now_ns = clock_now_ns();
    for (size_t i = 0; i < srv->n_dicts; i++)
        for (size_t j = 0; j < srv->dicts[i].n_rings; j++) {
            serve_ring *r = &srv->dicts[i].rings[j];
            uint64_t at = atomic_load(&r->unmonitored_ns);
            if (at && now_ns - at < SERVE_UNMONITORED_HOLD_NS) {
                snprintf(why, len, "dictionary %s ring %s: streams are going unmonitored (max_streams %llu open; "
                                   "%llu sequences not evaluated so far)",
                         srv->dicts[i].label, r->cfg->name, (unsigned long long)srv->cfg.max_streams,
                         (unsigned long long)atomic_load(&r->unmonitored));
                return false;
            }
        }
    for (size_t i = 0; i < srv->n_dicts; i++)
        if (atomic_load(&srv->dicts[i].failed)) {
            snprintf(why, len, "dictionary %s: %s", srv->dicts[i].label, srv->dicts[i].failure);
            return false;
        }
    for (size_t i = 0; i < srv->n_dicts; i++)
        for (size_t j = 0; j < srv->dicts[i].n_rings; j++) {
            serve_ring *r = &srv->dicts[i].rings[j];
            if (!r->ring)
                continue;
            saemon_ring_stats st;
            saemon_ring_get_stats(r->ring, &st);
            if (st.dead) {
                snprintf(why, len, "ring %s is dead: %.180s", r->cfg->name, st.dead_reason);
                return false;
            }
            uint64_t waiting = st.producer_seq > st.consumer_seq ? st.producer_seq - st.consumer_seq : 0;
            double still = st.consumer_progress_age_s >= 0 ? st.consumer_progress_age_s : clock_now_s() - srv->started;
            if (waiting && still > SERVE_STUCK_S) {
                snprintf(why, len, "ring %s: the consumer is stuck (%" PRIu64 " frames waiting, no progress for %.0f s)",
                         r->cfg->name, waiting, still);
                return false;
            }
        }
    return true;
}
