/* Reading the members of a NumPy .npz (a ZIP of .npy files) with libzip,
 * treating the archive as untrusted: the entry count is bounded and every
 * member's declared size is checked by the caller before it is inflated. */
#ifndef SAEMON_NPZ_H
#define SAEMON_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "saemon/error.h"

/* More entries than this is not an SAE's params.npz. */
#define NPZ_MAX_ENTRIES 64
/* Longest member name kept (longer names are refused). */
#define NPZ_MAX_NAME 128

typedef struct npz_member {
    char name[NPZ_MAX_NAME]; /* as stored, e.g. "W_enc.npy" */
    uint64_t index;
    uint64_t size;           /* declared uncompressed size (central directory) */
    uint64_t comp_size;      /* compressed size */
    int method;              /* 0 stored, 8 deflate (nothing else is accepted) */
} npz_member;

typedef struct npz_archive {
    struct zip *zip;
    const char *label;       /* the .npz path, used in messages (not owned) */
    size_t n_members;
    npz_member members[NPZ_MAX_ENTRIES];
} npz_archive;

/* Open `len` bytes (not copied; they must outlive the archive) as a zip and
 * list its members. Refuses a bad central directory, too many entries,
 * encrypted entries, compression other than stored/deflate, a declared
 * uncompressed size deflate could not have produced from the compressed
 * size, and duplicate names. */
saemon_status npz_open(const void *bytes, size_t len, const char *label, npz_archive *out,
                       saemon_error *err);

/* Inflate the first `len` bytes of member m (len <= m->size) into buf. */
saemon_status npz_read_prefix(npz_archive *a, const npz_member *m, void *buf, size_t len,
                              saemon_error *err);

/* Inflate the whole member into buf, which holds exactly m->size bytes; the
 * caller has checked m->size against what it expects. The stream must end
 * there and its CRC-32 must match. */
saemon_status npz_read_all(npz_archive *a, const npz_member *m, void *buf, saemon_error *err);

void npz_close(npz_archive *a);

#endif
