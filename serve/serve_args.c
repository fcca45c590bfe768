/* `saemon serve`'s command line: usage, flags, the flags -> config merge. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_args.h"

void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: saemon serve --config SAEMON.yaml [--metrics ADDR:PORT] [sink options]\n"
            "       saemon serve --sae SAE_DIR --rules RULES.yaml --ring NAME [--ring NAME ...]\n"
            "                    [--hook NAME] [--slots N] [--max-rows N] [--metrics ADDR:PORT]\n"
            "                    [--features FILE.jsonl] [sink options] [encoder options]\n"
            "Creates one shared-memory ring per --ring (owner-only, /dev/shm/saemon-ring.NAME),\n"
            "encodes what producers publish there and evaluates the rules per token. Alerts go to\n"
            "the sinks; the highest severity per stream goes back to the producer (verdict).\n"
            "SIGHUP or a change of a rule file reloads the rules (SIGHUP the web config too);\n"
            "SIGTERM/SIGINT drain and stop.\n"
            "  --config FILE        dictionaries, rings, sinks, metrics (docs/serve.md)\n"
            "  --hook NAME          refuse producers that announce another hook (default: any)\n"
            "  --slots N            frames a ring holds, a power of two (default %d)\n"
            "  --max-rows N         rows (tokens) per frame (default %d)\n"
            "  --verdict-entries N  per-ring verdict table, a power of two (default %d; docs/serve.md)\n"
            "  --name LABEL         dictionary label in metrics and logs\n"
            "  --feature-labels F   feature explanations (Neuronpedia JSON) for alerts\n"
            "  --metrics ADDR:PORT  serve /metrics and /healthz (e.g. 127.0.0.1:9464; port 0 = any free)\n"
            "  --web-config FILE    TLS and basic auth for it: a Prometheus exporter web config file\n"
            "  --features FILE      also write every token's features as JSON lines (for checking)\n"
            CLI_PLAN_USAGE
            "  --heartbeat-timeout S  report a producer down after S silent seconds (default %g)\n"
            "  --stream-idle-timeout S  end (resolve, free) a ring's open streams after S seconds\n"
            "                       without a frame (default %g; 0 = never)\n"
            "  --replica NAME       this daemon's name in a fleet: in every alert, its key and labels\n"
            "  --max-streams N      streams with rule state per ring (default %d); more go unmonitored,\n"
            "                       counted, and /healthz answers 503\n" CLI_SINK_USAGE
                CLI_ENCODER_USAGE,
            SERVE_DEFAULT_SLOTS, SERVE_DEFAULT_MAX_ROWS, SERVE_DEFAULT_VERDICT_ENTRIES, SERVE_DEFAULT_HEARTBEAT_S,
            SERVE_DEFAULT_STREAM_IDLE_S, SERVE_DEFAULT_MAX_STREAMS);
}

static bool parse_u64(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
    size_t v;
    if (!cli_parse_size(opt, text, &v))
        return false;
    if (v > max) {
        fprintf(stderr, "saemon serve: %s %s is too large (at most %" PRIu64 ")\n", opt, text, max);
        return false;
    }
    *out = v;
    return true;
}

int serve_parse_args(int argc, char **argv, serve_flags *fl)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"sae", required_argument, 0, 's'},
        {"rules", required_argument, 0, 'r'}, {"ring", required_argument, 0, 'g'},
        {"hook", required_argument, 0, 'k'}, {"slots", required_argument, 0, 'n'},
        {"max-rows", required_argument, 0, 'm'}, {"name", required_argument, 0, 'A'},
        {"verdict-entries", required_argument, 0, 1101}, {"max-streams", required_argument, 0, 1102},
        {"stream-idle-timeout", required_argument, 0, 1103}, {"replica", required_argument, 0, 1104},
        {"feature-labels", required_argument, 0, 'F'}, {"metrics", required_argument, 0, 'x'},
        {"web-config", required_argument, 0, 'w'}, CLI_PLAN_LONG_OPTION,
        {"features", required_argument, 0, 'f'}, {"heartbeat-timeout", required_argument, 0, 'H'},
        CLI_SINK_LONG_OPTIONS, CLI_ENCODER_LONG_OPTIONS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': fl->config = optarg; break;
        case 's': fl->one.sae = optarg; break;
        case 'r': fl->one.rules = optarg; break;
        case 'g':
            if (fl->n_rings == SERVE_MAX_RINGS) {
                fprintf(stderr, "saemon serve: at most %d --ring\n", SERVE_MAX_RINGS);
                return CLI_USAGE;
            }
            fl->ring_names[fl->n_rings++] = optarg;
            break;
        case 'k': fl->one.hook = optarg; break;
        case 'n': if (!parse_u64("--slots", optarg, 1u << 20, &fl->slots)) return CLI_USAGE; break;
        case 'm': if (!parse_u64("--max-rows", optarg, 1u << 16, &fl->max_rows)) return CLI_USAGE; break;
        case 1104: fl->replica = optarg; break;
        case 1102:
            if (!parse_u64("--max-streams", optarg, (uint64_t)1 << 32, &fl->max_streams) || !fl->max_streams) {
                fprintf(stderr, "saemon serve: --max-streams expects 1 to 4294967296\n");
                return CLI_USAGE;
            }
            break;
        case 1103: {
            char *end;
            fl->stream_idle = strtod(optarg, &end);
            if (end == optarg || *end || !(fl->stream_idle >= 0) || fl->stream_idle > 86400.0 * 30) {
                fprintf(stderr, "saemon serve: --stream-idle-timeout expects seconds (0 = never), got '%s'\n",
                        optarg);
                return CLI_USAGE;
            }
            fl->stream_idle_set = true;
            break;
        }
        case 1101:
            if (!parse_u64("--verdict-entries", optarg, 1u << 24, &fl->verdict_entries))
                return CLI_USAGE;
            if (fl->verdict_entries < 16 || (fl->verdict_entries & (fl->verdict_entries - 1))) {
                fprintf(stderr, "saemon serve: --verdict-entries must be a power of two in 16..2^24\n");
                return CLI_USAGE;
            }
            break;
        case 'A': fl->one.name = optarg; break;
        case 'N':
            if (strcmp(optarg, "auto") && strcmp(optarg, "rules") && strcmp(optarg, "all")) {
                fprintf(stderr, "saemon serve: --encode expects auto, rules or all, got '%s'\n", optarg);
                return CLI_USAGE;
            }
            fl->encode = optarg;
            break;
        case 'F': fl->one.feature_labels = optarg; break;
        case 'x': fl->metrics = optarg; break;
        case 'w': fl->web_config = optarg; break;
        case 'f': fl->features = optarg; break;
        case 'H':
            if (!cli_parse_rate(optarg, &fl->heartbeat)) /* a positive number */
                return CLI_USAGE;
            break;
        case 'h': serve_usage(stdout); return -1;
        default: {
            int r = cli_encoder_option(c, optarg, &fl->enc);
            if (r == 0)
                r = cli_sink_option(c, optarg, &fl->sinks);
            if (r == 1)
                break;
            if (r == 0)
                serve_usage(stderr);
            return CLI_USAGE;
        }
        }
    }
    if (optind != argc) {
        serve_usage(stderr);
        return CLI_USAGE;
    }
    bool flag_mode = fl->one.sae || fl->one.rules || fl->n_rings;
    if (fl->config && flag_mode) {
        fprintf(stderr, "saemon serve: give either --config or --sae/--rules/--ring, not both\n");
        return CLI_USAGE;
    }
    if (!fl->config && (!fl->one.sae || !fl->one.rules || !fl->n_rings)) {
        serve_usage(stderr);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Flags -> the same config a file would give. */
bool serve_config_from_flags(const serve_flags *fl, serve_config *c)
{
    memset(c, 0, sizeof *c);
    serve_dict_config *d = &c->dicts[0];
    c->n_dicts = 1;
    d->name = dup_or_null(fl->one.name);
    d->sae = dup_or_null(fl->one.sae);
    d->rules = dup_or_null(fl->one.rules);
    d->hook = dup_or_null(fl->one.hook);
    d->feature_labels = dup_or_null(fl->one.feature_labels);
    d->threads = fl->enc.threads;
    d->batch = fl->enc.max_batch ? fl->enc.max_batch : SERVE_DEFAULT_BATCH;
    d->n_rings = fl->n_rings;
    for (size_t i = 0; i < fl->n_rings; i++) {
        d->rings[i].name = strdup(fl->ring_names[i]);
        d->rings[i].slots = fl->slots ? (uint32_t)fl->slots : SERVE_DEFAULT_SLOTS;
        d->rings[i].max_rows = fl->max_rows ? (uint32_t)fl->max_rows : SERVE_DEFAULT_MAX_ROWS;
        d->rings[i].verdict_entries = fl->verdict_entries ? (uint32_t)fl->verdict_entries
                                                          : SERVE_DEFAULT_VERDICT_ENTRIES;
        if (!d->rings[i].name)
            return false;
    }
    c->heartbeat_timeout_s = SERVE_DEFAULT_HEARTBEAT_S;
    c->stream_idle_timeout_s = SERVE_DEFAULT_STREAM_IDLE_S;
    c->max_streams = SERVE_DEFAULT_MAX_STREAMS;
    return true;
}

/* Command-line settings override the file's. */
bool serve_apply_overrides(const serve_flags *fl, serve_config *c)
{
    if (fl->metrics && !(free(c->metrics), c->metrics = strdup(fl->metrics)))
        return false;
    if (fl->web_config && !(free(c->web_config), c->web_config = strdup(fl->web_config)))
        return false;
    if (fl->features && !(free(c->features), c->features = strdup(fl->features)))
        return false;
    if (fl->replica && !(free(c->replica), c->replica = strdup(fl->replica)))
        return false;
    if (fl->heartbeat > 0)
        c->heartbeat_timeout_s = fl->heartbeat;
    if (fl->stream_idle_set)
        c->stream_idle_timeout_s = fl->stream_idle;
    if (fl->max_streams)
        c->max_streams = fl->max_streams;
    if (fl->enc.cpus && !(free(c->cpus), c->cpus = strdup(fl->enc.cpus)))
        return false;
    if (fl->enc.exclude_cpus && !(free(c->exclude_cpus), c->exclude_cpus = strdup(fl->enc.exclude_cpus)))
        return false;
    if (fl->enc.variant && !(free(c->isa), c->isa = strdup(fl->enc.variant)))
        return false;
    if (fl->encode && !(free(c->encode), c->encode = strdup(fl->encode)))
        return false;
    if (fl->sinks.resolved)
        c->resolved = true;
    for (size_t i = 0; i < c->n_dicts; i++) {
        if (fl->enc.threads)
            c->dicts[i].threads = fl->enc.threads;
        if (fl->enc.max_batch)
            c->dicts[i].batch = fl->enc.max_batch;
    }
    return true;
}

