/* The calling thread's CPU affinity around encoder runs: a pinned encoder
 * binds the calling thread to its first core and leaves it there, and child
 * processes (the peers) inherit whatever the caller has. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

static cpu_set_t saved;
static int have_saved;

void suite_affinity_save(void)
{
    CPU_ZERO(&saved);
    have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
}

void suite_affinity_restore(void)
{
    if (have_saved)
        sched_setaffinity(0, sizeof saved, &saved);
}

int suite_affinity_set_list(const char *cpus)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    const char *p = cpus;
    while (*p) {
        char *end;
        long c = strtol(p, &end, 10);
        if (end == p || c < 0 || c >= CPU_SETSIZE)
            return -1;
        CPU_SET((int)c, &set);
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    if (CPU_COUNT(&set) == 0)
        return -1;
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -1;
}

size_t suite_allowed_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? (size_t)n : 1;
}
