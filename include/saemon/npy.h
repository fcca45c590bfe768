/* saemon — NumPy .npy arrays: recorded activations in, features out. */
#ifndef SAEMON_NPY_H
#define SAEMON_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/api.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAEMON_NPY_MAX_DIMS 8

/* An activation file read fully into memory as float32, C order. */
typedef struct saemon_npy {
    size_t ndim;
    size_t shape[SAEMON_NPY_MAX_DIMS];
    float *data;          /* product(shape) floats, row-major, owned */
    const char *source_dtype; /* "<f4", "<f2", ... as in the header */
    bool fortran_order;   /* the file was Fortran-ordered (data has been transposed to C order) */
    char *path;           /* the file read (owned copy), used in messages */
} saemon_npy;

/* Read a float32 or float16 .npy (format 1.0/2.0/3.0, either byte order, C or
 * Fortran order; float16 is converted exactly). Every size in the header is
 * checked against the file before allocation: a short file is a "truncated"
 * SAEMON_ERR_FORMAT, extra bytes after the data are refused too. Other dtypes
 * are SAEMON_ERR_UNSUPPORTED. On failure *out is zeroed. */
SAEMON_API saemon_status saemon_npy_open(const char *path, saemon_npy *out, saemon_error *err);
SAEMON_API void saemon_npy_close(saemon_npy *npy);

/* View an activation array as [n_rows][d_in] (no copy: data is C order): the
 * last dim must be d_in, or (when allow_hook_z) the last two dims must be
 * [n_heads, d_head] with n_heads × d_head = d_in (flattened head-major like
 * SAELens' hook_z reshape). The dim before those is the token axis and the
 * dims before it index streams: [n, d_in] is 1 stream of n tokens,
 * [batch, seq, d_in] is batch streams of seq tokens, [d_in] is one row.
 * Anything else is SAEMON_ERR_SHAPE naming the shape and d_in. Any output
 * pointer may be NULL. */
SAEMON_API saemon_status saemon_npy_as_rows(const saemon_npy *npy, size_t d_in, bool allow_hook_z,
                                 size_t *n_rows, size_t *n_streams, size_t *tokens_per_stream,
                                 saemon_error *err);

/* Write a float32 C-order .npy (format 1.0, '<f4', data 64-byte aligned) of
 * the given shape (ndim <= SAEMON_NPY_MAX_DIMS). A regular file is written to
 * a temporary in the same directory, fsync'ed and renamed over `path`, so a
 * failure (e.g. ENOSPC) never leaves a half-written file; a device or FIFO
 * path is written directly. */
SAEMON_API saemon_status saemon_npy_write_f32(const char *path, const float *data, size_t ndim,
                                   const size_t *shape, saemon_error *err);

#ifdef __cplusplus
}
#endif
#endif
