#include "monitors/sinks/sinks_config_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/read_file.h"
#include "monitors/sinks/http_auth.h"
#include "monitors/sinks/secret.h"
#include "monitors/sinks/tls_check.h"

static saemon_status oom(walk *w)
{
    return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
}

/* A path key, made relative to the sinks file. */
static saemon_status get_path(walk *w, const yaml_node_t *map, const char *key, const char *section,
                              const char **out, yaml_node_t **node)
{
    saemon_status s = walk_get_text(w, map, section, key, out);
    *node = walk_get(w, map, key, NULL);
    if (s != SAEMON_OK || !*out)
        return s;
    char *full = path_relative_to(w->file, *out);
    char *kept = full ? arena_strndup(w->mem, full, strlen(full)) : NULL;
    free(full);
    if (!kept)
        return oom(w);
    *out = kept;
    return SAEMON_OK;
}

/* A secret given as KEY, KEY_file or KEY_env (at most one). */
static saemon_status get_secret(walk *w, const yaml_node_t *map, const char *key, const char *section,
                                saemon_secret *out, char *warn, size_t wlen)
{
    char file_key[40], env_key[40];
    snprintf(file_key, sizeof file_key, "%s_file", key);
    snprintf(env_key, sizeof env_key, "%s_env", key);
    yaml_node_t *value_node = walk_get(w, map, key, NULL), *file_node = NULL;
    saemon_status s;
    if ((s = walk_get_text(w, map, section, key, &out->value)) != SAEMON_OK ||
        (s = get_path(w, map, file_key, section, &out->file, &file_node)) != SAEMON_OK ||
        (s = walk_get_text(w, map, section, env_key, &out->env)) != SAEMON_OK)
        return s;
    if (!!out->value + !!out->file + !!out->env > 1)
        return walk_fail(w, map, "%s: give only one of '%s', '%s' and '%s'", section, key, file_key, env_key);
    char what[64], msg[512];
    snprintf(what, sizeof what, "%s %s", section, key);
    if (out->file) {
        char *secret = NULL;
        struct stat st;
        bool loose = false;
        if (!secret_read_file(out->file, what, &secret, &st, &loose, msg, sizeof msg))
            return walk_fail(w, file_node, "%s", msg);
        explicit_bzero(secret, strlen(secret));
        free(secret);
        if (loose)
            tls_check_warn(warn, wlen, "%s:%zu:%zu: %s file %s is readable by group or others; make it private "
                                       "(chmod 600)",
                           w->file, walk_mark(file_node).line, walk_mark(file_node).column, what, out->file);
    }
    if (out->env && !getenv(out->env)) {
        yaml_node_t *n = walk_get(w, map, env_key, NULL);
        tls_check_warn(warn, wlen, "%s:%zu:%zu: %s: environment variable %s is not set here", w->file,
                       walk_mark(n).line, walk_mark(n).column, what, out->env);
    }
    if (out->value && strpbrk(out->value, "\r\n"))
        return walk_fail(w, value_node, "%s holds a line break", what);
    return SAEMON_OK;
}

static saemon_status check_map(walk *w, const yaml_node_t *v, const char *key, const char *const *allowed)
{
    char what[96];
    snprintf(what, sizeof what, "'%s'", key);
    return walk_check_map(w, v, what, allowed);
}

/* Declared below, used by parse_headers. */
static saemon_status get_secret(walk *w, const yaml_node_t *map, const char *key, const char *section,
                                saemon_secret *out, char *warn, size_t wlen);

/* headers: {Name: value} or {Name: {value|value_file|value_env: ...}}: a
 * value may be an API key, so it can come from a file or the environment
 * like any other secret. */
static saemon_status parse_headers(walk *w, const yaml_node_t *v, saemon_http_client *out, char *warn,
                                   size_t wlen)
{
    static const char *const secret_keys[] = {"value", "value_file", "value_env", NULL};
    if (v->type != YAML_MAPPING_NODE) {
        char d[64];
        return walk_fail(w, v, "'headers' is %s; expected a mapping of header names to values",
                         walk_describe(v, d, sizeof d));
    }
    size_t n = walk_map_len(v), n_lines = 0, n_secret = 0;
    const char **lines = arena_calloc(w->mem, n + 1, sizeof *lines);
    saemon_http_header *secret = arena_calloc(w->mem, n + 1, sizeof *secret);
    if (!lines || !secret)
        return oom(w);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k, *val;
        walk_map_pair(w, v, i, &k, &val);
        const char *name, *value;
        saemon_status s;
        if ((s = walk_string(w, k, "a header name", &name)) != SAEMON_OK)
            return s;
        if (!strcasecmp(name, "Authorization") || !strcasecmp(name, "Content-Type") ||
            !strcasecmp(name, "Idempotency-Key") || !strcasecmp(name, "Host"))
            return walk_fail(w, k, "header %.40s is set by saemon (use 'authorization' or 'basic_auth' for "
                                   "credentials)",
                             name);
        if (val->type == YAML_MAPPING_NODE) {
            char section[80];
            snprintf(section, sizeof section, "headers %.60s", name);
            if ((s = check_map(w, val, section, secret_keys)) != SAEMON_OK ||
                (s = get_secret(w, val, "value", section, &secret[n_secret].value, warn, wlen)) != SAEMON_OK)
                return s;
            if (!secret_source_set(&secret[n_secret].value))
                return walk_fail(w, val, "header %.40s: give one of 'value', 'value_file' and 'value_env'", name);
            char probe[200];
            snprintf(probe, sizeof probe, "%.100s: x", name);
            if (strlen(name) > 100 || !http_header_valid(probe))
                return walk_fail(w, k, "header %.40s: not a header name", name);
            secret[n_secret++].name = name;
            continue;
        }
        if ((s = walk_string(w, val, "a header value", &value)) != SAEMON_OK)
            return s;
        size_t len = strlen(name) + strlen(value) + 3;
        char *line = arena_calloc(w->mem, len, 1);
        if (!line)
            return oom(w);
        snprintf(line, len, "%s: %s", name, value);
        if (!http_header_valid(line))
            return walk_fail(w, k, "header %.40s is malformed; expected a token name and a one-line value", name);
        lines[n_lines++] = line;
    }
    out->headers = lines;
    out->secret_headers = secret;
    out->n_secret_headers = n_secret;
    return SAEMON_OK;
}


static saemon_status parse_tls(walk *w, const yaml_node_t *v, saemon_http_client *out, char *warn, size_t wlen)
{
    static const char *const keys[] = {"ca_file",     "cert_file",   "key_file", "server_name",
                                       "min_version", "insecure_skip_verify", NULL};
    saemon_status s = check_map(w, v, "tls_config", keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *ca, *cert, *key, *b;
    char msg[512];
    if ((s = get_path(w, v, "ca_file", "tls_config", &out->ca_file, &ca)) != SAEMON_OK ||
        (s = get_path(w, v, "cert_file", "tls_config", &out->cert_file, &cert)) != SAEMON_OK ||
        (s = get_path(w, v, "key_file", "tls_config", &out->key_file, &key)) != SAEMON_OK ||
        (s = walk_get_text(w, v, "tls_config", "server_name", &out->server_name)) != SAEMON_OK ||
        (s = walk_get_text(w, v, "tls_config", "min_version", &out->min_version)) != SAEMON_OK)
        return s;
    if (out->min_version && strcmp(out->min_version, "TLS10") && strcmp(out->min_version, "TLS11") &&
        strcmp(out->min_version, "TLS12") && strcmp(out->min_version, "TLS13"))
        return walk_fail(w, walk_get(w, v, "min_version", NULL),
                         "tls_config min_version \"%.20s\" is unknown; expected TLS10, TLS11, TLS12 or TLS13",
                         out->min_version);
    if ((b = walk_get(w, v, "insecure_skip_verify", NULL))) {
        if ((s = walk_bool(w, b, "tls_config 'insecure_skip_verify'", &out->insecure_skip_verify)) != SAEMON_OK)
            return s;
        if (out->insecure_skip_verify)
            tls_check_warn(warn, wlen, "%s:%zu:%zu: insecure_skip_verify is true: the server certificate is NOT "
                                       "checked",
                           w->file, walk_mark(b).line, walk_mark(b).column);
    }
    char where[3][300];
    const yaml_node_t *nodes[3] = {ca, cert, key};
    for (int i = 0; i < 3; i++)
        snprintf(where[i], sizeof where[i], "%s:%zu:%zu: ", w->file, walk_mark(nodes[i]).line,
                 walk_mark(nodes[i]).column);
    if (out->ca_file &&
        !tls_check_cert_file(out->ca_file, "tls_config ca_file", true, msg, sizeof msg, where[0], warn, wlen))
        return walk_fail(w, ca, "%s", msg);
    if (out->cert_file &&
        !tls_check_cert_file(out->cert_file, "tls_config cert_file", false, msg, sizeof msg, where[1], warn, wlen))
        return walk_fail(w, cert, "%s", msg);
    if (out->key_file && out->cert_file &&
        !tls_check_key_file(out->key_file, out->cert_file, msg, sizeof msg, where[2], warn, wlen))
        return walk_fail(w, key, "%s", msg);
    return SAEMON_OK;
}

saemon_status sinks_config_http(walk *w, const yaml_node_t *sink, saemon_http_client *out, char *warn,
                                size_t wlen)
{
    static const char *const basic_keys[] = {"username", "password", "password_file", "password_env", NULL};
    static const char *const auth_keys[] = {"type", "credentials", "credentials_file", "credentials_env", NULL};
    saemon_status s;
    yaml_node_t *v;
    if ((v = walk_get(w, sink, "headers", NULL)) && (s = parse_headers(w, v, out, warn, wlen)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, sink, "basic_auth", NULL))) {
        if ((s = check_map(w, v, "basic_auth", basic_keys)) != SAEMON_OK ||
            (s = walk_get_text(w, v, "basic_auth", "username", &out->basic_username)) != SAEMON_OK ||
            (s = get_secret(w, v, "password", "basic_auth", &out->basic_password, warn, wlen)) != SAEMON_OK)
            return s;
        if (!out->basic_username)
            return walk_fail(w, v, "basic_auth has no 'username'");
    }
    if ((v = walk_get(w, sink, "authorization", NULL))) {
        if ((s = check_map(w, v, "authorization", auth_keys)) != SAEMON_OK ||
            (s = walk_get_text(w, v, "authorization", "type", &out->auth_type)) != SAEMON_OK ||
            (s = get_secret(w, v, "credentials", "authorization", &out->auth_credentials, warn, wlen)) != SAEMON_OK)
            return s;
    }
    if ((v = walk_get(w, sink, "tls_config", NULL)) && (s = parse_tls(w, v, out, warn, wlen)) != SAEMON_OK)
        return s;
    char msg[512];
    if (!http_client_valid(out, msg, sizeof msg))
        return walk_fail(w, sink, "%s", msg);
    return SAEMON_OK;
}
