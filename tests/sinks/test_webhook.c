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
#include <sys/stat.h>
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
    saemon_sinks_get_stats(s, 0, &st);
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
    saemon_sinks_get_stats(s, 0, &st);
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
    saemon_sinks_get_stats(s, 0, &st);
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
    saemon_sinks_get_stats(s, 0, &st);
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
    saemon_sinks_get_stats(s, 0, &st);
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
    saemon_sinks_get_stats(s, 0, &st);
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

static void wait_arrived(http_server *srv, size_t n)
{
    for (int i = 0; i < 4000 && http_server_arrived(srv) < n; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_geq(http_server_arrived(srv), n, "request %zu never arrived", n);
}

/* issue 12, item 1: with a slow receiver the old pump delivered its whole
 * pending list before spooling what was queued meanwhile (146 of 186 alerts
 * only in memory at a kill -9). Write-ahead: alerts queued while a request
 * is in flight are on disk before the next request starts. */
Test(webhook, spool_is_written_ahead_of_every_delivery, .init = setup, .timeout = 60)
{
    char *dir = test_tmpdir(), spool[4200], url[64];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    http_server srv = {.delay_s = 0.3, .watch_dir = spool};
    cr_assert(http_server_start(&srv));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .spool_dir = spool, .drain_timeout_s = 30};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    for (uint64_t i = 0; i < 5; i++)
        saemon_sinks_alert(test_alert_make(&t, i, "firing"), s);
    wait_arrived(&srv, 1); /* alert 0 is in flight (0.3 s) */
    for (uint64_t i = 5; i < 10; i++)
        saemon_sinks_alert(test_alert_make(&t, i, "firing"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sinks_destroy(s);
    cr_assert_eq(http_server_count(&srv), 10);
    /* request k (k >= 1) starts after alerts 5..9 were raised: alerts k..9 are all on disk */
    for (size_t k = 1; k < 10; k++)
        cr_expect_eq(srv.req[k].files_at_arrival, (int)(10 - k), "request %zu saw %d spooled alerts, want %zu", k,
                     srv.req[k].files_at_arrival, 10 - k);
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir);
}

/* issue 12, item 2: the key is derived from the event (run id, dictionary,
 * rule, stream, token, status), not from when it was raised, so replaying the
 * same input repeats the same keys; another run id gives other keys. */
Test(webhook, idempotency_key_is_deterministic, .init = setup)
{
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    const char *runs[] = {"input-a", "input-a", "input-b"};
    for (int r = 0; r < 3; r++) {
        saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .run_id = runs[r]};
        saemon_sinks *s = open_sink(&o);
        test_alert t;
        test_alert_make(&t, 42, "firing");
        t.alert.timestamp += r; /* raised at another time */
        saemon_sinks_alert(&t.alert, s);
        saemon_sinks_alert(test_alert_make(&t, 42, "resolved"), s);
        cr_assert_eq(saemon_sinks_stop(s, NULL), SAEMON_OK);
        saemon_sinks_destroy(s);
    }
    cr_assert_eq(http_server_count(&srv), 6);
    cr_expect_str_eq(srv.req[0].key, srv.req[2].key, "same event, same run: same key");
    cr_expect_str_eq(srv.req[1].key, srv.req[3].key);
    cr_expect_str_neq(srv.req[0].key, srv.req[1].key, "firing and resolved differ");
    cr_expect_str_neq(srv.req[0].key, srv.req[4].key, "another run id, another key");
    http_server_stop(&srv);
}

/* issue 12, item 13: a symlink in the spool made saemon POST its target; a
 * 0-byte, oversized, non-JSON or FIFO entry blocked start-up. Bad entries are
 * set aside as *.bad and the good ones are delivered. */
Test(webhook, bad_spool_entries_are_quarantined, .init = setup)
{
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    char url[64], *dir = test_tmpdir(), spool[4200], path[4400];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    cr_assert_eq(mkdir(spool, 0700), 0);
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    snprintf(path, sizeof path, "%s/00000000000000000001-%s.json", spool, key);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof path, "%s/00000000000000000002-%s.json", spool, key);
    fclose(fopen(path, "w")); /* empty */
    snprintf(path, sizeof path, "%s/00000000000000000003-%s.json", spool, key);
    FILE *f = fopen(path, "w");
    fputs("not json", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/00000000000000000004-%s.json", spool, key);
    cr_assert_eq(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/00000000000000000005-%s.json", spool, key);
    f = fopen(path, "w");
    cr_assert_eq(ftruncate(fileno(f), 100 << 20), 0); /* 100 MB */
    fclose(f);
    snprintf(path, sizeof path, "%s/00000000000000000006-%s.json", spool, key);
    f = fopen(path, "w");
    fputs("{\"token\": 6}", f);
    fclose(f);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = url, .spool_dir = spool};
    saemon_sinks *s = open_sink(&o);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_expect_eq(st.quarantined, 5);
    cr_expect_eq(st.delivered, 1);
    saemon_sinks_destroy(s);
    cr_assert_eq(http_server_count(&srv), 1, "only the good entry is sent, never /etc/passwd");
    cr_expect_str_eq(srv.req[0].body, "{\"token\": 6}");
    cr_expect_eq(files_in(spool, ".bad"), 5);
    cr_expect_eq(files_in(spool, ".json"), 0);
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir);
}

/* issue 12, item 16: Alertmanager resolves an alert by itself once its endsAt
 * (or resolve_timeout) passes; active alerts must be re-sent while they hold,
 * with a later endsAt each time, and no longer once resolved. */
Test(webhook, alertmanager_resends_active_alerts_with_endsat, .init = setup, .timeout = 60)
{
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
    saemon_sink_options o = {.kind = SAEMON_SINK_ALERTMANAGER, .url = url, .resend_interval_s = 0.2};
    saemon_sinks *s = open_sink(&o);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 3, "firing"), s);
    wait_arrived(&srv, 4); /* the alert, then re-sends */
    saemon_sinks_alert(test_alert_make(&t, 9, "resolved"), s);
    cr_assert_eq(saemon_sinks_stop(s, NULL), SAEMON_OK);
    saemon_sinks_destroy(s);
    size_t n = http_server_count(&srv);
    cr_assert_geq(n, 5);
    char prev_ends[64] = "";
    for (size_t i = 0; i < n; i++) {
        cJSON *arr = cJSON_Parse(srv.req[i].body), *a = cJSON_GetArrayItem(arr, 0);
        cr_assert(a, "%s", srv.req[i].body);
        cJSON *labels = cJSON_GetObjectItem(a, "labels");
        cr_expect_str_eq(cJSON_GetObjectItem(labels, "alertname")->valuestring, "deception");
        cJSON *ends = cJSON_GetObjectItem(a, "endsAt"), *starts = cJSON_GetObjectItem(a, "startsAt");
        cr_assert(cJSON_IsString(ends), "every body carries endsAt: %s", srv.req[i].body);
        if (i + 1 < n) { /* firing: same startsAt, endsAt never earlier */
            cr_assert(cJSON_IsString(starts));
            cr_expect_str_eq(starts->valuestring, "2023-11-14T22:13:23.000Z");
            cr_expect_geq(strcmp(ends->valuestring, prev_ends), 0, "%s after %s", ends->valuestring, prev_ends);
            snprintf(prev_ends, sizeof prev_ends, "%s", ends->valuestring);
        } else { /* the last one is the resolution: endsAt = its timestamp */
            cr_expect(!starts);
            cr_expect_str_eq(ends->valuestring, "2023-11-14T22:13:29.000Z");
        }
        cJSON_Delete(arr);
    }
    http_server_stop(&srv);
}
