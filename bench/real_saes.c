/* The small real SAEs of the shared data directory, through the public API:
 * saemon_dict_open + saemon_encoder_create (variant forced) + encode of the
 * SAE's own recorded activations. */
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "kernels/kernel.h"
#include "saemon/saemon.h"


/* acts file paired with an SAELens dir: <parent>/acts_<suffix>.npy for
 * "saelens-<suffix>" when it exists, else <parent>/acts.npy. */
char *bench_real_acts_path(const char *sae_dir)
{
    char *tmp = strdup(sae_dir), *tmp2 = strdup(sae_dir);
    char *out = NULL;
    if (!tmp || !tmp2)
        goto done;
    const char *base = basename(tmp);
    const char *parent = dirname(tmp2);
    if (strncmp(base, "saelens-", 8) == 0) {
        if (asprintf(&out, "%s/acts_%s.npy", parent, base + 8) < 0)
            out = NULL;
        else if (access(out, R_OK) == 0)
            goto done;
        free(out);
        out = NULL;
    }
    if (asprintf(&out, "%s/acts.npy", parent) < 0)
        out = NULL;
    else if (access(out, R_OK) != 0) {
        free(out);
        out = NULL;
    }
done:
    free(tmp);
    free(tmp2);
    return out;
}

typedef struct pass_ctx {
    saemon_encoder *enc;
    const float *x;
    size_t n_rows, d_in, batch;
    size_t nnz;
    int failed;
    saemon_error err;
} pass_ctx;

/* Encode the whole activation file in chunks of `batch` rows. */
static void encode_pass(void *p)
{
    pass_ctx *c = p;
    c->nnz = 0;
    for (size_t r = 0; r < c->n_rows && !c->failed; r += c->batch) {
        size_t n = c->n_rows - r < c->batch ? c->n_rows - r : c->batch;
        const saemon_features *f;
        if (saemon_encoder_encode(c->enc, c->x + r * c->d_in, n, &f, &c->err) != SAEMON_OK)
            c->failed = 1;
        else
            c->nnz += f->offsets[n];
    }
}

static void add_skip(bench_results *res, const char *rel, const char *variant, char *note)
{
    bench_real_row *row = bench_results_add_real(res);
    if (!row) {
        free(note);
        return;
    }
    row->sae = strdup(rel);
    row->variant = strdup(variant ? variant : "-");
    row->note = note;
}

static void bench_one(bench_results *res, const bench_opts *o, const char *dir, const char *rel)
{
    saemon_error err = {0};
    saemon_dict *dict = NULL;
    char *note = NULL;
    if (saemon_dict_open(dir, &dict, &err) != SAEMON_OK) {
        if (asprintf(&note, "load failed: %s", err.message) >= 0)
            add_skip(res, rel, NULL, note);
        return;
    }
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    char *acts = bench_real_acts_path(dir);
    saemon_npy npy = {0};
    size_t n_rows = 0, n_streams = 0, per_stream = 0;
    if (!acts) {
        add_skip(res, rel, NULL, strdup("no recorded activations (acts.npy) next to this SAE"));
        goto out;
    }
    if (saemon_npy_open(acts, &npy, &err) != SAEMON_OK ||
        saemon_npy_as_rows(&npy, info->d_in, info->reshape_hook_z, &n_rows, &n_streams, &per_stream,
                           &err) != SAEMON_OK) {
        if (asprintf(&note, "%s: %s", acts, err.message) >= 0)
            add_skip(res, rel, NULL, note);
        goto out;
    }
    size_t nk;
    const saemon_kernel *const *all = saemon_kernels_all(&nk);
    const size_t batches[2] = {1, 256};
    for (size_t v = 0; v < nk; v++) {
        if (all[v]->cpu_features & ~saemon_cpu_features())
            continue;
        for (size_t bi = 0; bi < 2; bi++) {
            saemon_encoder_options eo = {.variant = all[v]->name, .max_batch = batches[bi]};
            saemon_encoder *enc = NULL;
            if (saemon_encoder_create(dict, &eo, &enc, &err) != SAEMON_OK) {
                if (asprintf(&note, "encoder_create: %s", err.message) >= 0)
                    add_skip(res, rel, all[v]->name, note);
                break;
            }
            pass_ctx c = {.enc = enc, .x = npy.data, .n_rows = n_rows, .d_in = info->d_in,
                          .batch = batches[bi]};
            bench_opts short_cell = *o;
            short_cell.min_time = o->quick ? 0.05 : 0.2;
            short_cell.min_calls = 5;
            bench_stats st = bench_measure(encode_pass, &c, &short_cell);
            saemon_encoder_destroy(enc);
            if (c.failed) {
                if (asprintf(&note, "encode failed: %s", c.err.message) >= 0)
                    add_skip(res, rel, all[v]->name, note);
                break;
            }
            bench_real_row *row = bench_results_add_real(res);
            if (!row)
                break;
            row->sae = strdup(rel);
            row->variant = strdup(all[v]->name);
            row->d_in = info->d_in;
            row->d_sae = info->d_sae;
            row->n_tokens = n_rows;
            row->batch = batches[bi];
            row->st = st;
            row->mean_l0 = n_rows ? (double)c.nnz / (double)n_rows : 0;
        }
    }
out:
    if (npy.data)
        saemon_npy_close(&npy);
    free(acts);
    saemon_dict_close(dict);
}

void bench_real_saes(bench_results *res, const bench_opts *o)
{
    char *pattern = NULL;
    if (asprintf(&pattern, "%s/data/sae/*/saelens*", o->shared_dir) < 0)
        return;
    glob_t g;
    int grc = glob(pattern, GLOB_ONLYDIR, NULL, &g);
    if (grc != 0) {
        if (asprintf(&res->real_note, "real SAEs skipped: nothing matches %s", pattern) < 0)
            res->real_note = NULL;
        free(pattern);
        return;
    }
    size_t prefix = strlen(o->shared_dir) + strlen("/data/sae/");
    for (size_t i = 0; i < g.gl_pathc; i++)
        bench_one(res, o, g.gl_pathv[i], g.gl_pathv[i] + prefix);
    globfree(&g);
    free(pattern);
}
