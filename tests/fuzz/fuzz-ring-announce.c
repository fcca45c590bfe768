/* libFuzzer target: arbitrary producer announcements written straight into a
 * live consumer's shared segment. The consumer must never crash, and the
 * names of an announcement it accepts or shows (stats: model, hook, refusal
 * reason) must be printable UTF-8: they go to /metrics labels and log lines,
 * where one invalid byte makes Prometheus drop the whole target.
 * Input: byte 0 = control bits, then the announcement block (offset 192 of
 * the header, up to 320 bytes). Bit 1 repairs d_in, dtype and the hook id so
 * the names are what decides. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/ring_wire.h"
#include "saemon/ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define D_IN 8
static saemon_ring *ring;
static ring_header *h;

static void cleanup(void)
{
    saemon_ring_destroy(ring);
}

static void setup(void)
{
    char name[64];
    snprintf(name, sizeof name, "fza%ld", (long)getpid());
    saemon_ring_options o = {.name = name, .slots = 4, .max_rows_per_frame = 4, .d_in = D_IN};
    saemon_error err;
    if (saemon_ring_create(&o, &ring, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        abort();
    }
    atexit(cleanup);
    int fd = shm_open(saemon_ring_shm_name(ring), O_RDWR, 0);
    if (fd < 0)
        abort();
    h = mmap(NULL, RING_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (h == MAP_FAILED)
        abort();
}

/* Written apart from base/utf8.c on purpose: well-formed UTF-8 (no overlong
 * forms, surrogates or code points above U+10FFFF), no C0, DEL or C1. */
static void check_printable(const char *s, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = memchr(p, 0, cap);
    if (!end)
        abort();
    while (p < end) {
        uint32_t cp;
        int n;
        if (p[0] < 0x80)
            cp = p[0], n = 1;
        else if ((p[0] & 0xe0) == 0xc0)
            cp = p[0] & 0x1fu, n = 2;
        else if ((p[0] & 0xf0) == 0xe0)
            cp = p[0] & 0x0fu, n = 3;
        else if ((p[0] & 0xf8) == 0xf0)
            cp = p[0] & 0x07u, n = 4;
        else
            abort();
        if (end - p < n)
            abort();
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                abort();
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            abort();
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            abort();
        p += n;
    }
}

static uint32_t fnv1a(const char *s)
{
    uint32_t x = 2166136261u;
    for (; *s; s++)
        x = (x ^ (uint8_t)*s) * 16777619u;
    return x;
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
    size_t block = offsetof(ring_header, expected_hook) - offsetof(ring_header, ann_d_in);
    uint8_t *ann = (uint8_t *)&h->ann_d_in;
    memset(ann, 0, block);
    memcpy(ann, data, size < block ? size : block);
    if (ctl & 1) {
        h->ann_d_in = D_IN;
        h->ann_dtype = ctl & 2 ? FRAME_DTYPE_F16 : FRAME_DTYPE_F32;
        h->ann_hook[sizeof h->ann_hook - 1] = 0;
        h->ann_model[sizeof h->ann_model - 1] = (char)(ctl & 4 ? 0 : h->ann_model[sizeof h->ann_model - 1]);
        h->ann_hook_id = fnv1a(h->ann_hook);
    }
    __atomic_add_fetch(&h->announce_gen, 1, __ATOMIC_RELEASE);

    saemon_frame f;
    saemon_error err;
    if (saemon_ring_next(ring, &f, 0, &err) < 0)
        abort();
    saemon_ring_stats st;
    saemon_ring_get_stats(ring, &st);
    if (st.producer_state == SAEMON_RING_PRODUCER_NONE)
        abort(); /* every announcement is judged */
    check_printable(st.model, sizeof st.model);
    check_printable(st.hook, sizeof st.hook);
    check_printable(st.refuse_reason, sizeof st.refuse_reason);
    if (h->judged_gen != h->announce_gen || (h->judgement != RING_JUDGE_ACCEPTED && h->judgement != RING_JUDGE_REFUSED))
        abort();
    return 0;
}
