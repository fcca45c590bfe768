/* `saemon bench` end to end, briefly: the JSON/CSV it writes parse and hold
 * consistent figures, --compare flags a cell that got 10x faster, and bad
 * options are refused. No timing assertions. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cli/cli_run.h"
#include "tests/support/support.h"

#define QUICK_ARGS "bench", "--quick", "--shape", "gpt2", "--batch", "1", "--threads", "1", "--no-peers", \
                   "--no-real", "--no-plot", "--tokens", "200"

static cJSON *read_json(const char *path)
{
    char *text = slurp(path);
    cr_assert_not_null(text, "%s was not written", path);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "%s does not parse as JSON", path);
    free(text);
    return j;
}

Test(bench_cli, quick_run_writes_parseable_json_and_csv, .timeout = 240)
{
    char *dir = test_tmpdir();
    char out[4096], json_path[4200], csv_path[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(json_path, sizeof json_path, "%s/bench.json", out);
    snprintf(csv_path, sizeof csv_path, "%s/bench.csv", out);
    const char *args[] = {QUICK_ARGS, "--out", out, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "saemon bench failed: %s", r.err);
    cr_assert(strstr(r.out, "Batch-1 latency"), "no latency table in:\n%s", r.out);

    cJSON *j = read_json(json_path);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "tool")), "saemon bench");
    const cJSON *rows = cJSON_GetObjectItem(j, "results");
    cr_assert(cJSON_IsArray(rows));
    int latency_rows = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        if (cJSON_GetObjectItem(row, "skipped"))
            continue;
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(row, "kind")), "latency");
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(row, "shape")), "gpt2");
        cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(row, "threads")), 1);
        double calls = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "calls"));
        int early = cJSON_IsTrue(cJSON_GetObjectItem(row, "stopped_early"));
        cr_assert(early ? calls >= 64 && calls <= 200 : calls == 200, "calls %g (stopped early %d)", calls, early);
        double p50 = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "p50_s"));
        double p99 = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "p99_s"));
        double mx = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "max_s"));
        cr_assert(p50 > 0 && p50 <= p99 && p99 <= mx, "percentiles out of order: %g %g %g", p50, p99, mx);
        double l0 = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "mean_l0"));
        cr_assert(l0 > 1 && l0 < 1000, "mean L0 %g of the calibrated dictionary", l0);
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(row, "cdf_ms")), 201);
        latency_rows++;
    }
    cr_assert_gt(latency_rows, 0, "no measured latency row");

    char *csv = slurp(csv_path);
    cr_assert_not_null(csv);
    cr_assert(!strncmp(csv, "kind,source,shape,impl,variant,threads", 38));
    int lines = 0;
    for (char *c = csv; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, cJSON_GetArraySize(rows) + 1, "one CSV line per JSON result plus the header");
    free(csv);

    /* An "old" run 10x slower in every latency figure: the new one must be flagged faster. */
    cJSON_ArrayForEach(row, rows)
    {
        const char *keys[] = {"p50_s", "p99_s"};
        for (int k = 0; k < 2; k++) {
            cJSON *v = cJSON_GetObjectItem(row, keys[k]);
            if (v)
                cJSON_SetNumberValue(v, v->valuedouble * 10);
        }
    }
    char *old_text = cJSON_Print(j);
    char *old_path = test_write_file(dir, "old.json", old_text, strlen(old_text));
    const char *args2[] = {QUICK_ARGS, "--compare", old_path, NULL};
    cli_result r2 = cli_run(args2);
    cr_assert_eq(r2.exit_code, 0, "saemon bench --compare failed: %s", r2.err);
    cr_assert(strstr(r2.out, "FASTER"), "nothing flagged faster:\n%s", r2.out);
    cr_assert(!strstr(r2.out, "SLOWER"), "a 10x faster cell flagged slower:\n%s", r2.out);
    cr_assert(strstr(r2.out, "cells compared"));
    cli_result_free(&r2);
    free(old_text);
    free(old_path);
    cJSON_Delete(j);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir);
}

Test(bench_cli, bad_options_are_refused, .timeout = 60)
{
    const char *bad_batch[] = {"bench", "--batch", "0", NULL};
    cli_result r = cli_run(bad_batch);
    cr_assert_eq(r.exit_code, 2);
    cr_assert(strstr(r.err, "--batch"), "%s", r.err);
    cli_result_free(&r);

    const char *bad_shape[] = {"bench", "--shape", "llama", NULL};
    r = cli_run(bad_shape);
    cr_assert_eq(r.exit_code, 2);
    cr_assert(strstr(r.err, "llama"), "%s", r.err);
    cli_result_free(&r);
}

Test(bench_cli, unreadable_compare_file_fails, .timeout = 240)
{
    const char *args[] = {QUICK_ARGS, "--tokens", "20", "--compare", "/nonexistent/old.json", NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "/nonexistent/old.json"), "%s", r.err);
    cli_result_free(&r);
}

/* `saemon bench memory` on a small generated dictionary and its pack: a
 * table row per source and watched count. */
Test(bench_cli, memory_table_on_a_small_dictionary, .timeout = 120)
{
    char dir[] = "/tmp/saemon-bench-mem-XXXXXX";
    cr_assert(mkdtemp(dir));
    const char *args[] = {"bench", "memory", "--dir", dir, "--sizes", "64x2048", "--watched", "1,64,all", NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "| 64 x 2048 | 0 MiB | SAELens | 1 |"), "%s", r.out);
    cr_assert(strstr(r.out, "| 64 x 2048 | 0 MiB | SAELens | 64 |"), "%s", r.out);
    cr_assert(strstr(r.out, "| 64 x 2048 | 0 MiB | pack | 64 |"), "%s", r.out);
    cr_assert(strstr(r.out, "| peak anonymous |"), "%s", r.out);
    cr_assert(strstr(r.out, "all (--encode all)"), "%s", r.out);
    cli_result_free(&r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
