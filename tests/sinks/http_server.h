/* A tiny HTTP/1.1 server on 127.0.0.1 for the sink tests: one thread,
 * one request per connection, every request recorded. */
#ifndef SAEMON_TESTS_SINKS_HTTP_SERVER_H
#define SAEMON_TESTS_SINKS_HTTP_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_SERVER_MAX_REQUESTS 2048

typedef struct http_request {
    char method[8];
    char path[128];
    char key[80];      /* Idempotency-Key header, "" if absent */
    char authorization[256]; /* Authorization header, "" if absent */
    char team[64];     /* X-Team header (custom headers test), "" if absent */
    char *body;
    double at;         /* CLOCK_MONOTONIC seconds when it arrived */
    int status;        /* what the server answered */
    int files_at_arrival; /* *.json files in watch_dir when it arrived (-1: not watched) */
} http_request;

typedef struct http_server {
    int listen_fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    bool stop;
    bool bound;
    /* behaviour */
    int fail_first;    /* answer the first N requests with fail_status */
    int fail_status;   /* e.g. 503 or 400 */
    double delay_s;    /* sleep before answering */
    /* when set, requests without exactly this Authorization header get 401
     * (the receiver behind basic auth / a bearer-token proxy) */
    char require_authorization[256];
    const char *watch_dir; /* count its *.json files as each request arrives */
    size_t arrived;    /* requests read so far (answered or not yet) */
    /* record */
    http_request req[HTTP_SERVER_MAX_REQUESTS];
    size_t n;
} http_server;

/* Listen on 127.0.0.1:<free port> (s->port) without serving yet: a test
 * can fork while it is still single-threaded. start() binds if needed. */
bool http_server_bind(http_server *s);
bool http_server_start(http_server *s);
size_t http_server_count(http_server *s);
size_t http_server_arrived(http_server *s);
void http_server_stop(http_server *s); /* joins; frees bodies */
double http_now(void);

#endif
