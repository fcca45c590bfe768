#include "serve/metrics_http.h"
#include "serve/http_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Limits against clients that hold connections (docs/serve.md, threat model):
 * more connections than any scraper needs, a share per client address, a
 * deadline for a complete request, a few threads so one slow bcrypt check
 * does not stall every other request. */
#define HTTP_THREADS 4u
#define HTTP_CONNECTIONS 512u
#define HTTP_CONNECTIONS_PER_IP 64u
#define HTTP_IDLE_TIMEOUT_S 10u
#define HTTP_REQUEST_DEADLINE_S 10.0

struct metrics_http {
    struct MHD_Daemon *daemon;
    http_guard *guard;
    metrics_http_callbacks cb;
    web_config *web; /* TLS, basic auth; NULL = plain HTTP, open */
    struct sockaddr_storage addr;
    unsigned port;
};

static saemon_status fail(saemon_error *err, const char *fmt, const char *a, const char *b)
{
    if (err) {
        err->code = SAEMON_ERR_ARG;
        snprintf(err->message, sizeof err->message, fmt, a, b);
    }
    return SAEMON_ERR_ARG;
}

bool metrics_http_parse_listen(const char *listen, void *ss_out, size_t *len_out, saemon_error *err)
{
    char host[64] = "127.0.0.1";
    const char *port_text = listen;
    const char *colon = strrchr(listen, ':');
    if (colon) {
        size_t hl = (size_t)(colon - listen);
        const char *h = listen;
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        if (hl == 0 || hl >= sizeof host) {
            fail(err, "--metrics %s: expected HOST:PORT (e.g. 127.0.0.1:9464)%s", listen, "");
            return false;
        }
        memcpy(host, h, hl);
        host[hl] = 0;
        port_text = colon + 1;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (errno || !*port_text || *end || port < 0 || port > 65535) {
        fail(err, "--metrics %s: '%s' is not a port number (0-65535)", listen, port_text);
        return false;
    }
    struct sockaddr_storage *ss = ss_out;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len_out = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len_out = sizeof *v6;
    } else if (strcmp(host, "localhost") == 0) {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        v4->sin_port = htons((uint16_t)port);
        *len_out = sizeof *v4;
    } else {
        fail(err, "--metrics %s: '%s' is not an IP address (names other than localhost are not resolved)",
             listen, host);
        return false;
    }
    return true;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                               size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    char *body = strdup(text);
    if (!body)
        return MHD_NO;
    return respond(conn, status, "text/plain; charset=utf-8", body, strlen(body));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload_data;
    metrics_http *h = cls;
    if (!*state) { /* first call for this request: headers only */
        *state = h;
        http_guard_request(h->guard, conn);
        return MHD_YES;
    }
    if (*upload_size) /* GET/HEAD carry no body: ignore and finish */
        *upload_size = 0;
    enum MHD_Result refused;
    if (!web_config_admit(h->web, conn, &refused))
        return refused;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        prom_text t = {0};
        h->cb.render(h->cb.user, &t);
        prom_family(&t, "saemon_http_request_timeouts_total", "counter",
                    "Connections of the metrics endpoint shut down for not sending a complete request in time "
                    "(since the last web config reload).");
        prom_sample_u64(&t, "saemon_http_request_timeouts_total", NULL, 0, http_guard_timeouts(h->guard));
        prom_family(&t, "saemon_http_auth_throttled_total", "counter",
                    "Requests refused with 429: too many failed logins from their address, or too many "
                    "password checks at once (since the last web config reload).");
        prom_sample_u64(&t, "saemon_http_auth_throttled_total", NULL, 0, web_config_auth_throttled(h->web));
        if (t.failed || !t.buf) {
            prom_text_free(&t);
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        }
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", t.buf, t.len);
    }
    if (strcmp(url, "/healthz") == 0) {
        char why[256] = "";
        bool ok = h->cb.healthy ? h->cb.healthy(h->cb.user, why, sizeof why) : true;
        char msg[300];
        snprintf(msg, sizeof msg, "%s%s%s\n", ok ? "ok" : "unhealthy", *why ? ": " : "", why);
        return respond_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    if (strcmp(url, "/") == 0)
        return respond_text(conn, MHD_HTTP_OK, "saemon: /metrics (Prometheus), /healthz\n");
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n");
}

/* Start a daemon for h, on `listen_fd` (a socket handed over by
 * MHD_quiesce_daemon) or else binding `ss`. MHD_USE_ITC: required by
 * MHD_quiesce_daemon, which metrics_http_restart uses. */
static struct MHD_Daemon *start_daemon(metrics_http *h, const struct sockaddr_storage *ss, MHD_socket listen_fd)
{
    if (!(h->guard = http_guard_start(HTTP_REQUEST_DEADLINE_S)))
        return NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct MHD_OptionItem tls[6];
    web_config_mhd_options(h->web, tls, &flags);
    if (ss->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                                    : ((const struct sockaddr_in *)ss)->sin_port);
    struct MHD_OptionItem where[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (listen_fd != MHD_INVALID_SOCKET)
        where[0] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, (intptr_t)listen_fd, NULL};
    else
        where[0] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)ss};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, port, NULL, NULL, handle, h, MHD_OPTION_ARRAY, where, MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_CONNECTIONS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
        MHD_OPTION_NOTIFY_CONNECTION, http_guard_notify, h->guard, MHD_OPTION_NOTIFY_COMPLETED,
        http_guard_completed, h->guard, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d) {
        int e = errno;
        http_guard_stop(h->guard);
        h->guard = NULL;
        errno = e;
    }
    return d;
}

saemon_status metrics_http_start(const char *listen, const metrics_http_callbacks *cb, web_config *web,
                                 metrics_http **out, saemon_error *err)
{
    *out = NULL;
    struct sockaddr_storage ss;
    size_t sl = 0;
    if (!metrics_http_parse_listen(listen, &ss, &sl, err))
        return SAEMON_ERR_ARG;
    metrics_http *h = calloc(1, sizeof *h);
    if (!h)
        return fail(err, "metrics endpoint %s: out of memory%s", listen, "");
    h->cb = *cb;
    h->web = web;
    h->addr = ss;
    h->daemon = start_daemon(h, &ss, MHD_INVALID_SOCKET);
    if (!h->daemon) {
        free(h);
        return fail(err, "metrics endpoint %s: cannot listen (%s)", listen,
                    errno ? strerror(errno) : "address in use or not available");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *out = h;
    return SAEMON_OK;
}

/* Let the old daemon's requests in flight finish (at most ~2 s) before it stops. */
static void drain(struct MHD_Daemon *d)
{
    for (int i = 0; i < 200; i++) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!info || info->num_connections == 0)
            return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

saemon_status metrics_http_restart(metrics_http **hp, web_config *web, saemon_error *err)
{
    metrics_http *old = *hp, *h = calloc(1, sizeof *h);
    if (!h)
        return fail(err, "metrics endpoint: out of memory%s%s", "", "");
    *h = *old;
    h->web = web;
    if (!old->daemon) { /* an earlier restart failed for good: bind afresh */
        h->daemon = start_daemon(h, &h->addr, MHD_INVALID_SOCKET);
        if (!h->daemon) {
            free(h);
            return fail(err, "metrics endpoint: cannot listen again (%s)%s",
                        errno ? strerror(errno) : "address in use or not available", "");
        }
        free(old);
        *hp = h;
        return SAEMON_OK;
    }
    /* The old daemon stops accepting and hands its socket over: no
     * connection attempt is refused while the new one starts. */
    MHD_socket fd = MHD_quiesce_daemon(old->daemon);
    if (fd == MHD_INVALID_SOCKET) {
        free(h);
        return fail(err, "metrics endpoint: cannot hand the listening socket over%s%s", "", "");
    }
    h->daemon = start_daemon(h, &h->addr, fd);
    saemon_status s = SAEMON_OK;
    if (!h->daemon) {
        s = fail(err, "metrics endpoint: cannot start with the new web config (%s)%s",
                 errno ? strerror(errno) : "libmicrohttpd refused it", "");
        h->web = old->web; /* go on serving as before */
        h->daemon = start_daemon(h, &h->addr, fd);
        if (!h->daemon) {
            close(fd);
            s = fail(err, "metrics endpoint: stopped, it could not be restarted (%s)%s",
                     errno ? strerror(errno) : "libmicrohttpd refused it", "");
        }
    }
    drain(old->daemon);
    MHD_stop_daemon(old->daemon); /* quiesced: the socket stays open for h */
    http_guard_stop(old->guard);
    free(old);
    *hp = h;
    return s;
}

web_config *metrics_http_web_config(const metrics_http *h)
{
    return h ? h->web : NULL;
}

unsigned metrics_http_port(const metrics_http *h)
{
    return h ? h->port : 0;
}

void metrics_http_stop(metrics_http *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    http_guard_stop(h->guard);
    free(h);
}
