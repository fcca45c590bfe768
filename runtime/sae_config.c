/* cfg.json readers. SAELens pre-6.0 flat configs are upgraded like
 * handle_pre_6_0_config (docs/formats.md); anything saemon cannot run
 * faithfully is refused with a message rather than guessed. */
#include "runtime/sae_config.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/read_file.h"
#include "runtime/safetensors.h"

#define MAX_JSON_INT 9007199254740992.0

cJSON *cfg_parse_object(const char *text, size_t len, const char *label, saemon_error *err,
                        saemon_status *st)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        *st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: not valid JSON (near byte %zu)",
                               label, at);
        return NULL;
    }
    for (const char *p = end; p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            *st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                                   "%s: extra bytes after the JSON value (byte %zu)", label,
                                   (size_t)(p - text));
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        *st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: top level is not a JSON object",
                               label);
        cJSON_Delete(root);
        return NULL;
    }
    *st = st_json_unique_keys(root, label, "the top level", err);
    if (*st) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Key lookup, case-sensitive, in the top level first and then in metadata. */
static const cJSON *get(const cJSON *root, const cJSON *meta, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v && meta)
        v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return v;
}

/* Optional non-negative integer: 1 = present, 0 = absent/null, -1 = wrong type. */
static int get_uint(const cJSON *v, uint64_t *out)
{
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= MAX_JSON_INT) || d != (double)(uint64_t)d)
        return -1;
    *out = (uint64_t)d;
    return 1;
}

saemon_status cfg_need_size(const cJSON *v, const char *label, const char *key, size_t *out,
                            saemon_error *err)
{
    uint64_t u = 0;
    int r = get_uint(v, &u);
    if (r == 0)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: missing '%s'", label, key);
    if (r < 0 || u == 0 || u > SIZE_MAX)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: '%s' must be a positive integer",
                                label, key);
    *out = (size_t)u;
    return SAEMON_OK;
}

static saemon_status opt_bool(const cJSON *v, const char *label, const char *key, bool dflt,
                              bool *out, saemon_error *err)
{
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return SAEMON_OK;
    }
    if (!cJSON_IsBool(v))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: '%s' must be true or false", label,
                                key);
    *out = cJSON_IsTrue(v);
    return SAEMON_OK;
}

/* Optional string copied into *out (NULL when absent); wrong type is an error. */
saemon_status cfg_opt_string(const cJSON *v, const char *label, const char *key, char **out,
                             saemon_error *err)
{
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return SAEMON_OK;
    if (!cJSON_IsString(v))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: '%s' must be a string", label, key);
    *out = strdup(v->valuestring);
    if (!*out)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", label);
    return SAEMON_OK;
}

/* sae_lens_version (top level or metadata) missing or < 6.0.0-rc.0 ⇒ old format. */
static bool is_old_format(const cJSON *root, const cJSON *meta)
{
    const cJSON *v = get(root, meta, "sae_lens_version");
    if (!cJSON_IsString(v))
        return true;
    return strtol(v->valuestring, NULL, 10) < 6;
}

static const char *const known_dtypes[] = {
    "float32", "float64", "float16", "bfloat16",
    "torch.float32", "torch.float64", "torch.float16", "torch.bfloat16",
};

static saemon_status parse_norm(sae_config *c, const cJSON *v, const char *label,
                                saemon_error *err)
{
    const char *s = "none";
    if (c->old_format && cJSON_IsBool(v))
        s = cJSON_IsTrue(v) ? "expected_average_only_in" : "none";
    else if (cJSON_IsString(v))
        s = v->valuestring;
    else if (v && !cJSON_IsNull(v))
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: 'normalize_activations' must be a string", label);
    if (!strcmp(s, "none"))
        c->norm = SAEMON_NORM_NONE;
    else if (!strcmp(s, "constant_norm_rescale"))
        c->norm = SAEMON_NORM_CONSTANT_NORM_RESCALE;
    else if (!strcmp(s, "layer_norm"))
        c->norm = SAEMON_NORM_LAYER_NORM;
    else if (!strcmp(s, "expected_average_only_in"))
        c->norm = SAEMON_NORM_NONE, c->needs_scaling_factor = true;
    else
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: unknown normalize_activations '%.64s' (known: none, "
                                "expected_average_only_in, constant_norm_rescale, layer_norm)",
                                label, s);
    c->normalize_activations = strdup(s);
    return c->normalize_activations
               ? SAEMON_OK
               : saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", label);
}

/* Architecture, plus the old activation_fn/activation_fn_kwargs route to topk. */
static saemon_status parse_arch(sae_config *c, const cJSON *root, const cJSON *meta,
                                const char *label, saemon_error *err)
{
    const cJSON *v = get(root, meta, "architecture");
    const char *arch = "standard";
    if (cJSON_IsString(v))
        arch = v->valuestring;
    else if (v && !cJSON_IsNull(v))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: 'architecture' must be a string",
                                label);
    uint64_t k = 100; /* SAELens TopKSAEConfig default */
    bool have_k = false;
    if (c->old_format) {
        const cJSON *fn = get(root, meta, "activation_fn");
        if (!fn)
            fn = get(root, meta, "activation_fn_str");
        const char *fname = cJSON_IsString(fn) ? fn->valuestring : "relu";
        if (!strcmp(fname, "topk")) {
            const cJSON *kw = get(root, meta, "activation_fn_kwargs");
            const cJSON *kv = cJSON_IsObject(kw) ? cJSON_GetObjectItemCaseSensitive(kw, "k") : NULL;
            if (!kv)
                return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                        "%s: activation_fn 'topk' without activation_fn_kwargs.k",
                                        label);
            if (get_uint(kv, &k) != 1)
                return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                        "%s: activation_fn_kwargs.k must be an integer in 1..d_sae "
                                        "(%zu)",
                                        label, c->d_sae);
            have_k = true;
            arch = "topk";
        } else if (strcmp(fname, "relu") != 0) {
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "%s: activation_fn '%.64s' is not supported (relu or topk)",
                                    label, fname);
        }
    }
    if (!strcmp(arch, "standard"))
        c->arch = SAEMON_ARCH_STANDARD;
    else if (!strcmp(arch, "jumprelu"))
        c->arch = SAEMON_ARCH_JUMPRELU;
    else if (!strcmp(arch, "gated"))
        c->arch = SAEMON_ARCH_GATED;
    else if (!strcmp(arch, "topk"))
        c->arch = SAEMON_ARCH_TOPK;
    else
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: unknown architecture '%.64s' (saemon supports standard, "
                                "jumprelu, gated, topk)",
                                label, arch);
    if (c->arch != SAEMON_ARCH_TOPK)
        return SAEMON_OK;
    if (!have_k) {
        const cJSON *kv = get(root, meta, "k");
        if (kv && get_uint(kv, &k) != 1)
            k = 0; /* reported below */
    }
    if (k < 1 || k > c->d_sae)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: k must be an integer in 1..d_sae (%zu)", label, c->d_sae);
    c->k = (size_t)k;
    return opt_bool(get(root, meta, "rescale_acts_by_decoder_norm"), label,
                    "rescale_acts_by_decoder_norm", false, &c->rescale_acts_by_decoder_norm, err);
}

static saemon_status parse_saelens(sae_config *c, const cJSON *root, const char *label,
                                   saemon_error *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (meta && !cJSON_IsObject(meta))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: 'metadata' must be an object",
                                label);
    if (meta) {
        saemon_status st = st_json_unique_keys(meta, label, "metadata", err);
        if (st)
            return st;
    }
    c->old_format = is_old_format(root, meta);
    saemon_status st;
    if ((st = cfg_need_size(get(root, meta, "d_in"), label, "d_in", &c->d_in, err)) ||
        (st = cfg_need_size(get(root, meta, "d_sae"), label, "d_sae", &c->d_sae, err)) ||
        (st = opt_bool(get(root, meta, "apply_b_dec_to_input"), label, "apply_b_dec_to_input",
                       true, &c->apply_b_dec_to_input, err)) ||
        (st = parse_arch(c, root, meta, label, err)) ||
        (st = parse_norm(c, get(root, meta, "normalize_activations"), label, err)))
        return st;

    /* Identity strings; old configs call the hook "hook_point". */
    const cJSON *hook = get(root, meta, "hook_name");
    if ((!hook || cJSON_IsNull(hook)) && c->old_format)
        hook = get(root, meta, "hook_point");
    if ((st = cfg_opt_string(hook, label, "hook_name", &c->hook_name, err)) ||
        (st = cfg_opt_string(get(root, meta, "model_name"), label, "model_name", &c->model_name,
                         err)) ||
        (st = cfg_opt_string(get(root, meta, "neuronpedia_id"), label, "neuronpedia_id",
                         &c->neuronpedia_id, err)) ||
        (st = cfg_opt_string(get(root, meta, "dtype"), label, "dtype", &c->dtype, err)))
        return st;

    if (!c->dtype && !(c->dtype = strdup("float32")))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", label);
    size_t i;
    for (i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
        if (!strcmp(c->dtype, known_dtypes[i]))
            break;
    if (i == sizeof known_dtypes / sizeof known_dtypes[0])
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: unknown dtype '%.64s' (float32, float64, float16, bfloat16)",
                                label, c->dtype);

    const cJSON *reshape = get(root, meta, "reshape_activations");
    if (cJSON_IsString(reshape)) {
        if (!strcmp(reshape->valuestring, "hook_z"))
            c->reshape_hook_z = true;
        else if (strcmp(reshape->valuestring, "none") != 0)
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "%s: unknown reshape_activations '%.64s' (none or hook_z)",
                                    label, reshape->valuestring);
    } else if (reshape && !cJSON_IsNull(reshape)) {
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: 'reshape_activations' must be a string", label);
    } else if (c->old_format) {
        c->reshape_hook_z = c->hook_name && strstr(c->hook_name, "hook_z");
    }
    return SAEMON_OK;
}

saemon_status sae_config_parse(const char *text, size_t len, const char *label, sae_config *out,
                               saemon_error *err)
{
    memset(out, 0, sizeof *out);
    saemon_status st;
    cJSON *root = cfg_parse_object(text, len, label, err, &st);
    if (!root)
        return st;
    st = parse_saelens(out, root, label, err);
    cJSON_Delete(root);
    if (st)
        sae_config_free(out);
    return st;
}

void sae_config_free(sae_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->normalize_activations);
    free(cfg->dtype);
    free(cfg->hook_name);
    free(cfg->model_name);
    free(cfg->neuronpedia_id);
    memset(cfg, 0, sizeof *cfg);
}

static saemon_status parse_sparsify(sparsify_config *c, const cJSON *root, const char *label,
                                    saemon_error *err)
{
    saemon_status st = cfg_need_size(cJSON_GetObjectItemCaseSensitive(root, "d_in"), label, "d_in",
                                 &c->d_in, err);
    if (st)
        return st;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation");
    const char *a = cJSON_IsString(act) ? act->valuestring : act ? NULL : "topk";
    if (!a)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: 'activation' must be a string",
                                label);
    if (!strcmp(a, "groupmax"))
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: sparsify activation 'groupmax' is not supported (only topk)",
                                label);
    if (strcmp(a, "topk") != 0)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: unknown sparsify activation '%.64s' (only topk)", label, a);
    bool skip = false, is_signed = false;
    if ((st = opt_bool(cJSON_GetObjectItemCaseSensitive(root, "skip_connection"), label,
                       "skip_connection", false, &skip, err)) ||
        (st = opt_bool(cJSON_GetObjectItemCaseSensitive(root, "signed"), label, "signed", false,
                       &is_signed, err)) ||
        (st = opt_bool(cJSON_GetObjectItemCaseSensitive(root, "transcode"), label, "transcode",
                       false, &c->transcode, err)))
        return st;
    if (skip)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: sparsify skip_connection (W_skip) is not supported", label);
    if (is_signed)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: signed sparsify SAEs are not supported", label);

    uint64_t n_lat = 0, expansion = 32, k = 32;
    if (get_uint(cJSON_GetObjectItemCaseSensitive(root, "num_latents"), &n_lat) < 0 ||
        get_uint(cJSON_GetObjectItemCaseSensitive(root, "expansion_factor"), &expansion) < 0)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: num_latents and expansion_factor must be non-negative "
                                "integers",
                                label);
    if (n_lat == 0 && __builtin_mul_overflow((uint64_t)c->d_in, expansion, &n_lat))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: d_in x expansion_factor overflows",
                                label);
    if (n_lat == 0 || n_lat > SIZE_MAX)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: number of latents must be positive",
                                label);
    c->num_latents = (size_t)n_lat;
    if (get_uint(cJSON_GetObjectItemCaseSensitive(root, "k"), &k) < 0 || k < 1 || k > n_lat)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: k must be an integer in 1..num_latents (%llu)", label,
                                (unsigned long long)n_lat);
    c->k = (size_t)k;
    return SAEMON_OK;
}

saemon_status sparsify_config_parse(const char *text, size_t len, const char *label,
                                    sparsify_config *out, saemon_error *err)
{
    memset(out, 0, sizeof *out);
    saemon_status st;
    cJSON *root = cfg_parse_object(text, len, label, err, &st);
    if (!root)
        return st;
    st = parse_sparsify(out, root, label, err);
    cJSON_Delete(root);
    return st;
}

/* Config files are small; refuse anything absurd before reading it. */
#define MAX_JSON_FILE_BYTES (16u << 20)

saemon_status cfg_read_file(const char *path, char **text, size_t *len, saemon_error *err)
{
    return read_whole_file(path, MAX_JSON_FILE_BYTES, "config file", text, len, err);
}

saemon_status cfg_read_object(const char *path, cJSON **root, size_t *bytes, saemon_error *err)
{
    char *text = NULL;
    size_t len = 0;
    saemon_status st = cfg_read_file(path, &text, &len, err);
    if (st)
        return st;
    *root = cfg_parse_object(text, len, path, err, &st);
    free(text);
    if (bytes)
        *bytes = len;
    return *root ? SAEMON_OK : st;
}
