/* dictgen_saelens: a SAELens folder of any size, streamed to disk. */
#include "bench/dictgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_FLOATS (1u << 18) /* 1 MiB of F32 */

typedef struct gen {
    FILE *f;
    uint64_t rng;
    float *buf;
    int ok;
} gen;

static float next(gen *g, float scale, float offset)
{
    g->rng ^= g->rng << 13, g->rng ^= g->rng >> 7, g->rng ^= g->rng << 17;
    return offset + scale * (float)((double)(g->rng >> 11) * 0x1.0p-52 - 1.0);
}

/* n values scale*U(-1,1)+offset as F32 or BF16 (truncated to the top 16 bits). */
static void emit(gen *g, uint64_t n, int bf16, float scale, float offset)
{
    while (g->ok && n) {
        size_t m = n < BUF_FLOATS ? (size_t)n : BUF_FLOATS;
        for (size_t i = 0; i < m; i++)
            g->buf[i] = next(g, scale, offset);
        if (bf16) {
            uint16_t *h = (uint16_t *)g->buf;
            for (size_t i = 0; i < m; i++) {
                uint32_t u;
                memcpy(&u, &g->buf[i], 4);
                h[i] = (uint16_t)(u >> 16);
            }
        }
        g->ok = fwrite(g->buf, bf16 ? 2 : 4, m, g->f) == m;
        n -= m;
    }
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int dictgen_saelens(const char *dir, size_t d_in, size_t d_sae, const char *wdec_dtype, uint64_t seed)
{
    const int bf16 = wdec_dtype && !strcmp(wdec_dtype, "BF16");
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"d_in\": %zu, \"d_sae\": %zu, \"architecture\": \"jumprelu\", \"apply_b_dec_to_input\": true, "
             "\"hook_name\": \"blocks.0.hook_resid_post\", \"model_name\": \"generated\", \"dtype\": \"float32\"}\n",
             d_in, d_sae);
    if (write_text(dir, "cfg.json", cfg) != 0)
        return -1;
    /* tensors in file order: W_enc, W_dec, b_enc, b_dec, threshold */
    const uint64_t n = (uint64_t)d_in * d_sae, enc = n * 4, dec = n * (bf16 ? 2 : 4);
    const uint64_t o1 = enc, o2 = o1 + dec, o3 = o2 + d_sae * 4, o4 = o3 + d_in * 4, o5 = o4 + d_sae * 4;
    char hdr[1024];
    int len = snprintf(hdr, sizeof hdr,
                       "{\"W_enc\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[0,%llu]},"
                       "\"W_dec\":{\"dtype\":\"%s\",\"shape\":[%zu,%zu],\"data_offsets\":[%llu,%llu]},"
                       "\"b_enc\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%llu,%llu]},"
                       "\"b_dec\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%llu,%llu]},"
                       "\"threshold\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%llu,%llu]}}",
                       d_in, d_sae, (unsigned long long)o1, bf16 ? "BF16" : "F32", d_sae, d_in,
                       (unsigned long long)o1, (unsigned long long)o2, d_sae, (unsigned long long)o2,
                       (unsigned long long)o3, d_in, (unsigned long long)o3, (unsigned long long)o4, d_sae,
                       (unsigned long long)o4, (unsigned long long)o5);
    if (len < 0 || (size_t)len + 8 > sizeof hdr) {
        errno = EOVERFLOW;
        return -1;
    }
    while (len % 8)
        hdr[len++] = ' ';
    char path[4096];
    snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
    gen g = {.f = fopen(path, "wb"), .rng = seed | 1, .buf = malloc(BUF_FLOATS * sizeof(float)), .ok = 1};
    if (!g.f || !g.buf) {
        if (g.f)
            fclose(g.f);
        free(g.buf);
        return -1;
    }
    unsigned char n8[8];
    for (int i = 0; i < 8; i++)
        n8[i] = (unsigned char)((uint64_t)len >> (8 * i));
    g.ok = fwrite(n8, 1, 8, g.f) == 8 && fwrite(hdr, 1, (size_t)len, g.f) == (size_t)len;
    const float w = 1.0f / (float)d_in;
    emit(&g, n, 0, 4.0f * w, 0);      /* W_enc */
    emit(&g, n, bf16, 0.1f, 0);       /* W_dec */
    emit(&g, d_sae, 0, 0.01f, 0);     /* b_enc */
    emit(&g, d_in, 0, 0.01f, 0);      /* b_dec */
    emit(&g, d_sae, 0, 0.01f, 0.02f); /* threshold */
    int ok = g.ok;
    free(g.buf);
    if (fclose(g.f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}
