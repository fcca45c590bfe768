/* int8 screened encode, AVX512-VNNI (vpdpbusd): exact fp32 answer from a
 * quarter of the weight bytes.
 *
 * Screen: W_j quantised per latent (scale s_j = max|W_j|/127, w_ji int8),
 * x per token (s_x = max|x|/127, q_i int8 stored as u8 q_i+128 for vpdpbusd;
 * the +128 is taken back with 128*sum_i w_ji). D~_j = s_x s_j sum q_i w_ji is
 * exact in int32 (d_in <= I8_MAX_D_IN keeps |sum| < 2^31). The rigorous bound
 * |fp32 dot - D~_j| <= c1_j ||x||2 + c2_j ||x - x^||2 with
 *   c1_j = ||W_j - s_j w_j||2 + gamma ||W_j||2,   c2_j = ||s_j w_j||2
 * (derivation and the per-epilogue tests: screen-common.h, docs/kernels.md)
 * decides which latents are recomputed in fp32 from the fp32 rows.
 *
 * Packed panel p: for each group of 4 inputs (d_in padded to a multiple of
 * 4 with zero weights), 64 bytes = 16 latents x 4 int8; panels 2g and 2g+1
 * are interleaved per group (128 bytes), so a panel pair is one sequential
 * stream. 1 row: four panels (two pair streams) side by side with two
 * accumulators each. 2+ rows: 8 rows x 2 panels (32 latents) of int32
 * accumulators, panels outer so each panel pair is read from memory once per call. */
#include "kernels/x86/simd-avx512.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 8
#define TILE_PREFETCH 4096 /* bytes ahead in the panel-pair stream (measured: 2048 and 8192 slower) */

#define ROW_PREFETCH 0 /* the hardware prefetcher keeps up here (48 KiB ahead measured no better) */

typedef __m512i tile_acc;
#define I8_ZERO() _mm512_setzero_si512()
#define I8_LOAD(p) _mm512_load_si512((const void *)(p))
#define I8_SET1(v) _mm512_set1_epi32(v)
#define I8_DP(acc, u8, s8) _mm512_dpbusd_epi32(acc, u8, s8)
#define I8_ADD(a, b) _mm512_add_epi32(a, b)
#define VNNI_SUB(a, b) _mm512_sub_epi32(a, b)
#define VNNI_TO_PS(a) _mm512_cvtepi32_ps(a)

#include "kernels/x86/screen-i8-vnni.h"

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_8x32_avx512vnni = {
    .name = "i8-screen-8x32-avx512vnni",
    .packed_layout = 1,
    .family = "avx512",
    .cpu_features = SAEMON_CPU_AVX512F | SAEMON_CPU_AVX512VNNI,
    .priority = 30,
    .screened = 1,
    .packed_rows_align = VL, /* screen-common.h: the fp32 rows come first, row_stride = d_in when VL divides it */
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
