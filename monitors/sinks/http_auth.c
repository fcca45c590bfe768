#include "monitors/sinks/http_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

bool http_header_valid(const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return false;
    for (const char *p = line; p < colon; p++) /* RFC 9110 token characters */
        if (*p <= ' ' || *p >= 127 || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return false;
    return !strpbrk(colon, "\r\n");
}

bool http_url_has_userinfo(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return false;
    p += 3;
    size_t authority = strcspn(p, "/?#");
    return memchr(p, '@', authority) != NULL;
}

char *http_url_origin(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return strdup("?");
    const char *host = p + 3;
    size_t authority = strcspn(host, "/?#");
    const char *at = memchr(host, '@', authority);
    if (at) {
        authority -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    char *out = NULL;
    if (asprintf(&out, "%.*s://%.*s", (int)(p - url), url, (int)authority, host) < 0)
        return NULL;
    return out;
}

static bool tls_version(const char *v, long *out)
{
    static const struct {
        const char *name;
        long curl;
    } map[] = {{"TLS10", CURL_SSLVERSION_TLSv1_0},
               {"TLS11", CURL_SSLVERSION_TLSv1_1},
               {"TLS12", CURL_SSLVERSION_TLSv1_2},
               {"TLS13", CURL_SSLVERSION_TLSv1_3}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(v, map[i].name)) {
            *out = map[i].curl;
            return true;
        }
    return false;
}

bool http_client_valid(const saemon_http_client *o, char *msg, size_t len)
{
    long v;
    if (o->min_version && !tls_version(o->min_version, &v)) {
        snprintf(msg, len, "tls_config min_version \"%.20s\" is unknown; expected TLS10, TLS11, TLS12 or TLS13",
                 o->min_version);
        return false;
    }
    if (!!o->cert_file != !!o->key_file) {
        snprintf(msg, len, "tls_config needs both cert_file and key_file for a client certificate");
        return false;
    }
    bool basic = o->basic_username || secret_source_set(&o->basic_password);
    bool bearer = o->auth_type || secret_source_set(&o->auth_credentials);
    if (basic && bearer) {
        snprintf(msg, len, "basic_auth and authorization are mutually exclusive");
        return false;
    }
    if (basic && !o->basic_username) {
        snprintf(msg, len, "basic_auth needs a username");
        return false;
    }
    if (bearer && !secret_source_set(&o->auth_credentials)) {
        snprintf(msg, len, "authorization needs credentials, credentials_file or credentials_env");
        return false;
    }
    if (o->auth_type && (!*o->auth_type || strpbrk(o->auth_type, " \t\r\n:"))) {
        snprintf(msg, len, "authorization type must be one word (e.g. Bearer)");
        return false;
    }
    if (o->auth_type && !strcasecmp(o->auth_type, "basic")) {
        snprintf(msg, len, "authorization type Basic: use basic_auth instead (as Prometheus)");
        return false;
    }
    if (o->basic_username && strchr(o->basic_username, ':')) {
        snprintf(msg, len, "basic_auth username holds ':'");
        return false;
    }
    if (!secret_source_valid(&o->basic_password, "basic_auth password", msg, len) ||
        !secret_source_valid(&o->auth_credentials, "authorization credentials", msg, len))
        return false;
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        if (!http_header_valid(o->headers[i])) {
            const char *colon = strchr(o->headers[i], ':');
            snprintf(msg, len, "header %.*s is malformed; expected a token name and a one-line value",
                     colon ? (int)(colon - o->headers[i]) : 40, o->headers[i]);
            return false;
        }
    for (size_t i = 0; i < o->n_secret_headers; i++) {
        const saemon_http_header *hd = &o->secret_headers[i];
        char line[200], what[120];
        snprintf(line, sizeof line, "%.100s: x", hd->name ? hd->name : "");
        snprintf(what, sizeof what, "header %.60s", hd->name ? hd->name : "");
        if (!hd->name || strlen(hd->name) > 100 || !http_header_valid(line)) {
            snprintf(msg, len, "header %.40s: not a header name", hd->name ? hd->name : "(none)");
            return false;
        }
        if (!secret_source_valid(&hd->value, what, msg, len))
            return false;
    }
    return true;
}

/* tls_config server_name: libcurl sends SNI and checks the certificate
 * against the URL's host, so the request goes to https://SERVER_NAME:PORT/...
 * and CURLOPT_CONNECT_TO sends the connection to the URL's real host. */
static bool use_server_name(http_auth *a, const char *url, const char *server_name, CURL *curl, char *msg,
                            size_t len)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *entry = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
              curl_url_set(u, CURLUPART_HOST, server_name, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_URL, &a->url, 0) == CURLUE_OK;
    if (ok && asprintf(&entry, "%s:%s:%s:%s", server_name, port, host, port) < 0)
        entry = NULL;
    ok = ok && entry && (a->connect_to = curl_slist_append(NULL, entry)) &&
         curl_easy_setopt(curl, CURLOPT_CONNECT_TO, a->connect_to) == CURLE_OK;
    if (!ok)
        snprintf(msg, len, "tls_config server_name \"%.60s\" does not fit the URL", server_name);
    free(entry);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

static saemon_status fail(http_auth *a, saemon_error *err, const char *sink_name, const char *msg)
{
    http_auth_close(a);
    return saemon_error_set(err, SAEMON_ERR_ARG, "sink %s: %s", sink_name, msg);
}

saemon_status http_auth_open(http_auth *a, const saemon_http_client *o, const char *url, const char *sink_name,
                             CURL *curl, saemon_error *err)
{
    memset(a, 0, sizeof *a);
    char msg[512];
    if (http_url_has_userinfo(url))
        return fail(a, err, sink_name, "the URL holds credentials (user:password@); use basic_auth");
    if (!http_client_valid(o, msg, sizeof msg))
        return fail(a, err, sink_name, msg);
    size_t n = 0;
    while (o->headers && o->headers[n])
        n++;
    a->headers = calloc(n + 1, sizeof *a->headers);
    if (!a->headers)
        return fail(a, err, sink_name, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(a->headers[i] = strdup(o->headers[i])))
            return fail(a, err, sink_name, "out of memory");
    if (o->n_secret_headers) {
        a->secret_names = calloc(o->n_secret_headers, sizeof *a->secret_names);
        a->secret_values = calloc(o->n_secret_headers, sizeof *a->secret_values);
        if (!a->secret_names || !a->secret_values)
            return fail(a, err, sink_name, "out of memory");
        for (size_t i = 0; i < o->n_secret_headers; i++) {
            char what[120];
            snprintf(what, sizeof what, "header %.60s", o->secret_headers[i].name);
            a->n_secret_headers = i + 1;
            if (!(a->secret_names[i] = strdup(o->secret_headers[i].name)))
                return fail(a, err, sink_name, "out of memory");
            if (!sink_secret_init(&a->secret_values[i], &o->secret_headers[i].value, what, msg, sizeof msg))
                return fail(a, err, sink_name, msg);
        }
    }
    if (o->basic_username) {
        if (!(a->username = strdup(o->basic_username)))
            return fail(a, err, sink_name, "out of memory");
        if (!sink_secret_init(&a->password, &o->basic_password, "basic_auth password", msg, sizeof msg))
            return fail(a, err, sink_name, msg);
    }
    if (secret_source_set(&o->auth_credentials)) {
        if (!(a->auth_type = strdup(o->auth_type ? o->auth_type : "Bearer")))
            return fail(a, err, sink_name, "out of memory");
        if (!sink_secret_init(&a->credentials, &o->auth_credentials, "authorization credentials", msg, sizeof msg))
            return fail(a, err, sink_name, msg);
    }
    bool https = !strncmp(url, "https://", 8);
    if ((a->username || a->auth_type) && !https)
        fprintf(stderr, "saemon: warning: sink %s sends credentials over plain http://; use https://\n", sink_name);

    /* TLS: verification is on unless insecure_skip_verify is true. */
    long min = CURL_SSLVERSION_TLSv1_2;
    if (o->min_version)
        tls_version(o->min_version, &min);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, min);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, o->insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, o->insecure_skip_verify ? 0L : 2L);
    if (o->insecure_skip_verify)
        fprintf(stderr,
                "saemon: WARNING: sink %s: tls_config insecure_skip_verify is true: the server's certificate "
                "and name are NOT checked; anyone on the path can read the alerts and credentials\n",
                sink_name);
    if ((o->ca_file && curl_easy_setopt(curl, CURLOPT_CAINFO, o->ca_file) != CURLE_OK) ||
        (o->cert_file && (curl_easy_setopt(curl, CURLOPT_SSLCERT, o->cert_file) != CURLE_OK ||
                          curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK)) ||
        (o->key_file && (curl_easy_setopt(curl, CURLOPT_SSLKEY, o->key_file) != CURLE_OK ||
                         curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK)))
        return fail(a, err, sink_name, "libcurl refused a tls_config file option (out of memory?)");
    if (o->server_name && !use_server_name(a, url, o->server_name, curl, msg, sizeof msg))
        return fail(a, err, sink_name, msg);
    return SAEMON_OK;
}

bool http_auth_prepare(http_auth *a, CURL *curl, struct curl_slist **headers, char *msg, size_t len)
{
    if (a->username) {
        if (!sink_secret_refresh(&a->password, "basic_auth password", msg, len))
            return false;
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERNAME, a->username);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, a->password.value ? a->password.value : "");
    }
    if (a->auth_type) {
        if (!sink_secret_refresh(&a->credentials, "authorization credentials", msg, len))
            return false;
        size_t n = strlen(a->auth_type) + strlen(a->credentials.value) + 32;
        char *line = malloc(n);
        if (!line) {
            snprintf(msg, len, "out of memory");
            return false;
        }
        snprintf(line, n, "Authorization: %s %s", a->auth_type, a->credentials.value);
        struct curl_slist *more = curl_slist_append(*headers, line);
        explicit_bzero(line, n); /* curl keeps its own copy (wiped by nobody: it lives one request) */
        free(line);
        if (!more) {
            snprintf(msg, len, "out of memory");
            return false;
        }
        *headers = more;
    }
    for (size_t i = 0; a->headers && a->headers[i]; i++) {
        struct curl_slist *more = curl_slist_append(*headers, a->headers[i]);
        if (!more) {
            snprintf(msg, len, "out of memory");
            return false;
        }
        *headers = more;
    }
    for (size_t i = 0; i < a->n_secret_headers; i++) {
        char what[120];
        snprintf(what, sizeof what, "header %.60s", a->secret_names[i]);
        if (!sink_secret_refresh(&a->secret_values[i], what, msg, len))
            return false;
        const char *v = a->secret_values[i].value ? a->secret_values[i].value : "";
        size_t n = strlen(a->secret_names[i]) + strlen(v) + 3;
        char *line = malloc(n);
        if (!line) {
            snprintf(msg, len, "out of memory");
            return false;
        }
        snprintf(line, n, "%s: %s", a->secret_names[i], v);
        bool valid = http_header_valid(line);
        struct curl_slist *more = valid ? curl_slist_append(*headers, line) : NULL;
        explicit_bzero(line, n);
        free(line);
        if (!valid) {
            snprintf(msg, len, "%s: the value is not one line of visible characters", what);
            return false;
        }
        if (!more) {
            snprintf(msg, len, "out of memory");
            return false;
        }
        *headers = more;
    }
    return true;
}

void http_auth_close(http_auth *a)
{
    for (size_t i = 0; a->headers && a->headers[i]; i++) {
        explicit_bzero(a->headers[i], strlen(a->headers[i]));
        free(a->headers[i]);
    }
    free(a->headers);
    for (size_t i = 0; i < a->n_secret_headers; i++) {
        free(a->secret_names[i]);
        sink_secret_free(&a->secret_values[i]);
    }
    free(a->secret_names);
    free(a->secret_values);
    free(a->username);
    free(a->auth_type);
    sink_secret_free(&a->password);
    sink_secret_free(&a->credentials);
    if (a->url)
        curl_free(a->url);
    curl_slist_free_all(a->connect_to);
    memset(a, 0, sizeof *a);
}
