/* Per-connection deadline of the metrics endpoint (slowloris). libmicrohttpd's
 * idle timeout restarts with every byte, so a client sending one header line
 * every few seconds holds its connection for ever. The guard knows every
 * connection (MHD_OPTION_NOTIFY_CONNECTION) and whether a request is being
 * answered on it; a connection that has not delivered a complete request
 * within `timeout_s` of being opened or of its previous answer (TLS handshake
 * included) is shut down by a reaper thread. */
#ifndef SAEMON_SERVE_HTTP_GUARD_H
#define SAEMON_SERVE_HTTP_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

typedef struct http_guard http_guard;

http_guard *http_guard_start(double timeout_s);
/* After the daemon that uses it has stopped. NULL is a no-op. */
void http_guard_stop(http_guard *g);
/* Connections shut down for missing their deadline. */
uint64_t http_guard_timeouts(const http_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the guard). */
void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* MHD_OPTION_NOTIFY_COMPLETED callback (cls = the guard): the deadline restarts. */
void http_guard_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe);
/* The headers of a request are in (first call of the access handler). */
void http_guard_request(http_guard *g, struct MHD_Connection *conn);

#endif
