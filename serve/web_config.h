/* The web config file of the Prometheus exporter toolkit, for the daemon's
 * HTTP endpoint (/metrics, /healthz): the same file a Prometheus exporter
 * takes with --web.config.file.
 *
 *   tls_server_config:
 *     cert_file: server.crt            # relative to this file
 *     key_file: server.key
 *     client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
 *     client_ca_file: clients-ca.crt
 *     min_version: TLS12               # TLS10..TLS13, default TLS12
 *   basic_auth_users:
 *     prometheus: $2y$10$...           # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
 *
 * Files are read when the config is loaded (restart to rotate them). Every
 * request (every path) needs valid basic auth when users are configured. */
#ifndef SAEMON_CLI_WEB_CONFIG_H
#define SAEMON_CLI_WEB_CONFIG_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "saemon/error.h"

typedef struct web_config web_config;

typedef enum web_client_auth {
    WEB_NO_CLIENT_CERT = 0,
    WEB_REQUEST_CLIENT_CERT,
    WEB_REQUIRE_ANY_CLIENT_CERT,
    WEB_VERIFY_CLIENT_CERT_IF_GIVEN,
    WEB_REQUIRE_AND_VERIFY_CLIENT_CERT,
} web_client_auth;

/* Parse and check the file: errors are "file:line:column: ..."; the
 * certificate/key pair and the client CAs are loaded with GnuTLS (what
 * libmicrohttpd uses) so a mismatch fails here, and every bcrypt hash is
 * checked to be one. */
saemon_status web_config_load(const char *path, web_config **out, saemon_error *err);
void web_config_free(web_config *wc);

bool web_config_tls(const web_config *wc);
bool web_config_basic_auth(const web_config *wc);

/* The libmicrohttpd options for TLS (HTTPS_MEM_KEY/CERT, HTTPS_MEM_TRUST for
 * client certificates, HTTPS_PRIORITIES for min_version), to pass with
 * MHD_OPTION_ARRAY; `items` must hold 6 entries, the last is MHD_OPTION_END.
 * *flags gets MHD_USE_TLS when TLS is configured. The strings belong to wc,
 * which must outlive the daemon. */
void web_config_mhd_options(const web_config *wc, struct MHD_OptionItem items[6], unsigned *flags);

/* Call first in the access handler, once the headers are in: true when the
 * request may proceed. Otherwise the refusal (403 without the required
 * client certificate, 401 + WWW-Authenticate without valid basic auth) is
 * queued on the connection and *result is what the handler must return. */
bool web_config_admit(web_config *wc, struct MHD_Connection *conn, enum MHD_Result *result);

/* The basic-auth check alone: user and password against the bcrypt hashes
 * (crypt_r; constant-time compare; a success is remembered for
 * WEB_AUTH_CACHE_S so a scrape every few seconds does not pay bcrypt's cost
 * each time). */
#define WEB_AUTH_CACHE_S 60.0
bool web_config_check_password(web_config *wc, const char *user, const char *password);

/* Requests refused with 429 (failed-login budget of their address spent, or
 * too many bcrypt checks running) since the config was loaded. */
uint64_t web_config_auth_throttled(web_config *wc);

#endif
