/* The ring's CRC-32C (proto/ring_crc.h): every variant this CPU can run (the
 * AVX-512 and AVX2 carry-less-multiply folds, the SSE4.2 three-lane loop)
 * gives the portable table's value for every length and starting value,
 * including the fold and lane boundaries; the variants it cannot run are
 * named in the log. The folding constants are recomputed as powers of x. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>

#include "proto/ring_crc.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static const struct variant {
    const char *name;
    int level; /* runnable when ring_crc32c_best() >= level (each level's CPUs have the ones below) */
    crc_fn fn;
} variants[] = {
#if defined(__x86_64__)
    {"clmul512", RING_CRC_CLMUL512, ring_crc32c_clmul512},
    {"clmul256", RING_CRC_CLMUL256, ring_crc32c_clmul256},
    {"sse42", RING_CRC_SSE42, ring_crc32c_sse42},
#endif
    {"dispatch", RING_CRC_SW, ring_crc32c},
};
#define N_VARIANTS (sizeof variants / sizeof *variants)

static bool runnable(const struct variant *v)
{
    return ring_crc32c_best() >= v->level;
}

Test(ring_crc, check_value)
{
    cr_assert_eq(ring_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    cr_assert_eq(ring_crc32c(0, "123456789", 9), 0xe3069283u);
}

/* x^e mod P in the reflected form (bit 31 is x^0). */
static uint32_t xpow(unsigned e)
{
    uint32_t r = 1u << 31, x1 = 1u << 30;
    while (e--)
        r = ring_crc32c_mulmod(x1, r);
    return r;
}

Test(ring_crc, constants_are_powers_of_x)
{
    cr_assert_eq(xpow(8 * RING_CRC_LANE), RING_CRC_X_LANE);
    cr_assert_eq(xpow(16 * RING_CRC_LANE), RING_CRC_X_2LANES);
    static const struct { unsigned d; uint32_t lo, hi; } fold[] = {
        {128, RING_CRC_FOLD128_LO, RING_CRC_FOLD128_HI},    {256, RING_CRC_FOLD256_LO, RING_CRC_FOLD256_HI},
        {512, RING_CRC_FOLD512_LO, RING_CRC_FOLD512_HI},    {1024, RING_CRC_FOLD1024_LO, RING_CRC_FOLD1024_HI},
        {2048, RING_CRC_FOLD2048_LO, RING_CRC_FOLD2048_HI},
    };
    for (size_t i = 0; i < sizeof fold / sizeof *fold; i++) {
        cr_assert_eq(xpow(fold[i].d + 31), fold[i].lo, "fold distance %u", fold[i].d);
        cr_assert_eq(xpow(fold[i].d - 33), fold[i].hi, "fold distance %u", fold[i].d);
    }
}

Test(ring_crc, every_variant_equals_the_table)
{
    enum { MAX = 4 * 3 * RING_CRC_LANE + 600 };
    uint8_t *buf = malloc(MAX);
    cr_assert_not_null(buf);
    srand(7);
    for (size_t i = 0; i < MAX; i++)
        buf[i] = (uint8_t)rand();
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (!runnable(&variants[v])) {
            cr_log_info("ring_crc: variant %s not run: this CPU lacks its instructions", variants[v].name);
            continue;
        }
        crc_fn f = variants[v].fn;
        /* every length up to 600 (each fold's block and tail boundary), three alignments */
        for (size_t n = 0; n <= 600; n++)
            for (size_t off = 0; off < 3; off++) {
                uint32_t seed = (uint32_t)(n * 2654435761u + off);
                cr_assert_eq(f(seed, buf + off, n), ring_crc32c_sw(seed, buf + off, n), "%s length %zu offset %zu",
                             variants[v].name, n, off);
            }
        static const size_t lens[] = {3 * RING_CRC_LANE - 1, 3 * RING_CRC_LANE, 3 * RING_CRC_LANE + 1, 9216,
                                      9216 + 48, 2 * 3 * RING_CRC_LANE + 13, MAX - 3};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
            for (size_t off = 0; off < 3; off++) {
                uint32_t seed = (uint32_t)rand();
                cr_assert_eq(f(seed, buf + off, lens[li]), ring_crc32c_sw(seed, buf + off, lens[li]),
                             "%s length %zu offset %zu", variants[v].name, lens[li], off);
            }
        for (int t = 0; t < 200; t++) {
            size_t n = (size_t)rand() % MAX, off = (size_t)rand() % 64;
            if (n > MAX - off)
                n = MAX - off;
            uint32_t seed = (uint32_t)rand();
            cr_assert_eq(f(seed, buf + off, n), ring_crc32c_sw(seed, buf + off, n), "%s length %zu", variants[v].name,
                         n);
        }
        /* continuing: crc(A || B) from crc(A) */
        uint32_t whole = f(0, buf, 9216 + 48);
        cr_assert_eq(f(f(0, buf, 48), buf + 48, 9216), whole, "%s", variants[v].name);
        /* all-zero and all-one bytes (the folds' carries) */
        memset(buf, 0, 4096);
        cr_assert_eq(f(0, buf, 4096), ring_crc32c_sw(0, buf, 4096), "%s zeros", variants[v].name);
        memset(buf, 0xff, 4096);
        cr_assert_eq(f(0xffffffffu, buf, 4096), ring_crc32c_sw(0xffffffffu, buf, 4096), "%s ones", variants[v].name);
        for (size_t i = 0; i < 4096; i++)
            buf[i] = (uint8_t)rand();
    }
    free(buf);
}
