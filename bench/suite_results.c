/* Storage of a `saemon bench` run. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

suite_row *suite_add_row(suite_results *r)
{
    if (r->n_rows == r->cap_rows) {
        size_t nc = r->cap_rows ? 2 * r->cap_rows : 64;
        suite_row *p = realloc(r->rows, nc * sizeof *p);
        if (!p)
            return NULL;
        r->rows = p;
        r->cap_rows = nc;
    }
    suite_row *row = &r->rows[r->n_rows++];
    memset(row, 0, sizeof *row);
    return row;
}

void suite_note(suite_results *r, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    for (size_t i = 0; i < r->n_notes; i++)
        if (!strcmp(r->notes[i], msg)) {
            free(msg);
            return;
        }
    char **p = realloc(r->notes, (r->n_notes + 1) * sizeof *p);
    if (!p) {
        free(msg);
        return;
    }
    r->notes = p;
    r->notes[r->n_notes++] = msg;
}

void suite_results_free(suite_results *r)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        suite_row *w = &r->rows[i];
        free(w->source);
        free(w->shape);
        free(w->impl);
        free(w->variant);
        free(w->cdf_ms);
        free(w->note);
    }
    free(r->rows);
    for (size_t i = 0; i < r->n_notes; i++)
        free(r->notes[i]);
    free(r->notes);
    memset(r, 0, sizeof *r);
}

const bench_roofline *suite_roof(const suite_results *r, size_t threads)
{
    size_t best = 0;
    for (size_t i = 0; i < r->n_roof; i++)
        if (r->roof_threads[i] <= threads && r->roof_threads[i] >= r->roof_threads[best])
            best = i;
    return &r->roof[best];
}
