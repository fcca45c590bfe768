#include "tests/support/st_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/support.h"

typedef struct {
    char *name, *dtype;
    uint64_t shape[8];
    size_t ndim;
    uint8_t *data;
    size_t nbytes;
} stw_tensor;

struct st_writer {
    stw_tensor t[64];
    size_t n;
    char *meta_k[16], *meta_v[16];
    size_t n_meta;
};

st_writer *stw_new(void)
{
    return calloc(1, sizeof(st_writer));
}

void stw_free(st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].dtype);
        free(w->t[i].data);
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_k[i]);
        free(w->meta_v[i]);
    }
    free(w);
}

uint16_t test_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFF) > 0x7F800000)
        return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

uint16_t test_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f))
        return sign | 0x7E00;
    if (a >= 65520.0f)
        return sign | 0x7C00;
    if (a < 6.103515625e-05f) /* subnormal: units of 2^-24, nearest even */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    int e;
    float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    long man = lrintf((m * 2.0f - 1.0f) * 1024.0f);
    int exp = e - 1 + 15;
    if (man == 1024) {
        man = 0;
        exp++;
    }
    if (exp >= 31)
        return sign | 0x7C00;
    return sign | (uint16_t)(exp << 10) | (uint16_t)man;
}

void stw_add_raw(st_writer *w, const char *name, const char *dtype, const uint64_t *shape,
                 size_t ndim, const void *data, size_t nbytes)
{
    stw_tensor *t = &w->t[w->n++];
    t->name = strdup(name);
    t->dtype = strdup(dtype);
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, ndim * sizeof *shape);
    t->data = malloc(nbytes ? nbytes : 1);
    if (nbytes)
        memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
}

void stw_add_floats(st_writer *w, const char *name, const char *dtype, const uint64_t *shape,
                    size_t ndim, const float *v)
{
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++)
        n *= shape[i];
    size_t es = !strcmp(dtype, "F64") ? 8 : !strcmp(dtype, "F32") ? 4 : 2;
    uint8_t *buf = malloc(n * es + 1);
    for (size_t i = 0; i < n; i++) {
        if (es == 8) {
            double d = v[i];
            memcpy(buf + 8 * i, &d, 8);
        } else if (es == 4) {
            memcpy(buf + 4 * i, &v[i], 4);
        } else {
            uint16_t h = !strcmp(dtype, "F16") ? test_f32_to_f16(v[i]) : test_f32_to_bf16(v[i]);
            memcpy(buf + 2 * i, &h, 2);
        }
    }
    stw_add_raw(w, name, dtype, shape, ndim, buf, n * es);
    free(buf);
}

void stw_add_meta(st_writer *w, const char *key, const char *value)
{
    w->meta_k[w->n_meta] = strdup(key);
    w->meta_v[w->n_meta++] = strdup(value);
}

uint8_t *st_raw_file(const char *header, const void *data, size_t data_len, size_t *len)
{
    size_t n = strlen(header);
    uint8_t *out = malloc(8 + n + data_len + 1);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(out + 8, header, n);
    if (data_len)
        memcpy(out + 8 + n, data, data_len);
    *len = 8 + n + data_len;
    return out;
}

uint8_t *stw_build(const st_writer *w, size_t *len)
{
    size_t cap = 4096, pos = 0;
    char *h = malloc(cap);
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int need = snprintf(h + pos, cap - pos, __VA_ARGS__);                                      \
        while ((size_t)need >= cap - pos) {                                                        \
            cap *= 2;                                                                              \
            h = realloc(h, cap);                                                                   \
            need = snprintf(h + pos, cap - pos, __VA_ARGS__);                                      \
        }                                                                                          \
        pos += (size_t)need;                                                                       \
    } while (0)
    PUT("{");
    if (w->n_meta) {
        PUT("\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++)
            PUT("%s\"%s\":\"%s\"", i ? "," : "", w->meta_k[i], w->meta_v[i]);
        PUT("}");
    }
    size_t off = 0, data_len = 0;
    for (size_t i = 0; i < w->n; i++) {
        const stw_tensor *t = &w->t[i];
        PUT("%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (i || w->n_meta) ? "," : "", t->name,
            t->dtype);
        for (size_t d = 0; d < t->ndim; d++)
            PUT("%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        PUT("],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    PUT("}");
    while (pos % 8)
        PUT(" ");
#undef PUT
    data_len = off;
    uint8_t *data = malloc(data_len + 1);
    off = 0;
    for (size_t i = 0; i < w->n; i++) {
        memcpy(data + off, w->t[i].data, w->t[i].nbytes);
        off += w->t[i].nbytes;
    }
    uint8_t *out = st_raw_file(h, data, data_len, len);
    free(h);
    free(data);
    return out;
}

char *stw_write(const st_writer *w, const char *dir, const char *name)
{
    size_t len;
    uint8_t *bytes = stw_build(w, &len);
    char *path = test_write_file(dir, name, bytes, len);
    free(bytes);
    return path;
}
