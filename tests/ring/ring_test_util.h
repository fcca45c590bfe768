/* Helpers shared by the ring tests and the frame fuzzer: unique ring names,
 * a raw view of a segment, and a hand-made frame writer (to forge corrupt
 * frames exactly as a buggy or hostile producer would). */
#ifndef SAEMON_RING_TEST_UTIL_H
#define SAEMON_RING_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ring_wire.h"
#include "saemon/producer.h"
#include "saemon/ring.h"

/* "t<pid>-<tag>": unique across concurrently running test processes. */
void ring_test_name(char *buf, size_t len, const char *tag);

/* Map the named segment read-write (as a producer would); NULL on failure. */
typedef struct ring_raw {
    ring_header *h;
    uint8_t *slots;
    size_t bytes;
} ring_raw;
bool ring_raw_open(const char *name, ring_raw *out);
void ring_raw_close(ring_raw *raw);

/* Write a frame at the ring's head from a caller-built header (commit, seq
 * and checksum filled in unless `keep` says otherwise) and publish it. */
enum { RAW_KEEP_CHECKSUM = 1, RAW_KEEP_SEQ = 2, RAW_NO_COMMIT = 4, RAW_NO_HEAD = 8 };
void ring_raw_publish(ring_raw *raw, frame_header fh, const void *rows, size_t row_bytes, int keep);

/* An accepted producer announcement written by hand (d_in, f32, hook). */
void ring_raw_announce(ring_raw *raw, uint32_t d_in, const char *hook);

/* Attach a C producer with the given d_in/hook/dtype and a 5 s handshake. */
saemon_producer *ring_test_producer(const char *ring, uint32_t d_in, const char *hook,
                                    saemon_producer_dtype dtype, uint32_t lossless_us);

/* Attach a C producer (f32, d_in, hook) from a thread while `r`'s consumer
 * judges its announcement in saemon_ring_next(); NULL if it did not attach.
 * Frames the loop takes meanwhile are dropped. */
saemon_producer *ring_test_attach_served(saemon_ring *r, const char *ring, uint32_t d_in, const char *hook);

/* Fill n_rows x d_in floats with a pattern derived from (stream, token). */
void ring_test_rows(float *dst, uint64_t stream, uint64_t token, uint32_t n_rows, uint32_t d_in);
bool ring_test_rows_ok(const float *rows, uint64_t stream, uint64_t token, uint32_t n_rows,
                       uint32_t d_in);

#endif
