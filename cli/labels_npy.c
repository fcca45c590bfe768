/* Reading a 0/1 mask from .npy: the header is parsed here because the
 * library's reader takes float arrays only. */
#include "cli/labels_npy.h"
#include "cli/npy_rows.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "saemon/error.h"

#define MASK_MAX_BYTES ((size_t)1 << 34)

/* Element i as a double; dtype codes checked by the caller. */
static double element(const unsigned char *p, const char *descr, size_t i)
{
    char kind = descr[1];
    size_t size = (size_t)atoi(descr + 2);
    const unsigned char *e = p + i * size;
    uint64_t u = 0;
    for (size_t b = 0; b < size; b++) /* little-endian (or single byte) */
        u |= (uint64_t)e[b] << (8 * b);
    if (kind == 'f' && size == 4) {
        float f;
        uint32_t w = (uint32_t)u;
        memcpy(&f, &w, 4);
        return f;
    }
    if (kind == 'f') {
        double v;
        memcpy(&v, &u, 8);
        return v;
    }
    if (kind == 'i' && size < 8 && (u >> (8 * size - 1)) & 1)
        return -1; /* negative */
    if (kind == 'i' && size == 8 && (int64_t)u < 0)
        return -1;
    return (double)u;
}

bool labels_npy_mask(const char *what, const char *path, size_t n_streams, size_t tps, uint8_t *mask)
{
    saemon_error err = {0};
    char *buf = NULL;
    size_t len = 0;
    if (read_whole_file(path, MASK_MAX_BYTES, "label mask", &buf, &len, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon %s: %s\n", what, err.message);
        return false;
    }
    const unsigned char *b = (const unsigned char *)buf;
    bool ok = false;
    char descr[8];
    bool fortran = false;
    size_t shape[NPY_ROWS_MAX_DIMS], ndim = 0, data = 0;
    if (!npy_header_parse(buf, len, descr, &fortran, shape, &ndim, &data)) {
        fprintf(stderr, "saemon %s: %s: not a .npy file (bad magic, truncated or malformed header)\n", what, path);
        goto done;
    }
    static const char *const dtypes[] = {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8",
                                         "<i8", "<f4", "<f8", "u1", "i1", "b1"};
    bool known = false;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        known |= !strcmp(descr, dtypes[i]);
    if (!known || strlen(descr) != 3) {
        fprintf(stderr, "saemon %s: %s: dtype '%s' is not a 0/1 mask type (bool, little-endian int or float)\n",
                what, path, descr);
        goto done;
    }
    size_t n = 1, lead = 1;
    for (size_t i = 0; i < ndim; i++)
        n *= shape[i];
    for (size_t i = 0; i + 1 < ndim; i++)
        lead *= shape[i];
    bool shape_ok = ndim >= 1 && shape[ndim - 1] == tps && lead == n_streams;
    if (!shape_ok) {
        char got[160] = "", *p = got;
        for (size_t i = 0; i < ndim; i++)
            p += snprintf(p, (size_t)(got + sizeof got - p), "%s%zu", i ? ", " : "", shape[i]);
        if (n_streams == 1)
            fprintf(stderr, "saemon %s: %s: mask shape [%s] differs from the recording's [%zu]\n", what, path, got,
                    tps);
        else
            fprintf(stderr, "saemon %s: %s: mask shape [%s] differs from the recording's [%zu, %zu]\n", what,
                    path, got, n_streams, tps);
        goto done;
    }
    if (fortran && ndim > 1) {
        fprintf(stderr, "saemon %s: %s: a Fortran-ordered mask is not supported (save np.ascontiguousarray(mask))\n",
                what, path);
        goto done;
    }
    size_t esize = (size_t)atoi(descr + 2);
    if ((len - data) / esize < n || len - data != n * esize) {
        fprintf(stderr, "saemon %s: %s: the data holds %zu bytes, the header says %zu\n", what, path, len - data,
                n * esize);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        double v = element(b + data, descr, i);
        if (v != 0 && v != 1) {
            fprintf(stderr, "saemon %s: %s: element %zu (stream %zu, token %zu) is %g, not 0 or 1\n", what, path, i,
                    i / tps, i % tps, v);
            goto done;
        }
        mask[i] = v == 1;
    }
    ok = true;
done:
    free(buf);
    return ok;
}
