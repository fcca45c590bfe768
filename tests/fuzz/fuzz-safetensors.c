/* libFuzzer: arbitrary bytes as a safetensors file. Valid files must describe
 * tensors that lie inside the buffer; invalid ones must say why. */
#include <stdint.h>
#include <stdlib.h>

#include "runtime/half.h"
#include "runtime/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f;
    saemon_error err = {0};
    if (st_parse(data, size, "fuzz.safetensors", &f, &err) != SAEMON_OK) {
        if (!err.message[0])
            abort(); /* every refusal carries a message */
        return 0;
    }
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (t->data < data || t->data + (t->end - t->begin) > data + size)
            abort();
        /* Read every byte of float tensors the way the loader does. */
        if (t->float_dtype >= 0 && t->nelem <= (1u << 20)) {
            float *out = malloc((size_t)t->nelem * sizeof(float) + 1);
            saemon_convert_to_f32(t->data, (saemon_dtype)t->float_dtype, (size_t)t->nelem, out);
            free(out);
        }
        st_find(&f, t->name);
    }
    st_meta(&f, "format");
    st_close(&f);
    return 0;
}
