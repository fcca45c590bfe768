/* safetensors reader: mmap a file read-only and validate it completely
 * (docs/formats.md lists every rule) before any tensor is used. */
#ifndef SAEMON_SAFETENSORS_H
#define SAEMON_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"
#include "saemon/error.h"

/* The reference reader's cap on the JSON header (safetensors MAX_HEADER_SIZE). */
#define ST_MAX_HEADER_BYTES 100000000ULL

typedef struct st_tensor {
    char *name;
    char dtype_name[16];  /* as written in the header, e.g. "BF16" */
    int float_dtype;      /* a saemon_dtype for F32/F16/BF16/F64, else -1 */
    unsigned dtype_bits;  /* element size in bits */
    size_t ndim;
    uint64_t *shape;      /* ndim entries (NULL when ndim == 0) */
    uint64_t nelem;
    uint64_t begin, end;  /* byte offsets into the data section */
    const uint8_t *data;  /* = data section + begin; may be unaligned */
} st_tensor;

typedef struct st_file {
    char *label;          /* path (or caller's label) used in messages */
    const void *map;      /* mmap of the whole file, or NULL when parsed from memory */
    size_t map_len;
    const uint8_t *bytes; /* the whole file */
    uint64_t size;
    uint64_t header_len;  /* N */
    size_t n_tensors;
    st_tensor *tensors;   /* sorted by begin offset */
    size_t n_meta;
    char **meta_keys, **meta_values;
    /* st_open only: the file opened for pread (st_read) when has_fd, and
     * what identifies the file on disk (a reload compares it). */
    bool has_fd;
    int fd;
    uint64_t dev, ino, mtime_ns;
    uint64_t bytes_read; /* counted by st_read: what the loader actually read */
} st_file;

/* Map `path` read-only and validate it. On failure `out` is left empty. */
saemon_status st_open(const char *path, st_file *out, saemon_error *err);

/* Validate `len` bytes already in memory (not copied: they must outlive `out`).
 * `label` names the file in error messages. */
saemon_status st_parse(const uint8_t *bytes, size_t len, const char *label, st_file *out,
                       saemon_error *err);

void st_close(st_file *f);

/* Read `len` bytes at `offset` of the data section into dst: pread on the
 * file (so only what is read becomes resident), or a copy for a file parsed
 * from memory. Counts f->bytes_read. The range must lie inside the data
 * section (the tensors' offsets are validated by st_parse). */
saemon_status st_read(st_file *f, uint64_t offset, size_t len, void *dst, saemon_error *err);

/* Hex SHA-256 of the whole file, streamed in chunks (nothing stays resident). */
saemon_status st_sha256(st_file *f, char out[65], saemon_error *err);

const st_tensor *st_find(const st_file *f, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *st_meta(const st_file *f, const char *key);

/* Reject duplicate keys among a cJSON object's children (cJSON keeps them all);
 * `where` names the object in the message. */
struct cJSON;
saemon_status st_json_unique_keys(const struct cJSON *obj, const char *label, const char *where,
                                  saemon_error *err);

/* "[a, b, c]" into buf (truncated if needed); returns buf. */
const char *st_shape_str(const st_tensor *t, char *buf, size_t len);

#endif
