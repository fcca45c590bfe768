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
    if (fresh.needs.full_reason[0])
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

void cli_plan_free(cli_plan *p)
{
    free(p->latents);
    free(p->next.latents);
    p->latents = NULL;
    p->next = (cli_plan_next){0};
}
