/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of ring frames, the
 * frame checksum both sides compute (docs/ring.md). Header-only (static
 * inline) like ring_wire.h, so the two libraries share no symbols.
 *
 * Variants, chosen once per translation unit by ring_crc32c():
 *   clmul512  AVX-512F + VPCLMULQDQ: four zmm accumulators folded by
 *             carry-less multiplication (a 9 KiB row: ~0.15 µs on Zen 5)
 *   clmul256  AVX2 + VPCLMULQDQ (Zen 3, Ice Lake and later): four ymm
 *   sse42     the crc32 instruction on three lanes (~0.5 µs on Zen 5)
 *   sw        portable, a nibble at a time
 * Every variant gives the same value; tests/ring/test_ring_crc.c checks each
 * one this CPU can run against sw.
 *
 * Folding (Gopal et al., "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ", Intel 2009): a 128-bit block A followed by D more bits of
 * message can be replaced by clmul(A.lo, x^(D+31)) ^ clmul(A.hi, x^(D-33))
 * (both mod P, reflected) xored into the block D bits later, without changing
 * the CRC. The starting register is xored into the first four bytes; the last
 * block left is finished with two crc32 instructions. */
#ifndef SAEMON_PROTO_RING_CRC_H
#define SAEMON_PROTO_RING_CRC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t ring_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    /* Portable fallback, a nibble at a time (16-entry table). */
    static const uint32_t t16[16] = {
        0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u, 0x417b1dbcu, 0x5125dad3u,
        0x61c69362u, 0x7198540du, 0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
        0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u,
    };
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ t16[crc & 15];
        crc = (crc >> 4) ^ t16[crc & 15];
    }
    return ~crc;
}

/* a * b modulo the CRC-32C polynomial, both in the CRC register's reflected
 * form (bit 31 is x^0): shifting a register value past zero bytes is a
 * multiplication by x^(8 * bytes). Branch-free, 32 steps. */
static inline uint32_t ring_crc32c_mulmod(uint32_t a, uint32_t b)
{
    uint32_t p = 0;
    for (int i = 0; i < 32; i++) {
        p ^= b & (0u - (a >> 31));
        a <<= 1;
        b = (b >> 1) ^ (0x82f63b78u & (0u - (b & 1u)));
    }
    return p;
}

#define RING_CRC_LANE 1024u            /* bytes per lane and round of the three-lane loop */
#define RING_CRC_X_LANE 0xe4172b16u    /* x^(8 * 1024) mod P, reflected */
#define RING_CRC_X_2LANES 0x0d65762au  /* x^(8 * 2048) mod P, reflected */

/* Folding constants for a distance of D bits: x^(D+31) and x^(D-33) mod P,
 * reflected (the test recomputes them with ring_crc32c_mulmod). */
#define RING_CRC_FOLD128_LO 0xf20c0dfeu
#define RING_CRC_FOLD128_HI 0x493c7d27u
#define RING_CRC_FOLD256_LO 0x3da6d0cbu
#define RING_CRC_FOLD256_HI 0xba4fc28eu
#define RING_CRC_FOLD512_LO 0x740eef02u
#define RING_CRC_FOLD512_HI 0x9e4addf8u
#define RING_CRC_FOLD1024_LO 0x6992cea2u
#define RING_CRC_FOLD1024_HI 0x0d3b6092u
#define RING_CRC_FOLD2048_LO 0xdcb17aa4u
#define RING_CRC_FOLD2048_HI 0xb9e02b86u

enum { RING_CRC_SW, RING_CRC_SSE42, RING_CRC_CLMUL256, RING_CRC_CLMUL512 };

#if defined(__x86_64__)
#include <immintrin.h>

/* The crc32 instruction over `n` bytes from the raw (uninverted) register. */
__attribute__((target("sse4.2"))) static inline uint32_t ring_crc32c_sse42_raw(uint32_t crc, const uint8_t *p,
                                                                               size_t n)
{
    uint64_t c = crc;
    /* The crc32 instruction issues one per cycle but takes three to finish:
     * three lanes over consecutive 1 KiB blocks keep it busy, then the lanes'
     * registers are joined by shifting each past the bytes after it. */
    while (n >= 3 * RING_CRC_LANE) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < RING_CRC_LANE; i += 8) {
            uint64_t v0, v1, v2;
            memcpy(&v0, p + i, 8);
            memcpy(&v1, p + RING_CRC_LANE + i, 8);
            memcpy(&v2, p + 2 * RING_CRC_LANE + i, 8);
            c = _mm_crc32_u64(c, v0);
            c1 = _mm_crc32_u64(c1, v1);
            c2 = _mm_crc32_u64(c2, v2);
        }
        c = ring_crc32c_mulmod(RING_CRC_X_2LANES, (uint32_t)c) ^ ring_crc32c_mulmod(RING_CRC_X_LANE, (uint32_t)c1)
          ^ (uint32_t)c2;
        p += 3 * RING_CRC_LANE;
        n -= 3 * RING_CRC_LANE;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

__attribute__((target("sse4.2"))) static inline uint32_t ring_crc32c_sse42(uint32_t crc, const void *data, size_t n)
{
    return ~ring_crc32c_sse42_raw(~crc, data, n);
}

/* One 128-bit fold: a's contribution moved D bits on (k = its constants), into b. */
__attribute__((target("sse4.2,pclmul"))) static inline __m128i ring_crc_fold128(__m128i a, __m128i k, __m128i b)
{
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11)), b);
}

/* Fold the last 16-byte blocks into x, then finish: CRC of x's bytes, then
 * of the under-16 bytes left. Returns the inverted (final) CRC. */
__attribute__((target("sse4.2,pclmul"))) static inline uint32_t ring_crc_finish128(__m128i x, const uint8_t *p,
                                                                                   size_t n)
{
    const __m128i k = _mm_set_epi64x(RING_CRC_FOLD128_HI, RING_CRC_FOLD128_LO);
    for (; n >= 16; p += 16, n -= 16)
        x = ring_crc_fold128(x, k, _mm_loadu_si128((const __m128i *)p));
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
    return ~ring_crc32c_sse42_raw((uint32_t)c, p, n);
}

__attribute__((target("sse4.2,pclmul,avx2,vpclmulqdq"))) static inline __m256i ring_crc_fold256(__m256i a, __m256i k,
                                                                                              __m256i b)
{
    return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(a, k, 0x00), _mm256_clmulepi64_epi128(a, k, 0x11)),
                            b);
}

__attribute__((target("sse4.2,pclmul,avx2,vpclmulqdq"))) static inline uint32_t ring_crc32c_clmul256(uint32_t crc,
                                                                                                  const void *data,
                                                                                                  size_t n)
{
    const uint8_t *p = data;
    if (n < 128)
        return ring_crc32c_sse42(crc, p, n);
    __m256i y0 = _mm256_loadu_si256((const __m256i *)p), y1 = _mm256_loadu_si256((const __m256i *)(p + 32)),
            y2 = _mm256_loadu_si256((const __m256i *)(p + 64)), y3 = _mm256_loadu_si256((const __m256i *)(p + 96));
    y0 = _mm256_xor_si256(y0, _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, (int)~crc));
    p += 128;
    n -= 128;
    const __m256i k1024 = _mm256_set_epi64x(RING_CRC_FOLD1024_HI, RING_CRC_FOLD1024_LO, RING_CRC_FOLD1024_HI,
                                            RING_CRC_FOLD1024_LO);
    for (; n >= 128; p += 128, n -= 128) {
        y0 = ring_crc_fold256(y0, k1024, _mm256_loadu_si256((const __m256i *)p));
        y1 = ring_crc_fold256(y1, k1024, _mm256_loadu_si256((const __m256i *)(p + 32)));
        y2 = ring_crc_fold256(y2, k1024, _mm256_loadu_si256((const __m256i *)(p + 64)));
        y3 = ring_crc_fold256(y3, k1024, _mm256_loadu_si256((const __m256i *)(p + 96)));
    }
    const __m256i k256 = _mm256_set_epi64x(RING_CRC_FOLD256_HI, RING_CRC_FOLD256_LO, RING_CRC_FOLD256_HI,
                                           RING_CRC_FOLD256_LO);
    y1 = ring_crc_fold256(y0, k256, y1);
    y2 = ring_crc_fold256(y1, k256, y2);
    y3 = ring_crc_fold256(y2, k256, y3);
    for (; n >= 32; p += 32, n -= 32)
        y3 = ring_crc_fold256(y3, k256, _mm256_loadu_si256((const __m256i *)p));
    const __m128i k128 = _mm_set_epi64x(RING_CRC_FOLD128_HI, RING_CRC_FOLD128_LO);
    __m128i x = ring_crc_fold128(_mm256_castsi256_si128(y3), k128, _mm256_extracti128_si256(y3, 1));
    return ring_crc_finish128(x, p, n);
}

__attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq"))) static inline __m512i ring_crc_fold512(__m512i a, __m512i k,
                                                                                                 __m512i b)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00), _mm512_clmulepi64_epi128(a, k, 0x11), b,
                                     0x96); /* a ^ b ^ c */
}

__attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq"))) static inline uint32_t ring_crc32c_clmul512(uint32_t crc,
                                                                                                     const void *data,
                                                                                                     size_t n)
{
    const uint8_t *p = data;
    if (n < 256)
        return ring_crc32c_sse42(crc, p, n);
    __m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64), z2 = _mm512_loadu_si512(p + 128),
            z3 = _mm512_loadu_si512(p + 192);
    z0 = _mm512_xor_si512(z0, _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (int)~crc));
    p += 256;
    n -= 256;
    const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x(RING_CRC_FOLD2048_HI, RING_CRC_FOLD2048_LO));
    for (; n >= 256; p += 256, n -= 256) {
        z0 = ring_crc_fold512(z0, k2048, _mm512_loadu_si512(p));
        z1 = ring_crc_fold512(z1, k2048, _mm512_loadu_si512(p + 64));
        z2 = ring_crc_fold512(z2, k2048, _mm512_loadu_si512(p + 128));
        z3 = ring_crc_fold512(z3, k2048, _mm512_loadu_si512(p + 192));
    }
    const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x(RING_CRC_FOLD512_HI, RING_CRC_FOLD512_LO));
    z1 = ring_crc_fold512(z0, k512, z1);
    z2 = ring_crc_fold512(z1, k512, z2);
    z3 = ring_crc_fold512(z2, k512, z3);
    for (; n >= 64; p += 64, n -= 64)
        z3 = ring_crc_fold512(z3, k512, _mm512_loadu_si512(p));
    const __m128i k128 = _mm_set_epi64x(RING_CRC_FOLD128_HI, RING_CRC_FOLD128_LO);
    __m128i x = _mm512_extracti32x4_epi32(z3, 0);
    x = ring_crc_fold128(x, k128, _mm512_extracti32x4_epi32(z3, 1));
    x = ring_crc_fold128(x, k128, _mm512_extracti32x4_epi32(z3, 2));
    x = ring_crc_fold128(x, k128, _mm512_extracti32x4_epi32(z3, 3));
    return ring_crc_finish128(x, p, n);
}
#endif

/* The fastest variant this CPU runs (a RING_CRC_* value). */
static inline int ring_crc32c_best(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("sse4.2"))
        return RING_CRC_SW;
    if (__builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul")) {
        if (__builtin_cpu_supports("avx512f"))
            return RING_CRC_CLMUL512;
        if (__builtin_cpu_supports("avx2"))
            return RING_CRC_CLMUL256;
    }
    return RING_CRC_SSE42;
#else
    return RING_CRC_SW;
#endif
}

/* CRC-32C of `n` bytes continuing from `crc` (start with 0). */
static inline uint32_t ring_crc32c(uint32_t crc, const void *data, size_t n)
{
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        l = ring_crc32c_best();
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
#if defined(__x86_64__)
    switch (l) {
    case RING_CRC_CLMUL512: return ring_crc32c_clmul512(crc, data, n);
    case RING_CRC_CLMUL256: return ring_crc32c_clmul256(crc, data, n);
    case RING_CRC_SSE42: return ring_crc32c_sse42(crc, data, n);
    default: break;
    }
#endif
    return ring_crc32c_sw(crc, data, n);
}

#endif
