/* libFuzzer target: arbitrary bytes as a .npy file. The reader must either
 * accept them (and then the array must be self-consistent) or fail with a
 * message — never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "saemon/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader takes a path; a memfd is a regular file with no disk I/O. */
    int fd = memfd_create("fuzz.npy", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    saemon_npy a;
    saemon_error err;
    if (saemon_npy_open(path, &a, &err) == SAEMON_OK) {
        size_t n = 1;
        for (size_t d = 0; d < a.ndim; d++)
            n *= a.shape[d];
        /* touch every element so ASan checks the buffer size */
        volatile float sink = 0;
        for (size_t i = 0; i < n; i++)
            sink += a.data[i];
        (void)sink;
        size_t rows, streams, per;
        if (a.ndim && a.shape[a.ndim - 1])
            if (saemon_npy_as_rows(&a, a.shape[a.ndim - 1], 1, &rows, &streams, &per, &err) != SAEMON_OK ||
                rows * a.shape[a.ndim - 1] != n)
                abort();
        saemon_npy_close(&a);
    } else if (!err.message[0]) {
        abort(); /* every failure explains itself */
    }
    close(fd);
    return 0;
}
