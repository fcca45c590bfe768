/* A per-token 0/1 label mask stored as .npy (bool, int or float dtypes). */
#ifndef SAEMON_CLI_LABELS_NPY_H
#define SAEMON_CLI_LABELS_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read `path` into mask[n_streams * tps]: its shape must be [tps] (one
 * stream) or [..., tps] with the leading dims multiplying to n_streams, and
 * every element 0 or 1. false after a message naming the file and element. */
bool labels_npy_mask(const char *what, const char *path, size_t n_streams, size_t tps, uint8_t *mask);

#endif
