/* saemon — consumer side of the shared-memory activation ring (issue 9).
 *
 * A model process (the producer: libsaemon-producer, the Python package in
 * producers/python, `saemon produce`) streams activation rows into a POSIX
 * shared-memory segment; saemon (the consumer) reads them, validates every
 * byte, and publishes per-stream verdicts back. One ring = one producer and
 * one consumer. The consumer creates the segment (owner-only, mode 0600) with
 * the geometry it needs; producers attach. The byte layout is in docs/ring.md.
 *
 * Threading: one thread calls saemon_ring_next/release; saemon_ring_get_stats
 * and saemon_ring_set_verdict may be called from any other thread. */
#ifndef SAEMON_RING_H
#define SAEMON_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/api.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saemon_ring saemon_ring;

/* Verdict severities published per stream (the highest so far wins). The same
 * numbers are read by saemon_producer_get_verdict() and Python producer.verdict(). */
typedef enum saemon_verdict {
    SAEMON_VERDICT_NONE = 0,
    SAEMON_VERDICT_INFO = 1,
    SAEMON_VERDICT_WARNING = 2,
    SAEMON_VERDICT_CRITICAL = 3,
    SAEMON_VERDICT_BLOCK = 4, /* a rule with `action: block` fired: stop the generation */
} saemon_verdict;

/* Stable lower-case name ("none", "info", "warning", "critical", "block"). */
SAEMON_API const char *saemon_verdict_name(saemon_verdict v);
/* Parse those names (also "error" = critical); returns -1 if unknown. */
SAEMON_API int saemon_verdict_parse(const char *name);

/* Why a frame or a producer was refused (index into the rejected[] counters). */
typedef enum saemon_ring_reject {
    SAEMON_RING_REJECT_HEADER = 0, /* bad magic/version/commit word/flags/dtype */
    SAEMON_RING_REJECT_SIZE,       /* row count or d_in do not fit the slot / announcement */
    SAEMON_RING_REJECT_CHECKSUM,   /* checksum mismatch (corrupted or torn frame) */
    SAEMON_RING_REJECT_NONFINITE,  /* rows contain NaN or Inf */
    SAEMON_RING_REJECT_REFUSED,    /* frame from a producer whose announcement was refused */
    SAEMON_RING_REJECT_INDEX,      /* producer index jumped (head behind tail or > slots ahead) */
    SAEMON_RING_REJECT_REQUEST_ID, /* a request id frame: length 0 or > 128, not printable UTF-8,
                                    * no NUL after it, or rows/end-of-stream with it */
    SAEMON_RING_REJECT_COUNT
} saemon_ring_reject;

/* Stable name of a reject reason ("header", "size", "checksum", ...). */
SAEMON_API const char *saemon_ring_reject_name(saemon_ring_reject r);

typedef struct saemon_ring_options {
    const char *name;        /* ring name: [A-Za-z0-9._-]{1,64}; segment "/saemon-ring.<name>" */
    uint32_t slots;          /* frames in flight (power of two, 2..65536); 0 = 256 */
    uint32_t max_rows_per_frame; /* rows one slot must hold at fp32; 0 = 16 */
    uint32_t d_in;           /* expected row width; 0 = accept any (then slot_bytes sizes the slots) */
    const char *hook;        /* expected hook name; NULL = accept any */
    uint32_t slot_bytes;     /* 0 = 64 + max_rows_per_frame * d_in * 4 (d_in 0: 64 KiB + 64) */
    uint32_t verdict_entries; /* per-stream verdict table (rounded up to a power of two, 16..2^24);
                              * 0 = 4096. Size it >= 4x the streams open at once (docs/ring.md) */
    bool allow_nonfinite;    /* accept rows with NaN/Inf (default: reject and count) */
    uint32_t mode;           /* segment permissions: 0 = 0600 (owner only); 0660 lets a model
                              * server of `gid` attach (nothing else is accepted) */
    bool set_group;          /* give the segment to group `gid` (ring_group in saemon serve) */
    uint32_t gid;
    bool evaluated_by_caller; /* false: a frame counts as evaluated (its verdicts visible to
                              * saemon_producer_verdict_wait) when released; true: only when the
                              * caller says so with saemon_ring_evaluated() (consumers that
                              * release frames before running the rules on them) */
} saemon_ring_options;

/* One frame, valid until saemon_ring_release() or the next saemon_ring_next(). */
typedef struct saemon_frame {
    uint64_t seq;            /* producer sequence number of this frame */
    uint64_t stream;         /* stream id (one per request/sequence) chosen by the producer */
    uint64_t token;          /* token position of rows[0]; row i is token + i */
    uint32_t n_rows;
    uint32_t d_in;
    const float *rows;       /* n_rows * d_in floats (fp16/bf16 frames converted exactly) */
    bool gap;                /* this stream lost tokens before this frame (drops or rejects):
                              * windowed rules must not treat the window as contiguous */
    bool end_of_stream;      /* the producer closed the stream (n_rows may be 0): clear its
                              * verdict (saemon_ring_end_verdict) once its rows are evaluated */
    bool new_producer;       /* first frame of a newly attached producer: the streams and
                              * verdicts of the ring before this frame belong to one gone
                              * (saemon_ring_clear_verdicts before evaluating this frame) */
    uint64_t dropped;        /* frames the producer dropped (ring full) just before this one */
    const char *request_id;  /* non-NULL: a request id frame (no rows): from here on `stream`
                              * is the request with this id (1..128 bytes of printable UTF-8,
                              * validated), until its end of stream or the next request id.
                              * Valid until release, like rows. */
} saemon_frame;

typedef enum saemon_ring_producer_state {
    SAEMON_RING_PRODUCER_NONE = 0,     /* nothing has announced yet */
    SAEMON_RING_PRODUCER_ACCEPTED,
    SAEMON_RING_PRODUCER_REFUSED,      /* see refuse_reason */
} saemon_ring_producer_state;

typedef struct saemon_ring_stats {
    uint64_t tokens_received;     /* rows delivered by saemon_ring_next */
    uint64_t frames_received;
    uint64_t tokens_produced;     /* rows the producer says it produced (published + dropped) */
    uint64_t frames_produced;     /* frames the producer published (producer's count) */
    uint64_t frames_dropped;      /* producer-side drops (ring full / lossless timeout) */
    uint64_t tokens_dropped;
    uint64_t tokens_lost_consumer_down; /* the producer's count of tokens lost while no consumer
                                         * served it (carried across consumer restarts) */
    uint64_t frames_rejected[SAEMON_RING_REJECT_COUNT];
    uint64_t frames_rejected_total;
    uint64_t producers_refused;   /* announcements refused since creation */
    uint64_t producers_accepted;  /* announcements accepted since creation */
    uint64_t verdicts_evicted[5]; /* verdicts lost because their stream's table window was full,
                                   * by severity of the verdict lost (index saemon_verdict) */
    uint32_t verdict_entries;     /* size of the verdict table */
    uint64_t producer_seq;        /* frames the producer has written (its head) */
    uint64_t consumer_seq;        /* frames consumed (tail); lag in frames = producer_seq - consumer_seq */
    uint64_t lag_tokens;          /* rows published but not yet consumed */
    double last_frame_age_s;      /* since the last accepted frame; -1 = none yet */
    double heartbeat_age_s;       /* since the producer's last heartbeat; -1 = never */
    bool producer_alive;          /* a producer process holds the ring's producer lock */
    int32_t producer_pid;
    saemon_ring_producer_state producer_state;
    char model[120];              /* announcement (empty when none) */
    char hook[120];
    uint32_t d_in;
    const char *dtype;            /* "f32", "f16", "bf16" or "" */
    char refuse_reason[256];      /* last refusal, "" if none */
    uint64_t segment_faults;      /* times the segment broke under the consumer (shrunk by a
                                   * producer, or /dev/shm could not provide a page): each time
                                   * the consumer survived and recreated it (docs/ring.md) */
    uint64_t gap_table_resets;    /* times the per-stream gap table was full and forgotten (pending
                                   * gap marks lost) */
    bool dead;                    /* the segment broke and could not be recreated (retried once a
                                   * second; next() returns 0 meanwhile) */
    char dead_reason[256];
    double consumer_progress_age_s; /* since the consumer last moved its tail; -1 = never */
} saemon_ring_stats;

/* Create (or, after a crashed consumer, replace) the shared segment and own it.
 * Fails if another live consumer serves the same name, or if /dev/shm cannot
 * back the whole segment (the message gives the bytes needed and free). The
 * first call installs a process-wide SIGBUS handler that protects the ring
 * mappings against a producer shrinking a segment (docs/ring.md, "Threat
 * model"); a SIGBUS elsewhere goes to the handler installed before it. An
 * application that installs its own SIGBUS handler later must chain to it. */
SAEMON_API saemon_status saemon_ring_create(const saemon_ring_options *opt, saemon_ring **out,
                                 saemon_error *err);

/* Wait up to timeout_ms (0 = poll, <0 = forever) for the next valid frame.
 * Returns 1 (frame filled in), 0 (timeout), -1 (error in err; the ring is
 * unusable). Malformed frames are skipped and counted, never returned. Idle
 * waiting: see saemon_ring_wait (no busy loop). Call saemon_ring_release() when
 * done with the frame (next() releases an unreleased frame implicitly). */
SAEMON_API int saemon_ring_next(saemon_ring *r, saemon_frame *f, int timeout_ms, saemon_error *err);

/* Wait up to timeout_ms (0 = just look, <0 = forever) until one of rings[0..n)
 * has a frame or a producer announcement to handle: returns 1 (call
 * saemon_ring_next with timeout 0 on each) or 0 (timeout). For a thread that
 * serves several rings; saemon_ring_next waits the same way on one. Waiting
 * never makes a producer call the kernel while its ring is in use: the
 * consumer polls on a timer (~0.4 ms) while frames arrived in the last 250 ms,
 * and sleeps on the ring's futex only after that (the first frame after the
 * pause wakes it). docs/ring.md, "Consume". */
SAEMON_API int saemon_ring_wait(saemon_ring *const *rings, size_t n, int timeout_ms);

/* Hand the slot of the last frame back to the producer. */
SAEMON_API void saemon_ring_release(saemon_ring *r);

/* Snapshot of counters and the producer's announcement (thread-safe). A NULL
 * ring gives zero counters, ages -1 and empty strings. */
SAEMON_API void saemon_ring_get_stats(saemon_ring *r, saemon_ring_stats *out);

/* Raise the verdict of `stream` to `severity` (never lowers it). Visible to the
 * producer immediately. Thread-safe with respect to next(). */
SAEMON_API void saemon_ring_set_verdict(saemon_ring *r, uint64_t stream, saemon_verdict severity);

/* The stream ended (its end-of-stream frame and every row before it were
 * evaluated): forget its verdict, so a new sequence on the same stream id
 * starts clean. Thread-safe. */
SAEMON_API void saemon_ring_end_verdict(saemon_ring *r, uint64_t stream);

/* Forget every verdict (a new producer attached: frame.new_producer). */
SAEMON_API void saemon_ring_clear_verdicts(saemon_ring *r);

/* With options.evaluated_by_caller: every frame released so far has been
 * evaluated, its verdicts set. Wakes producers waiting for them. Call from
 * the thread that calls next(). */
SAEMON_API void saemon_ring_evaluated(saemon_ring *r);

/* Current verdict of a stream as the producer would read it. */
SAEMON_API saemon_verdict saemon_ring_get_verdict(saemon_ring *r, uint64_t stream);

/* Shared-memory name of the ring ("/saemon-ring.<name>"). */
SAEMON_API const char *saemon_ring_shm_name(const saemon_ring *r);

/* Retire the segment (producers notice and re-attach to a new consumer) and
 * unlink it. NULL is a no-op. */
SAEMON_API void saemon_ring_destroy(saemon_ring *r);

#ifdef __cplusplus
}
#endif
#endif
