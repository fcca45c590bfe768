/* Reading a recording's rows a chunk at a time, so a recording larger than
 * memory can be encoded (features). Little-endian float32 C-order files are
 * read with pread; any other dtype the library reads (float16, big-endian,
 * Fortran order) is loaded whole with saemon_npy_open. */
#ifndef SAEMON_CLI_NPY_ROWS_H
#define SAEMON_CLI_NPY_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/saemon.h"

#define NPY_ROWS_MAX_DIMS 8

/* Parse a .npy header: dtype descr ("<f4"), order, shape and where the data
 * starts. false on a malformed or truncated header. */
bool npy_header_parse(const char *buf, size_t len, char descr[8], bool *fortran, size_t *shape, size_t *ndim,
                      size_t *data_offset);

typedef struct npy_rows {
    const char *path;
    int fd;              /* streamed, or -1 */
    uint64_t data_offset;
    saemon_npy whole;    /* loaded whole when not streamed */
    size_t d_in, n_rows, n_streams, tokens_per_stream;
} npy_rows;

/* Open `path` as rows of d_in floats (saemon_npy_as_rows rules). */
bool npy_rows_open(npy_rows *r, const char *what, const char *path, size_t d_in, bool hook_z);
/* Rows [first, first + n): a pointer into the loaded file, or `buf` (n * d_in
 * floats) filled from disk. NULL after a message on a read error. */
const float *npy_rows_read(npy_rows *r, const char *what, size_t first, size_t n, float *buf);
void npy_rows_close(npy_rows *r);

#endif
