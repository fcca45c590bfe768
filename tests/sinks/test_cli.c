/* The CLI's sink flags: `saemon demo` with --sinks, --webhook + --spool,
 * --exec, and a bad sinks file (file:line:column, exit 1). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cli/cli_run.h"
#include "tests/sinks/http_server.h"
#include "tests/support/support.h"

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

Test(cli_sinks, demo_with_a_sinks_file_and_a_webhook, .timeout = 60)
{
    signal(SIGPIPE, SIG_IGN);
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    char *dir = test_tmpdir();
    char yaml[16384], url[64], spool[4200], jsonl[4200], copy[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", srv.port);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(jsonl, sizeof jsonl, "%s/alerts.jsonl", dir);
    snprintf(copy, sizeof copy, "%s/exec.jsonl", dir);
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: jsonl\n"
             "    path: %s\n"
             "    fsync: every\n"
             "  - type: exec\n"
             "    command: [sh, -c, 'cat >> \"$1\"', sh, %s]\n",
             jsonl, copy);
    char *cfg = test_write_file(dir, "sinks.yaml", yaml, strlen(yaml));
    const char *args[] = {"demo", "--tokens", "3000", "--sinks", cfg, "--webhook", url, "--spool", spool, "--resolved",
                          NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    char *a = slurp(jsonl), *b = slurp(copy);
    cr_assert(a && b);
    size_t n = count_lines(a);
    cr_assert_gt(n, 0, "the demo raises alerts");
    cr_assert_str_eq(a, b, "the exec sink saw the same lines as the file");
    cr_assert(strstr(a, "\"status\":\"resolved\""), "--resolved reports resolved alerts too");
    cr_assert_eq(http_server_count(&srv), n, "the webhook got every alert");
    char want[256];
    snprintf(want, sizeof want, "sink webhook:http://127.0.0.1:%d: %zu delivered, 0 retried, 0 spooled, 0 dropped, 0 failed",
             srv.port, n);
    cr_assert(strstr(r.err, want), "want '%s' in stderr: %s", want, r.err);
    cr_assert(!strstr(r.out, "\"rule\""), "no alert goes to stdout when sinks are given");
    free(a);
    free(b);
    free(cfg);
    cli_result_free(&r);
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir);
}

Test(cli_sinks, bad_sinks_file_is_refused_with_its_position)
{
    char *dir = test_tmpdir();
    const char *yaml = "sinks:\n  - type: jsonl\n    path: x.jsonl\n    fsync: sometimes\n";
    char *cfg = test_write_file(dir, "sinks.yaml", yaml, strlen(yaml));
    const char *args[] = {"demo", "--tokens", "100", "--sinks", cfg, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 1);
    char want[4200];
    snprintf(want, sizeof want, "%s:4:12: unknown fsync policy", cfg);
    cr_assert(strstr(r.err, want), "want '%s' in: %s", want, r.err);
    free(cfg);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir);
}

/* issue 12, item 6: deliveries that fail for good (HTTP 4xx, exec exiting
 * non-zero) exited 0 with nothing on stderr. Now: exit status 3 and a line
 * per sink saying how many failed and why. */
Test(cli_sinks, failed_deliveries_exit_3_and_say_why, .timeout = 60)
{
    signal(SIGPIPE, SIG_IGN);
    http_server srv = {.fail_first = 1000000, .fail_status = 400};
    cr_assert(http_server_start(&srv));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", srv.port);
    const char *args[] = {"demo", "--tokens", "2000", "--webhook", url, "--alerts", "/dev/null", NULL};
    cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 3, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "alerts failed delivery for good (last: refused: HTTP 400"), "stderr: %s", r.err);
    cli_result_free(&r);
    const char *args2[] = {"demo", "--tokens", "2000", "--exec", "false", "--alerts", "/dev/null", NULL};
    r = cli_run(args2);
    cr_expect_eq(r.exit_code, 3, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "(last: false exited with status 1)"), "stderr: %s", r.err);
    cli_result_free(&r);
    http_server_stop(&srv);
}
