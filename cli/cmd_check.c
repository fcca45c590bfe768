/* saemon check [RULES.yaml [--sae SAE_DIR]] [--sinks SINKS.yaml]
 *              [--config saemon.yaml] [--web-config WEB.yml] — validate a rule
 * file, a sinks file, the daemon's config and web config without running
 * anything; exit 0/1. */
#include <getopt.h>

#include "cli/cli.h"

#define CHECK_USAGE                                                                                  \
    "usage: saemon check RULES.yaml [--sae SAE_DIR] | saemon check [RULES.yaml] --sinks SINKS.yaml\n"    \
    "       saemon check --config saemon.yaml | saemon check --web-config WEB.yml\n"

static int check_rules(const char *path, const char *sae)
{
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
        printf("%s: OK (%zu rules, %zu enabled%s)\n", path, saemon_rules_get_count(rules),
               saemon_rules_get_enabled_count(rules), sae ? ", checked against the dictionary" : "");
    saemon_rules_close(rules);
    return rc;
}

/* Parses the file and checks every secret file, certificate and key it
 * names; opens no connection and sends nothing. Also used by
 * `check --config` for the sinks file a serve config names. */
int cli_check_sinks_file(const char *path)
{
    saemon_error err = {0};
    char warnings[4096];
    size_t n = 0;
    saemon_status s = saemon_sinks_check_config(path, &n, warnings, sizeof warnings, &err);
    if (*warnings)
        fprintf(stderr, "%s", warnings);
    if (s != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        return CLI_FAIL;
    }
    printf("%s: OK (%zu sinks)\n", path, n);
    return CLI_OK;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"sae", required_argument, 0, 's'},
                                         {"sinks", required_argument, 0, 'k'},
                                         {"config", required_argument, 0, 'c'},
                                         {"web-config", required_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *sae = NULL, *sinks = NULL, *config = NULL, *web = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sae = optarg; break;
        case 'k': sinks = optarg; break;
        case 'c': config = optarg; break;
        case 'w': web = optarg; break;
        case 'h':
            printf(CHECK_USAGE
                   "Validates a rule file (errors name file:line:column). With --sae, also checks\n"
                   "the file's dictionary pin and that every feature index is < d_sae.\n"
                   "With --sinks, validates a sinks file: its YAML, that every secret file is readable\n"
                   "(warning when group or others can read it), that certificates parse and are valid\n"
                   "now, that a client key matches its certificate. Nothing is sent.\n"
                   "With --config, validates a `saemon serve` config file and every file it names\n"
                   "(rule files, sinks file, web config; dictionaries must exist, they are not loaded).\n"
                   "With --web-config, validates a web config (TLS certificate and key, client CAs,\n"
                   "bcrypt hashes). No ring is created and no port is bound.\n");
            return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    bool have_rules = optind + 1 == argc;
    if (optind + 1 < argc || (!have_rules && !sinks && !config && !web) || (sae && !have_rules)) {
        fprintf(stderr, CHECK_USAGE);
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    if (have_rules)
        rc = check_rules(argv[optind], sae);
    if (sinks && cli_check_sinks_file(sinks) != CLI_OK)
        rc = CLI_FAIL;
    if ((config || web) && cmd_check_serve_files(config, web) != CLI_OK)
        rc = CLI_FAIL;
    return rc;
}
