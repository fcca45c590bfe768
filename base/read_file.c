#include "base/read_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

static const char *file_type(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a plain file";
}

saemon_status file_open_regular(int dir_fd, const char *path, const char *what, int *fd_out, uint64_t *size,
                                saemon_error *err)
{
    *fd_out = -1;
    *size = 0;
    /* O_NONBLOCK: opening a FIFO without a writer (or a tty, a tape) must not
     * wait; the fstat below turns every such file away. */
    int fd = openat(dir_fd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: cannot open %s: %s; expected a readable file", path,
                                what, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: cannot stat %s: %s", path, what, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s is not a regular file (it is %s); expected a regular file",
                                path, what, file_type(st.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return SAEMON_OK;
}

saemon_status read_whole_file_at(int dir_fd, const char *path, size_t max, const char *what, char **text,
                                 size_t *len, saemon_error *err)
{
    *text = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    saemon_status s = file_open_regular(dir_fd, path, what, &fd, &size, err);
    if (s != SAEMON_OK)
        return s;
    if (size > max) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: %s is %llu bytes; expected at most %zu", path, what,
                                (unsigned long long)size, max);
    }
    size_t n = (size_t)size;
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

saemon_status read_whole_file(const char *path, size_t max, const char *what, char **text, size_t *len,
                              saemon_error *err)
{
    return read_whole_file_at(AT_FDCWD, path, max, what, text, len, err);
}

saemon_status file_map_regular(const char *path, const char *what, const void **map, size_t *len,
                               saemon_error *err)
{
    *map = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    saemon_status s = file_open_regular(AT_FDCWD, path, what, &fd, &size, err);
    if (s != SAEMON_OK)
        return s;
    if (size > SIZE_MAX) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: %s does not fit the address space", path, what);
    }
    void *m = NULL;
    if (size) {
        m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return saemon_error_set(err, SAEMON_ERR_IO, "%s: mmap: %s", path, strerror(e));
        }
    }
    close(fd);
    *map = m;
    *len = (size_t)size;
    return SAEMON_OK;
}

void file_unmap(const void *map, size_t len)
{
    if (map && len)
        munmap((void *)map, len);
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
