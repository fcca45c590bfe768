/* issue 12 regressions through the CLI on a tiny hand-made SAE (no shared
 * data needed): `run` resolves what still fires when a sequence ends,
 * `encode --sparse` writes valid JSON for non-finite values, and a repeated
 * sink flag is refused instead of silently replacing the first. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/saemon.h"
#include "tests/cli/cli_run.h"
#include "tests/support/st_writer.h"
#include "tests/support/support.h"

static char *dir;

/* Standard SAE, d_in 2, d_sae 2: feature 0 = relu(x0), feature 1 = relu(-x0). */
static void setup(void)
{
    dir = test_tmpdir();
    const char *cfg = "{\"d_in\": 2, \"d_sae\": 2, \"dtype\": \"float32\", \"architecture\": \"standard\", "
                      "\"metadata\": {\"sae_lens_version\": \"6.0.0\", \"hook_name\": \"blocks.0.hook_resid_post\", "
                      "\"model_name\": \"toy\"}}";
    free(test_write_file(dir, "cfg.json", cfg, strlen(cfg)));
    st_writer *w = stw_new();
    const float w_enc[] = {1, -1, 0, 0}, w_dec[] = {1, 0, -1, 0}, zero[] = {0, 0};
    stw_add_floats(w, "W_enc", "F32", (uint64_t[]){2, 2}, 2, w_enc);
    stw_add_floats(w, "W_dec", "F32", (uint64_t[]){2, 2}, 2, w_dec);
    stw_add_floats(w, "b_enc", "F32", (uint64_t[]){2}, 1, zero);
    stw_add_floats(w, "b_dec", "F32", (uint64_t[]){2}, 1, zero);
    free(stw_write(w, dir, "sae_weights.safetensors"));
    stw_free(w);
}

static void teardown(void)
{
    test_rmtree(dir);
    free(dir);
}

static char *write_npy(const char *name, const float *data, size_t ndim, const size_t *shape)
{
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
    saemon_error err = {0};
    cr_assert_eq(saemon_npy_write_f32(path, data, ndim, shape, &err), SAEMON_OK, "%s", err.message);
    return path;
}

static char *write_text(const char *name, const char *text)
{
    return test_write_file(dir, name, text, strlen(text));
}

/* "stream:token:status ..." of the alert lines */
static void alert_events(const char *jsonl, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (const char *line = jsonl; line && *line;) {
        const char *nl = strchr(line, '\n');
        cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
        cr_assert_not_null(j, "not JSON: %s", line);
        o += (size_t)snprintf(out + o, cap - o, "%s%d:%d:%s", o ? " " : "",
                              cJSON_GetObjectItem(j, "stream")->valueint, cJSON_GetObjectItem(j, "token")->valueint,
                              cJSON_GetObjectItem(j, "status")->valuestring);
        cJSON_Delete(j);
        line = nl ? nl + 1 : NULL;
    }
}

TestSuite(robust_cli, .init = setup, .fini = teardown, .timeout = 60);

Test(robust_cli, run_resolves_alerts_still_firing_when_a_sequence_ends)
{
    const float x[] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0}; /* [2, 3, 2]: feature 0 = 1 everywhere */
    char *acts = write_npy("acts.npy", x, 3, (size_t[]){2, 3, 2});
    char *rules = write_text("r.yaml", "rules:\n  - name: on\n    condition: {feature: 0, above: 0.5}\n");
    const char *args[] = {"run", "--sae", dir, "--rules", rules, "--input", acts, "--resolved", NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    char got[512];
    alert_events(r.out, got, sizeof got);
    cr_expect_str_eq(got, "0:0:firing 0:2:resolved 1:0:firing 1:2:resolved");
    cli_result_free(&r);

    /* [n, d_in]: one stream, resolved after the last row */
    char *flat = write_npy("flat.npy", x, 2, (size_t[]){6, 2});
    const char *args2[] = {"run", "--sae", dir, "--rules", rules, "--input", flat, "--resolved", NULL};
    r = cli_run(args2);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    alert_events(r.out, got, sizeof got);
    cr_expect_str_eq(got, "0:0:firing 0:5:resolved");
    cli_result_free(&r);
    free(acts), free(flat), free(rules);
}

Test(robust_cli, encode_sparse_is_valid_json_for_infinite_inputs)
{
    const float x[] = {1, 0, -INFINITY, 0, NAN, 0, 2, 0};
    char *acts = write_npy("acts.npy", x, 2, (size_t[]){4, 2});
    char out[4200];
    snprintf(out, sizeof out, "%s/f.jsonl", dir);
    const char *args[] = {"encode", "--sae", dir, "--input", acts, "--sparse", out, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    char *text = slurp(out);
    cr_assert_not_null(text);
    size_t lines = 0;
    for (char *line = text; line && *line; lines++) {
        char *nl = strchr(line, '\n');
        cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
        cr_assert_not_null(j, "line %zu is not JSON: %.*s", lines, (int)(nl - line), line);
        cJSON *flag = cJSON_GetObjectItem(j, "input_nonfinite");
        cr_expect_eq(flag != NULL && cJSON_IsTrue(flag), lines == 1 || lines == 2, "line %zu: %.*s", lines,
                     (int)(nl - line), line);
        if (lines == 1) { /* -inf in x0: feature 1 = -x0 = +inf */
            cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "value"), 0);
            cr_expect(cJSON_IsString(v) && !strcmp(v->valuestring, "+Inf"), "%.*s", (int)(nl - line), line);
        }
        cJSON_Delete(j);
        line = nl + 1;
    }
    cr_expect_eq(lines, 4);
    free(text), free(acts);
    cli_result_free(&r);
}

Test(robust_cli, repeated_sink_flags_are_refused)
{
    const char *flags[] = {"--alerts", "--webhook", "--exec", "--alertmanager", "--spool"};
    const char *values[][2] = {{"a.jsonl", "b.jsonl"},
                               {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"},
                               {"true", "false"},
                               {"http://127.0.0.1:1", "http://127.0.0.1:2"},
                               {"s1", "s2"}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const char *args[] = {"demo", "--tokens", "10", flags[i], values[i][0], flags[i], values[i][1], NULL};
        cli_result r = cli_run(args);
        cr_expect_eq(r.exit_code, 2, "%s twice: exit %d, stderr %s", flags[i], r.exit_code, r.err);
        char want[128];
        snprintf(want, sizeof want, "%s given twice", flags[i]);
        cr_expect(strstr(r.err, want), "want '%s' in: %s", want, r.err);
        cli_result_free(&r);
    }
}
