/* libFuzzer: arbitrary bytes as cfg.json, through both the SAELens and the
 * sparsify readers. Accepted configs must satisfy the invariants the loader
 * relies on. */
#include <stdint.h>
#include <stdlib.h>

#include "runtime/sae_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sae_config c;
    saemon_error err = {0};
    if (sae_config_parse((const char *)data, size, "cfg.json", &c, &err) == SAEMON_OK) {
        if (!c.d_in || !c.d_sae || !c.normalize_activations || !c.dtype)
            abort();
        if (c.arch == SAEMON_ARCH_TOPK ? (c.k < 1 || c.k > c.d_sae) : c.k != 0)
            abort();
        sae_config_free(&c);
    } else if (!err.message[0]) {
        abort();
    }
    sparsify_config s;
    err.message[0] = 0;
    if (sparsify_config_parse((const char *)data, size, "cfg.json", &s, &err) == SAEMON_OK) {
        if (!s.d_in || s.k < 1 || s.k > s.num_latents)
            abort();
    } else if (!err.message[0]) {
        abort();
    }
    return 0;
}
