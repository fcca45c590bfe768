/* The roofline this machine offers one thread: streaming read bandwidth at
 * fixed buffer sizes (the VM's reported L3 is bogus, so no cache-size
 * detection) and peak fp32 FMA / bf16 dot / int8 dot, measured with the
 * vector family the kernels run with: AVX-512 (zmm FMA, vdpbf16ps,
 * vpdpbusd) where the CPU has it, AVX2 (ymm FMA, vpmaddwd) where it has only
 * that or where SAEMON_ISA forces the avx2 family, else no compute peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kernels/kernel.h"

static uint64_t read_portable(const void *buf, size_t bytes)
{
    const uint64_t *p = buf;
    uint64_t a[8] = {0};
    size_t n = bytes / sizeof *p;
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] ^= p[i + k];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

static volatile uint64_t sink;

/* "avx512", "avx2" or "portable": the widest family the CPU runs, unless
 * SAEMON_ISA names a narrower family or one of its variants. */
static const char *roofline_family(void)
{
#if defined(__x86_64__)
    const uint32_t f = saemon_cpu_features();
    const char *isa = getenv("SAEMON_ISA");
    const int forced_avx2 = isa && (strcmp(isa, "avx2") == 0 || strstr(isa, "-avx2"));
    const int forced_portable = isa && (!strcmp(isa, "portable") || !strcmp(isa, "scalar") ||
                                        strstr(isa, "-portable") || strstr(isa, "-scalar"));
    if (forced_portable)
        return "portable";
    if ((f & SAEMON_CPU_AVX512F) && !forced_avx2)
        return "avx512";
    if (f & SAEMON_CPU_AVX2)
        return "avx2";
#endif
    return "portable";
}

uint64_t bench_read_stream(const void *buf, size_t bytes)
{
#if defined(__x86_64__)
    const char *fam = roofline_family();
    if (!strcmp(fam, "avx512"))
        return bench_read_avx512(buf, bytes);
    if (!strcmp(fam, "avx2"))
        return bench_read_avx2(buf, bytes);
#endif
    return read_portable(buf, bytes);
}

/* Bytes per weight of the dtype a variant streams for every latent: the
 * first field of its name ("f32-encode-1x1-scalar", "bf16-screen-..."). */
double bench_variant_weight_bytes(const char *variant, char *dtype, size_t n)
{
    size_t len = strcspn(variant, "-");
    snprintf(dtype, n, "%.*s", (int)len, variant);
    if (!strcmp(dtype, "f32") || !strcmp(dtype, "fp32"))
        return 4;
    if (!strcmp(dtype, "bf16") || !strcmp(dtype, "f16"))
        return 2;
    if (!strcmp(dtype, "i8") || !strcmp(dtype, "u8") || !strcmp(dtype, "q8"))
        return 1;
    return 0;
}

/* Best-of-N GB/s of reading `bytes` (touch first so no page faults count). */
static double read_bw(size_t bytes, double seconds)
{
    void *buf = aligned_alloc(64, bytes);
    if (!buf)
        return 0;
    memset(buf, 1, bytes);
    double best = 0, t_start = clock_now_s();
    int reps = 0;
    do {
        double t0 = clock_now_s();
        sink ^= bench_read_stream(buf, bytes);
        double dt = clock_now_s() - t0;
        double gbs = (double)bytes / dt * 1e-9;
        if (gbs > best)
            best = gbs;
        reps++;
    } while (clock_now_s() - t_start < seconds || reps < 3);
    free(buf);
    return best;
}

void bench_roofline_measure(bench_roofline *r, int quick)
{
    memset(r, 0, sizeof *r);
    double s = quick ? 0.1 : 0.4;
    r->bw_16m = read_bw((size_t)16 << 20, s);
    r->bw_32m = read_bw((size_t)32 << 20, s);
    r->bw_dram = read_bw((size_t)1 << 30, quick ? 0.3 : 1.0);
    r->isa = roofline_family();
#if defined(__x86_64__)
    uint32_t f = saemon_cpu_features();
    double ps = quick ? 0.05 : 0.2;
    if (!strcmp(r->isa, "avx512")) {
        r->peak_f32 = bench_peak_fma_f32(ps);
        if (f & SAEMON_CPU_AVX512BF16)
            r->peak_bf16 = bench_peak_dpbf16(ps);
        else
            r->compute_note = "CPU lacks AVX512_BF16: bf16 peak not measured";
        if (f & SAEMON_CPU_AVX512VNNI)
            r->peak_i8 = bench_peak_vnni(ps);
        else if (!r->compute_note)
            r->compute_note = "CPU lacks AVX512_VNNI: int8 peak not measured";
    } else if (!strcmp(r->isa, "avx2")) {
        r->peak_f32 = bench_peak_fma_f32_avx2(ps);
        r->peak_i8 = bench_peak_i8_avx2(ps);
        r->compute_note = "AVX2 family: fp32 peak from vfmadd231ps ymm, int8 from vpmaddwd+vpaddd ymm; no bf16";
    } else {
        r->compute_note = "portable family: only the bandwidth roofline is measured";
    }
#else
    r->compute_note = "non-x86 build: only the bandwidth roofline is measured";
#endif
}

double bench_roofline_bw(const bench_roofline *r, double bytes)
{
    if (bytes <= (double)(16 << 20))
        return r->bw_16m;
    if (bytes <= (double)(32 << 20))
        return r->bw_32m;
    return r->bw_dram;
}

double bench_roofline_peak(const bench_roofline *r, const char *dtype)
{
    if (strcmp(dtype, "bf16") == 0)
        return r->peak_bf16;
    if (strcmp(dtype, "i8") == 0 || strcmp(dtype, "u8") == 0 || strcmp(dtype, "q8") == 0)
        return r->peak_i8;
    return r->peak_f32;
}

double bench_roofline_ideal_s(const bench_roofline *r, double bytes, double flops, const char *dtype)
{
    double bw = bench_roofline_bw(r, bytes);
    double peak = bench_roofline_peak(r, dtype);
    double t_mem = bw > 0 ? bytes / (bw * 1e9) : 0;
    double t_cmp = peak > 0 ? flops / (peak * 1e9) : 0;
    return t_mem > t_cmp ? t_mem : t_cmp;
}
