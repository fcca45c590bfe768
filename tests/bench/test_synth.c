/* Tests of the benchmark's own machinery: generated dictionaries and their
 * calibration, the percentile rule, the roofline model and the .npy writer. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "saemon/npy.h"
#include "bench/synth.h"

static const saemon_kernel *scalar(void)
{
    const saemon_kernel *k = saemon_kernel_select("scalar");
    cr_assert_not_null(k, "the scalar kernel is always compiled in");
    return k;
}

Test(synth, calibration_hits_target_l0)
{
    bench_synth s;
    cr_assert_eq(bench_synth_make(&s, 64, 2048, 128, 64, 50.0, 7, scalar()), 0);
    cr_assert_float_eq(s.calib_l0, 50.0, 1.0 / 64, "calibration L0 %.3f", s.calib_l0);
    cr_assert_gt(s.theta, 0.0f, "a positive threshold makes the mask imply ReLU");
    /* Fresh tokens from the same distribution land near the target. */
    saemon_kernel_plan plan = {.d_in = 64, .d_sae = 2048, .epilogue = SAEMON_EPI_THRESHOLD,
                               .bias = s.b_enc, .threshold = s.threshold};
    bench_kinst ki;
    cr_assert_eq(bench_kinst_init(&ki, scalar(), &plan, s.w_rows, 128), 0);
    bench_kinst_run(&ki, s.x, 128);
    double l0 = bench_kinst_mean_l0(&ki, 128);
    cr_assert(l0 > 30 && l0 < 80, "measured L0 %.2f on benchmark tokens", l0);
    bench_kinst_free(&ki);
    bench_synth_free(&s);
}

Test(synth, deterministic_per_seed)
{
    bench_synth a, b, c;
    cr_assert_eq(bench_synth_make(&a, 32, 256, 8, 16, 10.0, 3, scalar()), 0);
    cr_assert_eq(bench_synth_make(&b, 32, 256, 8, 16, 10.0, 3, scalar()), 0);
    cr_assert_eq(bench_synth_make(&c, 32, 256, 8, 16, 10.0, 4, scalar()), 0);
    cr_assert_eq(memcmp(a.w_rows, b.w_rows, 32 * 256 * sizeof(float)), 0);
    cr_assert_eq(memcmp(a.x, b.x, 32 * 8 * sizeof(float)), 0);
    cr_assert_eq(a.theta, b.theta);
    cr_assert_neq(memcmp(a.w_rows, c.w_rows, 32 * 256 * sizeof(float)), 0);
    bench_synth_free(&a);
    bench_synth_free(&b);
    bench_synth_free(&c);
}

Test(synth, encoder_rows_close_to_unit_decoder_rows)
{
    bench_synth s;
    const size_t d_in = 128, d_sae = 64;
    cr_assert_eq(bench_synth_make(&s, d_in, d_sae, 4, 16, 8.0, 11, scalar()), 0);
    float dec[128];
    for (size_t j = 0; j < d_sae; j++) {
        bench_synth_dec_row(11, j, d_in, dec);
        double nd = 0, ne = 0, dot = 0;
        for (size_t i = 0; i < d_in; i++) {
            nd += dec[i] * dec[i];
            ne += s.w_rows[j * d_in + i] * s.w_rows[j * d_in + i];
            dot += dec[i] * s.w_rows[j * d_in + i];
        }
        cr_assert_float_eq(nd, 1.0, 1e-5, "decoder row %zu norm^2 %.7f", j, nd);
        double cosine = dot / sqrt(nd * ne);
        cr_assert(cosine > 0.9 && cosine < 0.9999, "row %zu cosine %.4f", j, cosine);
    }
    bench_synth_free(&s);
}

Test(timing, nearest_rank_percentile)
{
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = i + 1;
    cr_assert_eq(bench_percentile(v, 100, 99.0), 99.0);
    cr_assert_eq(bench_percentile(v, 100, 50.0), 50.0);
    cr_assert_eq(bench_percentile(v, 10, 99.0), 10.0, "below 100 samples p99 is the maximum");
    cr_assert_eq(bench_percentile(v, 1, 99.0), 1.0);
}

Test(roofline, ideal_is_max_of_memory_and_compute)
{
    bench_roofline r = {.bw_dram = 25, .bw_32m = 50, .bw_16m = 60, .peak_f32 = 200, .peak_bf16 = 400,
                        .peak_i8 = 800};
    /* 75.5 MB of fp32 weights at batch 1: memory bound. */
    double bytes = 4.0 * 768 * 24576, flops1 = 2.0 * 768 * 24576;
    cr_assert_float_eq(bench_roofline_ideal_s(&r, bytes, flops1, "f32"), bytes / 25e9, 1e-12);
    /* batch 256: compute bound at the fp32 peak. */
    double flops256 = 256 * flops1;
    cr_assert_float_eq(bench_roofline_ideal_s(&r, bytes, flops256, "f32"), flops256 / 200e9, 1e-12);
    cr_assert_float_eq(bench_roofline_ideal_s(&r, bytes, flops256, "bf16"), flops256 / 400e9, 1e-12);
    /* 12 MiB of weights read at the 16 MiB (cache) bandwidth. */
    cr_assert_float_eq(bench_roofline_bw(&r, 12.0 * (1 << 20)), 60.0, 1e-12);
    cr_assert_float_eq(bench_roofline_bw(&r, 20.0 * (1 << 20)), 50.0, 1e-12);
}

Test(npy, written_file_loads_in_numpy)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("/usr/bin/python3 not present: cannot cross-check the .npy writer");
    char dir[] = "/tmp/saemon-bench-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float data[6] = {1.5f, -2, 3, 4.25f, 5, 6};
    size_t shape[2] = {2, 3};
    saemon_error err;
    cr_assert_eq(saemon_npy_write_f32(path, data, 2, shape, &err), SAEMON_OK, "%s", err.message);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as n,sys; a=n.load('%s'); "
             "sys.exit(0 if a.shape==(2,3) and a.dtype==n.float32 and a[0,0]==1.5 and a[1,0]==4.25 "
             "and a.flags.c_contiguous else 1)\"",
             path);
    int rc = system(cmd);
    unlink(path);
    rmdir(dir);
    cr_assert_eq(rc, 0, "numpy rejected or misread the written file (rc %d)", rc);
}
