/* The sinks config file (YAML, see docs/sinks.md):
 *
 *   sinks:
 *     - type: jsonl          # jsonl | stdout | webhook | alertmanager | exec | otlp
 *       path: alerts.jsonl
 *       fsync: every         # every | never | <N>
 *       rotate_bytes: 10485760
 *       keep: 5
 *     - type: webhook
 *       url: http://127.0.0.1:8080/hook
 *       spool: /var/spool/saemon/hook
 *
 * Every sink is validated before any is opened; errors are file:line:column. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/error.h"
#include "base/read_file.h"
#include "monitors/sinks/sink_internal.h"

#define SINKS_MAX_FILE_BYTES (1u << 20)
#include "base/yaml_walk.h"
#include "monitors/sinks/http_auth.h"
#include "monitors/sinks/sinks_config_http.h"

#define MAX_SINKS 64
#define MAX_ARGV 256

typedef struct parsed_sink {
    saemon_sink_options o;
    walk_pos mark;
} parsed_sink;

static const char *const common_keys[] = {"type", "name", "queue", "drain_timeout"};
static const char *const jsonl_keys[] = {"path", "fsync", "rotate_bytes", "keep", NULL};
static const char *const stdout_keys[] = {NULL};
static const char *const http_keys[] = {"url", "timeout", "retries", "backoff", "backoff_max", "spool",
                                        "headers", "basic_auth", "authorization", "tls_config", NULL};
static const char *const am_keys[] = {"url", "timeout", "retries", "backoff", "backoff_max", "spool",
                                      "generator_url", "headers", "basic_auth", "authorization", "tls_config", NULL};
static const char *const exec_keys[] = {"command", "timeout", NULL};
static const char *const otlp_keys[] = {"url", "timeout", "retries", "backoff", "backoff_max", "spool",
                                        "service_name", "service_instance", "headers", "basic_auth",
                                        "authorization", "tls_config", NULL};

/* common_keys + the kind's keys, NULL-terminated, in `out`. */
static void allowed_keys(const char *const *kind_keys, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++)
        out[n++] = common_keys[i];
    for (size_t i = 0; kind_keys[i]; i++)
        out[n++] = kind_keys[i];
    out[n] = NULL;
}

static saemon_status get_seconds(walk *w, const yaml_node_t *map, const char *key, double max, double *out)
{
    yaml_node_t *v = walk_get(w, map, key, NULL);
    if (!v)
        return SAEMON_OK;
    float f;
    char what[64];
    snprintf(what, sizeof what, "'%s' (seconds)", key);
    saemon_status s = walk_float(w, v, what, &f);
    if (s != SAEMON_OK)
        return s;
    if (!(f > 0) || f > max)
        return walk_fail(w, v, "'%s' is %g; expected seconds in (0, %g]", key, (double)f, max);
    *out = f;
    return SAEMON_OK;
}

/* An optional positive integer. */
static saemon_status get_uint(walk *w, const yaml_node_t *map, const char *key, uint64_t max, uint64_t *out)
{
    yaml_node_t *v = walk_get(w, map, key, NULL);
    if (!v)
        return SAEMON_OK;
    saemon_status s = walk_get_uint(w, map, key, max, out);
    if (s == SAEMON_OK && *out == 0)
        return walk_fail(w, v, "'%s' is 0; expected a positive integer", key);
    return s;
}

static saemon_status get_string(walk *w, const yaml_node_t *map, const char *key, bool required,
                                const char **out)
{
    if (required && !walk_get(w, map, key, NULL))
        return walk_fail(w, map, "this sink has no '%s'", key);
    return walk_get_text(w, map, NULL, key, out);
}

static saemon_status parse_fsync(walk *w, const yaml_node_t *v, saemon_sink_options *o)
{
    if (walk_scalar_type(v) == SCALAR_INT) {
        uint64_t n;
        saemon_status s = walk_uint(w, v, "'fsync'", 1u << 30, &n);
        if (s != SAEMON_OK)
            return s;
        if (n == 0)
            return walk_fail(w, v, "'fsync' is 0; expected every, never or a positive count");
        o->fsync = n == 1 ? SAEMON_FSYNC_EVERY : SAEMON_FSYNC_EVERY_N;
        o->fsync_every = (size_t)n;
        return SAEMON_OK;
    }
    const char *text;
    saemon_status s = walk_string(w, v, "'fsync'", &text);
    if (s != SAEMON_OK)
        return s;
    if (!strcmp(text, "every") || !strcmp(text, "always"))
        o->fsync = SAEMON_FSYNC_EVERY;
    else if (!strcmp(text, "never"))
        o->fsync = SAEMON_FSYNC_NEVER;
    else
        return walk_fail(w, v, "unknown fsync policy \"%.40s\"; expected every, never or a positive count", text);
    return SAEMON_OK;
}

static saemon_status parse_command(walk *w, const yaml_node_t *v, saemon_sink_options *o)
{
    if (v->type != YAML_SEQUENCE_NODE) {
        char d[64];
        return walk_fail(w, v, "'command' is %s; expected a list of strings (argv, no shell), "
                               "e.g. [/usr/bin/logger, -t, saemon]",
                         walk_describe(v, d, sizeof d));
    }
    size_t n = walk_seq_len(v);
    if (n == 0 || n > MAX_ARGV)
        return walk_fail(w, v, "'command' has %zu items; expected 1 to %d", n, MAX_ARGV);
    const char **argv = arena_calloc(w->mem, n + 1, sizeof *argv);
    if (!argv)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = walk_seq_item(w, v, i);
        saemon_status s = walk_string(w, item, "a 'command' item", &argv[i]);
        if (s != SAEMON_OK)
            return s;
    }
    if (!*argv[0])
        return walk_fail(w, v, "'command' starts with an empty program name");
    o->argv = argv;
    return SAEMON_OK;
}

/* The OTLP exporter convention: a signal-specific endpoint is used as
 * given, so the URL names the logs path; a collector's base URL (port 4318
 * without /v1/logs) is almost always a mistake: warn, do not refuse (a
 * proxy may route any path). */
static void otlp_url_warning(walk *w, const yaml_node_t *v, const char *url, char *warn, size_t wlen)
{
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    size_t n = path ? strcspn(path, "?#") : 0;
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (path && n >= 8 && !strncmp(path + n - 8, "/v1/logs", 8))
        return;
    if (!warn || !wlen)
        return;
    walk_pos at = walk_mark(v);
    size_t used = strlen(warn);
    if (used + 1 < wlen)
        snprintf(warn + used, wlen - used,
                 "%s:%zu:%zu: otlp 'url' does not end with /v1/logs; OTLP/HTTP collectors take logs at "
                 "http://HOST:4318/v1/logs (the URL is used as given)\n",
                 w->file, at.line, at.column);
}

static saemon_status parse_sink(walk *w, const yaml_node_t *node, parsed_sink *p, char *warn, size_t wlen)
{
    saemon_status s = walk_visit(w, node);
    if (s != SAEMON_OK)
        return s;
    if (node->type != YAML_MAPPING_NODE) {
        char d[64];
        return walk_fail(w, node, "a sink is %s; expected a mapping with a 'type'", walk_describe(node, d, sizeof d));
    }
    saemon_sink_options *o = &p->o;
    p->mark = walk_mark(node);
    /* Find the type first: it decides which other keys are allowed. */
    const char *type = NULL;
    for (size_t i = 0; i < walk_map_len(node); i++) {
        yaml_node_t *k, *v;
        walk_map_pair(w, node, i, &k, &v);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, "type")) {
            if ((s = walk_string(w, v, "'type'", &type)) != SAEMON_OK)
                return s;
        }
    }
    if (!type)
        return walk_fail(w, node, "sink has no 'type'; expected one of jsonl, stdout, webhook, alertmanager, exec, "
                                  "otlp");
    const char *const *kind_keys;
    if (!strcmp(type, "jsonl"))
        o->kind = SAEMON_SINK_JSONL, kind_keys = jsonl_keys;
    else if (!strcmp(type, "stdout"))
        o->kind = SAEMON_SINK_STDOUT, kind_keys = stdout_keys;
    else if (!strcmp(type, "webhook"))
        o->kind = SAEMON_SINK_WEBHOOK, kind_keys = http_keys;
    else if (!strcmp(type, "alertmanager"))
        o->kind = SAEMON_SINK_ALERTMANAGER, kind_keys = am_keys;
    else if (!strcmp(type, "exec"))
        o->kind = SAEMON_SINK_EXEC, kind_keys = exec_keys;
    else if (!strcmp(type, "otlp"))
        o->kind = SAEMON_SINK_OTLP, kind_keys = otlp_keys;
    else
        return walk_fail(w, walk_get(w, node, "type", NULL),
                         "unknown sink type \"%.40s\"; expected one of jsonl, stdout, webhook, alertmanager, exec, "
                         "otlp",
                         type);
    const char *allowed[24];
    allowed_keys(kind_keys, allowed);
    char what[48];
    snprintf(what, sizeof what, "a %s sink", type);
    if ((s = walk_check_map(w, node, what, allowed)) != SAEMON_OK)
        return s;

    uint64_t u = 0;
    yaml_node_t *v;
    if ((s = get_string(w, node, "name", false, &o->name)) != SAEMON_OK)
        return s;
    if ((s = get_uint(w, node, "queue", 1u << 24, &u)) != SAEMON_OK)
        return s;
    o->queue_capacity = (size_t)u;
    if ((s = get_seconds(w, node, "drain_timeout", 86400, &o->drain_timeout_s)) != SAEMON_OK)
        return s;
    switch (o->kind) {
    case SAEMON_SINK_JSONL:
        if ((s = get_string(w, node, "path", true, &o->path)) != SAEMON_OK)
            return s;
        if ((v = walk_get(w, node, "fsync", NULL)) && (s = parse_fsync(w, v, o)) != SAEMON_OK)
            return s;
        u = 0;
        if ((s = get_uint(w, node, "rotate_bytes", UINT64_MAX, &u)) != SAEMON_OK)
            return s;
        o->rotate_bytes = u;
        u = 0;
        if ((s = get_uint(w, node, "keep", 1000, &u)) != SAEMON_OK)
            return s;
        o->rotate_keep = (size_t)u;
        break;
    case SAEMON_SINK_STDOUT: break;
    case SAEMON_SINK_WEBHOOK:
    case SAEMON_SINK_ALERTMANAGER:
    case SAEMON_SINK_OTLP:
        if ((s = get_string(w, node, "url", true, &o->url)) != SAEMON_OK)
            return s;
        v = walk_get(w, node, "url", NULL);
        if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))
            return walk_fail(w, v, "'url' \"%.60s\" is not an http:// or https:// URL", o->url);
        if (http_url_has_userinfo(o->url))
            return walk_fail(w, v, "'url' holds credentials (user:password@); they would show in sink names and "
                                   "messages: use basic_auth with password_file");
        if ((s = get_seconds(w, node, "timeout", 3600, &o->timeout_s)) != SAEMON_OK ||
            (s = get_seconds(w, node, "backoff", 3600, &o->backoff_initial_s)) != SAEMON_OK ||
            (s = get_seconds(w, node, "backoff_max", 86400, &o->backoff_max_s)) != SAEMON_OK)
            return s;
        u = 0;
        if ((s = get_uint(w, node, "retries", 1000, &u)) != SAEMON_OK)
            return s;
        o->max_retries = (unsigned)u;
        if ((s = get_string(w, node, "spool", false, &o->spool_dir)) != SAEMON_OK)
            return s;
        if (o->kind == SAEMON_SINK_ALERTMANAGER &&
            (s = get_string(w, node, "generator_url", false, &o->generator_url)) != SAEMON_OK)
            return s;
        if (o->kind == SAEMON_SINK_OTLP) {
            if ((s = get_string(w, node, "service_name", false, &o->service_name)) != SAEMON_OK ||
                (s = get_string(w, node, "service_instance", false, &o->service_instance)) != SAEMON_OK)
                return s;
            otlp_url_warning(w, v, o->url, warn, wlen);
        }
        if ((s = sinks_config_http(w, node, &o->http, warn, wlen)) != SAEMON_OK)
            return s;
        break;
    case SAEMON_SINK_EXEC:
        if (!(v = walk_get(w, node, "command", NULL)))
            return walk_fail(w, node, "exec sink has no 'command'; expected a list, e.g. [/usr/bin/logger, -t, saemon]");
        if ((s = parse_command(w, v, o)) != SAEMON_OK)
            return s;
        if ((s = get_seconds(w, node, "timeout", 86400, &o->exec_timeout_s)) != SAEMON_OK)
            return s;
        break;
    }
    return SAEMON_OK;
}

static saemon_status parse_root(walk *w, const yaml_node_t *root, parsed_sink **out, size_t *n_out, char *warn,
                                size_t wlen)
{
    static const char *const root_keys[] = {"sinks", NULL};
    saemon_status s = walk_check_map(w, root, "the sinks file", root_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *list = walk_get(w, root, "sinks", NULL);
    if (!list)
        return walk_fail(w, root, "no 'sinks' list; expected 'sinks: [ {type: jsonl, path: ...}, ... ]'");
    if (list->type != YAML_SEQUENCE_NODE || walk_seq_len(list) == 0) {
        char d[64];
        return walk_fail(w, list, "'sinks' is %s; expected a non-empty list of sinks",
                         walk_describe(list, d, sizeof d));
    }
    size_t n = walk_seq_len(list);
    if (n > MAX_SINKS)
        return walk_fail(w, list, "%zu sinks; expected at most %d", n, MAX_SINKS);
    parsed_sink *v = arena_calloc(w->mem, n, sizeof *v);
    if (!v)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    for (size_t i = 0; i < n; i++)
        if ((s = parse_sink(w, walk_seq_item(w, list, i), &v[i], warn, wlen)) != SAEMON_OK)
            return s;
    *out = v;
    *n_out = n;
    return SAEMON_OK;
}

static saemon_status yaml_error(const yaml_parser_t *p, const char *file, saemon_error *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory while parsing YAML", file);
    return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s; expected well-formed YAML",
                            file, (size_t)p->problem_mark.line + 1, (size_t)p->problem_mark.column + 1,
                            p->problem ? p->problem : "unknown error");
}

/* Parse a sinks file; then add every sink to `sinks`, or, when `sinks` is
 * NULL, only count them (saemon check --sinks). */
static saemon_status process_config(saemon_sinks *sinks, const char *yaml, size_t len, const char *filename,
                                    size_t *n_sinks, char *warn, size_t wlen, saemon_error *err)
{
    saemon_status depth_ok = walk_check_depth(filename, yaml ? yaml : "", len, SAEMON_ERR_FORMAT, err);
    if (depth_ok != SAEMON_OK)
        return depth_ok;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", filename);
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""), len);
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        saemon_status s = yaml_error(&parser, filename, err);
        yaml_parser_delete(&parser);
        return s;
    }
    arena mem = {0};
    walk w = {.file = filename, .doc = &doc, .mem = &mem, .err = err};
    parsed_sink *v = NULL;
    size_t n = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    saemon_status s = root ? parse_root(&w, root, &v, &n, warn, wlen)
                           : saemon_error_set(err, SAEMON_ERR_FORMAT,
                                              "%s:1:1: sinks file is empty; expected a mapping with a 'sinks' list",
                                              filename);
    if (s == SAEMON_OK && n_sinks)
        *n_sinks = n;
    /* Open only once the whole file is valid. */
    for (size_t i = 0; sinks && s == SAEMON_OK && i < n; i++) {
        saemon_error e = {0};
        if ((s = saemon_sinks_add(sinks, &v[i].o, &e)) != SAEMON_OK)
            saemon_error_set(err, s, "%s:%zu:%zu: %s", filename, v[i].mark.line, v[i].mark.column, e.message);
    }
    arena_free(&mem);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return s;
}

saemon_status saemon_sinks_add_config_string(saemon_sinks *sinks, const char *yaml, size_t len,
                                             const char *filename, saemon_error *err)
{
    if (!sinks || (!yaml && len))
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_add_config_string: NULL argument");
    return process_config(sinks, yaml, len, filename ? filename : "(string)", NULL, NULL, 0, err);
}

saemon_status saemon_sinks_add_config(saemon_sinks *sinks, const char *path, saemon_error *err)
{
    if (!sinks || !path)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_add_config: NULL argument");
    char *text = NULL;
    size_t len = 0;
    saemon_status s = read_whole_file(path, SINKS_MAX_FILE_BYTES, "sinks file", &text, &len, err);
    if (s == SAEMON_OK)
        s = process_config(sinks, text, len, path, NULL, NULL, 0, err);
    free(text);
    return s;
}

saemon_status saemon_sinks_check_config(const char *path, size_t *n_sinks, char *warnings, size_t warnings_len,
                                        saemon_error *err)
{
    if (!path)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_sinks_check_config: NULL argument");
    if (warnings && warnings_len)
        warnings[0] = 0;
    char *text = NULL;
    size_t len = 0;
    saemon_status s = read_whole_file(path, SINKS_MAX_FILE_BYTES, "sinks file", &text, &len, err);
    if (s == SAEMON_OK)
        s = process_config(NULL, text, len, path, n_sinks, warnings, warnings_len, err);
    free(text);
    return s;
}
