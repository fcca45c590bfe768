/* Byte layout and small shared helpers of the saemon activation ring.
 *
 * Used by both sides: the consumer (runtime/ring*.c, in libsaemon) and the C
 * producer (producers/c, libsaemon-producer). Header-only (static inline) so
 * the two libraries share no symbols. The authoritative description of every
 * byte is docs/ring.md; the _Static_asserts below pin this file to it.
 * All integers are little-endian (the ring never leaves the host). */
#ifndef SAEMON_PROTO_RING_WIRE_H
#define SAEMON_PROTO_RING_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "proto/ring_crc.h"

#define RING_MAGIC 0x52454153u  /* "SAER" */
#define RING_VERSION 3u /* 2: evaluated/verdict_wake/verdict_waiters, FRAME_FLAG_RESET, tombstones;
                          * 3: FRAME_FLAG_REQUEST_ID frames (a stream's request id string) */
#define FRAME_MAGIC 0x46454153u /* "SAEF" */
#define FRAME_VERSION 1u

#define RING_HEADER_BYTES 4096u
#define FRAME_HEADER_BYTES 64u
#define RING_SHM_PREFIX "/saemon-ring."
#define RING_NAME_MAX 64
#define RING_TEXT_MAX 120 /* model / hook fields, NUL included */
#define RING_REQUEST_ID_MAX 128 /* bytes of a request id (UTF-8, no NUL); the frame adds a NUL */

/* ring_header.state */
enum { RING_STATE_CREATING = 0, RING_STATE_READY = 1, RING_STATE_RETIRED = 2 };
/* ring_header.judgement */
enum { RING_JUDGE_NONE = 0, RING_JUDGE_ACCEPTED = 1, RING_JUDGE_REFUSED = 2 };
/* ring_header.refuse_code */
enum {
    RING_REFUSE_NONE = 0,
    RING_REFUSE_D_IN = 1,
    RING_REFUSE_HOOK = 2,
    RING_REFUSE_DTYPE = 3,
    RING_REFUSE_GEOMETRY = 4, /* one row of this d_in/dtype does not fit a slot */
    RING_REFUSE_MALFORMED = 5,
};
/* frame_header.flags */
enum {
    FRAME_FLAG_END_OF_STREAM = 1u << 0,
    FRAME_FLAG_GAP = 1u << 1,     /* this stream lost frames since its previous frame */
    FRAME_FLAG_GAP_ALL = 1u << 2, /* the producer lost track: every open stream may have a gap */
    FRAME_FLAG_RESET = 1u << 3,   /* first frame of a newly attached producer: every earlier
                                   * verdict and stream of the ring belongs to a producer gone */
    FRAME_FLAG_REQUEST_ID = 1u << 4, /* zero rows; the payload is the stream's request id: `aux`
                                      * bytes of printable UTF-8, then a NUL (docs/ring.md) */
    FRAME_FLAGS_KNOWN = 0x1Fu,
};
/* frame_header.dtype */
enum { FRAME_DTYPE_F32 = 0, FRAME_DTYPE_F16 = 1, FRAME_DTYPE_BF16 = 2 };
/* frame_header.checksum_kind */
enum {
    FRAME_CSUM_CRC32C = 1,      /* CRC-32C (Castagnoli) of header bytes 8..59, then the rows */
    FRAME_CSUM_CRC32 = 2,       /* CRC-32 (zlib / IEEE) of header bytes 8..59, then the rows */
    FRAME_CSUM_CRC32_HEADER = 3 /* CRC-32 (zlib) of header bytes 8..59 only */
};
/* announcement flags */
enum { RING_ANN_LOSSLESS = 1u };

/* Offsets are part of the protocol: see docs/ring.md. */
typedef struct ring_header {
    /* 0: geometry, written once by the consumer before state = READY */
    uint32_t magic;
    uint16_t version;
    uint16_t header_bytes;
    uint64_t epoch;         /* random per segment creation */
    uint32_t slots;         /* power of two */
    uint32_t slot_bytes;    /* multiple of 64, >= 128 */
    uint64_t slots_offset;
    uint64_t segment_bytes;
    uint32_t verdict_entries; /* power of two */
    uint32_t expected_d_in;   /* 0 = any */
    uint64_t verdict_offset;
    uint32_t state;
    uint32_t consumer_pid;
    /* 64: consumer-written line */
    uint64_t tail;          /* frames consumed */
    uint32_t wake;          /* futex word: bumped by a producer when waiters != 0 */
    uint32_t waiters;       /* the consumer sleeps on `wake` */
    uint64_t consumer_heartbeat_ns;
    uint32_t judged_gen;    /* announce_gen the judgement below answers */
    uint32_t judgement;
    uint32_t refuse_code;
    uint32_t verdict_evictions;
    uint64_t evaluated;       /* frames whose tokens' rules have all run: their verdicts are visible */
    uint32_t verdict_wake;    /* futex word: bumped by the consumer when verdict_waiters != 0 */
    uint32_t verdict_waiters; /* a producer sleeps on verdict_wake waiting for `evaluated` */
    uint8_t pad1[8];
    /* 128: producer-written line */
    uint64_t head;          /* frames written (next sequence number) */
    uint64_t heartbeat_ns;  /* CLOCK_MONOTONIC */
    uint64_t tokens_produced;
    uint64_t frames_dropped;
    uint64_t tokens_dropped;
    uint64_t frames_published;
    uint32_t producer_pid;
    uint32_t announce_gen;  /* bumped (release) after the announcement below is written */
    uint8_t pad2[8];
    /* 192: announcement (producer-written) */
    uint32_t ann_d_in;
    uint32_t ann_dtype;
    uint32_t ann_flags;
    uint32_t ann_lossless_wait_us;
    uint32_t ann_hook_id;   /* FNV-1a 32 of ann_hook */
    uint32_t pad3;
    char ann_model[RING_TEXT_MAX];
    char ann_hook[RING_TEXT_MAX];
    uint64_t lost_consumer_down; /* tokens this producer lost while no consumer served it
                                  * (before attaching, or written into a dead consumer's ring) */
    uint8_t pad4[48];
    /* 512: consumer-written texts */
    char expected_hook[128];
    char refuse_reason[256];
    uint8_t reserved[RING_HEADER_BYTES - 896];
} ring_header;

_Static_assert(sizeof(ring_header) == RING_HEADER_BYTES, "ring header is one page");
_Static_assert(offsetof(ring_header, state) == 56, "layout");
_Static_assert(offsetof(ring_header, tail) == 64, "layout");
_Static_assert(offsetof(ring_header, wake) == 72, "layout");
_Static_assert(offsetof(ring_header, judged_gen) == 88, "layout");
_Static_assert(offsetof(ring_header, evaluated) == 104, "layout");
_Static_assert(offsetof(ring_header, verdict_wake) == 112, "layout");
_Static_assert(offsetof(ring_header, verdict_waiters) == 116, "layout");
_Static_assert(offsetof(ring_header, head) == 128, "layout");
_Static_assert(offsetof(ring_header, producer_pid) == 176, "layout");
_Static_assert(offsetof(ring_header, ann_d_in) == 192, "layout");
_Static_assert(offsetof(ring_header, ann_model) == 216, "layout");
_Static_assert(offsetof(ring_header, ann_hook) == 336, "layout");
_Static_assert(offsetof(ring_header, lost_consumer_down) == 456, "layout");
_Static_assert(offsetof(ring_header, expected_hook) == 512, "layout");
_Static_assert(offsetof(ring_header, refuse_reason) == 640, "layout");

typedef struct frame_header {
    uint64_t commit;        /* 0: seq + 1, stored last with release; 0 = never written */
    uint32_t magic;         /* 8 */
    uint16_t version;       /* 12 */
    uint16_t flags;         /* 14 */
    uint64_t seq;           /* 16 */
    uint64_t stream;        /* 24 */
    uint64_t token;         /* 32 */
    uint32_t hook_id;       /* 40 */
    uint32_t d_in;          /* 44 */
    uint32_t n_rows;        /* 48 */
    uint8_t dtype;          /* 52 */
    uint8_t checksum_kind;  /* 53 */
    uint16_t aux;           /* 54: request id length (FRAME_FLAG_REQUEST_ID frames), else 0 */
    uint32_t dropped;       /* 56: frames dropped just before this one (saturating) */
    uint32_t checksum;      /* 60 */
} frame_header;

_Static_assert(sizeof(frame_header) == FRAME_HEADER_BYTES, "frame header is 64 bytes");
_Static_assert(offsetof(frame_header, hook_id) == 40, "layout");
_Static_assert(offsetof(frame_header, checksum) == 60, "layout");

/* Checksummed part of the frame header: bytes [8, 60). */
#define FRAME_CSUM_HEADER_OFFSET 8u
#define FRAME_CSUM_HEADER_BYTES 52u

/* Verdict table entry: (stream + 1) << 8 | severity, one atomic 64-bit word;
 * 0 = empty, RING_VERDICT_TOMBSTONE = a cleared entry (readers probe past it).
 * Streams are < 2^56 - 1. Open addressing over a window. */
#define RING_VERDICT_WINDOW 16u
#define RING_VERDICT_TOMBSTONE UINT64_C(0xff)
#define RING_STREAM_LIMIT ((UINT64_C(1) << 56) - 1)

static inline uint64_t ring_hash64(uint64_t x) /* splitmix64 finaliser */
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* Severity of `stream` in a verdict table of `entries` words (reader side). */
static inline int ring_verdict_lookup(const uint64_t *table, uint32_t entries, uint64_t stream)
{
    if (stream >= RING_STREAM_LIMIT || entries == 0)
        return 0;
    uint64_t key = stream + 1;
    uint32_t mask = entries - 1;
    uint32_t h = (uint32_t)ring_hash64(stream) & mask;
    for (uint32_t i = 0; i < RING_VERDICT_WINDOW && i < entries; i++) {
        uint64_t w = __atomic_load_n(&table[(h + i) & mask], __ATOMIC_ACQUIRE);
        if (w == 0)
            return 0;
        if ((w >> 8) == key)
            return (int)(w & 0xff);
    }
    return 0;
}

static inline uint32_t ring_fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

static inline size_t ring_dtype_size(uint32_t dtype)
{
    return dtype == FRAME_DTYPE_F32 ? 4 : (dtype == FRAME_DTYPE_F16 || dtype == FRAME_DTYPE_BF16) ? 2 : 0;
}

static inline const char *ring_dtype_name(uint32_t dtype)
{
    return dtype == FRAME_DTYPE_F32 ? "f32" : dtype == FRAME_DTYPE_F16 ? "f16"
         : dtype == FRAME_DTYPE_BF16 ? "bf16" : "";
}

/* Ring names: [A-Za-z0-9._-]{1,64}, not starting with '.'. */
static inline bool ring_name_valid(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > RING_NAME_MAX)
        return false;
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
               || *c == '.' || *c == '_' || *c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* A request id a producer may send: 1..RING_REQUEST_ID_MAX bytes of
 * well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF) without control characters (C0, DEL, C1). The consumer checks
 * the same with base/utf8.h. Returns its length, or 0 if it is not valid. */
static inline size_t ring_request_id_valid(const char *id)
{
    if (!id)
        return 0;
    size_t n = strnlen(id, RING_REQUEST_ID_MAX + 1);
    if (n == 0 || n > RING_REQUEST_ID_MAX)
        return 0;
    const uint8_t *s = (const uint8_t *)id;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (len == 0 || c > 0xf4 || i + len > n)
            return 0;
        uint32_t cp = c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0x80 && cp <= 0x9f))
            return 0;
        i += len;
    }
    return n;
}

static inline uint64_t ring_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
