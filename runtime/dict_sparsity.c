/* SAELens sparsity.safetensors: one tensor 'sparsity' [d_sae] holding
 * log10(feature_firing_fraction + 1e-10) from training
 * (sae_lens/training/sae_trainer.py; read back by pretrained_sae_loaders.py
 * with safe_open(...).get_tensor("sparsity")). Optional; when present it must
 * be exactly that, since rules use it to warn about dead features. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/error.h"
#include "runtime/dict_internal.h"
#include "runtime/dict_spec.h"
#include "runtime/half.h"
#include "runtime/safetensors.h"

saemon_status dict_load_sparsity(saemon_dict *d, const char *dir, const char *name,
                                 saemon_error *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        free(path);
        return SAEMON_OK; /* no sparsity file: nothing to show */
    }
    st_file f = {0};
    const st_tensor *t;
    size_t d_sae = d->info.d_sae;
    saemon_status st = st_open(path, &f, err);
    if (!st)
        st = dict_need_tensor(&f, "sparsity", 1, &d_sae, "the SAE's [d_sae]", &t, err);
    float *v = NULL;
    if (!st && !(v = saemon_aligned_alloc(d_sae * sizeof(float))))
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!st) {
        saemon_convert_to_f32(t->data, (saemon_dtype)t->float_dtype, d_sae, v);
        for (size_t j = 0; j < d_sae && !st; j++)
            if (!isfinite(v[j]) || v[j] > 1e-6f)
                st = saemon_error_set(err, SAEMON_ERR_VALUE,
                                      "%s: tensor 'sparsity' [%zu] = %g is not a log10 firing "
                                      "fraction (finite, <= 0)",
                                      path, j, v[j]);
    }
    if (st)
        free(v);
    else
        d->log_sparsity = v;
    st_close(&f);
    free(path);
    return st;
}
