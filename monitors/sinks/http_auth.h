/* What an HTTP sink adds to each request to authenticate: custom headers,
 * basic auth or an Authorization header (secrets from sink_secret), and the
 * TLS options of the libcurl handle. */
#ifndef SAEMON_MONITORS_SINKS_HTTP_AUTH_H
#define SAEMON_MONITORS_SINKS_HTTP_AUTH_H

#include <curl/curl.h>
#include <stdbool.h>

#include "monitors/sinks/secret.h"
#include "saemon/sinks.h"

typedef struct http_auth {
    char **headers;          /* "Name: value", NULL-terminated (wiped when freed: values may be keys) */
    char **secret_names;     /* headers whose values are sink_secrets */
    sink_secret *secret_values;
    size_t n_secret_headers;
    char *username;          /* basic auth when set */
    sink_secret password;
    char *auth_type;         /* Authorization header when credentials are set */
    sink_secret credentials;
    char *url;               /* the URL to request: with tls_config server_name, its host */
    struct curl_slist *connect_to; /* ... and the real host to connect to */
} http_auth;

/* Check the options, load the secrets and set the TLS options on `curl`.
 * Warnings (skip-verify, credentials over plain http, secret files others can
 * read) go to stderr. Messages never hold a secret. */
saemon_status http_auth_open(http_auth *a, const saemon_http_client *o, const char *url, const char *sink_name,
                             CURL *curl, saemon_error *err);
/* Before each request: refresh rotated secret files, set basic auth on
 * `curl` and append the headers to *headers. False (reason in msg) when a
 * secret file became unreadable or memory ran out. */
bool http_auth_prepare(http_auth *a, CURL *curl, struct curl_slist **headers, char *msg, size_t len);
void http_auth_close(http_auth *a);

/* Static checks shared by http_auth_open and `saemon check --sinks`: the
 * option combination, that a header line is well-formed. */
bool http_client_valid(const saemon_http_client *o, char *msg, size_t len);
bool http_header_valid(const char *line);
/* "https://user:pw@host/..." — credentials that would end up in names and logs. */
bool http_url_has_userinfo(const char *url);
/* "scheme://host[:port]" of a URL, without user info, path, query or
 * fragment (tokens live there: Slack-style paths, ?token=): for names. */
char *http_url_origin(const char *url);

#endif
