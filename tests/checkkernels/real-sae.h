/* Minimal SAELens reader for checkkernels' real-dictionary mode. */
#ifndef SAEMON_CHECKKERNELS_REAL_SAE_H
#define SAEMON_CHECKKERNELS_REAL_SAE_H

#include <stddef.h>
#include <stdint.h>

enum { REAL_STANDARD, REAL_JUMPRELU, REAL_TOPK };

typedef struct real_sae {
    size_t d_in, d_sae, k;
    int arch, apply_b_dec;
    float *w_rows;    /* [d_sae][d_in] */
    float *b_enc, *b_dec, *threshold;
} real_sae;

/* Load dir/cfg.json + dir/sae_weights.safetensors; 0 on success, else -1
 * with a message in err. */
int real_sae_load(const char *dir, real_sae *s, char *err, size_t errlen);
void real_sae_free(real_sae *s);
/* A float32 C-order [rows][cols] .npy (v1 header); NULL + err on mismatch. */
float *real_npy_load(const char *path, size_t cols, size_t *rows, char *err, size_t errlen);

#endif
