/* A writer for the Prometheus text exposition format (version 0.0.4):
 * "# HELP" / "# TYPE" once per metric family, then one sample per line,
 * label values escaped (\\, \", \n). The text grows in one heap buffer. */
#ifndef SAEMON_CLI_PROM_TEXT_H
#define SAEMON_CLI_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prom_text {
    char *buf;
    size_t len, cap;
    bool failed; /* an allocation failed: the text is incomplete */
} prom_text;

/* Up to this many label pairs per sample. */
#define PROM_MAX_LABELS 6

typedef struct prom_label {
    const char *name;
    const char *value;
} prom_label;

void prom_family(prom_text *t, const char *name, const char *type, const char *help);
/* name{labels} value; n_labels may be 0. */
void prom_sample(prom_text *t, const char *name, const prom_label *labels, size_t n_labels, double value);
void prom_sample_u64(prom_text *t, const char *name, const prom_label *labels, size_t n_labels,
                     uint64_t value);
/* A histogram with cumulative bucket counts: buckets[i] counts values <= le[i];
 * the +Inf bucket is `count`. */
void prom_histogram(prom_text *t, const char *name, const prom_label *labels, size_t n_labels,
                    const double *le, const uint64_t *buckets, size_t n_buckets, uint64_t count, double sum);
void prom_text_free(prom_text *t);

#endif
