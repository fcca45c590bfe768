/* The one table of kernel variants and the choice among them, made once per
 * encoder from the CPU's features (or forced by name for tests and benches). */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel.h"

#define SAEMON_KERNEL_ENTRY(sym) extern const saemon_kernel sym;
#include "kernels/registry.inc"
#undef SAEMON_KERNEL_ENTRY

static const saemon_kernel *const all_kernels[] = {
#define SAEMON_KERNEL_ENTRY(sym) &sym,
#include "kernels/registry.inc"
#undef SAEMON_KERNEL_ENTRY
};

const saemon_kernel *const *saemon_kernels_all(size_t *n_out)
{
    *n_out = sizeof all_kernels / sizeof all_kernels[0];
    return all_kernels;
}

static int runnable(const saemon_kernel *k)
{
    return (k->cpu_features & ~saemon_cpu_features()) == 0;
}

const saemon_kernel *saemon_kernel_select(const char *request)
{
    if (!request || !*request)
        request = getenv("SAEMON_ISA");
    if (request && *request && strcmp(request, "auto") != 0) {
        const saemon_kernel *best = NULL;
        for (size_t i = 0; i < sizeof all_kernels / sizeof all_kernels[0]; i++) {
            const saemon_kernel *k = all_kernels[i];
            int match = strcmp(k->name, request) == 0 || strcmp(k->isa, request) == 0;
            if (match && runnable(k) && (!best || k->priority > best->priority))
                best = k;
        }
        return best;
    }
    const saemon_kernel *best = NULL;
    for (size_t i = 0; i < sizeof all_kernels / sizeof all_kernels[0]; i++) {
        const saemon_kernel *k = all_kernels[i];
        if (runnable(k) && (!best || k->priority > best->priority))
            best = k;
    }
    return best;
}
