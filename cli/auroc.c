#include "cli/auroc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool auroc_init(auroc_acc *a, size_t d_sae)
{
    memset(a, 0, sizeof *a);
    a->d_sae = d_sae;
    for (int s = 0; s < 2; s++) {
        a->side[s] = calloc(d_sae, sizeof *a->side[s]);
        a->sum[s] = calloc(d_sae, sizeof *a->sum[s]);
        a->max[s] = calloc(d_sae, sizeof *a->max[s]);
        if (!a->side[s] || !a->sum[s] || !a->max[s]) {
            auroc_free(a);
            return false;
        }
    }
    return true;
}

void auroc_add(auroc_acc *a, int side, const uint32_t *index, const float *value, size_t nnz)
{
    a->n_obs[side]++;
    for (size_t i = 0; i < nnz; i++) {
        float v = value[i];
        if (!(v > 0)) /* the encoder stores only values > 0; NaN is not a value */
            continue;
        auroc_vals *l = &a->side[side][index[i]];
        if (l->n == l->cap) {
            uint32_t cap = l->cap ? (l->cap > UINT32_MAX / 2 ? UINT32_MAX : 2 * l->cap) : 4;
            float *g = cap > l->cap ? realloc(l->v, (size_t)cap * sizeof *g) : NULL;
            if (!g) {
                a->oom = true;
                continue;
            }
            a->bytes += (uint64_t)(cap - l->cap) * sizeof *g;
            l->v = g;
            l->cap = cap;
        }
        l->v[l->n++] = v;
        a->sum[side][index[i]] += v;
        if (v > a->max[side][index[i]])
            a->max[side][index[i]] = v;
    }
}

void auroc_free(auroc_acc *a)
{
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; a->side[s] && i < a->d_sae; i++)
            free(a->side[s][i].v);
        free(a->side[s]);
        free(a->sum[s]);
        free(a->max[s]);
    }
    memset(a, 0, sizeof *a);
}

static int cmp_desc(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a < b) - (a > b);
}

/* One latent: values of each side sorted descending; zeros implicit. */
static void one(const auroc_acc *a, uint32_t lat, double max_fpr, auroc_stat *st)
{
    const auroc_vals *P = &a->side[1][lat], *N = &a->side[0][lat];
    const uint64_t n1 = a->n_obs[1], n0 = a->n_obs[0];
    const uint64_t z1 = n1 - P->n, z0 = n0 - N->n;
    if (P->n > 1) /* a latent never active on a side has no array */
        qsort(P->v, P->n, sizeof *P->v, cmp_desc);
    if (N->n > 1)
        qsort(N->v, N->n, sizeof *N->v, cmp_desc);
    memset(st, 0, sizeof *st);
    st->latent = lat;
    for (int s = 0; s < 2; s++) {
        uint64_t n = a->n_obs[s];
        st->freq[s] = n ? (double)a->side[s][lat].n / (double)n : 0;
        st->mean[s] = n ? a->sum[s][lat] / (double)n : 0;
        st->max[s] = a->max[s][lat];
    }
    /* Walk the distinct values from the largest down. At each value u the
     * threshold `above: u` fires on everything above u (counted so far);
     * 2U gathers, per positive value, 2 x (negatives below) + (equal). */
    uint64_t i = 0, j = 0, tp = 0, fp = 0;
    unsigned __int128 twice_u = 0;
    bool have_best = false;
    double best_j = 0;
    for (;;) {
        float u;
        bool more_p = i < P->n, more_n = j < N->n;
        if (more_p && more_n)
            u = P->v[i] > N->v[j] ? P->v[i] : N->v[j];
        else if (more_p)
            u = P->v[i];
        else if (more_n)
            u = N->v[j];
        else
            u = 0;
        /* candidate threshold u: tp/fp count the values > u */
        double tpr = n1 ? (double)tp / (double)n1 : 0, fpr = n0 ? (double)fp / (double)n0 : 0;
        bool take;
        if (max_fpr >= 0)
            take = fpr <= max_fpr && (!have_best || tp > st->tp);
        else
            take = !have_best || tpr - fpr > best_j;
        if (take) {
            have_best = true;
            best_j = tpr - fpr;
            st->threshold = u;
            st->tp = tp;
            st->fp = fp;
            st->tpr = tpr;
            st->fpr = fpr;
        }
        if (!more_p && !more_n)
            break;
        uint64_t cp = 0, cn = 0;
        while (i < P->n && P->v[i] == u)
            i++, cp++;
        while (j < N->n && N->v[j] == u)
            j++, cn++;
        /* negatives below u: the zeros and the nonzero ones not reached yet */
        uint64_t below = z0 + (N->n - j);
        twice_u += (unsigned __int128)cp * (2 * below + cn);
        tp += cp;
        fp += cn;
    }
    twice_u += (unsigned __int128)z1 * z0; /* zero against zero: ties */
    st->auroc = n1 && n0 ? (double)twice_u / (2.0 * (double)n1 * (double)n0) : NAN;
    st->precision = st->tp + st->fp ? (double)st->tp / (double)(st->tp + st->fp) : NAN;
}

bool auroc_compute(auroc_acc *a, double max_fpr, auroc_stat *out)
{
    for (size_t l = 0; l < a->d_sae; l++)
        one(a, (uint32_t)l, max_fpr, &out[l]);
    return true;
}

static int cmp_rank(const void *x, const void *y)
{
    const auroc_stat *a = x, *b = y;
    if (a->auroc != b->auroc)
        return a->auroc > b->auroc ? -1 : 1;
    return (a->latent > b->latent) - (a->latent < b->latent);
}

void auroc_rank(auroc_stat *s, size_t n) { qsort(s, n, sizeof *s, cmp_rank); }

void auroc_roc(const auroc_acc *a, uint32_t lat, FILE *f)
{
    const auroc_vals *P = &a->side[1][lat], *N = &a->side[0][lat];
    const double n1 = (double)a->n_obs[1], n0 = (double)a->n_obs[0];
    uint64_t i = 0, j = 0;
    double last_x = 0, last_y = 0;
    fprintf(f, "0 0\n");
    while (i < P->n || j < N->n) {
        float u = i < P->n && (j >= N->n || P->v[i] >= N->v[j]) ? P->v[i] : N->v[j];
        while (i < P->n && P->v[i] == u)
            i++;
        while (j < N->n && N->v[j] == u)
            j++;
        double x = (double)j / n0, y = (double)i / n1;
        if (x - last_x >= 1e-3 || y - last_y >= 1e-3 || (i == P->n && j == N->n)) {
            fprintf(f, "%.6g %.6g\n", x, y);
            last_x = x;
            last_y = y;
        }
    }
    fprintf(f, "1 1\n");
}
