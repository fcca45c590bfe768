/* Subset plans (docs/ARCHITECTURE.md "Subset plans"): for every architecture
 * whose latents are independent (standard, jumprelu, gated), every kernel
 * variant this CPU runs and 0 or 2 threads, the latents of a subset plan are
 * bit-identical to the same latents of a full encode; full_every rows,
 * encode_full and set_latents (reload) too. TopK refuses a subset. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernels/kernel.h"
#include "saemon/saemon.h"

#define D_IN 72
#define D_SAE 700
#define ROWS 13

static uint64_t rng;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

static float w_enc[D_IN * D_SAE], w_dec[D_SAE * D_IN], b_enc[D_SAE], b_dec[D_IN], thr[D_SAE], r_mag[D_SAE],
    b_mag[D_SAE], x[ROWS * D_IN];

static saemon_dict *make(saemon_arch arch)
{
    rng = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < D_IN * D_SAE; i++)
        w_enc[i] = frand() * 0.2f, w_dec[i] = frand();
    for (size_t j = 0; j < D_SAE; j++)
        b_enc[j] = 0.1f * frand(), thr[j] = 0.15f * (frand() + 1.0f), r_mag[j] = 0.3f * frand(),
        b_mag[j] = 0.1f * frand();
    for (size_t i = 0; i < D_IN; i++)
        b_dec[i] = 0.05f * frand();
    for (size_t i = 0; i < ROWS * D_IN; i++)
        x[i] = frand();
    saemon_dict_arrays a = {.name = "subset", .arch = arch, .d_in = D_IN, .d_sae = D_SAE, .k = 24,
                            .apply_b_dec_to_input = true, .W_enc = w_enc, .W_dec = w_dec, .b_dec = b_dec};
    if (arch == SAEMON_ARCH_GATED)
        a.b_gate = b_enc, a.r_mag = r_mag, a.b_mag = b_mag;
    else
        a.b_enc = b_enc;
    if (arch == SAEMON_ARCH_JUMPRELU)
        a.threshold = thr;
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    return d;
}

/* Latents 0, 699, a stretch crossing panel bounds, a sparse spread, and
 * duplicates / disorder, which the plan must sort out. */
static size_t pick(uint32_t *out, uint32_t stride)
{
    size_t n = 0;
    out[n++] = 699;
    out[n++] = 0;
    for (uint32_t j = 60; j < 140; j++)
        out[n++] = j;
    for (uint32_t j = 141; j < D_SAE; j += stride)
        out[n++] = j;
    out[n++] = 77;
    return n;
}

static size_t distinct(const uint32_t *set, size_t n)
{
    bool seen[D_SAE] = {0};
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        u += !seen[set[i]], seen[set[i]] = true;
    return u;
}

static bool in_set(const uint32_t *set, size_t n, uint32_t j)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == j)
            return true;
    return false;
}

/* Row r of `sub` holds exactly the entries of row r of `full` whose index is
 * in the set, bit for bit. Returns how many entries were compared. */
static size_t expect_filtered(const saemon_features *full, const saemon_features *sub, size_t r,
                              const uint32_t *set, size_t n_set, const char *what)
{
    size_t e = sub->offsets[r];
    for (size_t f = full->offsets[r]; f < full->offsets[r + 1]; f++) {
        if (!in_set(set, n_set, full->index[f]))
            continue;
        cr_assert_lt(e, sub->offsets[r + 1], "%s row %zu: latent %u missing", what, r, full->index[f]);
        cr_assert_eq(sub->index[e], full->index[f], "%s row %zu", what, r);
        cr_assert(memcmp(&sub->value[e], &full->value[f], sizeof(float)) == 0, "%s row %zu latent %u: %a vs %a",
                  what, r, full->index[f], (double)sub->value[e], (double)full->value[f]);
        e++;
    }
    cr_assert_eq(e, sub->offsets[r + 1], "%s row %zu: extra latents", what, r);
    return sub->offsets[r + 1] - sub->offsets[r];
}

/* Copy a batch's CSR so a second encode does not overwrite it. */
typedef struct held {
    size_t offsets[ROWS + 1];
    uint32_t index[ROWS * D_SAE];
    float value[ROWS * D_SAE];
    saemon_features f;
} held;

static void hold(held *h, const saemon_features *f)
{
    memcpy(h->offsets, f->offsets, (f->n_tokens + 1) * sizeof(size_t));
    memcpy(h->index, f->index, f->offsets[f->n_tokens] * sizeof(uint32_t));
    memcpy(h->value, f->value, f->offsets[f->n_tokens] * sizeof(float));
    h->f = (saemon_features){.n_tokens = f->n_tokens, .offsets = h->offsets, .index = h->index, .value = h->value};
}

static void check_arch(saemon_arch arch)
{
    saemon_dict *d = make(arch);
    size_t nk = 0;
    const saemon_kernel *const *ks = saemon_kernels_all(&nk);
    uint32_t set_a[D_SAE], set_b[D_SAE];
    const size_t na = pick(set_a, 9), nb = pick(set_b, 4);
    set_b[0] = 698; /* B differs from A */
    static held ref;
    size_t variants = 0, compared = 0;
    for (size_t v = 0; v < nk; v++) {
        if ((ks[v]->cpu_features & saemon_cpu_features()) != ks[v]->cpu_features)
            continue;
        variants++;
        for (size_t threads = 0; threads <= 2; threads += 2) {
            saemon_error err = {0};
            saemon_encoder *full = NULL, *sub = NULL;
            saemon_encoder_options of = {.variant = ks[v]->name, .max_batch = ROWS, .threads = threads, .no_pin = true};
            cr_assert_eq(saemon_encoder_create(d, &of, &full, &err), SAEMON_OK, "%s", err.message);
            saemon_encoder_options os = of;
            os.encode = SAEMON_ENCODE_RULES;
            os.latents = set_a;
            os.n_latents = na;
            os.full_every = 5;
            cr_assert_eq(saemon_encoder_create(d, &os, &sub, &err), SAEMON_OK, "%s", err.message);
            cr_assert(saemon_encoder_is_subset(sub));
            cr_assert_eq(saemon_encoder_get_latent_count(sub), distinct(set_a, na)); /* 77 is listed twice */
            const saemon_features *ff, *fs;
            cr_assert_eq(saemon_encoder_encode(full, x, ROWS, &ff, &err), SAEMON_OK);
            hold(&ref, ff);
            cr_assert_eq(saemon_encoder_encode(sub, x, ROWS, &fs, &err), SAEMON_OK);
            char what[128];
            snprintf(what, sizeof what, "%s %s threads %zu", saemon_arch_name(arch), ks[v]->name, threads);
            cr_assert_not_null(fs->subset);
            for (size_t r = 0; r < ROWS; r++) {
                /* full_every 5 from the first row: rows 0, 5, 10 carry every latent */
                cr_assert_eq(fs->subset[r], r % 5 != 0, "%s row %zu", what, r);
                if (r % 5 == 0) {
                    cr_assert_eq(fs->offsets[r + 1] - fs->offsets[r], ref.offsets[r + 1] - ref.offsets[r]);
                    cr_assert(memcmp(fs->value + fs->offsets[r], ref.value + ref.offsets[r],
                                     (ref.offsets[r + 1] - ref.offsets[r]) * sizeof(float)) == 0, "%s", what);
                } else {
                    compared += expect_filtered(&ref.f, fs, r, set_a, na, what);
                }
            }
            /* one row per call: a vpdpbusd variant screens single rows of a
             * small subset (runtime/encoder.c, screen_one_row), other rows
             * and variants take the fp32 path; the same bits as the full
             * encode of that row alone (an fp32 tile kernel's arithmetic may
             * depend on the batch's row count) */
            {
                static held ref1;
                saemon_encoder *one = NULL;
                saemon_encoder_options o1 = os;
                o1.full_every = 0;
                cr_assert_eq(saemon_encoder_create(d, &o1, &one, &err), SAEMON_OK, "%s", err.message);
                for (size_t r = 0; r < ROWS; r++) {
                    const saemon_features *f1;
                    cr_assert_eq(saemon_encoder_encode(full, x + r * D_IN, 1, &f1, &err), SAEMON_OK);
                    hold(&ref1, f1);
                    cr_assert_eq(saemon_encoder_encode(one, x + r * D_IN, 1, &f1, &err), SAEMON_OK);
                    compared += expect_filtered(&ref1.f, f1, 0, set_a, na, what);
                }
                saemon_encoder_destroy(one);
            }
            /* encode_full: every latent, whatever the plan */
            cr_assert_eq(saemon_encoder_encode_full(sub, x, ROWS, &fs, &err), SAEMON_OK);
            cr_assert_null(fs->subset);
            cr_assert_eq(fs->offsets[ROWS], ref.offsets[ROWS]);
            cr_assert(memcmp(fs->index, ref.index, ref.offsets[ROWS] * sizeof(uint32_t)) == 0, "%s", what);
            cr_assert(memcmp(fs->value, ref.value, ref.offsets[ROWS] * sizeof(float)) == 0, "%s", what);
            /* reload: set B applies from the next batch on (rows counted on: 13 % 5 = 3, so rows 2, 7, 12 are full) */
            cr_assert_eq(saemon_encoder_set_latents(sub, set_b, nb, &err), SAEMON_OK, "%s", err.message);
            cr_assert_eq(saemon_encoder_get_latent_count(sub), distinct(set_b, nb));
            cr_assert_eq(saemon_encoder_encode(sub, x, ROWS, &fs, &err), SAEMON_OK);
            for (size_t r = 0; r < ROWS; r++)
                if (fs->subset[r])
                    compared += expect_filtered(&ref.f, fs, r, set_b, nb, what);
                else
                    cr_assert_eq(r % 5, 2, "%s row %zu", what, r);
            /* back to every latent */
            cr_assert_eq(saemon_encoder_set_latents(sub, NULL, 0, &err), SAEMON_OK, "%s", err.message);
            cr_assert_eq(saemon_encoder_encode(sub, x, ROWS, &fs, &err), SAEMON_OK);
            cr_assert_null(fs->subset);
            cr_assert(memcmp(fs->value, ref.value, ref.offsets[ROWS] * sizeof(float)) == 0, "%s", what);
            saemon_encoder_destroy(full);
            saemon_encoder_destroy(sub);
        }
    }
    cr_assert_gt(variants, 0);
    cr_assert_gt(compared, 100, "too few active latents to mean anything (%zu)", compared);
    saemon_dict_close(d);
}

Test(subset, standard_equals_full_encode) { check_arch(SAEMON_ARCH_STANDARD); }
Test(subset, jumprelu_equals_full_encode) { check_arch(SAEMON_ARCH_JUMPRELU); }
Test(subset, gated_equals_full_encode) { check_arch(SAEMON_ARCH_GATED); }

Test(subset, topk_refuses_a_subset_and_auto_encodes_everything)
{
    saemon_dict *d = make(SAEMON_ARCH_TOPK);
    uint32_t lat[3] = {1, 2, 3};
    saemon_error err = {0};
    saemon_encoder *enc = NULL;
    saemon_encoder_options o = {.max_batch = 4, .encode = SAEMON_ENCODE_RULES, .latents = lat, .n_latents = 3};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "TopK"), "%s", err.message);
    o.encode = SAEMON_ENCODE_AUTO;
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    cr_assert_not(saemon_encoder_is_subset(enc));
    cr_assert_eq(saemon_encoder_get_latent_count(enc), D_SAE);
    cr_assert(strstr(saemon_encoder_get_plan(enc), "TopK"), "%s", saemon_encoder_get_plan(enc));
    cr_assert_eq(saemon_encoder_set_latents(enc, lat, 3, &err), SAEMON_ERR_UNSUPPORTED);
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}

Test(subset, auto_follows_the_reason_rules_refuses_it)
{
    saemon_dict *d = make(SAEMON_ARCH_JUMPRELU);
    uint32_t lat[2] = {5, 800};
    saemon_error err = {0};
    saemon_encoder *enc = NULL;
    saemon_encoder_options o = {.max_batch = 4, .encode = SAEMON_ENCODE_RULES, .latents = lat, .n_latents = 2};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_ERR_ARG, "latent 800 >= d_sae");
    lat[1] = 6;
    o.full_reason = "rule 'l0' reads L0";
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "rule 'l0' reads L0"), "%s", err.message);
    o.encode = SAEMON_ENCODE_AUTO;
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    cr_assert_not(saemon_encoder_is_subset(enc));
    cr_assert(strstr(saemon_encoder_get_plan(enc), "reads L0"), "%s", saemon_encoder_get_plan(enc));
    saemon_encoder_destroy(enc);
    o.full_reason = NULL;
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    cr_assert(saemon_encoder_is_subset(enc));
    cr_assert(strstr(saemon_encoder_get_plan(enc), "subset of 2 of 700"), "%s", saemon_encoder_get_plan(enc));
    /* without keep_full there is no way back to every latent */
    cr_assert_eq(saemon_encoder_set_latents(enc, NULL, 0, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert_eq(saemon_encoder_encode_full(enc, x, 1, &(const saemon_features *){0}, &err), SAEMON_ERR_UNSUPPORTED);
    /* an empty subset is valid: nothing is computed */
    cr_assert_eq(saemon_encoder_set_latents(enc, lat, 0, &err), SAEMON_OK, "%s", err.message);
    const saemon_features *f;
    cr_assert_eq(saemon_encoder_encode(enc, x, 3, &f, &err), SAEMON_OK);
    cr_assert_eq(f->offsets[3], 0);
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}
