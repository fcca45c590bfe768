/* Consumer of the activation ring: handshake, frame validation, waiting.
 * Nothing read from shared memory is trusted: every header field is checked,
 * rows are copied to private memory before their checksum is verified. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/half.h"
#include "base/error.h"
#include "base/utf8.h"
#include "runtime/ring_internal.h"

const char *saemon_ring_reject_name(saemon_ring_reject r)
{
    switch (r) {
    case SAEMON_RING_REJECT_HEADER: return "header";
    case SAEMON_RING_REJECT_SIZE: return "size";
    case SAEMON_RING_REJECT_CHECKSUM: return "checksum";
    case SAEMON_RING_REJECT_NONFINITE: return "nonfinite";
    case SAEMON_RING_REJECT_REFUSED: return "refused";
    case SAEMON_RING_REJECT_INDEX: return "index";
    case SAEMON_RING_REJECT_REQUEST_ID: return "request_id";
    case SAEMON_RING_REJECT_COUNT: break;
    }
    return "unknown";
}

static void bump(uint64_t *counter, uint64_t by)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + by, __ATOMIC_RELAXED);
}

/* ---- creation ---- */

static uint32_t round_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

saemon_status saemon_ring_create(const saemon_ring_options *opt, saemon_ring **out, saemon_error *err)
{
    if (out)
        *out = NULL;
    if (!opt || !out)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_ring_create: NULL argument");
    if (!ring_name_valid(opt->name))
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "ring name '%s' must be 1-%d characters of [A-Za-z0-9._-]",
                                opt->name ? opt->name : "(null)", RING_NAME_MAX);
    uint32_t slots = opt->slots ? opt->slots : 256;
    if (slots < 2 || slots > 65536 || (slots & (slots - 1)))
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: slots must be a power of two in 2..65536",
                                opt->name);
    if (opt->d_in > (1u << 24))
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: d_in %u is too large", opt->name, opt->d_in);
    if (opt->hook && strlen(opt->hook) >= RING_TEXT_MAX)
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: hook name too long", opt->name);
    uint64_t rows = opt->max_rows_per_frame ? opt->max_rows_per_frame : 16;
    uint64_t slot_bytes = opt->slot_bytes;
    if (!slot_bytes)
        slot_bytes = FRAME_HEADER_BYTES + (opt->d_in ? rows * opt->d_in * 4u : 65536u);
    slot_bytes = (slot_bytes + 63u) & ~(uint64_t)63u;
    if (slot_bytes < 128 || slot_bytes > ((uint64_t)1 << 30))
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: slot size %llu out of range (128 B..1 GiB)",
                                opt->name, (unsigned long long)slot_bytes);
    if (opt->mode && opt->mode != 0600 && opt->mode != 0660)
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: mode %04o; expected 0600 or 0660", opt->name,
                                (unsigned)opt->mode);
    uint32_t ventries = round_pow2(opt->verdict_entries ? opt->verdict_entries : 4096);
    if (ventries < RING_VERDICT_WINDOW || ventries > (1u << 24))
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: verdict_entries out of range (16..2^24)",
                                opt->name);

    saemon_ring *r = calloc(1, sizeof *r);
    if (!r)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    r->fd = -1;
    snprintf(r->name, sizeof r->name, "%s", opt->name);
    snprintf(r->shm_name, sizeof r->shm_name, "%s%s", RING_SHM_PREFIX, opt->name);
    r->n_slots = slots;
    r->slot_bytes = (uint32_t)slot_bytes;
    r->verdict_entries = ventries;
    r->expected_d_in = opt->d_in;
    snprintf(r->expected_hook, sizeof r->expected_hook, "%s", opt->hook ? opt->hook : "");
    r->allow_nonfinite = opt->allow_nonfinite;
    r->evaluated_by_caller = opt->evaluated_by_caller;
    pthread_mutex_init(&r->lock, NULL);
    /* raw: the slot bytes; rows: the largest frame converted to fp32
     * (2-byte dtypes double in size). */
    r->raw = aligned_alloc(64, slot_bytes);
    r->rows = aligned_alloc(64, ((slot_bytes - FRAME_HEADER_BYTES) * 2 + 63) & ~(size_t)63);
    if (!r->raw || !r->rows) {
        saemon_ring_destroy(r);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "ring %s: out of memory", opt->name);
    }
    saemon_status st = ring_segment_create(r, err);
    if (st != SAEMON_OK) {
        saemon_ring_destroy(r);
        return st;
    }
    /* ring_group / ring_mode: a model server running as another user of
     * that group may attach (it needs read-write) */
    if ((opt->set_group && fchown(r->fd, (uid_t)-1, (gid_t)opt->gid) != 0) ||
        (opt->mode && fchmod(r->fd, (mode_t)opt->mode) != 0)) {
        int e = errno;
        saemon_ring_destroy(r);
        return saemon_error_set(err, SAEMON_ERR_IO, "ring %s: cannot set group %u / mode %04o: %s", opt->name,
                                (unsigned)opt->gid, (unsigned)opt->mode, strerror(e));
    }
    *out = r;
    return SAEMON_OK;
}

void saemon_ring_destroy(saemon_ring *r)
{
    if (!r)
        return;
    ring_segment_destroy(r);
    ring_streams_free(&r->streams);
    free(r->raw);
    free(r->rows);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *saemon_ring_shm_name(const saemon_ring *r)
{
    return r ? r->shm_name : "";
}

/* ---- handshake ---- */

static int judge(saemon_ring *r, const ring_header *a, char *why, size_t why_len)
{
    size_t elem = ring_dtype_size(a->ann_dtype);
    if (!memchr(a->ann_model, 0, sizeof a->ann_model) || !memchr(a->ann_hook, 0, sizeof a->ann_hook)
        || a->ann_d_in == 0 || a->ann_d_in > (1u << 24) || a->ann_hook_id != ring_fnv1a32(a->ann_hook)) {
        snprintf(why, why_len, "malformed announcement (d_in %u, hook id/name disagree or unterminated)",
                 a->ann_d_in);
        return RING_REFUSE_MALFORMED;
    }
    /* The names end up in /metrics labels and log lines: one invalid byte
     * there makes Prometheus drop the whole target. Never quote them here. */
    if (!utf8_printable(a->ann_model, sizeof a->ann_model, true)
        || !utf8_printable(a->ann_hook, sizeof a->ann_hook, true)) {
        snprintf(why, why_len, "malformed announcement (the model or hook name is not printable UTF-8)");
        return RING_REFUSE_MALFORMED;
    }
    if (elem == 0) {
        snprintf(why, why_len, "dtype code %u is not f32 (0), f16 (1) or bf16 (2)", a->ann_dtype);
        return RING_REFUSE_DTYPE;
    }
    if (r->expected_d_in && a->ann_d_in != r->expected_d_in) {
        snprintf(why, why_len, "d_in %u does not match the dictionary's d_in %u", a->ann_d_in,
                 r->expected_d_in);
        return RING_REFUSE_D_IN;
    }
    if (r->expected_hook[0] && strcmp(a->ann_hook, r->expected_hook) != 0) {
        snprintf(why, why_len, "hook '%.100s' does not match the dictionary's hook '%.100s'", a->ann_hook,
                 r->expected_hook);
        return RING_REFUSE_HOOK;
    }
    if ((uint64_t)a->ann_d_in * elem > r->slot_bytes - FRAME_HEADER_BYTES) {
        snprintf(why, why_len, "one row (%u x %s) does not fit a %u-byte slot", a->ann_d_in,
                 ring_dtype_name(a->ann_dtype), r->slot_bytes);
        return RING_REFUSE_GEOMETRY;
    }
    return RING_REFUSE_NONE;
}

/* Judge a new announcement (if any) and publish accept/refuse. */
static void handle_announcement(saemon_ring *r)
{
    ring_header *h = r->h;
    uint32_t gen = __atomic_load_n(&h->announce_gen, __ATOMIC_ACQUIRE);
    if (gen == r->judged_gen)
        return;
    /* private copy of the producer-written block: it may change under us */
    ring_header a;
    memcpy(&a.ann_d_in, &h->ann_d_in,
           offsetof(ring_header, expected_hook) - offsetof(ring_header, ann_d_in));
    char why[256] = "";
    int code = judge(r, &a, why, sizeof why);

    pthread_mutex_lock(&r->lock);
    r->judged_gen = gen;
    r->judgement = code == RING_REFUSE_NONE ? RING_JUDGE_ACCEPTED : RING_JUDGE_REFUSED;
    r->ann_d_in = a.ann_d_in;
    r->ann_dtype = a.ann_dtype;
    r->ann_hook_id = a.ann_hook_id;
    if (code == RING_REFUSE_MALFORMED) { /* its texts are not fit for labels or logs */
        r->ann_model[0] = r->ann_hook[0] = 0;
    } else {
        snprintf(r->ann_model, sizeof r->ann_model, "%.*s", (int)sizeof a.ann_model - 1, a.ann_model);
        snprintf(r->ann_hook, sizeof r->ann_hook, "%.*s", (int)sizeof a.ann_hook - 1, a.ann_hook);
    }
    if (code != RING_REFUSE_NONE)
        snprintf(r->refuse_reason, sizeof r->refuse_reason, "%s", why);
    pthread_mutex_unlock(&r->lock);
    if (code != RING_REFUSE_NONE)
        bump(&r->producers_refused, 1);
    else
        bump(&r->producers_accepted, 1);

    memset(h->refuse_reason, 0, sizeof h->refuse_reason);
    memcpy(h->refuse_reason, why, strlen(why));
    h->refuse_code = (uint32_t)code;
    h->judgement = (uint32_t)r->judgement;
    __atomic_store_n(&h->judged_gen, gen, __ATOMIC_RELEASE);
}

/* ---- frames ---- */

static void advance(saemon_ring *r)
{
    __atomic_store_n(&r->progress_ns, ring_now_ns(), __ATOMIC_RELAXED);
    r->tail++;
    __atomic_store_n(&r->h->tail, r->tail, __ATOMIC_RELEASE);
    __atomic_store_n(&r->tail_shared, r->tail, __ATOMIC_RELAXED);
    if (!r->evaluated_by_caller) /* done with the frame = its verdicts are visible */
        ring_set_evaluated(r, r->tail);
}

/* The stream table's reset count, for get_stats on other threads. */
static void mirror_resets(saemon_ring *r)
{
    __atomic_store_n(&r->gap_table_resets, r->streams.resets, __ATOMIC_RELAXED);
}

static int reject(saemon_ring *r, saemon_ring_reject why, const frame_header *fh)
{
    bump(&r->rejected[why], 1);
    if (fh && fh->stream < RING_STREAM_LIMIT) {
        ring_streams_mark_gap(&r->streams, fh->stream);
        mirror_resets(r);
    }
    advance(r);
    return 0;
}

static uint32_t frame_checksum(const frame_header *fh, const uint8_t *rows, size_t bytes)
{
    const uint8_t *hb = (const uint8_t *)fh + FRAME_CSUM_HEADER_OFFSET;
    switch (fh->checksum_kind) {
    case FRAME_CSUM_CRC32C:
        return ring_crc32c(ring_crc32c(0, hb, FRAME_CSUM_HEADER_BYTES), rows, bytes);
    case FRAME_CSUM_CRC32: {
        uLong c = crc32(crc32(0L, hb, FRAME_CSUM_HEADER_BYTES), rows, (uInt)bytes);
        return (uint32_t)c;
    }
    default: /* FRAME_CSUM_CRC32_HEADER */
        return (uint32_t)crc32(0L, hb, FRAME_CSUM_HEADER_BYTES);
    }
}

/* Hand out a validated frame (rows in r->rows, or a request id). */
static int deliver(saemon_ring *r, saemon_frame *f, const frame_header *fh, const char *request_id)
{
    bool end = fh->flags & FRAME_FLAG_END_OF_STREAM;
    if (fh->flags & FRAME_FLAG_GAP_ALL)
        ring_streams_mark_all(&r->streams);
    bool gap = ring_streams_frame(&r->streams, fh->stream, end);
    mirror_resets(r);
    *f = (saemon_frame){
        .seq = fh->seq,
        .stream = fh->stream,
        .token = fh->token,
        .n_rows = fh->n_rows,
        .d_in = fh->d_in,
        .rows = r->rows,
        .gap = gap || (fh->flags & (FRAME_FLAG_GAP | FRAME_FLAG_GAP_ALL)),
        .end_of_stream = end,
        .new_producer = (fh->flags & FRAME_FLAG_RESET) != 0,
        .dropped = fh->dropped,
        .request_id = request_id,
    };
    bump(&r->frames_received, 1);
    bump(&r->tokens_received, fh->n_rows);
    __atomic_store_n(&r->last_frame_ns, ring_now_ns(), __ATOMIC_RELAXED);
    r->holding = true;
    return 1;
}

/* A FRAME_FLAG_REQUEST_ID frame: no rows, `aux` bytes of printable UTF-8
 * (1..RING_REQUEST_ID_MAX) then a NUL, checksummed like rows. Validated as
 * strictly as rows: the id ends up in alerts, JSON and HTTP bodies. */
static int take_request_id(saemon_ring *r, saemon_frame *f, const uint8_t *slot, const frame_header *fh)
{
    size_t len = fh->aux;
    if (fh->n_rows != 0 || (fh->flags & FRAME_FLAG_END_OF_STREAM) || fh->d_in != r->ann_d_in || len == 0
        || len > RING_REQUEST_ID_MAX || len + 1 > r->slot_bytes - FRAME_HEADER_BYTES)
        return reject(r, SAEMON_RING_REJECT_REQUEST_ID, NULL);
    memcpy(r->raw, slot + FRAME_HEADER_BYTES, len + 1);
    if (frame_checksum(fh, r->raw, len + 1) != fh->checksum)
        return reject(r, SAEMON_RING_REJECT_CHECKSUM, NULL);
    const char *id = (const char *)r->raw;
    if (id[len] != 0 || memchr(id, 0, len) || !utf8_printable(id, len + 1, false))
        return reject(r, SAEMON_RING_REJECT_REQUEST_ID, NULL);
    return deliver(r, f, fh, id);
}

/* Validate the frame at `tail`. Returns 1 (frame filled in) or 0 (rejected,
 * counted, slot released). Field checks happen on a private copy. */
static int take_frame(saemon_ring *r, saemon_frame *f)
{
    const uint8_t *slot = r->slots + (size_t)(r->tail & (r->n_slots - 1)) * r->slot_bytes;
    uint64_t commit = __atomic_load_n((const uint64_t *)slot, __ATOMIC_ACQUIRE);
    if (commit != r->tail + 1)
        return reject(r, SAEMON_RING_REJECT_HEADER, NULL);
    frame_header fh;
    memcpy(&fh, slot, sizeof fh);
    if (fh.magic != FRAME_MAGIC || fh.version != FRAME_VERSION || fh.seq != r->tail
        || (fh.flags & ~FRAME_FLAGS_KNOWN) || (!(fh.flags & FRAME_FLAG_REQUEST_ID) && fh.aux != 0) || fh.stream >= RING_STREAM_LIMIT
        || fh.checksum_kind < FRAME_CSUM_CRC32C || fh.checksum_kind > FRAME_CSUM_CRC32_HEADER
        || ring_dtype_size(fh.dtype) == 0)
        return reject(r, SAEMON_RING_REJECT_HEADER, fh.magic == FRAME_MAGIC ? &fh : NULL);
    if (r->judgement != RING_JUDGE_ACCEPTED)
        return reject(r, SAEMON_RING_REJECT_REFUSED, NULL);
    if (fh.hook_id != r->ann_hook_id || fh.dtype != r->ann_dtype)
        return reject(r, SAEMON_RING_REJECT_HEADER, &fh);
    size_t elem = ring_dtype_size(fh.dtype);
    size_t cap_rows = (r->slot_bytes - FRAME_HEADER_BYTES) / ((size_t)r->ann_d_in * elem);
    bool rid = fh.flags & FRAME_FLAG_REQUEST_ID;
    if (rid)
        return take_request_id(r, f, slot, &fh);
    if (fh.d_in != r->ann_d_in || fh.n_rows > cap_rows
        || (fh.n_rows == 0 && !(fh.flags & FRAME_FLAG_END_OF_STREAM)))
        return reject(r, SAEMON_RING_REJECT_SIZE, &fh);
    size_t bytes = (size_t)fh.n_rows * fh.d_in * elem;
    memcpy(r->raw, slot + FRAME_HEADER_BYTES, bytes);
    if (frame_checksum(&fh, r->raw, bytes) != fh.checksum)
        return reject(r, SAEMON_RING_REJECT_CHECKSUM, &fh);
    size_t n = (size_t)fh.n_rows * fh.d_in;
    saemon_convert_to_f32(r->raw, fh.dtype == FRAME_DTYPE_F32 ? SAEMON_DTYPE_F32
                                  : fh.dtype == FRAME_DTYPE_F16 ? SAEMON_DTYPE_F16
                                                                : SAEMON_DTYPE_BF16,
                          n, r->rows);
    if (!r->allow_nonfinite && !saemon_all_finite(r->rows, n))
        return reject(r, SAEMON_RING_REJECT_NONFINITE, &fh);

    return deliver(r, f, &fh, NULL);
}

void saemon_ring_release(saemon_ring *r)
{
    if (r && r->holding) {
        r->holding = false;
        advance(r);
    }
}

/* The SIGBUS guard (ring_guard.c) found the segment broken under us (shrunk
 * by a producer, or a page /dev/shm could not provide): count it, start over
 * on a fresh segment at the same address. Every stream has a gap; the
 * producer re-attaches and announces again. */
static int recover(saemon_ring *r, saemon_error *err)
{
    if (__atomic_exchange_n(&r->faulted, 0, __ATOMIC_ACQ_REL))
        bump(&r->segment_faults, 1);
    saemon_error e = {0};
    if (ring_segment_recreate(r, &e) != SAEMON_OK) {
        /* e.g. /dev/shm full right now: the ring is dead (stats say why),
         * the other rings go on; retried once a second */
        pthread_mutex_lock(&r->lock);
        snprintf(r->dead_reason, sizeof r->dead_reason, "%.200s", e.message);
        pthread_mutex_unlock(&r->lock);
        __atomic_store_n(&r->dead, 1, __ATOMIC_RELEASE);
        r->retry_ns = ring_now_ns() + 1000000000ull;
        if (err)
            *err = e;
        return -1;
    }
    __atomic_store_n(&r->dead, 0, __ATOMIC_RELEASE);
    r->holding = false;
    r->tail = 0;
    __atomic_store_n(&r->tail_shared, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&r->lock);
    r->judged_gen = 0;
    r->judgement = RING_JUDGE_NONE;
    r->ann_model[0] = r->ann_hook[0] = 0;
    pthread_mutex_unlock(&r->lock);
    ring_streams_mark_all(&r->streams);
    return 0;
}

int saemon_ring_next(saemon_ring *r, saemon_frame *f, int timeout_ms, saemon_error *err)
{
    if (!r || !f || !r->h) {
        saemon_error_set(err, SAEMON_ERR_ARG, "saemon_ring_next: NULL ring or frame");
        return -1;
    }
    if (__atomic_load_n(&r->faulted, __ATOMIC_ACQUIRE))
        r->holding = false; /* the slot is gone with the segment */
    saemon_ring_release(r);
    uint64_t deadline = timeout_ms > 0 ? ring_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    for (;;) {
        if (__atomic_load_n(&r->dead, __ATOMIC_ACQUIRE)) {
            uint64_t now = ring_now_ns();
            if (now < r->retry_ns || recover(r, NULL) != 0) { /* no segment: nothing to read */
                if (timeout_ms == 0)
                    return 0;
                uint64_t left = r->retry_ns > now ? r->retry_ns - now : 0;
                uint64_t cap = timeout_ms > 0 ? (uint64_t)timeout_ms * 1000000u : left;
                uint64_t nap = left < cap ? left : cap;
                if (nap > 100000000u)
                    nap = 100000000u;
                nanosleep(&(struct timespec){0, (long)nap}, NULL);
                return 0;
            }
        }
        if (__atomic_load_n(&r->faulted, __ATOMIC_ACQUIRE) && recover(r, NULL) != 0)
            continue; /* dead: handled above */
        handle_announcement(r);
        uint64_t head = __atomic_load_n(&r->h->head, __ATOMIC_ACQUIRE);
        if (head != r->tail) {
            /* an announcement made before these frames must be judged first */
            if (__atomic_load_n(&r->h->announce_gen, __ATOMIC_ACQUIRE) != r->judged_gen)
                continue;
            if (head < r->tail || head - r->tail > r->n_slots) {
                /* a corrupt or restarted-from-garbage producer index: resynchronise */
                bump(&r->rejected[SAEMON_RING_REJECT_INDEX], 1);
                r->tail = head - 1;
                advance(r);
                continue;
            }
            if (take_frame(r, f))
                return 1;
            continue;
        }
        __atomic_store_n(&r->h->consumer_heartbeat_ns, ring_now_ns(), __ATOMIC_RELAXED);
        if (timeout_ms == 0 || !ring_wait(&r, 1, deadline)) /* ring_wait.c */
            return 0;
    }
}

/* ---- stats ---- */

void saemon_ring_get_stats(saemon_ring *r, saemon_ring_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->last_frame_age_s = out->heartbeat_age_s = out->consumer_progress_age_s = -1.0;
    out->dtype = "";
    if (!r)
        return;
    const ring_header *h = r->h;
    uint64_t now = ring_now_ns();
    out->tokens_received = __atomic_load_n(&r->tokens_received, __ATOMIC_RELAXED);
    out->frames_received = __atomic_load_n(&r->frames_received, __ATOMIC_RELAXED);
    for (int i = 0; i < SAEMON_RING_REJECT_COUNT; i++) {
        out->frames_rejected[i] = __atomic_load_n(&r->rejected[i], __ATOMIC_RELAXED);
        out->frames_rejected_total += out->frames_rejected[i];
    }
    out->producers_refused = __atomic_load_n(&r->producers_refused, __ATOMIC_RELAXED);
    out->segment_faults = __atomic_load_n(&r->segment_faults, __ATOMIC_RELAXED);
    out->gap_table_resets = __atomic_load_n(&r->gap_table_resets, __ATOMIC_RELAXED);
    out->dead = __atomic_load_n(&r->dead, __ATOMIC_ACQUIRE);
    uint64_t progress = __atomic_load_n(&r->progress_ns, __ATOMIC_RELAXED);
    out->consumer_progress_age_s = progress && progress <= now ? (double)(now - progress) * 1e-9 : -1.0;
    out->producers_accepted = __atomic_load_n(&r->producers_accepted, __ATOMIC_RELAXED);
    for (int i = 0; i <= SAEMON_VERDICT_BLOCK; i++)
        out->verdicts_evicted[i] = __atomic_load_n(&r->verdicts_evicted[i], __ATOMIC_RELAXED);
    out->verdict_entries = r->verdict_entries;
    uint64_t last = __atomic_load_n(&r->last_frame_ns, __ATOMIC_RELAXED);
    out->last_frame_age_s = last ? (double)(now - last) * 1e-9 : -1.0;
    if (!h)
        return;
    out->tokens_produced = __atomic_load_n(&h->tokens_produced, __ATOMIC_RELAXED);
    out->frames_produced = __atomic_load_n(&h->frames_published, __ATOMIC_RELAXED);
    out->frames_dropped = __atomic_load_n(&h->frames_dropped, __ATOMIC_RELAXED);
    out->tokens_dropped = __atomic_load_n(&h->tokens_dropped, __ATOMIC_RELAXED);
    out->tokens_lost_consumer_down = __atomic_load_n(&h->lost_consumer_down, __ATOMIC_RELAXED);
    out->producer_seq = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
    out->consumer_seq = __atomic_load_n(&r->tail_shared, __ATOMIC_RELAXED);
    /* producer-claimed numbers: clamp so a lying producer cannot underflow */
    uint64_t done = out->tokens_received + out->tokens_dropped;
    out->lag_tokens = out->tokens_produced > done ? out->tokens_produced - done : 0;
    uint64_t hb = __atomic_load_n(&h->heartbeat_ns, __ATOMIC_RELAXED);
    out->heartbeat_age_s = hb && hb <= now ? (double)(now - hb) * 1e-9 : -1.0;
    out->producer_alive = ring_lock_held(r->fd, 0);
    out->producer_pid = (int32_t)__atomic_load_n(&h->producer_pid, __ATOMIC_RELAXED);

    pthread_mutex_lock(&r->lock);
    out->producer_state = r->judgement == RING_JUDGE_ACCEPTED ? SAEMON_RING_PRODUCER_ACCEPTED
                        : r->judgement == RING_JUDGE_REFUSED  ? SAEMON_RING_PRODUCER_REFUSED
                                                              : SAEMON_RING_PRODUCER_NONE;
    memcpy(out->model, r->ann_model, sizeof out->model);
    memcpy(out->hook, r->ann_hook, sizeof out->hook);
    out->d_in = r->judgement ? r->ann_d_in : 0;
    out->dtype = r->judgement ? ring_dtype_name(r->ann_dtype) : "";
    memcpy(out->refuse_reason, r->refuse_reason, sizeof out->refuse_reason);
    if (out->dead)
        snprintf(out->dead_reason, sizeof out->dead_reason, "%s", r->dead_reason);
    pthread_mutex_unlock(&r->lock);
}
