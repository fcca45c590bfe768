/* Authentication of the HTTP sinks against the loopback server: basic auth
 * from a password file that is rotated while the sink runs, a bearer token
 * from an environment variable with a custom header, wrong credentials
 * refused (counted failed, never retried), and the sinks-file checks
 * (file:line:column, secret files, warnings) — no secret in any message. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/sinks/http_server.h"
#include "tests/sinks/sink_test.h"
#include "tests/support/support.h"

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static void basic_header(const char *user, const char *password, char *out, size_t len)
{
    char plain[120];
    unsigned char b64[164];
    int n = snprintf(plain, sizeof plain, "%s:%s", user, password);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    snprintf(out, len, "Basic %.163s", b64);
}

/* Wait (bounded by the test's .timeout) until the server has n requests. */
static void wait_requests(http_server *srv, size_t n)
{
    while (http_server_count(srv) < n) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void write_secret(const char *path, const char *value)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    cr_assert(f);
    fprintf(f, "%s\n", value);
    fclose(f);
    cr_assert_eq(chmod(tmp, 0600), 0);
    cr_assert_eq(rename(tmp, path), 0); /* how secret managers rotate a file */
}

static saemon_sinks *open_config(const char *yaml)
{
    saemon_sinks *s = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&s, &err), SAEMON_OK);
    cr_assert_eq(saemon_sinks_add_config_string(s, yaml, strlen(yaml), "sinks.yaml", &err), SAEMON_OK, "%s",
                 err.message);
    return s;
}

Test(auth, basic_auth_password_file_rotated_while_running, .init = setup, .timeout = 60)
{
    http_server srv = {0};
    basic_header("saemon", "first-Secret-9d1", srv.require_authorization, sizeof srv.require_authorization);
    cr_assert(http_server_start(&srv));
    char *dir = test_tmpdir();
    char pw[4200], yaml[8192];
    snprintf(pw, sizeof pw, "%s/password", dir);
    write_secret(pw, "first-Secret-9d1");
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: http://127.0.0.1:%d/hook\n"
             "    basic_auth: {username: saemon, password_file: %s}\n",
             srv.port, pw);
    saemon_sinks *s = open_config(yaml);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 1, "firing"), s);
    wait_requests(&srv, 1);
    /* Rotate: the receiver now takes only the new password. */
    pthread_mutex_lock(&srv.mu);
    basic_header("saemon", "second-Secret-4e7", srv.require_authorization, sizeof srv.require_authorization);
    pthread_mutex_unlock(&srv.mu);
    write_secret(pw, "second-Secret-4e7");
    saemon_sinks_alert(test_alert_make(&t, 2, "firing"), s);
    wait_requests(&srv, 2);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 2, "both alerts accepted: the rotated password was picked up");
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(srv.req[0].status, 200);
    cr_assert_eq(srv.req[1].status, 200);
    cr_assert(!strstr(srv.req[0].body, "Secret") && !strstr(srv.req[1].body, "Secret"), "no secret in the alert");
    saemon_sinks_destroy(s);
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir);
}

Test(auth, bearer_token_from_the_environment_and_custom_headers, .init = setup, .timeout = 60)
{
    http_server srv = {0};
    snprintf(srv.require_authorization, sizeof srv.require_authorization, "Bearer tok-Secret-51c");
    cr_assert(http_server_start(&srv));
    setenv("SAEMON_TEST_TOKEN", "tok-Secret-51c", 1);
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: http://127.0.0.1:%d/hook\n"
             "    headers: {X-Team: safety}\n"
             "    authorization: {credentials_env: SAEMON_TEST_TOKEN}\n",
             srv.port);
    saemon_sinks *s = open_config(yaml);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 1, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(http_server_count(&srv), 1);
    cr_assert_eq(srv.req[0].status, 200);
    cr_assert_str_eq(srv.req[0].team, "safety");
    saemon_sinks_destroy(s);
    http_server_stop(&srv);
}

Test(auth, wrong_credentials_are_refused_counted_and_not_retried, .init = setup, .timeout = 60)
{
    http_server srv = {0};
    snprintf(srv.require_authorization, sizeof srv.require_authorization, "Bearer the-right-one");
    cr_assert(http_server_start(&srv));
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: http://127.0.0.1:%d/hook\n"
             "    retries: 5\n"
             "    authorization: {type: Bearer, credentials: wrong-Secret-0a2}\n",
             srv.port);
    saemon_sinks *s = open_config(yaml);
    test_alert t;
    for (uint64_t i = 1; i <= 3; i++)
        saemon_sinks_alert(test_alert_make(&t, i, "firing"), s);
    saemon_error err = {0};
    saemon_sinks_stop(s, &err);
    cr_assert(!strstr(err.message, "Secret"), "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 0);
    cr_assert_eq(st.failed, 3, "every refused alert is counted failed");
    cr_assert_eq(st.retried, 0, "a 401 is not retried");
    cr_assert_eq(http_server_count(&srv), 3, "one attempt per alert");
    cr_assert_eq(srv.req[0].status, 401);
    saemon_sinks_destroy(s);
    http_server_stop(&srv);
}

/* saemon_sinks_check_config on `yaml`: the status, the message, warnings. */
static saemon_status check(const char *dir, const char *yaml, char *msg, size_t len, char *warn, size_t wlen)
{
    char *path = test_write_file(dir, "sinks.yaml", yaml, strlen(yaml));
    saemon_error err = {0};
    size_t n = 0;
    saemon_status st = saemon_sinks_check_config(path, &n, warn, wlen, &err);
    snprintf(msg, len, "%s", err.message);
    free(path);
    return st;
}

Test(auth, check_config_names_positions_and_never_secrets, .init = setup)
{
    char *dir = test_tmpdir();
    char yaml[16384], msg[1024], warn[4096], pw[4200];
    snprintf(pw, sizeof pw, "%s/pw", dir);
    write_secret(pw, "check-Secret-77f");

    /* A missing secret file: file:line:column of the key's value. */
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://127.0.0.1:1/hook\n"
             "    basic_auth:\n"
             "      username: u\n"
             "      password_file: %s/missing\n",
             dir);
    cr_assert_neq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK);
    cr_assert(strstr(msg, "sinks.yaml:6:22: ") && strstr(msg, "missing: cannot open"), "%s", msg);

    /* Both an inline password and a file. */
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: alertmanager\n"
             "    url: https://127.0.0.1:1\n"
             "    basic_auth: {username: u, password: inline-Secret-3b9, password_file: %s}\n",
             pw);
    cr_assert_neq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK);
    cr_assert(strstr(msg, "sinks.yaml:4:17: ") && strstr(msg, "only one of"), "%s", msg);
    cr_assert(!strstr(msg, "Secret"), "%s", msg);

    /* A bad value next to an inline secret: the message names the key only. */
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://127.0.0.1:1/hook\n"
             "    authorization: {credentials: inline-Secret-3b9}\n"
             "    tls_config: {min_version: TLS9}\n");
    cr_assert_neq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK);
    cr_assert(strstr(msg, "sinks.yaml:5:31: ") && strstr(msg, "min_version"), "%s", msg);
    cr_assert(!strstr(msg, "Secret"), "%s", msg);

    /* Credentials in the URL: refused, and not repeated in the message. */
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://u:url-Secret-c41@127.0.0.1:1/hook\n");
    cr_assert_neq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK);
    cr_assert(strstr(msg, "sinks.yaml:3:10: ") && strstr(msg, "holds credentials"), "%s", msg);
    cr_assert(!strstr(msg, "Secret"), "%s", msg);

    /* basic_auth and authorization together; an unknown tls_config key. */
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://127.0.0.1:1/hook\n"
             "    basic_auth: {username: u, password_file: %s}\n"
             "    authorization: {credentials_file: %s}\n",
             pw, pw);
    cr_assert_neq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK);
    cr_assert(strstr(msg, "mutually exclusive"), "%s", msg);
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://127.0.0.1:1/hook\n"
             "    tls_config: {ca: inline}\n");
    cr_assert_neq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK);
    cr_assert(strstr(msg, "sinks.yaml:4:18: ") && strstr(msg, "'ca'"), "%s", msg);

    /* Valid, with two warnings: a secret file others can read, skip-verify. */
    cr_assert_eq(chmod(pw, 0644), 0);
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://127.0.0.1:1/hook\n"
             "    basic_auth: {username: u, password_file: %s}\n"
             "    tls_config: {insecure_skip_verify: true}\n",
             pw);
    cr_assert_eq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK, "%s", msg);
    cr_assert(strstr(warn, "sinks.yaml:4:46: ") && strstr(warn, "readable by group or others"), "%s", warn);
    cr_assert(strstr(warn, "sinks.yaml:5:40: insecure_skip_verify is true"), "%s", warn);
    cr_assert(!strstr(warn, "Secret"), "%s", warn);

    /* An environment variable that is not set: a warning for check, an
     * error when the sink opens. */
    unsetenv("SAEMON_TEST_UNSET");
    snprintf(yaml, sizeof yaml,
             "sinks:\n"
             "  - type: webhook\n"
             "    url: https://127.0.0.1:1/hook\n"
             "    authorization: {credentials_env: SAEMON_TEST_UNSET}\n");
    cr_assert_eq(check(dir, yaml, msg, sizeof msg, warn, sizeof warn), SAEMON_OK, "%s", msg);
    cr_assert(strstr(warn, "SAEMON_TEST_UNSET is not set"), "%s", warn);
    saemon_sinks *s = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&s, &err), SAEMON_OK);
    cr_assert_neq(saemon_sinks_add_config_string(s, yaml, strlen(yaml), "sinks.yaml", &err), SAEMON_OK);
    cr_assert(strstr(err.message, "sinks.yaml:2:5: ") && strstr(err.message, "SAEMON_TEST_UNSET is not set"), "%s",
              err.message);
    saemon_sinks_destroy(s);
    test_rmtree(dir);
    free(dir);
}
