/* The inside of a saemon_encoder, shared by encoder.c (creation, encoding,
 * merging) and encoder_plan.c (building full and subset plans). */
#ifndef SAEMON_RUNTIME_ENCODER_INTERNAL_H
#define SAEMON_RUNTIME_ENCODER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "kernels/kernel.h"
#include "runtime/dict_internal.h"
#include "runtime/topology.h"
#include "runtime/workers.h"
#include "saemon/encoder.h"

#define MAX_THREADS 256
#define SLICE_ALIGN 64 /* slice bounds on 64-latent boundaries: whole SIMD panels */

/* One thread's contiguous range of a plan's latents, packed for the kernel. */
typedef struct slice {
    saemon_kernel_plan plan; /* arrays offset to the slice, index_base = first position */
    size_t cap;              /* slots per row */
    void *packed, *scratch;
    bool mapped;             /* packed points into a pack's mapping (read-only, not owned) */
    bool in_rows;            /* packed in place in the dictionary's rows allocation (not owned) */
    uint32_t *index, *count;
    float *value;
} slice;

/* A plan: the latents one encode pass computes, split into the encoder's
 * slices. The full plan covers 0..d_sae-1 and emits dictionary indices
 * directly. A subset plan is a gathered copy (rows of W_enc, biases,
 * thresholds, gated scales) of the chosen latents, packed contiguously like
 * a small dictionary; the kernel emits positions 0..n-1 and `map` turns them
 * back into dictionary indices (ascending, so CSR order is kept). */
typedef struct plan_set {
    const saemon_dict *dict;
    saemon_kernel_plan whole;
    uint32_t *map;            /* subset: [whole.d_sae] dictionary indices; NULL: full plan */
    float *own[4];            /* subset: gathered bias, threshold, mag_scale, mag_bias */
    size_t n_slices;
    slice *slices;
    /* Merged CSR output of an encode call on this plan (for a subset, room
     * for the rows the full plan also encodes). The single-slice full plan
     * compacts its slots in place instead (csr_aliases). */
    uint32_t *csr_index;
    float *csr_value;
    bool csr_aliases;
    char describe[512];
} plan_set;

struct saemon_encoder {
    const saemon_dict *dict;
    const saemon_kernel *kernel;
    saemon_kernel_plan plan; /* the whole dictionary, epilogue arrays folded */
    size_t max_batch;
    /* Small subset plans (SAEMON_PLAN_NO_SCREEN) screen single rows anyway:
     * the kernel's screen is vpdpbusd on zmm (64 int8 products an
     * instruction, a quarter of the fp32 rows' bytes), cheaper than its fp32
     * path at batch 1; batches keep the fp32 path, which reads each row once
     * for several rows (encoder_plan.c). */
    bool screen_one_row;
    float *threshold, *mag_scale, *bias, *mag_bias; /* owned epilogue arrays, [d_sae] */
    const float *raw_bias, *raw_mag_bias; /* the dictionary's, before b_dec is folded in */
    unsigned char *folded;                /* [d_sae]: bias (and mag_bias) of latent j folded */
    size_t n_slices;
    saemon_topology *topo;
    saemon_workers *workers;
    unsigned pus[MAX_THREADS];
    int bound[MAX_THREADS];
    char warning[256];
    /* plans */
    plan_set *full;                /* every latent; NULL when only a subset is kept */
    /* The plan encode uses (full or a subset). Written only by the encoding
     * thread (install_pending); atomic so the thread that calls set_latents
     * may ask which plan is in effect (saemon_encoder_get_plan). */
    _Atomic(plan_set *) cur;
    _Atomic(plan_set *) pending;   /* installed by the next encode (set_latents) */
    _Atomic(plan_set *) retired;   /* a replaced plan, freed by the next set_latents */
    char full_why[160];            /* why the full plan is used when it is */
    size_t full_every;             /* with a subset: every latent on one row in N */
    size_t full_rows_cap;          /* most such rows in one batch */
    uint64_t rows_seen;
    /* the current job */
    const plan_set *job_set;
    const float *job_x;
    size_t job_n;
    /* results */
    float *x;                      /* preprocessed rows, [max_batch][d_in] */
    float *x_full;                 /* the rows the full plan also encodes, [full_rows_cap][d_in] */
    bool *row_full;                /* [max_batch] */
    bool *row_subset;              /* [max_batch] */
    saemon_topk_entry *heap;       /* TopK merge across slices */
    size_t *offsets;
    float *input_norm;
    bool *nonfinite;
    double *row_shift, *row_scale; /* per-row normalisation, for decoding */
    float *recon_error;            /* NULL unless reconstruction was asked for */
    double *decoded;               /* [d_in] scratch for one decoded row */
    saemon_features features;
};

/* Build the plan of every latent (packed by the slices' own threads). */
saemon_status plan_set_full(saemon_encoder *enc, plan_set **out, saemon_error *err);
/* Build a subset plan of `latents` (checked, sorted, deduplicated here),
 * packed on the calling thread unless `on_workers`. */
saemon_status plan_set_subset(saemon_encoder *enc, const uint32_t *latents, size_t n, bool on_workers,
                              plan_set **out, saemon_error *err);
void plan_set_free(plan_set *set);
/* Fold b_dec into latent j's biases once its row is held (encoder.c). */
void encoder_fold_latent(saemon_encoder *enc, size_t j);

#endif
