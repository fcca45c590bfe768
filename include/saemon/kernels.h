/* saemon — the encode kernels compiled into this library and whether this CPU
 * runs them (what `saemon inspect --kernels` prints). */
#ifndef SAEMON_KERNELS_H
#define SAEMON_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

#include "saemon/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saemon_kernel_info {
    const char *name;      /* variant name, e.g. "f32-encode-1x1-scalar" (saemon_encoder_options.variant) */
    const char *family;    /* vector family: "scalar", "portable", "avx2" (also AVX-VNNI), "avx512", "neon" */
    bool runnable;         /* this CPU (and OS) has every feature the variant needs */
    const char *why_not;   /* "" when runnable, else the missing features, e.g. "needs avx512_vnni" */
    bool chosen;           /* the variant an encoder gets without options ($SAEMON_ISA honoured) */
    bool reference;        /* the scalar reference: only chosen when asked for by name or family */
    const char *reason;    /* why it is or is not chosen: "chosen", "not on this CPU: missing avx2+fma",
                            * "runs here; i8-screen-4x16-avx2 ranks higher", ... */
} saemon_kernel_info;

/* Number of variants compiled in. */
SAEMON_API size_t saemon_kernel_get_count(void);
/* Variant i (0-based, registry order); false if i is out of range. Strings are static. */
SAEMON_API bool saemon_kernel_get(size_t i, saemon_kernel_info *out);
/* The CPU features saemon detected, space-separated ("avx512f/bw/dq/vl avx512_vnni"),
 * or "" on a baseline CPU. Static string. */
SAEMON_API const char *saemon_cpu_features_string(void);

#ifdef __cplusplus
}
#endif
#endif
