/* The public API the CLI needed (issue 11): a batch of encoded features fed
 * to a monitor, the reload policy of a running monitor, and the version. */
#include <math.h>

#include "rules_test.h"
#include "saemon/version.h"
#include "tests/support/support.h"

#define RULES "rules:\n  - name: r\n    condition: {feature: 7, above: 2}\n"

static saemon_dict_info toy_dict(void)
{
    saemon_dict_info info = {0};
    info.name = "toy";
    info.d_sae = 16;
    return info;
}

/* A batch of 4 tokens in CSR form: tokens 1 and 2 carry feature 7 = 5. */
static const size_t offsets[] = {0, 1, 2, 3, 3};
static const uint32_t index_[] = {3, 7, 7};
static const float value[] = {1.0f, 5.0f, 5.0f};
static const float norms[] = {1, 1, 1, 1};
static const bool nonfinite[] = {false, false, false, false};

Test(monitor_batch, same_alerts_as_token_by_token)
{
    saemon_ruleset *rs = load_ok(RULES);
    saemon_dict_info info = toy_dict();
    saemon_error err = {0};
    saemon_monitor *batch = NULL, *single = NULL;
    cr_assert_eq(saemon_monitor_create(rs, &info, NULL, &batch, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_monitor_create(rs, &info, NULL, &single, &err), SAEMON_OK, "%s", err.message);
    saemon_features f = {.n_tokens = 4, .offsets = offsets, .index = index_, .value = value,
                         .input_norm = norms, .input_nonfinite = nonfinite};
    /* two streams interleaved: tokens 0,1 of stream 5 and 0,1 of stream 6 */
    const uint64_t streams[] = {5, 5, 6, 6}, tokens[] = {0, 1, 0, 1};
    capture cb = {0}, cs = {0};
    saemon_monitor_observe_batch(batch, &f, streams, tokens, capture_alert, &cb);
    for (size_t t = 0; t < 4; t++)
        feed(single, streams[t], tokens[t], index_ + offsets[t], value + offsets[t], offsets[t + 1] - offsets[t], &cs);
    cr_assert_eq(cb.n, 2);
    cr_assert_eq(cb.n, cs.n);
    for (size_t i = 0; i < cb.n; i++) {
        cr_expect_str_eq(cb.a[i].json + 40, cs.a[i].json + 40); /* past the timestamp */
        cr_expect_eq(cb.a[i].stream, streams[i + 1], "alert %zu: %s", i, cb.a[i].json);
        cr_expect_eq(cb.a[i].token, tokens[i + 1], "alert %zu: %s", i, cb.a[i].json);
    }
    cr_assert_eq(saemon_monitor_get_stream_count(batch), 2);
    cr_assert_eq(saemon_monitor_get_dropped(batch), 0);
    /* missing position arrays: nothing evaluated, every token counted as dropped */
    saemon_monitor_observe_batch(batch, &f, NULL, tokens, capture_alert, &cb);
    cr_assert_eq(saemon_monitor_get_dropped(batch), 4);
    saemon_monitor_destroy(batch);
    saemon_monitor_destroy(single);
    saemon_rules_close(rs);
}

static char *write_rules(const char *dir, const char *yaml)
{
    return test_write_file(dir, "rules.yaml", yaml, strlen(yaml));
}

Test(monitor_reload_file, swaps_on_success_keeps_old_on_failure)
{
    char *dir = test_tmpdir();
    char *path = write_rules(dir, RULES);
    saemon_dict_info info = toy_dict();
    saemon_error err = {0};
    saemon_ruleset *rs = NULL;
    saemon_monitor *mon = NULL;
    cr_assert_eq(saemon_rules_open(path, NULL, &rs, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_monitor_create(rs, &info, NULL, &mon, &err), SAEMON_OK, "%s", err.message);
    saemon_reload_options policy = {.dict = &info, .can_reconstruct = false};
    saemon_reload_stats st = {0};

    /* a broken file: error with file:line:column, old rules and *rs untouched */
    free(write_rules(dir, "rules:\n  - name: r\n    condition: {feature: 7, above: }\n"));
    saemon_ruleset *before = rs;
    cr_assert_eq(saemon_monitor_reload_file(mon, path, &policy, &rs, &st, &err), SAEMON_ERR_RULES);
    cr_assert(strstr(err.message, "rules.yaml:3:"), "%s", err.message);
    cr_assert_eq(rs, before);
    /* feature out of the dictionary's range: refused by the bind */
    free(write_rules(dir, "rules:\n  - name: r\n    condition: {feature: 99, above: 2}\n"));
    cr_assert_neq(saemon_monitor_reload_file(mon, path, &policy, &rs, &st, &err), SAEMON_OK);
    cr_assert_eq(rs, before);
    /* a reconstruction rule while the encoder does not decode: refused */
    free(write_rules(dir, "rules:\n  - name: h\n    condition: {health: {reconstruction_error_above: 0.5}}\n"));
    cr_assert_eq(saemon_monitor_reload_file(mon, path, &policy, &rs, &st, &err), SAEMON_ERR_RULES);
    cr_assert(strstr(err.message, "does not decode"), "%s", err.message);
    cr_assert_eq(rs, before);

    /* the old rules still evaluate */
    const uint32_t idx[] = {7};
    const float val[] = {5.0f};
    capture c = {0};
    feed(mon, 1, 0, idx, val, 1, &c);
    cr_assert_eq(c.n, 1);
    cr_assert_str_eq(c.a[0].rule, "r");

    /* a good file: swapped, the old ruleset closed (ASan sees any use of it) */
    free(write_rules(dir, "rules:\n  - name: r\n    condition: {feature: 7, above: 2}\n"
                          "  - name: s\n    condition: {feature: 3, above: 0.5}\n"));
    cr_assert_eq(saemon_monitor_reload_file(mon, path, &policy, &rs, &st, &err), SAEMON_OK, "%s", err.message);
    cr_assert_neq(rs, before);
    cr_assert_eq(st.rules, 2);
    cr_assert_eq(st.kept, 1);
    cr_assert_eq(st.added, 1);
    const uint32_t idx3[] = {3};
    const float val1[] = {1.0f};
    feed(mon, 1, 1, idx3, val1, 1, &c);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(c.a[1].rule, "s");

    saemon_monitor_destroy(mon);
    saemon_rules_close(rs);
    free(path);
    test_rmtree(dir);
    free(dir);
}

Test(version, header_and_library_agree)
{
    cr_assert_str_eq(saemon_version(), SAEMON_VERSION);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", SAEMON_VERSION_MAJOR, SAEMON_VERSION_MINOR, SAEMON_VERSION_PATCH);
    cr_assert_str_eq(saemon_version(), expect);
}
