/* saemon_rules_needed_latents: the set of latents a ruleset reads, so the
 * encoder can compute only those (docs/rules.md "What the encoder computes"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitors/rules_needs.h"
#include "saemon/rules.h"

bool rules_cond_has_health(const rules_cond *c)
{
    if (c->kind == RULES_COND_HEALTH)
        return true;
    for (size_t i = 0; i < c->n_children; i++)
        if (rules_cond_has_health(&c->children[i]))
            return true;
    return false;
}

const char *rules_cond_full_measure(const rules_cond *c)
{
    if (c->kind == RULES_COND_HEALTH) {
        if (c->health == RULES_HEALTH_L0_OUTSIDE)
            return "L0 (l0_outside)";
        if (c->health == RULES_HEALTH_RECON_ABOVE)
            return "the reconstruction error (reconstruction_error_above)";
        return NULL; /* input norm and non-finite input come from the raw row */
    }
    for (size_t i = 0; i < c->n_children; i++) {
        const char *m = rules_cond_full_measure(&c->children[i]);
        if (m)
            return m;
    }
    return NULL;
}

/* Mark every feature the condition reads (leaves, running means, probe
 * features with a nonzero weight; lists, macros and labels are already
 * resolved to leaves). */
static void mark(const rules_cond *c, uint8_t *seen)
{
    switch (c->kind) {
    case RULES_COND_LEAF: seen[c->feature] = 1; return;
    case RULES_COND_PROBE:
        for (size_t i = 0; i < c->n_weights; i++)
            if (c->probe_weights[i] != 0.0f)
                seen[c->probe_features[i]] = 1;
        return;
    case RULES_COND_HEALTH: return;
    default:
        for (size_t i = 0; i < c->n_children; i++)
            mark(&c->children[i], seen);
    }
}

static uint32_t top_feature(const rules_cond *c)
{
    uint32_t m = 0;
    if (c->kind == RULES_COND_LEAF)
        return c->feature;
    for (size_t i = 0; c->kind == RULES_COND_PROBE && i < c->n_weights; i++)
        m = c->probe_features[i] > m ? c->probe_features[i] : m;
    for (size_t i = 0; i < c->n_children; i++) {
        uint32_t x = top_feature(&c->children[i]);
        m = x > m ? x : m;
    }
    return m;
}

size_t saemon_rules_needed_latents(const saemon_ruleset *rules, uint32_t *out, size_t cap, saemon_rules_needs *needs)
{
    saemon_rules_needs nd = {0};
    size_t n = 0;
    if (!rules) {
        if (needs)
            *needs = nd;
        return 0;
    }
    uint32_t top = 0;
    for (size_t i = 0; i < rules->n_rules; i++) {
        const rules_rule *r = &rules->rules[i];
        if (!r->enabled)
            continue;
        if (r->capture_window > nd.capture_window)
            nd.capture_window = r->capture_window;
        uint32_t t = top_feature(r->cond);
        top = t > top ? t : top;
        if (r->every) {
            nd.full_every = nd.full_every == 0 || r->every < nd.full_every ? r->every : nd.full_every;
        } else if (!nd.full_reason[0]) {
            const char *m = rules_cond_full_measure(r->cond);
            if (m)
                snprintf(nd.full_reason, sizeof nd.full_reason, "rule '%s' reads %s on every token", r->name, m);
        }
    }
    nd.reconstruction = rules->needs_reconstruction;
    uint8_t *seen = calloc((size_t)top + 1, 1);
    if (!seen) {
        nd.out_of_memory = true;
        if (needs)
            *needs = nd;
        return 0;
    }
    for (size_t i = 0; i < rules->n_rules; i++)
        if (rules->rules[i].enabled)
            mark(rules->rules[i].cond, seen);
    for (size_t j = 0; j <= top; j++) {
        if (!seen[j])
            continue;
        if (out && n < cap)
            out[n] = (uint32_t)j;
        n++;
    }
    free(seen);
    nd.n_latents = n;
    if (needs)
        *needs = nd;
    return n;
}
