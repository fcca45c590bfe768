#include "monitors/sinks/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"

bool secret_source_set(const saemon_secret *src)
{
    return src->value || src->file || src->env;
}

bool secret_source_valid(const saemon_secret *src, const char *what, char *msg, size_t len)
{
    int n = !!src->value + !!src->file + !!src->env;
    if (n > 1) {
        snprintf(msg, len, "%s: give only one of the value, a file or an environment variable", what);
        return false;
    }
    return true;
}

static void wipe_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

bool secret_read_file(const char *path, const char *what, char **value, struct stat *st, bool *mode_warning,
                      char *msg, size_t len)
{
    *value = NULL;
    /* stat before reading: a change after it is seen by the next refresh. */
    if (stat(path, st) != 0) {
        snprintf(msg, len, "%s file %s: cannot open: %s", what, path, strerror(errno));
        return false;
    }
    char role[64];
    snprintf(role, sizeof role, "%s file", what);
    char *buf = NULL;
    size_t n = 0;
    saemon_error err = {0};
    if (read_whole_file(path, SECRET_MAX_BYTES, role, &buf, &n, &err) != SAEMON_OK) {
        snprintf(msg, len, "%s", err.message);
        return false;
    }
    if (mode_warning)
        *mode_warning = (st->st_mode & (S_IRWXG | S_IRWXO)) != 0;
    /* As Prometheus: the file's content is the secret; editors add one
     * newline at the end, which is not part of it. */
    if (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    if (n && buf[n - 1] == '\r')
        buf[--n] = 0;
    if (n == 0 || memchr(buf, 0, n) || memchr(buf, '\n', n) || memchr(buf, '\r', n)) {
        snprintf(msg, len, "%s file %s: %s", what, path,
                 n == 0 ? "empty" : "holds a NUL byte or more than one line; expected the secret on one line");
        explicit_bzero(buf, n);
        free(buf);
        return false;
    }
    *value = buf;
    return true;
}

static void warn_mode(const char *what, const char *path)
{
    fprintf(stderr,
            "saemon: warning: %s file %s is readable by group or others; "
            "make it private (chmod 600)\n",
            what, path);
}

bool sink_secret_init(sink_secret *s, const saemon_secret *src, const char *what, char *msg, size_t len)
{
    memset(s, 0, sizeof *s);
    if (!secret_source_valid(src, what, msg, len))
        return false;
    if (src->file) {
        s->file = strdup(src->file);
        bool loose = false;
        if (!s->file || !secret_read_file(src->file, what, &s->value, &s->seen, &loose, msg, len)) {
            if (!s->file)
                snprintf(msg, len, "%s: out of memory", what);
            sink_secret_free(s);
            return false;
        }
        if (loose)
            warn_mode(what, src->file);
        return true;
    }
    const char *v = src->value;
    if (src->env) {
        v = getenv(src->env);
        if (!v || !*v) {
            snprintf(msg, len, "%s: environment variable %s is %s", what, src->env, v ? "empty" : "not set");
            return false;
        }
    }
    if (v && (strchr(v, '\n') || strchr(v, '\r'))) {
        snprintf(msg, len, "%s: holds a line break", what);
        return false;
    }
    if (v && !(s->value = strdup(v))) {
        snprintf(msg, len, "%s: out of memory", what);
        return false;
    }
    return true;
}

bool sink_secret_refresh(sink_secret *s, const char *what, char *msg, size_t len)
{
    if (!s->file)
        return true;
    struct stat st;
    if (stat(s->file, &st) == 0 && st.st_ino == s->seen.st_ino && st.st_dev == s->seen.st_dev &&
        st.st_size == s->seen.st_size && st.st_mtim.tv_sec == s->seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == s->seen.st_mtim.tv_nsec)
        return true;
    char *fresh = NULL;
    bool loose = false;
    if (!secret_read_file(s->file, what, &fresh, &st, &loose, msg, len))
        return false;
    if (loose && !(s->seen.st_mode & (S_IRWXG | S_IRWXO)))
        warn_mode(what, s->file);
    wipe_free(s->value);
    s->value = fresh;
    s->seen = st;
    return true;
}

void sink_secret_free(sink_secret *s)
{
    wipe_free(s->value);
    free(s->file);
    memset(s, 0, sizeof *s);
}
