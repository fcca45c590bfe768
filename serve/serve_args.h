/* `saemon serve`'s command line: the flags, and the config they make (flag
 * mode) or override (--config). serve_args.c. */
#ifndef SAEMON_SERVE_ARGS_H
#define SAEMON_SERVE_ARGS_H

#include <stdio.h>

#include "cli/cli.h"
#include "serve/serve_config.h"

typedef struct serve_flags {
    const char *config;
    serve_dict_config one; /* flag mode: the one dictionary */
    const char *ring_names[SERVE_MAX_RINGS];
    size_t n_rings;
    uint64_t slots, max_rows, verdict_entries;
    const char *metrics, *web_config, *features, *encode, *replica;
    double heartbeat, stream_idle;
    bool stream_idle_set;
    uint64_t max_streams;
    cli_sink_flags sinks;
    saemon_encoder_options enc;
} serve_flags;

void serve_usage(FILE *f);
/* CLI_OK, or CLI_USAGE / CLI_FAIL after a message (-1 for --help: printed). */
int serve_parse_args(int argc, char **argv, serve_flags *fl);
/* Flags -> the same config a file would give (false: out of memory). */
bool serve_config_from_flags(const serve_flags *fl, serve_config *c);
/* Command-line settings override the file's (false: out of memory). */
bool serve_apply_overrides(const serve_flags *fl, serve_config *c);

#endif
