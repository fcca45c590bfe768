/* saemon_rules_bind: the dictionary pin and feature ranges. */
#include "rules_test.h"

#define SHA "ab1200000000000000000000000000000000000000000000000000000000cdef"
#define SHA_UPPER "AB1200000000000000000000000000000000000000000000000000000000CDEF"

static saemon_dict_info dict(const char *name, size_t d_sae, const char *sha)
{
    saemon_dict_info info = {0};
    info.name = name;
    info.d_sae = d_sae;
    snprintf(info.sha256, sizeof info.sha256, "%s", sha);
    return info;
}

static const char *pinned =
    "dictionary:\n"
    "  name: pasttense-mlp/saelens\n"
    "  d_sae: 512\n"
    "  sha256: \"" SHA_UPPER "\"\n"
    "rules:\n"
    "  - name: r\n"
    "    condition: {all: [{feature: 7, above: 1}, {feature: 511, below: 2}]}\n";

static saemon_status bind(const char *yaml, saemon_dict_info info, saemon_error *err)
{
    saemon_ruleset *rs = load_ok(yaml);
    saemon_status s = saemon_rules_bind(rs, &info, err);
    saemon_rules_close(rs);
    return s;
}

Test(bind, matching_pin_binds_and_sha_is_case_insensitive)
{
    saemon_error err = {0};
    cr_expect_eq(bind(pinned, dict("pasttense-mlp/saelens", 512, SHA), &err), SAEMON_OK, "%s", err.message);
}

Test(bind, name_mismatch_says_expected_and_loaded)
{
    saemon_error err = {0};
    cr_assert_eq(bind(pinned, dict("villes", 512, SHA), &err), SAEMON_ERR_MISMATCH);
    cr_expect(strncmp(err.message, "t.yaml:2:9:", 11) == 0, "%s", err.message);
    cr_expect(strstr(err.message, "'pasttense-mlp/saelens'") && strstr(err.message, "'villes'"), "%s",
              err.message);
}

Test(bind, d_sae_mismatch)
{
    saemon_error err = {0};
    cr_assert_eq(bind(pinned, dict("pasttense-mlp/saelens", 1024, SHA), &err), SAEMON_ERR_MISMATCH);
    cr_expect(strncmp(err.message, "t.yaml:3:10:", 12) == 0, "%s", err.message);
    cr_expect(strstr(err.message, "d_sae 512") && strstr(err.message, "d_sae 1024"), "%s", err.message);
}

Test(bind, sha256_mismatch)
{
    saemon_error err = {0};
    const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
    cr_assert_eq(bind(pinned, dict("pasttense-mlp/saelens", 512, other), &err), SAEMON_ERR_MISMATCH);
    cr_expect(strncmp(err.message, "t.yaml:4:11:", 12) == 0, "%s", err.message);
    cr_expect(strstr(err.message, SHA) && strstr(err.message, other), "%s", err.message);
}

Test(bind, feature_out_of_range_points_at_the_index)
{
    saemon_error err = {0};
    const char *yaml = "rules:\n  - name: r\n    condition: {any: [{feature: 3, above: 1},\n"
                       "                       {feature: 16, above: 1}]}\n";
    cr_assert_eq(bind(yaml, dict("toy", 16, ""), &err), SAEMON_ERR_RULES);
    cr_expect(strncmp(err.message, "t.yaml:4:34:", 12) == 0, "%s", err.message);
    cr_expect(strstr(err.message, "feature 16 is out of range") && strstr(err.message, "< 16"), "%s",
              err.message);
    cr_expect_eq(bind(yaml, dict("toy", 17, ""), &err), SAEMON_OK, "%s", err.message);
}

Test(bind, disabled_rules_are_checked_too)
{
    saemon_error err = {0};
    const char *yaml = "rules:\n  - name: r\n    enabled: false\n    condition: {feature: 99, above: 1}\n";
    cr_expect_eq(bind(yaml, dict("toy", 16, ""), &err), SAEMON_ERR_RULES);
    cr_expect(strncmp(err.message, "t.yaml:4:26:", 12) == 0, "%s", err.message);
}

Test(bind, unpinned_file_binds_to_anything_in_range)
{
    saemon_error err = {0};
    cr_expect_eq(bind("rules:\n  - name: r\n    condition: {feature: 0, above: 1}\n", dict(NULL, 1, ""), &err),
                 SAEMON_OK, "%s", err.message);
}
