/* A list of recordings with their labels: the input of features, calibrate
 * and backtest. Streams and rows are numbered across the files in the order
 * given. */
#include <stdlib.h>
#include <string.h>

#include "cli/authoring.h"

bool auth_set_add(auth_set *set, const char *what, const char *path, auth_role role, const char *labels,
                  size_t d_in, bool hook_z)
{
    auth_recording *g = realloc(set->rec, (set->n + 1) * sizeof *g);
    if (!g) {
        fprintf(stderr, "saemon %s: out of memory\n", what);
        return false;
    }
    set->rec = g;
    auth_recording *r = &set->rec[set->n];
    memset(r, 0, sizeof *r);
    r->path = path;
    if (!npy_rows_open(&r->rows, what, path, d_in, hook_z))
        return false;
    r->n_rows = r->rows.n_rows;
    r->n_streams = r->rows.n_streams;
    r->tokens_per_stream = r->rows.tokens_per_stream;
    r->first_stream = set->n_streams;
    r->first_row = set->n_rows;
    if (role == AUTH_LABELLED && labels) {
        if (!auth_labels_load(what, labels, r->n_streams, r->tokens_per_stream, r->first_stream, &r->mask,
                              &r->spans, &r->n_spans)) {
            npy_rows_close(&r->rows);
            return false;
        }
    } else if (role == AUTH_POSITIVE) {
        r->mask = malloc(r->n_rows ? r->n_rows : 1);
        r->spans = malloc((r->n_streams ? r->n_streams : 1) * sizeof *r->spans);
        if (!r->mask || !r->spans) {
            free(r->mask);
            free(r->spans);
            npy_rows_close(&r->rows);
            fprintf(stderr, "saemon %s: out of memory\n", what);
            return false;
        }
        memset(r->mask, 1, r->n_rows);
        for (size_t s = 0; s < r->n_streams; s++)
            r->spans[s] = (auth_span){.stream = r->first_stream + s, .start = 0, .end = r->tokens_per_stream};
        r->n_spans = r->tokens_per_stream ? r->n_streams : 0;
    }
    if (r->mask)
        for (size_t i = 0; i < r->n_rows; i++)
            set->n_pos_tokens += r->mask[i];
    set->n_spans += r->n_spans;
    set->n_rows += r->n_rows;
    set->n_streams += r->n_streams;
    set->n++;
    return true;
}

bool auth_set_check_both(const auth_set *set, const char *what)
{
    if (!set->n_pos_tokens) {
        fprintf(stderr, "saemon %s: no positive token: give --positive files or --labels that mark some tokens\n",
                what);
        return false;
    }
    if (set->n_pos_tokens == set->n_rows) {
        fprintf(stderr, "saemon %s: positives without negatives: every token is labelled positive; give --negative "
                        "files or unlabelled tokens\n", what);
        return false;
    }
    return true;
}

void auth_set_free(auth_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        npy_rows_close(&set->rec[i].rows);
        free(set->rec[i].mask);
        free(set->rec[i].spans);
    }
    free(set->rec);
    memset(set, 0, sizeof *set);
}
