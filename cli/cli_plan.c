/* --encode auto|rules|all: which latents the encoder computes for a rule
 * pack (subset plans, docs/ARCHITECTURE.md), and keeping the plan in step
 * with reloaded rules. Everything here is public API a C user (or `serve`)
 * can call the same way. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/cli.h"

bool cli_parse_encode_mode(const char *text, saemon_encode_mode *out)
{
    if (!strcmp(text, "auto"))
        *out = SAEMON_ENCODE_AUTO;
    else if (!strcmp(text, "rules"))
        *out = SAEMON_ENCODE_RULES;
    else if (!strcmp(text, "all"))
        *out = SAEMON_ENCODE_ALL;
    else {
        fprintf(stderr, "saemon: --encode expects auto, rules or all, got '%s'\n", text);
        return false;
    }
    return true;
}

/* The rules' latents into p->latents (malloc'd); false on no memory. */
static bool collect(cli_plan *p, const saemon_ruleset *rules)
{
    size_t n = saemon_rules_needed_latents(rules, NULL, 0, &p->needs);
    uint32_t *lat = malloc((n ? n : 1) * sizeof *lat);
    if (!lat || p->needs.out_of_memory) {
        free(lat);
        fprintf(stderr, "saemon: out of memory for the rules' latent set\n");
        return false;
    }
    saemon_rules_needed_latents(rules, lat, n, &p->needs);
    free(p->latents);
    p->latents = lat;
    return true;
}

bool cli_plan_apply(cli_plan *p, const saemon_ruleset *rules, saemon_encoder_options *eo)
{
    eo->encode = p->mode;
    eo->reconstruction = saemon_rules_needs_reconstruction(rules);
    if (p->mode == SAEMON_ENCODE_ALL)
        return true;
    if (!collect(p, rules))
        return false;
    eo->latents = p->latents;
    eo->n_latents = p->needs.n_latents;
    eo->full_reason = p->needs.full_reason[0] ? p->needs.full_reason : NULL;
    eo->full_every = p->needs.full_every;
    return true;
}

void cli_plan_log(const char *what, const saemon_encoder *enc)
{
    fprintf(stderr, "saemon %s: encoder plan: %s\n", what, saemon_encoder_get_plan(enc));
}

/* Capture on demand encodes every latent: refused when the dictionary holds only some. */
static bool capture_refused(const saemon_dict *dict, const saemon_rules_needs *needs, saemon_error *err)
{
    saemon_dict_load_stats held = {0};
    saemon_dict_get_load_stats(dict, &held);
    const size_t d_sae = dict ? saemon_dict_get_info(dict)->d_sae : 0;
    if (!needs->capture_window || !dict || held.latents_loaded >= d_sae)
        return false;
    saemon_error_set(err, SAEMON_ERR_RULES,
                     "a new rule captures features on demand, which encodes every latent, but this run holds only "
                     "%zu of the %zu latents (it started with the rules' own); expected a restart to add capture",
                     held.latents_loaded, d_sae);
    return true;
}

bool cli_plan_reload(cli_plan *p, saemon_encoder *enc, const saemon_ruleset *next, saemon_error *err)
{
    if (p->mode == SAEMON_ENCODE_ALL || !saemon_encoder_is_subset(enc))
        return true; /* every latent is computed already */
    cli_plan fresh = {.mode = p->mode};
    if (!collect(&fresh, next)) {
        saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for the new rules' latent set");
        return false;
    }
    bool ok = false;
    if (capture_refused(p->dict, &fresh.needs, err))
        ;
    else if (fresh.needs.full_reason[0])
        saemon_error_set(err, SAEMON_ERR_RULES,
                         "%s, but this run encodes a subset of the latents; expected `every: N` on that "
                         "rule, or a restart with --encode all",
                         fresh.needs.full_reason);
    else if (fresh.needs.full_every != p->needs.full_every)
        saemon_error_set(err, SAEMON_ERR_RULES,
                         "the new rules sample the full encode every %llu tokens but this run samples every "
                         "%llu; expected the same `every:` or a restart",
                         (unsigned long long)fresh.needs.full_every, (unsigned long long)p->needs.full_every);
    else
        ok = saemon_encoder_set_latents(enc, fresh.latents, fresh.needs.n_latents, err) == SAEMON_OK;
    if (!ok) {
        cli_plan_free(&fresh);
        return false;
    }
    /* keep the old set until the monitor has switched too (cli_plan_commit) */
    p->next = (cli_plan_next){.latents = fresh.latents, .needs = fresh.needs};
    return true;
}

void cli_plan_commit(cli_plan *p, bool switched, saemon_encoder *enc)
{
    if (!p->next.latents)
        return;
    if (switched) {
        free(p->latents);
        p->latents = p->next.latents;
        p->needs = p->next.needs;
    } else {
        /* the monitor kept the old rules: put the old latent set back */
        saemon_error err = {0};
        if (saemon_encoder_set_latents(enc, p->latents, p->needs.n_latents, &err) != SAEMON_OK)
            fprintf(stderr, "saemon: could not restore the encoder plan: %s\n", err.message);
        free(p->next.latents);
    }
    p->next = (cli_plan_next){0};
}

/* What a plan leaves out of memory, and why: the dictionary's load options. */
static const char *load_plan(const cli_plan *p, const saemon_encoder_options *eo, saemon_dict_load_options *lo)
{
    *lo = (saemon_dict_load_options){.no_decoder = !eo->reconstruction, .defer_sha256 = true};
    if (eo->encode == SAEMON_ENCODE_ALL)
        return "encode mode 'all'";
    if (!eo->latents)
        return "no rules";
    if (eo->full_reason)
        return eo->full_reason;
    if (eo->full_every)
        return "a health rule samples every latent (`every:`)";
    if (eo->reconstruction)
        return "the reconstruction error needs every latent";
    if (eo->keep_full)
        return "the full plan is kept";
    if (p->needs.capture_window)
        return "capture on demand encodes every latent";
    lo->subset = true;
    lo->latents = eo->latents;
    lo->n_latents = eo->n_latents;
    return NULL;
}

static void log_load(const char *what, const saemon_dict *d, const char *whole_why, bool decoder_wanted)
{
    saemon_dict_load_stats st;
    saemon_dict_get_load_stats(d, &st);
    const saemon_dict_info *in = saemon_dict_get_info(d);
    fprintf(stderr,
            "saemon %s: dictionary: read %.1f MiB of a %.1f MiB file in %.3f s; holds %.1f MiB: %zu of %zu encoder "
            "rows (%s), W_dec %s\n",
            what, (double)st.bytes_read / 1048576.0, (double)in->weights_bytes / 1048576.0, st.seconds,
            (double)st.resident_bytes / 1048576.0, st.latents_loaded, in->d_sae,
            st.latents_loaded < in->d_sae ? "the rules' latents"
            : whole_why                   ? whole_why
                                          : "every latent",
            st.decoder_loaded ? (decoder_wanted ? "read (the reconstruction error needs it)"
                                                : "read (TopK rescales by the decoder norms)")
                              : "not read (nothing needs it)");
    if (st.mapped_bytes)
        fprintf(stderr,
                "saemon %s: dictionary: a pack: %.1f MiB of rows%s used in place from a read-only shared mapping "
                "(no copy; pages shared with other processes mapping it)\n",
                what, (double)st.mapped_bytes / 1048576.0, st.decoder_loaded ? " and W_dec" : "");
}

bool cli_plan_open_dict(cli_plan *p, const char *what, const char *dir, saemon_ruleset *rules,
                        saemon_encoder_options *eo, saemon_dict **out)
{
    *out = NULL;
    if (rules && p && !cli_plan_apply(p, rules, eo))
        return false;
    saemon_dict_load_options lo;
    static const cli_plan none = {.mode = SAEMON_ENCODE_ALL};
    const char *whole_why = load_plan(rules && p ? p : &none, eo, &lo);
    saemon_error err = {0};
    saemon_status st = saemon_dict_open_with(dir, &lo, out, &err);
    if (st == SAEMON_ERR_ARG && lo.subset) {
        /* a rule names a latent past d_sae: the whole load lets bind say where */
        lo.subset = false;
        st = saemon_dict_open_with(dir, &lo, out, &err);
    }
    if (st != SAEMON_OK) {
        cli_fail(what, &err);
        return false;
    }
    if (rules) {
        st = saemon_rules_bind(rules, saemon_dict_get_info(*out), &err);
        if (st == SAEMON_ERR_MISMATCH && !saemon_dict_get_info(*out)->sha256[0] && strstr(err.message, "sha256")) {
            /* a sha256 pin: hash the weights (deferred until now) */
            saemon_error herr = {0};
            if (saemon_dict_compute_sha256(*out, &herr) == SAEMON_OK)
                st = saemon_rules_bind(rules, saemon_dict_get_info(*out), &err);
        }
        /* a pack's labels for the alerts (the rules are the caller's, not yet in a monitor) */
        if (st == SAEMON_OK)
            st = saemon_rules_use_labels(rules, saemon_dict_get_feature_labels(*out),
                                         saemon_dict_get_info(*out)->d_sae, &err);
        if (st != SAEMON_OK) {
            fprintf(stderr, "%s\n", err.message);
            saemon_dict_close(*out);
            *out = NULL;
            return false;
        }
    }
    if (p)
        p->dict = *out;
    log_load(what, *out, whole_why, eo->reconstruction);
    return true;
}

bool cli_plan_prefetch(saemon_dict *dict, const saemon_ruleset *next, saemon_error *err)
{
    if (!dict || !next)
        return true;
    saemon_rules_needs needs;
    size_t n = saemon_rules_needed_latents(next, NULL, 0, &needs);
    uint32_t *lat = malloc((n ? n : 1) * sizeof *lat);
    if (!lat) {
        saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for the new rules' latent set");
        return false;
    }
    saemon_rules_needed_latents(next, lat, n, &needs);
    bool ok = !capture_refused(dict, &needs, err) && saemon_dict_add_latents(dict, lat, n, err) == SAEMON_OK;
    free(lat);
    return ok;
}

void cli_plan_free(cli_plan *p)
{
    free(p->latents);
    free(p->next.latents);
    p->latents = NULL;
    p->next = (cli_plan_next){0};
}
