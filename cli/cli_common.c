#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"

int cli_fail(const char *what, const saemon_error *err)
{
    fprintf(stderr, "saemon %s: %s\n", what, err->message);
    return CLI_FAIL;
}

bool cli_parse_size(const char *opt, const char *text, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || !end || *end || end == text || text[0] == '-' || v == 0) {
        fprintf(stderr, "saemon: %s expects a positive integer, got '%s'\n", opt, text);
        return false;
    }
    *out = (size_t)v;
    return true;
}

saemon_status cli_replay_rows(cli_replay *rp, const float *rows, uint64_t first_row, size_t n,
                              saemon_error *err)
{
    const size_t batch = saemon_encoder_get_max_batch(rp->encoder);
    uint64_t *where = rp->monitor ? malloc(2 * batch * sizeof *where) : NULL;
    if (rp->monitor && !where) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return err->code = SAEMON_ERR_NOMEM;
    }
    uint64_t *streams = where, *tokens = where ? where + batch : NULL;
    saemon_status st = SAEMON_OK;
    for (size_t done = 0; done < n && st == SAEMON_OK;) {
        size_t m = n - done < batch ? n - done : batch;
        const saemon_features *f;
        st = saemon_encoder_encode(rp->encoder, rows + done * rp->d_in, m, &f, err);
        if (st != SAEMON_OK)
            break;
        rp->active_features += f->offsets[m] - f->offsets[0];
        if (rp->monitor) {
            for (size_t t = 0; t < m; t++) {
                uint64_t row = first_row + done + t;
                streams[t] = row / rp->tokens_per_stream;
                tokens[t] = row % rp->tokens_per_stream;
            }
            /* Observe up to and including the last token of each sequence in
             * the batch, then end that stream: what still fires there is
             * resolved right after it (docs/rules.md), before the next
             * sequence's alerts. */
            for (size_t from = 0, t = 0; t < m; t++) {
                bool last = tokens[t] + 1 == rp->tokens_per_stream;
                if (!last && t + 1 < m)
                    continue;
                saemon_features part = *f;
                part.n_tokens = t + 1 - from;
                part.offsets = f->offsets + from;
                part.input_norm = f->input_norm + from;
                part.input_nonfinite = f->input_nonfinite + from;
                part.recon_error = f->recon_error ? f->recon_error + from : NULL;
                saemon_monitor_observe_batch(rp->monitor, &part, streams + from, tokens + from, rp->on_alert,
                                             rp->alert_user);
                if (last)
                    saemon_monitor_end_stream(rp->monitor, streams[t], rp->on_alert, rp->alert_user);
                from = t + 1;
            }
        }
        rp->tokens += m;
        done += m;
    }
    free(where);
    return st;
}

bool cli_write_json_float(FILE *f, float v)
{
    if (isnan(v))
        return fputs("\"NaN\"", f) >= 0;
    if (isinf(v))
        return fputs(v > 0 ? "\"+Inf\"" : "\"-Inf\"", f) >= 0;
    return fprintf(f, "%.9g", (double)v) > 0;
}

static const char *or_dash(const char *s) { return s && *s ? s : "-"; }

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* What each info.format is on disk (docs/formats.md). */
static const char *format_files(const char *format)
{
    static const char *const names[][2] = {
        {"saelens", "SAELens: cfg.json + sae_weights.safetensors"},
        {"sparsify", "EleutherAI sparsify: cfg.json + sae.safetensors"},
        {"openai", "OpenAI sparse_autoencoder: sae.safetensors"},
        {"gemmascope", "Gemma Scope (Gemma 2): params.npz"},
        {"gemmascope2", "Gemma Scope 2 (Gemma 3): config.json + params.safetensors"},
        {"llamascope", "Llama Scope: hyperparams.json + checkpoints/final.safetensors"},
        {"llamascope_r1", "Llama Scope R1 distill: config.json + sae_weights.safetensors"},
        {"dictionary_learning", "dictionary_learning: config.json + ae.safetensors"},
        {"memory", "arrays in memory"},
    };
    for (size_t i = 0; format && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(format, names[i][0]))
            return names[i][1];
    return NULL;
}

/* The source release's naming: layer, width and L0 tag, as far as known. */
static void print_release(FILE *f, const saemon_dict_info *info)
{
    if (info->layer < 0 && !info->width_tag[0] && !info->l0_tag[0])
        return;
    fprintf(f, "release        ");
    const char *sep = "";
    if (info->layer >= 0)
        fprintf(f, "layer %d", info->layer), sep = ", ";
    if (info->width_tag[0])
        fprintf(f, "%swidth %s", sep, info->width_tag), sep = ", ";
    if (info->l0_tag[0])
        fprintf(f, "%sL0 %s", sep, info->l0_tag);
    fprintf(f, "\n");
}

/* sparsity.safetensors: how often features fired in training. */
static void print_density(FILE *f, const saemon_dict_info *info)
{
    if (!info->log_feature_sparsity)
        return;
    size_t n = info->d_sae;
    float *v = malloc(n * sizeof *v);
    if (!v)
        return;
    memcpy(v, info->log_feature_sparsity, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_float);
    fprintf(f, "feature density log10 firing fraction in training: median %.3g, min %.3g, max %.3g; "
               "%zu of %zu features never fired (sparsity.safetensors)\n",
            (double)v[n / 2], (double)v[0], (double)v[n - 1], info->n_dead_features, n);
    free(v);
}

void cli_print_dict(FILE *f, const saemon_dict_info *info, const saemon_encoder *enc)
{
    fprintf(f, "dictionary     %s\n", info->name ? info->name : "(unnamed)");
    fprintf(f, "path           %s\n", info->path ? info->path : "(memory)");
    const char *files = format_files(info->format);
    fprintf(f, "format         %s%s%s%s\n", info->format ? info->format : "?", files ? " (" : "",
            files ? files : "", files ? ")" : "");
    fprintf(f, "architecture   %s", saemon_arch_name(info->arch));
    if (info->arch == SAEMON_ARCH_TOPK)
        fprintf(f, " (k=%zu%s)", info->k, info->rescale_acts_by_decoder_norm ? ", rescaled by decoder norm" : "");
    fprintf(f, "\n");
    fprintf(f, "d_in           %zu\n", info->d_in);
    fprintf(f, "d_sae          %zu\n", info->d_sae);
    fprintf(f, "weight dtype   %s (computed in float32; cfg dtype %s)\n", saemon_dtype_name(info->weight_dtype),
            or_dash(info->compute_dtype));
    fprintf(f, "hook           %s%s\n", or_dash(info->hook_name),
            info->reshape_hook_z ? " (hook_z: [heads, d_head] inputs flattened)" : "");
    fprintf(f, "model          %s\n", or_dash(info->model_name));
    print_release(f, info);
    fprintf(f, "normalisation  %s", saemon_norm_name(info->norm));
    if (info->folded_scaling_factor > 0)
        fprintf(f, " (expected_average_only_in, factor %.9g folded into the weights)", info->folded_scaling_factor);
    fprintf(f, "\n");
    fprintf(f, "b_dec on input %s\n", info->apply_b_dec_to_input ? "subtracted" : "not subtracted");
    if (info->cfg_bytes)
        fprintf(f, "file sizes     cfg %" PRIu64 " B, weights %" PRIu64 " B\n", info->cfg_bytes, info->weights_bytes);
    else if (info->weights_bytes)
        fprintf(f, "file size      weights %" PRIu64 " B (no cfg file)\n", info->weights_bytes);
    fprintf(f, "sha256         %s\n", info->sha256);
    print_density(f, info);
    if (enc)
        fprintf(f, "kernel         %s\n", saemon_encoder_get_variant(enc));
}

int cli_encoder_option(int c, const char *arg, saemon_encoder_options *o)
{
    switch (c) {
    case 'a': o->variant = arg; return 1;
    case 'b': return cli_parse_size("--batch", arg, &o->max_batch) ? 1 : -1;
    case 'T': return cli_parse_size("--threads", arg, &o->threads) ? 1 : -1;
    case 'C': o->cpus = arg; return 1;
    case 'X': o->exclude_cpus = arg; return 1;
    default: return 0;
    }
}

bool cli_live_option(int c, const char *arg, cli_live_flags *f, void (*usage)(FILE *))
{
    switch (c) {
    case 'L': return cli_parse_rate(arg, &f->rate);
    case 'N': return cli_parse_encode_mode(arg, &f->plan.mode);
    default: break;
    }
    int r = cli_encoder_option(c, arg, &f->eo);
    if (r == 0)
        r = cli_sink_option(c, arg, &f->sf);
    if (r == 0)
        usage(stderr);
    return r == 1;
}

void cli_encoder_warn(const saemon_encoder *enc)
{
    if (saemon_encoder_get_warning(enc)[0])
        fprintf(stderr, "saemon: warning: %s\n", saemon_encoder_get_warning(enc));
}

bool cli_session_open(cli_session *s, const char *what, const char *sae_dir, const char *input_path,
                      const saemon_encoder_options *opts)
{
    saemon_encoder_options o = opts ? *opts : (saemon_encoder_options){0};
    return cli_session_open_rules(s, what, sae_dir, input_path, &o, NULL, NULL);
}

bool cli_session_open_rules(cli_session *s, const char *what, const char *sae_dir, const char *input_path,
                            saemon_encoder_options *opts, saemon_ruleset *rules, cli_plan *plan)
{
    memset(s, 0, sizeof *s);
    saemon_error err = {0};
    const double t0 = clock_now_s();
    /* plan before load: only what the rules' plan needs is read */
    if (!cli_plan_open_dict(plan, what, sae_dir, rules, opts, &s->dict)) {
        cli_session_close(s);
        return false;
    }
    const saemon_dict_info *info = saemon_dict_get_info(s->dict);
    if (saemon_npy_open(input_path, &s->input, &err) != SAEMON_OK)
        goto fail;
    if (saemon_npy_as_rows(&s->input, info->d_in, info->reshape_hook_z, &s->n_rows, &s->n_streams,
                           &s->tokens_per_stream, &err) != SAEMON_OK)
        goto fail;
    if (saemon_encoder_create(s->dict, opts, &s->encoder, &err) != SAEMON_OK)
        goto fail;
    cli_encoder_warn(s->encoder);
    if (rules && plan)
        cli_plan_log(what, s->encoder);
    fprintf(stderr, "saemon %s: ready in %.3f s (dictionary and encoder)\n", what, clock_now_s() - t0);
    return true;
fail:
    cli_fail(what, &err);
    cli_session_close(s);
    return false;
}

void cli_session_close(cli_session *s)
{
    saemon_encoder_destroy(s->encoder);
    saemon_npy_close(&s->input);
    saemon_dict_close(s->dict);
    memset(s, 0, sizeof *s);
}

bool cli_write_sparse_line(FILE *f, const char *dictionary, const char *ring, uint64_t stream, uint64_t token,
                           const uint32_t *idx, const float *val, size_t nnz, bool input_nonfinite)
{
    /* Names here come from the config's validated character sets (no quotes
     * or backslashes), so they need no escaping. */
    int ok = fputc('{', f) != EOF;
    if (ok && dictionary)
        ok = fprintf(f, "\"dictionary\":\"%s\",", dictionary) > 0;
    if (ok && ring)
        ok = fprintf(f, "\"ring\":\"%s\",", ring) > 0;
    ok = ok && fprintf(f, "\"stream\":%" PRIu64 ",\"token\":%" PRIu64 ",\"index\":[", stream, token) > 0;
    for (size_t i = 0; i < nnz && ok; i++)
        ok = fprintf(f, "%s%" PRIu32, i ? "," : "", idx[i]) > 0;
    ok = ok && fputs("],\"value\":[", f) >= 0;
    for (size_t i = 0; i < nnz && ok; i++)
        ok = (!i || fputc(',', f) != EOF) && cli_write_json_float(f, val[i]);
    if (ok && input_nonfinite)
        return fputs("],\"input_nonfinite\":true}\n", f) >= 0;
    return ok && fputs("]}\n", f) >= 0;
}
