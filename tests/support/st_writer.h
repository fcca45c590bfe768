/* A tiny safetensors WRITER for tests: builds valid files (header JSON padded
 * with spaces to a multiple of 8, tensors contiguous in insertion order) and
 * lets tests craft broken ones from a raw header. */
#ifndef SAEMON_TEST_ST_WRITER_H
#define SAEMON_TEST_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_writer st_writer;

st_writer *stw_new(void);
void stw_free(st_writer *w);

/* Add a tensor from float values, stored as dtype "F32", "F16", "BF16" or "F64"
 * (F16/BF16 round to nearest even). n = product of shape. */
void stw_add_floats(st_writer *w, const char *name, const char *dtype, const uint64_t *shape,
                    size_t ndim, const float *values);
/* Add a tensor with raw bytes and any dtype string (no checks). */
void stw_add_raw(st_writer *w, const char *name, const char *dtype, const uint64_t *shape,
                 size_t ndim, const void *data, size_t nbytes);
/* Add a __metadata__ entry (string value). */
void stw_add_meta(st_writer *w, const char *key, const char *value);

/* Serialise; caller frees. */
uint8_t *stw_build(const st_writer *w, size_t *len);
/* Serialise into dir/name; returns the malloc'd path (NULL on failure). */
char *stw_write(const st_writer *w, const char *dir, const char *name);

/* A file from a hand-written header (length prefix = strlen(header)) plus data. */
uint8_t *st_raw_file(const char *header, const void *data, size_t data_len, size_t *len);

uint16_t test_f32_to_f16(float f);
uint16_t test_f32_to_bf16(float f);

#endif
