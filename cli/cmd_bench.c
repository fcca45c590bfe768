/* saemon bench [options]         latency / throughput of the encoder, peers, plots
 * saemon bench kernels [options] the single-thread kernel benchmark
 * The work is done by bench/libsaemon_bench (bench/suite.h); this file only
 * dispatches. */
#include <stdlib.h>
#include <string.h>

#include "bench/suite.h"
#include "cli/cli.h"

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "kernels"))
        return bench_kernels_main(argc - 1, argv + 1);
    suite_opts o;
    if (bench_suite_parse(&o, argc, argv) != 0)
        return CLI_USAGE;
    /* The command line goes into bench.json so a result says how it was made. */
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *line = malloc(len + strlen("saemon "));
    if (line) {
        strcpy(line, "saemon");
        for (int i = 0; i < argc; i++) {
            strcat(line, " ");
            strcat(line, argv[i]);
        }
    }
    o.command_line = line;
    int rc = bench_suite_run(&o);
    free(line);
    return rc ? CLI_FAIL : CLI_OK;
}
