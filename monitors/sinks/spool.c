/* The on-disk spool (see spool.h). */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "monitors/sinks/spool.h"

#define SPOOL_MAX_BODY (4u << 20)
#define NAME_LEN (20 + 1 + 64 + 5) /* seq-key.json */

static void entry_name(const spool_entry *e, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "%020" PRIu64 "-%s%s", e->seq, e->key, suffix);
}

/* "<20 digits>-<64 hex>.json" -> seq and key; false for anything else. */
static bool parse_name(const char *name, spool_entry *e)
{
    if (strlen(name) != NAME_LEN || name[20] != '-' || strcmp(name + 85, ".json"))
        return false;
    uint64_t seq = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || seq > (UINT64_MAX - 9) / 10)
            return false;
        seq = seq * 10 + (uint64_t)(name[i] - '0');
    }
    for (int i = 21; i < 85; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    e->seq = seq;
    memcpy(e->key, name + 21, 64);
    e->key[64] = 0;
    return true;
}

static int by_seq(const void *a, const void *b)
{
    const spool_entry *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Read one entry without trusting it: never through a symlink (O_NOFOLLOW),
 * never blocking on a FIFO (O_NONBLOCK), only a regular file of 1 byte to
 * SPOOL_MAX_BODY, holding one JSON value. false (with *why) for a bad one. */
static bool read_entry(int dir_fd, const char *name, spool_entry *e, const char **why)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0) {
        *why = errno == ELOOP ? "a symbolic link" : "unreadable";
        return false;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        close(fd);
        return false;
    }
    if (st.st_size == 0 || st.st_size > SPOOL_MAX_BODY) {
        *why = st.st_size == 0 ? "empty" : "larger than 4 MiB";
        close(fd);
        return false;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *body = malloc(n + 1);
    while (body && got < n) {
        ssize_t r = read(fd, body + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!body || got != n) {
        free(body);
        *why = body ? "shorter than its size" : "out of memory";
        return false;
    }
    body[n] = 0;
    cJSON *json = cJSON_ParseWithLength(body, n);
    if (!json) {
        free(body);
        *why = "not JSON";
        return false;
    }
    cJSON_Delete(json);
    e->body = body;
    e->len = n;
    e->on_disk = true;
    return true;
}

/* Move a bad entry out of the way (renaming a symlink renames the link) so
 * start-up goes on and a person can look at it. */
static void quarantine(spool *sp, const char *name)
{
    char aside[NAME_LEN + 32];
    snprintf(aside, sizeof aside, "%s.bad", name);
    if (renameat(sp->dir_fd, name, sp->dir_fd, aside) != 0)
        unlinkat(sp->dir_fd, name, 0);
    sp->quarantined++;
}

static void free_entries(spool_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].body);
    free(v);
}

saemon_status spool_open(spool *sp, const char *dir, spool_entry **pending, size_t *n_pending,
                         saemon_error *err)
{
    memset(sp, 0, sizeof *sp);
    sp->dir_fd = sp->lock_fd = -1;
    *pending = NULL;
    *n_pending = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return saemon_error_set(err, SAEMON_ERR_IO, "spool %s: cannot create: %s", dir, strerror(errno));
    sp->dir = strdup(dir);
    sp->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!sp->dir || sp->dir_fd < 0) {
        saemon_status s = saemon_error_set(err, SAEMON_ERR_IO, "spool %s: cannot open: %s", dir,
                                           sp->dir ? strerror(errno) : "out of memory");
        spool_close(sp);
        return s;
    }
    sp->lock_fd = openat(sp->dir_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lock_fd < 0 || flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        saemon_status s = saemon_error_set(err, SAEMON_ERR_IO, "spool %s: cannot lock: %s%s", dir, strerror(errno),
                                           errno == EWOULDBLOCK ? " (another saemon is using it)" : "");
        spool_close(sp);
        return s;
    }
    int scan_fd = dup(sp->dir_fd);
    DIR *d = scan_fd >= 0 ? fdopendir(scan_fd) : NULL;
    if (!d) {
        if (scan_fd >= 0)
            close(scan_fd);
        saemon_status s = saemon_error_set(err, SAEMON_ERR_IO, "spool %s: cannot list: %s", dir, strerror(errno));
        spool_close(sp);
        return s;
    }
    spool_entry *v = NULL;
    size_t n = 0, cap = 0;
    saemon_status s = SAEMON_OK;
    struct dirent *de;
    while (s == SAEMON_OK && (de = readdir(d))) {
        if (!strncmp(de->d_name, ".tmp-", 5)) { /* never renamed: the write did not finish */
            unlinkat(sp->dir_fd, de->d_name, 0);
            continue;
        }
        spool_entry e = {0};
        if (!parse_name(de->d_name, &e))
            continue;
        const char *why = NULL;
        if (!read_entry(sp->dir_fd, de->d_name, &e, &why)) {
            quarantine(sp, de->d_name);
            snprintf(sp->last_quarantined, sizeof sp->last_quarantined, "%s (%s)", de->d_name, why);
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            spool_entry *g = realloc(v, nc * sizeof *g);
            if (!g) {
                free(e.body);
                s = saemon_error_set(err, SAEMON_ERR_NOMEM, "spool %s: out of memory", dir);
                break;
            }
            v = g;
            cap = nc;
        }
        v[n++] = e;
    }
    closedir(d);
    if (s != SAEMON_OK) {
        free_entries(v, n);
        spool_close(sp);
        return s;
    }
    if (n)
        qsort(v, n, sizeof *v, by_seq);
    sp->next_seq = n ? v[n - 1].seq + 1 : 1;
    *pending = v;
    *n_pending = n;
    return SAEMON_OK;
}

bool spool_write(spool *sp, spool_entry *e)
{
    e->seq = sp->next_seq;
    char tmp[NAME_LEN + 16], name[NAME_LEN + 16];
    snprintf(tmp, sizeof tmp, ".tmp-%020" PRIu64, e->seq);
    entry_name(e, ".json", name, sizeof name);
    int fd = openat(sp->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = true;
    for (size_t done = 0; ok && done < e->len;) {
        ssize_t w = write(fd, e->body + done, e->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            ok = false;
        else
            done += (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    ok = ok && renameat(sp->dir_fd, tmp, sp->dir_fd, name) == 0 && fsync(sp->dir_fd) == 0;
    if (!ok) {
        saved = errno ? errno : saved;
        unlinkat(sp->dir_fd, tmp, 0);
        errno = saved;
        return false;
    }
    sp->next_seq++;
    e->on_disk = true;
    return true;
}

bool spool_read(spool *sp, spool_entry *e)
{
    char name[NAME_LEN + 16];
    entry_name(e, ".json", name, sizeof name);
    const char *why;
    e->body = NULL;
    return read_entry(sp->dir_fd, name, e, &why);
}

bool spool_remove(spool *sp, const spool_entry *e)
{
    char name[NAME_LEN + 16];
    entry_name(e, ".json", name, sizeof name);
    /* No fsync of the directory here: if the unlink is lost in a crash the
     * alert is sent again with the same Idempotency-Key. */
    return unlinkat(sp->dir_fd, name, 0) == 0 || errno == ENOENT;
}

bool spool_reject(spool *sp, const spool_entry *e)
{
    char name[NAME_LEN + 16], aside[NAME_LEN + 32];
    entry_name(e, ".json", name, sizeof name);
    entry_name(e, ".json.rejected", aside, sizeof aside);
    return renameat(sp->dir_fd, name, sp->dir_fd, aside) == 0;
}

void spool_close(spool *sp)
{
    if (sp->lock_fd >= 0)
        close(sp->lock_fd); /* releases the flock */
    if (sp->dir_fd >= 0)
        close(sp->dir_fd);
    free(sp->dir);
    memset(sp, 0, sizeof *sp);
    sp->dir_fd = sp->lock_fd = -1;
}
