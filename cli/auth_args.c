#include "cli/auth_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

bool auth_files_push(auth_files *f, const char *path, auth_role role)
{
    const char **p = realloc(f->path, (f->n + 1) * sizeof *p);
    if (p)
        f->path = p;
    auth_role *r = p ? realloc(f->role, (f->n + 1) * sizeof *r) : NULL;
    if (r)
        f->role = r;
    if (!p || !r) {
        fprintf(stderr, "saemon: out of memory\n");
        return false;
    }
    f->path[f->n] = path;
    f->role[f->n++] = role;
    return true;
}

bool auth_files_push_labels(auth_files *f, const char *path)
{
    const char **p = realloc(f->labels, (f->n_labels + 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "saemon: out of memory\n");
        return false;
    }
    f->labels = p;
    f->labels[f->n_labels++] = path;
    return true;
}

bool auth_files_open(const auth_files *f, const char *what, size_t d_in, bool hook_z, auth_set *set)
{
    size_t n_inputs = 0;
    for (size_t i = 0; i < f->n; i++)
        n_inputs += f->role[i] == AUTH_LABELLED;
    if (f->n_labels && f->n_labels != n_inputs) {
        fprintf(stderr, "saemon %s: %zu --labels file(s) for %zu --input file(s): give one per --input, in the "
                        "same order\n", what, f->n_labels, n_inputs);
        return false;
    }
    for (size_t i = 0, k = 0; i < f->n; i++) {
        const char *labels = f->role[i] == AUTH_LABELLED && f->n_labels ? f->labels[k++] : NULL;
        if (!auth_set_add(set, what, f->path[i], f->role[i], labels, d_in, hook_z))
            return false;
    }
    return true;
}

void auth_files_free(auth_files *f)
{
    free(f->path);
    free(f->role);
    free(f->labels);
}

bool auth_parse_fraction(const char *opt, const char *text, bool zero_ok, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v > 1 || v < 0 || (!zero_ok && v == 0)) {
        fprintf(stderr, "saemon: %s expects a number in %s0, 1], got '%s'\n", opt, zero_ok ? "[" : "(", text);
        return false;
    }
    *out = v;
    return true;
}
