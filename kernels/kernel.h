/* Encode kernels: pure functions over pointers, shapes and a plan.
 *
 * kernels/ knows nothing of files, rules or threads. Every variant (scalar,
 * AVX-512, NEON, ...) implements the same contract and is listed once in
 * kernels/registry.inc; the dispatcher, the checkkernels harness and the
 * benchmarks all read that one list. */
#ifndef SAEMON_KERNEL_H
#define SAEMON_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* What happens to a latent's dot product d_j = x'·W_j (x' is the already
 * preprocessed input row). */
typedef enum saemon_epilogue {
    /* pre = d_j + bias_j; active iff pre > threshold_j; value = pre.
     * standard ReLU: threshold 0; JumpReLU: threshold max(theta_j, 0), which
     * equals SAELens' ReLU(h)*[h > theta] for every theta. */
    SAEMON_EPI_THRESHOLD = 0,
    /* gate = d_j + bias_j; mag = mag_scale_j * d_j + mag_bias_j;
     * active iff gate > 0 and mag > 0; value = mag (SAELens gated). */
    SAEMON_EPI_GATED,
    /* pre = d_j + bias_j, times mag_scale_j when mag_scale != NULL; keep the k
     * largest pre (lower index wins ties; NaN never selected), then drop
     * those <= 0 (ReLU). */
    SAEMON_EPI_TOPK,
} saemon_epilogue;

/* Everything a kernel needs besides the packed weights. Arrays are [d_sae]
 * and describe the latents this call covers; index_base is added to every
 * emitted index, so a worker can encode a contiguous slice of latents. */
typedef struct saemon_kernel_plan {
    size_t d_in;
    size_t d_sae;
    size_t k;              /* TOPK only */
    uint32_t index_base;
    saemon_epilogue epilogue;
    const float *bias;      /* b_enc, or b_gate for GATED */
    const float *threshold; /* THRESHOLD only */
    const float *mag_scale; /* GATED: exp(r_mag); TOPK: ||W_dec_j|| or NULL */
    const float *mag_bias;  /* GATED: b_mag */
    uint32_t flags;         /* SAEMON_PLAN_* (0 in normal use) */
} saemon_kernel_plan;

enum {
    /* Screened variants compute every latent on their fp32 path (the same
     * arithmetic as their candidates' recompute) instead of screening: the
     * output a screened run must reproduce bit for bit. For tests. */
    SAEMON_PLAN_NO_SCREEN = 1u << 0,
};

/* Output slots: row r writes up to row_capacity (index, value) pairs at
 * index[r*row_capacity ...], sorted by ascending index, and their number to
 * count[r]. row_capacity is d_sae (or k for TOPK). */
typedef struct saemon_kernel_out {
    size_t row_capacity;
    uint32_t *index;
    float *value;
    uint32_t *count;
} saemon_kernel_out;

typedef struct saemon_kernel {
    /* datatype-operation-tile-isa: operation "encode" (fp32 dot products)
     * or "screen" (small-copy screen + exact fp32 recompute); tile = rows x
     * latents of the register tile, e.g. "f32-encode-8x32-avx512". */
    const char *name;
    /* Version of pack()'s output for this variant (its layout and the values
     * it computes). A packed form stored in a pack file (runtime/pack_write.c)
     * is used in place only by the variant of the same name and layout
     * version: bump it whenever pack() or packed_size() change. */
    uint32_t packed_layout;
    const char *family;    /* "scalar", "portable", "avx2", "avx512", "neon": the family of vector code it
                            * runs in (avx2 also for AVX-VNNI on ymm); SAEMON_ISA matches this or name */
    uint32_t cpu_features; /* SAEMON_CPU_* bits the variant needs */
    int priority;          /* among runnable variants the highest wins */
    /* The reference every other variant is checked against (double
     * accumulation, slow): never chosen automatically, only by name/family. */
    int reference;
    /* A screen + exact fp32 recompute: honours SAEMON_PLAN_NO_SCREEN, and
     * must then give bit for bit what it gives screened. */
    int screened;
    /* Nonzero when, for every d_in that is a multiple of it, pack() begins
     * `packed` with W's rows unchanged ([d_sae][d_in] fp32, the copy a screen
     * recomputes from) and never reads them back after writing past them: a
     * buffer that already holds the rows (the dictionary's, loaded into one
     * allocation of packed_size bytes) can then be packed in place, and the
     * rows are held once (runtime/encoder_plan.c). */
    uint32_t packed_rows_align;
    /* Bytes of packed weights and of per-call scratch for batches up to max_batch. */
    size_t (*packed_size)(const saemon_kernel_plan *plan);
    size_t (*scratch_size)(const saemon_kernel_plan *plan, size_t max_batch);
    /* Lay out W (fp32, [d_sae][d_in], row j = encoder column of latent j) for
     * this kernel. `packed` is 64-byte aligned and packed_size bytes long.
     * The result depends only on d_in, d_sae and W (never on the epilogue,
     * biases or flags), so it can be computed once and stored: encode may be
     * given a read-only packed form written earlier by this same pack(). */
    void (*pack)(const saemon_kernel_plan *plan, const float *w_rows, void *packed);
    /* Encode n rows of x ([n][d_in], contiguous). */
    void (*encode)(const saemon_kernel_plan *plan, const void *packed, const float *x, size_t n,
                   const saemon_kernel_out *out, void *scratch);
} saemon_kernel;

/* CPU features, detected once. */
enum {
    SAEMON_CPU_AVX512F = 1u << 0,  /* with BW, DQ, VL and OS ZMM state */
    SAEMON_CPU_AVX512BF16 = 1u << 1,
    SAEMON_CPU_AVX512VNNI = 1u << 2,
    SAEMON_CPU_AVX2 = 1u << 3,     /* with FMA and OS YMM state */
    SAEMON_CPU_F16C = 1u << 4,
    SAEMON_CPU_AVX_VNNI = 1u << 5, /* VEX vpdpbusd on ymm (Alder Lake, Sapphire Rapids, Zen 5) */
    SAEMON_CPU_NEON = 1u << 8,
    SAEMON_CPU_NEON_DOTPROD = 1u << 9,
    SAEMON_CPU_NEON_BF16 = 1u << 10,
};

uint32_t saemon_cpu_features(void);

/* Name of one SAEMON_CPU_* bit ("avx2", "avx512_vnni", ...). */
const char *saemon_cpu_feature_name(uint32_t bit);

/* The SAEMON_CPU_* bits variant k needs that this CPU lacks (0: it runs). */
uint32_t saemon_kernel_missing_features(const saemon_kernel *k);

/* Why k is or is not the variant saemon_kernel_select(request) picks, as one
 * line for `saemon inspect --kernels`: "chosen", "not on this CPU: missing
 * avx512_vnni", "reference: only when asked for (SAEMON_ISA=scalar)",
 * "runs here; i8-screen-4x16-avx2 ranks higher". Returns buf. */
const char *saemon_kernel_reason(const saemon_kernel *k, const char *request, char *buf, size_t len);

/* The screening bounds assume IEEE round-to-nearest-even (the fp32 unit's
 * current rounding mode, MXCSR on x86). 1 if that holds on this thread. */
int saemon_kernels_rounding_ok(void);

/* All variants compiled in, in registry order; n_out receives the count. */
const saemon_kernel *const *saemon_kernels_all(size_t *n_out);

/* The variant to use: `request` (NULL → $SAEMON_ISA → best runnable) matched
 * against kernel name or family. The ladder avx512 > avx2 > portable follows
 * from the priorities; the reference is chosen only when requested. Returns
 * NULL if the request names no runnable variant. */
const saemon_kernel *saemon_kernel_select(const char *request);

/* Shared helpers every variant uses for the TopK epilogue (kernels/topk.c). */
typedef struct saemon_topk_entry {
    float value;
    uint32_t index;
} saemon_topk_entry;

/* Keep the k best of a stream of (value, index) in a min-heap of capacity k. */
void saemon_topk_push(saemon_topk_entry *heap, size_t *size, size_t k, float value, uint32_t index);
/* Write heap entries with value > 0 to out sorted by index; returns count. */
uint32_t saemon_topk_emit(saemon_topk_entry *heap, size_t size, uint32_t *index, float *value);

#endif
