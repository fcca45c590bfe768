/* Gemma Scope params.npz (runtime/npz.c, runtime/dict_gemmascope.c): the real
 * fixture in both zip methods against its SAELens source, the path
 * convention, and every refusal on archives built here with libzip. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "runtime/dict_internal.h"
#include "base/sha256.h"
#include "saemon/encoder.h"
#include "saemon/npy.h"
#include "tests/support/support.h"

/* ---- building archives ------------------------------------------------- */

typedef struct {
    char name[32];
    unsigned char *bytes;
    size_t len;
    int deflate;
} entry;

/* A .npy v1.0 image: descr, shape, n elements of `itemsize` from src. */
static entry npy_entry(const char *name, const char *descr, size_t nd, const size_t *shape,
                       const void *src, size_t itemsize)
{
    char dict[256];
    int w = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    size_t n = 1;
    for (size_t i = 0; i < nd; i++) {
        w += snprintf(dict + w, sizeof dict - (size_t)w, "%zu%s", shape[i],
                      nd == 1 ? "," : i + 1 < nd ? ", " : "");
        n *= shape[i];
    }
    w += snprintf(dict + w, sizeof dict - (size_t)w, "), }");
    size_t hlen = 64 * (((size_t)w + 11) / 64 + 1) - 10; /* pad so data starts at 64k */
    entry e = {0};
    snprintf(e.name, sizeof e.name, "%s", name);
    e.len = 10 + hlen + n * itemsize;
    e.bytes = malloc(e.len);
    memcpy(e.bytes, "\x93NUMPY\x01\x00", 8);
    e.bytes[8] = (unsigned char)(hlen & 0xff);
    e.bytes[9] = (unsigned char)(hlen >> 8);
    memset(e.bytes + 10, ' ', hlen);
    memcpy(e.bytes + 10, dict, (size_t)w);
    e.bytes[10 + hlen - 1] = '\n';
    if (src)
        memcpy(e.bytes + 10 + hlen, src, n * itemsize);
    else
        memset(e.bytes + 10 + hlen, 0, n * itemsize);
    return e;
}

static entry f32_entry(const char *name, size_t nd, const size_t *shape, float start)
{
    size_t n = 1;
    for (size_t i = 0; i < nd; i++)
        n *= shape[i];
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = start + 0.25f * (float)(i % 13) - 1.0f;
    entry e = npy_entry(name, "<f4", nd, shape, v, 4);
    free(v);
    return e;
}

#define DI 4
#define DS 3

/* The five arrays of a small valid SAE: d_in 4, d_sae 3. */
static size_t standard_set(entry *e)
{
    size_t wenc[2] = {DI, DS}, wdec[2] = {DS, DI}, ds = DS, di = DI;
    e[0] = f32_entry("W_enc.npy", 2, wenc, 0.5f);
    e[1] = f32_entry("W_dec.npy", 2, wdec, -0.5f);
    e[2] = f32_entry("threshold.npy", 1, &ds, 1.5f);
    e[3] = f32_entry("b_enc.npy", 1, &ds, 0.0f);
    e[4] = f32_entry("b_dec.npy", 1, &di, 0.25f);
    return 5;
}

static void replace(entry *e, size_t n, const char *name, entry with)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) {
            free(e[i].bytes);
            e[i] = with;
            return;
        }
    cr_assert_fail("no entry %s", name);
}

/* Write the entries as a zip with libzip; returns the file path. */
static char *write_npz(const char *dir, const char *file, entry *e, size_t n)
{
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/%s", dir, file) > 0);
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    cr_assert_not_null(z, "zip_open %d", zerr);
    for (size_t i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(z, e[i].bytes, e[i].len, 0);
        zip_int64_t idx = zip_file_add(z, e[i].name, src, 0);
        cr_assert(idx >= 0);
        cr_assert_eq(zip_set_file_compression(z, (zip_uint64_t)idx,
                                              e[i].deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0),
                     0);
    }
    cr_assert_eq(zip_close(z), 0, "zip_close");
    for (size_t i = 0; i < n; i++)
        free(e[i].bytes);
    return path;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len ? *len : 1);
    cr_assert_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* Open and expect failure with `code` and a message containing `needle`. */
static void expect_refusal(const char *path, saemon_status code, const char *needle)
{
    saemon_dict *d = (saemon_dict *)0x1;
    saemon_error err = {0};
    saemon_status st = saemon_dict_open(path, &d, &err);
    cr_assert_eq(st, code, "status %d, expected %d: %s", st, code, err.message);
    cr_assert_null(d);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
}

/* ---- the real fixture -------------------------------------------------- */

static saemon_dict *open_ok(const char *path)
{
    saemon_dict *d = NULL;
    saemon_error err = {0};
    saemon_status st = saemon_dict_open(path, &d, &err);
    cr_assert_eq(st, SAEMON_OK, "%s: %s", path, err.message);
    return d;
}

/* Encode every row of acts with the scalar kernel; returns dense [n][d_sae]. */
static float *encode_all(const saemon_dict *d, const saemon_npy *acts)
{
    size_t n = acts->shape[0], din = d->info.d_in, dsae = d->info.d_sae;
    saemon_encoder_options o = {.variant = "scalar", .max_batch = 256};
    saemon_encoder *enc = NULL;
    saemon_error err;
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    float *dense = calloc(n * dsae, sizeof *dense);
    for (size_t r = 0; r < n; r += 256) {
        size_t b = n - r < 256 ? n - r : 256;
        const saemon_features *f;
        cr_assert_eq(saemon_encoder_encode(enc, acts->data + r * din, b, &f, &err), SAEMON_OK);
        for (size_t t = 0; t < b; t++)
            for (size_t k = f->offsets[t]; k < f->offsets[t + 1]; k++)
                dense[(r + t) * dsae + f->index[k]] = f->value[k];
    }
    saemon_encoder_destroy(enc);
    return dense;
}

static void check_fixture(const char *rel)
{
    char *npz = test_shared_path(rel);
    char *src = test_shared_path("data/sae/listcomp-toy/saelens");
    char *acts_path = test_shared_path("data/sae/listcomp-toy/acts.npy");
    if (!npz || !src || !acts_path)
        cr_skip_test("SAEMON_SHARED_DIR absent: no Gemma Scope fixture");
    saemon_dict *g = open_ok(npz), *s = open_ok(src);
    const saemon_dict_info *gi = saemon_dict_get_info(g);
    cr_assert_str_eq(gi->format, "gemmascope");
    cr_assert_eq(gi->arch, SAEMON_ARCH_JUMPRELU);
    cr_assert_eq(gi->d_in, 64);
    cr_assert_eq(gi->d_sae, 100);
    cr_assert(!gi->apply_b_dec_to_input);
    cr_assert_eq(gi->norm, SAEMON_NORM_NONE);
    cr_assert_eq(gi->weight_dtype, SAEMON_DTYPE_F32);
    struct stat sb;
    cr_assert_eq(stat(npz, &sb), 0);
    char *file = NULL;
    cr_assert(asprintf(&file, "%s%s", npz, S_ISDIR(sb.st_mode) ? "/params.npz" : "") > 0);
    size_t len;
    unsigned char *bytes = slurp(file, &len);
    free(file);
    char hex[65];
    const void *parts[1] = {bytes};
    cr_assert_eq(saemon_sha256_hex(parts, &len, 1, hex), 0);
    cr_assert_str_eq(gi->sha256, hex);
    cr_assert_eq(gi->weights_bytes, len);
    free(bytes);

    /* Same SAE: every array but b_enc is copied unchanged by the conversion. */
    size_t nw = 64 * 100;
    cr_assert_eq(memcmp(g->W_enc_rows, s->W_enc_rows, nw * 4), 0, "W_enc differs");
    cr_assert_eq(memcmp(g->W_dec, s->W_dec, nw * 4), 0, "W_dec differs");
    cr_assert_eq(memcmp(g->threshold, s->threshold, 100 * 4), 0, "threshold differs");
    cr_assert_eq(memcmp(g->b_dec, s->b_dec, 64 * 4), 0, "b_dec differs");
    /* b_enc had b_dec folded in (b_enc - b_dec @ W_enc): compare encodes. */
    saemon_npy acts;
    saemon_error err;
    cr_assert_eq(saemon_npy_open(acts_path, &acts, &err), SAEMON_OK, "%s", err.message);
    float *eg = encode_all(g, &acts), *es = encode_all(s, &acts);
    size_t n = acts.shape[0] * 100, active = 0;
    double maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(eg[i] > 0, es[i] > 0, "active set differs at token %zu feature %zu",
                     i / 100, i % 100);
        active += eg[i] > 0;
        double dd = fabs((double)eg[i] - es[i]);
        maxdiff = dd > maxdiff ? dd : maxdiff;
    }
    cr_assert(maxdiff < 2e-5, "max abs encode difference %g", maxdiff);
    cr_assert(active > acts.shape[0] * 2, "only %zu active features", active); /* mean L0 ~3 */
    free(eg);
    free(es);
    saemon_npy_close(&acts);
    saemon_dict_close(g);
    saemon_dict_close(s);
    free(npz);
    free(src);
    free(acts_path);
}

Test(npz_fixture, stored_params_npz_folder_matches_saelens_source)
{
    check_fixture("data/formats/gemmascope-listcomp");
}

Test(npz_fixture, stored_params_npz_file_matches_saelens_source)
{
    check_fixture("data/formats/gemmascope-listcomp/params.npz");
}

Test(npz_fixture, deflated_npz_file_matches_saelens_source)
{
    check_fixture("data/formats/gemmascope-listcomp/params_compressed.npz");
}

/* ---- the path convention ----------------------------------------------- */

static char *valid_npz(const char *dir, const char *rel)
{
    char *sub = NULL;
    cr_assert(asprintf(&sub, "mkdir -p '%s/%s'", dir, rel) > 0);
    cr_assert_eq(system(sub), 0);
    free(sub);
    cr_assert(asprintf(&sub, "%s/%s", dir, rel) > 0);
    entry e[5];
    size_t n = standard_set(e);
    free(write_npz(sub, "params.npz", e, n));
    return sub;
}

Test(npz_path, gemma_scope_layout_names_hook_model_and_width)
{
    char *tmp = test_tmpdir();
    char *dir = valid_npz(tmp, "gemma-scope-2b-pt-mlp/layer_7/width_3/average_l0_2");
    saemon_dict *d = open_ok(dir);
    const saemon_dict_info *i = saemon_dict_get_info(d);
    cr_assert_str_eq(i->name, "layer_7/width_3/average_l0_2");
    cr_assert_str_eq(i->hook_name, "blocks.7.hook_mlp_out");
    cr_assert_str_eq(i->model_name, "gemma-2-2b");
    cr_assert_str_eq(i->path, dir);
    saemon_dict_close(d);
    free(dir);
    dir = valid_npz(tmp, "gemma-scope-9b-it-att/layer_3/width_3/average_l0_2");
    d = open_ok(dir);
    i = saemon_dict_get_info(d);
    cr_assert_str_eq(i->hook_name, "blocks.3.attn.hook_z");
    cr_assert_str_eq(i->model_name, "gemma-2-9b-it");
    cr_assert(i->reshape_hook_z);
    saemon_dict_close(d);
    free(dir);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_path, folder_width_must_match_d_sae)
{
    char *tmp = test_tmpdir();
    char *dir = valid_npz(tmp, "layer_0/width_16k/average_l0_5");
    expect_refusal(dir, SAEMON_ERR_SHAPE, "width 16384 but W_enc has d_sae 3");
    free(dir);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_path, embedding_sae_gets_the_sqrt_d_in_rescale)
{
    char *tmp = test_tmpdir();
    char *plain = valid_npz(tmp, "plain");
    char *emb = valid_npz(tmp, "gemma-scope-2b-pt-res/embedding/width_3/average_l0_1");
    saemon_dict *p = open_ok(plain), *e = open_ok(emb);
    cr_assert_str_eq(saemon_dict_get_info(e)->hook_name, "hook_embed");
    /* d_in 4: sqrt is exactly 2, so the rescale is exact. */
    for (size_t i = 0; i < DI * DS; i++) {
        cr_assert_eq(e->W_enc_rows[i], p->W_enc_rows[i] * 0.5f, "W_enc[%zu]", i);
        cr_assert_eq(e->W_dec[i], p->W_dec[i] * 2.0f, "W_dec[%zu]", i);
    }
    cr_assert_eq(memcmp(e->b_enc, p->b_enc, DS * 4), 0);
    saemon_dict_close(p);
    saemon_dict_close(e);
    free(plain);
    free(emb);
    test_rmtree(tmp);
    free(tmp);
}

/* ---- valid variants ---------------------------------------------------- */

Test(npz_variants, lowercase_w_keys_f16_deflate_and_ones_scaling_load)
{
    char *tmp = test_tmpdir();
    entry e[6];
    size_t n = standard_set(e);
    /* f16 W_enc under SAELens' w_ spelling, deflated; ones scaling_factor. */
    uint16_t h[DI * DS];
    for (size_t i = 0; i < DI * DS; i++)
        h[i] = (uint16_t)(0x3c00 + (i << 6)); /* 1.0 + i/16 */
    size_t wenc[2] = {DI, DS}, ds = DS;
    replace(e, n, "W_enc.npy", npy_entry("w_enc.npy", "<f2", 2, wenc, h, 2));
    float ones[DS] = {1, 1, 1};
    e[n++] = npy_entry("scaling_factor.npy", "<f4", 1, &ds, ones, 4);
    for (size_t i = 0; i < n; i++)
        e[i].deflate = 1;
    char *path = write_npz(tmp, "x.npz", e, n);
    saemon_dict *d = open_ok(path);
    cr_assert_eq(d->info.weight_dtype, SAEMON_DTYPE_F16);
    const char *nm = d->info.name;
    cr_assert(strlen(nm) > 2 && !strcmp(nm + strlen(nm) - 2, "/x"), "name %s", nm);
    /* W_enc_rows is [d_sae][d_in]: row j, col i = W_enc[i][j]. */
    for (size_t i = 0; i < DI; i++)
        for (size_t j = 0; j < DS; j++)
            cr_assert_eq(d->W_enc_rows[j * DI + i], 1.0f + (float)(i * DS + j) / 16.0f);
    saemon_dict_close(d);
    free(path);
    test_rmtree(tmp);
    free(tmp);
}

/* ---- refusals ---------------------------------------------------------- */

Test(npz_refusals, member_missing)
{
    char *tmp = test_tmpdir();
    entry e[5];
    size_t n = standard_set(e);
    free(e[2].bytes); /* threshold */
    e[2] = e[4];
    char *path = write_npz(tmp, "params.npz", e, n - 1);
    expect_refusal(tmp, SAEMON_ERR_FORMAT, "missing array 'threshold' (member threshold.npy)");
    free(path);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_refusals, wrong_shape)
{
    char *tmp = test_tmpdir();
    entry e[5];
    size_t n = standard_set(e), five = DI + 1;
    replace(e, n, "b_dec.npy", f32_entry("b_dec.npy", 1, &five, 0));
    char *path = write_npz(tmp, "params.npz", e, n);
    expect_refusal(path, SAEMON_ERR_SHAPE, "b_dec.npy: shape [5], expected W_enc's [d_model] = [4]");
    free(path);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_refusals, wrong_dtype)
{
    char *tmp = test_tmpdir();
    entry e[5];
    size_t n = standard_set(e), wenc[2] = {DI, DS};
    int32_t iv[DI * DS] = {0};
    replace(e, n, "W_enc.npy", npy_entry("W_enc.npy", "<i4", 2, wenc, iv, 4));
    char *path = write_npz(tmp, "params.npz", e, n);
    expect_refusal(path, SAEMON_ERR_UNSUPPORTED, "W_enc.npy: unsupported dtype '<i4'");
    free(path);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_refusals, unexpected_member_and_not_all_ones_scaling)
{
    char *tmp = test_tmpdir();
    entry e[6];
    size_t n = standard_set(e), ds = DS;
    e[n++] = f32_entry("extra.npy", 1, &ds, 0);
    char *path = write_npz(tmp, "a.npz", e, n);
    expect_refusal(path, SAEMON_ERR_FORMAT, "unexpected member 'extra.npy'");
    free(path);
    n = standard_set(e);
    float sf[DS] = {1, 2, 1};
    e[n++] = npy_entry("scaling_factor.npy", "<f4", 1, &ds, sf, 4);
    path = write_npz(tmp, "b.npz", e, n);
    expect_refusal(path, SAEMON_ERR_UNSUPPORTED, "'scaling_factor' is not all ones ([1] = 2)");
    free(path);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_refusals, truncated_archive)
{
    char *tmp = test_tmpdir();
    entry e[5];
    size_t n = standard_set(e);
    char *path = write_npz(tmp, "full.npz", e, n);
    size_t len;
    unsigned char *b = slurp(path, &len);
    free(path);
    path = test_write_file(tmp, "cut.npz", b, len / 2);
    expect_refusal(path, SAEMON_ERR_FORMAT, "cannot read the zip central directory");
    free(path);
    path = test_write_file(tmp, "empty.npz", b, 0);
    expect_refusal(path, SAEMON_ERR_FORMAT, "empty.npz");
    free(path);
    free(b);
    test_rmtree(tmp);
    free(tmp);
}

/* Offset of the first central directory entry (PK\1\2). */
static size_t find_central(const unsigned char *b, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (!memcmp(b + i, "PK\x01\x02", 4))
            return i;
    cr_assert_fail("no central directory");
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

Test(npz_refusals, bad_central_directory)
{
    char *tmp = test_tmpdir();
    entry e[5];
    size_t n = standard_set(e);
    char *path = write_npz(tmp, "full.npz", e, n);
    size_t len;
    unsigned char *b = slurp(path, &len);
    free(path);
    size_t cd = find_central(b, len);
    b[cd + 2] = 'X'; /* broken signature of the first entry */
    path = test_write_file(tmp, "badsig.npz", b, len);
    expect_refusal(path, SAEMON_ERR_FORMAT, "central directory");
    free(path);
    b[cd + 2] = 1;
    put32(b + cd + 42, 7); /* local header offset pointing into the middle of data */
    path = test_write_file(tmp, "badoff.npz", b, len);
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_neq(saemon_dict_open(path, &d, &err), SAEMON_OK);
    cr_assert_null(d);
    cr_assert(strstr(err.message, "badoff.npz"), "%s", err.message);
    free(path);
    free(b);
    test_rmtree(tmp);
    free(tmp);
}

Test(npz_refusals, huge_declared_size_is_refused_before_inflating)
{
    char *tmp = test_tmpdir();
    entry e[5];
    size_t n = standard_set(e);
    char *path = write_npz(tmp, "full.npz", e, n);
    size_t len;
    unsigned char *b = slurp(path, &len);
    free(path);
    /* Stored entry whose central directory claims 3 GiB uncompressed:
     * libzip finds the local header disagrees. */
    size_t cd = find_central(b, len);
    put32(b + cd + 24, 3u << 30);
    path = test_write_file(tmp, "bomb1.npz", b, len);
    expect_refusal(path, SAEMON_ERR_FORMAT, "Zip archive inconsistent");
    free(path);
    /* Both headers claim it: more than storing can produce. */
    cr_assert_eq(memcmp(b, "PK\x03\x04", 4), 0);
    put32(b + 22, 3u << 30);
    path = test_write_file(tmp, "bomb1b.npz", b, len);
    expect_refusal(path, SAEMON_ERR_FORMAT,
                   "W_enc.npy' declares 3221225472 uncompressed bytes from 176 compressed ones, "
                   "more than storing can produce");
    free(path);
    free(b);

    /* A real deflate bomb: W_enc's header says [4, 3] but 64 MiB of zeros
     * follow; the declared size is checked against the header first. */
    n = standard_set(e);
    size_t big = 64u << 20;
    unsigned char *z = calloc(1, big + e[0].len);
    memcpy(z, e[0].bytes, e[0].len);
    free(e[0].bytes);
    e[0].bytes = z;
    e[0].len += big;
    e[0].deflate = 1;
    path = write_npz(tmp, "bomb2.npz", e, n);
    expect_refusal(path, SAEMON_ERR_FORMAT,
                   "W_enc.npy: the zip entry declares 67109040 uncompressed bytes but its .npy "
                   "header implies 176; refusing before inflating it");
    free(path);

    /* The same zeros under a header that agrees: refused by its ratio. */
    n = standard_set(e);
    size_t huge[2] = {4096, 4096};
    free(e[0].bytes);
    e[0] = npy_entry("W_enc.npy", "<f4", 2, huge, NULL, 4);
    e[0].deflate = 1;
    path = write_npz(tmp, "bomb3.npz", e, n);
    expect_refusal(path, SAEMON_ERR_FORMAT,
                   "W_enc.npy: 67108992 bytes deflated to");
    free(path);
    test_rmtree(tmp);
    free(tmp);
}
