/* Capture on demand for `saemon run`: when a rule with `capture:` fires, the
 * stream's last `window` rows of the recording are encoded with every latent
 * by a second encoder (created on the first capture; the run's own encoder
 * may hold only a subset plan, and its output is being observed), and the
 * strongest features over the window go into the alert. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define CAPTURE_BATCH 64 /* rows per full encode: slots stay d_sae x 64 */

typedef struct ranked {
    float value;
    uint32_t index;
} ranked;

static int stronger(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static bool open_encoder(cli_capture *c)
{
    const saemon_dict_info *info = saemon_dict_get_info(c->dict);
    saemon_error err = {0};
    saemon_encoder_options o = {.variant = c->variant, .max_batch = CAPTURE_BATCH};
    c->best = calloc(info->d_sae, sizeof *c->best);
    c->touched = malloc(info->d_sae * sizeof *c->touched);
    c->ranked = malloc(info->d_sae * sizeof(ranked));
    if (!c->best || !c->touched || !c->ranked || saemon_encoder_create(c->dict, &o, &c->enc, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon run: capture disabled: %s\n", err.message[0] ? err.message : "out of memory");
        c->failed = true;
        return false;
    }
    return true;
}

size_t cli_capture_fn(uint64_t stream, uint64_t token, uint32_t window, saemon_alert_feature *out, size_t cap,
                      void *user)
{
    cli_capture *c = user;
    if (c->failed || (!c->enc && !open_encoder(c)))
        return 0;
    const uint64_t last = stream * c->tokens_per_stream + token;
    const uint64_t first = token + 1 >= window ? last + 1 - window : stream * c->tokens_per_stream;
    if (last >= c->n_rows)
        return 0;
    size_t n_touched = 0;
    for (uint64_t row = first; row <= last;) {
        size_t m = last + 1 - row < CAPTURE_BATCH ? (size_t)(last + 1 - row) : CAPTURE_BATCH;
        const saemon_features *f;
        saemon_error err = {0};
        if (saemon_encoder_encode_full(c->enc, c->rows + row * c->d_in, m, &f, &err) != SAEMON_OK)
            break;
        for (size_t e = 0; e < f->offsets[m]; e++) {
            uint32_t j = f->index[e];
            if (c->best[j] == 0.0f)
                c->touched[n_touched++] = j;
            if (f->value[e] > c->best[j])
                c->best[j] = f->value[e];
        }
        row += m;
    }
    ranked *r = c->ranked;
    for (size_t i = 0; i < n_touched; i++) {
        r[i] = (ranked){c->best[c->touched[i]], c->touched[i]};
        c->best[c->touched[i]] = 0.0f;
    }
    qsort(r, n_touched, sizeof *r, stronger);
    size_t n = n_touched < cap ? n_touched : cap;
    for (size_t i = 0; i < n; i++)
        out[i] = (saemon_alert_feature){.index = r[i].index, .value = r[i].value};
    return n;
}

void cli_capture_close(cli_capture *c)
{
    saemon_encoder_destroy(c->enc);
    free(c->best);
    free(c->touched);
    free(c->ranked);
    memset(c, 0, sizeof *c);
}
