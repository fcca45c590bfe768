/* The ring's CRC-32C (proto/ring_wire.h): the SSE4.2 three-lane loop and the
 * portable table give the same value for every length and starting value,
 * including the lane boundaries, and both match the standard check value. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "proto/ring_wire.h"

Test(ring_crc, check_value)
{
    cr_assert_eq(ring_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    cr_assert_eq(ring_crc32c(0, "123456789", 9), 0xe3069283u);
}

Test(ring_crc, lane_constants_are_powers_of_x)
{
    uint32_t x8 = 1u << 23; /* x^8 in the reflected form */
    uint32_t k = 1u << 31;  /* x^0 */
    for (int i = 0; i < 1024; i++)
        k = ring_crc32c_mulmod(x8, k);
    cr_assert_eq(k, RING_CRC_X_LANE);
    cr_assert_eq(ring_crc32c_mulmod(k, k), RING_CRC_X_2LANES);
}

Test(ring_crc, every_path_equals_the_table)
{
    enum { MAX = 4 * 3 * RING_CRC_LANE + 64 };
    uint8_t *buf = malloc(MAX);
    cr_assert_not_null(buf);
    srand(7);
    for (size_t i = 0; i < MAX; i++)
        buf[i] = (uint8_t)rand();
    static const size_t lens[] = {0, 1, 7, 8, 9, 63, 3 * RING_CRC_LANE - 1, 3 * RING_CRC_LANE,
                                  3 * RING_CRC_LANE + 1, 9216, 9216 + 48, 2 * 3 * RING_CRC_LANE + 13, MAX};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (size_t off = 0; off < 3; off++) { /* unaligned starts too */
            size_t n = lens[li] > MAX - off ? MAX - off : lens[li];
            uint32_t seed = (uint32_t)rand();
            cr_assert_eq(ring_crc32c(seed, buf + off, n), ring_crc32c_sw(seed, buf + off, n),
                         "length %zu offset %zu", n, off);
        }
    for (int t = 0; t < 200; t++) {
        size_t n = (size_t)rand() % MAX, off = (size_t)rand() % 8;
        if (n > MAX - off)
            n = MAX - off;
        uint32_t seed = (uint32_t)rand();
        cr_assert_eq(ring_crc32c(seed, buf + off, n), ring_crc32c_sw(seed, buf + off, n), "length %zu", n);
    }
    /* continuing: crc(A || B) from crc(A) */
    uint32_t whole = ring_crc32c(0, buf, 9216 + 48);
    cr_assert_eq(ring_crc32c(ring_crc32c(0, buf, 48), buf + 48, 9216), whole);
    free(buf);
}
