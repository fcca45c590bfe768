/* fp32 encode, AVX-512F: 16-latent panels, 1-row stream and an 8-row x
 * 32-latent register tile (16 zmm accumulators). The body is f32-encode.h,
 * shared with the AVX2 variant. */
#include "kernels/x86/simd-avx512.h"

#define TILE_ROWS 8
#define TILE_PREFETCH 4096 /* bytes ahead in each panel stream (1024, 2048 measured slower) */

#include "kernels/x86/f32-encode.h"

const saemon_kernel saemon_kernel_f32_encode_8x32_avx512 = {
    .name = "f32-encode-8x32-avx512",
    .packed_layout = 1,
    .family = "avx512",
    .cpu_features = SAEMON_CPU_AVX512F,
    .priority = 10,
    .packed_size = packed_size,
    .scratch_size = scratch_size,
    .pack = pack,
    .encode = encode,
};
