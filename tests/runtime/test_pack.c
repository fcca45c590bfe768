/* Pack files (docs/formats.md "Pack files"): bad packs are refused naming
 * the section (truncated, corrupt checksum, wrong version, misaligned or
 * out-of-bounds section); corrupt data is caught by saemon_pack_verify; a
 * pack writable by others or owned by another user is not mapped; a pack
 * replaced by rename leaves the running mapping intact; two processes
 * mapping one pack share its pages (/proc/PID/smaps, not a timing). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sha256.h"
#include "runtime/pack_format.h"
#include "saemon/saemon.h"
#include "tests/support/support.h"

static char *tmp;
static void setup(void) { tmp = test_tmpdir(); }
static void teardown(void)
{
    test_rmtree(tmp);
    free(tmp);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

static bool apply_b_dec = true;

/* A jumprelu dictionary d_in x d_sae from arrays (seeded). */
static saemon_dict *make_dict(size_t din, size_t dsae, uint64_t seed)
{
    rng = seed;
    float *we = malloc(din * dsae * 4), *wd = malloc(din * dsae * 4), *be = malloc(dsae * 4), *bd = malloc(din * 4),
          *th = malloc(dsae * 4);
    for (size_t i = 0; i < din * dsae; i++)
        we[i] = frand(), wd[i] = frand();
    for (size_t j = 0; j < dsae; j++)
        be[j] = 0.1f * frand(), th[j] = 0.05f + 0.05f * frand();
    for (size_t i = 0; i < din; i++)
        bd[i] = 0.05f * frand();
    saemon_dict_arrays a = {.name = "packtest", .arch = SAEMON_ARCH_JUMPRELU, .d_in = din, .d_sae = dsae,
                            .apply_b_dec_to_input = apply_b_dec, .W_enc = we, .W_dec = wd, .b_enc = be, .b_dec = bd, .threshold = th};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    free(we), free(wd), free(be), free(bd), free(th);
    return d;
}

static char *path_of(const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", tmp, name) > 0);
    return p;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    cr_assert_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* Re-seal a modified header: its SHA-256 over the header with the field zeroed. */
static void reseal(uint8_t *b)
{
    pack_header *h = (pack_header *)b;
    memset(h->header_sha256, 0, 64);
    char hex[65];
    const void *parts[1] = {b};
    size_t lens[1] = {h->header_bytes};
    cr_assert_eq(saemon_sha256_hex(parts, lens, 1, hex), 0);
    memcpy(h->header_sha256, hex, 64);
}

/* Write `len` bytes of `b` as pack `name` and expect the open refused with `want` in the message. */
static void expect_refused(const char *name, const uint8_t *b, size_t len, const char *want)
{
    char *p = test_write_file(tmp, name, b, len);
    chmod(p, 0644);
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_neq(saemon_dict_open(p, &d, &err), SAEMON_OK, "%s was accepted", name);
    cr_assert_null(d);
    cr_assert(strstr(err.message, want), "%s: expected '%s' in: %s", name, want, err.message);
    free(p);
}

static pack_section *section(uint8_t *b, uint32_t kind)
{
    pack_header *h = (pack_header *)b;
    pack_section *t = (pack_section *)(b + PACK_FIXED_BYTES);
    for (uint32_t i = 0; i < h->n_sections; i++)
        if (t[i].kind == kind)
            return &t[i];
    cr_assert_fail("no section %u", kind);
    return NULL;
}

TestSuite(pack, .init = setup, .fini = teardown);

Test(pack, bad_packs_are_refused_naming_the_section)
{
    saemon_dict *d = make_dict(16, 64, 1);
    char *p = path_of("good.pack");
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_pack(d, NULL, p, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_close(d);
    size_t len;
    uint8_t *good = slurp(p, &len), *b = malloc(len);
    pack_header *h = (pack_header *)b;

    expect_refused("short", good, 100, "header: truncated");
    expect_refused("half", good, len / 2, "file: ");
    expect_refused("half", good, len / 2, "truncated or extended");

    memcpy(b, good, len);
    b[offsetof(pack_header, d_sae)] ^= 1; /* a header field changed: the checksum no longer matches */
    expect_refused("corrupt", b, len, "header: checksum mismatch");

    memcpy(b, good, len);
    h->version = PACK_VERSION + 1;
    expect_refused("version", b, len, "re-pack");

    memcpy(b, good, len);
    memcpy(b, "SAEMPACX", 8);
    expect_refused("magic", b, len, "not a directory (pass the SAE's folder, a saemon pack");

    memcpy(b, good, len);
    section(b, PACK_W_ENC_ROWS)->offset += 4;
    reseal(b);
    expect_refused("misaligned", b, len, "section W_enc_rows: misaligned");

    memcpy(b, good, len);
    section(b, PACK_B_ENC)->offset = (len + 64) & ~(uint64_t)63;
    reseal(b);
    expect_refused("oob", b, len, "section b_enc: out of bounds");

    memcpy(b, good, len);
    section(b, PACK_THRESHOLD)->length -= 4;
    reseal(b);
    expect_refused("short-section", b, len, "section threshold: 252 bytes, expected 256");

    memcpy(b, good, len);
    section(b, PACK_THRESHOLD)->offset = section(b, PACK_B_ENC)->offset;
    reseal(b);
    expect_refused("overlap", b, len, "section threshold: overlaps section b_enc");

    memcpy(b, good, len);
    section(b, PACK_THRESHOLD)->kind = PACK_B_GATE; /* jumprelu then misses its threshold */
    reseal(b);
    expect_refused("missing", b, len, "section threshold: missing");

    memcpy(b, good, len);
    section(b, PACK_LATENTS)->elem = PACK_ELEM_F32;
    reseal(b);
    expect_refused("elem", b, len, "section latents: element type");

    memcpy(b, good, len);
    h->n_rows = 1ull << 40;
    reseal(b);
    expect_refused("dims", b, len, "header: invalid dimensions");

    /* the data: the open does not read it; verify does */
    memcpy(b, good, len);
    b[section(b, PACK_W_ENC_ROWS)->offset + 5] ^= 0x40;
    char *q = test_write_file(tmp, "data.pack", b, len);
    chmod(q, 0644);
    cr_assert_eq(saemon_pack_verify(p, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_pack_verify(q, &err), SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "data: SHA-256 mismatch"), "%s", err.message);
    free(q);
    free(b);
    free(good);
    free(p);
}

/* Version 2's sections: kernel packed forms and labels checked at open
 * (their contents are data, past the header checksum), refused naming the
 * section; a version 1 pack (none of them) still opens. */
Test(pack, kernel_and_labels_sections)
{
    saemon_dict *d = make_dict(16, 64, 3);
    char *p = path_of("k.pack");
    saemon_error err = {0};
    const char *kernels[] = {"f32-encode-3x16-portable", "f32-encode-1x1-scalar"};
    const char *labels[64] = {0};
    labels[5] = "five", labels[60] = "sixty";
    saemon_pack_options po = {.kernels = kernels, .n_kernels = 2, .labels = labels};
    cr_assert_eq(saemon_dict_pack(d, &po, p, &err), SAEMON_OK, "%s", err.message);
    const char *twice[] = {"f32-encode-1x1-scalar", "f32-encode-1x1-scalar"}, *bogus = "f32-encode-9x9-none";
    saemon_pack_options bad = {.kernels = twice, .n_kernels = 2};
    cr_assert_eq(saemon_dict_pack(d, &bad, p, &err), SAEMON_ERR_ARG);
    cr_assert(strstr(err.message, "named twice"), "%s", err.message);
    bad.kernels = &bogus, bad.n_kernels = 1;
    cr_assert_eq(saemon_dict_pack(d, &bad, p, &err), SAEMON_ERR_ARG);
    cr_assert(strstr(err.message, "no kernel variant named 'f32-encode-9x9-none'"), "%s", err.message);
    uint32_t one = 3;
    saemon_pack_options sub = {.subset = true, .latents = &one, .n_latents = 1, .kernels = kernels, .n_kernels = 1};
    cr_assert_eq(saemon_dict_pack(d, &sub, p, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "whole packs only"), "%s", err.message);
    saemon_dict_close(d);

    saemon_dict *m = NULL;
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_OK, "%s", err.message);
    cr_assert_str_eq(saemon_dict_get_feature_label(m, 5), "five");
    cr_assert_str_eq(saemon_dict_get_feature_label(m, 60), "sixty");
    cr_assert_null(saemon_dict_get_feature_label(m, 6));
    cr_assert_null(saemon_dict_get_feature_label(m, 64));
    cr_assert_eq(saemon_dict_get_label_count(m), 2);
    saemon_dict_close(m);

    size_t len;
    uint8_t *good = slurp(p, &len), *b = malloc(len);
    pack_header *h = (pack_header *)b;
    pack_kernel_desc *kd = NULL;
    memcpy(b, good, len);
    kd = (pack_kernel_desc *)(b + section(b, PACK_KERNEL)->offset);
    kd->d_in = 17;
    expect_refused("kernel-din", b, len, "section kernel f32-encode-3x16-portable: d_in 17");
    memcpy(b, good, len);
    kd->index_base = 60;
    expect_refused("kernel-range", b, len, "do not fit the pack");
    memcpy(b, good, len);
    memset(kd->name, 'x', sizeof kd->name);
    expect_refused("kernel-name", b, len, "not a NUL-terminated string");
    memcpy(b, good, len);
    section(b, PACK_KERNEL)->length = 64;
    reseal(b);
    expect_refused("kernel-short", b, len, "section kernel: 64 bytes, expected at least 192");
    memcpy(b, good, len);
    section(b, PACK_KERNEL)->elem = PACK_ELEM_F32;
    reseal(b);
    expect_refused("kernel-elem", b, len, "section kernel: element type");
    memcpy(b, good, len);
    uint32_t *lab = (uint32_t *)(b + section(b, PACK_LABELS)->offset);
    lab[4] = 70; /* the second label's feature past d_sae */
    expect_refused("labels-index", b, len, "section labels: entry 1 (feature 70)");
    memcpy(b, good, len);
    lab[2] = 1u << 30; /* the first label's text outside the section */
    expect_refused("labels-offset", b, len, "section labels: entry 0");
    memcpy(b, good, len);
    lab[0] = 1u << 20;
    expect_refused("labels-count", b, len, "section labels: 1048576 labels do not fit");
    memcpy(b, good, len);
    section(b, PACK_B_DEC_DOT)->offset = section(b, PACK_KERNEL)->offset;
    reseal(b);
    expect_refused("overlap-kernel", b, len, "section kernel: overlaps section b_dec_dot");
    /* a version 1 reader's kinds only: the new sections are unknown there */
    memcpy(b, good, len);
    h->version = 1;
    reseal(b);
    expect_refused("v1-with-kernel", b, len, "unknown kind");
    /* a corrupt packed form is data: caught by verify */
    memcpy(b, good, len);
    b[section(b, PACK_KERNEL)->offset + PACK_KERNEL_DESC_BYTES + 100] ^= 0x40;
    char *q = test_write_file(tmp, "kdata.pack", b, len);
    chmod(q, 0644);
    cr_assert_eq(saemon_pack_verify(q, &err), SAEMON_ERR_FORMAT);
    free(q);
    free(b);
    free(good);
    free(p);

    /* a version 1 pack: no b_dec_dot (no apply_b_dec_to_input), kernel or labels section */
    apply_b_dec = false;
    d = make_dict(16, 64, 4);
    apply_b_dec = true;
    p = path_of("v1.pack");
    cr_assert_eq(saemon_dict_pack(d, NULL, p, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_close(d);
    good = slurp(p, &len);
    ((pack_header *)good)->version = 1;
    reseal(good);
    free(p);
    p = test_write_file(tmp, "v1b.pack", good, len);
    chmod(p, 0644);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_OK, "%s", err.message);
    saemon_encoder *e = NULL;
    cr_assert_eq(saemon_encoder_create(m, NULL, &e, &err), SAEMON_OK, "%s", err.message);
    cr_assert(strstr(saemon_encoder_get_plan(e), "packed at load: the pack stores no kernel's packed form"), "%s",
              saemon_encoder_get_plan(e));
    saemon_encoder_destroy(e);
    saemon_dict_close(m);
    free(good);
    free(p);
}

Test(pack, a_pack_others_can_rewrite_is_not_mapped)
{
    saemon_dict *d = make_dict(16, 64, 2), *m = NULL;
    char *p = path_of("perm.pack");
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_pack(d, NULL, p, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(chmod(p, 0664), 0);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "writable by group or others"), "%s", err.message);
    cr_assert_eq(chmod(p, 0646), 0);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert_eq(chmod(p, 0644), 0);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_close(m);
    m = NULL;
    if (geteuid() == 0) { /* CI runs as root: a file owned by someone else */
        cr_assert_eq(chown(p, 65534, 65534), 0);
        cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_ERR_UNSUPPORTED);
        cr_assert(strstr(err.message, "owned by uid 65534"), "%s", err.message);
    }
    saemon_dict_close(d);
    free(p);
}

static void encode(saemon_dict *d, const float *x, size_t rows, float *out_sum)
{
    saemon_encoder *e = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.max_batch = rows};
    cr_assert_eq(saemon_encoder_create(d, &o, &e, &err), SAEMON_OK, "%s", err.message);
    const saemon_features *f;
    cr_assert_eq(saemon_encoder_encode(e, x, rows, &f, &err), SAEMON_OK, "%s", err.message);
    float s = 0;
    for (size_t i = 0; i < f->offsets[rows]; i++)
        s += f->value[i] * (float)(f->index[i] + 1);
    *out_sum = s;
    saemon_encoder_destroy(e);
}

/* saemon pack writes beside the file and renames: the mapping keeps the old pages. */
Test(pack, replaced_by_rename_the_running_mapping_is_intact)
{
    saemon_dict *a = make_dict(32, 128, 3), *b = make_dict(32, 128, 4), *m = NULL, *m2 = NULL;
    char *p = path_of("live.pack");
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_pack(a, NULL, p, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_OK, "%s", err.message);
    float x[4 * 32], s0, s1, s2, sa, sb;
    for (size_t i = 0; i < 4 * 32; i++)
        x[i] = frand();
    encode(m, x, 4, &s0);
    encode(a, x, 4, &sa);
    encode(b, x, 4, &sb);
    cr_assert_neq(sa, sb);
    cr_assert(s0 == sa);
    cr_assert_eq(saemon_dict_pack(b, NULL, p, &err), SAEMON_OK, "%s", err.message);
    encode(m, x, 4, &s1);
    cr_assert(s1 == sa, "the old mapping still reads the old pack");
    cr_assert_eq(saemon_dict_open(p, &m2, &err), SAEMON_OK, "%s", err.message);
    encode(m2, x, 4, &s2);
    cr_assert(s2 == sb, "a new open reads the new pack");
    saemon_dict_close(m);
    saemon_dict_close(m2);
    saemon_dict_close(a);
    saemon_dict_close(b);
    free(p);
}

/* Rss, Pss and Shared_Clean (KiB) of this process's mapping of `path`. */
static void mapping_kib(const char *path, long *rss, long *pss, long *shared)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert(f);
    char line[512];
    bool in = false;
    *rss = *pss = *shared = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) { /* a mapping's first line */
            in = strstr(line, path) != NULL;
            continue;
        }
        long v;
        if (in && sscanf(line, "Rss: %ld", &v) == 1)
            *rss = v;
        else if (in && sscanf(line, "Pss: %ld", &v) == 1)
            *pss = v;
        else if (in && sscanf(line, "Shared_Clean: %ld", &v) == 1)
            *shared = v;
    }
    fclose(f);
}

Test(pack, two_processes_share_the_pages_of_one_pack, .timeout = 60)
{
    if (access("/proc/self/smaps", R_OK) != 0)
        cr_skip_test("no /proc/self/smaps here");
    enum { DIN = 256, DSAE = 4096 }; /* 4 MiB of rows */
    saemon_dict *d = make_dict(DIN, DSAE, 5), *m = NULL;
    char *p = path_of("shared.pack");
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_pack(d, NULL, p, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_close(d);
    int go[2], ready[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* the second process: map, touch every row, wait */
        close(go[1]);
        close(ready[0]);
        saemon_dict *c = NULL;
        float s;
        static float x[DIN];
        if (saemon_dict_open(p, &c, &err) != SAEMON_OK)
            _exit(3);
        encode(c, x, 1, &s);
        char k = 1;
        if (write(ready[1], &k, 1) != 1 || read(go[0], &k, 1) != 1)
            _exit(4);
        saemon_dict_close(c);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_OK, "%s", err.message);
    float s;
    static float x[DIN];
    encode(m, x, 1, &s); /* the encoder packs from every mapped row */
    char k;
    cr_assert_eq(read(ready[0], &k, 1), 1);
    long rss, pss, shared;
    mapping_kib(p, &rss, &pss, &shared);
    const long rows_kib = (long)DIN * DSAE * 4 / 1024;
    cr_assert_geq(rss, rows_kib, "the rows are resident through the mapping (%ld KiB)", rss);
    cr_assert_geq(shared, rows_kib, "shared with the other process (%ld KiB)", shared);
    cr_assert_leq(pss, rss / 2 + 64, "proportional share halved: Pss %ld, Rss %ld KiB", pss, rss);
    saemon_dict_load_stats st;
    saemon_dict_get_load_stats(m, &st);
    cr_assert_eq(st.mapped_bytes, (uint64_t)DIN * DSAE * 4);
    cr_assert_eq(write(go[1], &k, 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    saemon_dict_close(m);
    free(p);
}

/* A subset plan on a whole pack touches only its rows: opening is O(header)
 * and the encoder folds b_dec into the biases (apply_b_dec_to_input) and
 * packs for the watched latents only (smaps Rss of the
 * mapping, not a timing). */
Test(pack, a_subset_plan_maps_in_only_its_rows, .timeout = 60)
{
    if (access("/proc/self/smaps", R_OK) != 0)
        cr_skip_test("no /proc/self/smaps here");
    enum { DIN = 256, DSAE = 8192 }; /* 8 MiB of rows */
    saemon_dict *d = make_dict(DIN, DSAE, 6), *m = NULL;
    char *p = path_of("subset-plan.pack");
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_pack(d, NULL, p, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_close(d);
    cr_assert_eq(saemon_dict_open(p, &m, &err), SAEMON_OK, "%s", err.message);
    long rss, pss, shared;
    mapping_kib(p, &rss, &pss, &shared);
    cr_assert_leq(rss, 256, "open touched %ld KiB of the mapping", rss);
    uint32_t lat[3] = {7, 4000, 8191};
    saemon_encoder *e = NULL;
    saemon_encoder_options o = {.max_batch = 1, .encode = SAEMON_ENCODE_RULES, .latents = lat, .n_latents = 3};
    cr_assert_eq(saemon_encoder_create(m, &o, &e, &err), SAEMON_OK, "%s", err.message);
    mapping_kib(p, &rss, &pss, &shared);
    cr_assert_leq(rss, 512, "a 3-latent plan touched %ld KiB of 8 MiB of rows", rss);
    saemon_encoder_destroy(e);
    saemon_dict_close(m);
    free(p);
}

/* Rules pinned to the source bind to its pack (the recorded identity); a pin
 * to another dictionary is refused as before. */
Test(pack, rules_pinned_to_the_source_bind_to_its_pack)
{
    saemon_dict *d = make_dict(16, 64, 7), *m = NULL;
    char *p = path_of("pin.pack");
    saemon_error err = {0};
    saemon_pack_options so = {.subset = true, .latents = (const uint32_t[]){3, 9}, .n_latents = 2};
    cr_assert_eq(saemon_dict_pack(d, &so, p, &err), SAEMON_OK, "%s", err.message);
    uint32_t lat[2] = {3, 9};
    saemon_dict_load_options lo = {.subset = true, .latents = lat, .n_latents = 2};
    cr_assert_eq(saemon_dict_open_with(p, &lo, &m, &err), SAEMON_OK, "%s", err.message);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "dictionary: {name: packtest, d_sae: 64, sha256: %s}\n"
             "rules:\n  - name: r\n    condition: {feature: 9, above: 0.5}\n",
             saemon_dict_get_info(d)->sha256);
    saemon_ruleset *r = NULL;
    cr_assert_eq(saemon_rules_from_string(yaml, strlen(yaml), "pin.yaml", NULL, &r, &err), SAEMON_OK, "%s",
                 err.message);
    cr_assert_eq(saemon_rules_bind(r, saemon_dict_get_info(m), &err), SAEMON_OK, "%s", err.message);
    saemon_rules_close(r);
    yaml[strstr(yaml, "sha256: ") - yaml + 8] ^= 1; /* another source */
    cr_assert_eq(saemon_rules_from_string(yaml, strlen(yaml), "pin.yaml", NULL, &r, &err), SAEMON_OK, "%s",
                 err.message);
    cr_assert_eq(saemon_rules_bind(r, saemon_dict_get_info(m), &err), SAEMON_ERR_MISMATCH);
    saemon_rules_close(r);
    saemon_dict_close(m);
    saemon_dict_close(d);
    free(p);
}
