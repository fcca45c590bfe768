/* saemon check RULES.yaml [--sae SAE_DIR] — validate a rule file, exit 0/1. */
#include <getopt.h>

#include "cli/cli.h"

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"sae", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *sae = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sae = optarg; break;
        case 'h':
            printf("usage: saemon check RULES.yaml [--sae SAE_DIR]\n"
                   "Validates a rule file (errors name file:line:column). With --sae, also checks\n"
                   "the file's dictionary pin and that every feature index is < d_sae.\n");
            return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: saemon check RULES.yaml [--sae SAE_DIR]\n");
        return CLI_USAGE;
    }
    const char *path = argv[optind];
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    if (saemon_rules_open(path, NULL, &rules, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    if (sae) {
        saemon_dict *dict = NULL;
        if (saemon_dict_open(sae, &dict, &err) != SAEMON_OK) {
            rc = cli_fail("check", &err);
        } else {
            if (saemon_rules_bind(rules, saemon_dict_get_info(dict), &err) != SAEMON_OK) {
                fprintf(stderr, "%s\n", err.message);
                rc = CLI_FAIL;
            }
            saemon_dict_close(dict);
        }
    }
    if (rc == CLI_OK)
        printf("%s: OK (%zu rules, %zu enabled%s)\n", path, saemon_rules_count(rules),
               saemon_rules_enabled_count(rules), sae ? ", checked against the dictionary" : "");
    saemon_rules_close(rules);
    return rc;
}
