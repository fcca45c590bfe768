#include "tests/ring/ring_test_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ring_test_name(char *buf, size_t len, const char *tag)
{
    snprintf(buf, len, "t%ld-%s", (long)getpid(), tag);
}

bool ring_raw_open(const char *name, ring_raw *out)
{
    char shm[128];
    snprintf(shm, sizeof shm, "%s%s", RING_SHM_PREFIX, name);
    int fd = shm_open(shm, O_RDWR, 0);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return false;
    out->h = m;
    out->slots = (uint8_t *)m + out->h->slots_offset;
    out->bytes = (size_t)st.st_size;
    return true;
}

void ring_raw_close(ring_raw *raw)
{
    if (raw->h)
        munmap(raw->h, raw->bytes);
    raw->h = NULL;
}

void ring_raw_publish(ring_raw *raw, frame_header fh, const void *rows, size_t row_bytes, int keep)
{
    ring_header *h = raw->h;
    uint64_t head = h->head;
    if (!(keep & RAW_KEEP_SEQ))
        fh.seq = head;
    if (!(keep & RAW_KEEP_CHECKSUM)) {
        uint32_t c = ring_crc32c(0, (uint8_t *)&fh + FRAME_CSUM_HEADER_OFFSET, FRAME_CSUM_HEADER_BYTES);
        fh.checksum = ring_crc32c(c, rows, row_bytes);
    }
    uint8_t *slot = raw->slots + (size_t)(head & (h->slots - 1)) * h->slot_bytes;
    size_t room = h->slot_bytes - FRAME_HEADER_BYTES;
    memcpy(slot + 8, (uint8_t *)&fh + 8, FRAME_HEADER_BYTES - 8);
    if (row_bytes)
        memcpy(slot + FRAME_HEADER_BYTES, rows, row_bytes < room ? row_bytes : room);
    if (!(keep & RAW_NO_COMMIT))
        __atomic_store_n((uint64_t *)slot, head + 1, __ATOMIC_RELEASE);
    if (!(keep & RAW_NO_HEAD))
        __atomic_store_n(&h->head, head + 1, __ATOMIC_RELEASE);
}

void ring_raw_announce(ring_raw *raw, uint32_t d_in, const char *hook)
{
    ring_header *h = raw->h;
    h->ann_d_in = d_in;
    h->ann_dtype = FRAME_DTYPE_F32;
    memset(h->ann_hook, 0, sizeof h->ann_hook);
    memset(h->ann_model, 0, sizeof h->ann_model);
    snprintf(h->ann_hook, sizeof h->ann_hook, "%s", hook);
    snprintf(h->ann_model, sizeof h->ann_model, "raw-test");
    h->ann_hook_id = ring_fnv1a32(hook);
    __atomic_add_fetch(&h->announce_gen, 1, __ATOMIC_RELEASE);
}

saemon_producer *ring_test_producer(const char *ring, uint32_t d_in, const char *hook,
                                    saemon_producer_dtype dtype, uint32_t lossless_us)
{
    saemon_producer_options o = {
        .ring = ring,
        .model = "test-model",
        .hook = hook,
        .d_in = d_in,
        .dtype = dtype,
        .lossless_wait_us = lossless_us,
        .handshake_timeout_ms = 5000,
    };
    saemon_producer *p = NULL;
    char msg[256];
    if (saemon_producer_attach(&o, &p, msg, sizeof msg) != SAEMON_PRODUCER_OK) {
        fprintf(stderr, "attach: %s\n", msg);
        return NULL;
    }
    return p;
}

static float pattern(uint64_t stream, uint64_t token, uint32_t i)
{
    return (float)(stream % 1000) * 1000.0f + (float)(token % 4096) + (float)i / 1024.0f;
}

void ring_test_rows(float *dst, uint64_t stream, uint64_t token, uint32_t n_rows, uint32_t d_in)
{
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t i = 0; i < d_in; i++)
            dst[(size_t)r * d_in + i] = pattern(stream, token + r, i);
}

bool ring_test_rows_ok(const float *rows, uint64_t stream, uint64_t token, uint32_t n_rows,
                       uint32_t d_in)
{
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t i = 0; i < d_in; i++)
            if (rows[(size_t)r * d_in + i] != pattern(stream, token + r, i))
                return false;
    return true;
}

typedef struct attach_job {
    const char *ring, *hook;
    uint32_t d_in;
    saemon_producer *p;
    int done;
} attach_job;

static void *attach_thread(void *arg)
{
    attach_job *j = arg;
    j->p = ring_test_producer(j->ring, j->d_in, j->hook, SAEMON_PRODUCER_F32, 0);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

saemon_producer *ring_test_attach_served(saemon_ring *r, const char *ring, uint32_t d_in, const char *hook)
{
    attach_job j = {.ring = ring, .hook = hook, .d_in = d_in};
    pthread_t t;
    if (pthread_create(&t, NULL, attach_thread, &j) != 0)
        return NULL;
    saemon_frame f;
    while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE))
        saemon_ring_next(r, &f, 1, NULL);
    pthread_join(t, NULL);
    return j.p;
}
