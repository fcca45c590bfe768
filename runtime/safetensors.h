/* safetensors reader: mmap a file read-only and validate it completely
 * (docs/formats.md lists every rule) before any tensor is used. */
#ifndef SAEMON_SAFETENSORS_H
#define SAEMON_SAFETENSORS_H

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
} st_file;

/* Map `path` read-only and validate it. On failure `out` is left empty. */
saemon_status st_open(const char *path, st_file *out, saemon_error *err);

/* Validate `len` bytes already in memory (not copied: they must outlive `out`).
 * `label` names the file in error messages. */
saemon_status st_parse(const uint8_t *bytes, size_t len, const char *label, st_file *out,
                       saemon_error *err);

void st_close(st_file *f);

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
