/* saemon_kernel_get_count/get, saemon_cpu_features_string: the public view of the
 * kernel registry (kernels/registry.inc) for `saemon inspect --kernels`. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernel.h"
#include "saemon/kernels.h"

/* Space-separated names of the bits in `mask` into buf. */
static void describe(uint32_t mask, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t bit = 1; mask; bit <<= 1) {
        if (!(mask & bit))
            continue;
        mask &= ~bit;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", saemon_cpu_feature_name(bit));
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

size_t saemon_kernel_get_count(void)
{
    size_t n = 0;
    saemon_kernels_all(&n);
    return n;
}

#define MAX_KERNELS 64

/* The strings depend only on the CPU: built once, thread-safe. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char cpu_string[256];
static char why[MAX_KERNELS][160], reason[MAX_KERNELS][160];

static void build_strings(void)
{
    const uint32_t cpu = saemon_cpu_features();
    describe(cpu, cpu_string, sizeof cpu_string);
    size_t n = 0;
    const saemon_kernel *const *all = saemon_kernels_all(&n);
    for (size_t i = 0; i < n && i < MAX_KERNELS; i++) {
        saemon_kernel_reason(all[i], NULL, reason[i], sizeof reason[i]);
        const uint32_t missing = saemon_kernel_missing_features(all[i]);
        if (missing) {
            char names[140];
            describe(missing, names, sizeof names);
            snprintf(why[i], sizeof why[i], "needs %s", names);
        }
    }
}

bool saemon_kernel_get(size_t i, saemon_kernel_info *out)
{
    size_t n = 0;
    const saemon_kernel *const *all = saemon_kernels_all(&n);
    if (!out || i >= n || i >= MAX_KERNELS)
        return false;
    pthread_once(&once, build_strings);
    const bool runnable = (all[i]->cpu_features & ~saemon_cpu_features()) == 0;
    *out = (saemon_kernel_info){
        .name = all[i]->name,
        .family = all[i]->family,
        .runnable = runnable,
        .why_not = runnable ? "" : why[i],
        .chosen = all[i] == saemon_kernel_select(NULL),
        .reference = all[i]->reference != 0,
        .reason = reason[i],
    };
    return true;
}

const char *saemon_cpu_features_string(void)
{
    pthread_once(&once, build_strings);
    return cpu_string;
}
