/* saemon backtest R.yaml [R2.yaml] --sae S --input X.npy... --labels L...
 * Replays labelled recordings through the monitor and scores every rule's
 * firings against the spans; with two files, an A/B table. Exit 1 when a
 * --min-precision / --min-recall gate fails. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "cli/auth_args.h"
#include "cli/authoring.h"
#include "cli/cli.h"
#include "cli/plot.h"

#define RULES_MAX_BYTES ((size_t)64 << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon backtest RULES.yaml [RULES_B.yaml] --sae SAE_DIR --input X.npy... --labels L...\n"
               "                       [options]\n"
               "Replays the recordings through the monitor and compares each rule's firings with\n"
               "the labelled spans (docs/authoring.md): true/false positives, missed spans,\n"
               "precision, recall, F1, alerts per 1000 tokens, detection delay p50/p90.\n"
               "  --input FILE         a recording (repeatable)\n"
               "  --labels L           JSONL spans or a 0/1 .npy mask, one per --input, in order\n"
               "  --positives FILE     every stream of FILE is one positive span (repeatable)\n"
               "  --negatives FILE     a recording without positives (repeatable)\n"
               "  --format table|json\n"
               "  --per-stream         also the counts of every stream\n"
               "  --min-precision P    exit 1 when a rule of the last file has precision < P\n"
               "  --min-recall R       exit 1 when a rule of the last file has recall < R\n"
               "  --sae-b DIR          the dictionary (or probe) of RULES_B.yaml, when not SAE_DIR\n"
               "  --plot F.png         precision and recall of every rule (gnuplot)\n"
               "  --threads N          encoder threads (default: the calling thread)\n");
}

typedef struct bt_file {
    const char *path;
    auth_tunable *names;   /* enabled rules in file order (only .rule is used) */
    size_t n;
    auth_scores sc;
} bt_file;

typedef struct bt_metrics {
    double precision, recall, f1, per1k;
    uint64_t misses, p50, p90;
} bt_metrics;

static bt_metrics metrics(const auth_set *set, auth_rule_score *r)
{
    bt_metrics m;
    m.precision = r->firings ? (double)r->tp / (double)r->firings : NAN;
    m.recall = set->n_spans ? (double)r->spans_hit / (double)set->n_spans : NAN;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : NAN;
    if (r->firings && set->n_spans && r->tp == 0)
        m.f1 = 0;
    m.per1k = set->n_rows ? 1000.0 * (double)r->firings / (double)set->n_rows : 0;
    m.misses = set->n_spans - r->spans_hit;
    m.p50 = auth_delay_percentile(r, 50);
    m.p90 = auth_delay_percentile(r, 90);
    return m;
}

static void jnum(double v)
{
    if (isnan(v))
        fputs("null", stdout);
    else
        printf("%.17g", v);
}

static void print_json(const auth_set *set, bt_file *f, size_t nf, bool per_stream)
{
    printf("{\"tokens\":%" PRIu64 ",\"streams\":%" PRIu64 ",\"spans\":%zu,\"files\":[", set->n_rows,
           set->n_streams, set->n_spans);
    for (size_t k = 0; k < nf; k++) {
        printf("%s{\"rules_file\":\"", k ? "," : "");
        for (const char *p = f[k].path; *p; p++)
            printf((*p == '"' || *p == '\\') ? "\\%c" : ((unsigned char)*p < 0x20 ? "?" : "%c"), *p);
        printf("\",\"rules\":[");
        for (size_t i = 0; i < f[k].sc.n_rules; i++) {
            auth_rule_score *r = &f[k].sc.rule[i];
            bt_metrics m = metrics(set, r);
            printf("%s{\"name\":\"%s\",\"firings\":%" PRIu64 ",\"tp\":%" PRIu64 ",\"fp\":%" PRIu64
                   ",\"spans_detected\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"precision\":",
                   i ? "," : "", r->name, r->firings, r->tp, r->fp, r->spans_hit, m.misses);
            jnum(m.precision);
            fputs(",\"recall\":", stdout);
            jnum(m.recall);
            fputs(",\"f1\":", stdout);
            jnum(m.f1);
            printf(",\"alerts_per_1k\":%.9g,\"firing_tokens\":%" PRIu64, m.per1k, r->firing_tokens);
            if (r->n_delays)
                printf(",\"delay_p50\":%" PRIu64 ",\"delay_p90\":%" PRIu64, m.p50, m.p90);
            else
                fputs(",\"delay_p50\":null,\"delay_p90\":null", stdout);
            if (per_stream) {
                fputs(",\"streams\":[", stdout);
                for (uint64_t s = 0; s < set->n_streams; s++) {
                    const uint64_t *ps = r->per_stream + s * 4;
                    printf("%s{\"stream\":%" PRIu64 ",\"firings\":%" PRIu64 ",\"tp\":%" PRIu64 ",\"fp\":%" PRIu64
                           ",\"spans\":%" PRIu64 ",\"spans_detected\":%" PRIu64 "}", s ? "," : "", s, ps[0], ps[1],
                           ps[0] - ps[1], ps[3], ps[2]);
                }
                fputc(']', stdout);
            }
            fputc('}', stdout);
        }
        fputs("]}", stdout);
    }
    puts("]}");
}

static void cell(double v, const char *fmt)
{
    if (isnan(v))
        printf(" %9s", "-");
    else
        printf(fmt, v);
}

static void print_table(const auth_set *set, bt_file *f, size_t nf, bool per_stream)
{
    printf("%" PRIu64 " tokens in %" PRIu64 " stream(s), %zu labelled span(s)\n", set->n_rows, set->n_streams,
           set->n_spans);
    printf("%-4s %-24s %8s %8s %8s %8s %9s %9s %9s %9s %6s %6s\n", nf > 1 ? "file" : "", "rule", "firings", "tp",
           "fp", "misses", "precision", "recall", "f1", "per-1k", "d-p50", "d-p90");
    for (size_t k = 0; k < nf; k++)
        for (size_t i = 0; i < f[k].sc.n_rules; i++) {
            auth_rule_score *r = &f[k].sc.rule[i];
            bt_metrics m = metrics(set, r);
            printf("%-4s %-24s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64, nf > 1 ? (k ? "B" : "A") : "",
                   r->name, r->firings, r->tp, r->fp, m.misses);
            cell(m.precision, " %9.4f");
            cell(m.recall, " %9.4f");
            cell(m.f1, " %9.4f");
            printf(" %9.4g", m.per1k);
            if (r->n_delays)
                printf(" %6" PRIu64 " %6" PRIu64 "\n", m.p50, m.p90);
            else
                printf(" %6s %6s\n", "-", "-");
        }
    size_t common = 0;
    for (size_t i = 0; nf == 2 && i < f[1].sc.n_rules; i++)
        for (size_t j = 0; j < f[0].sc.n_rules; j++)
            common += !strcmp(f[1].sc.rule[i].name, f[0].sc.rule[j].name);
    if (nf == 2 && !common)
        printf("\nA/B: no rule name in both files\n");
    if (nf == 2 && common) {
        printf("\nA/B (B - A) for rules in both files:\n%-24s %9s %9s %9s %9s\n", "rule", "precision", "recall",
               "f1", "per-1k");
        for (size_t i = 0; i < f[1].sc.n_rules; i++)
            for (size_t j = 0; j < f[0].sc.n_rules; j++) {
                if (strcmp(f[1].sc.rule[i].name, f[0].sc.rule[j].name))
                    continue;
                bt_metrics b = metrics(set, &f[1].sc.rule[i]), a = metrics(set, &f[0].sc.rule[j]);
                printf("%-24s", f[1].sc.rule[i].name);
                cell(b.precision - a.precision, " %+9.4f");
                cell(b.recall - a.recall, " %+9.4f");
                cell(b.f1 - a.f1, " %+9.4f");
                printf(" %+9.4g\n", b.per1k - a.per1k);
            }
    }
    if (per_stream)
        for (size_t k = 0; k < nf; k++)
            for (size_t i = 0; i < f[k].sc.n_rules; i++) {
                auth_rule_score *r = &f[k].sc.rule[i];
                printf("\n%s%s per stream: stream firings tp fp spans detected\n", nf > 1 ? (k ? "B " : "A ") : "",
                       r->name);
                for (uint64_t s = 0; s < set->n_streams; s++) {
                    const uint64_t *ps = r->per_stream + s * 4;
                    if (ps[0] || ps[3])
                        printf("  %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s,
                               ps[0], ps[1], ps[0] - ps[1], ps[3], ps[2]);
                }
            }
}

/* --plot: precision and recall of every rule (A/B side by side). */
static bool plot(const char *png, const auth_set *set, bt_file *f, size_t nf)
{
    char *text = NULL;
    size_t len = 0;
    FILE *g = open_memstream(&text, &len);
    if (!g)
        return false;
    fprintf(g, "$d << EOD\n");
    for (size_t k = 0; k < nf; k++)
        for (size_t i = 0; i < f[k].sc.n_rules; i++) {
            bt_metrics m = metrics(set, &f[k].sc.rule[i]);
            fprintf(g, "\"%s%s\" %.6g %.6g\n", nf > 1 ? (k ? "B:" : "A:") : "", f[k].sc.rule[i].name,
                    isnan(m.precision) ? 0.0 : m.precision, isnan(m.recall) ? 0.0 : m.recall);
        }
    fprintf(g, "EOD\nset terminal pngcairo size 1000,600 font ',10'\nset output out\n"
               "set title 'backtest: %" PRIu64 " tokens, %zu labelled span(s)'\nset style data histograms\n"
               "set style fill solid 0.8 border -1\nset yrange [0:1.05]\nset xtics rotate by -30\n"
               "set key top right\nplot $d using 2:xtic(1) title 'precision', '' using 3 title 'recall'\n",
            set->n_rows, set->n_spans);
    bool ok = fclose(g) == 0 && text;
    ok = ok && auth_plot("backtest", png, text);
    free(text);
    return ok;
}

static bool run_file(bt_file *f, const char *sae, const auth_files *files, size_t threads, bool per_stream,
                     auth_set *set)
{
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    saemon_dict *dict = NULL;
    saemon_encoder *enc = NULL;
    auth_encoded e = {0};
    char *text = NULL, **names = NULL;
    size_t len = 0;
    bool ok = false;
    if (read_whole_file(f->path, RULES_MAX_BYTES, "rule file", &text, &len, &err) != SAEMON_OK ||
        saemon_rules_open(f->path, NULL, &rules, &err) != SAEMON_OK) {
        fprintf(stderr, "saemon backtest: %s\n", err.message);
        goto done;
    }
    if (!auth_find_tunables("backtest", f->path, text, len, NULL, 0, &f->names, &f->n) ||
        !auth_open_encoder("backtest", sae, rules, threads, &dict, &enc))
        goto done;
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    if (!set->n && !auth_files_open(files, "backtest", info->d_in, info->reshape_hook_z, set))
        goto done;
    if (set->n && set->rec[0].rows.d_in != info->d_in) {
        fprintf(stderr, "saemon backtest: %s: d_in %zu differs from the recordings' %zu\n", sae, info->d_in,
                set->rec[0].rows.d_in);
        goto done;
    }
    names = malloc((f->n ? f->n : 1) * sizeof *names);
    if (!names)
        goto done;
    for (size_t i = 0; i < f->n; i++)
        names[i] = f->names[i].rule;
    ok = auth_encode_set("backtest", enc, info->d_in, set, &e) &&
         auth_score_rules("backtest", rules, info, &e, set, names, f->n, per_stream, &f->sc);
done:
    free(names);
    free(text);
    auth_encoded_free(&e);
    saemon_encoder_destroy(enc);
    saemon_dict_close(dict);
    saemon_rules_close(rules);
    return ok;
}

int cmd_backtest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sae", required_argument, 0, 's'},       {"input", required_argument, 0, 'i'},
        {"labels", required_argument, 0, 'l'},    {"positives", required_argument, 0, 'p'},
        {"negatives", required_argument, 0, 'n'}, {"format", required_argument, 0, 'f'},
        {"per-stream", no_argument, 0, 'S'},      {"min-precision", required_argument, 0, 'P'},
        {"min-recall", required_argument, 0, 'R'}, {"threads", required_argument, 0, 'T'},
        {"sae-b", required_argument, 0, 'B'},     {"plot", required_argument, 0, 'G'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *sae = NULL, *sae_b = NULL, *png = NULL;
    bool json = false, per_stream = false;
    double min_p = -1, min_r = -1;
    size_t threads = 0;
    auth_files files = {0};
    auth_set set = {0};
    bt_file f[2] = {{0}};
    size_t nf = 0;
    int c, rc = CLI_USAGE;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sae = optarg; break;
        case 'B': sae_b = optarg; break;
        case 'G': png = optarg; break;
        case 'i': if (!auth_files_push(&files, optarg, AUTH_LABELLED)) goto out; break;
        case 'p': if (!auth_files_push(&files, optarg, AUTH_POSITIVE)) goto out; break;
        case 'n': if (!auth_files_push(&files, optarg, AUTH_NEGATIVE)) goto out; break;
        case 'l': if (!auth_files_push_labels(&files, optarg)) goto out; break;
        case 'f':
            if (strcmp(optarg, "table") && strcmp(optarg, "json")) {
                fprintf(stderr, "saemon backtest: --format expects table or json, got '%s'\n", optarg);
                goto out;
            }
            json = !strcmp(optarg, "json");
            break;
        case 'S': per_stream = true; break;
        case 'P': if (!auth_parse_fraction("--min-precision", optarg, true, &min_p)) goto out; break;
        case 'R': if (!auth_parse_fraction("--min-recall", optarg, true, &min_r)) goto out; break;
        case 'T': if (!cli_parse_size("--threads", optarg, &threads)) goto out; break;
        case 'h': usage(stdout); rc = CLI_OK; goto out;
        default: usage(stderr); goto out;
        }
    }
    nf = (size_t)(argc - optind);
    if (nf < 1 || nf > 2 || !sae || !files.n || (sae_b && nf != 2)) {
        usage(stderr);
        goto out;
    }
    rc = CLI_FAIL;
    for (size_t k = 0; k < nf; k++) {
        f[k].path = argv[optind + k];
        if (!run_file(&f[k], k && sae_b ? sae_b : sae, &files, threads, per_stream, &set))
            goto done;
    }
    if (!set.n_spans && (min_r >= 0 || min_p >= 0)) {
        fprintf(stderr, "saemon backtest: the recordings hold no labelled span: --min-precision/--min-recall "
                        "cannot be checked\n");
        goto done;
    }
    if (json)
        print_json(&set, f, nf, per_stream);
    else
        print_table(&set, f, nf, per_stream);
    rc = CLI_OK;
    if (png && !plot(png, &set, f, nf))
        rc = CLI_FAIL;
    bt_file *last = &f[nf - 1];
    for (size_t i = 0; i < last->sc.n_rules; i++) {
        bt_metrics m = metrics(&set, &last->sc.rule[i]);
        if (min_p >= 0 && !(m.precision >= min_p)) {
            fprintf(stderr, "saemon backtest: %s: rule %s: precision %.4f is below --min-precision %.4g%s\n",
                    last->path, last->sc.rule[i].name, isnan(m.precision) ? 0.0 : m.precision, min_p,
                    isnan(m.precision) ? " (it never fired)" : "");
            rc = CLI_FAIL;
        }
        if (min_r >= 0 && !(m.recall >= min_r)) {
            fprintf(stderr, "saemon backtest: %s: rule %s: recall %.4f is below --min-recall %.4g\n", last->path,
                    last->sc.rule[i].name, m.recall, min_r);
            rc = CLI_FAIL;
        }
    }
done:
    for (size_t k = 0; k < nf && k < 2; k++) {
        auth_scores_free(&f[k].sc);
        auth_tunables_free(f[k].names, f[k].n);
    }
    auth_set_free(&set);
out:
    auth_files_free(&files);
    return rc;
}
