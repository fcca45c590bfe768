/* saemon_rules_bind and the small ruleset queries. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "monitors/rules_internal.h"

static saemon_status out_of_range(const saemon_ruleset *rs, uint32_t feature, walk_pos m, size_t d_sae,
                                  const char *dict_name, saemon_error *err)
{
    return saemon_error_set(err, SAEMON_ERR_RULES,
                            "%s:%zu:%zu: feature %u is out of range for dictionary '%s' "
                            "(d_sae %zu); expected an index < %zu",
                            rs->filename, m.line, m.column, feature, dict_name, d_sae, d_sae);
}

static saemon_status check_features(const saemon_ruleset *rs, const rules_cond *c, size_t d_sae,
                                    const char *dict_name, saemon_error *err)
{
    if (c->kind == RULES_COND_LEAF)
        return c->feature < d_sae ? SAEMON_OK : out_of_range(rs, c->feature, c->feature_mark, d_sae, dict_name, err);
    if (c->kind == RULES_COND_PROBE) {
        for (size_t i = 0; i < c->n_weights; i++)
            if (c->probe_features[i] >= d_sae)
                return out_of_range(rs, c->probe_features[i], c->probe_marks[i], d_sae, dict_name, err);
        return SAEMON_OK;
    }
    for (size_t i = 0; i < c->n_children; i++) {
        saemon_status s = check_features(rs, &c->children[i], d_sae, dict_name, err);
        if (s != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

saemon_status saemon_rules_bind(const saemon_ruleset *rs, const saemon_dict_info *dict,
                                saemon_error *err)
{
    if (!rs || !dict)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_rules_bind: NULL argument");
    const char *name = dict->name ? dict->name : "(unnamed)";
    const rules_pin *pin = &rs->pin;
    if (pin->name && (!dict->name || strcmp(pin->name, dict->name) != 0))
        return saemon_error_set(err, SAEMON_ERR_MISMATCH,
                                "%s:%zu:%zu: rule file is pinned to dictionary '%s' but the loaded "
                                "dictionary is '%s'; expected the dictionary the rules were written for",
                                rs->filename, pin->name_mark.line, pin->name_mark.column, pin->name, name);
    if (pin->has_d_sae && pin->d_sae != dict->d_sae)
        return saemon_error_set(err, SAEMON_ERR_MISMATCH,
                                "%s:%zu:%zu: rule file expects d_sae %llu but dictionary '%s' has "
                                "d_sae %zu; expected the dictionary the rules were written for",
                                rs->filename, pin->d_sae_mark.line, pin->d_sae_mark.column,
                                (unsigned long long)pin->d_sae, name, dict->d_sae);
    if (pin->sha256 && strcasecmp(pin->sha256, dict->sha256) != 0)
        return saemon_error_set(err, SAEMON_ERR_MISMATCH,
                                "%s:%zu:%zu: rule file expects weights sha256 %s but dictionary '%s' "
                                "has sha256 %s; expected the dictionary the rules were written for",
                                rs->filename, pin->sha256_mark.line, pin->sha256_mark.column,
                                pin->sha256, name, dict->sha256[0] ? dict->sha256 : "(none)");
    /* Disabled rules are checked too: enabling one later must not surprise. */
    for (size_t i = 0; i < rs->n_rules; i++) {
        saemon_status s = check_features(rs, rs->rules[i].cond, dict->d_sae, name, err);
        if (s != SAEMON_OK)
            return s;
    }
    return SAEMON_OK;
}

size_t saemon_rules_get_count(const saemon_ruleset *rules)
{
    return rules ? rules->n_rules : 0;
}

size_t saemon_rules_get_enabled_count(const saemon_ruleset *rules)
{
    return rules ? rules->n_enabled : 0;
}
