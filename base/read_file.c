#include "base/read_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

saemon_status read_whole_file(const char *path, size_t max, const char *what, char **text, size_t *len,
                              saemon_error *err)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: cannot open %s: %s; expected a readable file", path, what,
                                strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s is not a regular file", path, what);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_RULES, "%s: %s is %lld bytes; expected at most %zu", path,
                                what, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            return saemon_error_set(err, SAEMON_ERR_IO, "%s: read failed: %s", path,
                                    e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return SAEMON_OK;
}

char *path_relative_to(const char *file, const char *rel)
{
    const char *slash = strrchr(file, '/');
    if (rel[0] == '/' || !slash)
        return strdup(rel);
    size_t dir = (size_t)(slash - file);
    size_t n = dir + 1 + strlen(rel) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s/%s", (int)dir, file, rel);
    return out;
}
