/* exec sink: for every alert, posix_spawnp(argv) — no shell — with the
 * alert's JSON line on stdin. The child is killed (SIGKILL) if it has not
 * exited within the timeout; exit status 0 counts as delivered, anything
 * else (status, signal, timeout) as failed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "monitors/sinks/sink_internal.h"

extern char **environ;

typedef struct exec_sink {
    char **argv;
    double timeout_s;
} exec_sink;

/* Write the whole line unless the child stops reading or time runs out. */
static void feed(int fd, const char *p, size_t n, double deadline)
{
    while (n) {
        double left = deadline - clock_now_s();
        if (left <= 0)
            return;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (pfd.revents & (POLLERR | POLLHUP)))
            return;
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            return; /* EPIPE: the child does not want (all of) it */
        p += w;
        n -= (size_t)w;
    }
}

/* Wait for the child until the deadline, or the drain deadline once close()
 * sets one (*draining then); true with *status if it exited. */
static bool wait_until(sink *s, pid_t pid, double deadline, int *status, bool *draining)
{
    long nap_us = 500;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
        double now = clock_now_s(), drain = atomic_load(&s->drain_deadline);
        *draining = drain < deadline;
        if (now >= (*draining ? drain : deadline))
            return false;
        struct timespec ts = {0, nap_us * 1000};
        nanosleep(&ts, NULL);
        if (nap_us < 20000)
            nap_us *= 2;
    }
}

/* The child's environment: ours, plus SAEMON_REQUEST_ID when the alert's
 * stream carries an engine's request id (validated printable UTF-8 by the
 * ring consumer), so a command can abort that request without parsing the
 * JSON. NULL (use environ) when there is nothing to add or no memory. */
static char **child_env(const saemon_alert *a, char **var)
{
    *var = NULL;
    if (!a->request_id)
        return NULL;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    size_t len = strlen(a->request_id) + sizeof "SAEMON_REQUEST_ID=";
    *var = malloc(len);
    if (!env || !*var) {
        free(env);
        free(*var);
        *var = NULL;
        return NULL;
    }
    snprintf(*var, len, "SAEMON_REQUEST_ID=%s", a->request_id);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SAEMON_REQUEST_ID=", 18) != 0)
            env[k++] = environ[i];
    env[k++] = *var;
    env[k] = NULL;
    return env;
}

static void exec_handle(sink *s, const saemon_alert *a)
{
    exec_sink *x = s->impl;
    char *line = saemon_alert_to_json(a);
    int pipefd[2] = {-1, -1};
    if (!line || pipe2(pipefd, O_CLOEXEC) != 0) {
        free(line);
        sink_failed_one(s, "%s", line ? strerror(errno) : "out of memory");
        return;
    }
    size_t n = strlen(line);
    line[n++] = '\n';

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[0], STDIN_FILENO);
    posix_spawnattr_init(&attr);
    /* The sink thread blocks every signal; the child must start clean. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    char *var, **env = child_env(a, &var);
    int rc = posix_spawnp(&pid, x->argv[0], &fa, &attr, x->argv, env ? env : environ);
    free(env);
    free(var);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[0]);
    if (rc != 0) {
        close(pipefd[1]);
        free(line);
        sink_failed_one(s, "cannot run %s: %s", x->argv[0], strerror(rc));
        sink_fail(s, SAEMON_ERR_IO, "sink %s: cannot run %s: %s", s->name, x->argv[0], strerror(rc));
        return;
    }
    /* the exec timeout, cut short by the drain deadline when closing */
    double deadline = clock_now_s() + x->timeout_s, drain = atomic_load(&s->drain_deadline);
    bool draining = false;
    fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
    feed(pipefd[1], line, n, drain < deadline ? drain : deadline);
    close(pipefd[1]);
    free(line);
    /* A write to a child that already exited raised SIGPIPE at this
     * (blocked) thread; take it off so it does not stay pending. */
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_only, NULL, &zero) > 0) {
    }

    int status = 0;
    if (!wait_until(s, pid, deadline, &status, &draining)) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (draining)
            sink_failed_one(s, "%s killed at the drain timeout (%.1f s)", x->argv[0], s->drain_timeout_s);
        else
            sink_failed_one(s, "%s timed out after %.1f s", x->argv[0], x->timeout_s);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        atomic_fetch_add(&s->delivered, 1);
    else if (WIFEXITED(status))
        sink_failed_one(s, "%s exited with status %d", x->argv[0], WEXITSTATUS(status));
    else
        sink_failed_one(s, "%s killed by signal %d", x->argv[0], WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static bool exec_finish(sink *s, double deadline)
{
    (void)deadline;
    return !s->failed_hard;
}

static void exec_destroy(sink *s)
{
    exec_sink *x = s->impl;
    if (!x)
        return;
    for (size_t i = 0; x->argv && x->argv[i]; i++)
        free(x->argv[i]);
    free(x->argv);
    free(x);
}

static const sink_ops exec_ops = {
    .handle = exec_handle,
    .finish = exec_finish,
    .destroy = exec_destroy,
    .drain_bounded = true,
};

static saemon_status open_exec(sink *s, const saemon_sink_options *o, saemon_error *err)
{
    if (!o->argv || !o->argv[0] || !*o->argv[0])
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: exec needs a command (argv[0])", s->name);
    if (!(o->exec_timeout_s >= 0 && o->exec_timeout_s <= 86400))
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: exec timeout out of range", s->name);
    exec_sink *x = calloc(1, sizeof *x);
    if (!x)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    s->impl = x;
    s->ops = &exec_ops;
    x->timeout_s = o->exec_timeout_s > 0 ? o->exec_timeout_s : 10.0;
    size_t n = 0;
    while (o->argv[n])
        n++;
    x->argv = calloc(n + 1, sizeof *x->argv);
    for (size_t i = 0; x->argv && i < n; i++)
        if (!(x->argv[i] = strdup(o->argv[i])))
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    if (!x->argv)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    return SAEMON_OK;
}

const sink_kind sink_kind_exec = {.open = open_exec};
