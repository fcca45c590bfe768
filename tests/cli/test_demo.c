/* `saemon demo` end to end: the alerts it prints must be exactly the ones the
 * planted ground truth of the toy model calls for under the demo rules
 * (monitors/examples/demo.yaml: alarm for 3 tokens with cooldown 8; the pair
 * rule on every new co-activation). The oracle (cli_run.h) re-derives them from
 * the toy model's own record of what it planted, not from saemon's output. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/toy_model.h"
#include "tests/cli/cli_run.h"
#include "tests/support/support.h"

#define TOKENS 20000
#define SEED "2024"

Test(demo, alerts_match_planted_ground_truth, .timeout = 120)
{
    char *dir = test_tmpdir();
    char alerts_path[4096];
    snprintf(alerts_path, sizeof alerts_path, "%s/alerts.jsonl", dir);
    const char *args[] = {"demo", "--tokens", "20000", "--seed", SEED, "--alerts", alerts_path, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "demo failed: %s", r.err);
    cr_assert(strstr(r.out, "toy-superposition-128x256"), "demo must print what it loaded");
    cr_assert(strstr(r.out, "summary:"), "demo must print a summary");

    /* Expected firings from the ground truth. */
    toy_model *toy = toy_create(strtoull(SEED, NULL, 10));
    static float x[TOKENS * TOY_D_IN];
    static toy_truth truth[TOKENS];
    toy_generate(toy, x, TOKENS, truth);
    toy_destroy(toy);
    rule_oracle alarm = {.for_tokens = 3, .cooldown = 8, .armed = 1, .last_fire = -1};
    rule_oracle pair = {.for_tokens = 1, .cooldown = 0, .armed = 1, .last_fire = -1};
    static char expect_alarm[TOKENS], expect_pair[TOKENS];
    size_t n_alarm = 0, n_pair = 0;
    for (long t = 0; t < TOKENS; t++) {
        n_alarm += expect_alarm[t] = (char)rule_oracle_step(&alarm, truth[t].alarm, t);
        n_pair += expect_pair[t] = (char)rule_oracle_step(&pair, truth[t].pair, t);
    }
    cr_assert_gt(n_alarm, 5, "the demo should plant several sustained bursts (got %zu)", n_alarm);
    cr_assert_gt(n_pair, 5);

    char *jsonl = slurp(alerts_path);
    cr_assert_not_null(jsonl);
    size_t got_alarm = 0, got_pair = 0;
    for (char *line = strtok(jsonl, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *a = cJSON_Parse(line);
        cr_assert_not_null(a, "not JSON: %s", line);
        const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule"));
        cJSON *tok = cJSON_GetObjectItem(a, "token");
        cr_assert(rule && cJSON_IsNumber(tok), "alert lacks rule/token: %s", line);
        long t = (long)tok->valuedouble;
        cr_assert(t >= 0 && t < TOKENS);
        if (!strcmp(rule, "alarm-direction-sustained")) {
            cr_assert(expect_alarm[t], "unexpected alarm alert at token %ld: %s", t, line);
            cJSON *feats = cJSON_GetObjectItem(a, "features");
            cr_assert_eq(cJSON_GetArraySize(feats), 1);
            cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(feats, 0), "index")->valueint, 173);
            cr_assert_gt(cJSON_GetObjectItem(cJSON_GetArrayItem(feats, 0), "value")->valuedouble, 3.0);
            cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "severity")), "critical");
            got_alarm++;
        } else if (!strcmp(rule, "pair-co-activation")) {
            cr_assert(expect_pair[t], "unexpected pair alert at token %ld", t);
            got_pair++;
        } else {
            cr_assert_fail("unknown rule %s", rule);
        }
        cJSON_Delete(a);
    }
    cr_assert_eq(got_alarm, n_alarm, "alarm alerts: got %zu, ground truth calls for %zu", got_alarm, n_alarm);
    cr_assert_eq(got_pair, n_pair, "pair alerts: got %zu, ground truth calls for %zu", got_pair, n_pair);
    free(jsonl);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir);
}

Test(demo, alert_write_failure_is_reported, .timeout = 60)
{
    const char *args[] = {"demo", "--tokens", "5000", "--alerts", "/dev/full", NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 1, "a full disk must fail the run (got %d)", r.exit_code);
    cr_assert(strstr(r.err, "No space left on device"), "stderr: %s", r.err);
    cli_result_free(&r);
}
