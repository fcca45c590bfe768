/* fp32 encode, AVX2 + FMA: 8-latent panels, 1-row stream (four panels, eight
 * ymm accumulators) and a 6-row x 16-latent register tile (12 ymm
 * accumulators + 2 weight vectors + 1 broadcast = 15 of the 16 registers).
 * The body is f32-encode.h, shared with the AVX-512 variant. */
#include "kernels/x86/simd-avx2.h"

#define TILE_ROWS 6
#define TILE_PREFETCH 2048 /* bytes ahead in each panel stream */

#include "kernels/x86/f32-encode.h"

const saemon_kernel saemon_kernel_f32_encode_6x16_avx2 = {
    .name = "f32-encode-6x16-avx2",
    .packed_layout = 1,
    .family = "avx2",
    .cpu_features = SAEMON_CPU_AVX2,
    .priority = 6,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
