/* libFuzzer target: arbitrary bytes as ring frames and producer
 * announcements, written straight into a live consumer's shared segment.
 * The consumer must reject or accept them without crashing, reading out of
 * bounds or returning a frame that breaks its own contract.
 * Input: byte 0 = control bits, then the frame bytes (header + rows); with
 * bit 0x10 the tail of the input also overwrites the announcement block.
 * Request id frames (flag FRAME_FLAG_REQUEST_ID): with bit 4 the checksum
 * covers the `aux` + 1 payload bytes, as a producer computes it, so the
 * length, NUL and UTF-8 checks are reached. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/ring_wire.h"
#include "saemon/ring.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define D_IN 8
static saemon_ring *ring;
static ring_header *h;
static uint8_t *slots;

static void cleanup(void)
{
    saemon_ring_destroy(ring);
}

static void setup(void)
{
    char name[64];
    snprintf(name, sizeof name, "fz%ld", (long)getpid());
    saemon_ring_options o = {.name = name, .slots = 4, .max_rows_per_frame = 4, .d_in = D_IN, .hook = "h"};
    saemon_error err;
    if (saemon_ring_create(&o, &ring, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        abort();
    }
    atexit(cleanup);
    int fd = shm_open(saemon_ring_shm_name(ring), O_RDWR, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        abort();
    h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (h == MAP_FAILED)
        abort();
    slots = (uint8_t *)h + h->slots_offset;
    /* a valid announcement to start from */
    h->ann_d_in = D_IN;
    h->ann_dtype = FRAME_DTYPE_F32;
    strcpy(h->ann_hook, "h");
    h->ann_hook_id = ring_fnv1a32("h");
    __atomic_add_fetch(&h->announce_gen, 1, __ATOMIC_RELEASE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ring)
        setup();
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    if (ctl & 0x10) { /* announcement bytes from the end of the input */
        size_t n = size < 264 ? size : 264;
        memcpy(&h->ann_d_in, data + size - n, n);
        __atomic_add_fetch(&h->announce_gen, 1, __ATOMIC_RELEASE);
        size -= n;
    }
    uint64_t head = h->head;
    uint8_t *slot = slots + (size_t)(head & (h->slots - 1)) * h->slot_bytes;
    size_t n = size < h->slot_bytes ? size : h->slot_bytes;
    memset(slot, 0, h->slot_bytes);
    memcpy(slot, data, n);
    frame_header fh;
    memcpy(&fh, slot, sizeof fh);
    if (ctl & 1) { /* make the envelope right so validation goes deeper */
        fh.magic = FRAME_MAGIC;
        fh.version = FRAME_VERSION;
        fh.seq = head;
    }
    if (ctl & 2) {
        fh.hook_id = ring_fnv1a32("h");
        fh.d_in = D_IN;
        fh.dtype = ctl & 8 ? FRAME_DTYPE_BF16 : FRAME_DTYPE_F32;
        fh.n_rows %= 9;
    }
    if (ctl & 4) {
        fh.checksum_kind = FRAME_CSUM_CRC32C;
        size_t bytes = (size_t)fh.n_rows * fh.d_in * ring_dtype_size(fh.dtype);
        if (fh.flags & FRAME_FLAG_REQUEST_ID)
            bytes = (size_t)fh.aux + 1;
        if (bytes <= h->slot_bytes - FRAME_HEADER_BYTES) {
            uint32_t c = ring_crc32c(0, (uint8_t *)&fh + 8, 52);
            fh.checksum = ring_crc32c(c, slot + FRAME_HEADER_BYTES, bytes);
        }
    }
    fh.commit = ctl & 0x20 ? fh.commit : head + 1;
    memcpy(slot, &fh, sizeof fh);
    h->head = ctl & 0x40 ? head + (ctl >> 7) * 1000 + 1 : head + 1;

    saemon_frame f;
    saemon_error err;
    int rc;
    while ((rc = saemon_ring_next(ring, &f, 0, &err)) == 1) {
        if (f.request_id) { /* a validated id: no rows, 1..128 bytes of printable UTF-8 */
            size_t len = strlen(f.request_id);
            if (f.n_rows != 0 || f.end_of_stream || len == 0 || len > RING_REQUEST_ID_MAX
                || ring_request_id_valid(f.request_id) != len)
                abort();
            continue;
        }
        if (f.d_in != D_IN || f.n_rows > 8 || (f.n_rows == 0 && !f.end_of_stream))
            abort();
        for (size_t i = 0; i < (size_t)f.n_rows * f.d_in; i++)
            if (!isfinite(f.rows[i]))
                abort();
    }
    if (rc < 0)
        abort();
    saemon_ring_stats st;
    saemon_ring_get_stats(ring, &st);
    return 0;
}
