/* Reloads of a running `saemon serve` (serve_reload.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "serve/serve_reload.h"

saemon_status serve_load_rules(const serve_dict *d, saemon_ruleset **out, saemon_error *err)
{
    saemon_rules_options ro = {.feature_labels = d->cfg->feature_labels};
    saemon_status s = saemon_rules_open(d->cfg->rules, &ro, out, err);
    if (s == SAEMON_OK && d->info)
        s = saemon_rules_bind(*out, d->info, err);
    if (s == SAEMON_OK && d->dict && d->info)
        s = saemon_rules_use_labels(*out, saemon_dict_get_feature_labels(d->dict), d->info->d_sae,
                                    err); /* a pack's labels, unless feature_labels: */
    if (s != SAEMON_OK) {
        saemon_rules_close(*out);
        *out = NULL;
    }
    return s;
}

void serve_watch_rule_dirs(serve *srv, serve_rule_watch *w)
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
bool serve_rules_changed(serve *srv, serve_rule_watch *w)
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
    saemon_status s = serve_load_rules(d, &next, &err);
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

void serve_request_reload(serve *srv, const char *why)
{
    for (size_t i = 0; i < srv->n_dicts; i++)
        reload_dict(&srv->dicts[i], why);
}

/* The consumer's answer to a reload: keep the new latent set or put the old
 * one back; then serve a request that came meanwhile. */
void serve_finish_reloads(serve *srv)
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
void serve_reload_web_config(const char *path, metrics_http **http, web_config **web)
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

void serve_free_retired(serve *srv)
{
    for (size_t i = 0; i < srv->n_dicts; i++)
        saemon_rules_close(atomic_exchange(&srv->dicts[i].retired, NULL));
}

