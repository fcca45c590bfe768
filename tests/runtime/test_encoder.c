/* The encoder on small hand-made dictionaries whose answers are worked out
 * by hand: every architecture's epilogue, preprocessing order, CSR layout. */
#include <criterion/criterion.h>
#include <fenv.h>
#include <math.h>
#include <string.h>

#include "saemon/saemon.h"

/* d_in 2, d_sae 3: W_enc columns e0, e1, e0+e1 (SAELens layout [d_in][d_sae]). */
static const float W_ENC[2 * 3] = {1, 0, 1, 0, 1, 1};
static const float W_DEC[3 * 2] = {1, 0, 0, 1, 3, 4}; /* row norms 1, 1, 5 */
static const float ZERO3[3] = {0, 0, 0}, ZERO2[2] = {0, 0};

static saemon_dict *make(saemon_arch arch, const float *b_enc, const float *thr, size_t k)
{
    saemon_dict_arrays a = {.name = "hand", .arch = arch, .d_in = 2, .d_sae = 3, .k = k,
                            .apply_b_dec_to_input = true, .W_enc = W_ENC, .W_dec = W_DEC,
                            .b_enc = b_enc, .b_dec = ZERO2, .threshold = thr};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    return d;
}

/* Encode one row and return the dense features. */
static void encode1(saemon_dict *d, const char *variant, const float *x, float out[3])
{
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.variant = variant, .max_batch = 4};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    const saemon_features *f;
    cr_assert_eq(saemon_encoder_encode(enc, x, 1, &f, &err), SAEMON_OK);
    memset(out, 0, 3 * sizeof(float));
    for (size_t e = f->offsets[0]; e < f->offsets[1]; e++)
        out[f->index[e]] = f->value[e];
    saemon_encoder_destroy(enc);
}

Test(encoder, standard_relu)
{
    const float b[3] = {0.5f, -1.0f, 0.0f};
    saemon_dict *d = make(SAEMON_ARCH_STANDARD, b, NULL, 0);
    const float x[2] = {1.0f, 0.25f};
    float f[3];
    encode1(d, "scalar", x, f);
    cr_assert_float_eq(f[0], 1.5f, 1e-6);
    cr_assert_eq(f[1], 0.0f); /* 0.25 - 1 < 0 */
    cr_assert_float_eq(f[2], 1.25f, 1e-6);
    saemon_dict_close(d);
}

Test(encoder, jumprelu_threshold_is_strict_and_negative_thresholds_keep_relu)
{
    const float thr[3] = {1.0f, -5.0f, 1.25f};
    saemon_dict *d = make(SAEMON_ARCH_JUMPRELU, ZERO3, thr, 0);
    const float x[2] = {1.0f, 0.25f};
    float f[3];
    encode1(d, "scalar", x, f);
    cr_assert_eq(f[0], 0.0f, "h == threshold must not fire (strict >)");
    cr_assert_float_eq(f[1], 0.25f, 1e-6);
    cr_assert_eq(f[2], 0.0f, "h == threshold must not fire");
    const float y[2] = {-1.0f, -0.5f};
    encode1(d, "scalar", y, f);
    cr_assert_eq(f[1], 0.0f, "ReLU still applies below a negative threshold");
    saemon_dict_close(d);
}

Test(encoder, topk_keeps_k_largest_lower_index_wins_ties_then_relu)
{
    saemon_dict *d = make(SAEMON_ARCH_TOPK, ZERO3, NULL, 1);
    const float tie[2] = {1.0f, 1.0f}; /* h = 1, 1, 2 */
    float f[3];
    encode1(d, "scalar", tie, f);
    cr_assert_float_eq(f[2], 2.0f, 1e-6);
    cr_assert_eq(f[0] + f[1], 0.0f);
    saemon_dict_close(d);
    d = make(SAEMON_ARCH_TOPK, ZERO3, NULL, 2);
    const float x[2] = {0.5f, -2.0f}; /* h = 0.5, -2, -1.5: top-2 = {0, 2}, ReLU drops latent 2 */
    encode1(d, "scalar", x, f);
    cr_assert_float_eq(f[0], 0.5f, 1e-6);
    cr_assert_eq(f[1], 0.0f);
    cr_assert_eq(f[2], 0.0f);
    const float eq[2] = {1.0f, 0.0f}; /* h = 1, 0, 1: tie between 0 and 2 at the top, both kept (k=2) */
    encode1(d, "scalar", eq, f);
    cr_assert_float_eq(f[0], 1.0f, 1e-6);
    cr_assert_float_eq(f[2], 1.0f, 1e-6);
    saemon_dict_close(d);
}

Test(encoder, gated_uses_gate_sign_and_scaled_magnitude)
{
    const float b_gate[3] = {0.0f, 0.0f, -10.0f};
    const float r_mag[3] = {0.0f, logf(2.0f), 0.0f};
    const float b_mag[3] = {-2.0f, 0.5f, 0.0f};
    saemon_dict_arrays a = {.name = "gated", .arch = SAEMON_ARCH_GATED, .d_in = 2, .d_sae = 3,
                            .apply_b_dec_to_input = false, .W_enc = W_ENC, .W_dec = W_DEC,
                            .b_dec = ZERO2, .b_gate = b_gate, .r_mag = r_mag, .b_mag = b_mag};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    const float x[2] = {1.0f, 1.0f};
    float f[3];
    encode1(d, "scalar", x, f);
    cr_assert_eq(f[0], 0.0f, "gate open but magnitude 1 - 2 < 0");
    cr_assert_float_eq(f[1], 2.5f, 1e-6, "exp(ln 2) * 1 + 0.5");
    cr_assert_eq(f[2], 0.0f, "gate closed");
    saemon_dict_close(d);
}

Test(encoder, b_dec_subtracted_after_layer_norm)
{
    const float b_dec[2] = {0.5f, 0.0f};
    saemon_dict_arrays a = {.name = "ln", .arch = SAEMON_ARCH_STANDARD, .d_in = 2, .d_sae = 3,
                            .apply_b_dec_to_input = true, .norm = SAEMON_NORM_LAYER_NORM, .W_enc = W_ENC,
                            .W_dec = W_DEC, .b_enc = ZERO3, .b_dec = b_dec};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    /* x = (3, 1): mean 2, centred (1, -1), unbiased std sqrt(2), x' = (1,-1)/(sqrt2+1e-5) - (0.5, 0) */
    const float x[2] = {3.0f, 1.0f};
    float f[3];
    encode1(d, "scalar", x, f);
    double s = 1.0 / (sqrt(2.0) + 1e-5);
    cr_assert_float_eq(f[0], (float)(s - 0.5), 1e-6);
    cr_assert_eq(f[1], 0.0f);
    cr_assert_eq(f[2], 0.0f); /* s - 0.5 - s < 0 */
    saemon_dict_close(d);
}

Test(encoder, batch_csr_and_stats)
{
    const float b[3] = {0, 0, 0};
    saemon_dict *d = make(SAEMON_ARCH_STANDARD, b, NULL, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.variant = "scalar", .max_batch = 3};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK);
    const float x[3 * 2] = {1, 1, -1, -1, NAN, 2};
    const saemon_features *f;
    cr_assert_eq(saemon_encoder_encode(enc, x, 3, &f, &err), SAEMON_OK);
    cr_assert_eq(f->n_tokens, 3);
    cr_assert_eq(f->offsets[0], 0);
    cr_assert_eq(f->offsets[1], 3);
    cr_assert_eq(f->offsets[2], 3, "an all-negative row has no features");
    cr_assert_eq(f->offsets[3], 3, "NaN times a zero weight is NaN (as in numpy/torch): no feature fires");
    cr_assert_float_eq(f->input_norm[0], sqrtf(2.0f), 1e-6);
    cr_assert_eq(f->input_nonfinite[0], 0);
    cr_assert_eq(f->input_nonfinite[2], 1);
    cr_assert_eq(saemon_encoder_encode(enc, x, 4, &f, &err), SAEMON_ERR_ARG, "batch above max_batch is refused");
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}

Test(encoder, unknown_variant_is_a_clear_error)
{
    saemon_dict *d = make(SAEMON_ARCH_STANDARD, ZERO3, NULL, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.variant = "no-such-isa"};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "no-such-isa"));
    cr_assert_null(enc);
    saemon_dict_close(d);
}

/* The kernels' exactness rests on round-to-nearest: another rounding mode is
 * refused at creation, with a message that says so. */
Test(encoder, refuses_a_rounding_mode_other_than_nearest)
{
    const float b[3] = {0, 0, 0};
    saemon_dict *d = make(SAEMON_ARCH_STANDARD, b, NULL, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    cr_assert_eq(fesetround(FE_UPWARD), 0);
    saemon_status st = saemon_encoder_create(d, NULL, &enc, &err);
    fesetround(FE_TONEAREST);
    cr_assert_eq(st, SAEMON_ERR_UNSUPPORTED);
    cr_assert_null(enc);
    cr_assert(strstr(err.message, "round-to-nearest"), "%s", err.message);
    cr_assert_eq(saemon_encoder_create(d, NULL, &enc, &err), SAEMON_OK, "%s", err.message);
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}

Test(encoder, reconstruction_error_decodes_active_features)
{
    const float b[3] = {0.5f, -1.0f, 0.0f};
    saemon_dict *d = make(SAEMON_ARCH_STANDARD, b, NULL, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.variant = "scalar", .max_batch = 2, .reconstruction = 1};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    const float x[2 * 2] = {1.0f, 0.25f, -1.0f, -1.0f};
    const saemon_features *f;
    cr_assert_eq(saemon_encoder_encode(enc, x, 2, &f, &err), SAEMON_OK);
    cr_assert_not_null(f->recon_error);
    /* row 0: f = (1.5, 0, 1.25) -> x̂ = 1.5·(1,0) + 1.25·(3,4) = (5.25, 5) */
    double e0 = sqrt((1 - 5.25) * (1 - 5.25) + (0.25 - 5) * (0.25 - 5)) / sqrt(1 + 0.0625);
    cr_assert_float_eq(f->recon_error[0], (float)e0, 1e-5);
    /* row 1: no feature active, x̂ = b_dec = 0 -> error 1 */
    cr_assert_float_eq(f->recon_error[1], 1.0f, 1e-6);
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}
