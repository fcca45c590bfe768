/* The generated GPT-2-small / Gemma-2-2B shaped dictionaries of bench/synth.c
 * turned into real saemon dictionaries (saemon_dict_from_arrays), so the
 * suite measures exactly what a user's encoder does. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "saemon/saemon.h"
#include "suite_synth.h"

saemon_status suite_synth_dict(const bench_synth *s, const char *name, saemon_dict **out, saemon_error *err)
{
    const size_t d_in = s->d_in, d_sae = s->d_sae;
    float *w_enc = malloc(d_in * d_sae * sizeof *w_enc);
    float *b_dec = calloc(d_in, sizeof *b_dec);
    if (!w_enc || !b_dec) {
        free(w_enc);
        free(b_dec);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory building the %s dictionary", name);
    }
    /* SAELens layout W_enc[d_in][d_sae]: the transpose of the encoder rows, in tiles. */
    enum { T = 64 };
    for (size_t j0 = 0; j0 < d_sae; j0 += T)
        for (size_t i0 = 0; i0 < d_in; i0 += T)
            for (size_t j = j0; j < j0 + T && j < d_sae; j++)
                for (size_t i = i0; i < i0 + T && i < d_in; i++)
                    w_enc[i * d_sae + j] = s->w_rows[j * d_in + i];
    /* The decoder is not used by a JumpReLU encode; the encoder rows (cosine
     * ~0.98 with the generated decoder rows) stand in for it. */
    saemon_dict_arrays a = {.name = name, .arch = SAEMON_ARCH_JUMPRELU, .d_in = d_in, .d_sae = d_sae,
                            .norm = SAEMON_NORM_NONE, .W_enc = w_enc, .W_dec = s->w_rows,
                            .b_enc = s->b_enc, .b_dec = b_dec, .threshold = s->threshold};
    saemon_status st = saemon_dict_from_arrays(&a, out, err);
    free(w_enc);
    free(b_dec);
    return st;
}
