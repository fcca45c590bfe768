/* CPU feature detection, done once. x86: cpuid feature bits plus the OS's
 * XCR0 state (ZMM registers saved), never model tables. AArch64: AT_HWCAP. */
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
    const int osxsave = (c >> 27) & 1;
    if (!osxsave)
        return 0;
    /* XCR0 bits 1,2 (SSE, AVX) and 5,6,7 (opmask, ZMM_Hi256, Hi16_ZMM). */
    if ((read_xcr0() & 0xe6) != 0xe6)
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    const int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    if (avx512f && avx512dq && avx512bw && avx512vl) {
        f |= SAEMON_CPU_AVX512F;
        if (vnni)
            f |= SAEMON_CPU_AVX512VNNI;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1))
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
