/* PNG plots with gnuplot (Debian gnuplot-nox): the batch-1 latency CDF and
 * throughput vs batch, one panel per dictionary shape. The data files and
 * the script stay in the output directory so the plots can be redrawn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

static int have_gnuplot(void)
{
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static int shape_seen(const suite_results *res, size_t upto, const char *shape)
{
    for (size_t i = 0; i < upto; i++)
        if (!strcmp(res->rows[i].shape, shape))
            return 1;
    return 0;
}

/* Index of the series (impl, variant, threads) among the rows of one kind and shape. */
static void series_title(const suite_row *r, char *buf, size_t n)
{
    snprintf(buf, n, "%s %s T%zu", r->impl, strcmp(r->impl, "saemon") ? "" : r->variant, r->threads);
}

int suite_plot(const suite_results *res, const char *dir)
{
    if (!have_gnuplot()) {
        fprintf(stderr, "saemon bench: gnuplot not found (apt-get install gnuplot-nox): plots skipped\n");
        printf("plots skipped: gnuplot not installed\n");
        return -1;
    }
    char *dat = NULL, *gp = NULL;
    if (asprintf(&dat, "%s/bench-plot.dat", dir) < 0 || asprintf(&gp, "%s/bench-plot.gp", dir) < 0)
        return -1;
    FILE *d = fopen(dat, "w"), *g = fopen(gp, "w");
    if (!d || !g) {
        fprintf(stderr, "saemon bench: cannot write %s / %s\n", dat, gp);
        if (d)
            fclose(d);
        if (g)
            fclose(g);
        free(dat);
        free(gp);
        return -1;
    }
    /* Shapes in order of appearance. */
    const char *shapes[64];
    size_t n_shapes = 0;
    for (size_t i = 0; i < res->n_rows && n_shapes < 64; i++)
        if (!res->rows[i].note && !shape_seen(res, i, res->rows[i].shape))
            shapes[n_shapes++] = res->rows[i].shape;
    /* Only the generated shapes and a few real ones fit on a page. */
    if (n_shapes > 4)
        n_shapes = 4;
    int block = 0;
    fprintf(g, "set terminal pngcairo size 1400,%zu font ',9'\nset datafile separator ' '\n", 420 * (n_shapes ? n_shapes : 1));
    fprintf(g, "set output '%s/bench-latency-cdf.png'\nset multiplot layout %zu,1 title 'saemon bench: batch-1 "
               "latency CDF (distinct tokens, each call timed)'\n",
            dir, n_shapes ? n_shapes : 1);
    for (size_t s = 0; s < n_shapes; s++) {
        fprintf(g, "set title '%s'\nset logscale x\nset xlabel 'latency per token (ms, log)'\nset ylabel "
                   "'fraction of tokens'\nset yrange [0:1]\nset key outside right\nset grid\nplot ",
                shapes[s]);
        int first = 1;
        for (size_t i = 0; i < res->n_rows; i++) {
            const suite_row *r = &res->rows[i];
            if (r->note || r->kind != SUITE_LATENCY || !r->cdf_ms || strcmp(r->shape, shapes[s]))
                continue;
            char title[96];
            series_title(r, title, sizeof title);
            for (int k = 0; k < SUITE_CDF_POINTS; k++)
                fprintf(d, "%.6g %.4f\n", r->cdf_ms[k], (double)k / (SUITE_CDF_POINTS - 1));
            fprintf(d, "\n\n");
            fprintf(g, "%s'%s' index %d using 1:2 with lines lw 2 dt %d title '%s'", first ? "" : ", \\\n  ", dat,
                    block++, strcmp(r->impl, "saemon") ? 2 : 1, title);
            first = 0;
        }
        if (first)
            fprintf(g, "NaN notitle");
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\n");
    fprintf(g, "set output '%s/bench-throughput.png'\nset multiplot layout %zu,1 title 'saemon bench: throughput "
               "vs batch'\n",
            dir, n_shapes ? n_shapes : 1);
    for (size_t s = 0; s < n_shapes; s++) {
        fprintf(g, "set title '%s'\nset logscale x 2\nset logscale y\nset xlabel 'batch (tokens per call)'\nset "
                   "ylabel 'tokens/s (log)'\nset autoscale y\nset key outside right\nset grid\nplot ",
                shapes[s]);
        int first = 1;
        /* One series per (impl, variant, threads): its rows in batch order. */
        for (size_t i = 0; i < res->n_rows; i++) {
            const suite_row *r = &res->rows[i];
            if (r->note || r->kind != SUITE_THROUGHPUT || strcmp(r->shape, shapes[s]))
                continue;
            int dup = 0;
            for (size_t k = 0; k < i && !dup; k++) {
                const suite_row *q = &res->rows[k];
                dup = !q->note && q->kind == SUITE_THROUGHPUT && !strcmp(q->shape, r->shape) &&
                      !strcmp(q->impl, r->impl) && !strcmp(q->variant, r->variant) && q->threads == r->threads;
            }
            if (dup)
                continue;
            for (size_t k = i; k < res->n_rows; k++) {
                const suite_row *q = &res->rows[k];
                if (!q->note && q->kind == SUITE_THROUGHPUT && !strcmp(q->shape, r->shape) &&
                    !strcmp(q->impl, r->impl) && !strcmp(q->variant, r->variant) && q->threads == r->threads)
                    fprintf(d, "%zu %.6g\n", q->batch, q->tokens_per_s);
            }
            fprintf(d, "\n\n");
            char title[96];
            series_title(r, title, sizeof title);
            fprintf(g, "%s'%s' index %d using 1:2 with linespoints lw 2 dt %d title '%s'", first ? "" : ", \\\n  ",
                    dat, block++, strcmp(r->impl, "saemon") ? 2 : 1, title);
            first = 0;
        }
        if (first)
            fprintf(g, "NaN notitle");
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\n");
    int ok = fclose(d) == 0;
    ok &= fclose(g) == 0;
    int rc = -1;
    if (ok) {
        char *cmd = NULL;
        if (asprintf(&cmd, "gnuplot '%s' 2>'%s.log'", gp, gp) >= 0) {
            rc = system(cmd) == 0 ? 0 : -1;
            free(cmd);
        }
    }
    if (rc == 0)
        printf("wrote %s/bench-latency-cdf.png, %s/bench-throughput.png (gnuplot script %s)\n", dir, dir, gp);
    else
        fprintf(stderr, "saemon bench: gnuplot failed on %s\n", gp);
    free(dat);
    free(gp);
    return rc;
}
