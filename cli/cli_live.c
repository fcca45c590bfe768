/* Live operation of `run` and `demo`: SIGINT/SIGTERM stop the run cleanly,
 * SIGHUP or a change of the rule file reloads the rules, --rate paces the
 * input. Everything happens between batches, never inside one. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ saemon %s: ", when, ts.tv_nsec / 1000000, what);
}

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
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
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
    l->t0 = cli_now_seconds();
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
            p += sizeof *ev + ev->len;
        }
    }
}

static void reload(cli_live *l, const char *why)
{
    if (!l->rules_path) {
        log_prefix(l->what);
        fprintf(stderr, "%s: the built-in rules have no file to reload\n", why);
        return;
    }
    saemon_error err = {0};
    saemon_reload_stats st = {0};
    const saemon_reload_options policy = {
        .dict = l->dict, .can_reconstruct = l->can_reconstruct, .on_alert = l->on_alert, .user = l->alert_user};
    saemon_status s = saemon_monitor_reload_file(l->monitor, l->rules_path, &policy, l->rules, &st, &err);
    log_prefix(l->what);
    if (s != SAEMON_OK) {
        fprintf(stderr, "rules not reloaded after %s, keeping the old rules: %s\n", why, err.message);
        return;
    }
    fprintf(stderr, "rules reloaded: %zu rules (%zu kept state, %zu changed, %zu added, %zu removed) after %s\n",
            st.rules, st.kept, st.changed, st.added, st.removed, why);
}

/* Sleep until `tokens` are due at --rate, waking for a stop request. */
static void pace(cli_live *l, uint64_t tokens)
{
    if (l->rate <= 0)
        return;
    for (;;) {
        double wait = l->t0 + (double)tokens / l->rate - cli_now_seconds();
        if (wait <= 0 || stop_requested)
            return;
        if (wait > 0.05)
            wait = 0.05;
        struct timespec ts = {0, (long)(wait * 1e9)};
        nanosleep(&ts, NULL);
    }
}

void cli_live_between_batches(cli_live *l, uint64_t tokens)
{
    bool hup = reload_requested != 0;
    reload_requested = 0;
    bool changed = rules_file_changed(l);
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
    if (l->inotify_fd >= 0)
        close(l->inotify_fd);
    l->inotify_fd = -1;
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
