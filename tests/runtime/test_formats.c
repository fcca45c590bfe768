/* The public-release formats (Gemma Scope 2, Llama Scope + R1, dictionary_learning,
 * SAELens log_threshold + sparsity.safetensors):
 *   - golden: folders written in each release's layout by
 *     tests/golden/release_golden.py (generated weights, plus the real SAEs of
 *     ../shared/data/sae re-packed when present), loaded by saemon_dict_open and
 *     encoded; compared with the script's numpy re-implementation of SAELens's
 *     pretrained loader for that release; the detected format and release
 *     naming must be what case.json says;
 *   - refusals: every malformed variant gets a status and a message naming it. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/dict_internal.h"
#include "saemon/saemon.h"
#include "tests/support/golden_compare.h"
#include "tests/support/st_writer.h"
#include "tests/support/support.h"

/* ---- golden ----------------------------------------------------------- */

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    cr_assert_not_null(j, "%s: bad JSON", path);
    return j;
}

/* info must match every key case.json states. */
static void check_info(const char *name, const cJSON *c, const saemon_dict_info *in)
{
    const cJSON *v;
    cr_assert_str_eq(in->format, cJSON_GetObjectItem(c, "format")->valuestring, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "arch")))
        cr_assert_str_eq(saemon_arch_name(in->arch), v->valuestring, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "k")))
        cr_assert_eq(in->k, (size_t)v->valuedouble, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "layer")))
        cr_assert_eq(in->layer, (int)v->valuedouble, "%s: layer %d", name, in->layer);
    if ((v = cJSON_GetObjectItem(c, "width_tag")))
        cr_assert_str_eq(in->width_tag, v->valuestring, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "l0_tag")))
        cr_assert_str_eq(in->l0_tag, v->valuestring, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "hook_name")))
        cr_assert_str_eq(in->hook_name, v->valuestring, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "model_name")))
        cr_assert_str_eq(in->model_name, v->valuestring, "%s", name);
    if ((v = cJSON_GetObjectItem(c, "folded_scaling_factor")))
        cr_assert(fabs(in->folded_scaling_factor - v->valuedouble) <= 1e-12 * v->valuedouble,
                  "%s: folded %.17g, want %.17g", name, in->folded_scaling_factor, v->valuedouble);
    if ((v = cJSON_GetObjectItem(c, "n_dead_features"))) {
        cr_assert_not_null(in->log_feature_sparsity, "%s: no sparsity loaded", name);
        cr_assert_eq(in->n_dead_features, (size_t)v->valuedouble, "%s", name);
    }
}

Test(formats, releases_match_saelens_loaders_in_numpy, .timeout = 300)
{
    if (!golden_have_numpy())
        cr_skip_test("numpy not importable by $SAEMON_PYTHON (install python3-numpy)");
    char *tmp = test_tmpdir(), *shared = test_shared_path("data/sae"), *args = NULL;
    if (!shared)
        cr_log_info("../shared/data/sae not present (set SAEMON_SHARED_DIR): only generated weights");
    char *shared_root = shared ? test_shared_path("") : NULL;
    cr_assert(asprintf(&args, "generate '%s'%s%s%s", tmp, shared_root ? " --shared '" : "",
                       shared_root ? shared_root : "", shared_root ? "'" : "") > 0);
    cr_assert_eq(golden_run_python("release_golden.py", args), 0, "release_golden.py failed");
    DIR *d = opendir(tmp);
    cr_assert_not_null(d);
    struct dirent *de;
    size_t cases = 0, real = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *dir = golden_join(tmp, de->d_name), *cj = golden_join(dir, "case.json");
        cJSON *c = read_json(cj);
        char *sae = golden_join(dir, cJSON_GetObjectItem(c, "sae")->valuestring);
        char *acts = golden_join(dir, "acts.npy");
        saemon_dict *dict = NULL;
        saemon_error err = {0};
        cr_assert_eq(saemon_dict_open(sae, &dict, &err), SAEMON_OK, "%s: %s", sae, err.message);
        check_info(de->d_name, c, saemon_dict_get_info(dict));
        saemon_dict_close(dict);
        golden_stats cs = {0};
        golden_compare_case(sae, acts, dir, NULL, &cs);
        cr_assert_gt(cs.active, 0, "%s: no active features", de->d_name);
        golden_report(de->d_name, NULL, &cs);
        real += cJSON_GetObjectItem(c, "real") != NULL;
        cases++;
        cJSON_Delete(c);
        free(dir), free(cj), free(sae), free(acts);
    }
    closedir(d);
    cr_assert_geq(cases, 11, "expected at least 11 generated cases, got %zu", cases);
    if (shared)
        cr_assert_geq(real, 6, "the shared real SAEs should give 6 re-packed cases, got %zu", real);
    test_rmtree(tmp);
    free(tmp), free(args), free(shared), free(shared_root);
}

/* ---- refusals --------------------------------------------------------- */

static char *tmp;
static void setup(void) { tmp = test_tmpdir(); }
static void teardown(void)
{
    test_rmtree(tmp);
    free(tmp);
}

static void open_bad(const char *dir, saemon_status code, const char *needle)
{
    saemon_dict *d = (saemon_dict *)1;
    saemon_error err = {0};
    saemon_status st = saemon_dict_open(dir, &d, &err);
    cr_assert_eq(st, code, "%s: got %s (%s), want %s", dir, saemon_status_name(st), err.message,
                 saemon_status_name(code));
    cr_assert_null(d);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
}

static saemon_dict *open_ok(const char *dir)
{
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_open(dir, &d, &err), SAEMON_OK, "%s: %s", dir, err.message);
    return d;
}

static char *mkpath(const char *a, const char *b)
{
    char *p = golden_join(a, b);
    char *s = strdup(p);
    for (char *q = s + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(s, 0755);
            *q = '/';
        }
    mkdir(s, 0755);
    free(s);
    return p;
}

static void text(const char *dir, const char *name, const char *t)
{
    free(test_write_file(dir, name, t, strlen(t)));
}

/* A tensor of n small values (n = product of shape; rank 0 = one value). */
static void add(st_writer *w, const char *name, const uint64_t *shape, size_t nd, float v)
{
    size_t n = 1;
    for (size_t i = 0; i < nd; i++)
        n *= shape[i];
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = v + 0.01f * (float)(i % 7);
    stw_add_floats(w, name, "F32", shape, nd, a);
    free(a);
}

enum { D_IN = 4, D_SAE = 16 };
static const uint64_t IN_SAE[2] = {D_IN, D_SAE}, SAE_IN[2] = {D_SAE, D_IN}, VIN[1] = {D_IN},
                      VSAE[1] = {D_SAE};

/* Gemma Scope 2 params.safetensors; `skip` leaves a tensor out, `bad_wdec` gives w_dec a wrong shape. */
static void gs2_weights(const char *dir, const char *skip, int bad_wdec, int affine)
{
    st_writer *w = stw_new();
    const uint64_t wrong[2] = {D_SAE, D_IN + 1};
    if (!skip || strcmp(skip, "w_enc"))
        add(w, "w_enc", IN_SAE, 2, 0.1f);
    add(w, "w_dec", bad_wdec ? wrong : SAE_IN, 2, 0.1f);
    add(w, "b_enc", VSAE, 1, 0.0f);
    add(w, "b_dec", VIN, 1, 0.0f);
    if (!skip || strcmp(skip, "threshold"))
        add(w, "threshold", VSAE, 1, 0.2f);
    if (affine)
        add(w, "affine_skip_connection", (uint64_t[]){D_IN, D_IN}, 2, 0.0f);
    free(stw_write(w, dir, "params.safetensors"));
    stw_free(w);
}

static const char gs2_cfg[] = "{\"architecture\": \"jump_relu\", \"model_name\": \"gemma-v3-1b-pt\"}";

TestSuite(format_refusals, .init = setup, .fini = teardown);

Test(format_refusals, gemma_scope_2)
{
    char *ok = mkpath(tmp, "resid_post/layer_2_width_16_l0_small");
    gs2_weights(ok, NULL, 0, 0);
    text(ok, "config.json", gs2_cfg);
    saemon_dict_close(open_ok(ok));

    char *d = mkpath(tmp, "a/resid_post/layer_2_width_16_l0_small");
    gs2_weights(d, "threshold", 0, 0);
    text(d, "config.json", gs2_cfg);
    open_bad(d, SAEMON_ERR_FORMAT, "missing tensor 'threshold'");
    gs2_weights(d, NULL, 1, 0);
    open_bad(d, SAEMON_ERR_SHAPE, "tensor 'w_dec' has shape [16, 5]");
    gs2_weights(d, "w_enc", 0, 0);
    open_bad(d, SAEMON_ERR_FORMAT, "tensor 'w_enc' is absent");
    gs2_weights(d, NULL, 0, 0);
    text(d, "config.json", "{\"architecture\": \"topk\", \"model_name\": \"gemma-v3-1b-pt\"}");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "architecture 'topk' is not jump_relu");
    text(d, "config.json", "{\"architecture\": \"jump_relu\"}");
    open_bad(d, SAEMON_ERR_FORMAT, "missing 'model_name'");
    text(d, "config.json",
         "{\"architecture\": \"jump_relu\", \"model_name\": \"m\", \"hf_hook_point_in\": "
         "\"model.layers.2.pre_feedforward_layernorm.output\", \"hf_hook_point_out\": "
         "\"model.layers.2.post_feedforward_layernorm.output\"}");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "transcoder");
    text(d, "config.json", "{\"architecture\": \"jump_relu\", \"model_name\": \"m\", \"x\": 1, \"x\": 2}");
    open_bad(d, SAEMON_ERR_FORMAT, "duplicate key 'x'");
    char *cfg = golden_join(d, "config.json");
    remove(cfg);
    free(cfg);
    open_bad(d, SAEMON_ERR_IO, "config.json: missing");

    char *wide = mkpath(tmp, "resid_post/layer_2_width_32_l0_small");
    gs2_weights(wide, NULL, 0, 0);
    text(wide, "config.json", gs2_cfg);
    open_bad(wide, SAEMON_ERR_SHAPE, "the folder says width 32 (32) but w_enc has d_sae 16");

    char *tc = mkpath(tmp, "transcoder_all/layer_2_width_16_l0_small");
    gs2_weights(tc, NULL, 0, 0);
    text(tc, "config.json", gs2_cfg);
    open_bad(tc, SAEMON_ERR_UNSUPPORTED, "transcoder/crosscoder");
    char *aff = mkpath(tmp, "resid_post/layer_2_width_16_l0_small_affine");
    gs2_weights(aff, NULL, 0, 1);
    text(aff, "config.json", gs2_cfg);
    open_bad(aff, SAEMON_ERR_UNSUPPORTED, "transcoder/crosscoder");
    char *cc = mkpath(tmp, "crosscoder/layer_2_13_width_16_l0_small");
    gs2_weights(cc, NULL, 0, 0);
    text(cc, "config.json", gs2_cfg);
    open_bad(cc, SAEMON_ERR_UNSUPPORTED, "transcoder/crosscoder");

    /* Mixed formats in one folder. */
    text(ok, "params.npz", "PK");
    open_bad(ok, SAEMON_ERR_FORMAT, "mixed formats in one folder");
    free(ok), free(d), free(wide), free(tc), free(aff), free(cc);
}

static void llama_weights(const char *dir, const char *file, const char *skip, int bad_enc,
                          float log_thr)
{
    st_writer *w = stw_new();
    const uint64_t wrong[2] = {D_SAE, D_IN + 2};
    add(w, "encoder.weight", bad_enc ? wrong : SAE_IN, 2, 0.1f);
    add(w, "decoder.weight", IN_SAE, 2, 0.1f);
    add(w, "encoder.bias", VSAE, 1, 0.0f);
    if (!skip || strcmp(skip, "decoder.bias"))
        add(w, "decoder.bias", VIN, 1, 0.0f);
    if (log_thr == log_thr)
        add(w, "log_jumprelu_threshold", VSAE, 1, log_thr);
    char *sub = mkpath(dir, "checkpoints");
    free(sub);
    free(stw_write(w, dir, file));
    stw_free(w);
}

static void hyper(const char *dir, const char *extra, const char *norm)
{
    char *t = NULL;
    cr_assert(asprintf(&t,
                       "{\"d_model\": %d, \"d_sae\": %d, \"hook_point_in\": "
                       "\"blocks.7.hook_resid_post\", %s \"dataset_average_activation_norm\": %s}",
                       D_IN, D_SAE, extra, norm) > 0);
    text(dir, "hyperparams.json", t);
    free(t);
}

Test(format_refusals, llama_scope)
{
    char *d = mkpath(tmp, "Llama3_1-8B-Base-L7R-8x");
    hyper(d, "\"jump_relu_threshold\": 0.5,", "{\"in\": 4.0, \"out\": 4.0}");
    open_bad(d, SAEMON_ERR_IO, "checkpoints/final.safetensors: missing");
    llama_weights(d, "checkpoints/final.safetensors", NULL, 0, NAN);
    saemon_dict *ok = open_ok(d);
    const saemon_dict_info *in = saemon_dict_get_info(ok);
    cr_assert_eq(in->layer, 7);
    cr_assert_str_eq(in->width_tag, "8x");
    cr_assert_float_eq(in->folded_scaling_factor, 0.5, 1e-15); /* sqrt(4) / 4 */
    saemon_dict_close(ok);

    hyper(d, "\"jump_relu_threshold\": 0.5,", "null");
    open_bad(d, SAEMON_ERR_FORMAT, "'dataset_average_activation_norm' must be an object");
    hyper(d, "\"jump_relu_threshold\": 0.5, \"x\": 0,", "{\"out\": 1}");
    open_bad(d, SAEMON_ERR_FORMAT, "missing 'in'");
    hyper(d, "\"jump_relu_threshold\": 0.5,", "{\"in\": 0}");
    open_bad(d, SAEMON_ERR_VALUE, "dataset_average_activation_norm.in must be > 0");
    hyper(d, "", "{\"in\": 4.0}");
    open_bad(d, SAEMON_ERR_FORMAT, "missing 'jump_relu_threshold'");
    hyper(d, "\"jump_relu_threshold\": 0.5, \"hook_point_out\": \"blocks.7.hook_mlp_out\",",
          "{\"in\": 4.0}");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "this is a transcoder");
    text(d, "hyperparams.json", "{\"d_model\": 4, \"d_sae\": 16, \"jump_relu_threshold\": 0.5}");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "missing 'dataset_average_activation_norm'");
    hyper(d, "\"jump_relu_threshold\": 0.5,", "{\"in\": 4.0}");
    llama_weights(d, "checkpoints/final.safetensors", "decoder.bias", 0, NAN);
    open_bad(d, SAEMON_ERR_FORMAT, "missing tensor 'decoder.bias'");
    llama_weights(d, "checkpoints/final.safetensors", NULL, 1, NAN);
    open_bad(d, SAEMON_ERR_SHAPE, "tensor 'encoder.weight' has shape [16, 6], expected hyperparams.json");
    free(d);
}

Test(format_refusals, llama_scope_r1)
{
    char *d = mkpath(tmp, "OpenR1/L3R");
    text(d, "config.json",
         "{\"d_model\": 4, \"expansion_factor\": 4, \"hook_point_in\": \"blocks.3.hook_resid_post\", "
         "\"dataset_average_activation_norm\": {\"in\": 2.0}}");
    llama_weights(d, "sae_weights.safetensors", NULL, 0, -1.0f);
    saemon_dict *ok = open_ok(d);
    cr_assert_str_eq(saemon_dict_get_info(ok)->format, "llamascope_r1");
    saemon_dict_close(ok);
    llama_weights(d, "sae_weights.safetensors", NULL, 0, NAN);
    open_bad(d, SAEMON_ERR_FORMAT, "missing tensor 'log_jumprelu_threshold'");
    llama_weights(d, "sae_weights.safetensors", NULL, 0, 200.0f);
    open_bad(d, SAEMON_ERR_VALUE, "tensor 'log_jumprelu_threshold' has a non-finite value (inf) at [0] after exp()");
    llama_weights(d, "sae_weights.safetensors", NULL, 0, -1.0f);
    text(d, "config.json",
         "{\"d_model\": 4, \"expansion_factor\": 4, \"hook_point_in\": \"blocks.3.hook_resid_post\"}");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "missing 'dataset_average_activation_norm'");
    text(d, "config.json", "{\"trainer\": {}}");
    open_bad(d, SAEMON_ERR_FORMAT, "a dictionary_learning config");
    free(d);
}

static void dl_config(const char *dir, const char *cls, const char *extra)
{
    char *t = NULL;
    cr_assert(asprintf(&t,
                       "{\"trainer\": {\"dict_class\": \"%s\", \"activation_dim\": %d, "
                       "\"dict_size\": %d, \"layer\": 3, \"lm_name\": \"org/model\"%s}}",
                       cls, D_IN, D_SAE, extra) > 0);
    text(dir, "config.json", t);
    free(t);
}

Test(format_refusals, dictionary_learning)
{
    char *d = mkpath(tmp, "trainer_0");
    dl_config(d, "AutoEncoder", "");
    text(d, "ae.pt", "PK\x03\x04 pickle");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "scripts/convert_dictionary_learning.py");

    st_writer *w = stw_new();
    add(w, "encoder.weight", SAE_IN, 2, 0.1f);
    add(w, "encoder.bias", VSAE, 1, 0.0f);
    add(w, "decoder.weight", IN_SAE, 2, 0.1f);
    add(w, "bias", VIN, 1, 0.0f);
    free(stw_write(w, d, "ae.safetensors"));
    saemon_dict *ok = open_ok(d);
    cr_assert_str_eq(saemon_dict_get_info(ok)->hook_name, "blocks.3.hook_resid_post");
    cr_assert_str_eq(saemon_dict_get_info(ok)->model_name, "model");
    saemon_dict_close(ok);

    dl_config(d, "JumpReluAutoEncoder", "");
    open_bad(d, SAEMON_ERR_UNSUPPORTED, "dict_class 'JumpReluAutoEncoder' is not one SAELens loads");
    dl_config(d, "AutoEncoderTopK", "");
    open_bad(d, SAEMON_ERR_FORMAT, "missing 'trainer.k'");
    dl_config(d, "AutoEncoderTopK", ", \"k\": 17");
    open_bad(d, SAEMON_ERR_FORMAT, "trainer.k must be an integer in 1..dict_size (16)");
    dl_config(d, "GatedAutoEncoder", "");
    open_bad(d, SAEMON_ERR_FORMAT, "missing tensor 'gate_bias'");
    text(d, "config.json", "{\"buffer\": {}}");
    open_bad(d, SAEMON_ERR_FORMAT, "no 'trainer' object");
    dl_config(d, "AutoEncoder", "");
    add(w, "b_dec", VIN, 1, 0.0f);
    free(stw_write(w, d, "ae.safetensors"));
    open_bad(d, SAEMON_ERR_FORMAT, "tensors 'b_dec' and 'bias' both give b_dec");
    stw_free(w);

    /* Mixed formats: another format's weights in the same folder. */
    text(d, "sae_weights.safetensors", "x");
    open_bad(d, SAEMON_ERR_FORMAT, "mixed formats in one folder");
    free(d);
}

static void saelens_jumprelu(const char *dir, int both, int bad_log)
{
    text(dir, "cfg.json",
         "{\"d_in\": 4, \"d_sae\": 16, \"architecture\": \"jumprelu\", \"metadata\": "
         "{\"sae_lens_version\": \"6.1.0\"}}");
    st_writer *w = stw_new();
    add(w, "W_enc", IN_SAE, 2, 0.1f);
    add(w, "W_dec", SAE_IN, 2, 0.1f);
    add(w, "b_enc", VSAE, 1, 0.0f);
    add(w, "b_dec", VIN, 1, 0.0f);
    add(w, "log_threshold", bad_log ? VIN : VSAE, 1, -2.0f);
    if (both)
        add(w, "threshold", VSAE, 1, 0.1f);
    free(stw_write(w, dir, "sae_weights.safetensors"));
    stw_free(w);
}

static void sparsity(const char *dir, const uint64_t *shape, float v)
{
    st_writer *w = stw_new();
    add(w, "sparsity", shape, 1, v);
    free(stw_write(w, dir, "sparsity.safetensors"));
    stw_free(w);
}

Test(format_refusals, saelens_log_threshold_and_sparsity)
{
    saelens_jumprelu(tmp, 0, 0);
    saemon_dict *ok = open_ok(tmp);
    cr_assert_null(saemon_dict_get_info(ok)->log_feature_sparsity);
    cr_assert(!saemon_dict_is_feature_dead(ok, 0));
    saemon_dict_close(ok);
    saelens_jumprelu(tmp, 1, 0);
    open_bad(tmp, SAEMON_ERR_FORMAT, "tensors 'threshold' and 'log_threshold' both give threshold");
    saelens_jumprelu(tmp, 0, 1);
    open_bad(tmp, SAEMON_ERR_SHAPE, "tensor 'log_threshold' has shape [4]");

    saelens_jumprelu(tmp, 0, 0);
    sparsity(tmp, VSAE, -10.0f);
    ok = open_ok(tmp);
    const saemon_dict_info *in = saemon_dict_get_info(ok);
    cr_assert_not_null(in->log_feature_sparsity);
    /* values -10 + 0.01 * (i % 7): the i % 7 == 0 ones are dead. */
    cr_assert_eq(in->n_dead_features, 3);
    float v = 0;
    cr_assert(saemon_dict_get_feature_log_sparsity(ok, 1, &v));
    cr_assert_float_eq(v, -9.99f, 1e-5);
    cr_assert(saemon_dict_is_feature_dead(ok, 7));
    cr_assert(!saemon_dict_is_feature_dead(ok, 8));
    cr_assert(!saemon_dict_get_feature_log_sparsity(ok, 16, &v));
    saemon_dict_close(ok);
    sparsity(tmp, VIN, -3.0f);
    open_bad(tmp, SAEMON_ERR_SHAPE, "sparsity.safetensors: tensor 'sparsity' has shape [4]");
    sparsity(tmp, VSAE, 0.5f);
    open_bad(tmp, SAEMON_ERR_VALUE, "is not a log10 firing fraction");
    sparsity(tmp, VSAE, NAN);
    open_bad(tmp, SAEMON_ERR_VALUE, "is not a log10 firing fraction");
}

/* ---- scripts/convert_dictionary_learning.py --------------------------- */

/* torch.save a dictionary_learning AutoEncoder state dict (one tensor in
 * bfloat16), convert it, load it: every value lands where SAELens puts it. */
Test(format_refusals, converter_writes_what_saemon_loads, .timeout = 120)
{
    const char *py = getenv("SAEMON_PYTHON"), *src = getenv("SAEMON_SOURCE_DIR");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s' -c 'import torch' 2>/dev/null", py ? py : "/usr/bin/python3") > 0);
    int have_torch = system(cmd) == 0;
    free(cmd);
    if (!have_torch)
        cr_skip_test("torch not importable by $SAEMON_PYTHON: converter test skipped");
    char *d = mkpath(tmp, "trainer_0");
    dl_config(d, "AutoEncoder", "");
    cr_assert(asprintf(&cmd,
                       "cd '%s' && '%s' -c 'import torch\n"
                       "v = lambda n: torch.arange(n, dtype=torch.float32) * 0.25 - 2\n"
                       "torch.save({\"encoder.weight\": v(64).reshape(16, 4), "
                       "\"encoder.bias\": v(16), \"decoder.weight\": v(64).reshape(4, 16).to(torch.bfloat16), "
                       "\"bias\": v(4)}, \"ae.pt\")' && '%s' '%s/scripts/convert_dictionary_learning.py' ae.pt "
                       ">/dev/null",
                       d, py ? py : "/usr/bin/python3", py ? py : "/usr/bin/python3", src ? src : ".") > 0);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    free(cmd);
    saemon_dict *dict = open_ok(d);
    const saemon_dict_info *in = saemon_dict_get_info(dict);
    cr_assert_eq(in->weight_dtype, SAEMON_DTYPE_F32);
    for (size_t j = 0; j < D_SAE; j++) {
        cr_assert_eq(dict->b_enc[j], (float)j * 0.25f - 2, "b_enc[%zu]", j);
        for (size_t i = 0; i < D_IN; i++) {
            /* encoder.weight [d_sae, d_in] is already the row layout;
             * decoder.weight [d_in, d_sae] is SAELens' W_dec transposed. */
            cr_assert_eq(dict->W_enc_rows[j * D_IN + i], (float)(j * D_IN + i) * 0.25f - 2);
            cr_assert_eq(dict->W_dec[j * D_IN + i], (float)(i * D_SAE + j) * 0.25f - 2);
        }
    }
    for (size_t i = 0; i < D_IN; i++)
        cr_assert_eq(dict->b_dec[i], (float)i * 0.25f - 2);
    saemon_dict_close(dict);
    /* Converted once: a second run refuses to overwrite. */
    cr_assert(asprintf(&cmd, "'%s' '%s/scripts/convert_dictionary_learning.py' '%s/ae.pt' 2>/dev/null",
                       py ? py : "/usr/bin/python3", src ? src : ".", d) > 0);
    cr_assert_neq(system(cmd), 0);
    free(cmd);
    free(d);
}

/* ---- saemon inspect --------------------------------------------------- */

static char *run_inspect(const char *dir)
{
    const char *cli = getenv("SAEMON_CLI");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s' inspect '%s' 2>&1", cli ? cli : "saemon", dir) > 0);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0, "%s:\n%s", cmd, out);
    free(cmd);
    return out;
}

Test(format_refusals, inspect_prints_format_release_and_density)
{
    if (!getenv("SAEMON_CLI"))
        cr_skip_test("SAEMON_CLI not set (run under meson test)");
    char *d = mkpath(tmp, "mlp_out/layer_9_width_16_l0_big");
    gs2_weights(d, NULL, 0, 0);
    text(d, "config.json", gs2_cfg);
    const char *out = run_inspect(d);
    cr_assert(strstr(out, "format         gemmascope2 (Gemma Scope 2 (Gemma 3): config.json + "
                          "params.safetensors)"), "%s", out);
    cr_assert(strstr(out, "release        layer 9, width 16, L0 big"), "%s", out);
    cr_assert(strstr(out, "hook           blocks.9.hook_mlp_out"), "%s", out);
    cr_assert(strstr(out, "model          google/gemma-3-1b-pt"), "%s", out);

    char *s = mkpath(tmp, "saelens");
    saelens_jumprelu(s, 0, 0);
    sparsity(s, VSAE, -10.0f);
    out = run_inspect(s);
    cr_assert(strstr(out, "3 of 16 features never fired (sparsity.safetensors)"), "%s", out);
    free(d), free(s);
}

/* scripts/convert_pickle_release.py: a Goodfire-layout pickle becomes the
 * SAELens folder SAELens's goodfire loader builds (W_enc = encoder_linear.weight.T, ...). */
Test(format_refusals, goodfire_converter_builds_the_saelens_state_dict, .timeout = 120)
{
    const char *py = getenv("SAEMON_PYTHON"), *src = getenv("SAEMON_SOURCE_DIR");
    if (!py)
        py = "/usr/bin/python3";
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s' -c 'import torch' 2>/dev/null", py) > 0);
    int have_torch = system(cmd) == 0;
    free(cmd);
    if (!have_torch)
        cr_skip_test("torch not importable by $SAEMON_PYTHON: converter test skipped");
    cr_assert(asprintf(&cmd,
                       "cd '%s' && '%s' -c 'import torch\n"
                       "v = lambda n: torch.arange(n, dtype=torch.float32) * 0.5 - 3\n"
                       "torch.save({\"encoder_linear.weight\": v(64).reshape(16, 4), "
                       "\"encoder_linear.bias\": v(16), \"decoder_linear.weight\": v(64).reshape(4, 16), "
                       "\"decoder_linear.bias\": v(4)}, \"Llama-3.1-8B-Instruct-SAE-l19.pth\")'",
                       tmp, py) > 0);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    free(cmd);
    /* The release's own sizes are 4096 x 65536: a small file is refused... */
    cr_assert(asprintf(&cmd, "cd '%s' && '%s' '%s/scripts/convert_pickle_release.py' "
                             "Llama-3.1-8B-Instruct-SAE-l19.pth out 2>/dev/null >/dev/null",
                       tmp, py, src ? src : ".") > 0);
    cr_assert_neq(system(cmd), 0, "a shape mismatch must be refused");
    free(cmd);
    /* ...unless the sizes are given. */
    cr_assert(asprintf(&cmd, "cd '%s' && '%s' '%s/scripts/convert_pickle_release.py' --shape 4 16 "
                             "Llama-3.1-8B-Instruct-SAE-l19.pth out >/dev/null",
                       tmp, py, src ? src : ".") > 0);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    free(cmd);
    char *out = golden_join(tmp, "out");
    saemon_dict *dict = open_ok(out);
    const saemon_dict_info *in = saemon_dict_get_info(dict);
    cr_assert_str_eq(in->format, "saelens");
    cr_assert_eq(in->arch, SAEMON_ARCH_STANDARD);
    cr_assert(!in->apply_b_dec_to_input);
    cr_assert_str_eq(in->hook_name, "blocks.19.hook_resid_post");
    cr_assert_str_eq(in->model_name, "meta-llama/Llama-3.1-8B-Instruct");
    for (size_t j = 0; j < D_SAE; j++) {
        cr_assert_eq(dict->b_enc[j], (float)j * 0.5f - 3);
        for (size_t i = 0; i < D_IN; i++) {
            cr_assert_eq(dict->W_enc_rows[j * D_IN + i], (float)(j * D_IN + i) * 0.5f - 3);
            cr_assert_eq(dict->W_dec[j * D_IN + i], (float)(i * D_SAE + j) * 0.5f - 3);
        }
    }
    for (size_t i = 0; i < D_IN; i++)
        cr_assert_eq(dict->b_dec[i], (float)i * 0.5f - 3);
    saemon_dict_close(dict);
    free(out);
}
