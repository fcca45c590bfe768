/* Reading NumPy .npy activation files into float32 C-order memory, and
 * viewing them as [rows][d_in]. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/read_file.h"
#include "runtime/npy_internal.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* read() until `len` bytes arrived; returns bytes read (< len only at EOF) or -1. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t chunk = len - got;
        if (chunk > (size_t)1 << 30)
            chunk = (size_t)1 << 30;
        ssize_t r = read(fd, (char *)buf + got, chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Exact IEEE half -> single conversion (subnormals, Inf, NaN payload kept). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24); /* exact: mant < 2^10 */
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int host_is_big_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 0;
}

/* Turn n raw elements at the start of buf into host floats, in place. For
 * float16 the raw halves sit in the upper half of the buffer (see read). */
static void decode_in_place(float *buf, size_t n, const npy_header *h)
{
    int swap = h->big_endian != host_is_big_endian();
    if (h->itemsize == 4) {
        if (!swap)
            return;
        uint32_t *u = (uint32_t *)buf;
        for (size_t i = 0; i < n; i++)
            u[i] = __builtin_bswap32(u[i]);
        return;
    }
    /* Half i is read before float i overwrites bytes [4i, 4i+4), which lie
     * below the unread halves at 2n + 2(i+1) for every i < n. */
    const unsigned char *raw = (const unsigned char *)buf + n * 2;
    for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, raw + 2 * i, 2);
        if (swap)
            v = __builtin_bswap16(v);
        buf[i] = half_to_float(v);
    }
}

/* Fortran order (first index fastest) -> C order (last index fastest). For
 * every combination of the middle indices, the (first, last) plane is a 2-D
 * transpose, done in tiles so both sides stay in cache. */
static float *fortran_to_c(const float *src, size_t n, size_t ndim, const size_t *shape)
{
    float *dst = malloc(n ? n * sizeof *dst : 1);
    if (!dst || n == 0)
        return dst;
    size_t fstride[SAEMON_NPY_MAX_DIMS], cstride[SAEMON_NPY_MAX_DIMS], mid[SAEMON_NPY_MAX_DIMS] = {0};
    size_t s = 1;
    for (size_t d = 0; d < ndim; d++) {
        fstride[d] = s;
        s *= shape[d];
    }
    s = 1;
    for (size_t d = ndim; d-- > 0;) {
        cstride[d] = s;
        s *= shape[d];
    }
    const size_t rows = shape[0], cols = shape[ndim - 1], T = 32;
    const size_t src_col = fstride[ndim - 1], dst_row = cstride[0];
    for (;;) {
        size_t so = 0, dof = 0;
        for (size_t d = 1; d + 1 < ndim; d++) {
            so += mid[d] * fstride[d];
            dof += mid[d] * cstride[d];
        }
        for (size_t i0 = 0; i0 < rows; i0 += T)
            for (size_t j0 = 0; j0 < cols; j0 += T) {
                size_t i1 = i0 + T < rows ? i0 + T : rows, j1 = j0 + T < cols ? j0 + T : cols;
                for (size_t i = i0; i < i1; i++)
                    for (size_t j = j0; j < j1; j++)
                        dst[dof + i * dst_row + j] = src[so + i + j * src_col];
            }
        size_t d = ndim - 1; /* odometer over the middle dims 1..ndim-2 */
        while (--d >= 1) {
            if (++mid[d] < shape[d])
                break;
            mid[d] = 0;
        }
        if (d == 0)
            return dst;
    }
}

/* The magic, version and header length from the first `got` bytes (10 are
 * enough for version 1.0, 12 for 2.0/3.0). `size` is the whole file/image. */
static saemon_status parse_preamble(const unsigned char *pre, size_t got, const char *path, uint64_t size,
                                    size_t *header_len, size_t *data_offset, saemon_error *err)
{
    if (got < 10 || memcmp(pre, npy_magic, 6) != 0)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: not a .npy file (missing the \\x93NUMPY magic at the start)", path);
    unsigned major = pre[6], minor = pre[7];
    if (minor != 0 || major < 1 || major > 3)
        return saemon_error_set(err, major > 3 && minor == 0 ? SAEMON_ERR_UNSUPPORTED : SAEMON_ERR_FORMAT,
                                "%s: unsupported .npy format version %u.%u (saemon reads 1.0, 2.0, 3.0)", path,
                                major, minor);
    size_t hlen;
    if (major == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        *data_offset = 10;
    } else {
        if (got < 12)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: truncated .npy preamble", path);
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        *data_offset = 12;
    }
    if (hlen > size - *data_offset)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: .npy header length %zu goes beyond the end of the file (%llu bytes)", path,
                                hlen, (unsigned long long)size);
    if (hlen > SAEMON_NPY_MAX_HEADER_LEN)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: .npy header length %zu exceeds the %u-byte limit",
                                path, hlen, SAEMON_NPY_MAX_HEADER_LEN);
    *header_len = hlen;
    *data_offset += hlen;
    return SAEMON_OK;
}

/* Element count and byte sizes (raw and as float32) of a parsed header,
 * overflow-checked; nothing is allocated before this passes. */
static saemon_status array_sizes(const npy_header *h, const char *path, size_t *n_out, size_t *bytes,
                                 size_t *fbytes, saemon_error *err)
{
    /* Zeroed first: callers test only the status, which the compiler cannot
     * see is non-zero on every error path (-Wmaybe-uninitialized at -O3). */
    *n_out = *bytes = *fbytes = 0;
    size_t n = 1, nonzero = 1; /* nonzero: keeps every partial product of the shape in range */
    for (size_t d = 0; d < h->ndim; d++)
        if (__builtin_mul_overflow(n, h->shape[d], &n) ||
            __builtin_mul_overflow(nonzero, h->shape[d] ? h->shape[d] : 1, &nonzero))
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: .npy shape has more elements than fit in memory", path);
    if (__builtin_mul_overflow(n, h->itemsize, bytes) || __builtin_mul_overflow(n, sizeof(float), fbytes))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: .npy shape has more bytes than fit in memory",
                                path);
    *n_out = n;
    return SAEMON_OK;
}

/* The data bytes on hand (`have`) must be exactly what the shape needs. */
static saemon_status check_data_size(uint64_t have, size_t bytes, const char *path, saemon_error *err)
{
    if (have < bytes)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: truncated .npy data: the shape needs %zu bytes, the file holds %llu", path,
                                bytes, (unsigned long long)have);
    if (have > bytes)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: %llu trailing bytes after the .npy data (shape needs %zu bytes)", path,
                                (unsigned long long)(have - bytes), bytes);
    return SAEMON_OK;
}

/* `data` holds the raw elements (float16 in its upper half): widen, make C
 * order and hand everything to `out`. Takes ownership of data. */
static saemon_status finish_array(float *data, size_t n, const npy_header *h, const char *path,
                                  saemon_npy *out, saemon_error *err)
{
    decode_in_place(data, n, h);
    if (h->fortran_order && h->ndim > 1) {
        float *c_order = fortran_to_c(data, n, h->ndim, h->shape);
        free(data);
        if (!c_order)
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory transposing Fortran-order data",
                                    path);
        data = c_order;
    }
    out->path = strdup(path);
    if (!out->path) {
        free(data);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    }
    out->ndim = h->ndim;
    memcpy(out->shape, h->shape, sizeof h->shape);
    out->data = data;
    out->source_dtype = h->descr;
    out->fortran_order = h->fortran_order;
    return SAEMON_OK;
}

/* fd: a regular file of `size` bytes (file_open_regular). */
static saemon_status read_fd(int fd, uint64_t size, const char *path, saemon_npy *out, saemon_error *err)
{
    unsigned char pre[12];
    ssize_t got = read_full(fd, pre, sizeof pre);
    if (got < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    size_t hlen = 0, data_offset = 0;
    saemon_status status = parse_preamble(pre, (size_t)got, path, size, &hlen, &data_offset, err);
    if (status)
        return status;
    if (lseek(fd, (off_t)(data_offset - hlen), SEEK_SET) < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
    char *text = malloc(hlen ? hlen : 1);
    if (!text)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory for the .npy header", path);
    got = read_full(fd, text, hlen);
    if (got < 0 || (size_t)got != hlen) {
        free(text);
        return got < 0 ? saemon_error_set(err, SAEMON_ERR_IO, "%s: read failed: %s", path, strerror(errno))
                       : saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: truncated .npy header", path);
    }
    npy_header h;
    status = saemon_npy_parse_header(text, hlen, path, &h, err);
    free(text);
    if (status)
        return status;

    /* Every size is checked before the data buffer is allocated. */
    size_t n, bytes, fbytes;
    if ((status = array_sizes(&h, path, &n, &bytes, &fbytes, err)) ||
        (status = check_data_size(size - data_offset, bytes, path, err)))
        return status;

    float *data = malloc(fbytes ? fbytes : 1);
    if (!data)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory for %zu bytes of .npy data", path,
                                fbytes);
    /* float16 lands in the upper half so it can widen in place. */
    void *dest = h.itemsize == 4 ? (void *)data : (void *)((char *)data + n * 2);
    got = read_full(fd, dest, bytes);
    if (got < 0 || (size_t)got != bytes) {
        free(data);
        return got < 0 ? saemon_error_set(err, SAEMON_ERR_IO, "%s: read failed: %s", path, strerror(errno))
                       : saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: truncated .npy data (file shrank?)", path);
    }
    return finish_array(data, n, &h, path, out, err);
}

saemon_status saemon_npy_parse_prefix(const void *buf, size_t avail, const char *name, npy_header *h,
                                      size_t *data_offset, size_t *total, saemon_error *err)
{
    const unsigned char *b = buf;
    size_t hlen = 0, off = 0, n, bytes, fbytes;
    /* The header may not end beyond what is on hand; the data may. */
    saemon_status status = parse_preamble(b, avail, name, avail, &hlen, &off, err);
    if (status || (status = saemon_npy_parse_header((const char *)b + off - hlen, hlen, name, h, err)) ||
        (status = array_sizes(h, name, &n, &bytes, &fbytes, err)))
        return status;
    if (__builtin_add_overflow(off, bytes, total))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: .npy shape has more bytes than fit in memory",
                                name);
    *data_offset = off;
    return SAEMON_OK;
}

saemon_status saemon_npy_from_memory(const void *buf, size_t len, const char *name, saemon_npy *out,
                                     saemon_error *err)
{
    if (!buf || !name || !out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_npy_from_memory: NULL argument");
    memset(out, 0, sizeof *out);
    npy_header h;
    size_t off, total, n, bytes, fbytes;
    saemon_status status = saemon_npy_parse_prefix(buf, len, name, &h, &off, &total, err);
    if (status || (status = array_sizes(&h, name, &n, &bytes, &fbytes, err)) ||
        (status = check_data_size(len - off, bytes, name, err)))
        return status;
    float *data = malloc(fbytes ? fbytes : 1);
    if (!data)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory for %zu bytes of .npy data", name,
                                fbytes);
    if (bytes)
        memcpy(h.itemsize == 4 ? (char *)data : (char *)data + n * 2, (const char *)buf + off, bytes);
    return finish_array(data, n, &h, name, out, err);
}

saemon_status saemon_npy_open(const char *path, saemon_npy *out, saemon_error *err)
{
    if (!path || !out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_npy_open: path and out must not be NULL");
    memset(out, 0, sizeof *out);
    int fd;
    uint64_t size;
    saemon_status status = file_open_regular(AT_FDCWD, path, "activation file", &fd, &size, err);
    if (status != SAEMON_OK)
        return status;
    status = read_fd(fd, size, path, out, err);
    close(fd);
    return status;
}

void saemon_npy_close(saemon_npy *npy)
{
    if (!npy)
        return;
    free(npy->data);
    free(npy->path);
    memset(npy, 0, sizeof *npy);
}

static void format_shape(const saemon_npy *npy, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (size_t d = 0; d < npy->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%zu", d ? ", " : "", npy->shape[d]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static size_t product(const size_t *dims, size_t n)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++)
        p *= dims[i]; /* cannot overflow: checked when the file was read */
    return p;
}

saemon_status saemon_npy_as_rows(const saemon_npy *npy, size_t d_in, bool allow_hook_z, size_t *n_rows,
                                 size_t *n_streams, size_t *tokens_per_stream, saemon_error *err)
{
    if (!npy || d_in == 0)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_npy_as_rows: no array or d_in is 0");
    const char *name = npy->path ? npy->path : "(array)";
    size_t nd = npy->ndim;
    const size_t *s = npy->shape;
    /* `token_dims` = dims before the feature dims; the last of them is the
     * token axis, the ones before it index streams. */
    size_t token_dims, heads_x_dhead;
    if (nd >= 1 && s[nd - 1] == d_in)
        token_dims = nd - 1;
    else if (allow_hook_z && nd >= 2 && !__builtin_mul_overflow(s[nd - 2], s[nd - 1], &heads_x_dhead) &&
             heads_x_dhead == d_in)
        token_dims = nd - 2; /* [..., n_heads, d_head]: C order is already head-major */
    else {
        char shape[200];
        format_shape(npy, shape, sizeof shape);
        return saemon_error_set(err, SAEMON_ERR_SHAPE,
                                "%s: activation shape %s does not fit the dictionary's d_in %zu: the last "
                                "dim must be %zu%s",
                                name, shape, d_in, d_in,
                                allow_hook_z ? " or the last two (n_heads, d_head) must multiply to it" : "");
    }
    size_t rows = product(s, token_dims);
    size_t streams = token_dims >= 2 ? product(s, token_dims - 1) : 1;
    size_t per_stream = token_dims >= 1 ? s[token_dims - 1] : 1;
    if (n_rows)
        *n_rows = rows;
    if (n_streams)
        *n_streams = streams;
    if (tokens_per_stream)
        *tokens_per_stream = per_stream;
    return SAEMON_OK;
}
