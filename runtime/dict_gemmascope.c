/* Gemma Scope params.npz: five .npy arrays in a zip, JumpReLU, no input
 * centring (SAELens gemma_2_sae_huggingface_loader + get_gemma_2_config_from_hf).
 * Every member's header is read and its declared size checked against the
 * shapes before any array data is inflated. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/read_file.h"
#include "runtime/dict_internal.h"
#include "runtime/dict_spec.h"
#include "runtime/gemmascope.h"
#include "runtime/half.h"
#include "runtime/npy_internal.h"
#include "runtime/npz.h"
#include "base/sha256.h"

/* Above this size a member must not compress better than SUSPICIOUS_RATIO:
 * trained float weights barely compress (~1.1:1), a bomb compresses ~1000:1. */
#define BOMB_MIN_BYTES (16u << 20)
#define SUSPICIOUS_RATIO 100u

enum { A_W_ENC, A_W_DEC, A_THRESHOLD, A_B_ENC, A_B_DEC, A_SCALING, N_ARRAYS };
static const char *const array_names[N_ARRAYS] = {"W_enc", "W_dec", "threshold",
                                                  "b_enc", "b_dec", "scaling_factor"};

typedef struct member_plan {
    const npz_member *m; /* NULL when absent */
    npy_header h;
    size_t data_offset;
} member_plan;

/* ---- the path convention ---------------------------------------------- */

typedef struct path_facts {
    char name[256];        /* layer_L/width_W/average_l0_N, else folder tail */
    long layer;            /* -1 unknown */
    unsigned long long width; /* 0 unknown */
    int embedding;         /* an embedding/ SAE: SAELens rescales by sqrt(d_in) */
    char hook[64];         /* "" unknown */
    char model[64];        /* "" unknown */
    char width_tag[16];    /* "16k"; "" unknown */
    char l0_tag[64];       /* the L0 folder, "average_l0_82"; "" unknown */
    int hook_z;
} path_facts;

static int parse_ulong(const char *s, unsigned long long *v, const char **end)
{
    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *e;
    *v = strtoull(s, &e, 10);
    *end = e;
    return errno == 0;
}

/* "16k" = 16384, "1m" = 1048576, "100" = 100 (Gemma Scope folder widths). */
static int parse_width(const char *s, unsigned long long *w)
{
    const char *e;
    if (!parse_ulong(s, w, &e))
        return 0;
    int shift = *e == 'k' ? 10 : *e == 'm' ? 20 : 0;
    if (shift)
        e++;
    if (*e || *w > (1ull << 40))
        return 0;
    *w <<= shift;
    return 1;
}

/* hook and model from a repo folder like gemma-scope-2b-pt-res (also inside
 * a Hugging Face cache name, models--google--gemma-scope-9b-it-res). */
static void repo_facts(const char *comp, path_facts *pf)
{
    const char *g = strstr(comp, "gemma-scope-");
    if (!g)
        return;
    g += strlen("gemma-scope-");
    size_t sz = strcspn(g, "-");
    if (sz == 0 || sz > 8)
        return;
    snprintf(pf->model, sizeof pf->model, "gemma-2-%.*s%s", (int)sz, g,
             strstr(g, "-it-") ? "-it" : "");
    const char *kind = strrchr(g, '-');
    if (pf->embedding)
        snprintf(pf->hook, sizeof pf->hook, "hook_embed");
    else if (pf->layer < 0)
        return;
    else if (!strcmp(kind, "-res"))
        snprintf(pf->hook, sizeof pf->hook, "blocks.%ld.hook_resid_post", pf->layer);
    else if (!strcmp(kind, "-mlp"))
        snprintf(pf->hook, sizeof pf->hook, "blocks.%ld.hook_mlp_out", pf->layer);
    else if (!strcmp(kind, "-att")) {
        snprintf(pf->hook, sizeof pf->hook, "blocks.%ld.attn.hook_z", pf->layer);
        pf->hook_z = 1;
    }
}

/* Split the canonical directory of the npz into components and look for
 * .../<repo>/(layer_L|embedding)/width_W/<l0 folder>/params.npz. */
static void parse_path(const char *npz_path, path_facts *pf)
{
    memset(pf, 0, sizeof *pf);
    pf->layer = -1;
    char *real = realpath(npz_path, NULL);
    char *s = strdup(real ? real : npz_path);
    free(real);
    if (!s)
        return;
    const char *comp[64];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(s, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 64)
            memmove(comp, comp + 1, --n * sizeof *comp);
        comp[n++] = t;
    }
    const char *file = n ? comp[--n] : "params.npz";
    unsigned long long v;
    const char *e;
    if (n >= 3 && !strncmp(comp[n - 2], "width_", 6) && parse_width(comp[n - 2] + 6, &pf->width)) {
        const char *lay = comp[n - 3];
        if (!strcmp(lay, "embedding"))
            pf->embedding = 1;
        else if (!strncmp(lay, "layer_", 6) && parse_ulong(lay + 6, &v, &e) && !*e && v < 100000)
            pf->layer = (long)v;
        if (pf->embedding || pf->layer >= 0) {
            snprintf(pf->name, sizeof pf->name, "%s/%s/%s", lay, comp[n - 2], comp[n - 1]);
            snprintf(pf->width_tag, sizeof pf->width_tag, "%.15s", comp[n - 2] + 6);
            snprintf(pf->l0_tag, sizeof pf->l0_tag, "%.63s", comp[n - 1]);
            for (size_t i = n - 3; i-- > 0;)
                if (strstr(comp[i], "gemma-scope-")) {
                    repo_facts(comp[i], pf);
                    break;
                }
        } else {
            pf->width = 0;
        }
    }
    if (!pf->name[0]) {
        /* Like the other formats: the folder's last two components; a file
         * not called params.npz is named by its stem. */
        size_t fl = strlen(file);
        int is_params = !strcmp(file, "params.npz");
        if (fl > 4 && !strcmp(file + fl - 4, ".npz"))
            fl -= 4;
        if (is_params && n >= 2)
            snprintf(pf->name, sizeof pf->name, "%s/%s", comp[n - 2], comp[n - 1]);
        else
            snprintf(pf->name, sizeof pf->name, "%s%s%.*s", n ? comp[n - 1] : "",
                     n ? "/" : "", (int)fl, file);
    }
    free(s);
}

/* ---- members ---------------------------------------------------------- */

/* SAELens: `k.startswith("w_")` becomes "W_" + rest; np.load drops ".npy". */
static int array_index(const char *member)
{
    size_t n = strlen(member);
    if (n < 5 || strcmp(member + n - 4, ".npy"))
        return -1;
    char key[NPZ_MAX_NAME];
    memcpy(key, member, n - 4);
    key[n - 4] = 0;
    if (key[0] == 'w' && key[1] == '_')
        key[0] = 'W';
    for (int i = 0; i < N_ARRAYS; i++)
        if (!strcmp(key, array_names[i]))
            return i;
    return -1;
}

static saemon_status assign_members(const npz_archive *a, member_plan *plan, saemon_error *err)
{
    for (size_t i = 0; i < a->n_members; i++) {
        const npz_member *m = &a->members[i];
        int k = array_index(m->name);
        if (k < 0)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: unexpected member '%s' (a Gemma Scope params.npz holds "
                                    "W_enc, W_dec, threshold, b_enc, b_dec and optionally "
                                    "scaling_factor, each as NAME.npy)",
                                    a->label, m->name);
        if (plan[k].m)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: members '%s' and '%s' both give array '%s'", a->label,
                                    plan[k].m->name, m->name, array_names[k]);
        plan[k].m = m;
    }
    for (int k = 0; k < A_SCALING; k++)
        if (!plan[k].m)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: missing array '%s' (member %s.npy)", a->label,
                                    array_names[k], array_names[k]);
    return SAEMON_OK;
}

/* Read and parse member k's .npy header (at most the header is inflated);
 * check its shape (when `dims` is given) and that the member's declared size
 * is exactly the header plus the data that shape needs. */
static saemon_status plan_member(npz_archive *a, member_plan *p, const char *what,
                                 const size_t *dims, size_t nd, saemon_error *err)
{
    const npz_member *m = p->m;
    char label[1200];
    snprintf(label, sizeof label, "%s: %s", a->label, m->name);
    size_t want = 12 + SAEMON_NPY_MAX_HEADER_LEN;
    if (m->size < want)
        want = (size_t)m->size;
    char *prefix = malloc(want ? want : 1);
    if (!prefix)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", label);
    size_t total = 0;
    saemon_status st = npz_read_prefix(a, m, prefix, want, err);
    if (!st)
        st = saemon_npy_parse_prefix(prefix, want, label, &p->h, &p->data_offset, &total, err);
    free(prefix);
    if (st)
        return st;
    if (dims) {
        int ok = p->h.ndim == nd;
        for (size_t i = 0; ok && i < nd; i++)
            ok = p->h.shape[i] == dims[i];
        if (!ok) {
            char got[128], exp[128];
            dict_dims_str(p->h.shape, p->h.ndim, got, sizeof got);
            dict_dims_str(dims, nd, exp, sizeof exp);
            return saemon_error_set(err, SAEMON_ERR_SHAPE, "%s: shape %s, expected %s = %s",
                                    label, got, what, exp);
        }
    }
    if (total != m->size)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: the zip entry declares %llu uncompressed bytes but its .npy "
                                "header implies %zu; refusing before inflating it",
                                label, (unsigned long long)m->size, total);
    if (m->method != 0 && m->size > BOMB_MIN_BYTES && m->size / SUSPICIOUS_RATIO > m->comp_size)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: %llu bytes deflated to %llu (over %u:1) is not float weight "
                                "data; refusing a likely zip bomb",
                                label, (unsigned long long)m->size,
                                (unsigned long long)m->comp_size, SUSPICIOUS_RATIO);
    return SAEMON_OK;
}

/* Inflate member p, parse it with the .npy reader and copy it into dst as
 * fp32 (transposed when it is [rows][cols] and dst wants [cols][rows]). */
static saemon_status load_member(npz_archive *a, const member_plan *p, float *dst, int transpose,
                                 saemon_error *err)
{
    char label[1200];
    snprintf(label, sizeof label, "%s: %s", a->label, p->m->name);
    size_t size = (size_t)p->m->size; /* == the header's total, which fit a size_t */
    char *raw = malloc(size ? size : 1);
    if (!raw)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory for %zu bytes", label,
                                size);
    saemon_npy arr;
    saemon_status st = npz_read_all(a, p->m, raw, err);
    if (!st)
        st = saemon_npy_from_memory(raw, size, label, &arr, err);
    free(raw);
    if (st)
        return st;
    /* dst was sized from the header planned in phase 1: insist it is the same. */
    if (arr.ndim != p->h.ndim || memcmp(arr.shape, p->h.shape, arr.ndim * sizeof arr.shape[0])) {
        saemon_npy_close(&arr);
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header changed between reads", label);
    }
    if (transpose)
        saemon_convert_transpose_to_f32(arr.data, SAEMON_DTYPE_F32, arr.shape[0], arr.shape[1],
                                        dst);
    else {
        size_t n = 1;
        for (size_t d = 0; d < arr.ndim; d++)
            n *= arr.shape[d];
        memcpy(dst, arr.data, n * sizeof(float));
    }
    saemon_npy_close(&arr);
    return SAEMON_OK;
}

/* SAELens drops an all-ones scaling_factor; anything else is a fine-tuning
 * factor saemon does not apply (same rule as the safetensors path). */
static saemon_status check_scaling(npz_archive *a, const member_plan *p, size_t d_sae,
                                   saemon_error *err)
{
    float *v = saemon_aligned_alloc(d_sae * sizeof(float));
    if (!v)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    saemon_status st = load_member(a, p, v, 0, err);
    for (size_t j = 0; !st && j < d_sae; j++)
        if (v[j] != 1.0f)
            st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                  "%s: array 'scaling_factor' is not all ones ([%zu] = %g); "
                                  "saemon does not apply fine-tuning scaling factors",
                                  a->label, j, v[j]);
    free(v);
    return st;
}

saemon_status gemmascope_load(const void *bytes, size_t len, const char *npz_path,
                              const char *given, saemon_dict **out, saemon_error *err)
{
    *out = NULL;
    npz_archive a;
    saemon_status st = npz_open(bytes, len, npz_path, &a, err);
    if (st)
        return st;
    member_plan plan[N_ARRAYS];
    memset(plan, 0, sizeof plan);
    saemon_dict *d = NULL;
    path_facts pf;
    parse_path(npz_path, &pf);

    /* Phase 1: every header, shape and declared size; nothing big inflated. */
    if ((st = assign_members(&a, plan, err)) ||
        (st = plan_member(&a, &plan[A_W_ENC], NULL, NULL, 0, err)))
        goto out;
    if (plan[A_W_ENC].h.ndim != 2 || !plan[A_W_ENC].h.shape[0] || !plan[A_W_ENC].h.shape[1]) {
        char got[128];
        dict_dims_str(plan[A_W_ENC].h.shape, plan[A_W_ENC].h.ndim, got, sizeof got);
        st = saemon_error_set(err, SAEMON_ERR_SHAPE,
                              "%s: W_enc.npy: shape %s, expected [d_model, d_sae] (2-d, non-empty)",
                              npz_path, got);
        goto out;
    }
    size_t d_in = plan[A_W_ENC].h.shape[0], d_sae = plan[A_W_ENC].h.shape[1];
    size_t sae_in[2] = {d_sae, d_in};
    if ((st = plan_member(&a, &plan[A_W_DEC], "W_enc's [d_sae, d_model]", sae_in, 2, err)) ||
        (st = plan_member(&a, &plan[A_THRESHOLD], "W_enc's [d_sae]", &d_sae, 1, err)) ||
        (st = plan_member(&a, &plan[A_B_ENC], "W_enc's [d_sae]", &d_sae, 1, err)) ||
        (st = plan_member(&a, &plan[A_B_DEC], "W_enc's [d_model]", &d_in, 1, err)) ||
        (plan[A_SCALING].m &&
         (st = plan_member(&a, &plan[A_SCALING], "W_enc's [d_sae]", &d_sae, 1, err))))
        goto out;
    if (pf.width && pf.width != d_sae) {
        st = saemon_error_set(err, SAEMON_ERR_SHAPE,
                              "%s: the folder says width %llu but W_enc has d_sae %zu", npz_path,
                              pf.width, d_sae);
        goto out;
    }

    /* Phase 2: inflate and convert. */
    if (!(d = saemon_dict_alloc(d_in, d_sae, SAEMON_ARCH_JUMPRELU, err))) {
        st = err ? err->code : SAEMON_ERR_NOMEM;
        goto out;
    }
    if ((plan[A_SCALING].m && (st = check_scaling(&a, &plan[A_SCALING], d_sae, err))) ||
        (st = load_member(&a, &plan[A_W_ENC], d->W_enc_rows, 1, err)) ||
        (st = load_member(&a, &plan[A_W_DEC], d->W_dec, 0, err)) ||
        (st = load_member(&a, &plan[A_THRESHOLD], d->threshold, 0, err)) ||
        (st = load_member(&a, &plan[A_B_ENC], d->b_enc, 0, err)) ||
        (st = load_member(&a, &plan[A_B_DEC], d->b_dec, 0, err)))
        goto out;
    if (pf.embedding) {
        /* SAELens (loaders.py:517-521): W_enc / sqrt(d_in), W_dec * sqrt(d_in),
         * in float32; torch divides by a scalar as a multiply by its inverse. */
        float r = (float)sqrt((double)d_in), inv = 1.0f / r;
        for (size_t i = 0; i < d_in * d_sae; i++) {
            d->W_enc_rows[i] *= inv;
            d->W_dec[i] *= r;
        }
    }

    saemon_dict_info *in = &d->info;
    in->apply_b_dec_to_input = false;
    in->norm = SAEMON_NORM_NONE;
    in->reshape_hook_z = pf.hook_z;
    in->layer = pf.layer >= 0 ? (int)pf.layer : -1;
    in->weights_bytes = len;
    in->weight_dtype = plan[A_W_ENC].h.itemsize == 2 ? SAEMON_DTYPE_F16 : SAEMON_DTYPE_F32;
    const void *parts[1] = {bytes};
    size_t lens[1] = {len};
    if (saemon_sha256_hex(parts, lens, 1, in->sha256)) {
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: SHA-256 failed", npz_path);
        goto out;
    }
    if ((st = dict_set_str(&d->path, given, err)) || (st = dict_set_str(&d->format, "gemmascope", err)) ||
        (st = dict_set_str(&d->id.name, pf.name, err)) || (st = dict_set_str(&d->id.hook_name, pf.hook, err)) ||
        (st = dict_set_str(&d->id.model_name, pf.model, err)) ||
        (st = dict_set_str(&d->id.width_tag, pf.width_tag, err)) ||
        (st = dict_set_str(&d->id.l0_tag, pf.l0_tag, err)) ||
        (st = dict_set_str(&d->id.normalize_activations, "none", err)) ||
        (st = dict_set_str(&d->id.compute_dtype, "float32", err)))
        goto out;
    st = saemon_dict_finish(d, err);
out:
    if (st) {
        saemon_dict_close(d);
        d = NULL;
    }
    npz_close(&a);
    *out = d;
    return st;
}

saemon_status gemmascope_open(const char *npz_path, const char *given, const saemon_dict_load_options *opts,
                              saemon_dict **out, saemon_error *err)
{
    *out = NULL;
    const void *map;
    size_t len;
    saemon_status st = file_map_regular(npz_path, "params file", &map, &len, err);
    if (st != SAEMON_OK)
        return st;
    st = gemmascope_load(map ? map : "", len, npz_path, given, out, err);
    file_unmap(map, len);
    if (st)
        return st;
    /* A zip member is inflated whole: the file is read in full, then only
     * the plan's rows are kept. */
    saemon_dict *d = *out;
    d->stats.bytes_read = len;
    uint32_t *lat = NULL;
    size_t n = d->info.d_sae;
    if (opts && opts->subset)
        st = dict_sorted_latents(opts->latents, opts->n_latents, d->info.d_sae, &lat, &n, err);
    if (!st && opts)
        st = dict_keep_rows(d, lat, lat ? n : d->info.d_sae, !opts->no_decoder, err);
    free(lat);
    if (st) {
        saemon_dict_close(d);
        *out = NULL;
        return st;
    }
    d->stats.latents_loaded = d->n_rows;
    d->stats.decoder_loaded = d->W_dec != NULL;
    d->stats.resident_bytes = dict_resident_bytes(d);
    return SAEMON_OK;
}
