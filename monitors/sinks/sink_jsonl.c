/* jsonl and stdout sinks: one JSON line per alert, written with write(2) so
 * every line reaches the kernel before the next alert is taken. Files are
 * opened O_APPEND; size rotation renames path -> path.1 -> ... -> path.K. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "monitors/sinks/sink_internal.h"

typedef struct jsonl {
    int fd;
    bool owns_fd;
    char *path;              /* NULL for stdout */
    saemon_fsync_policy fsync;
    size_t fsync_every, since_fsync;
    uint64_t rotate_bytes, size;
    size_t rotate_keep;
    bool regular;            /* rotation and fsync only make sense on a regular file */
} jsonl;

static int open_append(const char *path)
{
    /* read too: drop_partial_tail looks at the end of an existing file */
    return open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void stat_fd(jsonl *j)
{
    struct stat st;
    j->regular = fstat(j->fd, &st) == 0 && S_ISREG(st.st_mode);
    j->size = j->regular ? (uint64_t)st.st_size : 0;
}

/* A file left by a crash mid-write may end in a partial line: cut it back to
 * the last newline so what we append starts on a line of its own and the
 * file parses. Returns the bytes removed (0 when it ended cleanly). */
static uint64_t drop_partial_tail(jsonl *j)
{
    if (!j->regular || j->size == 0)
        return 0;
    char buf[4096];
    uint64_t end = j->size;
    while (end > 0) {
        size_t n = end < sizeof buf ? (size_t)end : sizeof buf;
        ssize_t got = pread(j->fd, buf, n, (off_t)(end - n));
        if (got != (ssize_t)n)
            return 0; /* unreadable (e.g. opened write-only elsewhere): leave it */
        for (size_t i = n; i-- > 0;)
            if (buf[i] == '\n') {
                uint64_t keep = end - n + i + 1;
                if (keep == j->size || ftruncate(j->fd, (off_t)keep) != 0)
                    return 0;
                uint64_t cut = j->size - keep;
                j->size = keep;
                return cut;
            }
        end -= n;
    }
    if (ftruncate(j->fd, 0) != 0)
        return 0;
    uint64_t cut = j->size;
    j->size = 0;
    return cut;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (w == 0) {
            errno = EIO;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool sync_fd(jsonl *j)
{
    j->since_fsync = 0;
    if (!j->regular)
        return true;
    return fsync(j->fd) == 0 || errno == EINVAL;
}

/* path.K is dropped, path.i -> path.i+1, path -> path.1, fresh path. */
static bool rotate(sink *s, jsonl *j)
{
    if (!sync_fd(j)) {
        sink_fail(s, SAEMON_ERR_IO, "writing alerts to %s failed: %s", j->path, strerror(errno));
        return false;
    }
    close(j->fd);
    j->fd = -1;
    size_t plen = strlen(j->path) + 24;
    char *from = malloc(plen), *to = malloc(plen);
    bool ok = from && to;
    if (ok) {
        snprintf(to, plen, "%s.%zu", j->path, j->rotate_keep);
        if (unlink(to) != 0 && errno != ENOENT)
            ok = false;
        for (size_t i = j->rotate_keep; ok && i > 1; i--) {
            snprintf(from, plen, "%s.%zu", j->path, i - 1);
            snprintf(to, plen, "%s.%zu", j->path, i);
            if (rename(from, to) != 0 && errno != ENOENT)
                ok = false;
        }
        snprintf(to, plen, "%s.1", j->path);
        ok = ok && rename(j->path, to) == 0;
    }
    int saved = errno;
    free(from);
    free(to);
    if (ok && (j->fd = open_append(j->path)) < 0)
        ok = false, saved = errno;
    if (!ok) {
        sink_fail(s, SAEMON_ERR_IO, "rotating alert file %s failed: %s", j->path, strerror(saved ? saved : ENOMEM));
        return false;
    }
    stat_fd(j);
    return true;
}

static void jsonl_handle(sink *s, const saemon_alert *a)
{
    jsonl *j = s->impl;
    if (s->failed_hard || j->fd < 0) {
        atomic_fetch_add(&s->failed, 1);
        return;
    }
    char *line = saemon_alert_to_json(a);
    if (!line) {
        atomic_fetch_add(&s->failed, 1);
        return;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL; the length is known */
    n++;
    bool ok = true;
    if (j->regular && j->path && j->rotate_bytes && j->size > 0 && j->size + n > j->rotate_bytes)
        ok = rotate(s, j);
    if (ok && !write_all(j->fd, line, n)) {
        int saved = errno;
        /* Never leave a partial line (ENOSPC, EFBIG): cut the file back to
         * the end of the last complete one, so it still parses. */
        bool cut = !j->regular || ftruncate(j->fd, (off_t)j->size) == 0;
        sink_fail(s, SAEMON_ERR_IO, "writing alerts to %s failed: %s%s", j->path ? j->path : "stdout",
                  strerror(saved), cut ? "" : " (and truncating the partial line failed)");
        ok = false;
    }
    free(line);
    if (ok) {
        j->size += n;
        j->since_fsync++;
        bool want = j->fsync == SAEMON_FSYNC_EVERY ||
                    (j->fsync == SAEMON_FSYNC_EVERY_N && j->since_fsync >= j->fsync_every);
        if (want && !sync_fd(j)) {
            sink_fail(s, SAEMON_ERR_IO, "fsync of %s failed: %s", j->path, strerror(errno));
            ok = false;
        }
    }
    atomic_fetch_add(ok ? &s->delivered : &s->failed, 1);
}

static bool jsonl_finish(sink *s, double deadline)
{
    (void)deadline;
    jsonl *j = s->impl;
    if (j->fd >= 0 && !s->failed_hard && !sync_fd(j))
        sink_fail(s, SAEMON_ERR_IO, "fsync of %s failed: %s", j->path, strerror(errno));
    if (j->fd >= 0 && j->owns_fd && close(j->fd) != 0 && !s->failed_hard)
        sink_fail(s, SAEMON_ERR_IO, "closing %s failed: %s", j->path, strerror(errno));
    j->fd = -1;
    if (s->failed_hard) {
        size_t len = strlen(s->error.message);
        snprintf(s->error.message + len, sizeof s->error.message - len, " (%" PRIu64 " alerts raised)",
                 atomic_load(&s->received));
    }
    return !s->failed_hard;
}

static void jsonl_destroy(sink *s)
{
    jsonl *j = s->impl;
    if (!j)
        return;
    if (j->fd >= 0 && j->owns_fd)
        close(j->fd);
    free(j->path);
    free(j);
}

static const sink_ops jsonl_ops = {
    .handle = jsonl_handle,
    .finish = jsonl_finish,
    .destroy = jsonl_destroy,
};

static saemon_status open_jsonl(sink *s, const saemon_sink_options *o, saemon_error *err)
{
    bool to_stdout = o->kind == SAEMON_SINK_STDOUT || (o->path && !strcmp(o->path, "-"));
    if (!to_stdout && (!o->path || !*o->path))
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: jsonl needs a path", s->name);
    if (o->fsync == SAEMON_FSYNC_EVERY_N && o->fsync_every == 0)
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: fsync every N needs N > 0", s->name);
    if ((unsigned)o->fsync > SAEMON_FSYNC_EVERY_N)
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: unknown fsync policy %d", s->name, (int)o->fsync);
    if (o->rotate_keep > 1000)
        return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: rotate keep %zu is above 1000", s->name,
                                o->rotate_keep);
    jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "sink %s: out of memory", s->name);
    j->fsync = o->fsync;
    j->fsync_every = o->fsync_every;
    j->rotate_bytes = o->rotate_bytes;
    j->rotate_keep = o->rotate_keep ? o->rotate_keep : 5;
    if (to_stdout) {
        fflush(stdout); /* what the application printed so far comes first */
        j->fd = STDOUT_FILENO;
    } else {
        j->path = strdup(o->path);
        j->fd = j->path ? open_append(o->path) : -1;
        if (j->fd < 0) {
            int e = j->path ? errno : ENOMEM;
            free(j->path);
            free(j);
            return saemon_error_set(err, SAEMON_ERR_IO, "cannot open alert file %s: %s", o->path, strerror(e));
        }
        j->owns_fd = true;
    }
    stat_fd(j);
    if (j->path)
        drop_partial_tail(j);
    s->impl = j;
    s->ops = &jsonl_ops;
    return SAEMON_OK;
}

const sink_kind sink_kind_jsonl = {.open = open_jsonl};
