/* safetensors validation: every rule of docs/formats.md gets a file that
 * breaks it, and the error must say which rule. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/half.h"
#include "runtime/safetensors.h"
#include "tests/support/st_writer.h"
#include "tests/support/support.h"

/* Parse a hand-written header + data; expect failure with code and substring. */
static void expect_bad(const char *header, const void *data, size_t data_len, saemon_status code,
                       const char *needle)
{
    size_t len;
    uint8_t *bytes = st_raw_file(header, data, data_len, &len);
    st_file f;
    saemon_error err = {0};
    saemon_status st = st_parse(bytes, len, "t.safetensors", &f, &err);
    cr_assert_eq(st, code, "header %s: got %d (%s), want %d", header, st, err.message, code);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    cr_assert(strstr(err.message, "t.safetensors"), "message '%s' lacks the file", err.message);
    free(bytes);
}

static const uint8_t zeros[64];

Test(safetensors, valid_file_round_trips)
{
    st_writer *w = stw_new();
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {-1.5f, 0.25f};
    stw_add_meta(w, "format", "pt");
    stw_add_floats(w, "a", "F32", (uint64_t[]){2, 3}, 2, a);
    stw_add_floats(w, "b", "BF16", (uint64_t[]){2}, 1, b);
    stw_add_raw(w, "empty", "I64", (uint64_t[]){0, 5}, 2, NULL, 0);
    stw_add_raw(w, "scalar", "U8", NULL, 0, (uint8_t[]){7}, 1);
    size_t len;
    uint8_t *bytes = stw_build(w, &len);
    st_file f;
    saemon_error err = {0};
    cr_assert_eq(st_parse(bytes, len, "ok", &f, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(f.n_tensors, 4);
    cr_assert_str_eq(st_meta(&f, "format"), "pt");
    const st_tensor *ta = st_find(&f, "a"), *tb = st_find(&f, "b"), *ts = st_find(&f, "scalar");
    cr_assert(ta && tb && ts);
    cr_assert_eq(ta->float_dtype, SAEMON_DTYPE_F32);
    cr_assert_eq(ta->ndim, 2);
    cr_assert_eq(ta->shape[1], 3);
    float got[6];
    saemon_convert_to_f32(ta->data, SAEMON_DTYPE_F32, 6, got);
    cr_assert_eq(memcmp(got, a, sizeof a), 0);
    saemon_convert_to_f32(tb->data, SAEMON_DTYPE_BF16, 2, got);
    cr_assert(got[0] == -1.5f && got[1] == 0.25f);
    cr_assert_eq(ts->ndim, 0);
    cr_assert_eq(ts->data[0], 7);
    cr_assert_eq(st_find(&f, "empty")->nelem, 0);
    cr_assert_eq(st_find(&f, "empty")->float_dtype, -1);
    st_close(&f);
    free(bytes);
    stw_free(w);
}

Test(safetensors, open_maps_a_real_file)
{
    char *dir = test_tmpdir();
    st_writer *w = stw_new();
    float v[3] = {1, 2, 3};
    stw_add_floats(w, "v", "F32", (uint64_t[]){3}, 1, v);
    char *path = stw_write(w, dir, "x.safetensors");
    st_file f;
    saemon_error err = {0};
    cr_assert_eq(st_open(path, &f, &err), SAEMON_OK, "%s", err.message);
    cr_assert_not_null(f.map);
    cr_assert_eq(st_find(&f, "v")->nelem, 3);
    st_close(&f);
    char *missing = test_write_file(dir, "tiny", "abc", 3);
    cr_assert_eq(st_open(missing, &f, &err), SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "too small"), "%s", err.message);
    cr_assert_eq(st_open("/nonexistent/x.safetensors", &f, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "/nonexistent/x.safetensors"), "%s", err.message);
    free(path);
    free(missing);
    stw_free(w);
    test_rmtree(dir);
    free(dir);
}

Test(safetensors, file_shorter_than_8_bytes)
{
    st_file f;
    saemon_error err = {0};
    cr_assert_eq(st_parse((const uint8_t *)"1234567", 7, "t.safetensors", &f, &err),
                 SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "too small for the 8-byte header"), "%s", err.message);
}

Test(safetensors, header_length_limits)
{
    uint8_t buf[16] = {0};
    st_file f;
    saemon_error err = {0};
    uint64_t n = 100000001ULL; /* over the cap, must be refused before allocation */
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(n >> (8 * i));
    cr_assert_eq(st_parse(buf, sizeof buf, "t.safetensors", &f, &err), SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "exceeds the limit"), "%s", err.message);
    memset(buf, 0xFF, 8); /* 2^64-1: 8+N would overflow */
    cr_assert_eq(st_parse(buf, sizeof buf, "t.safetensors", &f, &err), SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "exceeds the limit"), "%s", err.message);
    n = 9; /* fits the cap but not the 16-byte file */
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(n >> (8 * i));
    cr_assert_eq(st_parse(buf, sizeof buf, "t.safetensors", &f, &err), SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "runs past the end of the file"), "%s", err.message);
}

Test(safetensors, header_text_rules)
{
    expect_bad(" {}", NULL, 0, SAEMON_ERR_FORMAT, "does not start with '{'");
    expect_bad("[]", NULL, 0, SAEMON_ERR_FORMAT, "does not start with '{'");
    expect_bad("{\"\xC3\x28\":1}", NULL, 0, SAEMON_ERR_FORMAT, "not valid UTF-8");
    expect_bad("{\"\xE0\x80\xAF\":1}", NULL, 0, SAEMON_ERR_FORMAT, "not valid UTF-8"); /* overlong */
    expect_bad("{\"\xED\xA0\x80\":1}", NULL, 0, SAEMON_ERR_FORMAT, "not valid UTF-8"); /* surrogate */
    expect_bad("{\"a\":", NULL, 0, SAEMON_ERR_FORMAT, "not valid JSON");
    expect_bad("{} x", NULL, 0, SAEMON_ERR_FORMAT, "extra bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
               zeros, 8, SAEMON_ERR_FORMAT, "duplicate key 'a'");
    expect_bad("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", NULL, 0, SAEMON_ERR_FORMAT,
               "duplicate key 'k' in __metadata__");
    expect_bad("{\"__metadata__\":{\"k\":1}}", NULL, 0, SAEMON_ERR_FORMAT,
               "__metadata__ value of 'k' is not a string");
    expect_bad("{\"__metadata__\":[]}", NULL, 0, SAEMON_ERR_FORMAT, "__metadata__ is not an object");
}

Test(safetensors, tensor_entry_rules)
{
    expect_bad("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", zeros, 1,
               SAEMON_ERR_FORMAT, "unknown dtype 'Q4'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", zeros,
               4, SAEMON_ERR_FORMAT, "unexpected key 'x'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", NULL, 0, SAEMON_ERR_FORMAT,
               "missing 'data_offsets'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", zeros, 4,
               SAEMON_ERR_FORMAT, "shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", zeros, 4,
               SAEMON_ERR_FORMAT, "shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", zeros, 4,
               SAEMON_ERR_FORMAT, "data_offsets must be");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", zeros, 4,
               SAEMON_ERR_FORMAT, "END 0 < BEGIN 4");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", zeros, 4,
               SAEMON_ERR_FORMAT, "span 4 bytes but F32 [2] needs 8 bytes");
    expect_bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", zeros, 1,
               SAEMON_ERR_FORMAT, "do not fill whole bytes");
    /* 2^32 * 2^32 elements overflows 64 bits. */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,4]}}",
               zeros, 4, SAEMON_ERR_FORMAT, "overflows 64 bits");
    /* 2^62 elements of 32 bits overflow the bit count. */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],"
               "\"data_offsets\":[0,4]}}",
               zeros, 4, SAEMON_ERR_FORMAT, "overflows 64 bits");
}

Test(safetensors, data_layout_rules)
{
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               zeros, 12, SAEMON_ERR_FORMAT, "overlaps tensor 'a'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               zeros, 12, SAEMON_ERR_FORMAT, "hole of 4 bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", zeros, 8,
               SAEMON_ERR_FORMAT, "hole of 4 bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 6,
               SAEMON_ERR_FORMAT, "2 trailing bytes");
    expect_bad("{}", zeros, 1, SAEMON_ERR_FORMAT, "1 trailing bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", zeros, 10,
               SAEMON_ERR_FORMAT, "truncated file");
    /* Two tensors aliasing the same bytes (the DoS the reference reader closed). */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               zeros, 4, SAEMON_ERR_FORMAT, "overlaps");
}

Test(safetensors, writer_output_truncated_anywhere_is_refused)
{
    st_writer *w = stw_new();
    float v[4] = {1, 2, 3, 4};
    stw_add_floats(w, "v", "F32", (uint64_t[]){4}, 1, v);
    size_t len;
    uint8_t *bytes = stw_build(w, &len);
    for (size_t cut = 0; cut < len; cut++) {
        st_file f;
        saemon_error err = {0};
        cr_assert_eq(st_parse(bytes, cut, "t", &f, &err), SAEMON_ERR_FORMAT, "cut %zu", cut);
    }
    free(bytes);
    stw_free(w);
}

Test(half, f16_exact)
{
    cr_assert_eq(saemon_f16_to_f32(0x3C00), 1.0f);
    cr_assert_eq(saemon_f16_to_f32(0xC000), -2.0f);
    cr_assert_eq(saemon_f16_to_f32(0x7BFF), 65504.0f);
    cr_assert_eq(saemon_f16_to_f32(0x0001), ldexpf(1.0f, -24)); /* smallest subnormal */
    cr_assert_eq(saemon_f16_to_f32(0x03FF), ldexpf(1023.0f, -24));
    cr_assert_eq(saemon_f16_to_f32(0x0400), ldexpf(1.0f, -14));
    cr_assert(signbit(saemon_f16_to_f32(0x8000)) && saemon_f16_to_f32(0x8000) == 0.0f);
    cr_assert(isinf(saemon_f16_to_f32(0x7C00)) && saemon_f16_to_f32(0xFC00) < 0);
    cr_assert(isnan(saemon_f16_to_f32(0x7E00)));
    /* Every finite half round-trips through the test encoder. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00)
            continue;
        cr_assert_eq(test_f32_to_f16(saemon_f16_to_f32((uint16_t)h)), h, "h=%04x", h);
    }
}

Test(half, bf16_and_f64)
{
    cr_assert_eq(saemon_bf16_to_f32(0x3F80), 1.0f);
    cr_assert_eq(saemon_bf16_to_f32(0xC0A0), -5.0f);
    cr_assert(isnan(saemon_bf16_to_f32(0x7FC0)));
    double d[3] = {0.1, -3.0, 1e300};
    float out[3];
    saemon_convert_to_f32(d, SAEMON_DTYPE_F64, 3, out);
    cr_assert_eq(out[0], 0.1f);
    cr_assert_eq(out[1], -3.0f);
    cr_assert(isinf(out[2]));
    uint8_t unaligned[9] = {0, 0x00, 0x3C, 0x00, 0xC0};
    saemon_convert_to_f32(unaligned + 1, SAEMON_DTYPE_F16, 2, out);
    cr_assert(out[0] == 1.0f && out[1] == -2.0f);
}
