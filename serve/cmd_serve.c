/* saemon serve --config saemon.yaml
 * saemon serve --sae DIR --rules RULES.yaml --ring NAME [--ring NAME2 ...] [--metrics ADDR:PORT]
 * The sidecar daemon: watches a live model through shared-memory rings. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "cli/cli.h"
#include "serve/metrics_http.h"
#include "serve/serve.h"
#include "serve/serve_args.h"
#include "serve/serve_reload.h"

static volatile sig_atomic_t stop_signal, hup_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void on_hup(int sig)
{
    (void)sig;
    hup_signal = 1;
}

static bool open_dict(serve *srv, size_t i)
{
    serve_dict *d = &srv->dicts[i];
    const serve_dict_config *dc = &srv->cfg.dicts[i];
    d->cfg = dc;
    d->srv = srv;
    pthread_mutex_init(&d->alerts_mu, NULL);
    saemon_error err = {0};
    if (serve_load_rules(d, &d->rules, &err) != SAEMON_OK) { /* parsed; bound once the dictionary is open */
        fprintf(stderr, "saemon serve: %s\n", err.message);
        return false;
    }
    uint32_t max_rows = 0;
    for (size_t r = 0; r < dc->n_rings; r++)
        if (dc->rings[r].max_rows > max_rows)
            max_rows = dc->rings[r].max_rows;
    saemon_encoder_options eo = {
        .variant = srv->cfg.isa,
        .max_batch = dc->batch,
        .threads = dc->threads,
        .cpus = srv->cfg.cpus,
        .exclude_cpus = srv->cfg.exclude_cpus,
    };
    /* Only the latents the rules read, when that is exact (docs/serve.md). */
    const char *mode = srv->cfg.encode ? srv->cfg.encode : "auto";
    if (!cli_parse_encode_mode(mode, &d->plan.mode))
        return false;
    /* plan before load: only the rules' encoder rows are read (docs/formats.md) */
    if (!cli_plan_open_dict(&d->plan, "serve", dc->sae, d->rules, &eo, &d->dict))
        return false;
    d->info = saemon_dict_get_info(d->dict);
    d->label = dc->name ? dc->name : d->info->name;
    if (saemon_encoder_create(d->dict, &eo, &d->encoder, &err) != SAEMON_OK)
        return cli_fail("serve", &err), false;
    cli_encoder_warn(d->encoder);
    uint32_t window = d->plan.needs.capture_window;
    if (d->plan.mode == SAEMON_ENCODE_ALL) { /* the plan did not look at the rules */
        saemon_rules_needs needs;
        saemon_rules_needed_latents(d->rules, NULL, 0, &needs);
        window = needs.capture_window;
    }
    d->capture = (cli_capture){.dict = d->dict, .variant = srv->cfg.isa, .d_in = d->info->d_in};
    if (window && !(d->capture_rows = malloc((size_t)window * d->info->d_in * sizeof(float)))) {
        fprintf(stderr, "saemon serve: out of memory\n");
        return false;
    }
    if (!serve_gather_init(d)) {
        fprintf(stderr, "saemon serve: out of memory\n");
        return false;
    }
    uint32_t ring_gid = 0;
    if (srv->cfg.ring_group) {
        struct group *g = getgrnam(srv->cfg.ring_group);
        if (!g) {
            fprintf(stderr, "saemon serve: ring_group \"%s\": no such group\n", srv->cfg.ring_group);
            return false;
        }
        ring_gid = (uint32_t)g->gr_gid;
    }
    d->n_rings = dc->n_rings;
    for (size_t r = 0; r < dc->n_rings; r++) {
        serve_ring *sr = &d->rings[r];
        sr->cfg = &dc->rings[r];
        sr->dict = d;
        saemon_ring_options ro = {
            .name = sr->cfg->name,
            .slots = sr->cfg->slots,
            .max_rows_per_frame = sr->cfg->max_rows,
            .d_in = (uint32_t)d->info->d_in,
            .hook = dc->hook,
            .verdict_entries = sr->cfg->verdict_entries,
            .mode = srv->cfg.ring_mode,
            .set_group = srv->cfg.ring_group != NULL,
            .gid = ring_gid,
            .evaluated_by_caller = true, /* frames are gathered, released, then evaluated */
        };
        if (saemon_ring_create(&ro, &sr->ring, &err) != SAEMON_OK)
            return cli_fail("serve", &err), false;
        saemon_monitor_options mo = {.resolved = srv->cfg.resolved, .max_streams = (size_t)srv->cfg.max_streams};
        if (saemon_monitor_create(d->rules, d->info, &mo, &sr->monitor, &err) != SAEMON_OK)
            return cli_fail("serve", &err), false;
        if (window) {
            /* the last `window` rows of as many streams as fit 64 MiB a
             * ring (docs/serve.md); a window that alone is larger is cut */
            size_t row_bytes = d->info->d_in * sizeof(float), budget = SERVE_CAPTURE_BYTES;
            uint32_t keep = window;
            if ((size_t)keep * row_bytes > budget) {
                keep = (uint32_t)(budget / row_bytes ? budget / row_bytes : 1);
                serve_log("warning", "dictionary=%s ring=%s capture window of %" PRIu32 " tokens x d_in %zu is over "
                          "%zu MiB: captures see the last %" PRIu32 " tokens", d->label, sr->cfg->name, window,
                          d->info->d_in, budget >> 20, keep);
            }
            size_t max_streams = budget / ((size_t)keep * row_bytes);
            if (max_streams < 1)
                max_streams = 1;
            if (!(sr->history = serve_history_create(d->info->d_in, keep, max_streams))) {
                fprintf(stderr, "saemon serve: out of memory for the capture window\n");
                return false;
            }
            serve_log("info", "dictionary=%s ring=%s capture history: %zu streams x %" PRIu32 " tokens x d_in %zu = "
                      "%.1f MiB", d->label, sr->cfg->name, max_streams, keep, d->info->d_in,
                      (double)max_streams * keep * row_bytes / 1048576.0);
            saemon_monitor_set_capture(sr->monitor, serve_capture_fn, sr);
        }
        serve_log("info",
                  "dictionary=%s ring=%s shm=%s slots=%" PRIu32 " max_rows=%" PRIu32 " verdict_entries=%" PRIu32
                  " d_in=%zu hook=%s",
                  d->label, sr->cfg->name, saemon_ring_shm_name(sr->ring), sr->cfg->slots, sr->cfg->max_rows,
                  sr->cfg->verdict_entries, d->info->d_in, dc->hook ? dc->hook : "(any)");
    }
    serve_log("info", "dictionary=%s sae=%s d_in=%zu d_sae=%zu kernel=%s threads=%zu rules=%s (%zu enabled)",
              d->label, dc->sae, d->info->d_in, d->info->d_sae, saemon_encoder_get_variant(d->encoder),
              saemon_encoder_get_threads(d->encoder), dc->rules, saemon_rules_get_enabled_count(d->rules));
    serve_log("info", "dictionary=%s encode=%s plan: %s%s", d->label, mode, saemon_encoder_get_plan(d->encoder),
              window ? " (capture: the last rows of each stream are kept)" : "");
    return true;
}

/* ---- producer health (main thread) ---- */

static void report_rings(serve *srv)
{
    char q1[1100], q2[600];
    for (size_t i = 0; i < srv->n_dicts; i++)
        for (size_t j = 0; j < srv->dicts[i].n_rings; j++) {
            serve_ring *r = &srv->dicts[i].rings[j];
            if (!r->ring) /* a start that failed before this ring was created */
                continue;
            saemon_ring_stats st;
            saemon_ring_get_stats(r->ring, &st);
            const char *dl = r->dict->label, *rn = r->cfg->name;
            bool detached = st.producer_pid == 0; /* a clean detach clears the pid */
            if (st.producers_accepted != r->logged_accepted && (detached || st.producer_pid == r->logged_pid)) {
                /* accepted and gone (or replaced) between two looks: still say it came */
                serve_log("info", "dictionary=%s ring=%s producer attached (and detached within 0.1 s) model=\"%s\" "
                                  "hook=\"%s\" d_in=%" PRIu32 " dtype=%s",
                          dl, rn, st.model, st.hook, st.d_in, st.dtype);
            }
            r->logged_accepted = st.producers_accepted;
            if (st.producer_state != r->logged_state || st.producer_pid != r->logged_pid) {
                if (detached && r->logged_pid != 0)
                    serve_log("info", "dictionary=%s ring=%s producer pid=%d detached", dl, rn, (int)r->logged_pid);
                else if (st.producer_state == SAEMON_RING_PRODUCER_ACCEPTED && !detached)
                    serve_log("info", "dictionary=%s ring=%s producer attached pid=%d model=%s hook=%s d_in=%" PRIu32 " dtype=%s",
                              dl, rn, (int)st.producer_pid, utf8_logfmt_quote(q1, sizeof q1, st.model),
                              utf8_logfmt_quote(q2, sizeof q2, st.hook), st.d_in, st.dtype);
                else if (st.producer_state == SAEMON_RING_PRODUCER_REFUSED)
                    serve_log("error", "dictionary=%s ring=%s producer refused pid=%d reason=%s", dl, rn,
                              (int)st.producer_pid, utf8_logfmt_quote(q1, sizeof q1, st.refuse_reason));
                r->logged_state = st.producer_state;
                r->logged_pid = st.producer_pid;
                r->logged_down = false; /* a new producer: its own "attached" line says so */
            }
            /* Down: attached (not cleanly detached) but dead or silent. */
            bool down = serve_producer_down(srv, &st);
            if (down != r->logged_down) {
                if (down)
                    serve_log("warning", "dictionary=%s ring=%s producer %s (last heartbeat %.1f s ago)", dl, rn,
                              st.producer_alive ? "stopped heartbeating" : "is gone", st.heartbeat_age_s);
                else
                    serve_log("info", "dictionary=%s ring=%s producer heartbeating again", dl, rn);
                r->logged_down = down;
            }
            if (st.segment_faults != r->logged_faults) {
                serve_log("error",
                          "dictionary=%s ring=%s the shared segment broke under saemon (shrunk by a process that "
                          "can open it, or /dev/shm out of room); recreated it, producers re-attach, every "
                          "stream has a gap segment_faults=%" PRIu64,
                          dl, rn, st.segment_faults);
                r->logged_faults = st.segment_faults;
            }
            uint64_t gaps = atomic_load(&r->gaps);
            if (st.frames_dropped != r->logged_dropped || st.frames_rejected_total != r->logged_rejected ||
                gaps != r->logged_gaps) {
                serve_log("warning",
                          "dictionary=%s ring=%s frames_dropped=%" PRIu64 " tokens_dropped=%" PRIu64
                          " frames_rejected=%" PRIu64 " stream_gaps=%" PRIu64,
                          dl, rn, st.frames_dropped, st.tokens_dropped, st.frames_rejected_total, gaps);
                r->logged_dropped = st.frames_dropped;
                r->logged_rejected = st.frames_rejected_total;
                r->logged_gaps = gaps;
            }
        }
}

/* --features: a regular file appended to. O_NONBLOCK: a FIFO without a
 * reader (or a tty) must not block the start; anything but a regular file is
 * refused, as for every other file saemon reads or writes. */
static FILE *open_features(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0 && errno == ENXIO) /* a FIFO with no reader */
        errno = EINVAL;
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        errno = EINVAL;
    }
    if (fd < 0) {
        fprintf(stderr, "saemon serve: cannot write --features %s: %s\n", path,
                errno == EINVAL ? "not a regular file" : strerror(errno));
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "a");
    if (!f) {
        fprintf(stderr, "saemon serve: cannot write --features %s: %s\n", path, strerror(errno));
        close(fd);
    }
    return f;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void close_all(serve *srv, metrics_http *http)
{
    atomic_store(&srv->stopping, true);
    for (size_t i = 0; i < srv->n_dicts; i++)
        if (srv->dicts[i].thread_started)
            pthread_join(srv->dicts[i].thread, NULL);
    metrics_http_stop(http);
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        for (size_t r = 0; r < d->n_rings; r++) {
            saemon_monitor_destroy(d->rings[r].monitor);
            request_map_free(&d->rings[r].requests);
            saemon_ring_destroy(d->rings[r].ring);
        }
        serve_gather_free(d);
        for (size_t r = 0; r < d->n_rings; r++)
            serve_history_destroy(d->rings[r].history);
        cli_capture_close(&d->capture);
        free(d->capture_rows);
        cli_plan_free(&d->plan);
        saemon_encoder_destroy(d->encoder);
        saemon_rules_close(d->rules);
        saemon_rules_close(atomic_exchange(&d->pending, NULL));
        saemon_rules_close(atomic_exchange(&d->retired, NULL));
        saemon_dict_close(d->dict);
        for (size_t a = 0; a < d->n_alerts; a++) {
            free(d->alerts[a].rule);
            free(d->alerts[a].severity);
            free(d->alerts[a].status);
        }
        free(d->alerts);
        if (d->cfg)
            pthread_mutex_destroy(&d->alerts_mu);
    }
    if (srv->features)
        fclose(srv->features);
    pthread_mutex_destroy(&srv->features_mu);
}

static void print_summary(serve *srv)
{
    for (size_t i = 0; i < srv->n_dicts; i++)
        for (size_t j = 0; j < srv->dicts[i].n_rings; j++) {
            serve_ring *r = &srv->dicts[i].rings[j];
            if (!r->ring)
                continue;
            saemon_ring_stats st;
            saemon_ring_get_stats(r->ring, &st);
            serve_log("info",
                      "dictionary=%s ring=%s tokens_received=%" PRIu64 " tokens_produced=%" PRIu64
                      " tokens_encoded=%" PRIu64 " frames_dropped=%" PRIu64 " frames_rejected=%" PRIu64
                      " stream_gaps=%" PRIu64 " streams_ended=%" PRIu64,
                      srv->dicts[i].label, r->cfg->name, st.tokens_received, st.tokens_produced,
                      atomic_load(&r->tokens_encoded), st.frames_dropped, st.frames_rejected_total,
                      atomic_load(&r->gaps), atomic_load(&r->streams_ended));
        }
}

int cmd_serve(int argc, char **argv)
{
    serve_flags fl = {0};
    int rc = serve_parse_args(argc, argv, &fl);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    static serve srv; /* large (per-ring counters); one per process */
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.features_mu, NULL);
    srv.started = clock_now_s();
    saemon_error err = {0};
    if (fl.config) {
        if (serve_config_load(fl.config, &srv.cfg, &err) != SAEMON_OK) {
            fprintf(stderr, "saemon serve: %s\n", err.message);
            return CLI_FAIL;
        }
    } else if (!serve_config_from_flags(&fl, &srv.cfg)) {
        fprintf(stderr, "saemon serve: out of memory\n");
        return CLI_FAIL;
    }
    metrics_http *http = NULL;
    web_config *web = NULL;
    rc = CLI_FAIL;
    if (!serve_apply_overrides(&fl, &srv.cfg) || serve_config_validate(&srv.cfg, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon serve: %s\n", err.message[0] ? err.message : "out of memory");
        goto out;
    }
    install_signals();
    srv.n_dicts = srv.cfg.n_dicts;
    for (size_t i = 0; i < srv.n_dicts; i++)
        if (!open_dict(&srv, i))
            goto out;
    if (srv.cfg.features && !(srv.features = open_features(srv.cfg.features)))
        goto out;
    cli_sink_flags sf = fl.sinks;
    if (!sf.sinks_file)
        sf.sinks_file = srv.cfg.sinks;
    if (!sf.alerts)
        sf.alerts = srv.cfg.alerts;
    /* Idempotency keys: one run id per daemon start, so a restarted model
     * reusing stream ids is not mistaken for a replay; spooled alerts keep
     * the keys they were spooled with (--run-id overrides). */
    char run_id[96];
    snprintf(run_id, sizeof run_id, "serve-%ld-%d", (long)time(NULL), (int)getpid());
    if (!(srv.sinks = cli_sinks_open("serve", &sf, run_id)))
        goto out;
    if (srv.cfg.web_config && !srv.cfg.metrics) {
        fprintf(stderr, "saemon serve: a web config (TLS, basic auth) needs --metrics or 'metrics:'\n");
        goto out;
    }
    if (srv.cfg.web_config && web_config_load(srv.cfg.web_config, &web, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon serve: %s\n", err.message);
        goto out;
    }
    if (srv.cfg.metrics) {
        metrics_http_callbacks cb = {.render = serve_metrics_render, .healthy = serve_healthy, .user = &srv};
        if (metrics_http_start(srv.cfg.metrics, &cb, web, &http, &err) != SAEMON_OK) {
            fprintf(stderr, "saemon serve: %s\n", err.message);
            goto out;
        }
        serve_log("info", "metrics listening on %s (port %u): /metrics /healthz over %s%s", srv.cfg.metrics,
                  metrics_http_port(http), web_config_tls(web) ? "https" : "http",
                  web_config_basic_auth(web) ? " with basic auth" : "");
    }
    for (size_t i = 0; i < srv.n_dicts; i++) {
        if (pthread_create(&srv.dicts[i].thread, NULL, serve_consumer_main, &srv.dicts[i]) != 0) {
            fprintf(stderr, "saemon serve: cannot start a consumer thread\n");
            goto out;
        }
        srv.dicts[i].thread_started = true;
    }
    serve_rule_watch watch;
    serve_watch_rule_dirs(&srv, &watch);
    sd_notify(0, "READY=1\nSTATUS=watching");
    serve_log("info", "ready: %zu dictionar%s, pid %d", srv.n_dicts, srv.n_dicts == 1 ? "y" : "ies", (int)getpid());
    bool consumer_failed = false;
    while (!stop_signal && !consumer_failed) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        bool hup = hup_signal != 0;
        hup_signal = 0;
        bool changed = serve_rules_changed(&srv, &watch);
        if (hup || changed) {
            sd_notify(0, "RELOADING=1");
            serve_request_reload(&srv, hup ? "SIGHUP" : "a change of a rule file");
            if (hup && http && srv.cfg.web_config)
                serve_reload_web_config(srv.cfg.web_config, &http, &web);
            sd_notify(0, "READY=1");
        }
        serve_free_retired(&srv);
        serve_finish_reloads(&srv);
        report_rings(&srv);
        for (size_t i = 0; i < srv.n_dicts; i++)
            consumer_failed |= atomic_load(&srv.dicts[i].failed);
    }
    if (watch.fd >= 0)
        close(watch.fd);
    sd_notify(0, "STOPPING=1");
    if (stop_signal)
        serve_log("info", "%s: draining the rings and the sinks, then stopping",
                  stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    rc = consumer_failed ? CLI_FAIL : CLI_OK;
out:
    atomic_store(&srv.stopping, true);
    for (size_t i = 0; i < srv.n_dicts; i++)
        if (srv.dicts[i].thread_started) {
            pthread_join(srv.dicts[i].thread, NULL);
            srv.dicts[i].thread_started = false;
        }
    report_rings(&srv);
    metrics_http_stop(http); /* it reads the sinks' counters */
    http = NULL;
    web_config_free(web);
    web = NULL;
    if (srv.sinks) {
        uint64_t n_alerts = 0;
        saemon_sinks *closing = srv.sinks;
        int sink_rc = cli_sinks_close("serve", closing, &n_alerts);
        if (sink_rc != CLI_OK && rc == CLI_OK)
            rc = sink_rc; /* 1: alerts lost, 3: deliveries failed for good */
        srv.sinks = NULL;
    }
    print_summary(&srv);
    close_all(&srv, http);
    serve_config_free(&srv.cfg);
    return rc;
}
