/* saemon_dict_open / saemon_dict_from_arrays: formats, dtypes, architectures,
 * cfg layouts, folding, the real SAEs, and every refusal. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/dict_internal.h"
#include "tests/support/st_writer.h"
#include "tests/support/support.h"

/* Deterministic weights exactly representable in F16 and BF16. */
static float val(int tensor, size_t i)
{
    return (float)((long)((i * 7 + (size_t)tensor * 5) % 31) - 15) * 0.0625f;
}

enum { T_WENC, T_WDEC, T_BDEC, T_BENC, T_THR, T_BGATE, T_RMAG, T_BMAG };
static const char *const tnames[] = {"W_enc", "W_dec", "b_dec", "b_enc",
                                     "threshold", "b_gate", "r_mag", "b_mag"};

typedef struct {
    const char *dtype;
    saemon_arch arch;
    size_t d_in, d_sae;
    const char *skip;     /* tensor to leave out */
    const char *nan_in;   /* tensor to poison with NaN at flat index 5 */
    const char *wrong;    /* tensor to give a wrong leading dim */
    const char *bad_type; /* tensor stored as I32 */
    const float *scaling; /* extra scaling_factor tensor */
} weights_spec;

static void write_weights(const char *dir, const weights_spec *s)
{
    st_writer *w = stw_new();
    stw_add_meta(w, "format", "pt");
    bool gated = s->arch == SAEMON_ARCH_GATED;
    for (int t = 0; t < 8; t++) {
        if ((t == T_BENC && gated) || (t == T_THR && s->arch != SAEMON_ARCH_JUMPRELU) ||
            (t >= T_BGATE && !gated))
            continue;
        const char *name = tnames[t];
        if (s->skip && !strcmp(s->skip, name))
            continue;
        uint64_t shape[2];
        size_t nd = 1;
        if (t == T_WENC)
            shape[0] = s->d_in, shape[1] = s->d_sae, nd = 2;
        else if (t == T_WDEC)
            shape[0] = s->d_sae, shape[1] = s->d_in, nd = 2;
        else
            shape[0] = t == T_BDEC ? s->d_in : s->d_sae;
        if (s->wrong && !strcmp(s->wrong, name))
            shape[0] += 1;
        size_t n = shape[0] * (nd == 2 ? shape[1] : 1);
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = val(t, i);
        if (s->nan_in && !strcmp(s->nan_in, name))
            v[5] = NAN;
        if (s->bad_type && !strcmp(s->bad_type, name))
            stw_add_raw(w, name, "I32", shape, nd, v, n * 4);
        else
            stw_add_floats(w, name, s->dtype ? s->dtype : "F32", shape, nd, v);
        free(v);
    }
    if (s->scaling)
        stw_add_floats(w, "scaling_factor", "F32", (uint64_t[]){s->d_sae}, 1, s->scaling);
    free(stw_write(w, dir, "sae_weights.safetensors"));
    stw_free(w);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    free(test_write_file(dir, name, text, strlen(text)));
}

/* A v6 cfg.json; `extra` is spliced into the top level (e.g. "\"k\": 3,"). */
static void write_cfg(const char *dir, const char *arch, size_t d_in, size_t d_sae,
                      const char *extra)
{
    char *text = NULL;
    cr_assert(asprintf(&text,
                       "{\"d_in\": %zu, \"d_sae\": %zu, \"dtype\": \"float32\", %s"
                       "\"architecture\": \"%s\", \"metadata\": {\"sae_lens_version\": \"6.0.0\", "
                       "\"hook_name\": \"blocks.1.hook_resid_post\", \"model_name\": \"toy\"}}",
                       d_in, d_sae, extra ? extra : "", arch) > 0);
    write_text(dir, "cfg.json", text);
    free(text);
}

static char *tmp;
static void setup(void) { tmp = test_tmpdir(); }
static void teardown(void)
{
    test_rmtree(tmp);
    free(tmp);
}

static saemon_dict *open_ok(const char *dir)
{
    saemon_dict *d = NULL;
    saemon_error err = {0};
    saemon_status st = saemon_dict_open(dir, &d, &err);
    cr_assert_eq(st, SAEMON_OK, "open %s: %s", dir, err.message);
    cr_assert_not_null(d);
    return d;
}

static void open_bad(const char *dir, saemon_status code, const char *needle)
{
    saemon_dict *d = (saemon_dict *)1;
    saemon_error err = {0};
    saemon_status st = saemon_dict_open(dir, &d, &err);
    cr_assert_eq(st, code, "got %s (%s), want %s", saemon_status_name(st), err.message,
                 saemon_status_name(code));
    cr_assert_null(d);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
}

/* Every value of the dictionary equals val() in the SAELens layout. */
static void check_values(const saemon_dict *d, size_t din, size_t dsae)
{
    for (size_t i = 0; i < din; i++)
        for (size_t j = 0; j < dsae; j++)
            cr_assert_eq(d->W_enc_rows[j * din + i], val(T_WENC, i * dsae + j), "W_enc[%zu,%zu]",
                         i, j);
    for (size_t i = 0; i < din * dsae; i++)
        cr_assert_eq(d->W_dec[i], val(T_WDEC, i));
    for (size_t i = 0; i < din; i++)
        cr_assert_eq(d->b_dec[i], val(T_BDEC, i));
    for (size_t j = 0; j < dsae; j++) {
        if (d->b_enc)
            cr_assert_eq(d->b_enc[j], val(T_BENC, j));
        if (d->threshold)
            cr_assert_eq(d->threshold[j], val(T_THR, j));
        if (d->b_gate) {
            cr_assert_eq(d->b_gate[j], val(T_BGATE, j));
            cr_assert_eq(d->r_mag[j], val(T_RMAG, j));
            cr_assert_eq(d->b_mag[j], val(T_BMAG, j));
        }
    }
    cr_assert_eq((uintptr_t)d->W_enc_rows % 64, 0);
    cr_assert_eq((uintptr_t)d->W_dec % 64, 0);
}

TestSuite(dict_load, .init = setup, .fini = teardown);

Test(dict_load, every_float_dtype_is_upcast_exactly)
{
    const char *dtypes[] = {"F32", "F16", "BF16", "F64"};
    const saemon_dtype want[] = {SAEMON_DTYPE_F32, SAEMON_DTYPE_F16, SAEMON_DTYPE_BF16,
                                 SAEMON_DTYPE_F64};
    const size_t sizes[][2] = {{6, 10}, {37, 70}}; /* the second crosses transpose blocks */
    for (int k = 0; k < 4; k++) {
        for (int z = 0; z < 2; z++) {
            write_cfg(tmp, "standard", sizes[z][0], sizes[z][1], NULL);
            write_weights(tmp, &(weights_spec){.dtype = dtypes[k], .d_in = sizes[z][0],
                                               .d_sae = sizes[z][1]});
            saemon_dict *d = open_ok(tmp);
            const saemon_dict_info *in = saemon_dict_get_info(d);
            cr_assert_eq(in->weight_dtype, want[k]);
            cr_assert_str_eq(saemon_dtype_name(in->weight_dtype), dtypes[k]);
            check_values(d, sizes[z][0], sizes[z][1]);
            saemon_dict_close(d);
        }
    }
}

Test(dict_load, each_architecture_tensor_set)
{
    const char *names[] = {"standard", "jumprelu", "gated", "topk"};
    for (int a = 0; a < 4; a++) {
        write_cfg(tmp, names[a], 5, 8, a == 3 ? "\"k\": 3, \"rescale_acts_by_decoder_norm\": true," : NULL);
        write_weights(tmp, &(weights_spec){.arch = (saemon_arch)a, .d_in = 5, .d_sae = 8});
        saemon_dict *d = open_ok(tmp);
        const saemon_dict_info *in = saemon_dict_get_info(d);
        cr_assert_eq(in->arch, (saemon_arch)a);
        cr_assert_str_eq(saemon_arch_name(in->arch), names[a]);
        cr_assert_eq(in->k, a == 3 ? 3u : 0u);
        cr_assert_eq(in->rescale_acts_by_decoder_norm, a == 3);
        cr_assert_eq(d->b_enc == NULL, a == 2);
        cr_assert_eq(d->threshold != NULL, a == 1);
        check_values(d, 5, 8);
        saemon_dict_close(d);
    }
    /* Each architecture's own tensor is required. */
    write_cfg(tmp, "jumprelu", 5, 8, NULL);
    write_weights(tmp, &(weights_spec){.arch = SAEMON_ARCH_JUMPRELU, .d_in = 5, .d_sae = 8,
                                       .skip = "threshold"});
    open_bad(tmp, SAEMON_ERR_FORMAT, "missing tensor 'threshold'");
    write_cfg(tmp, "gated", 5, 8, NULL);
    write_weights(tmp, &(weights_spec){.arch = SAEMON_ARCH_GATED, .d_in = 5, .d_sae = 8,
                                       .skip = "r_mag"});
    open_bad(tmp, SAEMON_ERR_FORMAT, "missing tensor 'r_mag'");
}

Test(dict_load, v6_info_fields)
{
    char *dir = NULL;
    cr_assert(asprintf(&dir, "%s/mysae", tmp) > 0);
    mkdir(dir, 0700);
    write_cfg(dir, "standard", 4, 6, "\"apply_b_dec_to_input\": false, \"normalize_activations\": \"layer_norm\",");
    write_weights(dir, &(weights_spec){.dtype = "BF16", .d_in = 4, .d_sae = 6});
    saemon_dict *d = open_ok(dir);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    cr_assert_str_eq(in->format, "saelens");
    cr_assert_str_eq(in->path, dir);
    cr_assert(strstr(in->name, "/mysae") && strstr(in->name, "saemon-test-"), "%s", in->name);
    cr_assert_eq(strchr(in->name, '/'), strrchr(in->name, '/'), "two components: %s", in->name);
    cr_assert_str_eq(in->hook_name, "blocks.1.hook_resid_post");
    cr_assert_str_eq(in->model_name, "toy");
    cr_assert_str_eq(in->compute_dtype, "float32");
    cr_assert_str_eq(in->normalize_activations, "layer_norm");
    cr_assert_eq(in->norm, SAEMON_NORM_LAYER_NORM);
    cr_assert_not(in->apply_b_dec_to_input);
    cr_assert_eq(in->d_in, 4);
    cr_assert_eq(in->d_sae, 6);
    struct stat sb;
    char *w = NULL;
    cr_assert(asprintf(&w, "%s/sae_weights.safetensors", dir) > 0);
    stat(w, &sb);
    cr_assert_eq(in->weights_bytes, (uint64_t)sb.st_size);
    cr_assert_gt(in->cfg_bytes, 50);
    cr_assert_eq(strlen(in->sha256), 64);
    saemon_dict_close(d);

    /* neuronpedia_id wins as the name. */
    write_text(dir, "cfg.json",
               "{\"d_in\": 4, \"d_sae\": 6, \"metadata\": {\"sae_lens_version\": \"6.1.0\", "
               "\"neuronpedia_id\": \"gpt2-small/0-res-jb\"}}");
    d = open_ok(dir);
    cr_assert_str_eq(saemon_dict_get_info(d)->name, "gpt2-small/0-res-jb");
    cr_assert_str_eq(saemon_dict_get_info(d)->normalize_activations, "none");
    cr_assert(saemon_dict_get_info(d)->apply_b_dec_to_input);
    saemon_dict_close(d);
    free(w);
    free(dir);
}

Test(dict_load, old_flat_cfg_is_upgraded)
{
    write_text(tmp, "cfg.json",
               "{\"d_in\": 4, \"d_sae\": 6, \"dtype\": \"torch.float32\", "
               "\"hook_point\": \"blocks.2.attn.hook_z\", \"model_name\": \"gpt2\", "
               "\"activation_fn_str\": \"topk\", \"activation_fn_kwargs\": {\"k\": 2}, "
               "\"normalize_activations\": false, \"sae_lens_training_version\": \"3.4.0\"}");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6});
    saemon_dict *d = open_ok(tmp);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    cr_assert_eq(in->arch, SAEMON_ARCH_TOPK);
    cr_assert_eq(in->k, 2);
    cr_assert_str_eq(in->hook_name, "blocks.2.attn.hook_z");
    cr_assert_str_eq(in->model_name, "gpt2");
    cr_assert(in->reshape_hook_z);
    cr_assert(in->apply_b_dec_to_input);
    cr_assert_str_eq(in->normalize_activations, "none");
    cr_assert_str_eq(in->compute_dtype, "torch.float32");
    saemon_dict_close(d);

    /* Old boolean normalize_activations true means expected_average_only_in. */
    write_text(tmp, "cfg.json",
               "{\"d_in\": 4, \"d_sae\": 6, \"hook_point\": \"blocks.0.hook_resid_pre\", "
               "\"normalize_activations\": true}");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "activation_scaler.json");
    write_text(tmp, "cfg.json",
               "{\"d_in\": 4, \"d_sae\": 6, \"activation_fn_str\": \"tanh-relu\"}");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "activation_fn 'tanh-relu'");
}

Test(dict_load, expected_average_only_in_folds_or_refuses)
{
    write_cfg(tmp, "standard", 4, 6, "\"normalize_activations\": \"expected_average_only_in\",");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6});
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "activation_scaler.json is missing");
    write_text(tmp, "activation_scaler.json", "{\"scaling_factor\": null}");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "scaling_factor is null");
    write_text(tmp, "activation_scaler.json", "{\"scaling_factor\": -1}");
    open_bad(tmp, SAEMON_ERR_VALUE, "finite number > 0");
    write_text(tmp, "activation_scaler.json", "{\"scaling_factor\": 4.0}");
    saemon_dict *d = open_ok(tmp);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    cr_assert_eq(in->folded_scaling_factor, 4.0);
    cr_assert_eq(in->norm, SAEMON_NORM_NONE);
    cr_assert_str_eq(in->normalize_activations, "expected_average_only_in");
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 6; j++)
            cr_assert_eq(d->W_enc_rows[j * 4 + i], 4.0f * val(T_WENC, i * 6 + j));
    for (size_t i = 0; i < 24; i++)
        cr_assert_eq(d->W_dec[i], val(T_WDEC, i) / 4.0f);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(d->b_dec[i], val(T_BDEC, i) / 4.0f);
    cr_assert_eq(d->b_enc[1], val(T_BENC, 1)); /* b_enc is not scaled */
    saemon_dict_close(d);
}

Test(dict_load, bad_inputs_name_what_is_wrong)
{
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6});
    open_bad(tmp, SAEMON_ERR_IO, "cfg.json");

    write_cfg(tmp, "standard", 5, 6, NULL);
    open_bad(tmp, SAEMON_ERR_SHAPE, "tensor 'W_enc' has shape [4, 6], expected cfg.json [d_in, d_sae] = [5, 6]");
    write_cfg(tmp, "standard", 4, 6, NULL);
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .wrong = "b_enc"});
    open_bad(tmp, SAEMON_ERR_SHAPE, "sae_weights.safetensors: tensor 'b_enc' has shape [7]");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .skip = "b_dec"});
    open_bad(tmp, SAEMON_ERR_FORMAT, "missing tensor 'b_dec'");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .nan_in = "W_dec"});
    open_bad(tmp, SAEMON_ERR_VALUE, "tensor 'W_dec' has a non-finite value (nan) at [1, 1]");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .nan_in = "W_enc", .dtype = "F16"});
    open_bad(tmp, SAEMON_ERR_VALUE, "tensor 'W_enc' has a non-finite value (nan) at [0, 5]");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .nan_in = "b_enc", .dtype = "BF16"});
    open_bad(tmp, SAEMON_ERR_VALUE, "tensor 'b_enc' has a non-finite value (nan) at [5]");
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .bad_type = "W_enc"});
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "tensor 'W_enc' has dtype I32");

    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6});
    write_cfg(tmp, "crosscoder", 4, 6, NULL);
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "unknown architecture 'crosscoder'");
    write_cfg(tmp, "topk", 4, 6, "\"k\": 0,");
    open_bad(tmp, SAEMON_ERR_FORMAT, "k must be an integer in 1..d_sae (6)");
    write_cfg(tmp, "topk", 4, 6, "\"k\": 7,");
    open_bad(tmp, SAEMON_ERR_FORMAT, "k must be an integer in 1..d_sae (6)");
    write_cfg(tmp, "topk", 4, 6, "\"k\": 2.5,");
    open_bad(tmp, SAEMON_ERR_FORMAT, "k must be an integer");
    write_cfg(tmp, "topk", 4, 6, NULL); /* SAELens default k = 100 > d_sae */
    open_bad(tmp, SAEMON_ERR_FORMAT, "k must be an integer in 1..d_sae");
    write_cfg(tmp, "standard", 4, 6, "\"normalize_activations\": \"rms\",");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "unknown normalize_activations 'rms'");
    write_cfg(tmp, "standard", 4, 6, "\"d_in\": 4,");
    open_bad(tmp, SAEMON_ERR_FORMAT, "duplicate key 'd_in'");
    write_text(tmp, "cfg.json", "{\"d_sae\": 6}");
    open_bad(tmp, SAEMON_ERR_FORMAT, "missing 'd_in'");
    write_text(tmp, "cfg.json", "{\"d_in\": 4, \"d_sae\": 6,}");
    open_bad(tmp, SAEMON_ERR_FORMAT, "cfg.json: not valid JSON");

    /* Corrupt the weights file itself: the safetensors error comes through. */
    write_cfg(tmp, "standard", 4, 6, NULL);
    write_text(tmp, "sae_weights.safetensors", "short");
    open_bad(tmp, SAEMON_ERR_FORMAT, "sae_weights.safetensors: file is 5 bytes");

    open_bad("/nonexistent-saemon-dir", SAEMON_ERR_IO, "/nonexistent-saemon-dir");
}

Test(dict_load, old_scaling_factor_tensor)
{
    float ones[6] = {1, 1, 1, 1, 1, 1}, other[6] = {1, 1, 2, 1, 1, 1};
    write_cfg(tmp, "standard", 4, 6, NULL);
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .scaling = ones});
    saemon_dict_close(open_ok(tmp));
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6, .scaling = other});
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "'scaling_factor' is not all ones ([2] = 2)");
}

Test(dict_load, pickle_only_directory_is_refused)
{
    write_text(tmp, "sae.pt", "\x80\x02}q\x00.");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "never unpickles");
}

Test(dict_load, empty_directory)
{
    open_bad(tmp, SAEMON_ERR_IO, "no SAE found");
    char *sub = NULL;
    cr_assert(asprintf(&sub, "%s/layers.3", tmp) > 0);
    mkdir(sub, 0700);
    write_text(sub, "cfg.json", "{}");
    open_bad(tmp, SAEMON_ERR_IO, "the subdirectory 'layers.3' holds a loadable SAE");
    free(sub);
}

/* ---- other formats, synthetic ----------------------------------------- */

Test(dict_load, sparsify_synthetic)
{
    write_text(tmp, "cfg.json",
               "{\"activation\": \"topk\", \"expansion_factor\": 2, \"num_latents\": 0, \"k\": 2, "
               "\"transcode\": true, \"d_in\": 3}");
    st_writer *w = stw_new();
    float enc[18], bias[6], dec[18], bdec[3];
    for (int i = 0; i < 18; i++)
        enc[i] = val(0, (size_t)i), dec[i] = val(1, (size_t)i);
    for (int i = 0; i < 6; i++)
        bias[i] = val(3, (size_t)i);
    for (int i = 0; i < 3; i++)
        bdec[i] = val(2, (size_t)i);
    stw_add_floats(w, "encoder.weight", "F16", (uint64_t[]){6, 3}, 2, enc);
    stw_add_floats(w, "encoder.bias", "F16", (uint64_t[]){6}, 1, bias);
    stw_add_floats(w, "W_dec", "F16", (uint64_t[]){3, 6}, 2, dec); /* [d_in, n_lat] */
    stw_add_floats(w, "b_dec", "F16", (uint64_t[]){3}, 1, bdec);
    free(stw_write(w, tmp, "sae.safetensors"));
    stw_free(w);
    saemon_dict *d = open_ok(tmp);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    cr_assert_str_eq(in->format, "sparsify");
    cr_assert_eq(in->arch, SAEMON_ARCH_TOPK);
    cr_assert_eq(in->d_in, 3);
    cr_assert_eq(in->d_sae, 6);
    cr_assert_eq(in->k, 2);
    cr_assert_not(in->apply_b_dec_to_input); /* transcoder */
    cr_assert_str_eq(in->compute_dtype, "float16");
    for (int i = 0; i < 18; i++)
        cr_assert_eq(d->W_enc_rows[i], enc[i]);
    for (int j = 0; j < 6; j++)
        for (int i = 0; i < 3; i++)
            cr_assert_eq(d->W_dec[j * 3 + i], dec[i * 6 + j]);
    saemon_dict_close(d);

    write_text(tmp, "cfg.json", "{\"activation\": \"groupmax\", \"k\": 2, \"d_in\": 3}");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "groupmax");
    write_text(tmp, "cfg.json", "{\"skip_connection\": true, \"k\": 2, \"d_in\": 3}");
    open_bad(tmp, SAEMON_ERR_UNSUPPORTED, "skip_connection");
    write_text(tmp, "cfg.json", "{\"num_latents\": 6, \"k\": 2, \"d_in\": 4}");
    open_bad(tmp, SAEMON_ERR_SHAPE, "tensor 'encoder.weight' has shape [6, 3]");
}

Test(dict_load, openai_synthetic)
{
    st_writer *w = stw_new();
    float enc[8], dec[8], lat[4], pre[2];
    for (int i = 0; i < 8; i++)
        enc[i] = val(0, (size_t)i), dec[i] = val(1, (size_t)i);
    for (int i = 0; i < 4; i++)
        lat[i] = val(3, (size_t)i);
    pre[0] = 0.5f, pre[1] = -0.5f;
    stw_add_meta(w, "activation", "TopK");
    stw_add_meta(w, "k", "2");
    stw_add_floats(w, "decoder.weight", "F32", (uint64_t[]){2, 4}, 2, dec);
    stw_add_floats(w, "encoder.weight", "F32", (uint64_t[]){4, 2}, 2, enc);
    stw_add_floats(w, "latent_bias", "F32", (uint64_t[]){4}, 1, lat);
    stw_add_floats(w, "pre_bias", "F32", (uint64_t[]){2}, 1, pre);
    stw_add_raw(w, "stats_last_nonzero", "I64", (uint64_t[]){4}, 1,
                (int64_t[]){0, 0, 0, 0}, 32);
    free(stw_write(w, tmp, "sae.safetensors"));
    saemon_dict *d = open_ok(tmp);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    cr_assert_str_eq(in->format, "openai");
    cr_assert_eq(in->arch, SAEMON_ARCH_TOPK);
    cr_assert_eq(in->k, 2);
    cr_assert_eq(in->norm, SAEMON_NORM_LAYER_NORM); /* TopK without "normalize" ⇒ LN */
    cr_assert(in->apply_b_dec_to_input);
    cr_assert_eq(d->b_dec[0], 0.5f);
    cr_assert_eq(d->b_enc[3], lat[3]);
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 2; i++)
            cr_assert_eq(d->W_dec[j * 2 + i], dec[i * 4 + j]);
    saemon_dict_close(d);
    stw_free(w);

    w = stw_new();
    stw_add_meta(w, "activation", "TopK");
    stw_add_meta(w, "k", "9");
    stw_add_floats(w, "decoder.weight", "F32", (uint64_t[]){2, 4}, 2, dec);
    stw_add_floats(w, "encoder.weight", "F32", (uint64_t[]){4, 2}, 2, enc);
    stw_add_floats(w, "latent_bias", "F32", (uint64_t[]){4}, 1, lat);
    stw_add_floats(w, "pre_bias", "F32", (uint64_t[]){2}, 1, pre);
    free(stw_write(w, tmp, "sae.safetensors"));
    stw_free(w);
    open_bad(tmp, SAEMON_ERR_FORMAT, "k must be an integer in 1..4");
}

/* ---- in-memory dictionaries ------------------------------------------- */

Test(dict_from_arrays, copies_transposes_and_hashes)
{
    float W_enc[6] = {1, 2, 3, 4, 5, 6}, W_dec[6] = {6, 5, 4, 3, 2, 1};
    float b_enc[3] = {0.5f, 0, -0.5f}, b_dec[2] = {1, -1}, thr[3] = {0.1f, 0.2f, 0.3f};
    saemon_dict_arrays a = {.name = "mine", .arch = SAEMON_ARCH_JUMPRELU, .d_in = 2, .d_sae = 3,
                            .apply_b_dec_to_input = true, .W_enc = W_enc, .W_dec = W_dec,
                            .b_enc = b_enc, .b_dec = b_dec, .threshold = thr};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    cr_assert_str_eq(in->format, "memory");
    cr_assert_str_eq(in->name, "mine");
    cr_assert_str_eq(in->path, "(memory)");
    cr_assert_eq(d->W_enc_rows[0], 1);
    cr_assert_eq(d->W_enc_rows[1], 4); /* row 0 = column 0 of W_enc [2][3] */
    cr_assert_eq(d->W_enc_rows[2], 2);
    cr_assert_eq(d->threshold[2], 0.3f);
    char sha[65];
    memcpy(sha, in->sha256, sizeof sha);
    cr_assert_eq(strlen(sha), 64);
    saemon_dict_close(d);

    /* Same arrays, same hash; one changed weight, another hash. */
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK);
    cr_assert_str_eq(saemon_dict_get_info(d)->sha256, sha);
    saemon_dict_close(d);
    thr[0] = 0.15f;
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK);
    cr_assert_str_neq(saemon_dict_get_info(d)->sha256, sha);
    saemon_dict_close(d);

    W_dec[4] = INFINITY;
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_ERR_VALUE);
    cr_assert(strstr(err.message, "W_dec has a non-finite value (inf) at [2, 0]"), "%s",
              err.message);
    cr_assert_null(d);
    W_dec[4] = 2;
    a.threshold = NULL;
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_ERR_ARG);
    cr_assert(strstr(err.message, "threshold is NULL"), "%s", err.message);
    a.arch = SAEMON_ARCH_TOPK;
    a.k = 4;
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_ERR_ARG);
    cr_assert(strstr(err.message, "k = 4"), "%s", err.message);
}

static float bf16_round(float f)
{
    uint32_t u = (uint32_t)test_f32_to_bf16(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

/* ---- the real SAEs ---------------------------------------------------- */

static const struct {
    const char *rel;
    size_t d_in, d_sae;
    saemon_arch arch;
    size_t k;
    bool apply_b_dec;
} real_saes[] = {
    {"data/sae/villes-transformer/saelens", 128, 256, SAEMON_ARCH_STANDARD, 0, true},
    {"data/sae/villes-transformer/saelens-d_model64", 64, 256, SAEMON_ARCH_STANDARD, 0, true},
    {"data/sae/resid-verif-shakespeare/saelens", 32, 64, SAEMON_ARCH_STANDARD, 0, true},
    {"data/sae/listcomp-toy/saelens", 64, 100, SAEMON_ARCH_JUMPRELU, 0, true},
    {"data/sae/listcomp-toy/saelens-k4", 64, 100, SAEMON_ARCH_JUMPRELU, 0, true},
    {"data/sae/pasttense-mlp/saelens", 256, 512, SAEMON_ARCH_TOPK, 10, false},
    {"data/sae/platonic-sae/saelens", 256, 1024, SAEMON_ARCH_STANDARD, 0, false},
    {"data/sae/othellogpt-othello_sae", 128, 128, SAEMON_ARCH_STANDARD, 0, false},
    {"data/sae/othellogpt-sparse_autoencoder_thing", 512, 512, SAEMON_ARCH_STANDARD, 0, false},
    {"data/formats/sparsify-pasttense", 256, 512, SAEMON_ARCH_TOPK, 10, true},
    {"data/formats/sparsify-pasttense-bf16", 256, 512, SAEMON_ARCH_TOPK, 10, true},
    {"data/formats/openai-villes", 128, 256, SAEMON_ARCH_STANDARD, 0, true},
    {"data/formats/openai-pasttense", 256, 512, SAEMON_ARCH_TOPK, 10, true},
    {"data/formats/openai-pasttense-ln", 256, 512, SAEMON_ARCH_TOPK, 10, true},
};

Test(real_saes, load_with_right_shape_and_arch)
{
    char *probe = test_shared_path("data/sae");
    if (!probe)
        cr_skip_test("shared SAE data not found (SAEMON_SHARED_DIR unset or missing)");
    free(probe);
    for (size_t i = 0; i < sizeof real_saes / sizeof real_saes[0]; i++) {
        char *dir = test_shared_path(real_saes[i].rel);
        cr_assert_not_null(dir, "%s missing from the shared data", real_saes[i].rel);
        saemon_dict *d = open_ok(dir);
        const saemon_dict_info *in = saemon_dict_get_info(d);
        cr_assert_eq(in->d_in, real_saes[i].d_in, "%s", real_saes[i].rel);
        cr_assert_eq(in->d_sae, real_saes[i].d_sae, "%s", real_saes[i].rel);
        cr_assert_eq(in->arch, real_saes[i].arch, "%s", real_saes[i].rel);
        cr_assert_eq(in->k, real_saes[i].k, "%s", real_saes[i].rel);
        cr_assert_eq(in->apply_b_dec_to_input, real_saes[i].apply_b_dec, "%s", real_saes[i].rel);
        saemon_dict_close(d);
        free(dir);
    }
}

Test(real_saes, identity_and_cross_format_equality)
{
    char *villes = test_shared_path("data/sae/villes-transformer/saelens");
    char *ov = test_shared_path("data/formats/openai-villes");
    char *past = test_shared_path("data/sae/pasttense-mlp/saelens");
    char *sp = test_shared_path("data/formats/sparsify-pasttense");
    char *sp16 = test_shared_path("data/formats/sparsify-pasttense-bf16");
    char *oln = test_shared_path("data/formats/openai-pasttense-ln");
    char *oth = test_shared_path("data/sae/othellogpt-othello_sae");
    if (!villes || !ov || !past || !sp || !sp16 || !oln || !oth)
        cr_skip_test("shared SAE data not found (SAEMON_SHARED_DIR unset or missing)");

    saemon_dict *a = open_ok(villes), *b = open_ok(ov);
    const saemon_dict_info *ia = saemon_dict_get_info(a);
    cr_assert_str_eq(ia->sha256,
                     "785105ac951ae4216a55e72b8d49a079f9d65a786cc77071220613b33d53dc32");
    cr_assert_str_eq(ia->name, "villes-transformer/saelens");
    cr_assert_str_eq(ia->format, "saelens");
    cr_assert_str_eq(saemon_dict_get_info(b)->format, "openai");
    cr_assert_eq(saemon_dict_get_info(b)->norm, SAEMON_NORM_NONE);
    size_t n = 128 * 256;
    cr_assert_eq(memcmp(a->W_enc_rows, b->W_enc_rows, n * 4), 0);
    cr_assert_eq(memcmp(a->W_dec, b->W_dec, n * 4), 0);
    cr_assert_eq(memcmp(a->b_enc, b->b_enc, 256 * 4), 0);
    cr_assert_eq(memcmp(a->b_dec, b->b_dec, 128 * 4), 0);
    saemon_dict_close(a);
    saemon_dict_close(b);

    /* sparsify stores W_enc.T and W_dec as-is; BF16 copy is their rounding. */
    a = open_ok(past);
    b = open_ok(sp);
    saemon_dict *c = open_ok(sp16);
    n = 256 * 512;
    cr_assert_eq(memcmp(a->W_enc_rows, b->W_enc_rows, n * 4), 0);
    cr_assert_eq(memcmp(a->W_dec, b->W_dec, n * 4), 0);
    cr_assert_eq(saemon_dict_get_info(c)->weight_dtype, SAEMON_DTYPE_BF16);
    cr_assert_str_eq(saemon_dict_get_info(c)->compute_dtype, "bfloat16");
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(c->W_enc_rows[i], bf16_round(b->W_enc_rows[i]), "i=%zu", i);
    saemon_dict_close(a);
    saemon_dict_close(b);
    saemon_dict_close(c);

    a = open_ok(oln);
    cr_assert_eq(saemon_dict_get_info(a)->norm, SAEMON_NORM_LAYER_NORM);
    saemon_dict_close(a);

    a = open_ok(oth); /* old flat SAELens 3.4 config */
    cr_assert_str_eq(saemon_dict_get_info(a)->hook_name, "blocks.0.hook_mlp_out");
    cr_assert_str_eq(saemon_dict_get_info(a)->model_name, "my-own-othello-model");
    cr_assert_not(saemon_dict_get_info(a)->apply_b_dec_to_input);
    saemon_dict_close(a);
    free(villes), free(ov), free(past), free(sp), free(sp16), free(oln), free(oth);
}

/* Issue 12 item 17: a cfg.json that is a directory or a FIFO is named as
 * such, not reported "missing" (and a FIFO is never opened). */
Test(dict_load, config_that_is_not_a_file_says_what_it_is)
{
    write_weights(tmp, &(weights_spec){.d_in = 4, .d_sae = 6});
    char *cfg = NULL;
    cr_assert(asprintf(&cfg, "%s/cfg.json", tmp) > 0);
    cr_assert_eq(mkdir(cfg, 0700), 0);
    open_bad(tmp, SAEMON_ERR_IO, "cfg.json: a directory, not a file");
    cr_assert_eq(rmdir(cfg), 0);
    cr_assert_eq(mkfifo(cfg, 0600), 0);
    open_bad(tmp, SAEMON_ERR_IO, "cfg.json: a FIFO, not a regular file");
    unlink(cfg);
    free(cfg);
}
