/* Alertmanager end to end: start the real prometheus-alertmanager (Debian
 * package) on a free loopback port with a minimal config and a temporary
 * storage dir, send a firing alert through the sink, read it back with
 * GET /api/v2/alerts, send the resolved one and check it is gone. Skips when
 * the binary is absent ($SAEMON_ALERTMANAGER overrides the path). */
#include <arpa/inet.h>
#include <cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/sinks/sink_test.h"
#include "tests/support/support.h"

static pid_t am_pid = -1;
static char *am_dir;

static void stop_alertmanager(void)
{
    if (am_pid > 0) {
        kill(am_pid, SIGTERM);
        int status;
        for (int i = 0; i < 100 && waitpid(am_pid, &status, WNOHANG) == 0; i++) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
        if (waitpid(am_pid, &status, WNOHANG) == 0) {
            kill(am_pid, SIGKILL);
            waitpid(am_pid, &status, 0);
        }
        am_pid = -1;
    }
    if (am_dir) {
        test_rmtree(am_dir);
        free(am_dir);
        am_dir = NULL;
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t collect(char *d, size_t size, size_t n, void *user)
{
    buf *b = user;
    char *g = realloc(b->p, b->n + size * n + 1);
    if (!g)
        return 0;
    memcpy(g + b->n, d, size * n);
    b->n += size * n;
    g[b->n] = 0;
    b->p = g;
    return size * n;
}

/* GET url; the body (malloc'd) or NULL; *code the HTTP status (0 = no answer). */
static char *http_get(const char *url, long *code)
{
    CURL *c = curl_easy_init();
    buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    *code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(c);
    return b.p;
}

static const char *binary(void)
{
    const char *env = getenv("SAEMON_ALERTMANAGER");
    const char *path = env && *env ? env : "/usr/bin/prometheus-alertmanager";
    return access(path, X_OK) == 0 ? path : NULL;
}

/* Start Alertmanager and wait until /-/ready answers 200; returns the port. */
static int start_alertmanager(const char *bin)
{
    am_dir = test_tmpdir();
    const char *cfg = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";
    char *cfg_path = test_write_file(am_dir, "alertmanager.yml", cfg, strlen(cfg));
    int port = free_port();
    char a_cfg[4200], a_storage[4200], a_listen[64], log_path[4200];
    snprintf(a_cfg, sizeof a_cfg, "--config.file=%s", cfg_path);
    snprintf(a_storage, sizeof a_storage, "--storage.path=%s/data", am_dir);
    snprintf(a_listen, sizeof a_listen, "--web.listen-address=127.0.0.1:%d", port);
    snprintf(log_path, sizeof log_path, "%s/alertmanager.log", am_dir);
    free(cfg_path);
    am_pid = fork();
    cr_assert_neq(am_pid, -1);
    if (am_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        /* An empty cluster address turns gossip off: no other port is opened. */
        execl(bin, bin, a_cfg, a_storage, a_listen, "--cluster.listen-address=", "--log.level=warn", (char *)NULL);
        _exit(127);
    }
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/-/ready", port);
    for (int i = 0; i < 300; i++) {
        long code;
        free(http_get(url, &code));
        if (code == 200)
            return port;
        int status;
        cr_assert_eq(waitpid(am_pid, &status, WNOHANG), 0, "alertmanager exited early; see %s", log_path);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("alertmanager did not become ready in 15 s; see %s", log_path);
    return -1;
}

static void send_one(int port, const saemon_alert *a)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    saemon_sinks *s = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&s, &err), SAEMON_OK);
    saemon_sink_options o = {.kind = SAEMON_SINK_ALERTMANAGER, .url = url,
                             .generator_url = "http://saemon.test/rules/deception", .max_retries = 3,
                             .backoff_initial_s = 0.1};
    cr_assert_eq(saemon_sinks_add(s, &o, &err), SAEMON_OK, "%s", err.message);
    saemon_sinks_alert(a, s);
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 1, "alertmanager accepted the alert (failed %llu)", (unsigned long long)st.failed);
    saemon_sinks_destroy(s);
}

/* The alert with alertname=deception and stream=7 in GET /api/v2/alerts,
 * printed unformatted into *json (malloc'd), or NULL. */
static cJSON *find_alert(int port, cJSON **all)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v2/alerts", port);
    long code;
    char *body = http_get(url, &code);
    cr_assert_eq(code, 200, "GET /api/v2/alerts: %ld", code);
    *all = cJSON_Parse(body);
    free(body);
    cr_assert(cJSON_IsArray(*all));
    cJSON *a;
    cJSON_ArrayForEach(a, *all)
    {
        cJSON *labels = cJSON_GetObjectItem(a, "labels");
        cJSON *name = cJSON_GetObjectItem(labels, "alertname"), *stream = cJSON_GetObjectItem(labels, "stream");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, "deception") && cJSON_IsString(stream) &&
            !strcmp(stream->valuestring, "7"))
            return a;
    }
    return NULL;
}

static const char *str(cJSON *obj, const char *k1, const char *k2)
{
    cJSON *v = cJSON_GetObjectItem(obj, k1);
    if (k2)
        v = cJSON_GetObjectItem(v, k2);
    return cJSON_IsString(v) ? v->valuestring : "(missing)";
}

Test(alertmanager, firing_then_resolved_end_to_end, .timeout = 60, .fini = stop_alertmanager)
{
    const char *bin = binary();
    if (!bin)
        cr_skip_test("prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)");
    int port = start_alertmanager(bin);

    test_alert t;
    saemon_alert *a = (saemon_alert *)test_alert_make(&t, 3, "firing");
    a->timestamp = (double)time(NULL) - 1;
    a->request_id = "cmpl-8f3a9c"; /* the engine's request id: an annotation, never a label */
    send_one(port, a);

    cJSON *all;
    cJSON *got = find_alert(port, &all);
    cr_assert(got, "the firing alert is not in GET /api/v2/alerts");
    char *text = cJSON_PrintUnformatted(got);
    fprintf(stderr, "alertmanager returned: %s\n", text);
    free(text);
    cr_assert_str_eq(str(got, "labels", "severity"), "critical");
    cr_assert_str_eq(str(got, "labels", "team"), "safety");
    cr_assert_str_eq(str(got, "labels", "dictionary"), "gpt2-small-res-jb/blocks.8");
    cr_assert_str_eq(str(got, "annotations", "token"), "3");
    cr_assert_str_eq(str(got, "annotations", "description"), "deception features active");
    cr_assert_str_eq(str(got, "annotations", "runbook"), "https://example.invalid/runbook");
    cr_assert_str_eq(str(got, "generatorURL", NULL), "http://saemon.test/rules/deception");
    cr_assert_str_eq(str(got, "status", "state"), "active");
    cr_assert_str_eq(str(got, "labels", "group"), "safety-pack");
    cr_assert_str_eq(str(got, "annotations", "value"), "3.5");
    cr_assert_str_eq(str(got, "annotations", "request_id"), "cmpl-8f3a9c");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(got, "labels"), "request_id"));
    cJSON_Delete(all);

    a = (saemon_alert *)test_alert_make(&t, 9, "resolved");
    a->timestamp = (double)time(NULL) - 0.5;
    send_one(port, a);
    got = find_alert(port, &all);
    cr_assert_null(got, "the resolved alert must be gone from the active list");
    cJSON_Delete(all);
}
