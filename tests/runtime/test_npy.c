/* .npy reading, row views and writing. Test files are assembled here byte by
 * byte (no numpy needed), so every malformed variant is exact. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saemon/npy.h"
#include "tests/support/support.h"

static char *tmp;

static void setup(void)
{
    tmp = test_tmpdir();
    cr_assert_not_null(tmp, "cannot create a temp dir");
}

static void teardown(void)
{
    test_rmtree(tmp);
    free(tmp);
}

TestSuite(npy, .init = setup, .fini = teardown);

/* ---- a tiny raw .npy writer ------------------------------------------- */

typedef struct raw {
    unsigned char *bytes;
    size_t len;
} raw;

/* magic + version + header length + dict (padded so data starts at 64) + data */
static raw raw_npy(unsigned major, unsigned minor, const char *dict, const void *data, size_t data_len)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dlen = strlen(dict);
    size_t hlen = (pre + dlen + 1 + 63) / 64 * 64 - pre;
    raw r = {.len = pre + hlen + data_len};
    r.bytes = malloc(r.len);
    memcpy(r.bytes, "\x93NUMPY", 6);
    r.bytes[6] = (unsigned char)major;
    r.bytes[7] = (unsigned char)minor;
    for (size_t i = 0; i < pre - 8; i++)
        r.bytes[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(r.bytes + pre, dict, dlen);
    memset(r.bytes + pre + dlen, ' ', hlen - dlen - 1);
    r.bytes[pre + hlen - 1] = '\n';
    if (data_len)
        memcpy(r.bytes + pre + hlen, data, data_len);
    return r;
}

static char *save(const char *name, raw r)
{
    char *path = test_write_file(tmp, name, r.bytes, r.len);
    cr_assert_not_null(path);
    free(r.bytes);
    return path;
}

static char *save_f32(const char *name, const char *dict, const float *v, size_t n)
{
    return save(name, raw_npy(1, 0, dict, v, n * sizeof(float)));
}

/* Reading `path` must fail with `code` and a message holding `needle` and the file name. */
static void expect_error(const char *path, saemon_status code, const char *needle)
{
    saemon_npy a;
    saemon_error err = {0};
    saemon_status st = saemon_npy_open(path, &a, &err);
    cr_assert_eq(st, code, "%s: expected status %s, got %s (%s)", path, saemon_status_name(code),
                 saemon_status_name(st), err.message);
    cr_expect_eq(err.code, code);
    cr_expect_not_null(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    cr_expect_not_null(strstr(err.message, path), "message '%s' does not name the file", err.message);
    cr_expect_null(a.data, "failed read left data behind");
}

static char *bad_dict(const char *name, const char *dict)
{
    static const float one[2] = {1, 2};
    return save_f32(name, dict, one, 2);
}

/* ---- round trip and the writer ----------------------------------------- */

Test(npy, write_read_round_trip)
{
    float v[3 * 5];
    for (int i = 0; i < 15; i++)
        v[i] = (float)i * 0.37f - 2.0f;
    v[4] = -0.0f;
    v[7] = INFINITY;
    size_t shape[2] = {3, 5};
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/out.npy", tmp) > 0);
    saemon_error err = {0};
    cr_assert_eq(saemon_npy_write_f32(path, v, 2, shape, &err), SAEMON_OK, "%s", err.message);

    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq((st.st_size - 15 * 4) % 64, 0, "data does not start at a multiple of 64");
    mode_t mask = umask(0);
    umask(mask);
    cr_expect_eq(st.st_mode & 0777, 0666 & ~mask, "mode %o, expected 0666 minus umask", st.st_mode & 0777);

    saemon_npy a;
    cr_assert_eq(saemon_npy_open(path, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(a.ndim, 2);
    cr_expect_eq(a.shape[0], 3);
    cr_expect_eq(a.shape[1], 5);
    cr_expect_str_eq(a.source_dtype, "<f4");
    cr_expect_eq(a.fortran_order, 0);
    cr_expect_eq(memcmp(a.data, v, sizeof v), 0, "data differs after round trip");
    saemon_npy_close(&a);
    cr_expect_null(a.data);
    free(path);
}

Test(npy, writer_header_is_numpy_style)
{
    float v[4] = {1, 2, 3, 4};
    size_t shape[1] = {4};
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/one.npy", tmp) > 0);
    cr_assert_eq(saemon_npy_write_f32(path, v, 1, shape, NULL), SAEMON_OK);
    FILE *f = fopen(path, "rb");
    char buf[128] = {0};
    cr_assert_eq(fread(buf, 1, 128, f), 128);
    fclose(f);
    cr_expect_eq(memcmp(buf, "\x93NUMPY\x01\x00", 8), 0);
    cr_expect_eq((unsigned char)buf[8] | (unsigned char)buf[9] << 8, 118);
    cr_expect_eq(memcmp(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 57), 0,
                 "header: %.57s", buf + 10);
    cr_expect_eq(buf[67], ' ');
    cr_expect_eq(buf[127], '\n');
    free(path);
}

Test(npy, scalar_and_empty_round_trip)
{
    char *p0 = NULL, *p1 = NULL;
    cr_assert(asprintf(&p0, "%s/scalar.npy", tmp) > 0 && asprintf(&p1, "%s/empty.npy", tmp) > 0);
    float s = 42.5f;
    size_t empty_shape[2] = {0, 7};
    cr_assert_eq(saemon_npy_write_f32(p0, &s, 0, NULL, NULL), SAEMON_OK);
    cr_assert_eq(saemon_npy_write_f32(p1, NULL, 2, empty_shape, NULL), SAEMON_OK);
    saemon_npy a, b;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(p0, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(a.ndim, 0);
    cr_expect_eq(a.data[0], 42.5f);
    cr_assert_eq(saemon_npy_open(p1, &b, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(b.ndim, 2);
    cr_expect_eq(b.shape[0], 0);
    cr_expect_eq(b.shape[1], 7);
    size_t rows = 99, streams = 99, per = 99;
    cr_expect_eq(saemon_npy_as_rows(&b, 7, 0, &rows, &streams, &per, NULL), SAEMON_OK);
    cr_expect_eq(rows, 0);
    cr_expect_eq(saemon_npy_as_rows(&a, 1, 0, &rows, &streams, &per, &err), SAEMON_ERR_SHAPE,
                 "a 0-d array has no rows");
    saemon_npy_close(&a);
    saemon_npy_close(&b);
    free(p0);
    free(p1);
}

Test(npy, write_to_dev_full_reports_no_space)
{
    if (access("/dev/full", W_OK) != 0)
        cr_skip_test("/dev/full is not writable here");
    float v[64] = {0};
    size_t shape[1] = {64};
    saemon_error err = {0};
    cr_assert_eq(saemon_npy_write_f32("/dev/full", v, 1, shape, &err), SAEMON_ERR_IO);
    cr_expect_not_null(strstr(err.message, "no space left"), "%s", err.message);
    cr_expect_not_null(strstr(err.message, "/dev/full"), "%s", err.message);
}

Test(npy, write_into_unwritable_dir_fails_cleanly)
{
    float v[2] = {1, 2};
    size_t shape[1] = {2};
    saemon_error err = {0};
    char *missing = NULL;
    cr_assert(asprintf(&missing, "%s/no-such-dir/out.npy", tmp) > 0);
    cr_assert_eq(saemon_npy_write_f32(missing, v, 1, shape, &err), SAEMON_ERR_IO);
    cr_expect_not_null(strstr(err.message, missing), "%s", err.message);
    cr_expect_not_null(strstr(err.message, "No such file"), "%s", err.message);
    free(missing);

    /* Root ignores mode bits, so use a directory no one may create files in. */
    char *ro_dir = NULL, *target = NULL;
    if (geteuid() == 0) {
        ro_dir = strdup("/proc");
    } else {
        cr_assert(asprintf(&ro_dir, "%s/ro", tmp) > 0);
        cr_assert_eq(mkdir(ro_dir, 0555), 0);
    }
    cr_assert(asprintf(&target, "%s/out.npy", ro_dir) > 0);
    cr_assert_eq(saemon_npy_write_f32(target, v, 1, shape, &err), SAEMON_ERR_IO);
    cr_expect_not_null(strstr(err.message, target), "%s", err.message);
    cr_expect_not_null(strstr(err.message, "temporary file"), "%s", err.message);
    cr_expect_neq(access(target, F_OK), 0, "a failed write left a file behind");
    if (geteuid() != 0)
        chmod(ro_dir, 0755);
    free(ro_dir);
    free(target);
}

Test(npy, write_over_existing_file_replaces_it)
{
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/again.npy", tmp) > 0);
    float a[3] = {1, 2, 3}, b[2] = {9, 8};
    size_t sa[1] = {3}, sb[1] = {2};
    cr_assert_eq(saemon_npy_write_f32(path, a, 1, sa, NULL), SAEMON_OK);
    cr_assert_eq(saemon_npy_write_f32(path, b, 1, sb, NULL), SAEMON_OK);
    saemon_npy r;
    cr_assert_eq(saemon_npy_open(path, &r, NULL), SAEMON_OK);
    cr_expect_eq(r.shape[0], 2);
    cr_expect_eq(r.data[1], 8.0f);
    saemon_npy_close(&r);
    free(path);
}

/* ---- dtypes and orders -------------------------------------------------- */

static const struct {
    uint16_t bits;
    float value; /* NaN checked separately */
} halves[] = {
    {0x0000, 0.0f},          {0x8000, -0.0f},
    {0x0001, 0x1p-24f},      {0x8001, -0x1p-24f},     /* smallest subnormal */
    {0x03ff, 0x3ffp-24f},    {0x0200, 0x1p-15f},      /* largest / middle subnormal */
    {0x0400, 0x1p-14f},      {0x3c00, 1.0f},          /* smallest normal, one */
    {0xc000, -2.0f},         {0x3555, 0x1.554p-2f},   /* ~1/3 */
    {0x7bff, 65504.0f},      {0xfbff, -65504.0f},     /* largest finite */
    {0x7c00, INFINITY},      {0xfc00, -INFINITY},
};
#define N_HALVES (sizeof halves / sizeof halves[0])

static void check_halves(const char *descr, int big)
{
    unsigned char data[(N_HALVES + 2) * 2];
    for (size_t i = 0; i < N_HALVES + 2; i++) {
        uint16_t b = i < N_HALVES ? halves[i].bits : (i == N_HALVES ? 0x7e00 : 0xfd01); /* qNaN, sNaN */
        data[2 * i + (big ? 1 : 0)] = (unsigned char)(b & 0xff);
        data[2 * i + (big ? 0 : 1)] = (unsigned char)(b >> 8);
    }
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }", descr, N_HALVES + 2);
    char *path = save(big ? "half-be.npy" : "half-le.npy", raw_npy(1, 0, dict, data, sizeof data));
    saemon_npy a;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(path, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_str_eq(a.source_dtype, descr);
    for (size_t i = 0; i < N_HALVES; i++) {
        uint32_t got, want;
        memcpy(&got, &a.data[i], 4);
        memcpy(&want, &halves[i].value, 4);
        cr_expect_eq(got, want, "%s half 0x%04x -> %a, expected %a", descr, halves[i].bits, (double)a.data[i],
                     (double)halves[i].value);
    }
    uint32_t qnan, snan;
    memcpy(&qnan, &a.data[N_HALVES], 4);
    memcpy(&snan, &a.data[N_HALVES + 1], 4);
    cr_expect(isnan(a.data[N_HALVES]) && !signbit(a.data[N_HALVES]));
    cr_expect_eq(qnan, 0x7fc00000u, "qNaN bits %08x", qnan);
    cr_expect(isnan(a.data[N_HALVES + 1]) && signbit(a.data[N_HALVES + 1]));
    cr_expect_eq(snan, 0xffa02000u, "NaN payload not kept: %08x", snan);
    saemon_npy_close(&a);
    free(path);
}

Test(npy, float16_little_endian_exact) { check_halves("<f2", 0); }
Test(npy, float16_big_endian_exact) { check_halves(">f2", 1); }

Test(npy, float32_big_endian)
{
    const float v[5] = {1.5f, -3.25f, 0x1p-149f, 1e30f, -0.0f};
    unsigned char data[20];
    for (int i = 0; i < 5; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            data[4 * i + b] = (unsigned char)(u >> (24 - 8 * b));
    }
    char *path = save("be.npy", raw_npy(1, 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (5,), }", data, 20));
    saemon_npy a;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(path, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_str_eq(a.source_dtype, ">f4");
    cr_expect_eq(memcmp(a.data, v, sizeof v), 0);
    saemon_npy_close(&a);
    free(path);
}

/* value of element (i, j, k) of a [2][3][4] test array */
static float elem(size_t i, size_t j, size_t k) { return (float)(100 * i + 10 * j + k) + 0.5f; }

Test(npy, fortran_order_matches_c_order)
{
    float c[24], f[24];
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++)
            for (size_t k = 0; k < 4; k++) {
                c[(i * 3 + j) * 4 + k] = elem(i, j, k);
                f[i + 2 * (j + 3 * k)] = elem(i, j, k);
            }
    char *pc = save_f32("c.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", c, 24);
    char *pf = save_f32("f.npy", "{'shape': (2,3,4), 'fortran_order': True, 'descr': '<f4'}", f, 24);
    saemon_npy a, b;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(pc, &a, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_npy_open(pf, &b, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(b.fortran_order, 1);
    cr_expect_eq(b.ndim, 3);
    cr_expect_eq(b.shape[2], 4);
    for (size_t x = 0; x < 24; x++)
        cr_expect_eq(a.data[x], b.data[x], "element %zu: C %g vs Fortran %g", x, (double)a.data[x],
                     (double)b.data[x]);

    /* The rows of both views are identical too (3-D: 2 streams of 3 tokens). */
    size_t rows, streams, per;
    cr_assert_eq(saemon_npy_as_rows(&b, 4, 0, &rows, &streams, &per, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(rows, 6);
    cr_expect_eq(streams, 2);
    cr_expect_eq(per, 3);
    cr_expect_eq(b.data[5 * 4 + 3], elem(1, 2, 3));
    saemon_npy_close(&a);
    saemon_npy_close(&b);
    free(pc);
    free(pf);
}

/* Larger than one transpose tile, with middle dims: [a][b][c][d] in Fortran order. */
static void check_fortran_shape(size_t a, size_t b, size_t c, size_t d)
{
    size_t n = a * b * c * d;
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < a; i++)
        for (size_t j = 0; j < b; j++)
            for (size_t k = 0; k < c; k++)
                for (size_t l = 0; l < d; l++)
                    f[i + a * (j + b * (k + c * l))] = (float)(((i * 131 + j) * 137 + k) * 139 + l);
    char dict[160], name[64];
    snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': True, 'shape': (%zu, %zu, %zu, %zu), }", a, b,
             c, d);
    snprintf(name, sizeof name, "f%zux%zux%zux%zu.npy", a, b, c, d);
    char *path = save_f32(name, dict, f, n);
    saemon_npy r;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(path, &r, &err), SAEMON_OK, "%s", err.message);
    size_t x = 0, bad = 0;
    for (size_t i = 0; i < a; i++)
        for (size_t j = 0; j < b; j++)
            for (size_t k = 0; k < c; k++)
                for (size_t l = 0; l < d; l++, x++)
                    bad += r.data[x] != (float)(((i * 131 + j) * 137 + k) * 139 + l);
    cr_expect_eq(bad, 0, "%s: %zu elements misplaced", name, bad);
    saemon_npy_close(&r);
    free(f);
    free(path);
}

Test(npy, fortran_order_tiled_transpose)
{
    check_fortran_shape(70, 1, 1, 45);
    check_fortran_shape(3, 5, 4, 37);
    check_fortran_shape(33, 2, 3, 65);
    check_fortran_shape(1, 7, 1, 1);
}

Test(npy, fortran_order_float16_big_endian)
{
    /* [2][3] with value 10*i + j, Fortran order, big-endian halves. */
    unsigned char data[12];
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++) {
            uint16_t h = (uint16_t)(0x4000 + (10 * i + j)); /* 2 + small mantissa steps */
            size_t at = i + 2 * j;
            data[2 * at] = (unsigned char)(h >> 8);
            data[2 * at + 1] = (unsigned char)(h & 0xff);
        }
    char *path = save("f16f.npy", raw_npy(1, 0, "{'descr': '>f2', 'fortran_order': True, 'shape': (2, 3)}", data, 12));
    saemon_npy a;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(path, &a, &err), SAEMON_OK, "%s", err.message);
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++)
            cr_expect_eq(a.data[i * 3 + j], 2.0f + (float)(10 * i + j) * 0x1p-9f, "(%zu,%zu) = %a", i, j,
                         (double)a.data[i * 3 + j]);
    saemon_npy_close(&a);
    free(path);
}

Test(npy, versions_2_and_3)
{
    const float v[3] = {1, 2, 3};
    char *p2 = save("v2.npy", raw_npy(2, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v, 12));
    char *p3 = save("v3.npy", raw_npy(3, 0, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}", v, 12));
    saemon_npy a;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(p2, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(a.data[2], 3.0f);
    saemon_npy_close(&a);
    cr_assert_eq(saemon_npy_open(p3, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(a.data[0], 1.0f);
    saemon_npy_close(&a);
    free(p2);
    free(p3);
}

/* ---- row views ------------------------------------------------------------ */

static saemon_npy fake(size_t ndim, const size_t *shape)
{
    saemon_npy a = {.ndim = ndim};
    memcpy(a.shape, shape, ndim * sizeof *shape);
    return a;
}

Test(npy, rows_of_1d_2d_3d)
{
    size_t rows, streams, per;
    saemon_npy one = fake(1, (size_t[]){8});
    cr_assert_eq(saemon_npy_as_rows(&one, 8, 0, &rows, &streams, &per, NULL), SAEMON_OK);
    cr_expect(rows == 1 && streams == 1 && per == 1, "1-D: %zu %zu %zu", rows, streams, per);
    saemon_npy two = fake(2, (size_t[]){11, 8});
    cr_assert_eq(saemon_npy_as_rows(&two, 8, 0, &rows, &streams, &per, NULL), SAEMON_OK);
    cr_expect(rows == 11 && streams == 1 && per == 11, "2-D: %zu %zu %zu", rows, streams, per);
    saemon_npy three = fake(3, (size_t[]){4, 6, 8});
    cr_assert_eq(saemon_npy_as_rows(&three, 8, 0, &rows, &streams, &per, NULL), SAEMON_OK);
    cr_expect(rows == 24 && streams == 4 && per == 6, "3-D: %zu %zu %zu", rows, streams, per);
    saemon_npy four = fake(4, (size_t[]){2, 3, 5, 8});
    cr_assert_eq(saemon_npy_as_rows(&four, 8, 0, &rows, &streams, &per, NULL), SAEMON_OK);
    cr_expect(rows == 30 && streams == 6 && per == 5, "4-D: %zu %zu %zu", rows, streams, per);
}

Test(npy, rows_hook_z)
{
    size_t rows, streams, per;
    saemon_error err = {0};
    saemon_npy z = fake(3, (size_t[]){5, 2, 4});
    cr_assert_eq(saemon_npy_as_rows(&z, 8, 1, &rows, &streams, &per, &err), SAEMON_OK, "%s", err.message);
    cr_expect(rows == 5 && streams == 1 && per == 5, "[5,2,4]: %zu %zu %zu", rows, streams, per);
    saemon_npy zb = fake(4, (size_t[]){3, 5, 2, 4});
    cr_assert_eq(saemon_npy_as_rows(&zb, 8, 1, &rows, &streams, &per, &err), SAEMON_OK, "%s", err.message);
    cr_expect(rows == 15 && streams == 3 && per == 5, "[3,5,2,4]: %zu %zu %zu", rows, streams, per);
    saemon_npy single = fake(2, (size_t[]){2, 4});
    cr_assert_eq(saemon_npy_as_rows(&single, 8, 1, &rows, &streams, &per, &err), SAEMON_OK, "%s", err.message);
    cr_expect(rows == 1 && streams == 1 && per == 1);

    /* Without hook_z the same shape is refused, naming shape and d_in. */
    cr_assert_eq(saemon_npy_as_rows(&z, 8, 0, &rows, &streams, &per, &err), SAEMON_ERR_SHAPE);
    cr_expect_not_null(strstr(err.message, "[5, 2, 4]"), "%s", err.message);
    cr_expect_not_null(strstr(err.message, "d_in 8"), "%s", err.message);
    saemon_npy wrong = fake(2, (size_t[]){10, 7});
    cr_assert_eq(saemon_npy_as_rows(&wrong, 8, 1, &rows, &streams, &per, &err), SAEMON_ERR_SHAPE);
    cr_expect_not_null(strstr(err.message, "[10, 7]"), "%s", err.message);
}

Test(npy, hook_z_rows_are_head_major)
{
    /* [2 tokens][3 heads][2 d_head] stored in Fortran order: row t must be
     * x[t,0,0], x[t,0,1], x[t,1,0], ... */
    float f[12];
    for (size_t t = 0; t < 2; t++)
        for (size_t h = 0; h < 3; h++)
            for (size_t d = 0; d < 2; d++)
                f[t + 2 * (h + 3 * d)] = (float)(100 * t + 10 * h + d);
    char *path = save_f32("z.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 2), }", f, 12);
    saemon_npy a;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(path, &a, &err), SAEMON_OK, "%s", err.message);
    size_t rows, streams, per;
    cr_assert_eq(saemon_npy_as_rows(&a, 6, 1, &rows, &streams, &per, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(rows, 2);
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < 6; i++)
            cr_expect_eq(a.data[t * 6 + i], (float)(100 * t + 10 * (i / 2) + i % 2), "row %zu col %zu", t, i);
    saemon_npy_close(&a);
    free(path);
}

/* ---- malformed files ------------------------------------------------------ */

Test(npy, bad_magic)
{
    raw r = raw_npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "\0\0\0\0", 4);
    r.bytes[1] = 'n';
    char *path = save("magic.npy", r);
    expect_error(path, SAEMON_ERR_FORMAT, "magic");
    free(path);
    char *tiny = test_write_file(tmp, "tiny.npy", "\x93NUM", 4);
    expect_error(tiny, SAEMON_ERR_FORMAT, "not a .npy");
    free(tiny);
}

Test(npy, bad_version)
{
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    char *p = save("v11.npy", raw_npy(1, 1, dict, "\0\0\0\0", 4));
    expect_error(p, SAEMON_ERR_FORMAT, "version 1.1");
    free(p);
    p = save("v0.npy", raw_npy(0, 0, dict, "\0\0\0\0", 4));
    expect_error(p, SAEMON_ERR_FORMAT, "version 0.0");
    free(p);
    p = save("v4.npy", raw_npy(2, 0, dict, "\0\0\0\0", 4));
    /* rewrite the version byte only: a future 4.0 is "unsupported" */
    FILE *f = fopen(p, "r+b");
    fseek(f, 6, SEEK_SET);
    fputc(4, f);
    fclose(f);
    expect_error(p, SAEMON_ERR_UNSUPPORTED, "version 4.0");
    free(p);
}

Test(npy, header_length_beyond_file)
{
    raw r = raw_npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "\0\0\0\0", 4);
    r.bytes[8] = 0xff;
    r.bytes[9] = 0x7f;
    char *p = save("hlen.npy", r);
    expect_error(p, SAEMON_ERR_FORMAT, "beyond the end");
    free(p);
    raw r2 = raw_npy(2, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "\0\0\0\0", 4);
    r2.bytes[11] = 0xff; /* ~4 GiB header length */
    p = save("hlen2.npy", r2);
    expect_error(p, SAEMON_ERR_FORMAT, "beyond the end");
    free(p);
}

Test(npy, bad_dict_syntax)
{
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", "':'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", "',' or '}'"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': (2,), }", "quoted key"},
        {"'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "'{'"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", "'('"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", "one-element"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2,,), }", "dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (02,), }", "leading zeros"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", "padding"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", "header ended"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", "',' or '}' after a value"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unknown key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "syntax%zu.npy", i);
        char *p = bad_dict(name, cases[i].dict);
        expect_error(p, SAEMON_ERR_FORMAT, cases[i].needle);
        free(p);
    }
}

Test(npy, missing_key)
{
    char *p = bad_dict("nodescr.npy", "{'fortran_order': False, 'shape': (2,), }");
    expect_error(p, SAEMON_ERR_FORMAT, "missing key 'descr'");
    free(p);
    p = bad_dict("noshape.npy", "{'descr': '<f4', 'fortran_order': False}");
    expect_error(p, SAEMON_ERR_FORMAT, "missing key 'shape'");
    free(p);
    p = bad_dict("noorder.npy", "{'descr': '<f4', 'shape': (2,)}");
    expect_error(p, SAEMON_ERR_FORMAT, "missing key 'fortran_order'");
    free(p);
}

Test(npy, unsupported_dtypes)
{
    static const char *const dtypes[] = {"<f8", "<i4", "|u1", "|f4", "<c8", "|O", "|b1", "<f4 ", "f4", "=f4"};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        char dict[128], name[32];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", dtypes[i]);
        snprintf(name, sizeof name, "dtype%zu.npy", i);
        char *p = bad_dict(name, dict);
        char needle[32];
        snprintf(needle, sizeof needle, "'%s'", dtypes[i]);
        expect_error(p, SAEMON_ERR_UNSUPPORTED, needle);
        expect_error(p, SAEMON_ERR_UNSUPPORTED, "'<f4', '>f4', '<f2', '>f2'");
        free(p);
    }
    char *p = bad_dict("struct.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }");
    expect_error(p, SAEMON_ERR_UNSUPPORTED, "structured");
    free(p);
}

Test(npy, negative_and_huge_shapes)
{
    char *p = bad_dict("neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }");
    expect_error(p, SAEMON_ERR_FORMAT, "negative");
    free(p);
    p = bad_dict("huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }");
    expect_error(p, SAEMON_ERR_FORMAT, "too large");
    free(p);
    p = bad_dict("overflow.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }");
    expect_error(p, SAEMON_ERR_FORMAT, "more elements");
    free(p);
    /* fits size_t as elements, not as bytes */
    p = bad_dict("bytes.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }");
    expect_error(p, SAEMON_ERR_FORMAT, "bytes");
    free(p);
    /* big but representable: caught by the size check before any allocation */
    p = bad_dict("big.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (100000, 100000), }");
    expect_error(p, SAEMON_ERR_FORMAT, "truncated");
    free(p);
    p = bad_dict("dims9.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,2), }");
    expect_error(p, SAEMON_ERR_UNSUPPORTED, "more than 8 dimensions");
    free(p);
}

Test(npy, truncated_and_trailing_data)
{
    const float v[4] = {1, 2, 3, 4};
    char *p = save_f32("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", v, 3);
    expect_error(p, SAEMON_ERR_FORMAT, "truncated");
    free(p);
    p = save("short1.npy", raw_npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", v, 15));
    expect_error(p, SAEMON_ERR_FORMAT, "truncated");
    free(p);
    p = save_f32("long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v, 4);
    expect_error(p, SAEMON_ERR_FORMAT, "trailing");
    free(p);
    p = save("long1.npy", raw_npy(1, 0, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", v, 7));
    expect_error(p, SAEMON_ERR_FORMAT, "1 trailing");
    free(p);
}

Test(npy, not_a_file)
{
    expect_error(tmp, SAEMON_ERR_IO, "not a regular file");
    char *missing = NULL;
    cr_assert(asprintf(&missing, "%s/absent.npy", tmp) > 0);
    expect_error(missing, SAEMON_ERR_IO, "No such file");
    free(missing);
}

/* ---- real activations, when the shared data is present -------------------- */

Test(npy, reads_shared_activations)
{
    char *path = test_shared_path("data/sae/villes-transformer/acts.npy");
    if (!path)
        cr_skip_test("shared data dir not found (set SAEMON_SHARED_DIR): villes acts.npy skipped");
    saemon_npy a;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(path, &a, &err), SAEMON_OK, "%s", err.message);
    cr_expect_eq(a.ndim, 2);
    cr_expect_eq(a.shape[0], 2001);
    cr_expect_eq(a.shape[1], 128);
    size_t rows, streams, per;
    cr_expect_eq(saemon_npy_as_rows(&a, 128, 0, &rows, &streams, &per, &err), SAEMON_OK);
    cr_expect_eq(rows, 2001);
    for (size_t i = 0; i < rows * 128; i++)
        if (!isfinite(a.data[i]))
            cr_assert_fail("non-finite activation at %zu", i);
    saemon_npy_close(&a);
    free(path);
}
