/* NumPy .npy header parsing, shared by the reader and its tests/fuzzer. */
#ifndef SAEMON_NPY_INTERNAL_H
#define SAEMON_NPY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "saemon/npy.h"

/* Largest header dict accepted (numpy itself refuses > 10000 bytes by
 * default); a valid saemon header is < 300 bytes. */
#define SAEMON_NPY_MAX_HEADER_LEN (1u << 20)

typedef struct npy_header {
    const char *descr;   /* one of the accepted static strings */
    size_t itemsize;     /* 2 or 4 */
    int big_endian;
    bool fortran_order;
    size_t ndim;
    size_t shape[SAEMON_NPY_MAX_DIMS];
} npy_header;

/* Parse the Python-literal dict of a .npy header (the bytes after the
 * length field, `len` of them). `name` is used in messages only. */
saemon_status saemon_npy_parse_header(const char *text, size_t len, const char *name,
                                      npy_header *out, saemon_error *err);

/* Parse the preamble and header of a .npy image from its first `avail` bytes
 * (the header must lie within them; the data need not). On success
 * *data_offset is where the data starts and *total the exact byte size the
 * whole image must have (overflow-checked). */
saemon_status saemon_npy_parse_prefix(const void *buf, size_t avail, const char *name, npy_header *h,
                                      size_t *data_offset, size_t *total, saemon_error *err);

/* saemon_npy_open for a .npy image already in memory (`len` bytes, copied):
 * same checks, same result. `name` labels messages and becomes out->path. */
saemon_status saemon_npy_from_memory(const void *buf, size_t len, const char *name, saemon_npy *out,
                                     saemon_error *err);

#endif
