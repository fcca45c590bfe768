/* Just enough of SAELens' on-disk format for checkkernels to run the kernels
 * on real trained dictionaries: cfg.json (a few keys), F32 tensors from
 * sae_weights.safetensors, and a float32 C-order .npy of activations.
 * libc only (checkkernels must also build for aarch64 with -static). The
 * real loader lives in runtime/; this one trusts the shared test data but
 * still checks every size it reads. */
#include "tests/checkkernels/real-sae.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* The value text after "key": in a JSON object (whitespace skipped). */
static const char *json_value(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ':')
        p++;
    return p;
}

/* Tensor `name` (F32, n elements) out of a safetensors file held in buf. */
static float *tensor(const char *buf, size_t len, const char *name, size_t want, char *err, size_t errlen)
{
    uint64_t hlen;
    if (len < 8)
        return fail(err, errlen, "safetensors file too short"), NULL;
    memcpy(&hlen, buf, 8);
    if (hlen > len - 8)
        return fail(err, errlen, "safetensors header length %llu exceeds file", (unsigned long long)hlen), NULL;
    char *header = strndup(buf + 8, (size_t)hlen);
    const char *t = json_value(header, name);
    unsigned long long a, b;
    const char *dt = t ? json_value(t, "dtype") : NULL, *off = t ? json_value(t, "data_offsets") : NULL;
    if (!t || !dt || !off || strncmp(dt, "\"F32\"", 5) != 0 || sscanf(off, "[%llu,%llu]", &a, &b) != 2 ||
        b < a || b - a != want * sizeof(float) || b > len - 8 - hlen) {
        free(header);
        return fail(err, errlen, "tensor %s: missing, not F32, or not %zu elements", name, want), NULL;
    }
    free(header);
    float *out = malloc(want * sizeof(float));
    memcpy(out, buf + 8 + hlen + a, want * sizeof(float));
    return out;
}

int real_sae_load(const char *dir, real_sae *s, char *err, size_t errlen)
{
    char path[4096];
    size_t len;
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    char *cfg = slurp(path, &len);
    if (!cfg)
        return fail(err, errlen, "%s: cannot read", path);
    const char *v;
    s->d_in = (v = json_value(cfg, "d_in")) ? strtoull(v, NULL, 10) : 0;
    s->d_sae = (v = json_value(cfg, "d_sae")) ? strtoull(v, NULL, 10) : 0;
    s->k = (v = json_value(cfg, "k")) ? strtoull(v, NULL, 10) : 0;
    s->apply_b_dec = (v = json_value(cfg, "apply_b_dec_to_input")) && strncmp(v, "true", 4) == 0;
    v = json_value(cfg, "architecture");
    s->arch = !v ? -1 : strncmp(v, "\"standard\"", 10) == 0 ? REAL_STANDARD
                      : strncmp(v, "\"jumprelu\"", 10) == 0 ? REAL_JUMPRELU
                      : strncmp(v, "\"topk\"", 6) == 0     ? REAL_TOPK
                                                          : -1;
    v = json_value(cfg, "normalize_activations");
    int plain = !v || strncmp(v, "\"none\"", 6) == 0;
    free(cfg);
    if (!s->d_in || !s->d_sae || s->d_in > 65536 || s->d_sae > (1u << 20) || s->arch < 0 || !plain ||
        (s->arch == REAL_TOPK && !s->k))
        return fail(err, errlen, "%s: unsupported cfg (need d_in, d_sae, standard/jumprelu/topk, no normalisation)",
                    path);
    snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
    char *buf = slurp(path, &len);
    if (!buf)
        return fail(err, errlen, "%s: cannot read", path);
    float *w_enc = tensor(buf, len, "W_enc", s->d_in * s->d_sae, err, errlen);
    s->b_enc = tensor(buf, len, "b_enc", s->d_sae, err, errlen);
    s->b_dec = tensor(buf, len, "b_dec", s->d_in, err, errlen);
    if (s->arch == REAL_JUMPRELU)
        s->threshold = tensor(buf, len, "threshold", s->d_sae, err, errlen);
    free(buf);
    if (!w_enc || !s->b_enc || !s->b_dec || (s->arch == REAL_JUMPRELU && !s->threshold)) {
        free(w_enc);
        real_sae_free(s);
        return -1;
    }
    /* W_enc is [d_in][d_sae]; kernels take rows [d_sae][d_in]. */
    s->w_rows = malloc(s->d_in * s->d_sae * sizeof(float));
    for (size_t i = 0; i < s->d_in; i++)
        for (size_t j = 0; j < s->d_sae; j++)
            s->w_rows[j * s->d_in + i] = w_enc[i * s->d_sae + j];
    free(w_enc);
    return 0;
}

void real_sae_free(real_sae *s)
{
    free(s->w_rows);
    free(s->b_enc);
    free(s->b_dec);
    free(s->threshold);
    memset(s, 0, sizeof *s);
}

float *real_npy_load(const char *path, size_t cols, size_t *rows, char *err, size_t errlen)
{
    size_t len;
    char *buf = slurp(path, &len);
    if (!buf)
        return fail(err, errlen, "%s: cannot read", path), NULL;
    unsigned long long r = 0, c = 0;
    size_t hlen = len >= 10 ? (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 : 0;
    const char *shape = len >= 10 && memcmp(buf, "\x93NUMPY\x01", 7) == 0 ? strstr(buf + 10, "'shape': (") : NULL;
    if (!shape || 10 + hlen > len || !strstr(buf + 10, "'descr': '<f4'") || strstr(buf + 10, "'fortran_order': True") ||
        sscanf(shape, "'shape': (%llu, %llu)", &r, &c) != 2 || c != cols || r * c * 4 != len - 10 - hlen) {
        free(buf);
        return fail(err, errlen, "%s: not a float32 C-order [n, %zu] npy v1 array", path, cols), NULL;
    }
    float *out = malloc((size_t)(r * c) * sizeof(float));
    memcpy(out, buf + 10 + hlen, (size_t)(r * c) * sizeof(float));
    free(buf);
    *rows = (size_t)r;
    return out;
}
