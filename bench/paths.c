/* Where the benchmark finds its helper files without any source-tree path
 * compiled in: bench/peers.py sits next to saemon-bench in the build tree
 * (meson copies it there) and in DATADIR/saemon once installed, which is
 * found relative to the installed program (relocatable prefix) or, failing
 * that, at the configured prefix. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#ifndef SAEMON_BENCH_DATA_FROM_EXE
#define SAEMON_BENCH_DATA_FROM_EXE "../../share/saemon"
#endif
#ifndef SAEMON_BENCH_DATA_DIR
#define SAEMON_BENCH_DATA_DIR "/usr/local/share/saemon"
#endif

/* Directory of the running program, or "" if /proc is unavailable. */
static void exe_dir(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        snprintf(out, len, "%.*s", (int)(slash - self), self);
}

const char *bench_data_file(const char *name)
{
    static char found[PATH_MAX + 64];
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    if (dir[0]) {
        snprintf(found, sizeof found, "%s/%s", dir, name);
        if (access(found, R_OK) == 0)
            return found;
        snprintf(found, sizeof found, "%s/%s/%s", dir, SAEMON_BENCH_DATA_FROM_EXE, name);
        if (access(found, R_OK) == 0)
            return found;
    }
    snprintf(found, sizeof found, "%s/%s", SAEMON_BENCH_DATA_DIR, name);
    return found;
}

const char *bench_default_shared_dir(void)
{
    const char *env = getenv("SAEMON_SHARED_DIR");
    return env && *env ? env : "../shared";
}
