/* The sinks YAML file: every kind parsed, errors at file:line:column. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sinks/sink_test.h"
#include "tests/support/support.h"

static saemon_status load(const char *yaml, saemon_sinks **out, saemon_error *err)
{
    cr_assert_eq(saemon_sinks_create(out, err), SAEMON_OK);
    return saemon_sinks_add_config_string(*out, yaml, strlen(yaml), "sinks.yaml", err);
}

Test(config, every_kind)
{
    char *dir = test_tmpdir();
    char yaml[8192];
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: jsonl\n"
             "    name: file\n"
             "    path: %s/a.jsonl\n"
             "    fsync: 10\n"
             "    rotate_bytes: 1048576\n"
             "    keep: 3\n"
             "    queue: 128\n"
             "  - type: stdout\n"
             "  - type: webhook\n"
             "    url: http://127.0.0.1:9/hook\n"
             "    timeout: 0.5\n"
             "    retries: 2\n"
             "    backoff: 0.01\n"
             "    backoff_max: 0.02\n"
             "    spool: %s/spool\n"
             "    drain_timeout: 0.1\n"
             "  - type: alertmanager\n"
             "    url: http://127.0.0.1:9\n"
             "    generator_url: http://saemon.example/\n"
             "    drain_timeout: 0.1\n"
             "    retries: 1\n"
             "    backoff: 0.01\n"
             "  - type: exec\n"
             "    command: [\"true\"]\n"
             "    timeout: 2\n",
             dir, dir);
    saemon_sinks *s;
    saemon_error err = {0};
    cr_assert_eq(load(yaml, &s, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_sinks_get_count(s), 5);
    const char *kinds[] = {"jsonl", "stdout", "webhook", "alertmanager", "exec"};
    for (size_t i = 0; i < 5; i++) {
        saemon_sink_stats st;
        saemon_sinks_get_stats(s, i, &st);
        cr_assert_str_eq(st.kind, kinds[i]);
    }
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_str_eq(st.name, "file");
    saemon_sinks_get_stats(s, 2, &st);
    cr_assert_str_eq(st.name, "webhook:http://127.0.0.1:9", "default names drop the path (tokens live there)");
    /* Nothing listens on port 9: the alertmanager sink (no spool) loses its
     * alert and says so; the webhook keeps its one in the spool. */
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 0, "firing"), s);
    saemon_status cs = saemon_sinks_stop(s, &err);
    cr_assert_eq(cs, SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "alertmanager:http://127.0.0.1:9"), "%s", err.message);
    saemon_sinks_get_stats(s, 2, &st);
    cr_assert_eq(st.spooled, 1);
    saemon_sinks_get_stats(s, 4, &st);
    cr_assert_eq(st.delivered, 1, "exec true");
    saemon_sinks_destroy(s);
    test_rmtree(dir);
    free(dir);
}

static void expect_error(const char *yaml, const char *where, const char *what)
{
    saemon_sinks *s;
    saemon_error err = {0};
    cr_assert_neq(load(yaml, &s, &err), SAEMON_OK, "accepted:\n%s", yaml);
    cr_assert(strstr(err.message, where), "want '%s' in: %s", where, err.message);
    cr_assert(strstr(err.message, what), "want '%s' in: %s", what, err.message);
    cr_assert_eq(saemon_sinks_get_count(s), 0, "nothing is opened from an invalid file");
    saemon_sinks_destroy(s);
}

Test(config, errors_name_file_line_column)
{
    expect_error("", "sinks.yaml:1:1", "empty");
    expect_error("sinks: [\n", "sinks.yaml:", "YAML syntax error");
    char deep[1200] = "sinks: ";
    memset(deep + 7, '{', 600); /* refused on the 257th level, before libyaml builds the document */
    expect_error(deep, "sinks.yaml:1:263", "nested more than 256 deep");
    expect_error("sink: []\n", "sinks.yaml:1:1", "sink");
    expect_error("sinks: []\n", "sinks.yaml:1:8", "non-empty list");
    expect_error("sinks:\n  - path: a\n", "sinks.yaml:2:5", "no 'type'");
    expect_error("sinks:\n  - type: pager\n", "sinks.yaml:2:11", "unknown sink type \"pager\"");
    expect_error("sinks:\n  - type: jsonl\n", "sinks.yaml:2:5", "no 'path'");
    expect_error("sinks:\n  - type: jsonl\n    path: a\n    fsync: sometimes\n", "sinks.yaml:4:12",
                 "unknown fsync policy");
    expect_error("sinks:\n  - type: jsonl\n    path: a\n    colour: red\n", "sinks.yaml:4:5", "colour");
    expect_error("sinks:\n  - type: webhook\n    url: ftp://x\n", "sinks.yaml:3:10", "not an http");
    expect_error("sinks:\n  - type: webhook\n    url: http://x\n    timeout: -1\n", "sinks.yaml:4:14", "timeout");
    expect_error("sinks:\n  - type: exec\n    command: logger -t saemon\n", "sinks.yaml:3:14", "list of strings");
}

Test(config, open_failure_names_the_sink_position)
{
    saemon_sinks *s;
    saemon_error err = {0};
    const char *yaml = "sinks:\n  - type: stdout\n  - type: jsonl\n    path: /nonexistent-dir/x\n";
    cr_assert_eq(load(yaml, &s, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "sinks.yaml:3:5: cannot open alert file /nonexistent-dir/x"), "%s", err.message);
    saemon_sinks_destroy(s);
}

/* Default names keep scheme://host:port only (tokens live in paths and
 * queries); two sinks on one host get "#2" so /metrics series stay apart. */
Test(config, default_names_hide_paths_and_queries_and_stay_distinct)
{
    const char *yaml = "sinks:\n"
                       "  - type: webhook\n"
                       "    url: https://hooks.example.com/services/T0/B0/SeCrEtPaTh\n"
                       "  - type: webhook\n"
                       "    url: https://hooks.example.com:8443/x?token=SeCrEtQuErY#frag\n"
                       "  - type: webhook\n"
                       "    url: https://hooks.example.com/other\n";
    saemon_sinks *s;
    saemon_error err = {0};
    cr_assert_eq(load(yaml, &s, &err), SAEMON_OK, "%s", err.message);
    const char *want[] = {"webhook:https://hooks.example.com", "webhook:https://hooks.example.com:8443",
                          "webhook:https://hooks.example.com#2"};
    for (size_t i = 0; i < 3; i++) {
        saemon_sink_stats st;
        saemon_sinks_get_stats(s, i, &st);
        cr_assert_str_eq(st.name, want[i]);
    }
    saemon_sinks_destroy(s);
}
