/* Consumer-side bookkeeping of open streams: which ones have a pending gap
 * (a frame of theirs was rejected, or the producer lost track of its drops),
 * so the next frame of the stream is reported with gap = true. */
#ifndef SAEMON_RING_STREAMS_H
#define SAEMON_RING_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ring_stream_entry {
    uint64_t key; /* stream + 1; 0 = empty */
    bool gap_pending;
} ring_stream_entry;

typedef struct ring_streams {
    ring_stream_entry *e;
    size_t cap;   /* power of two */
    size_t count;
    uint64_t resets; /* times the table hit its cap and was forgotten */
} ring_streams;

void ring_streams_free(ring_streams *s);
/* Note a frame of `stream`; returns true if it had a pending gap (cleared).
 * `end` forgets the stream afterwards. */
bool ring_streams_frame(ring_streams *s, uint64_t stream, bool end);
/* The next frame of `stream` must report a gap. */
void ring_streams_mark_gap(ring_streams *s, uint64_t stream);
/* Every open stream's next frame must report a gap. */
void ring_streams_mark_all(ring_streams *s);

#endif
