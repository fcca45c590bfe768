/* libFuzzer: a whole dictionary directory. Byte 0 picks the format (0 SAELens,
 * 1 sparsify, 2 OpenAI); for SAELens and sparsify the rest is cfg.json, a NUL,
 * then the safetensors file; for OpenAI the rest is sae.safetensors. This
 * drives saemon_dict_open end to end: detection, shape checks, upcasts,
 * transposes, folding and the non-finite refusal. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saemon/dict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tmpfs when there is one: rewriting files on a disk filesystem costs ms each. */
static char dir[64];

static void put(const char *name, const void *bytes, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!bytes) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (len && fwrite(bytes, 1, len, f) != len)
        abort();
    fclose(f);
}

static void cleanup(void)
{
    put("cfg.json", NULL, 0);
    put("sae_weights.safetensors", NULL, 0);
    put("sae.safetensors", NULL, 0);
    put("activation_scaler.json", NULL, 0);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        snprintf(dir, sizeof dir, "%s/saemon-fuzz-dict-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
        ready = 1;
    }
    if (size < 1)
        return 0;
    int kind = data[0] % 3;
    data++, size--;
    const uint8_t *nul = kind < 2 ? memchr(data, 0, size) : NULL;
    if (kind < 2 && !nul)
        return 0;
    const uint8_t *st = kind < 2 ? nul + 1 : data;
    size_t st_len = size - (size_t)(st - data);
    put("cfg.json", kind < 2 ? data : NULL, kind < 2 ? (size_t)(nul - data) : 0);
    put("sae_weights.safetensors", kind == 0 ? st : NULL, st_len);
    put("sae.safetensors", kind > 0 ? st : NULL, st_len);
    static const char scaler[] = "{\"scaling_factor\": 2.5}";
    put("activation_scaler.json", scaler, sizeof scaler - 1);

    saemon_dict *d = NULL;
    saemon_error err = {0};
    if (saemon_dict_open(dir, &d, &err) != SAEMON_OK) {
        if (d || !err.message[0])
            abort();
        return 0;
    }
    const saemon_dict_info *in = saemon_dict_get_info(d);
    if (!in->d_in || !in->d_sae || strlen(in->sha256) != 64 || !in->name || !in->hook_name)
        abort();
    if (in->arch == SAEMON_ARCH_TOPK && (in->k < 1 || in->k > in->d_sae))
        abort();
    saemon_dict_close(d);
    return 0;
}
