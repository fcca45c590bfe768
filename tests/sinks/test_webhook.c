/* webhook sink against a loopback HTTP server written here: delivery,
 * Idempotency-Key, retries with exponential backoff, refusals, giving up
 * without a spool, and a spool that survives kill -9 of the delivering
 * process (every alert reaches the server exactly once per key, in order). */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/sinks/http_server.h"
#include "tests/sinks/sink_test.h"
#include "tests/support/support.h"

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static saemon_sinks *open_sink(const saemon_sink_options *o)
{
    saemon_sinks *s = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&s, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_sinks_add(s, o, &err), SAEMON_OK, "%s", err.message);
    return s;
}

static uint64_t body_token(const char *body)
{
    cJSON *o = cJSON_Parse(body);
    cr_assert(o, "body is not JSON: %s", body);
    cJSON *t = cJSON_GetObjectItem(o, "token");
    cr_assert(cJSON_IsNumber(t), "no token in %s", body);
    uint64_t v = (uint64_t)t->valuedouble;
    cJSON_Delete(o);
    return v;
}

static size_t files_in(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        n += len > sl && !strcmp(e->d_name + len - sl, suffix);
    }
    if (d)
        closedir(d);
    return n;
}

Test(webhook, request_shape, .init = setup)
{
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", srv.port);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 1, "firing"), s);
    saemon_sinks_alert(test_alert_make(&t, 1, "resolved"), s);
    saemon_sinks_alert(test_alert_make(&t, 1, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sinks_destroy(s);
    cr_assert_eq(http_server_count(&srv), 3);
    http_request *r = srv.req;
    cr_assert_str_eq(r[0].method, "POST");
    cr_assert_str_eq(r[0].path, "/hook");
    cr_assert_eq(strlen(r[0].key), 64, "Idempotency-Key is a sha256 hex: '%s'", r[0].key);
    cr_assert(strstr(r[0].body, "\"status\":\"firing\"") && strstr(r[0].body, "\"rule\":\"deception\""), "%s",
              r[0].body);
    cr_assert(strstr(r[1].body, "\"status\":\"resolved\""), "%s", r[1].body);
    cr_assert_str_neq(r[0].key, r[1].key, "firing and resolved are different events");
    cr_assert_str_eq(r[0].key, r[2].key, "the same event carries the same key");
    http_server_stop(&srv);
}

Test(webhook, retries_with_exponential_backoff, .init = setup)
{
    http_server srv = {.fail_first = 3, .fail_status = 503};
    cr_assert(http_server_start(&srv));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .backoff_initial_s = 0.05,
                             .backoff_max_s = 1, .max_retries = 5};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 5, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 1);
    cr_assert_eq(st.retried, 3);
    cr_assert_eq(st.failed, 0);
    saemon_sinks_destroy(s);
    cr_assert_eq(http_server_count(&srv), 4);
    for (int i = 1; i < 4; i++) {
        cr_assert_str_eq(srv.req[i].key, srv.req[0].key, "a retry keeps its key");
        /* waits of 0.05, 0.1, 0.2 s: each gap is at least its backoff */
        double gap = srv.req[i].at - srv.req[i - 1].at, want = 0.05 * (double)(1 << (i - 1));
        cr_assert_geq(gap, want * 0.95, "gap %d is %.3f s, backoff calls for %.3f s", i, gap, want);
    }
    cr_assert_eq(srv.req[3].status, 200);
    http_server_stop(&srv);
}

Test(webhook, refusal_is_not_retried_and_is_set_aside, .init = setup)
{
    http_server srv = {.fail_first = 1, .fail_status = 400};
    cr_assert(http_server_start(&srv));
    char url[64], *dir = test_tmpdir(), spool[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .spool_dir = spool, .backoff_initial_s = 0.01};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 1, "firing"), s);
    saemon_sinks_alert(test_alert_make(&t, 2, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_stats(s, 0, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.delivered, 1);
    cr_assert_eq(st.retried, 0);
    cr_assert_eq(st.spooled, 0);
    saemon_sinks_destroy(s);
    cr_assert_eq(http_server_count(&srv), 2);
    cr_assert_eq(files_in(spool, ".rejected"), 1);
    cr_assert_eq(files_in(spool, ".json"), 0);
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir);
}

Test(webhook, gives_up_without_a_spool_and_says_so, .init = setup)
{
    /* A port nobody listens on: bind, learn the port, close. */
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    int port = srv.port;
    http_server_stop(&srv);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .backoff_initial_s = 0.01, .max_retries = 2,
                             .timeout_s = 1};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 1, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "1 alerts could not be delivered") && strstr(err.message, url), "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_stats(s, 0, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.retried, 2);
    saemon_sinks_destroy(s);
}

Test(webhook, spool_keeps_alerts_while_the_receiver_is_down, .init = setup)
{
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    int port = srv.port;
    http_server_stop(&srv);
    char url[64], *dir = test_tmpdir(), spool[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .spool_dir = spool,
                             .backoff_initial_s = 0.01, .max_retries = 1, .drain_timeout_s = 0.2};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    for (uint64_t i = 0; i < 5; i++)
        saemon_sinks_alert(test_alert_make(&t, i, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "spooled alerts are not lost: %s", err.message);
    saemon_sink_stats st;
    saemon_sinks_stats(s, 0, &st);
    cr_assert_eq(st.spooled, 5);
    cr_assert_eq(st.delivered, 0);
    saemon_sinks_destroy(s);
    cr_assert_eq(files_in(spool, ".json"), 5);

    /* The receiver is back (same port): a restart delivers the spool first. */
    http_server back = {0};
    cr_assert(http_server_start(&back));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", back.port);
    o.url = url;
    s = open_sink(&o);
    saemon_sinks_alert(test_alert_make(&t, 5, "firing"), s);
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sinks_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 6);
    cr_assert_eq(st.spooled, 0);
    saemon_sinks_destroy(s);
    cr_assert_eq(http_server_count(&back), 6);
    for (uint64_t i = 0; i < 6; i++)
        cr_assert_eq(body_token(back.req[i].body), i, "delivery %zu out of order", (size_t)i);
    cr_assert_eq(files_in(spool, ".json"), 0);
    http_server_stop(&back);
    test_rmtree(dir);
    free(dir);
}

Test(webhook, spool_is_locked_against_a_second_user, .init = setup)
{
    char *dir = test_tmpdir(), spool[4200];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = "http://127.0.0.1:9/", .spool_dir = spool};
    saemon_sinks *a = open_sink(&o), *b = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&b, &err), SAEMON_OK);
    cr_assert_eq(saemon_sinks_add(b, &o, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "another saemon is using it"), "%s", err.message);
    saemon_sinks_destroy(b);
    saemon_sinks_destroy(a);
    test_rmtree(dir);
    free(dir);
}

#define KILL_ALERTS 20

/* The delivering process: queue KILL_ALERTS alerts and keep delivering
 * until killed. */
static void deliver_forever(const char *url, const char *spool)
{
    saemon_sinks *s = NULL;
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .spool_dir = spool,
                             .backoff_initial_s = 0.01, .drain_timeout_s = 60};
    if (saemon_sinks_create(&s, NULL) != SAEMON_OK || saemon_sinks_add(s, &o, NULL) != SAEMON_OK)
        _exit(3);
    test_alert t;
    for (uint64_t i = 0; i < KILL_ALERTS; i++)
        saemon_sinks_alert(test_alert_make(&t, i, "firing"), s);
    saemon_sinks_stop(s, NULL);
    _exit(0);
}

Test(webhook, spool_survives_kill_9_mid_delivery, .init = setup, .timeout = 60)
{
    /* Each answer takes 80 ms, so the child is killed with a request in flight. */
    http_server srv = {.delay_s = 0.08};
    cr_assert(http_server_bind(&srv));
    char url[64], *dir = test_tmpdir(), spool[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    /* Fork before any thread exists here (a child of a threaded process may
     * inherit a held allocator lock), then serve. */
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        deliver_forever(url, spool);
    }
    cr_assert(http_server_start(&srv));
    for (int i = 0; i < 2000 && http_server_count(&srv) < 6; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_geq(http_server_count(&srv), 6, "the child did not start delivering");
    fprintf(stderr, "kill-9 test: killing the child after %zu requests\n", http_server_count(&srv));
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child finished before the kill");
    size_t before = http_server_count(&srv);
    cr_assert_lt(before, KILL_ALERTS, "the kill came too late to test anything");
    cr_assert_gt(files_in(spool, ".json"), 0, "undelivered alerts are in the spool");

    /* Restart: no new alerts, the spool is delivered. */
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .spool_dir = spool,
                             .backoff_initial_s = 0.01, .drain_timeout_s = 20};
    fprintf(stderr, "kill-9 test: restarting on the spool (%zu files)\n", files_in(spool, ".json"));
    saemon_sinks *s = open_sink(&o);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_stats(s, 0, &st);
    fprintf(stderr, "kill-9 test: restart delivered %llu\n", (unsigned long long)st.delivered);
    cr_assert_eq(st.spooled, 0);
    saemon_sinks_destroy(s);
    cr_assert_eq(files_in(spool, ".json"), 0);

    /* What the receiver acts on (first request per Idempotency-Key) is every
     * alert once, in order. A repeat may only be the one in flight at the
     * kill, with the same key and body. */
    size_t n = http_server_count(&srv), unique = 0, repeats = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            if (!strcmp(srv.req[j].key, srv.req[i].key)) {
                seen = true;
                cr_assert_str_eq(srv.req[j].body, srv.req[i].body, "same key, same alert");
            }
        if (seen) {
            repeats++;
            continue;
        }
        cr_assert_eq(body_token(srv.req[i].body), unique, "alert %zu arrived out of order", unique);
        unique++;
    }
    cr_assert_eq(unique, KILL_ALERTS, "every alert must arrive (got %zu)", unique);
    cr_assert_leq(repeats, 1, "only the request in flight at the kill may be repeated (%zu repeats)", repeats);
    cr_log_info("kill -9 after %zu requests; %zu requests in all, %zu repeated by key", before, n, repeats);
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir);
}
