/* Encode a labelled set once, keep the sparse features, and replay them
 * through a monitor as often as needed: calibrate tries many thresholds,
 * backtest two rule files, each on the exact tokens `saemon run` would see. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/authoring.h"
#include "cli/cli.h"

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    void *g = realloc(*p, c * elem);
    if (!g)
        return false;
    *p = g;
    *cap = c;
    return true;
}

bool auth_encode_set(const char *what, saemon_encoder *enc, size_t d_in, const auth_set *set, auth_encoded *e)
{
    memset(e, 0, sizeof *e);
    const size_t batch = saemon_encoder_get_max_batch(enc);
    float *buf = malloc(batch * d_in * sizeof *buf);
    size_t n_tok = set->n_rows;
    e->offsets = malloc((n_tok + 1) * sizeof *e->offsets);
    e->input_norm = malloc((n_tok ? n_tok : 1) * sizeof *e->input_norm);
    e->nonfinite = malloc((n_tok ? n_tok : 1) * sizeof *e->nonfinite);
    if (!buf || !e->offsets || !e->input_norm || !e->nonfinite)
        goto oom;
    e->offsets[0] = 0;
    saemon_error err = {0};
    size_t cap_idx = 0, cap_val = 0;
    for (size_t k = 0; k < set->n; k++) {
        auth_recording *rec = &set->rec[k];
        for (size_t row = 0; row < rec->n_rows;) {
            size_t m = rec->n_rows - row < batch ? rec->n_rows - row : batch;
            const float *x = npy_rows_read(&rec->rows, what, row, m, buf);
            const saemon_features *f;
            if (!x)
                goto fail;
            if (saemon_encoder_encode(enc, x, m, &f, &err) != SAEMON_OK) {
                cli_fail(what, &err);
                goto fail;
            }
            size_t nnz = f->offsets[m] - f->offsets[0], at = e->offsets[e->n_tokens];
            if (!grow((void **)&e->index, &cap_idx, at + nnz, sizeof *e->index) ||
                !grow((void **)&e->value, &cap_val, at + nnz, sizeof *e->value))
                goto oom;
            if (nnz) {
                memcpy(e->index + at, f->index + f->offsets[0], nnz * sizeof *e->index);
                memcpy(e->value + at, f->value + f->offsets[0], nnz * sizeof *e->value);
            }
            if (f->recon_error && !e->recon && !(e->recon = calloc(n_tok ? n_tok : 1, sizeof *e->recon)))
                goto oom;
            if (f->subset && !e->subset && !(e->subset = calloc(n_tok ? n_tok : 1, sizeof *e->subset)))
                goto oom;
            for (size_t t = 0; t < m; t++) {
                uint64_t g = e->n_tokens + t;
                e->offsets[g + 1] = at + (f->offsets[t + 1] - f->offsets[0]);
                e->input_norm[g] = f->input_norm[t];
                e->nonfinite[g] = f->input_nonfinite[t];
                if (e->recon)
                    e->recon[g] = f->recon_error ? f->recon_error[t] : 0;
                if (e->subset)
                    e->subset[g] = f->subset ? f->subset[t] : false;
            }
            e->n_tokens += m;
            row += m;
        }
    }
    free(buf);
    return true;
oom:
    fprintf(stderr, "saemon %s: out of memory keeping the encoded features\n", what);
fail:
    free(buf);
    auth_encoded_free(e);
    return false;
}

void auth_encoded_free(auth_encoded *e)
{
    free(e->offsets);
    free(e->index);
    free(e->value);
    free(e->input_norm);
    free(e->nonfinite);
    free(e->recon);
    free(e->subset);
    memset(e, 0, sizeof *e);
}

void auth_replay(const auth_encoded *e, const auth_set *set, saemon_monitor *mon, saemon_alert_fn fn, void *user,
                 bool *ending)
{
    enum { CHUNK = 4096 };
    uint64_t streams[CHUNK], tokens[CHUNK];
    size_t offs[CHUNK + 1];
    uint64_t g = 0;
    for (size_t k = 0; k < set->n; k++) {
        const auth_recording *rec = &set->rec[k];
        const size_t tps = rec->tokens_per_stream;
        for (size_t row = 0; row < rec->n_rows;) {
            /* a chunk never crosses the end of a sequence: that stream is ended after it */
            size_t pos = row % tps, m = tps - pos < CHUNK ? tps - pos : CHUNK;
            for (size_t t = 0; t < m; t++) {
                streams[t] = rec->first_stream + (row + t) / tps;
                tokens[t] = (row + t) % tps;
                offs[t] = e->offsets[g + t];
            }
            offs[m] = e->offsets[g + m];
            saemon_features f = {.n_tokens = m, .offsets = offs, .index = e->index, .value = e->value,
                                 .input_norm = e->input_norm + g, .input_nonfinite = e->nonfinite + g,
                                 .recon_error = e->recon ? e->recon + g : NULL,
                                 .subset = e->subset ? e->subset + g : NULL};
            saemon_monitor_observe_batch(mon, &f, streams, tokens, fn, user);
            if (tokens[m - 1] + 1 == tps) {
                if (ending)
                    *ending = true;
                saemon_monitor_end_stream(mon, streams[m - 1], fn, user);
                if (ending)
                    *ending = false;
            }
            row += m;
            g += m;
        }
    }
}

void auth_replay_streams(const auth_encoded *e, const auth_set *set, const uint64_t *only, size_t n_only,
                         saemon_monitor *mon, saemon_alert_fn fn, void *user, bool *ending)
{
    enum { CHUNK = 4096 };
    uint64_t streams[CHUNK], tokens[CHUNK];
    size_t offs[CHUNK + 1];
    size_t k = 0;
    for (size_t i = 0; i < n_only; i++) {
        const uint64_t s = only[i];
        while (k < set->n && s >= set->rec[k].first_stream + set->rec[k].n_streams)
            k++; /* `only` is sorted: the recordings are walked once */
        if (k == set->n)
            break;
        const auth_recording *rec = &set->rec[k];
        const size_t tps = rec->tokens_per_stream;
        const uint64_t g0 = rec->first_row + (s - rec->first_stream) * tps;
        for (size_t pos = 0; pos < tps;) {
            size_t m = tps - pos < CHUNK ? tps - pos : CHUNK;
            for (size_t t = 0; t < m; t++) {
                streams[t] = s;
                tokens[t] = pos + t;
                offs[t] = e->offsets[g0 + pos + t];
            }
            offs[m] = e->offsets[g0 + pos + m];
            const uint64_t g = g0 + pos;
            saemon_features f = {.n_tokens = m, .offsets = offs, .index = e->index, .value = e->value,
                                 .input_norm = e->input_norm + g, .input_nonfinite = e->nonfinite + g,
                                 .recon_error = e->recon ? e->recon + g : NULL,
                                 .subset = e->subset ? e->subset + g : NULL};
            saemon_monitor_observe_batch(mon, &f, streams, tokens, fn, user);
            pos += m;
        }
        if (ending)
            *ending = true;
        saemon_monitor_end_stream(mon, s, fn, user);
        if (ending)
            *ending = false;
    }
}

bool auth_open_encoder(const char *what, const char *sae, const saemon_ruleset *rules, size_t threads,
                       saemon_dict **dict, saemon_encoder **enc)
{
    saemon_error err = {0};
    *dict = NULL;
    *enc = NULL;
    if (saemon_dict_open(sae, dict, &err) != SAEMON_OK)
        return cli_fail(what, &err), false;
    const saemon_dict_info *info = saemon_dict_get_info(*dict);
    if (rules && saemon_rules_bind(rules, info, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        goto fail;
    }
    cli_plan plan = {.mode = SAEMON_ENCODE_AUTO};
    saemon_encoder_options eo = {.threads = threads};
    if (rules && !cli_plan_apply(&plan, rules, &eo))
        goto fail;
    saemon_status st = saemon_encoder_create(*dict, &eo, enc, &err);
    cli_plan_free(&plan);
    if (st != SAEMON_OK) {
        cli_fail(what, &err);
        goto fail;
    }
    cli_encoder_warn(*enc);
    return true;
fail:
    saemon_dict_close(*dict);
    *dict = NULL;
    return false;
}
