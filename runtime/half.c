/* IEEE binary16 / bfloat16 / binary64 → binary32. Done with integer bit
 * manipulation so results are exact and independent of compiler support. */
#include "runtime/half.h"

#include <string.h>

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float saemon_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0x1F) /* Inf / NaN: keep the payload */
        return bits_to_f32(sign | 0x7F800000u | (man << 13));
    if (exp != 0)
        return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0)
        return bits_to_f32(sign);
    /* Subnormal half: normalise into a float32 normal. */
    int e = -1;
    do {
        man <<= 1;
        e++;
    } while (!(man & 0x400));
    return bits_to_f32(sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13));
}

float saemon_bf16_to_f32(uint16_t b)
{
    return bits_to_f32((uint32_t)b << 16);
}

size_t saemon_dtype_size(saemon_dtype dtype)
{
    switch (dtype) {
    case SAEMON_DTYPE_F32: return 4;
    case SAEMON_DTYPE_F16:
    case SAEMON_DTYPE_BF16: return 2;
    case SAEMON_DTYPE_F64: return 8;
    }
    return 0;
}

/* safetensors is little-endian; so is every target saemon builds for. */
void saemon_convert_to_f32(const void *src, saemon_dtype dtype, size_t n, float *dst)
{
    const uint8_t *s = src;
    switch (dtype) {
    case SAEMON_DTYPE_F32:
        memcpy(dst, s, n * sizeof(float));
        break;
    case SAEMON_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = saemon_f16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case SAEMON_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = saemon_bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case SAEMON_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        break;
    }
}

static inline float load_one(const uint8_t *s, saemon_dtype dtype, size_t i)
{
    switch (dtype) {
    case SAEMON_DTYPE_F16: return saemon_f16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
    case SAEMON_DTYPE_BF16: return saemon_bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
    case SAEMON_DTYPE_F64: {
        double d;
        memcpy(&d, s + 8 * i, sizeof d);
        return (float)d;
    }
    case SAEMON_DTYPE_F32:
    default: {
        float f;
        memcpy(&f, s + 4 * i, sizeof f);
        return f;
    }
    }
}

/* Blocked so both the reads and the writes stay within a few cache lines. */
#define TRANSPOSE_BLOCK 32
#define TRANSPOSE_AS(DT)                                                                           \
    for (size_t r0 = 0; r0 < rows; r0 += TRANSPOSE_BLOCK)                                          \
        for (size_t c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK) {                                    \
            size_t r1 = r0 + TRANSPOSE_BLOCK < rows ? r0 + TRANSPOSE_BLOCK : rows;                 \
            size_t c1 = c0 + TRANSPOSE_BLOCK < cols ? c0 + TRANSPOSE_BLOCK : cols;                 \
            for (size_t r = r0; r < r1; r++)                                                       \
                for (size_t c = c0; c < c1; c++)                                                   \
                    dst[c * rows + r] = load_one(s, DT, r * cols + c);                             \
        }

void saemon_convert_transpose_to_f32(const void *src, saemon_dtype dtype, size_t rows,
                                     size_t cols, float *dst)
{
    const uint8_t *s = src;
    /* One loop per dtype so the switch in load_one folds away. */
    switch (dtype) {
    case SAEMON_DTYPE_F32: TRANSPOSE_AS(SAEMON_DTYPE_F32); break;
    case SAEMON_DTYPE_F16: TRANSPOSE_AS(SAEMON_DTYPE_F16); break;
    case SAEMON_DTYPE_BF16: TRANSPOSE_AS(SAEMON_DTYPE_BF16); break;
    case SAEMON_DTYPE_F64: TRANSPOSE_AS(SAEMON_DTYPE_F64); break;
    }
}

bool saemon_all_finite(const float *a, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &a[i], sizeof u);
        bad |= (u & 0x7F800000u) == 0x7F800000u;
    }
    return !bad;
}
