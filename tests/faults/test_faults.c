/* Fault tests (issue 12): the saemon CLI against receivers that fail, a full
 * disk, kill -9 during delivery and reload storms. Each one checks the set
 * of alerts delivered: every alert the run raised (its JSONL file, written
 * by a sink that is not under fault) reaches the receiver exactly once by
 * Idempotency-Key — only the one request in flight at a kill -9 may repeat,
 * with the same key and body.
 *
 * Events are compared as "rule|stream|token|status". The receiver is the
 * loopback server of tests/sinks; the full disk is a small tmpfs (needs
 * root and mount(2): skipped with a message otherwise). */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/cli/cli_run.h"
#include "tests/sinks/http_server.h"
#include "tests/support/support.h"

#define MAX_EVENTS 2048

typedef struct events {
    size_t n;
    char *e[MAX_EVENTS];
} events;

static void events_free(events *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        free(ev->e[i]);
    ev->n = 0;
}

/* "rule|stream|token|status" of one alert JSON (webhook body or JSONL line). */
static char *event_of(const char *json, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    cr_assert_not_null(o, "not JSON: %.*s", (int)len, json);
    cJSON *rule = cJSON_GetObjectItem(o, "rule"), *status = cJSON_GetObjectItem(o, "status");
    cJSON *stream = cJSON_GetObjectItem(o, "stream"), *token = cJSON_GetObjectItem(o, "token");
    cr_assert(cJSON_IsString(rule) && cJSON_IsString(status) && cJSON_IsNumber(stream) && cJSON_IsNumber(token),
              "not an alert: %.*s", (int)len, json);
    char *e = NULL;
    cr_assert(asprintf(&e, "%s|%.0f|%.0f|%s", rule->valuestring, stream->valuedouble, token->valuedouble,
                       status->valuestring) > 0);
    cJSON_Delete(o);
    return e;
}

static void add_event(events *ev, char *e)
{
    cr_assert_lt(ev->n, MAX_EVENTS);
    ev->e[ev->n++] = e;
}

/* Every line of a JSONL file; the file must end with a complete line. */
static void events_of_file(const char *path, events *ev)
{
    char *text = slurp(path);
    cr_assert_not_null(text, "cannot read %s", path);
    size_t len = strlen(text);
    cr_assert(len == 0 || text[len - 1] == '\n', "%s ends in a partial line", path);
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        add_event(ev, event_of(line, (size_t)(nl - line)));
        line = nl + 1;
    }
    free(text);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every event of want was accepted (2xx) exactly once by key, and nothing
 * else was: at most `repeats_allowed` keys accepted twice (same body). */
static void expect_exactly_once(http_server *srv, events *want, size_t repeats_allowed)
{
    events got = {0};
    size_t repeats = 0;
    for (size_t i = 0; i < srv->n; i++) {
        if (srv->req[i].status < 200 || srv->req[i].status > 299)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            if (srv->req[j].status >= 200 && srv->req[j].status <= 299 && !strcmp(srv->req[j].key, srv->req[i].key)) {
                seen = true;
                cr_assert_str_eq(srv->req[j].body, srv->req[i].body, "same key, different alert");
            }
        if (seen) {
            repeats++;
            continue;
        }
        add_event(&got, event_of(srv->req[i].body, strlen(srv->req[i].body)));
    }
    cr_expect_leq(repeats, repeats_allowed, "%zu keys delivered more than once", repeats);
    qsort(got.e, got.n, sizeof *got.e, by_string);
    qsort(want->e, want->n, sizeof *want->e, by_string);
    /* as multisets: two runs of the same input raise the same events (under
     * different run ids, so different keys); each must arrive once per run */
    cr_expect_eq(got.n, want->n, "delivered %zu distinct alerts, raised %zu", got.n, want->n);
    for (size_t i = 0; i < got.n && i < want->n; i++)
        cr_expect_str_eq(got.e[i], want->e[i], "delivered set differs at %zu", i);
    events_free(&got);
}

static char *path_in(const char *dir, const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static char *write_sinks(const char *dir, const char *url, const char *spool, const char *extra)
{
    char yaml[8192];
    snprintf(yaml, sizeof yaml,
             "sinks:\n  - type: webhook\n    url: %s\n    spool: %s\n    backoff: 0.01\n    backoff_max: 0.05\n"
             "    timeout: 2\n%s",
             url, spool, extra ? extra : "");
    return test_write_file(dir, "sinks.yaml", yaml, strlen(yaml));
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
}

TestSuite(faults, .init = setup, .timeout = 120);

Test(faults, receiver_5xx_then_ok_every_alert_once)
{
    http_server srv = {.fail_first = 15, .fail_status = 503};
    cr_assert(http_server_start(&srv));
    char *dir = test_tmpdir(), *jsonl = path_in(dir, "alerts.jsonl"), *spool = path_in(dir, "spool"), url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    char *sinks = write_sinks(dir, url, spool, "    retries: 20\n");
    const char *args[] = {"demo", "--tokens", "8000", "--resolved", "--alerts", jsonl, "--sinks", sinks, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    events want = {0};
    events_of_file(jsonl, &want);
    cr_assert_gt(want.n, 20);
    expect_exactly_once(&srv, &want, 0);
    cr_expect_eq(srv.n, want.n + 15, "15 answers 503, each retried");
    http_server_stop(&srv);
    events_free(&want);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir), free(jsonl), free(spool), free(sinks);
}

Test(faults, receiver_4xx_is_not_retried_and_exits_3)
{
    http_server srv = {.fail_first = 1 << 30, .fail_status = 422};
    cr_assert(http_server_start(&srv));
    char *dir = test_tmpdir(), *jsonl = path_in(dir, "alerts.jsonl"), *spool = path_in(dir, "spool"), url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    char *sinks = write_sinks(dir, url, spool, NULL);
    const char *args[] = {"demo", "--tokens", "4000", "--resolved", "--alerts", jsonl, "--sinks", sinks, NULL};
    cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 3, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "failed delivery for good (last: refused: HTTP 422"), "stderr: %s", r.err);
    events want = {0};
    events_of_file(jsonl, &want);
    cr_expect_eq(srv.n, want.n, "each refused alert was sent exactly once (no retry)");
    for (size_t i = 0; i < srv.n; i++)
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(srv.req[i].key, srv.req[j].key);
    http_server_stop(&srv);
    events_free(&want);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir), free(jsonl), free(spool), free(sinks);
}

Test(faults, receiver_down_then_back_delivers_the_spool_once)
{
    http_server down = {0};
    cr_assert(http_server_bind(&down));
    int dead_port = down.port;
    http_server_stop(&down); /* nothing listens there now */
    char *dir = test_tmpdir(), *jsonl = path_in(dir, "alerts.jsonl"), *jsonl2 = path_in(dir, "alerts2.jsonl");
    char *spool = path_in(dir, "spool"), url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead_port);
    char *sinks = write_sinks(dir, url, spool, "    drain_timeout: 0.3\n");
    const char *args[] = {"demo", "--tokens", "4000", "--resolved", "--alerts", jsonl, "--sinks", sinks, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "spooled alerts are not lost; stderr: %s", r.err);
    cli_result_free(&r);
    free(sinks);

    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    sinks = write_sinks(dir, url, spool, NULL);
    const char *args2[] = {"demo", "--tokens", "1500", "--resolved", "--run-id", "second", "--alerts", jsonl2,
                           "--sinks", sinks, NULL};
    r = cli_run(args2);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    events want = {0};
    events_of_file(jsonl, &want);
    events_of_file(jsonl2, &want);
    expect_exactly_once(&srv, &want, 0);
    http_server_stop(&srv);
    events_free(&want);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir), free(jsonl), free(jsonl2), free(spool), free(sinks);
}

static size_t lines_in(const char *path)
{
    char *text = slurp(path);
    size_t n = 0;
    for (char *p = text; p && *p; p++)
        n += *p == '\n';
    free(text);
    return n;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The demo, seeded identically, raises the same alerts every time: a first
 * run without faults gives the full set. The second run (webhook answering
 * in 20 ms, so delivery lags far behind) is killed with SIGKILL once every
 * alert is raised and a delivery attempt has started after that — write-ahead
 * means they are all on disk then. A restart on the same spool delivers the
 * rest: the receiver has every alert exactly once by key. */
Test(faults, kill_9_during_delivery_then_restart_loses_nothing)
{
    char *dir = test_tmpdir(), *ref = path_in(dir, "ref.jsonl"), *jsonl = path_in(dir, "alerts.jsonl");
    char *jsonl2 = path_in(dir, "alerts2.jsonl"), *spool = path_in(dir, "spool"), url[64];
    const char *ref_args[] = {"demo", "--tokens", "12000", "--resolved", "--alerts", ref, NULL};
    cli_result r = cli_run(ref_args);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cli_result_free(&r);
    size_t total = lines_in(ref);
    cr_assert_gt(total, 60);

    http_server srv = {.delay_s = 0.02};
    cr_assert(http_server_bind(&srv));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    char *sinks = write_sinks(dir, url, spool, NULL);
    const char *cli = getenv("SAEMON_CLI");
    cr_assert_not_null(cli);
    pid_t child = fork(); /* before the server thread exists */
    cr_assert_neq(child, -1);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(cli, cli, "demo", "--tokens", "12000", "--rate", "20000", "--resolved", "--alerts", jsonl, "--sinks",
              sinks, (char *)NULL);
        _exit(127);
    }
    cr_assert(http_server_start(&srv));
    for (int i = 0; i < 6000 && lines_in(jsonl) < total; i++)
        nap_ms(5);
    cr_assert_eq(lines_in(jsonl), total, "the second run raised a different set of alerts");
    size_t mark = http_server_arrived(&srv);
    for (int i = 0; i < 4000 && http_server_arrived(&srv) < mark + 2; i++)
        nap_ms(5);
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    cr_assert(WIFSIGNALED(status), "the run ended before the kill (status %d)", status);
    size_t at_kill = http_server_count(&srv);
    cr_assert_lt(at_kill, total, "delivery had caught up: the kill tested nothing");
    fprintf(stderr, "kill -9: %zu of %zu alerts delivered before the kill\n", at_kill, total);

    /* restart on the same spool */
    const char *args2[] = {"demo", "--tokens", "1000", "--resolved", "--run-id", "restart", "--alerts", jsonl2,
                           "--sinks", sinks, NULL};
    r = cli_run(args2);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    events want = {0};
    events_of_file(jsonl, &want);
    events_of_file(jsonl2, &want);
    expect_exactly_once(&srv, &want, 1); /* the request in flight at the kill may repeat */
    http_server_stop(&srv);
    events_free(&want);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir), free(ref), free(jsonl), free(jsonl2), free(spool), free(sinks);
}

/* A tmpfs of `kb` KiB at dir/name, or NULL (and the test is skipped) when
 * mounting is not permitted. */
static char *small_disk(const char *dir, const char *name, unsigned kb)
{
    char *mnt = path_in(dir, name), opts[64];
    cr_assert_eq(mkdir(mnt, 0700), 0);
    snprintf(opts, sizeof opts, "size=%uk,mode=0700", kb);
    if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0) {
        free(mnt);
        return NULL;
    }
    return mnt;
}

Test(faults, full_disk_jsonl_keeps_whole_lines_and_fails_the_run)
{
    char *dir = test_tmpdir(), *mnt = small_disk(dir, "disk", 32);
    if (!mnt) {
        test_rmtree(dir);
        free(dir);
        cr_skip_test("mounting a tmpfs is not permitted here (needs root and CAP_SYS_ADMIN): full-disk test skipped");
    }
    char *jsonl = path_in(mnt, "alerts.jsonl");
    const char *args[] = {"demo", "--tokens", "20000", "--resolved", "--alerts", jsonl, NULL};
    cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 1, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "No space left on device"), "stderr: %s", r.err);
    events got = {0};
    events_of_file(jsonl, &got); /* ends with a whole line, every line parses */
    cr_expect_gt(got.n, 0);
    events_free(&got);
    cli_result_free(&r);
    umount2(mnt, MNT_DETACH);
    test_rmtree(dir);
    free(dir), free(mnt), free(jsonl);
}

/* Fill the file system at mnt to the last byte. */
static void fill_disk(const char *mnt)
{
    char *p = path_in(mnt, "filler"), block[4096] = {0};
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    while (write(fd, block, sizeof block) > 0)
        ;
    while (write(fd, block, 1) > 0)
        ;
    close(fd);
    free(p);
}

Test(faults, full_disk_spool_is_an_error_but_every_alert_is_delivered_once)
{
    char *dir = test_tmpdir(), *mnt = small_disk(dir, "disk", 16);
    if (!mnt) {
        test_rmtree(dir);
        free(dir);
        cr_skip_test("mounting a tmpfs is not permitted here (needs root and CAP_SYS_ADMIN): full-disk test skipped");
    }
    http_server srv = {0};
    cr_assert(http_server_start(&srv));
    char *jsonl = path_in(dir, "alerts.jsonl"), *spool = path_in(mnt, "spool"), url[64];
    /* Full from the start: how far a delivery lags behind its spool write
     * must not decide whether the disk fills up. */
    cr_assert_eq(mkdir(spool, 0700), 0);
    fill_disk(mnt);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    char *sinks = write_sinks(dir, url, spool, NULL);
    const char *args[] = {"demo", "--tokens", "8000", "--resolved", "--alerts", jsonl, "--sinks", sinks, NULL};
    cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 1, "a failed spool write fails the run; stderr: %s", r.err);
    cr_expect(strstr(r.err, "could not be written to the spool"), "stderr: %s", r.err);
    cr_expect(strstr(r.err, "0 spooled"), "nothing counted spooled that is not on disk; stderr: %s", r.err);
    events want = {0};
    events_of_file(jsonl, &want);
    expect_exactly_once(&srv, &want, 0);
    http_server_stop(&srv); /* kept in memory and delivered */
    events_free(&want);
    cli_result_free(&r);
    umount2(mnt, MNT_DETACH);
    test_rmtree(dir);
    free(dir), free(mnt), free(jsonl), free(spool), free(sinks);
}

/* SIGHUP storm with broken and hostile rule files while alerts flow: every
 * reload that fails keeps the old rules, the run never stalls or dies, and
 * the alert file holds each event once. */
Test(faults, reload_storm_with_broken_and_hostile_files)
{
    char *dir = test_tmpdir(), *jsonl = path_in(dir, "alerts.jsonl"), *errp = path_in(dir, "stderr");
    const char *good = "rules:\n  - name: any-alarm\n    condition: {feature: 0, above: 0.5}\n";
    char *rules = test_write_file(dir, "rules.yaml", good, strlen(good));
    /* hostile: 100k-deep flow nesting, a macro bomb, a FIFO, a directory, binary junk */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    strcpy(deep, "rules: ");
    memset(deep + 7, '[', depth);
    memset(deep + 7 + depth, ']', depth);
    deep[7 + 2 * depth] = 0;
    char bomb[4096] = "macros:\n  m0: {feature: 1, above: 0}\n";
    for (int i = 1; i <= 30; i++)
        snprintf(bomb + strlen(bomb), sizeof bomb - strlen(bomb), "  m%d: {any: [{macro: m%d}, {macro: m%d}]}\n", i,
                 i - 1, i - 1);
    strcat(bomb, "rules:\n  - {name: b, condition: {macro: m30}}\n");
    const char *hostile[] = {deep, bomb, "rules: [\n", "\x01\x02\xff\xfe", "rules:\n  - name: x\n"};
    const char *cli = getenv("SAEMON_CLI");
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR), e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(null, 1);
        dup2(e, 2);
        execl(cli, cli, "demo", "--tokens", "0", "--rate", "5000", "--resolved", "--rules", rules, "--alerts", jsonl,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2000 && lines_in(jsonl) == 0; i++) /* running, rules loaded, alerts flowing */
        nap_ms(5);
    cr_assert_gt(lines_in(jsonl), 0, "the demo did not start raising alerts");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/rules.tmp", dir);
    for (int round = 0; round < 40; round++) {
        const char *text = hostile[round % 5];
        unlink(tmp);
        if (round % 10 == 7) {
            cr_assert_eq(mkfifo(tmp, 0600), 0); /* a FIFO renamed over the rule file */
        } else if (round % 10 == 9) {
            cr_assert_eq(mkdir(tmp, 0700), 0);
        } else {
            FILE *f = fopen(tmp, "w");
            fwrite(text, 1, strlen(text), f);
            fclose(f);
        }
        if (round % 10 == 9) { /* a directory cannot replace a file by rename: swap in place */
            rmdir(tmp);
            continue;
        }
        cr_assert_eq(rename(tmp, rules), 0);
        kill(child, SIGHUP);
        nap_ms(20);
        if (round % 4 == 3) { /* good again, so alerts keep flowing */
            FILE *f = fopen(tmp, "w");
            fputs(good, f);
            fclose(f);
            cr_assert_eq(rename(tmp, rules), 0);
            kill(child, SIGHUP);
            nap_ms(20);
        }
        int status;
        cr_assert_eq(waitpid(child, &status, WNOHANG), 0, "saemon died during the storm (status %d)", status);
    }
    FILE *f = fopen(tmp, "w");
    fputs(good, f);
    fclose(f);
    cr_assert_eq(rename(tmp, rules), 0);
    kill(child, SIGHUP);
    nap_ms(300);
    kill(child, SIGTERM);
    int status;
    for (int i = 0; i < 2000 && waitpid(child, &status, WNOHANG) == 0; i++)
        nap_ms(5);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM ends the run cleanly (status %d)", status);
    char *log = slurp(errp);
    cr_expect(strstr(log, "nested more than 256 deep"), "%s", log);
    cr_expect(strstr(log, "once macros are expanded"), "%s", log);
    cr_expect(strstr(log, "not a regular file"), "a FIFO is refused, not read: %s", log);
    cr_expect(strstr(log, "keeping the old rules"), "%s", log);
    events got = {0};
    events_of_file(jsonl, &got);
    cr_expect_gt(got.n, 0, "alerts flowed during the storm");
    qsort(got.e, got.n, sizeof *got.e, by_string);
    for (size_t i = 1; i < got.n; i++)
        cr_expect_str_neq(got.e[i - 1], got.e[i], "an event written twice");
    events_free(&got);
    free(log), free(deep);
    test_rmtree(dir);
    free(dir), free(jsonl), free(errp), free(rules);
}

/* issue 12, item 11: with a hung webhook and --queue 4 the JSONL file got
 * about one alert per second, although one slow sink must not hold up the
 * others. The webhook's sink thread only spools now; delivery waits on its
 * own thread, so the file gets every alert while the receiver is still
 * answering its first request. */
Test(faults, hung_receiver_does_not_hold_up_the_jsonl_file)
{
    char *dir = test_tmpdir(), *ref = path_in(dir, "ref.jsonl"), *jsonl = path_in(dir, "alerts.jsonl");
    char *spool = path_in(dir, "spool"), url[64];
    const char *ref_args[] = {"demo", "--tokens", "3000", "--alerts", ref, NULL};
    cli_result r = cli_run(ref_args);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cli_result_free(&r);
    size_t total = lines_in(ref);
    cr_assert_gt(total, 10);

    http_server srv = {.delay_s = 8}; /* hung, as far as this test goes */
    cr_assert(http_server_bind(&srv));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    const char *cli = getenv("SAEMON_CLI");
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(cli, cli, "demo", "--tokens", "3000", "--queue", "4", "--alerts", jsonl, "--webhook", url, "--spool",
              spool, (char *)NULL);
        _exit(127);
    }
    cr_assert(http_server_start(&srv));
    for (int i = 0; i < 4000 && lines_in(jsonl) < total; i++)
        nap_ms(5);
    size_t got = lines_in(jsonl);
    size_t answered = http_server_count(&srv);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect_eq(got, total, "the JSONL file got %zu of %zu alerts", got, total);
    cr_expect_eq(answered, 0, "all of it before the receiver answered once");
    http_server_stop(&srv);
    test_rmtree(dir);
    free(dir), free(ref), free(jsonl), free(spool);
}
