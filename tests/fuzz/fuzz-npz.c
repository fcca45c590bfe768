/* libFuzzer: arbitrary bytes as a Gemma Scope params.npz. Byte 0 picks the
 * path the file claims to live at (plain, layer/width convention, embedding),
 * the rest is the archive. The loader must accept a consistent dictionary or
 * fail with a message — never crash, leak, over-read or inflate a bomb. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dict_internal.h"
#include "runtime/gemmascope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {
        "/nonexistent/fuzz/params.npz",
        "/nonexistent/gemma-scope-2b-pt-res/layer_3/width_3/average_l0_1/params.npz",
        "/nonexistent/gemma-scope-2b-pt-att/embedding/width_3/average_l0_1/params.npz",
    };
    if (size < 1)
        return 0;
    const char *path = paths[data[0] % 3];
    saemon_dict *d = NULL;
    saemon_error err = {0};
    saemon_status st = gemmascope_load(data + 1, size - 1, path, path, &d, &err);
    if (st == SAEMON_OK) {
        const saemon_dict_info *i = saemon_dict_get_info(d);
        if (!d || i->arch != SAEMON_ARCH_JUMPRELU || i->apply_b_dec_to_input || !i->d_in ||
            !i->d_sae || strcmp(i->format, "gemmascope") != 0)
            abort();
        volatile float sink = 0;
        for (size_t k = 0; k < i->d_in * i->d_sae; k++)
            sink += d->W_enc_rows[k] + d->W_dec[k];
        for (size_t k = 0; k < i->d_sae; k++)
            sink += d->b_enc[k] + d->threshold[k];
        for (size_t k = 0; k < i->d_in; k++)
            sink += d->b_dec[k];
        (void)sink;
        saemon_dict_close(d);
    } else if (d || !err.message[0]) {
        abort(); /* every failure explains itself and leaves nothing behind */
    }
    return 0;
}
