/* Live operation of `run` and `demo`: SIGINT/SIGTERM stop the run cleanly,
 * SIGHUP or a change of the rule file reloads the rules, --rate paces the
 * input. Everything happens between batches, never inside one. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

bool cli_live_stopping(void)
{
    return stop_requested != 0;
}

/* "2025-01-31T12:34:56.789Z saemon run: " */
static void log_prefix(const char *what)
{
    char when[32];
    clock_utc_stamp(when);
    fprintf(stderr, "%s saemon %s: ", when, what);
}

/* IN_DELETE_SELF / IN_MOVE_SELF: the directory itself went away (the
 * watch is then dropped: IN_IGNORED) and has to be re-armed. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

/* Watch the directory, not the file: an editor that writes a new file and
 * renames it over the old one replaces the inode a file watch would follow. */
static void watch_rules(cli_live *l)
{
    l->inotify_fd = -1;
    const char *slash = strrchr(l->rules_path, '/');
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == l->rules_path ? 1 : slash - l->rules_path), l->rules_path);
    l->base = slash ? slash + 1 : l->rules_path;
    l->watch_dir = strdup(dir);
    l->watch_lost = false;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || !l->watch_dir || inotify_add_watch(fd, dir, WATCH_MASK) < 0) {
        fprintf(stderr, "saemon %s: warning: cannot watch %s for changes (%s); reload with SIGHUP\n", l->what, dir,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    l->inotify_fd = fd;
}

void cli_live_start(cli_live *l)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    l->inotify_fd = -1;
    if (l->rules_path)
        watch_rules(l);
    l->t0 = clock_now_s();
}

/* True when an event named the rule file (or events were lost). */
static bool rules_file_changed(cli_live *l)
{
    if (l->inotify_fd < 0)
        return false;
    bool changed = false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(l->inotify_fd, buf, sizeof buf);
        if (n <= 0)
            return changed; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, l->base) == 0))
                changed = true;
            if ((ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) && !l->watch_lost) {
                l->watch_lost = true;
                l->next_rearm = 0;
                log_prefix(l->what);
                fprintf(stderr, "file watching stopped: %s was deleted or moved; watching again once it is back "
                                "(SIGHUP reloads meanwhile)\n", l->watch_dir);
            }
            p += sizeof *ev + ev->len;
        }
    }
}

/* One reload being parsed on its own thread. */
typedef struct cli_reload_job {
    pthread_t thread;
    atomic_bool done;
    const char *why;
    saemon_reload_options policy;
    const char *path;
    saemon_dict *prefetch; /* read the new rules' encoder rows into it here, off the encoding thread */
    saemon_ruleset *next; /* the result, NULL on failure (err says why) */
    saemon_status status;
    saemon_error err;
} cli_reload_job;

static void *parse_rules(void *arg)
{
    cli_reload_job *j = arg;
    j->status = saemon_rules_open_for_reload(j->path, &j->policy, &j->next, &j->err);
    if (j->status == SAEMON_OK && !cli_plan_prefetch(j->prefetch, j->next, &j->err))
        j->status = j->err.code ? j->err.code : SAEMON_ERR_IO;
    if (j->status == SAEMON_OK && j->prefetch)
        j->status = saemon_rules_use_labels(j->next, saemon_dict_get_feature_labels(j->prefetch),
                                            saemon_dict_get_info(j->prefetch)->d_sae, &j->err);
    atomic_store(&j->done, true);
    return NULL;
}

/* Start parsing the rule file on a worker; the encoding thread goes on. */
static void reload(cli_live *l, const char *why)
{
    if (!l->rules_path) {
        log_prefix(l->what);
        fprintf(stderr, "%s: the built-in rules have no file to reload\n", why);
        return;
    }
    if (l->job) { /* one at a time; the file is read again once this one is applied */
        l->pending_why = why;
        return;
    }
    cli_reload_job *j = calloc(1, sizeof *j);
    if (!j) {
        log_prefix(l->what);
        fprintf(stderr, "rules not reloaded after %s: out of memory\n", why);
        return;
    }
    j->why = why;
    j->path = l->rules_path;
    j->prefetch = l->plan && l->encoder && l->plan->mode != SAEMON_ENCODE_ALL ? l->plan->dict : NULL;
    j->policy = (saemon_reload_options){.dict = l->dict, .can_reconstruct = l->can_reconstruct};
    atomic_init(&j->done, false);
    sigset_t all, old; /* signals stay with the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&j->thread, NULL, parse_rules, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_prefix(l->what);
        fprintf(stderr, "rules not reloaded after %s: cannot start a thread: %s\n", why, strerror(rc));
        free(j);
        return;
    }
    l->job = j;
}

/* Between batches: switch the monitor to a parsed ruleset (cheap), or report
 * why the file was refused. wait: join even if not finished (at the end). */
static void apply_reload(cli_live *l, bool wait)
{
    cli_reload_job *j = l->job;
    if (!j || (!wait && !atomic_load(&j->done)))
        return;
    pthread_join(j->thread, NULL);
    l->job = NULL;
    saemon_reload_stats st = {0};
    saemon_status s = j->status;
    /* the encoder's latent set follows the rules: the new set is packed
     * before the monitor switches, and put back if it does not */
    bool planned = false;
    if (s == SAEMON_OK && l->plan && l->encoder) {
        planned = cli_plan_reload(l->plan, l->encoder, j->next, &j->err);
        if (!planned)
            s = j->err.code ? j->err.code : SAEMON_ERR_RULES;
    }
    if (s == SAEMON_OK)
        s = saemon_monitor_reload(l->monitor, j->next, l->on_alert, l->alert_user, &st, &j->err);
    if (planned)
        cli_plan_commit(l->plan, s == SAEMON_OK, l->encoder);
    log_prefix(l->what);
    if (s != SAEMON_OK) {
        fprintf(stderr, "rules not reloaded after %s, keeping the old rules: %s\n", j->why, j->err.message);
        saemon_rules_close(j->next);
    } else {
        saemon_rules_close(*l->rules);
        *l->rules = j->next;
        fprintf(stderr, "rules reloaded: %zu rules (%zu kept state, %zu changed, %zu added, %zu removed) after %s\n",
                st.rules, st.kept, st.changed, st.added, st.removed, j->why);
        if (planned) {
            log_prefix(l->what);
            fprintf(stderr, "encoder plan from the next batch: %s\n", saemon_encoder_get_plan(l->encoder));
        }
    }
    free(j);
    if (l->pending_why && !wait) {
        const char *why = l->pending_why;
        l->pending_why = NULL;
        reload(l, why);
    }
}

/* Sleep until `tokens` are due at --rate, waking for a stop request. */
static void pace(cli_live *l, uint64_t tokens)
{
    if (l->rate <= 0)
        return;
    for (;;) {
        double wait = l->t0 + (double)tokens / l->rate - clock_now_s();
        if (wait <= 0 || stop_requested)
            return;
        if (wait > 0.05)
            wait = 0.05;
        struct timespec ts = {0, (long)(wait * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* After the directory was deleted or moved: try to watch it again (once a
 * second); the file may have changed meanwhile, so a re-armed watch reloads. */
static bool rearm_watch(cli_live *l)
{
    if (!l->watch_lost || l->inotify_fd < 0)
        return false;
    double now = clock_now_s();
    if (now < l->next_rearm)
        return false;
    l->next_rearm = now + 1.0;
    if (inotify_add_watch(l->inotify_fd, l->watch_dir, WATCH_MASK) < 0)
        return false;
    l->watch_lost = false;
    log_prefix(l->what);
    fprintf(stderr, "watching %s for changes again\n", l->watch_dir);
    return true;
}

void cli_live_between_batches(cli_live *l, uint64_t tokens)
{
    bool hup = reload_requested != 0;
    reload_requested = 0;
    bool changed = rules_file_changed(l);
    changed |= rearm_watch(l);
    apply_reload(l, false);
    if (hup || changed)
        reload(l, hup ? "SIGHUP" : "a change of the file");
    pace(l, tokens);
}

bool cli_live_replay_batch(cli_live *l, cli_replay *rp, const float *rows, uint64_t first_row, size_t n)
{
    saemon_error err = {0};
    if (cli_replay_rows(rp, rows, first_row, n, &err) != SAEMON_OK) {
        cli_live_end(l);
        cli_fail(l->what, &err);
        return false;
    }
    cli_live_between_batches(l, rp->tokens);
    return true;
}

void cli_live_end(cli_live *l)
{
    apply_reload(l, true);
    l->pending_why = NULL;
    if (l->inotify_fd >= 0)
        close(l->inotify_fd);
    l->inotify_fd = -1;
    free(l->watch_dir);
    l->watch_dir = NULL;
    if (stop_requested) {
        log_prefix(l->what);
        fprintf(stderr, "stopped by signal; shutting down\n");
    }
}

bool cli_parse_rate(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || !end || *end || end == text || !(v > 0) || v > 1e12) {
        fprintf(stderr, "saemon: --rate expects tokens per second (a positive number), got '%s'\n", text);
        return false;
    }
    *out = v;
    return true;
}

int cli_live_finish(cli_live *l, const cli_replay *rp, saemon_sinks **sinks, cli_run_summary *out)
{
    cli_live_end(l);
    const double dt = clock_now_s() - l->t0;
    saemon_sinks *closing = *sinks;
    *sinks = NULL;
    uint64_t alerts = 0;
    const int closed = cli_sinks_close(l->what, closing, &alerts);
    *out = (cli_run_summary){
        .tokens = rp->tokens,
        .alerts = alerts,
        .mean_active = rp->tokens ? (double)rp->active_features / (double)rp->tokens : 0.0,
        .mean_what = saemon_encoder_is_subset(rp->encoder) ? "active watched features" : "L0",
        .tokens_per_s = dt > 0 ? (double)rp->tokens / dt : 0.0,
    };
    return closed;
}
