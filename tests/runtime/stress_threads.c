/* Worker-pool stress without Criterion, so it can also run under
 * ThreadSanitizer (Criterion's forking runner does not start under TSan).
 * Many encoders are created, used and destroyed with 1..3 slices; every
 * result must equal the single-thread answer; exits 0 on success. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/saemon.h"

#define D_IN 48
#define D_SAE 200
#define ROWS 9

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

/* Reload from another thread: a setter swaps the subset plan between two
 * latent sets while the main thread encodes (2 slices). Every batch must be
 * one whole plan: exactly set A's or set B's latents of the full encode. */
typedef struct setter_ctx {
    saemon_encoder *enc;
    const uint32_t *sets[2];
    size_t n[2];
    int rounds, failed;
} setter_ctx;

static void *setter(void *arg)
{
    setter_ctx *c = arg;
    saemon_error err = {0};
    for (int i = 0; i < c->rounds; i++)
        if (saemon_encoder_set_latents(c->enc, c->sets[i & 1], c->n[i & 1], &err) != SAEMON_OK)
            c->failed = 1;
    return NULL;
}

static int fail(const char *what, const saemon_error *err)
{
    fprintf(stderr, "stress-threads: %s: %s\n", what, err ? err->message : "");
    return 1;
}

int main(void)
{
    static float w[D_IN * D_SAE], wd[D_SAE * D_IN], b[D_SAE], bd[D_IN], x[ROWS * D_IN];
    for (size_t i = 0; i < D_IN * D_SAE; i++)
        w[i] = frand(), wd[i] = frand();
    for (size_t j = 0; j < D_SAE; j++)
        b[j] = 0.3f * frand();
    for (size_t i = 0; i < D_IN; i++)
        bd[i] = 0.1f * frand();
    saemon_error err = {0};
    for (int arch = 0; arch < 2; arch++) {
        saemon_dict_arrays a = {.name = "stress", .arch = arch ? SAEMON_ARCH_TOPK : SAEMON_ARCH_STANDARD,
                                .d_in = D_IN, .d_sae = D_SAE, .k = 9, .apply_b_dec_to_input = true,
                                .W_enc = w, .W_dec = wd, .b_enc = b, .b_dec = bd};
        saemon_dict *d = NULL;
        if (saemon_dict_from_arrays(&a, &d, &err) != SAEMON_OK)
            return fail("dict", &err);
        saemon_encoder *ref = NULL;
        saemon_encoder_options o1 = {.max_batch = ROWS};
        if (saemon_encoder_create(d, &o1, &ref, &err) != SAEMON_OK)
            return fail("reference encoder", &err);
        for (int round = 0; round < 20; round++) {
            saemon_encoder_options o = {.max_batch = ROWS, .threads = 1 + (size_t)round % 3, .no_pin = round & 1,
                                        .spin_us = round % 4 == 0 ? 1 : 50};
            saemon_encoder *enc = NULL;
            if (saemon_encoder_create(d, &o, &enc, &err) != SAEMON_OK)
                return fail("encoder", &err);
            for (int rep = 0; rep < 50; rep++) {
                for (size_t i = 0; i < ROWS * D_IN; i++)
                    x[i] = frand();
                size_t n = 1 + (size_t)rep % ROWS;
                const saemon_features *f, *g;
                if (saemon_encoder_encode(enc, x, n, &f, &err) != SAEMON_OK ||
                    saemon_encoder_encode(ref, x, n, &g, &err) != SAEMON_OK)
                    return fail("encode", &err);
                size_t nnz = g->offsets[n];
                if (memcmp(f->offsets, g->offsets, (n + 1) * sizeof(size_t)) ||
                    memcmp(f->index, g->index, nnz * sizeof(uint32_t)) ||
                    memcmp(f->value, g->value, nnz * sizeof(float)))
                    return fail("multi-thread result differs from single-thread", NULL);
            }
            saemon_encoder_destroy(enc);
        }
        saemon_encoder_destroy(ref);
        saemon_dict_close(d);
    }
    {
        saemon_dict_arrays a = {.name = "stress", .arch = SAEMON_ARCH_STANDARD, .d_in = D_IN, .d_sae = D_SAE,
                                .apply_b_dec_to_input = true, .W_enc = w, .W_dec = wd, .b_enc = b, .b_dec = bd};
        saemon_dict *d = NULL;
        if (saemon_dict_from_arrays(&a, &d, &err) != SAEMON_OK)
            return fail("dict", &err);
        static uint32_t set_a[100], set_b[70];
        for (uint32_t j = 0; j < 100; j++)
            set_a[j] = 2 * j; /* even latents */
        for (uint32_t j = 0; j < 70; j++)
            set_b[j] = 2 * j + 1; /* odd */
        saemon_encoder *ref = NULL, *enc = NULL;
        saemon_encoder_options o1 = {.max_batch = ROWS};
        saemon_encoder_options o2 = {.max_batch = ROWS, .threads = 2, .no_pin = true, .spin_us = 20,
                                     .encode = SAEMON_ENCODE_RULES, .latents = set_a, .n_latents = 100};
        if (saemon_encoder_create(d, &o1, &ref, &err) != SAEMON_OK || saemon_encoder_create(d, &o2, &enc, &err) != SAEMON_OK)
            return fail("subset encoders", &err);
        setter_ctx c = {.enc = enc, .sets = {set_b, set_a}, .n = {70, 100}, .rounds = 300};
        pthread_t th;
        pthread_create(&th, NULL, setter, &c);
        for (int rep = 0; rep < 400; rep++) {
            for (size_t i = 0; i < ROWS * D_IN; i++)
                x[i] = frand();
            const saemon_features *f, *g;
            if (saemon_encoder_encode(ref, x, ROWS, &g, &err) != SAEMON_OK)
                return fail("encode", &err);
            static size_t go[ROWS + 1];
            static uint32_t gi[ROWS * D_SAE];
            static float gv[ROWS * D_SAE];
            memcpy(go, g->offsets, sizeof go);
            memcpy(gi, g->index, go[ROWS] * sizeof *gi);
            memcpy(gv, g->value, go[ROWS] * sizeof *gv);
            if (saemon_encoder_encode(enc, x, ROWS, &f, &err) != SAEMON_OK)
                return fail("encode", &err);
            int parity = -1; /* the batch's plan: 0 = even latents (A), 1 = odd (B) */
            for (size_t r = 0; r < ROWS; r++) {
                size_t e = f->offsets[r];
                for (size_t k = go[r]; k < go[r + 1]; k++) {
                    uint32_t j = gi[k];
                    if (parity < 0 && e < f->offsets[r + 1])
                        parity = (int)(f->index[e] & 1);
                    int in = parity < 0 ? -1 : (int)(j & 1) == parity && (parity == 0 ? j < 200 : j < 140);
                    if (in == 0)
                        continue;
                    if (e < f->offsets[r + 1] && f->index[e] == j) {
                        if (memcmp(&f->value[e], &gv[k], sizeof(float)))
                            return fail("subset value differs from the full encode", NULL);
                        e++;
                    } else if (in == 1) {
                        return fail("a latent of the batch's plan is missing (mixed plans?)", NULL);
                    }
                }
                if (e != f->offsets[r + 1])
                    return fail("a latent outside the batch's plan (mixed plans?)", NULL);
            }
        }
        pthread_join(th, NULL);
        if (c.failed)
            return fail("set_latents failed", NULL);
        saemon_encoder_destroy(enc);
        saemon_encoder_destroy(ref);
        saemon_dict_close(d);
    }
    printf("stress-threads: 2 architectures x 20 encoders x 50 batches identical to single-thread; "
           "400 subset batches with 300 plan swaps from another thread, each batch one whole plan\n");
    return 0;
}
