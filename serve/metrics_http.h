/* The daemon's HTTP endpoint (libmicrohttpd): GET /metrics in the Prometheus
 * text exposition format, GET /healthz, nothing else. It listens on loopback
 * unless told otherwise. Requests are served on libmicrohttpd's own thread;
 * the callbacks must only read state that is safe to read concurrently. */
#ifndef SAEMON_CLI_METRICS_HTTP_H
#define SAEMON_CLI_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "serve/prom_text.h"
#include "serve/web_config.h"
#include "saemon/error.h"

typedef struct metrics_http metrics_http;

typedef struct metrics_http_callbacks {
    /* Append every metric to `out`. */
    void (*render)(void *user, prom_text *out);
    /* Healthy? On false, `why` (NUL-terminated, at most `len` bytes) says why. */
    bool (*healthy)(void *user, char *why, size_t len);
    void *user;
} metrics_http_callbacks;

/* `listen` is "HOST:PORT" ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464") or
 * just "PORT" (loopback). Port 0 picks a free port (see metrics_http_port).
 * `web` (optional, see web_config.h): TLS and basic auth as a Prometheus
 * exporter's --web.config.file; it must outlive the endpoint. */
saemon_status metrics_http_start(const char *listen, const metrics_http_callbacks *cb, web_config *web,
                                 metrics_http **out, saemon_error *err);
/* Serve with `web` from now on (a rotated certificate, changed users): a new
 * libmicrohttpd daemon takes the listening socket over from the running one
 * (MHD_quiesce_daemon), so no connection attempt is refused meanwhile;
 * requests in flight finish first (up to ~2 s). *h is replaced. On failure
 * the endpoint goes on with its old web config (or, if even that cannot
 * restart, it stops: the message says which); the caller frees whichever
 * web config is no longer in use (compare with the one it passed). */
saemon_status metrics_http_restart(metrics_http **h, web_config *web, saemon_error *err);
/* The web config in use. */
web_config *metrics_http_web_config(const metrics_http *h);
/* The port actually bound. */
unsigned metrics_http_port(const metrics_http *h);
void metrics_http_stop(metrics_http *h);

/* Parse "HOST:PORT" / "[V6]:PORT" / "PORT" into a socket address; false with
 * a message in err if malformed. Exposed for `saemon check`-style validation. */
bool metrics_http_parse_listen(const char *listen, void *sockaddr_storage_out, size_t *len_out,
                               saemon_error *err);

#endif
