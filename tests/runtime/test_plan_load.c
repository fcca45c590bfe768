/* Plan before load (docs/formats.md "What each plan holds"): a dictionary
 * opened for a subset of latents gives bit-identical features to the whole
 * dictionary for every architecture, layout (row, column) and storage dtype,
 * on every kernel variant this CPU runs; it reads exactly the planned bytes
 * (the loader's byte count); reading more latents later (a reload) matches
 * too, and is refused when the file changed since start. Packs of each
 * (saemon pack: whole and subset) give the same features bit for bit, also
 * when the encoder uses a kernel's packed form stored in the pack in place
 * (every variant runnable here) and when it packs at load instead (a pack
 * without it, with another variant's, another thread split). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

#include "kernels/kernel.h"
#include "saemon/saemon.h"
#include "tests/support/st_writer.h"
#include "tests/support/support.h"

#define D_IN 40
#define D_SAE 1500 /* wider than the loader's run gap (1024): several runs per input row */
#define ROWS 9

static uint64_t rng;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

static char *tmp;
static void setup(void) { tmp = test_tmpdir(); }
static void teardown(void)
{
    test_rmtree(tmp);
    free(tmp);
}

static void text(const char *dir, const char *name, const char *t) { free(test_write_file(dir, name, t, strlen(t))); }

static char *subdir(const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", tmp, name) > 0);
    mkdir(p, 0755);
    return p;
}

/* n random values (scale s, offset o) as tensor `name` of `dtype`. */
static void add(st_writer *w, const char *name, const char *dtype, const uint64_t *shape, size_t nd, float s,
                float o)
{
    size_t n = 1;
    for (size_t i = 0; i < nd; i++)
        n *= shape[i];
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = o + s * frand();
    stw_add_floats(w, name, dtype, shape, nd, a);
    free(a);
}

static const uint64_t IN_SAE[2] = {D_IN, D_SAE}, SAE_IN[2] = {D_SAE, D_IN}, VIN[1] = {D_IN}, VSAE[1] = {D_SAE};

/* A SAELens folder: cfg.json + sae_weights.safetensors (W_enc [d_in, d_sae]). */
static char *saelens(const char *name, const char *arch, const char *dtype, const char *extra)
{
    char *dir = subdir(name), *cfg = NULL;
    cr_assert(asprintf(&cfg, "{\"d_in\": %d, \"d_sae\": %d, \"architecture\": \"%s\", %s \"hook_name\": "
                             "\"blocks.3.hook_resid_post\", \"apply_b_dec_to_input\": true}",
                       D_IN, D_SAE, arch, extra) > 0);
    text(dir, "cfg.json", cfg);
    free(cfg);
    rng = 0x9e3779b97f4a7c15ull;
    st_writer *w = stw_new();
    add(w, "W_enc", dtype, IN_SAE, 2, 0.3f, 0);
    add(w, "W_dec", dtype, SAE_IN, 2, 0.3f, 0);
    add(w, "b_dec", dtype, VIN, 1, 0.05f, 0);
    if (!strcmp(arch, "gated")) {
        add(w, "b_gate", dtype, VSAE, 1, 0.1f, 0);
        add(w, "r_mag", dtype, VSAE, 1, 0.3f, 0);
        add(w, "b_mag", dtype, VSAE, 1, 0.1f, 0);
    } else {
        add(w, "b_enc", dtype, VSAE, 1, 0.1f, 0);
    }
    if (!strcmp(arch, "jumprelu"))
        add(w, "threshold", dtype, VSAE, 1, 0.15f, 0.15f);
    free(stw_write(w, dir, "sae_weights.safetensors"));
    stw_free(w);
    return dir;
}

/* A wide SAELens jumprelu, F16: d_in x d_sae of W_enc. */
static char *saelens_wide(const char *name, size_t d_in, size_t d_sae)
{
    char *dir = subdir(name), *cfg = NULL;
    cr_assert(asprintf(&cfg, "{\"d_in\": %zu, \"d_sae\": %zu, \"architecture\": \"jumprelu\"}", d_in, d_sae) > 0);
    text(dir, "cfg.json", cfg);
    free(cfg);
    const uint64_t in_sae[2] = {d_in, d_sae}, sae_in[2] = {d_sae, d_in}, vin[1] = {d_in}, vsae[1] = {d_sae};
    st_writer *w = stw_new();
    add(w, "W_enc", "F16", in_sae, 2, 0.3f, 0);
    add(w, "W_dec", "F16", sae_in, 2, 0.3f, 0);
    add(w, "b_dec", "F16", vin, 1, 0.05f, 0);
    add(w, "b_enc", "F16", vsae, 1, 0.1f, 0);
    add(w, "threshold", "F16", vsae, 1, 0.15f, 0.15f);
    free(stw_write(w, dir, "sae_weights.safetensors"));
    stw_free(w);
    return dir;
}

/* Llama Scope: encoder.weight [d_sae, d_in] (a row layout), folded norm. */
static char *llamascope(void)
{
    char *dir = subdir("Llama3_1-8B-Base-L7R-8x"), *cfg = NULL;
    cr_assert(asprintf(&cfg, "{\"d_model\": %d, \"d_sae\": %d, \"hook_point_in\": \"blocks.7.hook_resid_post\", "
                             "\"jump_relu_threshold\": 0.1, \"dataset_average_activation_norm\": {\"in\": 5.0}}",
                       D_IN, D_SAE) > 0);
    text(dir, "hyperparams.json", cfg);
    free(cfg);
    char *ck = NULL;
    cr_assert(asprintf(&ck, "%s/checkpoints", dir) > 0);
    mkdir(ck, 0755);
    free(ck);
    rng = 0x1234567ull;
    st_writer *w = stw_new();
    add(w, "encoder.weight", "F32", SAE_IN, 2, 0.3f, 0);
    add(w, "decoder.weight", "F32", IN_SAE, 2, 0.3f, 0);
    add(w, "encoder.bias", "F32", VSAE, 1, 0.1f, 0);
    add(w, "decoder.bias", "F32", VIN, 1, 0.05f, 0);
    free(stw_write(w, dir, "checkpoints/final.safetensors"));
    stw_free(w);
    return dir;
}

/* OpenAI sparse_autoencoder, ReLU: encoder.weight [d_sae, d_in]. */
static char *openai(void)
{
    char *dir = subdir("openai");
    rng = 0xabcdefull;
    st_writer *w = stw_new();
    add(w, "pre_bias", "F32", VIN, 1, 0.05f, 0);
    add(w, "encoder.weight", "BF16", SAE_IN, 2, 0.3f, 0);
    add(w, "latent_bias", "F32", VSAE, 1, 0.1f, 0);
    add(w, "decoder.weight", "F32", IN_SAE, 2, 0.3f, 0);
    stw_add_meta(w, "activation", "ReLU");
    free(stw_write(w, dir, "sae.safetensors"));
    stw_free(w);
    return dir;
}

/* Gemma Scope 2: params.safetensors w_enc [d_in, d_sae] (a column layout). */
static char *gemmascope2(void)
{
    char *dir = subdir("gs2");
    text(dir, "config.json", "{\"architecture\": \"jump_relu\", \"model_name\": \"gemma-v3-1b-pt\"}");
    rng = 0x55aa55aaull;
    st_writer *w = stw_new();
    add(w, "w_enc", "F16", IN_SAE, 2, 0.3f, 0);
    add(w, "w_dec", "F16", SAE_IN, 2, 0.3f, 0);
    add(w, "b_enc", "F32", VSAE, 1, 0.1f, 0);
    add(w, "b_dec", "F32", VIN, 1, 0.05f, 0);
    add(w, "threshold", "F32", VSAE, 1, 0.1f, 0.1f);
    free(stw_write(w, dir, "params.safetensors"));
    stw_free(w);
    return dir;
}

/* The watched latents: 0, the last, a stretch, a spread, duplicates. */
static size_t pick(uint32_t *out)
{
    size_t n = 0;
    out[n++] = D_SAE - 1;
    out[n++] = 0;
    for (uint32_t j = 60; j < 100; j++)
        out[n++] = j;
    for (uint32_t j = 101; j < D_SAE; j += 37)
        out[n++] = j;
    out[n++] = 77;
    return n;
}

static bool in_set(const uint32_t *set, size_t n, uint32_t j)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == j)
            return true;
    return false;
}

static float x[ROWS * D_IN];

/* Every entry of `full` row r with an index in the set, and only those, in `sub`, bit for bit. */
static size_t expect_filtered(const saemon_features *full, const saemon_features *sub, const uint32_t *set,
                              size_t n_set, const char *what)
{
    size_t compared = 0;
    for (size_t r = 0; r < full->n_tokens; r++) {
        size_t e = sub->offsets[r];
        for (size_t f = full->offsets[r]; f < full->offsets[r + 1]; f++) {
            if (set && !in_set(set, n_set, full->index[f]))
                continue;
            cr_assert_lt(e, sub->offsets[r + 1], "%s row %zu: latent %u missing", what, r, full->index[f]);
            cr_assert_eq(sub->index[e], full->index[f], "%s row %zu", what, r);
            cr_assert(memcmp(&sub->value[e], &full->value[f], sizeof(float)) == 0, "%s row %zu latent %u", what,
                      r, full->index[f]);
            e++;
            compared++;
        }
        cr_assert_eq(e, sub->offsets[r + 1], "%s row %zu: extra latents", what, r);
    }
    return compared;
}

typedef struct held {
    size_t offsets[ROWS + 1];
    uint32_t index[ROWS * D_SAE];
    float value[ROWS * D_SAE];  /* ROWS x D_SAE >= 5 x 700: the in-place test fits */
    saemon_features f;
} held;

static void hold(held *h, const saemon_features *f)
{
    memcpy(h->offsets, f->offsets, (f->n_tokens + 1) * sizeof(size_t));
    memcpy(h->index, f->index, f->offsets[f->n_tokens] * sizeof(uint32_t));
    memcpy(h->value, f->value, f->offsets[f->n_tokens] * sizeof(float));
    h->f = (saemon_features){.n_tokens = f->n_tokens, .offsets = h->offsets, .index = h->index, .value = h->value};
}

static void check_pack(const char *dir, saemon_dict *whole, const uint32_t *set, size_t n_set);

/* Whole vs subset load of `dir`, on every variant; then a reload that adds latents. */
static void check_dir(const char *dir)
{
    uint32_t set[D_SAE], more[4] = {5, 1400, 61, 1111};
    const size_t n_set = pick(set);
    saemon_error err = {0};
    saemon_dict *whole = NULL, *part = NULL;
    cr_assert_eq(saemon_dict_open(dir, &whole, &err), SAEMON_OK, "%s: %s", dir, err.message);
    saemon_dict_load_options lo = {.subset = true, .latents = set, .n_latents = n_set, .no_decoder = true,
                                   .defer_sha256 = true};
    cr_assert_eq(saemon_dict_open_with(dir, &lo, &part, &err), SAEMON_OK, "%s: %s", dir, err.message);
    const saemon_dict_info *info = saemon_dict_get_info(part);
    const bool topk = info->arch == SAEMON_ARCH_TOPK;
    saemon_dict_load_stats ws, ps;
    saemon_dict_get_load_stats(whole, &ws);
    saemon_dict_get_load_stats(part, &ps);
    cr_assert_eq(ws.latents_loaded, D_SAE);
    cr_assert(ws.decoder_loaded);
    cr_assert_eq(ps.latents_loaded, topk ? D_SAE : n_set - 1, "%s: %zu latents held", dir, ps.latents_loaded);
    cr_assert(topk ? ps.bytes_read == ws.bytes_read : ps.bytes_read < ws.bytes_read, "%s: %llu vs %llu bytes", dir, (unsigned long long)ps.bytes_read,
              (unsigned long long)ws.bytes_read);
    cr_assert(topk ? ps.resident_bytes == ws.resident_bytes : ps.resident_bytes < ws.resident_bytes);
    cr_assert_str_empty(info->sha256, "sha256 deferred");
    cr_assert_eq(saemon_dict_compute_sha256(part, &err), SAEMON_OK, "%s", err.message);
    cr_assert_str_eq(info->sha256, saemon_dict_get_info(whole)->sha256);
    cr_assert_eq(saemon_dict_has_latent(part, 60), true);
    cr_assert_eq(saemon_dict_has_latent(part, 61), true);
    cr_assert_eq(saemon_dict_has_latent(part, 5), topk);

    rng = 0x77ull;
    for (size_t i = 0; i < ROWS * D_IN; i++)
        x[i] = frand();
    size_t nk = 0, variants = 0, compared = 0;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    static held ref;
    for (size_t v = 0; v < nk; v++) {
        if (saemon_kernel_missing_features(ks[v]))
            continue;
        variants++;
        saemon_encoder *ef = NULL, *es = NULL;
        saemon_encoder_options of = {.variant = ks[v]->name, .max_batch = ROWS};
        saemon_encoder_options os = of;
        os.encode = SAEMON_ENCODE_AUTO, os.latents = set, os.n_latents = n_set;
        cr_assert_eq(saemon_encoder_create(whole, &of, &ef, &err), SAEMON_OK, "%s", err.message);
        cr_assert_eq(saemon_encoder_create(part, &os, &es, &err), SAEMON_OK, "%s %s: %s", dir, ks[v]->name,
                     err.message);
        const saemon_features *ff, *fs;
        cr_assert_eq(saemon_encoder_encode(ef, x, ROWS, &ff, &err), SAEMON_OK, "%s", err.message);
        hold(&ref, ff);
        cr_assert_eq(saemon_encoder_encode(es, x, ROWS, &fs, &err), SAEMON_OK, "%s", err.message);
        compared += expect_filtered(&ref.f, fs, topk ? NULL : set, n_set, ks[v]->name);
        if (!topk) {
            /* a latent outside the loaded set is refused, naming it */
            uint32_t bad[2] = {60, 6};
            cr_assert_eq(saemon_encoder_set_latents(es, bad, 2, &err), SAEMON_ERR_ARG);
            cr_assert(strstr(err.message, "latent 6 is not loaded"), "%s", err.message);
            /* a reload that adds latents reads them from the file */
            cr_assert_eq(saemon_dict_add_latents(part, more, 4, &err), SAEMON_OK, "%s", err.message);
            uint32_t both[D_SAE + 4];
            memcpy(both, set, n_set * sizeof *both);
            memcpy(both + n_set, more, sizeof more);
            cr_assert_eq(saemon_encoder_set_latents(es, both, n_set + 4, &err), SAEMON_OK, "%s", err.message);
            cr_assert_eq(saemon_encoder_encode(es, x, ROWS, &fs, &err), SAEMON_OK, "%s", err.message);
            compared += expect_filtered(&ref.f, fs, both, n_set + 4, ks[v]->name);
            /* every latent needs the whole dictionary */
            cr_assert_eq(saemon_encoder_set_latents(es, NULL, 0, &err), SAEMON_ERR_UNSUPPORTED);
        }
        saemon_encoder_destroy(ef);
        saemon_encoder_destroy(es);
    }
    cr_assert_gt(variants, 0);
    cr_assert_gt(compared, 0, "%s: nothing compared", dir);
    /* reconstruction needs W_dec, which this plan did not read */
    saemon_encoder *er = NULL;
    saemon_encoder_options orc = {.reconstruction = true};
    cr_assert_eq(saemon_encoder_create(part, &orc, &er, &err), topk ? SAEMON_OK : SAEMON_ERR_UNSUPPORTED);
    saemon_encoder_destroy(er);
    check_pack(dir, whole, set, n_set);
    saemon_dict_close(whole);
    saemon_dict_close(part);
}

/* Packs of `whole` (every latent with W_dec; the subset `set`) give the
 * whole load's features bit for bit on every variant, from rows used in
 * place in the mapping (docs/formats.md "Pack files"). */
static void check_pack(const char *dir, saemon_dict *whole, const uint32_t *set, size_t n_set)
{
    saemon_error err = {0};
    const saemon_dict_info *wi = saemon_dict_get_info(whole);
    const bool topk = wi->arch == SAEMON_ARCH_TOPK;
    char *pw = NULL, *ps = NULL;
    cr_assert(asprintf(&pw, "%s.whole.pack", dir) > 0 && asprintf(&ps, "%s.subset.pack", dir) > 0);
    /* every variant runnable here stores its packed form (the others are not in this build or not on this CPU) */
    size_t nk = 0, nrun = 0;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    const char *names[16];
    for (size_t v = 0; v < nk; v++)
        if (!saemon_kernel_missing_features(ks[v]) && nrun < 16)
            names[nrun++] = ks[v]->name;
    saemon_pack_options po = {.decoder = !topk, /* TopK rescales by the decoder norms: W_dec goes in anyway */
                              .kernels = names, .n_kernels = nrun};
    cr_assert_eq(saemon_dict_pack(whole, &po, pw, &err), SAEMON_OK, "%s: %s", dir, err.message);
    /* and packs that store none, or only the portable variant's: the others pack at load */
    char *pn = NULL, *pp = NULL;
    cr_assert(asprintf(&pn, "%s.nokernel.pack", dir) > 0 && asprintf(&pp, "%s.portable.pack", dir) > 0);
    saemon_pack_options pno = {.decoder = !topk};
    cr_assert_eq(saemon_dict_pack(whole, &pno, pn, &err), SAEMON_OK, "%s: %s", dir, err.message);
    const char *portable = "f32-encode-3x16-portable";
    saemon_pack_options ppo = {.decoder = !topk, .kernels = &portable, .n_kernels = 1};
    cr_assert_eq(saemon_dict_pack(whole, &ppo, pp, &err), SAEMON_OK, "%s: %s", dir, err.message);
    saemon_dict *pkn = NULL, *pkp = NULL;
    saemon_pack_options so = {.subset = true, .latents = set, .n_latents = n_set};
    cr_assert_eq(saemon_dict_pack(whole, &so, ps, &err), topk ? SAEMON_ERR_UNSUPPORTED : SAEMON_OK, "%s: %s", dir,
                 err.message);
    saemon_dict *pk = NULL, *sp = NULL;
    saemon_dict_load_options nd = {.no_decoder = topk}; /* and is kept for the norms */
    cr_assert_eq(saemon_dict_open_with(pw, &nd, &pk, &err), SAEMON_OK, "%s: %s", pw, err.message);
    cr_assert_eq(saemon_dict_open_with(pn, &nd, &pkn, &err), SAEMON_OK, "%s: %s", pn, err.message);
    cr_assert_eq(saemon_dict_open_with(pp, &nd, &pkp, &err), SAEMON_OK, "%s: %s", pp, err.message);
    const saemon_dict_info *pi = saemon_dict_get_info(pk);
    cr_assert_str_eq(pi->format, "pack");
    cr_assert_str_eq(pi->sha256, wi->sha256, "the pack records the source's identity");
    cr_assert_str_eq(pi->name, wi->name);
    cr_assert_str_eq(pi->hook_name, wi->hook_name);
    cr_assert_eq(pi->arch, wi->arch);
    cr_assert_eq(pi->norm, wi->norm);
    cr_assert_eq(pi->k, wi->k);
    cr_assert_eq(pi->apply_b_dec_to_input, wi->apply_b_dec_to_input);
    saemon_dict_load_stats st;
    saemon_dict_get_load_stats(pk, &st);
    cr_assert_eq(st.mapped_bytes, 2ull * D_SAE * D_IN * 4, "rows and W_dec used in place");
    cr_assert_eq(st.resident_bytes, 0);
    cr_assert_eq(saemon_pack_verify(pw, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_load_options lo = {.subset = true, .latents = set, .n_latents = n_set, .no_decoder = true};
    if (!topk) {
        cr_assert_eq(saemon_dict_open_with(ps, &lo, &sp, &err), SAEMON_OK, "%s: %s", ps, err.message);
        saemon_dict_get_load_stats(sp, &st);
        cr_assert_eq(st.latents_loaded, n_set - 1); /* one duplicate in set */
        cr_assert_eq(st.mapped_bytes, (n_set - 1) * D_IN * 4);
        cr_assert_not(saemon_dict_has_latent(sp, 5));
        /* a latent outside the pack: refused at load and at reload, naming it */
        saemon_dict *no = NULL;
        uint32_t out[2] = {60, 5};
        saemon_dict_load_options lo2 = {.subset = true, .latents = out, .n_latents = 2};
        cr_assert_eq(saemon_dict_open_with(ps, &lo2, &no, &err), SAEMON_ERR_MISMATCH);
        cr_assert(strstr(err.message, "latent 5 is not in this pack"), "%s", err.message);
        cr_assert_null(no);
        cr_assert_eq(saemon_dict_add_latents(sp, out, 2, &err), SAEMON_ERR_MISMATCH);
        cr_assert(strstr(err.message, "latent 5 is not in this pack"), "%s", err.message);
        /* every latent from a subset pack: refused */
        cr_assert_eq(saemon_dict_open(ps, &no, &err), SAEMON_ERR_MISMATCH);
        cr_assert(strstr(err.message, "subset pack"), "%s", err.message);
    }
    size_t compared = 0;
    static held ref;
    for (size_t v = 0; v < nk; v++) {
        if (saemon_kernel_missing_features(ks[v]))
            continue;
        saemon_encoder *ef = NULL, *ep = NULL, *es = NULL;
        saemon_encoder_options of = {.variant = ks[v]->name, .max_batch = ROWS, .reconstruction = true};
        cr_assert_eq(saemon_encoder_create(whole, &of, &ef, &err), SAEMON_OK, "%s", err.message);
        cr_assert_eq(saemon_encoder_create(pk, &of, &ep, &err), SAEMON_OK, "%s", err.message);
        /* the stored packed form is used in place: no copy */
        cr_assert(strstr(saemon_encoder_get_plan(ep), "used in place from the pack (mapped, shared)"), "%s: %s",
                  ks[v]->name, saemon_encoder_get_plan(ep));
        const saemon_features *ff, *fp;
        cr_assert_eq(saemon_encoder_encode(ef, x, ROWS, &ff, &err), SAEMON_OK, "%s", err.message);
        hold(&ref, ff);
        cr_assert_eq(saemon_encoder_encode(ep, x, ROWS, &fp, &err), SAEMON_OK, "%s", err.message);
        compared += expect_filtered(&ref.f, fp, NULL, 0, ks[v]->name);
        /* fallbacks: no stored form, another variant's form, or another thread split: packed at load, same features */
        saemon_encoder *eb = NULL;
        cr_assert_eq(saemon_encoder_create(pkn, &of, &eb, &err), SAEMON_OK, "%s", err.message);
        cr_assert(strstr(saemon_encoder_get_plan(eb), "packed at load: the pack stores no kernel's packed form"),
                  "%s", saemon_encoder_get_plan(eb));
        cr_assert_eq(saemon_encoder_encode(eb, x, ROWS, &fp, &err), SAEMON_OK, "%s", err.message);
        compared += expect_filtered(&ref.f, fp, NULL, 0, ks[v]->name);
        saemon_encoder_destroy(eb);
        cr_assert_eq(saemon_encoder_create(pkp, &of, &eb, &err), SAEMON_OK, "%s", err.message);
        const bool is_portable = !strcmp(ks[v]->name, portable);
        cr_assert(strstr(saemon_encoder_get_plan(eb), is_portable ? "used in place" : "stores no packed form for"), "%s",
                  saemon_encoder_get_plan(eb));
        cr_assert_eq(saemon_encoder_encode(eb, x, ROWS, &fp, &err), SAEMON_OK, "%s", err.message);
        compared += expect_filtered(&ref.f, fp, NULL, 0, ks[v]->name);
        saemon_encoder_destroy(eb);
        saemon_encoder_options o2 = of;
        o2.threads = 2, o2.no_pin = true;
        cr_assert_eq(saemon_encoder_create(pk, &o2, &eb, &err), SAEMON_OK, "%s", err.message);
        cr_assert(strstr(saemon_encoder_get_plan(eb), "in 2 slices"), "%s", saemon_encoder_get_plan(eb));
        cr_assert_eq(saemon_encoder_encode(eb, x, ROWS, &fp, &err), SAEMON_OK, "%s", err.message);
        compared += expect_filtered(&ref.f, fp, NULL, 0, ks[v]->name);
        saemon_encoder_destroy(eb);
        if (!topk) {
            saemon_encoder_options os = {.variant = ks[v]->name, .max_batch = ROWS, .encode = SAEMON_ENCODE_AUTO,
                                         .latents = set, .n_latents = n_set};
            cr_assert_eq(saemon_encoder_create(sp, &os, &es, &err), SAEMON_OK, "%s", err.message);
            cr_assert_eq(saemon_encoder_encode(es, x, ROWS, &fp, &err), SAEMON_OK, "%s", err.message);
            compared += expect_filtered(&ref.f, fp, set, n_set, ks[v]->name);
        }
        saemon_encoder_destroy(ef);
        saemon_encoder_destroy(ep);
        saemon_encoder_destroy(es);
    }
    cr_assert_gt(compared, 0, "%s: nothing compared", pw);
    saemon_dict_close(pk);
    saemon_dict_close(pkn);
    saemon_dict_close(pkp);
    saemon_dict_close(sp);
    free(pw);
    free(ps);
    free(pn);
    free(pp);
}

TestSuite(plan_load, .init = setup, .fini = teardown);

Test(plan_load, saelens_every_architecture_and_dtype, .timeout = 120)
{
    const char *const archs[] = {"standard", "jumprelu", "gated"};
    for (size_t a = 0; a < 3; a++) {
        char name[32];
        snprintf(name, sizeof name, "sl-%s", archs[a]);
        char *dir = saelens(name, archs[a], "F32", "");
        check_dir(dir);
        free(dir);
    }
    char *topk = saelens("sl-topk", "topk", "F32", "\"k\": 30, \"rescale_acts_by_decoder_norm\": true,");
    check_dir(topk);
    free(topk);
    const char *const dts[] = {"F16", "BF16", "F64"};
    for (size_t t = 0; t < 3; t++) {
        char name[32];
        snprintf(name, sizeof name, "sl-jumprelu-%s", dts[t]);
        char *dir = saelens(name, "jumprelu", dts[t], "");
        check_dir(dir);
        free(dir);
    }
}

Test(plan_load, row_and_column_layouts_of_other_formats, .timeout = 120)
{
    char *dirs[] = {llamascope(), openai(), gemmascope2()};
    for (size_t i = 0; i < 3; i++) {
        check_dir(dirs[i]);
        free(dirs[i]);
    }
}

/* The counting hook: a subset load reads exactly the watched rows and the vectors. */
Test(plan_load, bytes_read_by_a_subset_load)
{
    saemon_error err = {0};
    saemon_dict *d = NULL;
    saemon_dict_load_options lo = {.subset = true, .n_latents = 3, .no_decoder = true, .defer_sha256 = true};
    saemon_dict_load_stats s;
    /* Column layout, F16, 20000 wide: 3 alone, 19998-19999 adjacent (latents
     * 16 KiB or more apart in an input row are read apart): one read per run
     * per input row, nothing between. */
    enum { WIN = 8, WSAE = 20000 };
    uint32_t wide[3] = {19999, 3, 19998};
    char *sl = saelens_wide("count-sl", WIN, WSAE);
    lo.latents = wide;
    cr_assert_eq(saemon_dict_open_with(sl, &lo, &d, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_get_load_stats(d, &s);
    /* W_enc: 3 columns of d_in F16; b_enc and threshold [d_sae]; b_dec [d_in] */
    cr_assert_eq(s.bytes_read, 3 * WIN * 2 + 2 * WSAE * 2 + WIN * 2, "read %llu", (unsigned long long)s.bytes_read);
    cr_assert_not(s.decoder_loaded);
    cr_assert_eq(s.latents_loaded, 3);
    saemon_dict_close(d);
    /* the whole dictionary reads both matrices */
    cr_assert_eq(saemon_dict_open(sl, &d, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_get_load_stats(d, &s);
    cr_assert_eq(s.bytes_read, 2 * WIN * WSAE * 2 + 2 * WSAE * 2 + WIN * 2);
    saemon_dict_close(d);
    free(sl);

    /* Row layout: exactly the rows */
    uint32_t lat[3] = {1499, 3, 1498};
    lo.latents = lat;
    char *ls = llamascope();
    cr_assert_eq(saemon_dict_open_with(ls, &lo, &d, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_get_load_stats(d, &s);
    cr_assert_eq(s.bytes_read, 3 * D_IN * 4 + D_SAE * 4 + D_IN * 4, "read %llu", (unsigned long long)s.bytes_read);
    /* a reload's latents: one more row */
    uint32_t more = 700;
    cr_assert_eq(saemon_dict_add_latents(d, &more, 1, &err), SAEMON_OK, "%s", err.message);
    saemon_dict_get_load_stats(d, &s);
    cr_assert_eq(s.bytes_read, 4 * D_IN * 4 + D_SAE * 4 + D_IN * 4);
    cr_assert_eq(s.latents_loaded, 4);
    saemon_dict_close(d);
    free(ls);
}

/* A file changed since start: the reload's new latents are refused, the loaded ones stay. */
Test(plan_load, reload_refuses_a_changed_file)
{
    uint32_t lat[2] = {10, 20}, more = 30;
    saemon_error err = {0};
    saemon_dict *d = NULL;
    saemon_dict_load_options lo = {.subset = true, .latents = lat, .n_latents = 2, .no_decoder = true,
                                   .defer_sha256 = true};
    char *dir = saelens("changed", "standard", "F32", "");
    cr_assert_eq(saemon_dict_open_with(dir, &lo, &d, &err), SAEMON_OK, "%s", err.message);
    char *w = NULL;
    cr_assert(asprintf(&w, "%s/sae_weights.safetensors", dir) > 0);
    struct utimbuf t = {.actime = 1000000000, .modtime = 1000000000};
    cr_assert_eq(utime(w, &t), 0);
    cr_assert_eq(saemon_dict_add_latents(d, &more, 1, &err), SAEMON_ERR_MISMATCH);
    cr_assert(strstr(err.message, "changed since saemon loaded it (it was modified"), "%s", err.message);
    cr_assert_not(saemon_dict_has_latent(d, 30));
    cr_assert(saemon_dict_has_latent(d, 10));
    /* replaced by rename: another inode */
    free(saelens("changed2", "standard", "F32", ""));
    char *w2 = NULL;
    cr_assert(asprintf(&w2, "%s/changed2/sae_weights.safetensors", tmp) > 0);
    cr_assert_eq(rename(w2, w), 0);
    cr_assert_eq(saemon_dict_add_latents(d, &more, 1, &err), SAEMON_ERR_MISMATCH);
    cr_assert(strstr(err.message, "another inode"), "%s", err.message);
    saemon_dict_close(d);
    free(w);
    free(w2);
    free(dir);
}

/* --encode all from a loaded dictionary holds the fp32 rows once: the
 * variants whose packed form starts with the rows pack in place behind the
 * dictionary's own rows (allocated with room for the chosen variant's packed
 * form). The features equal a second encoder's, which cannot share the room
 * and packs its own copy, bit for bit, on every variant runnable here. */
Test(plan_load, full_plan_packs_in_place_behind_the_rows)
{
    enum { DI = 64, DS = 700, R = 5 };
    static float we[DI * DS], wd[DI * DS], be[DS], bd[DI], th[DS], xx[R * DI];
    rng = 0x3141592ull;
    for (size_t i = 0; i < DI * DS; i++)
        we[i] = 0.3f * frand(), wd[i] = frand();
    for (size_t j = 0; j < DS; j++)
        be[j] = 0.1f * frand(), th[j] = 0.1f + 0.1f * frand();
    for (size_t i = 0; i < DI; i++)
        bd[i] = 0.05f * frand();
    for (size_t i = 0; i < R * DI; i++)
        xx[i] = frand();
    saemon_dict_arrays a = {.arch = SAEMON_ARCH_JUMPRELU, .d_in = DI, .d_sae = DS, .apply_b_dec_to_input = true,
                            .W_enc = we, .W_dec = wd, .b_enc = be, .b_dec = bd, .threshold = th};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    size_t nk = 0, in_place = 0;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    const saemon_kernel *chosen = saemon_kernel_select(NULL);
    static held ref;
    for (size_t v = 0; v < nk; v++) {
        if (saemon_kernel_missing_features(ks[v]))
            continue;
        saemon_encoder_options o = {.variant = ks[v]->name, .max_batch = R};
        saemon_encoder *e1 = NULL, *e2 = NULL;
        cr_assert_eq(saemon_encoder_create(d, &o, &e1, &err), SAEMON_OK, "%s", err.message);
        cr_assert_eq(saemon_encoder_create(d, &o, &e2, &err), SAEMON_OK, "%s", err.message);
        const bool here = strstr(saemon_encoder_get_plan(e1), "in place behind the dictionary's rows") != NULL;
        in_place += here;
        if (ks[v] == chosen && chosen->packed_rows_align)
            cr_assert(here, "%s: %s", ks[v]->name, saemon_encoder_get_plan(e1));
        cr_assert_null(strstr(saemon_encoder_get_plan(e2), "in place"), "one plan holds the room");
        const saemon_features *f1, *f2;
        cr_assert_eq(saemon_encoder_encode(e2, xx, R, &f2, &err), SAEMON_OK, "%s", err.message);
        hold(&ref, f2);
        cr_assert_eq(saemon_encoder_encode(e1, xx, R, &f1, &err), SAEMON_OK, "%s", err.message);
        cr_assert_gt(expect_filtered(&ref.f, f1, NULL, 0, ks[v]->name), 0);
        saemon_encoder_destroy(e1);
        saemon_encoder_destroy(e2);
    }
    if (chosen->packed_rows_align)
        cr_assert_gt(in_place, 0);
    saemon_dict_close(d);
    /* what packed_rows_align promises: the packed form starts with the rows, and packing over them in place
     * gives the same bytes as packing from a copy */
    static float rows[DI * DS];
    for (size_t i = 0; i < DI; i++)
        for (size_t j = 0; j < DS; j++)
            rows[j * DI + i] = we[i * DS + j];
    for (size_t v = 0; v < nk; v++) {
        if (saemon_kernel_missing_features(ks[v]) || !ks[v]->packed_rows_align)
            continue;
        cr_assert_eq(DI % ks[v]->packed_rows_align, 0);
        saemon_kernel_plan p = {.d_in = DI, .d_sae = DS};
        const size_t bytes = ks[v]->packed_size(&p);
        char *a1 = aligned_alloc(64, (bytes + 63) & ~(size_t)63), *a2 = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        memset(a1, 0x5a, bytes);
        ks[v]->pack(&p, rows, a1);
        cr_assert(memcmp(a1, rows, sizeof rows) == 0, "%s: the packed form does not start with the rows", ks[v]->name);
        memset(a2, 0x5a, bytes);
        memcpy(a2, rows, sizeof rows);
        ks[v]->pack(&p, (const float *)a2, a2);
        cr_assert(memcmp(a1, a2, bytes) == 0, "%s: packing in place differs", ks[v]->name);
        free(a1);
        free(a2);
    }
}
