/* Per-latent separation statistics between a positive and a negative side
 * (docs/authoring.md "features"). Every nonzero activation is kept (4 bytes
 * each) so the AUROC is exact: zeros (inactive) are one tie group per side,
 * counted, not stored. */
#ifndef SAEMON_CLI_AUROC_H
#define SAEMON_CLI_AUROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct auroc_vals {
    float *v;
    uint32_t n, cap;
} auroc_vals;

typedef struct auroc_acc {
    size_t d_sae;
    auroc_vals *side[2];    /* [d_sae] per side: 0 negative, 1 positive */
    double *sum[2];
    float *max[2];
    uint64_t n_obs[2];      /* observations (tokens or streams) per side */
    uint64_t bytes;         /* value storage in use */
    bool oom;
} auroc_acc;

bool auroc_init(auroc_acc *a, size_t d_sae);
/* One observation (a token, or a stream's per-latent max) on `side`. */
void auroc_add(auroc_acc *a, int side, const uint32_t *index, const float *value, size_t nnz);
void auroc_free(auroc_acc *a);

typedef struct auroc_stat {
    uint32_t latent;
    double auroc;        /* P(pos > neg) + P(pos = neg) / 2 */
    float threshold;     /* a rule `above: threshold` */
    uint64_t tp, fp;     /* positives / negatives above the threshold */
    double tpr, fpr, precision; /* precision NaN when nothing is above */
    double freq[2], mean[2];
    float max[2];
} auroc_stat;

/* Statistics of every latent (sorts the stored values). The threshold
 * maximises the true positives with fpr <= max_fpr when max_fpr >= 0, else
 * Youden's J = tpr - fpr; ties go to the stricter threshold. */
bool auroc_compute(auroc_acc *a, double max_fpr, auroc_stat *out);
/* The ROC curve of a latent as "fpr recall" lines (after auroc_compute,
 * thinned to steps of about 1/1000), from (0, 0) to (1, 1). */
void auroc_roc(const auroc_acc *a, uint32_t latent, FILE *f);
/* Sort stats by AUROC descending, then latent ascending. */
void auroc_rank(auroc_stat *s, size_t n);

#endif
