#include "cli/npy_rows.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The value after 'key': in the header dict, or NULL. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

static bool parse_dict(const char *hdr, char descr[8], bool *fortran, size_t *shape, size_t *ndim)
{
    const char *d = dict_value(hdr, "descr"), *f = dict_value(hdr, "fortran_order"), *s = dict_value(hdr, "shape");
    if (!d || !f || !s || *d != '\'' || *s != '(')
        return false;
    size_t i = 0;
    for (d++; *d && *d != '\'' && i < 7; d++)
        descr[i++] = *d;
    descr[i] = 0;
    if (*d != '\'')
        return false;
    *fortran = !strncmp(f, "True", 4);
    *ndim = 0;
    for (s++;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || *ndim == NPY_ROWS_MAX_DIMS)
            return false;
        shape[(*ndim)++] = (size_t)v;
        s = end;
    }
    return true;
}

bool npy_header_parse(const char *buf, size_t len, char descr[8], bool *fortran, size_t *shape, size_t *ndim,
                      size_t *data_offset)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t hl = 0, off = 0;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6))
        return false;
    if (b[6] == 1) {
        hl = b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (len >= 12) {
        hl = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    }
    if (!off || hl > len - off)
        return false;
    char *hdr = strndup(buf + off, hl);
    bool ok = hdr && parse_dict(hdr, descr, fortran, shape, ndim);
    free(hdr);
    *data_offset = off + hl;
    return ok;
}

bool npy_rows_open(npy_rows *r, const char *what, const char *path, size_t d_in, bool hook_z)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->path = path;
    r->d_in = d_in;
    saemon_error err = {0};
    /* Peek at the header: stream a plain little-endian float32 C-order file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    char head[4096];
    ssize_t got = fd >= 0 ? pread(fd, head, sizeof head, 0) : -1;
    struct stat st;
    char descr[8] = "";
    bool fortran = true;
    size_t shape[NPY_ROWS_MAX_DIMS], ndim = 0, data = 0;
    if (fd >= 0 && got > 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) &&
        npy_header_parse(head, (size_t)got, descr, &fortran, shape, &ndim, &data) && !strcmp(descr, "<f4") &&
        !fortran) {
        saemon_npy view = {.ndim = ndim};
        size_t n = 1;
        for (size_t i = 0; i < ndim; i++)
            n *= view.shape[i] = shape[i];
        view.path = (char *)path;
        if (saemon_npy_as_rows(&view, d_in, hook_z, &r->n_rows, &r->n_streams, &r->tokens_per_stream, &err) !=
            SAEMON_OK) {
            close(fd);
            fprintf(stderr, "saemon %s: %s\n", what, err.message);
            return false;
        }
        if ((uint64_t)st.st_size != data + (uint64_t)n * 4) {
            close(fd);
            fprintf(stderr, "saemon %s: %s: the file holds %lld bytes, its header says %zu\n", what, path,
                    (long long)st.st_size, data + n * 4);
            return false;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        r->fd = fd;
        r->data_offset = data;
        return true;
    }
    if (fd >= 0)
        close(fd);
    if (saemon_npy_open(path, &r->whole, &err) != SAEMON_OK ||
        saemon_npy_as_rows(&r->whole, d_in, hook_z, &r->n_rows, &r->n_streams, &r->tokens_per_stream, &err) !=
            SAEMON_OK) {
        fprintf(stderr, "saemon %s: %s\n", what, err.message);
        saemon_npy_close(&r->whole);
        return false;
    }
    return true;
}

const float *npy_rows_read(npy_rows *r, const char *what, size_t first, size_t n, float *buf)
{
    if (r->fd < 0)
        return r->whole.data + first * r->d_in;
    size_t want = n * r->d_in * sizeof(float), done = 0;
    uint64_t at = r->data_offset + (uint64_t)first * r->d_in * sizeof(float);
    while (done < want) {
        ssize_t k = pread(r->fd, (char *)buf + done, want - done, (off_t)(at + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fprintf(stderr, "saemon %s: %s: read failed: %s\n", what, r->path, k < 0 ? strerror(errno) : "short read");
            return NULL;
        }
        done += (size_t)k;
    }
    return buf;
}

void npy_rows_close(npy_rows *r)
{
    if (r->fd >= 0)
        close(r->fd);
    saemon_npy_close(&r->whole);
    r->fd = -1;
}
