/* The vpdpbusd int8 screens (i8-screen-8x32-avx512vnni on zmm,
 * i8-screen-6x16-avxvnni on ymm), written once: layout, packing, x
 * quantisation and the loops. Included after screen-common.h by a file that
 * defines TILE_ROWS, TILE_PREFETCH (bytes ahead in the tile's panel-pair
 * stream), ROW_PREFETCH (bytes ahead in the 1-row loop's streams, into L2;
 * 0 = none), the accumulator type tile_acc and, for it, I8_ZERO(),
 * I8_LOAD(p) (aligned), I8_SET1(int32), I8_DP(acc, u8, s8) (vpdpbusd),
 * I8_ADD, VNNI_SUB and VNNI_TO_PS (int32 -> fp32 lanes). The loops are
 * screen-i8-loops.h's, shared with i8-screen-4x16-avx2.
 *
 * Layout, packing and loops: screen-i8-loops.h, shared with
 * i8-screen-4x16-avx2. Packed panel p (PANEL latents): per group of 4 inputs (d_in padded to a
 * multiple of 4 with zero weights), PANEL x 4 int8 in vpdpbusd order; panels
 * 2g and 2g+1 are interleaved per group (PAIR_STRIDE bytes), so a 2-panel
 * tile (and each half of the 1-row loop) reads one sequential stream.
 * x is stored as u8 q + 128 (zero padding = 128); the +128 is taken back
 * with colsum_j = 128 * sum_i w_ji. */
#ifndef SAEMON_X86_SCREEN_I8_VNNI_H
#define SAEMON_X86_SCREEN_I8_VNNI_H

#define I8_BLOCK 4                    /* inputs per vpdpbusd lane */
#define GROUP_BYTES (PANEL * 4)       /* one panel, one group of 4 inputs */
#define PAIR_STRIDE (2 * GROUP_BYTES) /* a panel pair, one group */

static size_t d_in4(const saemon_kernel_plan *plan) { return round_up(plan->d_in, 4); }

/* Bytes of one quantised input row (the shared driver sizes its scratch with it). */
static size_t screen_xq_bytes(const saemon_kernel_plan *plan) { return d_in4(plan); }

static size_t scratch_size(const saemon_kernel_plan *plan, size_t max_batch)
{
    return screen_scratch_size(plan, max_batch, screen_xq_bytes(plan));
}

/* Quantise one row of x, stored as u8 q + 128 (zero padding = 128). */
static void prep_row(const saemon_kernel_plan *plan, const float *x, screen_row *row, unsigned char *xq)
{
    memset(xq, 128, d_in4(plan));
    screen_i8_quantise_row(plan, x, row, (int8_t *)xq);
    if (row->fallback)
        return;
    size_t i = 0; /* two's complement q + 128: flip the sign bit, 32 bytes at a time */
    for (; i + 32 <= plan->d_in; i += 32) {
        __m256i *p = (__m256i *)(xq + i);
        _mm256_storeu_si256(p, _mm256_xor_si256(_mm256_loadu_si256(p), _mm256_set1_epi8((char)0x80)));
    }
    for (; i < plan->d_in; i++)
        xq[i] = (unsigned char)(xq[i] ^ 0x80);
}

/* The accumulators as approximate fp32 dots: s_x s_j (acc - 128 sum_i w_ji). */
static inline vf tile_dots(const char *packed, const screen_layout *L, size_t j0, tile_acc acc, const screen_row *row)
{
    const tile_acc colsum = I8_LOAD(packed + L->colsum + j0 * 4);
    const vf scale = v_load((const float *)(packed + L->scale) + j0);
    return v_mul(VNNI_TO_PS(VNNI_SUB(acc, colsum)), v_mul(scale, v_set1(row->sx)));
}

#include "kernels/x86/screen-i8-loops.h"

#endif
