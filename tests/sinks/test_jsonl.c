/* jsonl/stdout sinks: append, rotation, fsync policy, queue overflow, alert
 * copy, write failure. fsync is interposed (this executable's definition wins
 * over libc's for the statically linked library) to count calls per file. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/sinks/sink_test.h"
#include "tests/support/support.h"

static const char *fsync_watch; /* count fsyncs of this path */
static int fsync_count;

int fsync(int fd)
{
    if (fsync_watch) {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            if (!strcmp(target, fsync_watch))
                __atomic_fetch_add(&fsync_count, 1, __ATOMIC_SEQ_CST);
        }
    }
    return (int)syscall(SYS_fsync, fd);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

/* Tokens of the JSON lines in `path`, in order; returns how many. */
static size_t tokens_in(const char *path, uint64_t *tokens, size_t max)
{
    char *text = slurp(path);
    if (!text)
        return 0;
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert(o, "not JSON: %s", line);
        cJSON *t = cJSON_GetObjectItem(o, "token");
        cr_assert(cJSON_IsNumber(t));
        if (n < max)
            tokens[n] = (uint64_t)t->valuedouble;
        n++;
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

/* A consumer held up for real: the jsonl sink writes into a FIFO whose pipe
 * is already full and which nobody reads yet (a log shipper that stalls).
 * The sink's thread takes one alert and blocks in write(); what is sent after
 * that stays queued (or is dropped) until the test starts reading. */
typedef struct stalled_fifo {
    char path[4096];
    int fd; /* the test's end: O_RDWR, so the pipe never sees EOF */
    pthread_t reader;
    int stop;
    char *data; /* what the sink wrote, once read */
    size_t len, cap;
} stalled_fifo;

static void fifo_stall(stalled_fifo *f, const char *dir)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/stalled.fifo", dir);
    cr_assert_eq(mkfifo(f->path, 0600), 0);
    f->fd = open(f->path, O_RDWR | O_NONBLOCK);
    cr_assert_geq(f->fd, 0);
    fcntl(f->fd, F_SETPIPE_SZ, 4096);
    char nl[512];
    memset(nl, '\n', sizeof nl); /* empty lines: no alert, skipped by tokens_in */
    while (write(f->fd, nl, sizeof nl) > 0)
        ;
    while (write(f->fd, nl, 1) > 0) /* to the last byte: any alert line then blocks */
        ;
}

/* Send one alert and wait until the sink's thread has taken it off the queue:
 * it is then blocked writing into the full pipe. */
static void fifo_block_consumer(saemon_sinks *s, uint64_t token)
{
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, token, "firing"), s);
    saemon_sink_stats st;
    for (int i = 0; i < 20000; i++) { /* a state, not a timing: up to 20 s on a loaded machine */
        saemon_sinks_get_stats(s, 0, &st);
        if (st.received == 1 && st.queued_bytes == 0)
            return;
        usleep(1000);
    }
    cr_assert_fail("the sink never took the first alert");
}

static void *fifo_read_all(void *arg)
{
    stalled_fifo *f = arg;
    for (;;) {
        if (f->cap - f->len < 65536) {
            f->cap = f->cap ? 2 * f->cap : 1 << 20;
            f->data = realloc(f->data, f->cap);
        }
        ssize_t n = read(f->fd, f->data + f->len, f->cap - f->len - 1);
        if (n > 0) {
            f->len += (size_t)n;
            continue;
        }
        if (__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE))
            break; /* the sink has stopped and the pipe is empty */
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        poll(&p, 1, 20);
    }
    f->data[f->len] = 0;
    return NULL;
}

/* Let the stalled consumer go: read everything, then stop the sinks. */
static void fifo_release_and_stop(stalled_fifo *f, saemon_sinks *s)
{
    cr_assert_eq(pthread_create(&f->reader, NULL, fifo_read_all, f), 0);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
    pthread_join(f->reader, NULL);
    close(f->fd);
}

/* Tokens of the alert lines in the text read from the FIFO. */
static size_t fifo_tokens(stalled_fifo *f, uint64_t *tokens, size_t max)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.txt", f->path);
    FILE *out = fopen(tmp, "wb");
    cr_assert(out);
    fwrite(f->data, 1, f->len, out);
    fclose(out);
    return tokens_in(tmp, tokens, max);
}

static saemon_sinks *open_jsonl(const saemon_sink_options *o)
{
    saemon_sinks *s = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&s, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_sinks_add(s, o, &err), SAEMON_OK, "%s", err.message);
    return s;
}

static void send_alerts(saemon_sinks *s, uint64_t first, uint64_t n, const char *status)
{
    test_alert t;
    for (uint64_t i = first; i < first + n; i++)
        saemon_sinks_alert(test_alert_make(&t, i, status), s);
}

Test(jsonl, appends_one_line_per_alert)
{
    char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/alerts.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"earlier\":1}\n", f); /* append, never truncate */
    fclose(f);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = path};
    saemon_sinks *s = open_jsonl(&o);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 3, "firing"), s);
    saemon_sinks_alert(test_alert_make(&t, 4, "resolved"), s);
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 2);
    cr_assert_eq(st.dropped, 0);
    cr_assert_str_eq(st.kind, "jsonl");
    saemon_sinks_destroy(s);

    char *text = slurp(path);
    char *l1 = strchr(text, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
    cr_assert(!strncmp(text, "{\"earlier\":1}\n", 14));
    cr_assert(strstr(l1, "\"rule\":\"deception\"") && strstr(l1, "\"status\":\"firing\"") &&
                  strstr(l1, "\"index\":12") && strstr(l1, "\"team\":\"safety\"") &&
                  strstr(l1, "\"label\":\"talks about lying\"") && strstr(l1, "\"group\":\"safety-pack\""),
              "line: %s", l1);
    cr_assert(strstr(l2, "\"status\":\"resolved\"") && strstr(l2, "\"token\":4") && strstr(l2, "\"fired_token\":2"),
              "line: %s", l2);
    cr_assert_eq(strchr(l2, '\n')[1], 0, "exactly three lines");
    free(text);
    test_rmtree(dir);
    free(dir);
}

/* The sink copies the alert before saemon_sinks_alert returns: the caller's
 * struct is overwritten while the alert still waits behind a stalled
 * consumer (a FIFO nobody reads yet). */
Test(jsonl, copies_the_alert_before_the_call_returns)
{
    char *dir = test_tmpdir();
    stalled_fifo ff;
    fifo_stall(&ff, dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = ff.path};
    saemon_sinks *s = open_jsonl(&o);
    fifo_block_consumer(s, 100);
    test_alert t;
    saemon_sinks_alert(test_alert_make(&t, 3, "firing"), s);
    strcpy(t.rule, "OVERWRITTEN");
    strcpy(t.group, "OVERWRITTEN");
    strcpy(t.label, "OVERWRITTEN");
    t.features[0].index = 999;
    saemon_sinks_alert(test_alert_make(&t, 4, "resolved"), s);
    strcpy(t.status, "XXXX");
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 0, "the consumer is still stalled");
    fifo_release_and_stop(&ff, s);
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 3);
    cr_assert_eq(st.dropped, 0);
    saemon_sinks_destroy(s);

    char *l1 = strstr(ff.data, "\"token\":3,"), *l2 = strstr(ff.data, "\"token\":4,");
    cr_assert(l1 && l2, "alerts 3 and 4 written: %s", ff.data);
    while (l1 > ff.data && l1[-1] != '\n')
        l1--;
    while (l2 > ff.data && l2[-1] != '\n')
        l2--;
    *strchr(l1, '\n') = 0;
    *strchr(l2, '\n') = 0;
    cr_assert(strstr(l1, "\"rule\":\"deception\"") && strstr(l1, "\"status\":\"firing\"") &&
                  strstr(l1, "\"index\":12") && strstr(l1, "\"label\":\"talks about lying\"") &&
                  strstr(l1, "\"group\":\"safety-pack\""),
              "line: %s", l1);
    cr_assert(strstr(l2, "\"status\":\"resolved\""), "line: %s", l2);
    free(ff.data);
    test_rmtree(dir);
    free(dir);
}

Test(jsonl, rotates_by_size_and_keeps_k_files)
{
    char *dir = test_tmpdir();
    char path[4096], p[4200];
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    /* Tokens 0..8 give lines of one length: a limit of 2.5 lines holds two. */
    test_alert t;
    char *line = saemon_alert_to_json(test_alert_make(&t, 0, "firing"));
    uint64_t limit = (strlen(line) + 1) * 5 / 2;
    free(line);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = path, .rotate_bytes = limit, .rotate_keep = 2};
    saemon_sinks *s = open_jsonl(&o);
    send_alerts(s, 0, 9, "firing");
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sinks_destroy(s);

    uint64_t tok[16];
    struct stat st;
    /* 9 lines, 2 per file: a.jsonl.4 ... would exist without the limit;
     * kept: a.jsonl (token 8), .1 (6,7), .2 (4,5); .3 removed. */
    cr_assert_eq(tokens_in(path, tok, 16), 1);
    cr_assert_eq(tok[0], 8);
    cr_assert_leq(stat(path, &st) == 0 ? (uint64_t)st.st_size : 0, limit);
    snprintf(p, sizeof p, "%s.1", path);
    cr_assert_eq(tokens_in(p, tok, 16), 2);
    cr_assert(tok[0] == 6 && tok[1] == 7);
    snprintf(p, sizeof p, "%s.2", path);
    cr_assert_eq(tokens_in(p, tok, 16), 2);
    cr_assert(tok[0] == 4 && tok[1] == 5);
    snprintf(p, sizeof p, "%s.3", path);
    cr_assert_neq(stat(p, &st), 0, "%s must have been dropped (keep 2)", p);
    test_rmtree(dir);
    free(dir);
}

static int fsyncs_for(saemon_fsync_policy policy, size_t every, int alerts)
{
    char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/f.jsonl", dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = path, .fsync = policy, .fsync_every = every};
    saemon_sinks *s = open_jsonl(&o);
    char *real = realpath(path, NULL);
    fsync_count = 0;
    __atomic_store_n(&fsync_watch, real, __ATOMIC_SEQ_CST);
    send_alerts(s, 0, (uint64_t)alerts, "firing");
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    __atomic_store_n(&fsync_watch, NULL, __ATOMIC_SEQ_CST);
    saemon_sinks_destroy(s);
    uint64_t tok[16];
    cr_assert_eq(tokens_in(path, tok, 16), (size_t)alerts);
    free(real);
    test_rmtree(dir);
    free(dir);
    return fsync_count;
}

Test(jsonl, fsync_policy)
{
    /* every alert + the final one at close */
    cr_assert_eq(fsyncs_for(SAEMON_FSYNC_EVERY, 0, 10), 11);
    /* after alerts 3, 6, 9 + close */
    cr_assert_eq(fsyncs_for(SAEMON_FSYNC_EVERY_N, 3, 10), 4);
    /* only at close */
    cr_assert_eq(fsyncs_for(SAEMON_FSYNC_NEVER, 0, 10), 1);
}

Test(jsonl, full_queue_drops_and_counts)
{
    char *dir = test_tmpdir();
    stalled_fifo ff;
    fifo_stall(&ff, dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = ff.path, .queue_capacity = 4};
    saemon_sinks *s = open_jsonl(&o);
    fifo_block_consumer(s, 0); /* the consumer takes nothing more: the queue fills */
    send_alerts(s, 1, 10, "firing");
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.received, 11);
    cr_assert_eq(st.dropped, 6);
    fifo_release_and_stop(&ff, s);
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.delivered, 5);
    cr_assert_eq(saemon_sinks_get_received(s), 11);
    saemon_sinks_destroy(s);
    uint64_t tok[16];
    cr_assert_eq(fifo_tokens(&ff, tok, 16), 5);
    cr_assert(tok[0] == 0 && tok[1] == 1 && tok[4] == 4, "the oldest four queued were kept, in order");
    free(ff.data);
    test_rmtree(dir);
    free(dir);
}

Test(jsonl, backpressure_waits_for_room_instead_of_dropping)
{
    char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/bp.jsonl", dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = path, .queue_capacity = 1,
                             .fsync = SAEMON_FSYNC_EVERY};
    saemon_sinks *s = open_jsonl(&o);
    saemon_sinks_set_backpressure(s, true);
    send_alerts(s, 0, 300, "firing"); /* far more than the queue holds, faster than fsync */
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.dropped, 0, "backpressure must never drop");
    cr_assert_eq(st.delivered, 300);
    saemon_sinks_destroy(s);
    static uint64_t tok[400];
    cr_assert_eq(tokens_in(path, tok, 400), 300);
    for (uint64_t i = 0; i < 300; i++)
        cr_assert_eq(tok[i], i, "alerts arrive in order");
    test_rmtree(dir);
    free(dir);
}

/* issue 21 item 9: under `saemon serve` (no global backpressure) a burst
 * lost 31 % of the alerts of a file sink; a local sink now holds the caller
 * back instead. */
Test(jsonl, a_file_sink_waits_for_room_without_global_backpressure)
{
    char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/burst.jsonl", dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = path, .queue_capacity = 1,
                             .fsync = SAEMON_FSYNC_EVERY};
    saemon_sinks *s = open_jsonl(&o);
    send_alerts(s, 0, 300, "firing"); /* a burst far beyond the queue, faster than fsync */
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.dropped, 0, "a file sink must not drop a burst");
    cr_assert_eq(st.delivered, 300);
    saemon_sinks_destroy(s);
    static uint64_t tok[400];
    cr_assert_eq(tokens_in(path, tok, 400), 300);
    test_rmtree(dir);
    free(dir);
}

Test(jsonl, write_failure_fails_close_with_the_reason)
{
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = "/dev/full"};
    saemon_sinks *s = open_jsonl(&o);
    send_alerts(s, 0, 3, "firing");
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "/dev/full") && strstr(err.message, "No space left on device"), "%s",
              err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_assert_eq(st.failed, 3);
    cr_assert_eq(st.delivered, 0);
    saemon_sinks_destroy(s);
}

Test(jsonl, unopenable_file_is_refused_at_add)
{
    saemon_sinks *s = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_create(&s, &err), SAEMON_OK);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = "/nonexistent-dir/x.jsonl"};
    cr_assert_eq(saemon_sinks_add(s, &o, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "/nonexistent-dir/x.jsonl"), "%s", err.message);
    cr_assert_eq(saemon_sinks_get_count(s), 0);
    saemon_sinks_destroy(s);
}

/* issue 12: ENOSPC/EFBIG mid-line left half a line and the next run appended
 * after it. RLIMIT_FSIZE makes write(2) stop part-way through a line (as a
 * full disk does) without needing a small filesystem. */
Test(jsonl, a_failed_write_leaves_no_partial_line)
{
    signal(SIGXFSZ, SIG_IGN);
    char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/alerts.jsonl", dir);
    struct rlimit lim = {.rlim_cur = 1500, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = path};
    saemon_sinks *s = open_jsonl(&o);
    send_alerts(s, 0, 10, "firing"); /* ~500 bytes each: the third one is cut at 1500 */
    saemon_error err = {0};
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_ERR_IO, "a failed write fails the run");
    cr_expect(strstr(err.message, "File too large"), "%s", err.message);
    saemon_sinks_destroy(s);
    lim.rlim_cur = RLIM_INFINITY;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char *text = slurp(path);
    size_t len = strlen(text);
    cr_assert_gt(len, 0);
    cr_expect_eq(text[len - 1], '\n', "the file ends with a complete line");
    uint64_t tok[16];
    size_t n = tokens_in(path, tok, 16); /* every line parses */
    cr_expect(n >= 1 && n < 10, "%zu complete lines", n);
    free(text);

    /* A file torn by a crash (no newline at the end) is cut back before appending. */
    FILE *f = fopen(path, "a");
    fputs("{\"torn\":", f);
    fclose(f);
    s = open_jsonl(&o);
    send_alerts(s, 100, 1, "firing");
    cr_assert_eq(saemon_sinks_stop(s, &err), SAEMON_OK, "%s", err.message);
    saemon_sinks_destroy(s);
    cr_expect_eq(tokens_in(path, tok, 16), n + 1, "old complete lines kept, torn line gone, new line parses");
    cr_expect_eq(tok[n], 100);
    test_rmtree(dir);
    free(dir);
}

/* issue 12, item 12: 148 alerts with a 4 MB description took RSS to 823 MB
 * because queues were bounded by count only. Bounded in bytes now. */
Test(jsonl, queue_is_bounded_in_bytes)
{
    char *dir = test_tmpdir();
    stalled_fifo ff;
    fifo_stall(&ff, dir);
    saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = ff.path, .queue_bytes = 10u << 20};
    saemon_sinks *s = open_jsonl(&o);
    fifo_block_consumer(s, 1000); /* small, taken off the queue: the 4 MB ones queue behind it */
    size_t big = 4u << 20;
    char *description = malloc(big + 1);
    memset(description, 'x', big);
    description[big] = 0;
    test_alert t;
    for (uint64_t i = 0; i < 148; i++) {
        test_alert_make(&t, i, "firing");
        t.alert.description = description;
        saemon_sinks_alert(&t.alert, s);
    }
    free(description);
    saemon_sink_stats st;
    saemon_sinks_get_stats(s, 0, &st);
    cr_expect_eq(st.received, 149);
    cr_expect_eq(st.dropped, 146, "two 4 MB alerts fit in 10 MB");
    cr_expect_leq(st.queued_bytes, 10u << 20);
    cr_expect_gt(st.queued_bytes, 8u << 20);
    fifo_release_and_stop(&ff, s);
    saemon_sinks_get_stats(s, 0, &st);
    cr_expect_eq(st.delivered, 3);
    cr_expect_eq(st.queued_bytes, 0);
    saemon_sinks_destroy(s);
    free(ff.data);
    test_rmtree(dir);
    free(dir);
}
