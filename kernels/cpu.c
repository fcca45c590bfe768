/* CPU feature detection, done once. x86: cpuid feature bits plus the OS's
 * XCR0 state (ZMM registers saved), never model tables. AArch64: AT_HWCAP. */
#include <fenv.h>
#include <stdint.h>

#include "kernels/kernel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect(void)
{
    unsigned a, b, c, d;
    uint32_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave)
        return 0;
    const uint64_t xcr0 = read_xcr0();
    /* XCR0 bits 1,2 (SSE, AVX: YMM state) and 5,6,7 (opmask, ZMM_Hi256, Hi16_ZMM). */
    const int ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_state || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    const int avx2 = (b >> 5) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    const int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    unsigned a1 = 0, b1, c1, d1;
    if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1))
        a1 = 0;
    if (avx2 && fma) {
        f |= SAEMON_CPU_AVX2;
        if ((a1 >> 4) & 1)
            f |= SAEMON_CPU_AVX_VNNI;
    }
    if (f16c)
        f |= SAEMON_CPU_F16C;
    if (zmm_state && avx512f && avx512dq && avx512bw && avx512vl) {
        f |= SAEMON_CPU_AVX512F;
        if (vnni)
            f |= SAEMON_CPU_AVX512VNNI;
        if ((a1 >> 5) & 1)
            f |= SAEMON_CPU_AVX512BF16;
    }
    return f;
}

#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1 << 14)
#endif

static uint32_t detect(void)
{
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    uint32_t f = 0;
    if (hw & HWCAP_ASIMD)
        f |= SAEMON_CPU_NEON;
    if (hw & HWCAP_ASIMDDP)
        f |= SAEMON_CPU_NEON_DOTPROD;
    if (hw2 & HWCAP2_BF16)
        f |= SAEMON_CPU_NEON_BF16;
    return f;
}

#else
static uint32_t detect(void) { return 0; }
#endif

uint32_t saemon_cpu_features(void)
{
    static uint32_t cached;
    static int done;
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&cached, detect(), __ATOMIC_RELAXED);
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&cached, __ATOMIC_RELAXED);
}

const char *saemon_cpu_feature_name(uint32_t bit)
{
    switch (bit) {
    case SAEMON_CPU_AVX512F: return "avx512f/bw/dq/vl";
    case SAEMON_CPU_AVX512BF16: return "avx512_bf16";
    case SAEMON_CPU_AVX512VNNI: return "avx512_vnni";
    case SAEMON_CPU_AVX2: return "avx2+fma";
    case SAEMON_CPU_F16C: return "f16c";
    case SAEMON_CPU_AVX_VNNI: return "avx_vnni";
    case SAEMON_CPU_NEON: return "neon";
    case SAEMON_CPU_NEON_DOTPROD: return "neon-dotprod";
    case SAEMON_CPU_NEON_BF16: return "neon-bf16";
    default: return "cpu-feature-?";
    }
}

int saemon_kernels_rounding_ok(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* SSE arithmetic obeys MXCSR, not the x87 control word fegetround()
     * may report: bits 13-14 are the rounding control (00 = nearest). */
    unsigned csr;
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    if ((csr >> 13) & 3)
        return 0;
#endif
    return fegetround() == FE_TONEAREST;
}
