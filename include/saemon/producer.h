/* saemon — producer side of the shared-memory activation ring.
 *
 * libsaemon-producer (pkg-config: saemon-producer) depends on libc only. A
 * model server attaches to the ring a running `saemon serve` created, then
 * publishes activation rows per (stream, token). Publishing never blocks the
 * model: when the ring is full the frame is dropped and counted, and the next
 * frame tells saemon how many were lost (explicit lossless mode waits at most
 * a configured number of microseconds). If saemon is not running yet, or
 * restarts, the producer keeps working (frames are dropped and counted) and
 * re-attaches on its own. Byte layout and protocol: docs/ring.md.
 *
 * Every call is serialised on an internal mutex (calls from several threads
 * are safe; the hot path takes it uncontended). Unless heartbeat_ms < 0, a
 * library thread keeps the heartbeat alive while the model is idle. */
#ifndef SAEMON_PRODUCER_H
#define SAEMON_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saemon_producer saemon_producer;

/* Row element types (same codes as the frame header's dtype byte). */
typedef enum saemon_producer_dtype {
    SAEMON_PRODUCER_F32 = 0,
    SAEMON_PRODUCER_F16 = 1,
    SAEMON_PRODUCER_BF16 = 2,
} saemon_producer_dtype;

/* Return codes of the producer calls. */
enum {
    SAEMON_PRODUCER_OK = 0,           /* published */
    SAEMON_PRODUCER_DROPPED = 1,      /* not published (ring full, no consumer yet, refused): counted */
    SAEMON_PRODUCER_EINVAL = -1,      /* bad argument (NULL rows, n_rows 0, stream >= 2^56 - 1) */
    SAEMON_PRODUCER_EREFUSED = -2,    /* attach: saemon refused the announcement (reason in message) */
    SAEMON_PRODUCER_ESYS = -3,        /* attach: system error (errno text in message) */
    SAEMON_PRODUCER_EBUSY = -4,       /* attach: another live producer owns the ring */
    SAEMON_PRODUCER_ETIMEDOUT = -5,   /* verdict_wait: saemon did not evaluate every published
                                       * frame within the wait (or no consumer): no fresh verdict */
};

typedef struct saemon_producer_options {
    const char *ring;          /* ring name as given to `saemon serve --ring` */
    const char *model;         /* model id announced to saemon (free text, < 120 bytes) */
    const char *hook;          /* hook name, e.g. "blocks.8.hook_resid_post" (< 120 bytes);
                                * NULL/"" = announce the hook saemon expects (replay tools) */
    uint32_t d_in;             /* row width */
    saemon_producer_dtype dtype;
    uint32_t lossless_wait_us; /* 0 = never wait (drop when full); else wait at most this long */
    int handshake_timeout_ms;  /* attach waits this long for saemon's accept/refuse; 0 = 1000,
                                * <0 = do not wait. A missing consumer is not an error. */
    int heartbeat_ms;          /* a library thread refreshes the heartbeat (and re-attaches,
                                * publishes pending end-of-stream frames) this often while the
                                * model is idle; 0 = 1000, <0 = no thread (call heartbeat()) */
    /* Optional: called once each time saemon refuses this producer after
     * attach() returned (the ring appeared later with another hook or d_in,
     * or speaks another protocol version), from the heartbeat thread (or the
     * call that noticed it), without the producer's lock held: it may call
     * the producer. The refusal is also in saemon_producer_stats. */
    void (*on_refused)(const char *reason, void *user);
    void *on_refused_user;
} saemon_producer_options;

/* Counters of this producer object (lifetime, across re-attaches). */
typedef struct saemon_producer_stats {
    uint64_t frames_published;
    uint64_t tokens_published;
    uint64_t frames_dropped;
    uint64_t tokens_dropped;
    uint64_t reattaches;       /* times the producer found a new consumer segment */
    uint64_t eos_pending;      /* end-of-stream frames waiting for room (published first) */
    uint64_t eos_lost;         /* end-of-stream frames dropped (more than 2^20 waiting, or no memory) */
    uint64_t verdict_timeouts; /* saemon_producer_verdict_wait calls that timed out */
    uint64_t tokens_lost_consumer_down; /* lost while no consumer served the ring: dropped
                                * before saemon (re)started, or left unconsumed when it died;
                                * carried to the next consumer (tokens_lost_total{consumer_down}) */
    uint64_t request_ids_lost; /* request ids not sent (no room in a slot, no memory) or not kept
                                * for lookup by id (more than 65,536 requests tagged at once) */
    bool connected;            /* attached to a live segment and not refused */
    bool refused;              /* saemon refused the announcement, or the ring speaks another
                                * protocol version: nothing is published (refuse_reason) */
    char refuse_reason[256];   /* "" unless refused */
} saemon_producer_stats;

/* Attach. On failure returns a negative code, *out = NULL, and writes a
 * one-line reason into msg (msg_len bytes, may be NULL). */
SAEMON_API int saemon_producer_attach(const saemon_producer_options *opt, saemon_producer **out, char *msg,
                           size_t msg_len);

/* Publish n_rows rows (row-major, n_rows * d_in elements of the announced
 * dtype) for token positions token .. token + n_rows - 1 of `stream`. Rows
 * that do not fit one slot are split into several frames. Returns
 * SAEMON_PRODUCER_OK, SAEMON_PRODUCER_DROPPED (some or all frames dropped) or
 * SAEMON_PRODUCER_EINVAL. Never blocks beyond lossless_wait_us per frame, and
 * makes no system call while saemon consumes the ring (it polls a ring in use;
 * only the first frame after 250 ms of silence wakes it with one futex call).
 * docs/serve.md, "What the model's thread pays". */
SAEMON_API int saemon_producer_publish(saemon_producer *p, uint64_t stream, uint64_t token,
                            const void *rows, uint32_t n_rows);

/* Tell saemon the stream is finished (a zero-row frame with end-of-stream).
 * Never dropped: if the ring is full it is kept and published before any
 * later frame (or by the heartbeat). saemon then resolves the stream's alerts
 * and clears its verdict: the same stream id may be reused for a new
 * sequence, which starts with a clean verdict. Read the verdict of a sequence
 * before ending it. */
SAEMON_API int saemon_producer_end_stream(saemon_producer *p, uint64_t stream, uint64_t token);

/* Tag `stream` with the engine's request id (e.g. vLLM's "cmpl-8f3a...",
 * SGLang's rid): 1..128 bytes of UTF-8 without control characters (else
 * SAEMON_PRODUCER_EINVAL). Call it when a request starts on the stream
 * (after end_stream of the stream's previous request), before its first
 * publish. saemon puts the id in every alert of the stream's sequence (JSON
 * "request_id", an Alertmanager annotation) until its end of stream. Like an
 * end of stream it is never dropped for a full ring (kept and sent first),
 * and sent again to a restarted saemon. The producer also remembers id ->
 * stream until end_stream, for the verdict by request id below. */
SAEMON_API int saemon_producer_begin_request(saemon_producer *p, uint64_t stream, const char *request_id);

/* The stream a request id was given to (begin_request, not yet ended):
 * SAEMON_PRODUCER_OK and *stream, or SAEMON_PRODUCER_EINVAL if unknown. */
SAEMON_API int saemon_producer_get_request_stream(const saemon_producer *p, const char *request_id,
                                                  uint64_t *stream);

/* saemon_producer_get_verdict / _verdict_wait of the stream of a request id;
 * SAEMON_PRODUCER_EINVAL when the id is unknown (never begun, or ended). */
SAEMON_API int saemon_producer_get_request_verdict(const saemon_producer *p, const char *request_id);
SAEMON_API int saemon_producer_request_verdict_wait(saemon_producer *p, const char *request_id, uint32_t wait_us);

/* Refresh the heartbeat (publish does it too); call it from an idle loop so
 * saemon can tell "no traffic" from "producer hung". Also re-attaches if saemon
 * restarted. Cheap: at most one check every few milliseconds. */
SAEMON_API void saemon_producer_heartbeat(saemon_producer *p);

/* Highest severity saemon fired so far for `stream`'s current sequence (0
 * none, 1 info, 2 warning, 3 critical, 4 block); atomic loads, no system
 * call. It reflects the frames saemon has evaluated so far: a token published
 * just before may still be in flight (see verdict_wait). 0 until saemon has
 * evaluated this producer's first frame, and after end_stream until saemon
 * has evaluated that end (so a reused stream id never reads an old verdict). */
SAEMON_API int saemon_producer_get_verdict(const saemon_producer *p, uint64_t stream);

/* The verdict once saemon has evaluated every frame this producer published
 * so far ("block before the next token"): waits at most wait_us (spinning
 * briefly, then sleeping on a futex the consumer wakes). Returns 0..4, or
 * SAEMON_PRODUCER_ETIMEDOUT when the wait ran out or no consumer is attached
 * (the caller chooses: fail open, or treat as block). */
SAEMON_API int saemon_producer_verdict_wait(saemon_producer *p, uint64_t stream, uint32_t wait_us);

SAEMON_API void saemon_producer_get_stats(const saemon_producer *p, saemon_producer_stats *out);

/* Frames published and not yet consumed (0 when not attached). */
SAEMON_API uint64_t saemon_producer_in_flight(const saemon_producer *p);

/* Release the ring (another producer may attach). NULL is a no-op. */
SAEMON_API void saemon_producer_detach(saemon_producer *p);

#ifdef __cplusplus
}
#endif
#endif
