/* int8 screened encode, AVX2 (vpmaddwd on sign-extended int8): the exact
 * fp32 answer from a quarter of the weight bytes on CPUs without AVX-512.
 *
 * Same quantisation, bound and recompute as i8-screen-8x32-avx512vnni (the
 * shared body is screen-common.h / screen-encode.h): W_j per latent with
 * s_j = max|W_j|/127, x per token with s_x = max|x|/127, both signed int8,
 * D~_j = s_x s_j sum q_i w_ji exact in int32 (|sum| <= 127^2 d_in < 2^31 for
 * d_in <= I8_MAX_D_IN). The weights stay int8 in memory; vpmovsxbw widens 16
 * of them (8 latents x 2 inputs) to int16 and vpmaddwd multiplies them with
 * the broadcast int16 pair (x_2k, x_2k+1), summing each latent's pair into
 * one int32 lane. No u8 offset, so no column sums.
 *
 * Packed panel p (8 latents): per block of 2 inputs (d_in padded to even
 * with zero weights), 16 bytes = 8 latents x 2 int8; panels 2g and 2g+1 are
 * interleaved per block (32 bytes) so a panel pair is one sequential stream.
 * 1 row: four panels (two pair streams) side by side, two accumulators each.
 * 2+ rows: 4 rows x 2 panels (16 latents) of int32 accumulators, panels
 * outer so each panel pair is read from memory once per call. */
#include "kernels/x86/simd-avx2.h"
#include "kernels/x86/screen-common.h"

#define TILE_ROWS 4
#define TILE_PREFETCH 1024 /* bytes ahead in the panel-pair stream */
#define I8_BLOCK 2         /* inputs per vpmaddwd lane */
#define GROUP_BYTES 16     /* one panel, one block of 2 inputs */
#define PAIR_STRIDE 32     /* bytes per block of 2 inputs of a panel pair */
/* 1-row loop: bytes ahead in each pair stream, into L2. The loop spends ~3
 * instructions per 16 weight bytes, so the out-of-order window covers little
 * of the stream: without a far prefetch it reached about half the DRAM read
 * bandwidth (Zen 4, SAEMON_ISA=avx2, gpt2 768x24576: p50 1.44 ms at 2 KiB
 * ahead, 0.75-0.83 ms at 48 KiB; gemma 2304x16384: 2.9-3.6 ms -> 2.5-2.7 ms;
 * 8 KiB was slower than 2 KiB). 48 KiB per stream stays far inside L2. */
#define ROW_PREFETCH 49152

typedef __m256i tile_acc;

static size_t d_in2(const saemon_kernel_plan *plan) { return round_up(plan->d_in, 2); }

/* x is kept as int16 (vpmaddwd's operand width). */
static size_t screen_xq_bytes(const saemon_kernel_plan *plan) { return d_in2(plan) * 2; }

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    return screen_scratch_size(plan, max_batch, screen_xq_bytes(plan));
}

/* Quantise one row of x to int8, then widen in place to int16. */
static void prep_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, unsigned char *xq)
{
    memset(xq, 0, screen_xq_bytes(plan));
    screen_i8_quantise_row(plan, x, row, (int8_t *)xq);
    if (row->fallback)
        return;
    for (size_t i = plan->d_in; i-- > 0;) { /* backwards: 2i >= i never overwrites an unread byte */
        int16_t v = (int8_t)xq[i];
        memcpy(xq + 2 * i, &v, 2);
    }
}

static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, __m256i acc, const screen_row *row)
{
    const __m256 scale = _mm256_load_ps((const float *)(packed + L->scale) + j0);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(scale, _mm256_set1_ps(row->sx)));
}

/* 8 latents x 2 inputs of int8 weights, widened to int16. */
static inline __m256i load_w(const char *p) { return _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)p)); }

/* The shared int8 loops (screen-i8-loops.h), on vpmaddwd. */
#define I8_ZERO() _mm256_setzero_si256()
#define I8_LOAD(p) load_w(p)
#define I8_SET1(v) _mm256_set1_epi32(v)
#define I8_DP(acc, x, w) _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
#define I8_ADD(a, b) _mm256_add_epi32(a, b)

#include "kernels/x86/screen-i8-loops.h"

#include "kernels/x86/screen-encode.h"

const saemon_kernel saemon_kernel_i8_screen_4x16_avx2 = {
    .name = "i8-screen-4x16-avx2",
    .packed_layout = 1,
    .family = "avx2",
    .cpu_features = SAEMON_CPU_AVX2,
    .priority = 8,
    .screened = 1,
    .packed_rows_align = VL, /* screen-common.h: the fp32 rows come first, row_stride = d_in when VL divides it */
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
