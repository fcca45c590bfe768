/* The exporter-toolkit web config of `saemon serve --web-config`: parse
 * errors at file:line:column, the bcrypt check (right / wrong password,
 * unknown user, a remembered success), policies that make no sense. TLS
 * itself is exercised end to end in tests/sinks/test_auth_e2e.py. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_config.h"
#include "serve/web_config.h"
#include "tests/support/support.h"

/* "correct horse", bcrypt cost 4 (made with Python's crypt module). */
#define HASH "$2b$04$/n9x3BjHxx4Td6jMkr4F6ODuJrBlsdC4iBM0f6CQmAzQ/fTi/90BG"

static saemon_status load(const char *yaml, web_config **wc, saemon_error *err)
{
    char *dir = test_tmpdir();
    char *path = test_write_file(dir, "web.yml", yaml, strlen(yaml));
    saemon_status s = web_config_load(path, wc, err);
    free(path);
    test_rmtree(dir);
    free(dir);
    return s;
}

Test(web_config, basic_auth_users_bcrypt)
{
    web_config *wc = NULL;
    saemon_error err = {0};
    cr_assert_eq(load("basic_auth_users:\n  prometheus: " HASH "\n  other: " HASH "\n", &wc, &err), SAEMON_OK, "%s",
                 err.message);
    cr_assert(web_config_basic_auth(wc));
    cr_assert(!web_config_tls(wc));
    cr_assert(web_config_check_password(wc, "prometheus", "correct horse"));
    cr_assert(web_config_check_password(wc, "prometheus", "correct horse"), "again, from the cache");
    cr_assert(!web_config_check_password(wc, "prometheus", "correct horsf"));
    cr_assert(!web_config_check_password(wc, "prometheus", "correct horse "));
    cr_assert(!web_config_check_password(wc, "prometheus", ""));
    cr_assert(!web_config_check_password(wc, "nobody", "correct horse"), "an unknown user, even with a right password");
    cr_assert(web_config_check_password(wc, "other", "correct horse"));
    web_config_free(wc);
}

static void expect_error(const char *yaml, const char *want)
{
    web_config *wc = NULL;
    saemon_error err = {0};
    cr_assert_neq(load(yaml, &wc, &err), SAEMON_OK, "accepted:\n%s", yaml);
    cr_assert(strstr(err.message, want), "want '%s' in '%s'", want, err.message);
    cr_assert_null(wc);
}

Test(web_config, errors_name_file_line_column)
{
    expect_error("basic_auth_users:\n  prometheus: plain-text-password\n",
                 "web.yml:2:15: user prometheus: not a bcrypt hash");
    expect_error("basic_auth_users:\n  prometheus: $2b$04$short\n", "web.yml:2:15: user prometheus: not a bcrypt");
    expect_error("basic_auth_users: [a, b]\n", "web.yml:1:19: 'basic_auth_users' is a sequence");
    expect_error("tls_server_config:\n  cert_file: a.crt\n", "web.yml:2:3: tls_server_config needs both");
    expect_error("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
                 "web.yml:2:14: ");
    expect_error("http_server_config: {http2: true}\n", "web.yml:1:1: ");
    expect_error("tls_server_config: {cert_file: a, key_file: b, cipher_suites: [x]}\n", "'cipher_suites'");
    expect_error("", "the web config is empty");
}

/* libyaml is quadratic on deep nesting (100k levels: ~25 s): the depth is
 * refused from the event stream before the document is loaded, for the web
 * config (re-read on SIGHUP by the main loop) and the serve config alike. */
static char *deep_yaml(size_t levels)
{
    char *s = malloc(2 * levels + 2);
    cr_assert(s);
    memset(s, '[', levels);
    memset(s + levels, ']', levels);
    s[2 * levels] = '\n';
    s[2 * levels + 1] = 0;
    return s;
}

Test(web_config, deep_nesting_is_refused_before_loading, .timeout = 20)
{
    char *deep = deep_yaml(100000);
    char *yaml = NULL;
    cr_assert(asprintf(&yaml, "basic_auth_users: %s", deep) > 0);
    expect_error(yaml, "nested more than");
    free(yaml);

    char *dir = test_tmpdir();
    char *path = test_write_file(dir, "saemon.yaml", deep, strlen(deep));
    serve_config cfg;
    saemon_error err = {0};
    cr_assert_neq(serve_config_load(path, &cfg, &err), SAEMON_OK);
    cr_assert(strstr(err.message, "saemon.yaml:1:") && strstr(err.message, "nested more than"), "%s", err.message);
    free(path);
    test_rmtree(dir);
    free(dir);
    free(deep);
}
