#include "tests/sinks/http_server.h"

#include <dirent.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double http_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Value of header `name` in the head (NUL-terminated), copied to out. */
/* Pending spool entries (*.json) in dir. */
static int count_json_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        n += len > 5 && !strcmp(e->d_name + len - 5, ".json");
    }
    if (d)
        closedir(d);
    return n;
}

static void header(const char *head, const char *name, char *out, size_t len)
{
    out[0] = 0;
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, n) && line[n] == ':') {
            line += n + 1;
            while (*line == ' ')
                line++;
            size_t k = strcspn(line, "\r\n");
            if (k >= len)
                k = len - 1;
            memcpy(out, line, k);
            out[k] = 0;
            return;
        }
    }
}

static void serve_one(http_server *s, int fd)
{
    char buf[65536];
    size_t have = 0;
    char *end = NULL;
    while (!end && have < sizeof buf - 1) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return;
        have += (size_t)r;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return;
    *end = 0;
    char clen[32];
    header(buf, "Content-Length", clen, sizeof clen);
    size_t body_len = (size_t)strtoul(clen, NULL, 10);
    size_t head_len = (size_t)(end - buf) + 4;
    if (body_len > sizeof buf - head_len - 1)
        return;
    while (have < head_len + body_len) {
        ssize_t r = read(fd, buf + have, head_len + body_len - have);
        if (r <= 0)
            return;
        have += (size_t)r;
    }
    http_request rq = {0};
    sscanf(buf, "%7s %127s", rq.method, rq.path);
    header(buf, "Idempotency-Key", rq.key, sizeof rq.key);
    header(buf, "Authorization", rq.authorization, sizeof rq.authorization);
    header(buf, "X-Team", rq.team, sizeof rq.team);
    rq.body = strndup(buf + head_len, body_len);
    rq.at = http_now();
    rq.files_at_arrival = s->watch_dir ? count_json_files(s->watch_dir) : -1;
    pthread_mutex_lock(&s->mu);
    s->arrived++;
    pthread_mutex_unlock(&s->mu);
    if (s->delay_s > 0) {
        struct timespec ts = {(time_t)s->delay_s, (long)((s->delay_s - (double)(time_t)s->delay_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&s->mu);
    rq.status = (int)s->n < s->fail_first ? s->fail_status : 200;
    if (*s->require_authorization && strcmp(rq.authorization, s->require_authorization) != 0)
        rq.status = 401;
    if (s->n < HTTP_SERVER_MAX_REQUESTS)
        s->req[s->n++] = rq;
    else
        free(rq.body);
    pthread_mutex_unlock(&s->mu);
    char reply[160];
    int len = snprintf(reply, sizeof reply, "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                       rq.status);
    ssize_t w = send(fd, reply, (size_t)len, MSG_NOSIGNAL);
    (void)w;
}

size_t http_server_arrived(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->arrived;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void *run(void *arg)
{
    http_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(s, fd);
        close(fd);
    }
    return NULL;
}

bool http_server_bind(http_server *s)
{
    if (s->bound)
        return true;
    s->bound = true;
    pthread_mutex_init(&s->mu, NULL);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->listen_fd, 64) != 0 || getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return false;
    s->port = ntohs(a.sin_port);
    return true;
}

bool http_server_start(http_server *s)
{
    return http_server_bind(s) && pthread_create(&s->thread, NULL, run, s) == 0;
}

size_t http_server_count(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void http_server_stop(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    for (size_t i = 0; i < s->n; i++)
        free(s->req[i].body);
    s->n = 0;
}
