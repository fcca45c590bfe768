/* Worker-pool stress without Criterion, so it can also run under
 * ThreadSanitizer (Criterion's forking runner does not start under TSan).
 * Many encoders are created, used and destroyed with 1..3 slices; every
 * result must equal the single-thread answer; exits 0 on success. */
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
    printf("stress-threads: 2 architectures x 20 encoders x 50 batches identical to single-thread\n");
    return 0;
}
