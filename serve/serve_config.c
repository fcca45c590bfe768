/* The `saemon serve` config file:
 *
 *   version: 1
 *   metrics: 127.0.0.1:9464
 *   sinks: sinks.yaml
 *   resolved: true
 *   heartbeat_timeout: 10
 *   stream_idle_timeout: 300
 *   max_streams: 65536
 *   cpus: "2-3"
 *   dictionaries:
 *     - name: villes
 *       sae: /srv/sae/villes
 *       hook: core
 *       rules: villes-rules.yaml
 *       threads: 1
 *       rings:
 *         - {name: villes-0, slots: 256, max_rows: 64, verdict_entries: 4096}
 *
 * Every field is checked before anything is opened; errors are file:line:column. */
#include "serve/serve_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/error.h"
#include "base/read_file.h"
#include "base/yaml_walk.h"
#include "proto/ring_wire.h"

static const char *const root_keys[] = {"version", "metrics", "web_config", "sinks", "resolved", "heartbeat_timeout",
                                        "stream_idle_timeout", "max_streams", "replica", "ring_group", "ring_mode",
                                        "cpus", "exclude_cpus", "isa", "encode", "alerts", "features",
                                        "dictionaries", NULL};
static const char *const dict_keys[] = {"name", "sae", "hook", "rules", "feature_labels", "threads",
                                        "batch", "rings", NULL};
static const char *const ring_keys[] = {"name", "slots", "max_rows", "verdict_entries", NULL};

typedef struct parse {
    walk *w;
    const char *dir; /* the config file's directory, for relative paths */
    size_t dir_len;
} parse;

static saemon_status nomem(walk *w)
{
    return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
}

/* An optional non-empty string, copied. */
static saemon_status get_text(walk *w, const yaml_node_t *map, const char *key, char **out)
{
    const char *text = NULL;
    saemon_status s = walk_get_text(w, map, NULL, key, &text);
    if (s != SAEMON_OK || !text)
        return s;
    if (!(*out = strdup(text)))
        return nomem(w);
    return SAEMON_OK;
}

/* A path: relative ones are resolved against the config file's directory. */
static saemon_status get_path(parse *p, const yaml_node_t *map, const char *key, char **out)
{
    saemon_status s = get_text(p->w, map, key, out);
    if (s != SAEMON_OK || !*out || (*out)[0] == '/' || p->dir_len == 0)
        return s;
    size_t n = p->dir_len + 1 + strlen(*out) + 1;
    char *full = malloc(n);
    if (!full)
        return nomem(p->w);
    snprintf(full, n, "%.*s/%s", (int)p->dir_len, p->dir, *out);
    free(*out);
    *out = full;
    return SAEMON_OK;
}

static saemon_status parse_ring(walk *w, const yaml_node_t *node, serve_ring_config *r)
{
    saemon_status s = walk_visit(w, node);
    if (s != SAEMON_OK)
        return s;
    r->slots = SERVE_DEFAULT_SLOTS;
    r->max_rows = SERVE_DEFAULT_MAX_ROWS;
    r->verdict_entries = SERVE_DEFAULT_VERDICT_ENTRIES;
    if (node->type == YAML_SCALAR_NODE) { /* "- villes-0": a name and the defaults */
        const char *text;
        if ((s = walk_string(w, node, "a ring", &text)) != SAEMON_OK)
            return s;
        if (!(r->name = strdup(text)))
            return nomem(w);
    } else {
        if ((s = walk_check_map(w, node, "a ring", ring_keys)) != SAEMON_OK)
            return s;
        if ((s = get_text(w, node, "name", &r->name)) != SAEMON_OK)
            return s;
        if (!r->name)
            return walk_fail(w, node, "this ring has no 'name'; expected the shared-memory name its producer uses");
        uint64_t v = r->slots;
        if ((s = walk_get_uint(w, node, "slots", 1u << 20, &v)) != SAEMON_OK)
            return s;
        if (v < 2 || (v & (v - 1)))
            return walk_fail(w, walk_get(w, node, "slots", NULL), "'slots' is %llu; expected a power of two >= 2",
                             (unsigned long long)v);
        r->slots = (uint32_t)v;
        v = r->max_rows;
        if ((s = walk_get_uint(w, node, "max_rows", 1u << 16, &v)) != SAEMON_OK)
            return s;
        if (v == 0)
            return walk_fail(w, walk_get(w, node, "max_rows", NULL), "'max_rows' is 0; expected 1 to 65536");
        r->max_rows = (uint32_t)v;
        v = r->verdict_entries;
        if ((s = walk_get_uint(w, node, "verdict_entries", 1u << 24, &v)) != SAEMON_OK)
            return s;
        if (v < 16 || (v & (v - 1)))
            return walk_fail(w, walk_get(w, node, "verdict_entries", NULL),
                             "'verdict_entries' is %llu; expected a power of two from 16 to 16777216",
                             (unsigned long long)v);
        r->verdict_entries = (uint32_t)v;
    }
    if (!ring_name_valid(r->name)) /* the one rule, proto/ring_wire.h */
        return walk_fail(w, node, "ring name \"%.60s\" is not valid; expected 1-64 characters from "
                                  "[A-Za-z0-9._-], not starting with '.'",
                         r->name);
    return SAEMON_OK;
}

static saemon_status parse_dict(parse *p, const yaml_node_t *node, serve_dict_config *d)
{
    walk *w = p->w;
    saemon_status s = walk_visit(w, node);
    if (s != SAEMON_OK)
        return s;
    if ((s = walk_check_map(w, node, "a dictionary", dict_keys)) != SAEMON_OK)
        return s;
    if ((s = get_text(w, node, "name", &d->name)) != SAEMON_OK || (s = get_path(p, node, "sae", &d->sae)) != SAEMON_OK ||
        (s = get_text(w, node, "hook", &d->hook)) != SAEMON_OK ||
        (s = get_path(p, node, "rules", &d->rules)) != SAEMON_OK ||
        (s = get_path(p, node, "feature_labels", &d->feature_labels)) != SAEMON_OK)
        return s;
    if (!d->sae)
        return walk_fail(w, node, "this dictionary has no 'sae'; expected the SAE directory");
    if (!d->rules)
        return walk_fail(w, node, "this dictionary has no 'rules'; expected its rule file");
    uint64_t v = 0;
    if ((s = walk_get_uint(w, node, "threads", 256, &v)) != SAEMON_OK)
        return s;
    d->threads = (size_t)v;
    v = SERVE_DEFAULT_BATCH;
    if ((s = walk_get_uint(w, node, "batch", 65536, &v)) != SAEMON_OK)
        return s;
    if (v == 0)
        return walk_fail(w, walk_get(w, node, "batch", NULL), "'batch' is 0; expected 1 to 65536");
    d->batch = (size_t)v;
    yaml_node_t *rings = walk_get(w, node, "rings", NULL);
    if (!rings)
        return walk_fail(w, node, "this dictionary has no 'rings'; expected the shared-memory rings of its producers");
    if (rings->type != YAML_SEQUENCE_NODE || walk_seq_len(rings) == 0 || walk_seq_len(rings) > SERVE_MAX_RINGS) {
        char desc[64];
        return walk_fail(w, rings, "'rings' is %s; expected a list of 1 to %d rings", walk_describe(rings, desc, sizeof desc),
                         SERVE_MAX_RINGS);
    }
    d->n_rings = walk_seq_len(rings);
    for (size_t i = 0; i < d->n_rings; i++)
        if ((s = parse_ring(w, walk_seq_item(w, rings, i), &d->rings[i])) != SAEMON_OK)
            return s;
    return SAEMON_OK;
}

static saemon_status parse_root(parse *p, const yaml_node_t *root, serve_config *c)
{
    walk *w = p->w;
    saemon_status s = walk_check_map(w, root, "the serve config", root_keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *v = walk_get(w, root, "version", NULL);
    uint64_t version = 0;
    if (!v)
        return walk_fail(w, root, "no 'version'; expected 'version: 1'");
    if ((s = walk_uint(w, v, "'version'", 1000, &version)) != SAEMON_OK)
        return s;
    if (version != 1)
        return walk_fail_code(w, SAEMON_ERR_UNSUPPORTED, v, "version %llu; this saemon reads version 1",
                              (unsigned long long)version);
    if ((s = get_text(w, root, "metrics", &c->metrics)) != SAEMON_OK ||
        (s = get_path(p, root, "web_config", &c->web_config)) != SAEMON_OK ||
        (s = get_path(p, root, "sinks", &c->sinks)) != SAEMON_OK || (s = get_text(w, root, "cpus", &c->cpus)) != SAEMON_OK ||
        (s = get_text(w, root, "exclude_cpus", &c->exclude_cpus)) != SAEMON_OK ||
        (s = get_text(w, root, "isa", &c->isa)) != SAEMON_OK ||
        (s = get_text(w, root, "encode", &c->encode)) != SAEMON_OK || (s = get_path(p, root, "alerts", &c->alerts)) != SAEMON_OK ||
        (s = get_path(p, root, "features", &c->features)) != SAEMON_OK ||
        (s = get_text(w, root, "replica", &c->replica)) != SAEMON_OK ||
        (s = get_text(w, root, "ring_group", &c->ring_group)) != SAEMON_OK)
        return s;
    c->ring_mode = 0600;
    if ((v = walk_get(w, root, "ring_mode", NULL))) {
        const char *text;
        if ((s = walk_string(w, v, "'ring_mode'", &text)) != SAEMON_OK)
            return s;
        if (strcmp(text, "0600") && strcmp(text, "600") && strcmp(text, "0660") && strcmp(text, "660"))
            return walk_fail(w, v, "'ring_mode' is \"%.20s\"; expected \"0600\" (owner only) or \"0660\" "
                                   "(the owner and ring_group)", text);
        c->ring_mode = strstr(text, "660") ? 0660 : 0600;
    }
    if (c->ring_group && c->ring_mode != 0660)
        return walk_fail(w, walk_get(w, root, "ring_group", NULL),
                         "'ring_group' needs ring_mode \"0660\": the group must be able to open the ring read-write");
    if ((v = walk_get(w, root, "resolved", NULL)) && (s = walk_bool(w, v, "'resolved'", &c->resolved)) != SAEMON_OK)
        return s;
    c->heartbeat_timeout_s = SERVE_DEFAULT_HEARTBEAT_S;
    if ((v = walk_get(w, root, "heartbeat_timeout", NULL))) {
        float f;
        if ((s = walk_float(w, v, "'heartbeat_timeout' (seconds)", &f)) != SAEMON_OK)
            return s;
        if (!(f > 0) || f > 86400)
            return walk_fail(w, v, "'heartbeat_timeout' is %g; expected seconds in (0, 86400]", (double)f);
        c->heartbeat_timeout_s = f;
    }
    c->stream_idle_timeout_s = SERVE_DEFAULT_STREAM_IDLE_S;
    if ((v = walk_get(w, root, "stream_idle_timeout", NULL))) {
        float f;
        if ((s = walk_float(w, v, "'stream_idle_timeout' (seconds)", &f)) != SAEMON_OK)
            return s;
        if (!(f >= 0) || f > 86400 * 30)
            return walk_fail(w, v, "'stream_idle_timeout' is %g; expected seconds in [0, 2592000] (0 = never)",
                             (double)f);
        c->stream_idle_timeout_s = f;
    }
    c->max_streams = SERVE_DEFAULT_MAX_STREAMS;
    if ((v = walk_get(w, root, "max_streams", NULL))) {
        if ((s = walk_uint(w, v, "'max_streams'", (uint64_t)1 << 32, &c->max_streams)) != SAEMON_OK)
            return s;
        if (c->max_streams == 0)
            return walk_fail(w, v, "'max_streams' is 0; expected 1 to 4294967296");
    }
    yaml_node_t *list = walk_get(w, root, "dictionaries", NULL);
    if (!list)
        return walk_fail(w, root, "no 'dictionaries'; expected a list of {sae, rules, rings}");
    if (list->type != YAML_SEQUENCE_NODE || walk_seq_len(list) == 0 || walk_seq_len(list) > SERVE_MAX_DICTS) {
        char desc[64];
        return walk_fail(w, list, "'dictionaries' is %s; expected a list of 1 to %d dictionaries",
                         walk_describe(list, desc, sizeof desc), SERVE_MAX_DICTS);
    }
    c->n_dicts = walk_seq_len(list);
    for (size_t i = 0; i < c->n_dicts; i++)
        if ((s = parse_dict(p, walk_seq_item(w, list, i), &c->dicts[i])) != SAEMON_OK)
            return s;
    return SAEMON_OK;
}

saemon_status serve_config_load(const char *path, serve_config *out, saemon_error *err)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    saemon_status s = read_whole_file(path, 1u << 20, "serve config", &text, &len, err);
    if (s == SAEMON_OK) /* deep nesting is quadratic in libyaml: refuse it before loading */
        s = walk_check_depth(path, text, len, SAEMON_ERR_ARG, err);
    if (s != SAEMON_OK) {
        free(text);
        return s;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        s = walk_syntax_error(&parser, path, text, len, err);
        yaml_parser_delete(&parser);
        free(text);
        return s;
    }
    arena mem = {0};
    walk w = {.file = path, .doc = &doc, .mem = &mem, .err = err};
    const char *slash = strrchr(path, '/');
    parse p = {.w = &w, .dir = path, .dir_len = slash ? (size_t)(slash - path) : 0};
    if (slash == path)
        p.dir_len = 1; /* "/x.yaml": the root */
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    s = root ? parse_root(&p, root, out)
             : saemon_error_set(err, SAEMON_ERR_FORMAT, "%s:1:1: the config is empty; expected a mapping", path);
    arena_free(&mem);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    if (s == SAEMON_OK)
        s = serve_config_validate(out, err);
    if (s != SAEMON_OK)
        serve_config_free(out);
    return s;
}

saemon_status serve_config_validate(const serve_config *c, saemon_error *err)
{
    if (c->encode && strcmp(c->encode, "auto") && strcmp(c->encode, "rules") && strcmp(c->encode, "all"))
        return saemon_error_set(err, SAEMON_ERR_ARG, "serve: encode \"%s\"; expected auto, rules or all", c->encode);
    if (c->n_dicts == 0)
        return saemon_error_set(err, SAEMON_ERR_ARG, "serve: no dictionary to watch");
    /* Every ring has exactly one consumer: a name used twice would make two
     * consumers fight over one segment. */
    for (size_t i = 0; i < c->n_dicts; i++)
        for (size_t r = 0; r < c->dicts[i].n_rings; r++)
            for (size_t j = i; j < c->n_dicts; j++)
                for (size_t q = (j == i ? r + 1 : 0); q < c->dicts[j].n_rings; q++)
                    if (strcmp(c->dicts[i].rings[r].name, c->dicts[j].rings[q].name) == 0)
                        return saemon_error_set(err, SAEMON_ERR_ARG,
                                                "serve: ring \"%s\" is listed twice; each ring has one consumer",
                                                c->dicts[i].rings[r].name);
    for (size_t i = 0; i < c->n_dicts; i++)
        for (size_t j = i + 1; j < c->n_dicts; j++)
            if (c->dicts[i].name && c->dicts[j].name && strcmp(c->dicts[i].name, c->dicts[j].name) == 0)
                return saemon_error_set(err, SAEMON_ERR_ARG,
                                        "serve: two dictionaries are named \"%s\"; names label metrics and must differ",
                                        c->dicts[i].name);
    return SAEMON_OK;
}

void serve_config_free(serve_config *c)
{
    for (size_t i = 0; i < c->n_dicts; i++) {
        serve_dict_config *d = &c->dicts[i];
        free(d->name);
        free(d->sae);
        free(d->hook);
        free(d->rules);
        free(d->feature_labels);
        for (size_t r = 0; r < d->n_rings; r++)
            free(d->rings[r].name);
    }
    free(c->metrics);
    free(c->web_config);
    free(c->sinks);
    free(c->cpus);
    free(c->exclude_cpus);
    free(c->isa);
    free(c->encode);
    free(c->alerts);
    free(c->features);
    free(c->replica);
    free(c->ring_group);
    memset(c, 0, sizeof *c);
}
