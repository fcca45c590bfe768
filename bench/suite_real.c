/* The small real SAEs of the shared data directory with their own recorded
 * activations, through the same cells as the generated dictionaries. The
 * peers are not run on them: their architectures (TopK, JumpReLU with b_dec
 * applied to the input, ...) differ from the one peer script. */
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saemon/saemon.h"
#include "suite.h"

/* acts file paired with an SAELens dir: <parent>/acts_<suffix>.npy for
 * "saelens-<suffix>" when it exists, else <parent>/acts.npy. */
static char *real_acts_path(const char *sae_dir)
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

static int list_real(const suite_opts *o, glob_t *g)
{
    char *pattern = NULL;
    if (asprintf(&pattern, "%s/data/sae/*/saelens*", o->shared_dir) < 0)
        return -1;
    int rc = glob(pattern, GLOB_ONLYDIR, NULL, g);
    free(pattern);
    return rc == 0 ? 0 : -1;
}

size_t suite_count_real(const suite_opts *o)
{
    glob_t g;
    if (list_real(o, &g) != 0)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *acts = real_acts_path(g.gl_pathv[i]);
        n += acts != NULL;
        free(acts);
    }
    globfree(&g);
    return n;
}

static void run_one(suite_results *res, const suite_opts *o, const char *dir, const char *rel, char used[][64])
{
    char *acts = real_acts_path(dir);
    if (!acts) {
        suite_note(res, "real SAE %s skipped: no recorded activations (acts.npy) next to it", rel);
        return;
    }
    saemon_error err = {0};
    saemon_dict *dict = NULL;
    saemon_npy npy = {0};
    float *pool_x = NULL;
    size_t per_enc = (size_t)o->want_latency + o->n_tput_batches;
    size_t units = suite_count_variants(o) * o->n_threads * per_enc;
    size_t n_rows = 0, n_streams = 0, per_stream = 0;
    if (saemon_dict_open(dir, &dict, &err) != SAEMON_OK) {
        suite_note(res, "real SAE %s skipped: %s", rel, err.message);
        goto fail;
    }
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    if (saemon_npy_open(acts, &npy, &err) != SAEMON_OK ||
        saemon_npy_as_rows(&npy, info->d_in, info->reshape_hook_z, &n_rows, &n_streams, &per_stream, &err) !=
            SAEMON_OK) {
        suite_note(res, "real SAE %s skipped: %s", rel, err.message);
        goto fail;
    }
    if (n_rows == 0) {
        suite_note(res, "real SAE %s skipped: %s holds no rows", rel, acts);
        goto fail;
    }
    /* Throughput cells read the first `batch` rows: repeat the recording
     * when it is shorter than the largest batch. */
    size_t need = n_rows;
    for (size_t b = 0; b < o->n_tput_batches; b++)
        need = o->tput_batches[b] > need ? o->tput_batches[b] : need;
    pool_x = malloc(need * info->d_in * sizeof *pool_x);
    if (!pool_x) {
        suite_note(res, "real SAE %s skipped: out of memory", rel);
        goto fail;
    }
    for (size_t r = 0; r < need; r++)
        memcpy(pool_x + r * info->d_in, npy.data + (r % n_rows) * info->d_in, info->d_in * sizeof *pool_x);
    suite_pool pool = {.source = "real", .shape = rel, .d_in = info->d_in, .d_sae = info->d_sae,
                       .n_tokens = n_rows, .x = pool_x};
    suite_run_saemon(res, o, dict, &pool, used);
    free(pool_x);
    saemon_npy_close(&npy);
    saemon_dict_close(dict);
    free(acts);
    return;
fail:
    for (size_t i = 0; i < units; i++)
        progress_end_unit();
    if (npy.data)
        saemon_npy_close(&npy);
    saemon_dict_close(dict);
    free(acts);
}

void suite_run_real(suite_results *res, const suite_opts *o, char used[][64])
{
    glob_t g;
    if (list_real(o, &g) != 0) {
        suite_note(res, "real SAEs skipped: nothing matches %s/data/sae/*/saelens*", o->shared_dir);
        return;
    }
    size_t prefix = strlen(o->shared_dir) + strlen("/data/sae/");
    for (size_t i = 0; i < g.gl_pathc; i++)
        run_one(res, o, g.gl_pathv[i], g.gl_pathv[i] + prefix, used);
    globfree(&g);
}
