/* saemon check --config saemon.yaml / --web-config FILE: what `promtool check
 * config` and `promtool check web-config` are to Prometheus. Parses the serve
 * config and every file it names (rule files, sinks file, web config, feature
 * labels must be readable) without creating a ring, binding a port or sending
 * anything. Dictionaries are not loaded: `saemon check RULES --sae DIR` binds
 * one rule file to its dictionary. */
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "serve/serve_config.h"
#include "serve/web_config.h"

static int fail(const char *path, const saemon_error *err)
{
    fprintf(stderr, "  FAILED: %s\n", err->message[0] ? err->message : path);
    return CLI_FAIL;
}

static int check_web_config_file(const char *path)
{
    saemon_error err = {0};
    web_config *wc = NULL;
    if (web_config_load(path, &wc, &err) != SAEMON_OK)
        return fail(path, &err);
    printf("  %s: OK (%s, %s)\n", path, web_config_tls(wc) ? "TLS" : "no TLS",
           web_config_basic_auth(wc) ? "basic auth" : "no basic auth");
    web_config_free(wc);
    return CLI_OK;
}

static int check_rules_file(const char *dict, const char *path)
{
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    if (saemon_rules_open(path, NULL, &rules, &err) != SAEMON_OK)
        return fail(path, &err);
    printf("  dictionary %s: rules %s: OK (%zu rules, %zu enabled)\n", dict, path, saemon_rules_get_count(rules),
           saemon_rules_get_enabled_count(rules));
    saemon_rules_close(rules);
    return CLI_OK;
}

/* The dictionary itself is only looked at, not read: loading weights is
 * serve's start-up, not a config check. */
static int check_exists(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "  FAILED: %s %s: %m\n", what, path);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int check_config_file(const char *path)
{
    saemon_error err = {0};
    serve_config c = {0};
    if (serve_config_load(path, &c, &err) != SAEMON_OK || serve_config_validate(&c, &err) != SAEMON_OK) {
        serve_config_free(&c);
        return fail(path, &err);
    }
    int rc = CLI_OK;
    size_t rings = 0;
    for (size_t i = 0; i < c.n_dicts; i++) {
        const serve_dict_config *d = &c.dicts[i];
        const char *name = d->name ? d->name : d->sae;
        rings += d->n_rings;
        if (check_exists("dictionary", d->sae) != CLI_OK)
            rc = CLI_FAIL;
        if (d->rules && check_rules_file(name, d->rules) != CLI_OK)
            rc = CLI_FAIL;
        if (d->feature_labels && check_exists("feature labels", d->feature_labels) != CLI_OK)
            rc = CLI_FAIL;
    }
    if (c.sinks && cli_check_sinks_file(c.sinks) != CLI_OK)
        rc = CLI_FAIL;
    if (c.web_config && check_web_config_file(c.web_config) != CLI_OK)
        rc = CLI_FAIL;
    if (rc == CLI_OK)
        printf("%s: OK (%zu dictionaries, %zu rings)\n", path, c.n_dicts, rings);
    serve_config_free(&c);
    return rc;
}

int cmd_check_serve_files(const char *config, const char *web_config_path)
{
    int rc = CLI_OK;
    if (config && check_config_file(config) != CLI_OK)
        rc = CLI_FAIL;
    if (web_config_path) {
        if (check_web_config_file(web_config_path) != CLI_OK)
            rc = CLI_FAIL;
        else
            printf("%s: OK\n", web_config_path);
    }
    return rc;
}
