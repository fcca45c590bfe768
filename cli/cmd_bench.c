/* saemon bench [...] — runs the benchmark program, saemon-bench, with the
 * same arguments. It is a program of its own (bench/, which measures kernel
 * internals the public API does not show); it is found next to this program
 * in the build tree, else where it is installed (LIBEXECDIR/saemon). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#ifndef SAEMON_BENCH_FROM_EXE
#define SAEMON_BENCH_FROM_EXE "../libexec/saemon"
#endif
#ifndef SAEMON_BENCH_DIR
#define SAEMON_BENCH_DIR "/usr/local/libexec/saemon"
#endif

int cmd_bench(int argc, char **argv)
{
    (void)argc; /* argv is NULL-terminated: passed on as it is */
    char self[PATH_MAX], dir[PATH_MAX] = ".";
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - self), self);
    }
    char candidates[3][PATH_MAX + 64];
    snprintf(candidates[0], sizeof candidates[0], "%s/bench/saemon-bench", dir);
    snprintf(candidates[1], sizeof candidates[1], "%s/%s/saemon-bench", dir, SAEMON_BENCH_FROM_EXE);
    snprintf(candidates[2], sizeof candidates[2], "%s/saemon-bench", SAEMON_BENCH_DIR);
    for (size_t i = 0; i < 3; i++) {
        if (access(candidates[i], X_OK) != 0)
            continue;
        argv[0] = candidates[i]; /* argv[0] was "bench"; the rest are its options */
        if (n > 0)
            setenv("SAEMON_EXE", self, 1); /* `bench sidecar` starts `saemon serve` */
        fflush(NULL);
        execv(candidates[i], argv);
        fprintf(stderr, "saemon bench: cannot run %s: %s\n", candidates[i], strerror(errno));
        return CLI_FAIL;
    }
    fprintf(stderr, "saemon bench: saemon-bench not found (looked in %s/bench, %s/%s, %s)\n", dir, dir,
            SAEMON_BENCH_FROM_EXE, SAEMON_BENCH_DIR);
    return CLI_FAIL;
}
