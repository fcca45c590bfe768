/* int8 screened encode, AVX-VNNI (VEX vpdpbusd on ymm: Alder Lake and later
 * Intel client cores, Sapphire Rapids, Zen 5): the AVX512-VNNI variant's
 * quantisation and bound on 256-bit vectors, for CPUs that have VNNI but no
 * AVX-512 (or where it is off). One vpdpbusd does 32 multiply-adds, twice a
 * vpmaddwd, so at batch >= 8 it needs half the instructions of
 * i8-screen-4x16-avx2.
 *
 * Screen: W_j quantised per latent (s_j = max|W_j|/127, int8), x per token
 * (s_x = max|x|/127, q_i int8 stored as u8 q_i + 128 for vpdpbusd, the +128
 * taken back with 128 * sum_i w_ji). D~_j = s_x s_j sum q_i w_ji is exact in
 * int32 (d_in <= I8_MAX_D_IN); the bound, the tests and the fp32 recompute
 * are screen-common.h's, shared with every screened x86 variant.
 *
 * Packed panel p (8 latents): per group of 4 inputs (d_in padded to a
 * multiple of 4 with zero weights), 32 bytes = 8 latents x 4 int8 in
 * vpdpbusd order; panels 2g and 2g+1 are interleaved per group (64 bytes), so
 * a panel pair is one sequential stream. 1 row: four panels (two pair
 * streams) side by side, two accumulators each. 2+ rows: 6 rows x 2 panels
 * (12 of the 16 ymm accumulate), panels outer so each panel pair is read from
 * memory once per call.
 *
 * SAEMON_TEST_EMULATE_AVXVNNI (tests only, never in the library): vpdpbusd
 * is computed exactly with AVX2 instructions and the variant asks only for
 * AVX2, so the whole variant is checked on hosts without AVX-VNNI (QEMU 7.2's
 * TCG lacks it too); see tests/checkkernels/meson.build. */
#include "kernels/x86/simd-avx2.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 6
#define TILE_PREFETCH 1024 /* bytes ahead in the panel-pair stream */
#define ROW_PREFETCH 49152 /* 1-row loop: bytes ahead in each pair stream, into L2 (as i8-screen-4x16-avx2) */

typedef __m256i tile_acc;

#ifdef SAEMON_TEST_EMULATE_AVXVNNI
/* acc + per 32-bit lane the sum of 4 u8 x s8 products, exactly. */
static inline __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8)
{
    const __m256i lo = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(u8)),
                                         _mm256_cvtepi8_epi16(_mm256_castsi256_si128(s8)));
    const __m256i hi = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(u8, 1)),
                                         _mm256_cvtepi8_epi16(_mm256_extracti128_si256(s8, 1)));
    /* hadd pairs within 128-bit halves: quads 0,1,4,5 | 2,3,6,7 */
    const __m256i q = _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xd8);
    return _mm256_add_epi32(acc, q);
}
#define VARIANT_CPU_FEATURES SAEMON_CPU_AVX2
#else
static inline __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return _mm256_dpbusd_avx_epi32(acc, u8, s8); }
#define VARIANT_CPU_FEATURES (SAEMON_CPU_AVX2 | SAEMON_CPU_AVX_VNNI)
#endif

#define I8_ZERO() _mm256_setzero_si256()
#define I8_LOAD(p) _mm256_load_si256((const __m256i *)(p))
#define I8_SET1(v) _mm256_set1_epi32(v)
#define I8_DP(acc, u8, s8) dpbusd(acc, u8, s8)
#define I8_ADD(a, b) _mm256_add_epi32(a, b)
#define VNNI_SUB(a, b) _mm256_sub_epi32(a, b)
#define VNNI_TO_PS(a) _mm256_cvtepi32_ps(a)

#include "kernels/x86/screen-i8-vnni.h"

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_6x16_avxvnni = {
    .name = "i8-screen-6x16-avxvnni",
    .packed_layout = 1,
    .family = "avx2",
    .cpu_features = VARIANT_CPU_FEATURES,
    .priority = 9,
    .screened = 1,
    .packed_rows_align = VL, /* screen-common.h: the fp32 rows come first, row_stride = d_in when VL divides it */
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
