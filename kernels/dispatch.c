/* The one table of kernel variants and the choice among them, made once per
 * encoder from the CPU's features (or forced by name for tests and benches). */
#include <stdio.h>
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

uint32_t saemon_kernel_missing_features(const saemon_kernel *k)
{
    return k->cpu_features & ~saemon_cpu_features();
}

static int runnable(const saemon_kernel *k) { return saemon_kernel_missing_features(k) == 0; }

static int matches(const saemon_kernel *k, const char *request)
{
    return strcmp(k->name, request) == 0 || strcmp(k->family, request) == 0;
}

static const char *effective_request(const char *request)
{
    if (!request || !*request)
        request = getenv("SAEMON_ISA");
    return request && *request && strcmp(request, "auto") != 0 ? request : NULL;
}

const saemon_kernel *saemon_kernel_select(const char *request)
{
    request = effective_request(request);
    const saemon_kernel *best = NULL;
    for (size_t i = 0; i < sizeof all_kernels / sizeof all_kernels[0]; i++) {
        const saemon_kernel *k = all_kernels[i];
        if (!runnable(k) || (request ? !matches(k, request) : k->reference))
            continue;
        if (!best || k->priority > best->priority)
            best = k;
    }
    return best;
}

const char *saemon_kernel_reason(const saemon_kernel *k, const char *request, char *buf, size_t len)
{
    const uint32_t missing = saemon_kernel_missing_features(k);
    if (missing) {
        size_t o = (size_t)snprintf(buf, len, "not on this CPU: missing");
        for (uint32_t bit = 1; bit && o < len; bit <<= 1)
            if (missing & bit)
                o += (size_t)snprintf(buf + o, len - o, " %s", saemon_cpu_feature_name(bit));
        return buf;
    }
    request = effective_request(request);
    const saemon_kernel *chosen = saemon_kernel_select(request);
    if (k == chosen)
        snprintf(buf, len, request ? "chosen (SAEMON_ISA/--isa=%s)" : "chosen", request);
    else if (request && !matches(k, request))
        snprintf(buf, len, "runs here; not requested (SAEMON_ISA/--isa=%s)", request);
    else if (!request && k->reference)
        snprintf(buf, len, "runs here; reference, only when asked for (SAEMON_ISA=%s)", k->name);
    else
        snprintf(buf, len, "runs here; %s ranks higher", chosen ? chosen->name : "?");
    return buf;
}
