/* saemon-bench: every benchmark of saemon in one program (`saemon bench`
 * runs it).
 *   saemon-bench [options]          encoder latency / throughput, peers, plots (suite*.c)
 *   saemon-bench kernels [options]  the same preset to one thread and every kernel variant
 *   saemon-bench rules [--quick]    rule evaluation cost per token (bench_rules.c)
 *   saemon-bench sidecar [options]  `saemon serve` beside a producer: cost, delays, rate (sidecar.c)
 *   saemon-bench watched [options]  the watched-features axis: subset plans (bench_watched.c)
 *   saemon-bench memory [options]   peak RSS and start-up against watched latents (bench_memory.c)
 * See docs/benchmarks.md. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "suite.h"

/* The command line, recorded in bench.json so a result says how it was made. */
static char *command_line(int argc, char **argv)
{
    size_t len = strlen("saemon bench") + 1;
    for (int i = 1; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *line = malloc(len);
    if (!line)
        return NULL;
    strcpy(line, "saemon bench");
    for (int i = 1; i < argc; i++) {
        strcat(line, " ");
        strcat(line, argv[i]);
    }
    return line;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "rules"))
        return bench_rules_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "sidecar"))
        return bench_sidecar_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "watched"))
        return bench_watched_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "memory"))
        return bench_memory_main(argc - 1, argv + 1);
    const int kernels = argc >= 2 && !strcmp(argv[1], "kernels");
    suite_opts o;
    if (bench_suite_parse(&o, argc - kernels, argv + kernels, kernels) != 0)
        return 2;
    char *line = command_line(argc, argv);
    o.command_line = line;
    int rc = bench_suite_run(&o);
    free(line);
    return rc ? 1 : 0;
}
