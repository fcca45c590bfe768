/* Writing float32 .npy files atomically: temp file in the same directory,
 * every write/fsync/close checked, then rename over the target. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "saemon/npy.h"

static saemon_status write_error(saemon_error *err, const char *path, const char *what, int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s failed: no space left on device (%s)", path, what,
                                strerror(e));
    return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s failed: %s", path, what, strerror(e));
}

static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        size_t chunk = len > ((size_t)1 << 30) ? (size_t)1 << 30 : len;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Version 1.0 header; total length (10 + dict) a multiple of 64. */
static size_t make_header(char *buf, size_t size, size_t ndim, const size_t *shape)
{
    char dict[400];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (size_t d = 0; d < ndim; d++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%zu", d ? ", " : "", shape[d]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    size_t total = (10 + n + 1 + 63) / 64 * 64; /* +1 for the final newline */
    size_t hlen = total - 10;
    if (total > size)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, n);
    memset(buf + 10 + n, ' ', hlen - n - 1);
    buf[total - 1] = '\n';
    return total;
}

static int host_is_big_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 0;
}

/* Header then data, little-endian. Returns 0 or -1 with errno set. */
static int write_body(int fd, const char *header, size_t hlen, const float *data, size_t n)
{
    if (write_full(fd, header, hlen) != 0)
        return -1;
    if (!host_is_big_endian())
        return write_full(fd, data, n * sizeof(float));
    uint32_t chunk[1024];
    for (size_t i = 0; i < n;) {
        size_t m = n - i < 1024 ? n - i : 1024;
        memcpy(chunk, data + i, m * sizeof(float));
        for (size_t j = 0; j < m; j++)
            chunk[j] = __builtin_bswap32(chunk[j]);
        if (write_full(fd, chunk, m * sizeof(float)) != 0)
            return -1;
        i += m;
    }
    return 0;
}

/* A new file next to `path` (same filesystem, so rename is atomic), created
 * with 0666 minus the umask like any fopen("w"). *tmp gets its name; on
 * failure returns -1 with errno set (*tmp NULL only when out of memory). */
static int create_temp(const char *path, char **tmp)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    const char *dir = dirname(copy);
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        free(*tmp);
        *tmp = NULL;
        unsigned salt = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        if (asprintf(tmp, "%s/.saemon-npy-%ld-%u.tmp", dir, (long)getpid(), salt) < 0) {
            *tmp = NULL;
            break;
        }
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) {
            free(copy);
            return fd;
        }
    }
    free(copy);
    return -1;
}

/* Devices and FIFOs (/dev/stdout, /dev/full, a pipe) cannot be renamed over. */
static saemon_status write_direct(const char *path, const char *header, size_t hlen, const float *data,
                                  size_t n, saemon_error *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return write_error(err, path, "open for writing", errno);
    if (write_body(fd, header, hlen, data, n) != 0) {
        int e = errno;
        close(fd);
        return write_error(err, path, "write", e);
    }
    if (close(fd) != 0)
        return write_error(err, path, "close", errno);
    return SAEMON_OK;
}

saemon_status saemon_npy_write_f32(const char *path, const float *data, size_t ndim, const size_t *shape,
                                   saemon_error *err)
{
    if (!path || (ndim && !shape))
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_npy_write_f32: path and shape must not be NULL");
    if (ndim > SAEMON_NPY_MAX_DIMS)
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: cannot write %zu dimensions (at most %d)", path, ndim,
                                SAEMON_NPY_MAX_DIMS);
    size_t n = 1, bytes;
    for (size_t d = 0; d < ndim; d++)
        if (__builtin_mul_overflow(n, shape[d], &n))
            return saemon_error_set(err, SAEMON_ERR_ARG, "%s: shape overflows", path);
    if (__builtin_mul_overflow(n, sizeof(float), &bytes))
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: shape overflows", path);
    if (n && !data)
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: data must not be NULL", path);

    char header[512];
    size_t hlen = make_header(header, sizeof header, ndim, shape);
    if (!hlen)
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: header too long", path);

    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return write_direct(path, header, hlen, data, n, err);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: is a directory", path);

    char *tmp = NULL;
    int fd = create_temp(path, &tmp);
    if (fd < 0) {
        saemon_status st2 = tmp ? write_error(err, path, "creating a temporary file in its directory", errno)
                                : saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
        free(tmp);
        return st2;
    }
    const char *step = "write";
    int failed = write_body(fd, header, hlen, data, n) != 0;
    if (!failed && fsync(fd) != 0) {
        step = "fsync";
        failed = 1;
    }
    int e = errno;
    if (close(fd) != 0 && !failed) {
        step = "close";
        failed = 1;
        e = errno;
    }
    if (!failed && rename(tmp, path) != 0) {
        step = "rename into place";
        failed = 1;
        e = errno;
    }
    if (failed) {
        unlink(tmp);
        free(tmp);
        return write_error(err, path, step, e);
    }
    free(tmp);
    return SAEMON_OK;
}
