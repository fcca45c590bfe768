/* saemon command-line entry: dispatches to one sub-command per file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: saemon <command> [options]\n"
            "\n"
            "commands:\n"
            "  demo      run the built-in toy model with a shipped rule file\n"
            "  inspect   print what a dictionary directory (or a pack) holds\n"
            "  pack      write a dictionary (or a subset of its latents) as a mapped pack file\n"
            "  encode    encode recorded activations (.npy) to features (.npy / sparse JSONL)\n"
            "  run       encode recorded activations and evaluate alert rules\n"
            "  serve     the sidecar daemon: watch a live model through shared-memory rings\n"
            "  check     validate a rule file (optionally against a dictionary) and/or a sinks file\n"
            "  bench     encoder latency and throughput, with numpy/PyTorch peers\n"
            "  test-rules  run rule unit tests (YAML token sequences and expected alerts)\n"
            "  produce   replay a recording into a running `saemon serve` (shared-memory ring)\n"
            "  features  rank the latents that separate labelled tokens; write starter rules\n"
            "  calibrate tune rule thresholds to a target alert rate on benign recordings\n"
            "  backtest  score rule files against labelled recordings (precision, recall, delay)\n"
            "  version   print the version\n"
            "\n"
            "`saemon <command> --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("saemon %s\n", saemon_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    static const struct { const char *name; int (*run)(int, char **); } commands[] = {
        {"demo", cmd_demo}, {"inspect", cmd_inspect}, {"encode", cmd_encode},
        {"run", cmd_run},   {"check", cmd_check},
        {"bench", cmd_bench}, {"test-rules", cmd_test_rules}, {"serve", cmd_serve},
        {"produce", cmd_produce}, {"pack", cmd_pack}, {"features", cmd_features},
        {"calibrate", cmd_calibrate}, {"backtest", cmd_backtest},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "saemon: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
