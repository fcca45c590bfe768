/* libFuzzer: a whole dictionary directory. Byte 0 picks a folder layout from
 * `layouts` (SAELens, sparsify, OpenAI, Gemma Scope 2, Llama Scope, Llama
 * Scope R1, dictionary_learning, SAELens + sparsity.safetensors); the rest is
 * that layout's files in order: a JSON file ends at a NUL byte, a binary file
 * that is not the last one has a 4-byte little-endian length first, and the
 * last file runs to the end. This drives saemon_dict_open end to end: detection, config
 * readers, shape checks, upcasts, transposes, log thresholds, folding,
 * sparsity and the non-finite refusal. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saemon/dict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const layouts[][3] = {
    {"cfg.json", "sae_weights.safetensors", NULL},
    {"cfg.json", "sae.safetensors", NULL},
    {"sae.safetensors", NULL, NULL},
    {"config.json", "params.safetensors", NULL},
    {"hyperparams.json", "checkpoints/final.safetensors", NULL},
    {"config.json", "sae_weights.safetensors", NULL},
    {"config.json", "ae.safetensors", NULL},
    {"cfg.json", "sae_weights.safetensors", "sparsity.safetensors"},
};
#define N_LAYOUTS (sizeof layouts / sizeof layouts[0])

static const char *const all_files[] = {
    "cfg.json", "config.json", "hyperparams.json", "sae_weights.safetensors", "sae.safetensors",
    "params.safetensors", "checkpoints/final.safetensors", "ae.safetensors",
    "sparsity.safetensors", "activation_scaler.json",
};

/* tmpfs when there is one: rewriting files on a disk filesystem costs ms each. */
static char dir[64];

static void put(const char *name, const void *bytes, size_t len)
{
    char path[160];
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
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        put(all_files[i], NULL, 0);
    char sub[96];
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    rmdir(sub);
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
        char sub[96];
        snprintf(sub, sizeof sub, "%s/checkpoints", dir);
        if (mkdir(sub, 0700) != 0)
            abort();
        atexit(cleanup);
        ready = 1;
    }
    if (size < 1)
        return 0;
    const char *const *files = layouts[data[0] % N_LAYOUTS];
    data++, size--;
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        put(all_files[i], NULL, 0);
    for (int i = 0; i < 3 && files[i]; i++) {
        bool last = i == 2 || !files[i + 1];
        size_t len = size, skip = 0;
        if (!last && strstr(files[i], ".json")) {
            const uint8_t *nul = memchr(data, 0, size);
            if (!nul)
                return 0;
            len = (size_t)(nul - data), skip = 1;
        } else if (!last) {
            if (size < 4)
                return 0;
            len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
                  (size_t)data[3] << 24;
            data += 4, size -= 4;
            if (len > size)
                return 0;
        }
        put(files[i], data, len);
        data += len + skip, size -= len + skip;
    }
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
    if (!in->d_in || !in->d_sae || strlen(in->sha256) != 64 || !in->name || !in->hook_name ||
        !in->width_tag || !in->l0_tag)
        abort();
    if (in->arch == SAEMON_ARCH_TOPK && (in->k < 1 || in->k > in->d_sae))
        abort();
    if (in->log_feature_sparsity && in->n_dead_features > in->d_sae)
        abort();
    /* the planned load of the same files: a subset of the rows, no W_dec;
     * it must agree with the whole load on every row it holds */
    uint32_t lat[3] = {(uint32_t)(in->d_sae - 1), 0, (uint32_t)(in->d_sae / 2)};
    saemon_dict_load_options lo = {.subset = true, .latents = lat, .n_latents = 3, .no_decoder = true,
                                   .defer_sha256 = true};
    saemon_dict *p = NULL;
    if (saemon_dict_open_with(dir, &lo, &p, &err) != SAEMON_OK)
        abort(); /* the whole load succeeded: reading less cannot fail */
    saemon_dict_load_stats ws, ps;
    saemon_dict_get_load_stats(d, &ws);
    saemon_dict_get_load_stats(p, &ps);
    if (!saemon_dict_has_latent(p, lat[0]) || !saemon_dict_has_latent(p, lat[2]) || ps.bytes_read > ws.bytes_read ||
        ps.decoder_loaded != (in->arch == SAEMON_ARCH_TOPK && in->rescale_acts_by_decoder_norm))
        abort();
    saemon_dict_close(p);
    saemon_dict_close(d);
    return 0;
}
