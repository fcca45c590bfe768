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

#include "base/utf8.h"
#include "cli/cli.h"
#include "serve/metrics_http.h"
#include "serve/serve.h"

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

static void usage(FILE *f)
{
    fprintf(f,
            "usage: saemon serve --config SAEMON.yaml [--metrics ADDR:PORT] [sink options]\n"
            "       saemon serve --sae SAE_DIR --rules RULES.yaml --ring NAME [--ring NAME ...]\n"
            "                    [--hook NAME] [--slots N] [--max-rows N] [--metrics ADDR:PORT]\n"
            "                    [--features FILE.jsonl] [sink options] [encoder options]\n"
            "Creates one shared-memory ring per --ring (owner-only, /dev/shm/saemon-ring.NAME),\n"
            "encodes what producers publish there and evaluates the rules per token. Alerts go to\n"
            "the sinks; the highest severity per stream goes back to the producer (verdict).\n"
            "SIGHUP or a change of a rule file reloads the rules (SIGHUP the web config too);\n"
            "SIGTERM/SIGINT drain and stop.\n"
            "  --config FILE        dictionaries, rings, sinks, metrics (docs/serve.md)\n"
            "  --hook NAME          refuse producers that announce another hook (default: any)\n"
            "  --slots N            frames a ring holds, a power of two (default %d)\n"
            "  --max-rows N         rows (tokens) per frame (default %d)\n"
            "  --verdict-entries N  per-ring verdict table, a power of two (default %d; docs/serve.md)\n"
            "  --name LABEL         dictionary label in metrics and logs\n"
            "  --feature-labels F   feature explanations (Neuronpedia JSON) for alerts\n"
            "  --metrics ADDR:PORT  serve /metrics and /healthz (e.g. 127.0.0.1:9464; port 0 = any free)\n"
            "  --web-config FILE    TLS and basic auth for it: a Prometheus exporter web config file\n"
            "  --features FILE      also write every token's features as JSON lines (for checking)\n"
            CLI_PLAN_USAGE
            "  --heartbeat-timeout S  report a producer down after S silent seconds (default %g)\n"
            "  --stream-idle-timeout S  end (resolve, free) a ring's open streams after S seconds\n"
            "                       without a frame (default %g; 0 = never)\n"
            "  --replica NAME       this daemon's name in a fleet: in every alert, its key and labels\n"
            "  --max-streams N      streams with rule state per ring (default %d); more go unmonitored,\n"
            "                       counted, and /healthz answers 503\n" CLI_SINK_USAGE
                CLI_ENCODER_USAGE,
            SERVE_DEFAULT_SLOTS, SERVE_DEFAULT_MAX_ROWS, SERVE_DEFAULT_VERDICT_ENTRIES, SERVE_DEFAULT_HEARTBEAT_S,
            SERVE_DEFAULT_STREAM_IDLE_S, SERVE_DEFAULT_MAX_STREAMS);
}

typedef struct serve_flags {
    const char *config;
    serve_dict_config one; /* flag mode: the one dictionary */
    const char *ring_names[SERVE_MAX_RINGS];
    size_t n_rings;
    uint64_t slots, max_rows, verdict_entries;
    const char *metrics, *web_config, *features, *encode, *replica;
    double heartbeat, stream_idle;
    bool stream_idle_set;
    uint64_t max_streams;
    cli_sink_flags sinks;
    saemon_encoder_options enc;
} serve_flags;

static bool parse_u64(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
    size_t v;
    if (!cli_parse_size(opt, text, &v))
        return false;
    if (v > max) {
        fprintf(stderr, "saemon serve: %s %s is too large (at most %" PRIu64 ")\n", opt, text, max);
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, serve_flags *fl)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"sae", required_argument, 0, 's'},
        {"rules", required_argument, 0, 'r'}, {"ring", required_argument, 0, 'g'},
        {"hook", required_argument, 0, 'k'}, {"slots", required_argument, 0, 'n'},
        {"max-rows", required_argument, 0, 'm'}, {"name", required_argument, 0, 'A'},
        {"verdict-entries", required_argument, 0, 1101}, {"max-streams", required_argument, 0, 1102},
        {"stream-idle-timeout", required_argument, 0, 1103}, {"replica", required_argument, 0, 1104},
        {"feature-labels", required_argument, 0, 'F'}, {"metrics", required_argument, 0, 'x'},
        {"web-config", required_argument, 0, 'w'}, CLI_PLAN_LONG_OPTION,
        {"features", required_argument, 0, 'f'}, {"heartbeat-timeout", required_argument, 0, 'H'},
        CLI_SINK_LONG_OPTIONS, CLI_ENCODER_LONG_OPTIONS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': fl->config = optarg; break;
        case 's': fl->one.sae = optarg; break;
        case 'r': fl->one.rules = optarg; break;
        case 'g':
            if (fl->n_rings == SERVE_MAX_RINGS) {
                fprintf(stderr, "saemon serve: at most %d --ring\n", SERVE_MAX_RINGS);
                return CLI_USAGE;
            }
            fl->ring_names[fl->n_rings++] = optarg;
            break;
        case 'k': fl->one.hook = optarg; break;
        case 'n': if (!parse_u64("--slots", optarg, 1u << 20, &fl->slots)) return CLI_USAGE; break;
        case 'm': if (!parse_u64("--max-rows", optarg, 1u << 16, &fl->max_rows)) return CLI_USAGE; break;
        case 1104: fl->replica = optarg; break;
        case 1102:
            if (!parse_u64("--max-streams", optarg, (uint64_t)1 << 32, &fl->max_streams) || !fl->max_streams) {
                fprintf(stderr, "saemon serve: --max-streams expects 1 to 4294967296\n");
                return CLI_USAGE;
            }
            break;
        case 1103: {
            char *end;
            fl->stream_idle = strtod(optarg, &end);
            if (end == optarg || *end || !(fl->stream_idle >= 0) || fl->stream_idle > 86400.0 * 30) {
                fprintf(stderr, "saemon serve: --stream-idle-timeout expects seconds (0 = never), got '%s'\n",
                        optarg);
                return CLI_USAGE;
            }
            fl->stream_idle_set = true;
            break;
        }
        case 1101:
            if (!parse_u64("--verdict-entries", optarg, 1u << 24, &fl->verdict_entries))
                return CLI_USAGE;
            if (fl->verdict_entries < 16 || (fl->verdict_entries & (fl->verdict_entries - 1))) {
                fprintf(stderr, "saemon serve: --verdict-entries must be a power of two in 16..2^24\n");
                return CLI_USAGE;
            }
            break;
        case 'A': fl->one.name = optarg; break;
        case 'N':
            if (strcmp(optarg, "auto") && strcmp(optarg, "rules") && strcmp(optarg, "all")) {
                fprintf(stderr, "saemon serve: --encode expects auto, rules or all, got '%s'\n", optarg);
                return CLI_USAGE;
            }
            fl->encode = optarg;
            break;
        case 'F': fl->one.feature_labels = optarg; break;
        case 'x': fl->metrics = optarg; break;
        case 'w': fl->web_config = optarg; break;
        case 'f': fl->features = optarg; break;
        case 'H':
            if (!cli_parse_rate(optarg, &fl->heartbeat)) /* a positive number */
                return CLI_USAGE;
            break;
        case 'h': usage(stdout); return -1;
        default: {
            int r = cli_encoder_option(c, optarg, &fl->enc);
            if (r == 0)
                r = cli_sink_option(c, optarg, &fl->sinks);
            if (r == 1)
                break;
            if (r == 0)
                usage(stderr);
            return CLI_USAGE;
        }
        }
    }
    if (optind != argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    bool flag_mode = fl->one.sae || fl->one.rules || fl->n_rings;
    if (fl->config && flag_mode) {
        fprintf(stderr, "saemon serve: give either --config or --sae/--rules/--ring, not both\n");
        return CLI_USAGE;
    }
    if (!fl->config && (!fl->one.sae || !fl->one.rules || !fl->n_rings)) {
        usage(stderr);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Flags -> the same config a file would give. */
static bool config_from_flags(const serve_flags *fl, serve_config *c)
{
    memset(c, 0, sizeof *c);
    serve_dict_config *d = &c->dicts[0];
    c->n_dicts = 1;
    d->name = dup_or_null(fl->one.name);
    d->sae = dup_or_null(fl->one.sae);
    d->rules = dup_or_null(fl->one.rules);
    d->hook = dup_or_null(fl->one.hook);
    d->feature_labels = dup_or_null(fl->one.feature_labels);
    d->threads = fl->enc.threads;
    d->batch = fl->enc.max_batch ? fl->enc.max_batch : SERVE_DEFAULT_BATCH;
    d->n_rings = fl->n_rings;
    for (size_t i = 0; i < fl->n_rings; i++) {
        d->rings[i].name = strdup(fl->ring_names[i]);
        d->rings[i].slots = fl->slots ? (uint32_t)fl->slots : SERVE_DEFAULT_SLOTS;
        d->rings[i].max_rows = fl->max_rows ? (uint32_t)fl->max_rows : SERVE_DEFAULT_MAX_ROWS;
        d->rings[i].verdict_entries = fl->verdict_entries ? (uint32_t)fl->verdict_entries
                                                          : SERVE_DEFAULT_VERDICT_ENTRIES;
        if (!d->rings[i].name)
            return false;
    }
    c->heartbeat_timeout_s = SERVE_DEFAULT_HEARTBEAT_S;
    c->stream_idle_timeout_s = SERVE_DEFAULT_STREAM_IDLE_S;
    c->max_streams = SERVE_DEFAULT_MAX_STREAMS;
    return true;
}

/* Command-line settings override the file's. */
static bool apply_overrides(const serve_flags *fl, serve_config *c)
{
    if (fl->metrics && !(free(c->metrics), c->metrics = strdup(fl->metrics)))
        return false;
    if (fl->web_config && !(free(c->web_config), c->web_config = strdup(fl->web_config)))
        return false;
    if (fl->features && !(free(c->features), c->features = strdup(fl->features)))
        return false;
    if (fl->replica && !(free(c->replica), c->replica = strdup(fl->replica)))
        return false;
    if (fl->heartbeat > 0)
        c->heartbeat_timeout_s = fl->heartbeat;
    if (fl->stream_idle_set)
        c->stream_idle_timeout_s = fl->stream_idle;
    if (fl->max_streams)
        c->max_streams = fl->max_streams;
    if (fl->enc.cpus && !(free(c->cpus), c->cpus = strdup(fl->enc.cpus)))
        return false;
    if (fl->enc.exclude_cpus && !(free(c->exclude_cpus), c->exclude_cpus = strdup(fl->enc.exclude_cpus)))
        return false;
    if (fl->enc.variant && !(free(c->isa), c->isa = strdup(fl->enc.variant)))
        return false;
    if (fl->encode && !(free(c->encode), c->encode = strdup(fl->encode)))
        return false;
    if (fl->sinks.resolved)
        c->resolved = true;
    for (size_t i = 0; i < c->n_dicts; i++) {
        if (fl->enc.threads)
            c->dicts[i].threads = fl->enc.threads;
        if (fl->enc.max_batch)
            c->dicts[i].batch = fl->enc.max_batch;
    }
    return true;
}

static saemon_status load_rules(const serve_dict *d, saemon_ruleset **out, saemon_error *err)
{
    saemon_rules_options ro = {.feature_labels = d->cfg->feature_labels};
    saemon_status s = saemon_rules_open(d->cfg->rules, &ro, out, err);
    if (s == SAEMON_OK && d->info)
        s = saemon_rules_bind(*out, d->info, err);
    if (s != SAEMON_OK) {
        saemon_rules_close(*out);
        *out = NULL;
    }
    return s;
}

static bool open_dict(serve *srv, size_t i)
{
    serve_dict *d = &srv->dicts[i];
    const serve_dict_config *dc = &srv->cfg.dicts[i];
    d->cfg = dc;
    d->srv = srv;
    pthread_mutex_init(&d->alerts_mu, NULL);
    saemon_error err = {0};
    if (load_rules(d, &d->rules, &err) != SAEMON_OK) { /* parsed; bound once the dictionary is open */
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

/* ---- rule reload (main thread) ---- */

typedef struct rule_watch {
    int fd;
} rule_watch;

static void watch_rule_dirs(serve *srv, rule_watch *w)
{
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        serve_log("warning", "cannot watch rule files (%s); reload with SIGHUP", strerror(errno));
        return;
    }
    for (size_t i = 0; i < srv->n_dicts; i++) {
        char dir[PATH_MAX];
        const char *p = srv->dicts[i].cfg->rules, *slash = strrchr(p, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == p ? 1 : slash - p) : 1, slash ? p : ".");
        if (inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) < 0)
            serve_log("warning", "cannot watch %s (%s); reload with SIGHUP", dir, strerror(errno));
    }
}

/* Names of changed files are matched against every rule file's base name. */
static bool rules_changed(serve *srv, rule_watch *w)
{
    if (w->fd < 0)
        return false;
    bool changed = false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(w->fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED))
                changed = true;
            for (size_t i = 0; ev->len && i < srv->n_dicts; i++) {
                const char *path = srv->dicts[i].cfg->rules, *slash = strrchr(path, '/');
                if (strcmp(ev->name, slash ? slash + 1 : path) == 0)
                    changed = true;
            }
            /* A Kubernetes ConfigMap volume updates by renaming a new
             * "..data" symlink into place (the files are symlinks through
             * it), so the rule file's own name never shows up. */
            if (ev->len && (ev->mask & IN_MOVED_TO) && strcmp(ev->name, "..data") == 0)
                changed = true;
            if (ev->mask & IN_IGNORED) /* the directory went away: watch again */
                serve_log("warning", "a rule directory was removed or moved; re-arming the file watch");
            p += sizeof *ev + ev->len;
        }
    }
    return changed;
}

/* Load and bind the new rules here (never on a consumer thread), pack the
 * encoder's new latent set, hand the rules over; the consumer switches its
 * monitors between two frames. One reload per dictionary at a time: a
 * request while one is in flight is served once that one has finished. */
static void reload_dict(serve_dict *d, const char *why)
{
    if (d->reload_in_flight) {
        d->reload_deferred = why;
        return;
    }
    saemon_ruleset *next = NULL;
    saemon_error err = {0};
    saemon_status s = load_rules(d, &next, &err);
    if (s == SAEMON_OK && saemon_rules_needs_reconstruction(next) && !saemon_rules_needs_reconstruction(d->rules)) {
        snprintf(err.message, sizeof err.message,
                 "%s: the new rules use reconstruction_error_above but the encoder was started without "
                 "decoding; restart saemon serve to add reconstruction checks",
                 d->cfg->rules);
        s = SAEMON_ERR_RULES;
    }
    /* new latents: their rows are read here, off the consumer thread */
    if (s == SAEMON_OK && d->plan.mode != SAEMON_ENCODE_ALL && saemon_encoder_is_subset(d->encoder) &&
        !cli_plan_prefetch(d->dict, next, &err))
        s = err.code ? err.code : SAEMON_ERR_IO;
    if (s == SAEMON_OK && !cli_plan_reload(&d->plan, d->encoder, next, &err))
        s = err.code ? err.code : SAEMON_ERR_RULES;
    if (s != SAEMON_OK) {
        atomic_fetch_add(&d->reloads_failed, 1);
        serve_log("error", "dictionary=%s rules not reloaded after %s, keeping the old rules: %s", d->label, why,
                  err.message);
        saemon_rules_close(next);
        return;
    }
    d->reload_in_flight = true;
    atomic_store(&d->reload_result, 0);
    atomic_store(&d->pending, next);
}

static void request_reload(serve *srv, const char *why)
{
    for (size_t i = 0; i < srv->n_dicts; i++)
        reload_dict(&srv->dicts[i], why);
}

/* The consumer's answer to a reload: keep the new latent set or put the old
 * one back; then serve a request that came meanwhile. */
static void finish_reloads(serve *srv)
{
    for (size_t i = 0; i < srv->n_dicts; i++) {
        serve_dict *d = &srv->dicts[i];
        int result = atomic_load(&d->reload_result);
        if (!d->reload_in_flight || result == 0)
            continue;
        cli_plan_commit(&d->plan, result == 1, d->encoder);
        if (result == 1)
            serve_log("info", "dictionary=%s encoder plan: %s", d->label, saemon_encoder_get_plan(d->encoder));
        d->reload_in_flight = false;
        if (d->reload_deferred) {
            const char *why = d->reload_deferred;
            d->reload_deferred = NULL;
            reload_dict(d, why);
        }
    }
}

/* SIGHUP also re-reads the web config (a rotated certificate, changed
 * users), as a Prometheus exporter does; a broken one keeps the old. */
static void reload_web_config(const char *path, metrics_http **http, web_config **web)
{
    saemon_error err = {0};
    web_config *next = NULL;
    if (web_config_load(path, &next, &err) != SAEMON_OK) {
        serve_log("error", "web config not reloaded, keeping the old one: %s", err.message);
        return;
    }
    saemon_status s = metrics_http_restart(http, next, &err);
    if (metrics_http_web_config(*http) == next) {
        web_config_free(*web);
        *web = next;
    } else {
        web_config_free(next);
    }
    if (s != SAEMON_OK)
        serve_log("error", "web config not reloaded: %s", err.message);
    else
        serve_log("info", "web config reloaded from %s: /metrics /healthz over %s%s", path,
                  web_config_tls(next) ? "https" : "http", web_config_basic_auth(next) ? " with basic auth" : "");
}

static void free_retired(serve *srv)
{
    for (size_t i = 0; i < srv->n_dicts; i++)
        saemon_rules_close(atomic_exchange(&srv->dicts[i].retired, NULL));
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

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
    int rc = parse_args(argc, argv, &fl);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    static serve srv; /* large (per-ring counters); one per process */
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.features_mu, NULL);
    srv.started = mono_s();
    saemon_error err = {0};
    if (fl.config) {
        if (serve_config_load(fl.config, &srv.cfg, &err) != SAEMON_OK) {
            fprintf(stderr, "saemon serve: %s\n", err.message);
            return CLI_FAIL;
        }
    } else if (!config_from_flags(&fl, &srv.cfg)) {
        fprintf(stderr, "saemon serve: out of memory\n");
        return CLI_FAIL;
    }
    metrics_http *http = NULL;
    web_config *web = NULL;
    rc = CLI_FAIL;
    if (!apply_overrides(&fl, &srv.cfg) || serve_config_validate(&srv.cfg, &err) != SAEMON_OK) {
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
    rule_watch watch;
    watch_rule_dirs(&srv, &watch);
    sd_notify(0, "READY=1\nSTATUS=watching");
    serve_log("info", "ready: %zu dictionar%s, pid %d", srv.n_dicts, srv.n_dicts == 1 ? "y" : "ies", (int)getpid());
    bool consumer_failed = false;
    while (!stop_signal && !consumer_failed) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        bool hup = hup_signal != 0;
        hup_signal = 0;
        bool changed = rules_changed(&srv, &watch);
        if (hup || changed) {
            sd_notify(0, "RELOADING=1");
            request_reload(&srv, hup ? "SIGHUP" : "a change of a rule file");
            if (hup && http && srv.cfg.web_config)
                reload_web_config(srv.cfg.web_config, &http, &web);
            sd_notify(0, "READY=1");
        }
        free_retired(&srv);
        finish_reloads(&srv);
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
