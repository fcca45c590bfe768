#include "cli/features_out.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/plot.h"

static void num(FILE *f, double v)
{
    if (isnan(v))
        fputs("null", f);
    else
        fprintf(f, "%.17g", v);
}

static const char *label_of(const features_opts *o, uint32_t latent)
{
    return o->labels ? o->labels[latent] : NULL;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static bool print_json(FILE *f, const features_opts *o, const auroc_stat *s)
{
    fprintf(f, "{\"per\":\"%s\",\"positives\":%" PRIu64 ",\"negatives\":%" PRIu64 ",\"threshold_by\":",
            o->per_stream ? "stream" : "token", o->n_pos, o->n_neg);
    if (o->max_fpr >= 0)
        fprintf(f, "\"max_fpr\",\"max_fpr\":%.9g", o->max_fpr);
    else
        fputs("\"youden\"", f);
    fputs(",\"features\":[", f);
    for (size_t i = 0; i < o->top; i++) {
        const auroc_stat *x = &s[i];
        fprintf(f, "%s{\"rank\":%zu,\"latent\":%" PRIu32 ",\"auroc\":", i ? "," : "", i + 1, x->latent);
        num(f, x->auroc);
        fprintf(f, ",\"threshold\":%.9g,\"tp\":%" PRIu64 ",\"fp\":%" PRIu64 ",\"recall\":", (double)x->threshold,
                x->tp, x->fp);
        num(f, x->tpr);
        fputs(",\"fpr\":", f);
        num(f, x->fpr);
        fputs(",\"precision\":", f);
        num(f, x->precision);
        static const char *const side[2] = {"negative", "positive"};
        for (int k = 1; k >= 0; k--) {
            fprintf(f, ",\"%s\":{\"frequency\":", side[k]);
            num(f, x->freq[k]);
            fputs(",\"mean\":", f);
            num(f, x->mean[k]);
            fprintf(f, ",\"max\":%.9g}", (double)x->max[k]);
        }
        if (label_of(o, x->latent)) {
            fputs(",\"label\":", f);
            json_string(f, label_of(o, x->latent));
        }
        fputc('}', f);
    }
    return fputs("]}\n", f) >= 0;
}

bool features_print(FILE *f, const features_opts *o, const saemon_dict_info *info, const auroc_stat *s)
{
    (void)info;
    bool ok = true;
    if (!strcmp(o->format, "json")) {
        ok = print_json(f, o, s);
    } else if (!strcmp(o->format, "csv")) {
        fputs("rank,latent,auroc,threshold,tp,fp,recall,fpr,precision,pos_frequency,pos_mean,pos_max,"
              "neg_frequency,neg_mean,neg_max,label\n", f);
        for (size_t i = 0; i < o->top; i++) {
            const auroc_stat *x = &s[i];
            fprintf(f, "%zu,%" PRIu32 ",%.17g,%.9g,%" PRIu64 ",%" PRIu64 ",%.17g,%.17g,%.17g,%.17g,%.17g,%.9g,%.17g,%.17g,%.9g,",
                    i + 1, x->latent, x->auroc, (double)x->threshold, x->tp, x->fp, x->tpr, x->fpr, x->precision,
                    x->freq[1], x->mean[1], (double)x->max[1], x->freq[0], x->mean[0], (double)x->max[0]);
            const char *l = label_of(o, x->latent);
            if (l) {
                fputc('"', f);
                for (; *l; l++)
                    fputs(*l == '"' ? "\"\"" : (char[]){*l, 0}, f);
                fputc('"', f);
            }
            fputc('\n', f);
        }
    } else {
        fprintf(f, "%" PRIu64 " positive and %" PRIu64 " negative %s; threshold by %s\n", o->n_pos, o->n_neg,
                o->per_stream ? "streams (max over each)" : "tokens",
                o->max_fpr >= 0 ? "most recall at the false-positive rate cap" : "Youden's J");
        fprintf(f, "%4s %7s %8s %10s %7s %8s %9s | %8s %9s %9s | %8s %9s %9s%s\n", "rank", "latent", "auroc",
                "above", "recall", "fpr", "precision", "pos-freq", "pos-mean", "pos-max", "neg-freq", "neg-mean",
                "neg-max", o->labels ? " | label" : "");
        for (size_t i = 0; i < o->top; i++) {
            const auroc_stat *x = &s[i];
            fprintf(f, "%4zu %7" PRIu32 " %8.5f %10.5g %7.4f %8.2e %9.4f | %8.4f %9.4g %9.4g | %8.4f %9.4g %9.4g",
                    i + 1, x->latent, x->auroc, (double)x->threshold, x->tpr, x->fpr, x->precision, x->freq[1],
                    x->mean[1], (double)x->max[1], x->freq[0], x->mean[0], (double)x->max[0]);
            if (o->labels)
                fprintf(f, " | %.60s", label_of(o, x->latent) ? label_of(o, x->latent) : "-");
            fputc('\n', f);
        }
    }
    return ok && !ferror(f);
}

/* A YAML double-quoted string. */
static void quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 0x20)
            fprintf(f, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

bool features_write_rules(const char *path, const features_opts *o, const saemon_dict_info *info,
                          const auroc_stat *s, const auth_set *set)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        fprintf(stderr, "saemon features: out of memory\n");
        return false;
    }
    fprintf(f, "# Starter rules written by `saemon features` from %zu recording(s):\n", set->n);
    for (size_t i = 0; i < set->n; i++)
        fprintf(f, "#   %s%s\n", set->rec[i].path, set->rec[i].mask ? "" : " (negative)");
    fprintf(f, "# %" PRIu64 " positive and %" PRIu64 " negative %s. Thresholds by %s.\n", o->n_pos, o->n_neg,
            o->per_stream ? "streams" : "tokens",
            o->max_fpr >= 0 ? "most recall at the false-positive cap" : "Youden's J (recall - fpr)");
    if (o->max_fpr >= 0)
        fprintf(f, "# False-positive cap: %.9g.\n", o->max_fpr);
    fprintf(f, "# Precision and recall below are measured per %s on these recordings, before `for`,\n"
               "# windows or cooldown: check with `saemon backtest`, tune with `saemon calibrate`.\n",
            o->per_stream ? "stream" : "token");
    fprintf(f, "version: 1\ndictionary:\n  name: ");
    quoted(f, info->name);
    fprintf(f, "\n  d_sae: %zu\n  sha256: \"%s\"\nrules:\n", info->d_sae, info->sha256);
    for (size_t i = 0; i < o->top; i++) {
        const auroc_stat *x = &s[i];
        fprintf(f, "  - name: feature-%" PRIu32 "\n", x->latent);
        fprintf(f, "    description: \"latent %" PRIu32 " separates the labelled tokens (AUROC %.4f)\"\n",
                x->latent, x->auroc);
        if (label_of(o, x->latent)) {
            fprintf(f, "    annotations: {label: ");
            quoted(f, label_of(o, x->latent));
            fprintf(f, "}\n");
        }
        fprintf(f, "    # rank %zu: precision %.4f, recall %.4f (%" PRIu64 " of %" PRIu64 " positives, %" PRIu64
                   " of %" PRIu64 " negatives above)\n",
                i + 1, isnan(x->precision) ? 0.0 : x->precision, x->tpr, x->tp, o->n_pos, x->fp, o->n_neg);
        char th[32];
        auth_format_threshold(th, sizeof th, x->threshold);
        fprintf(f, "    condition: {feature: %" PRIu32 ", above: %s}\n", x->latent, th);
    }
    bool ok = fclose(f) == 0 && text;
    ok = ok && auth_write_atomic("features", path, text, len);
    free(text);
    return ok;
}

bool features_plot(const char *png, const features_opts *o, const auroc_acc *acc, const auroc_stat *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return false;
    size_t n = o->top < 8 ? o->top : 8;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "$d%zu << EOD\n", i);
        auroc_roc(acc, s[i].latent, f);
        fprintf(f, "EOD\n");
    }
    fprintf(f, "set terminal pngcairo size 900,700 font ',10'\nset output out\n"
               "set title 'ROC of the top latents (per %s: %" PRIu64 " positive, %" PRIu64 " negative)'\n"
               "set xlabel 'false-positive rate'\nset ylabel 'recall'\nset key bottom right\n"
               "set xrange [0:1]\nset yrange [0:1]\nplot ",
            o->per_stream ? "stream" : "token", o->n_pos, o->n_neg);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s$d%zu with lines lw 2 title 'latent %" PRIu32 " (AUROC %.4f)'", i ? ", " : "", i, s[i].latent,
                s[i].auroc);
    fprintf(f, "%sx with lines dt 2 lc 'gray' notitle\n", n ? ", " : "");
    bool ok = fclose(f) == 0 && text;
    ok = ok && auth_plot("features", png, text);
    free(text);
    return ok;
}
