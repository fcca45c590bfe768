/* saemon test-rules TESTS.yaml... — promtool-style rule unit tests. */
#include <getopt.h>

#include "cli/cli.h"

static const char usage_text[] =
    "usage: saemon test-rules TESTS.yaml [TESTS.yaml...]\n"
    "Runs rule unit tests: each test feeds a token sequence to the rule files it names\n"
    "and compares the alerts (firing and resolved) with its expectations. Prints PASS or\n"
    "FAIL per test with a diff (- expected but not raised, + raised but not expected).\n"
    "Exit status: 0 all passed, 1 a test failed or a file is invalid, 2 usage.\n";

int cmd_test_rules(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'h')
            return CLI_USAGE;
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    size_t total = 0, failed = 0;
    for (int i = optind; i < argc; i++) {
        size_t n = 0, bad = 0;
        saemon_error err = {0};
        printf("%s\n", argv[i]);
        if (saemon_rules_run_tests(argv[i], stdout, &n, &bad, &err) != SAEMON_OK) {
            fflush(stdout);
            fprintf(stderr, "%s\n", err.message);
            rc = CLI_FAIL;
        }
        total += n;
        failed += bad;
    }
    printf("%zu tests, %zu passed, %zu failed\n", total, total - failed, failed);
    return failed ? CLI_FAIL : rc;
}
