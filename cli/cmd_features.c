/* saemon features --sae S (--positive P.npy… --negative N.npy… | --input X.npy --labels L…)
 * Which latents separate the labelled tokens: per-latent frequency, mean and
 * max on each side, exact AUROC, the best threshold; a starter rule file. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/auroc.h"
#include "cli/auth_args.h"
#include "cli/authoring.h"
#include "base/clock.h"
#include "cli/cli.h"
#include "cli/feature_names.h"
#include "cli/features_out.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon features --sae SAE_DIR (--positive P.npy... --negative N.npy... |\n"
               "                       --input X.npy... --labels L...) [options]\n"
               "Ranks the dictionary's latents by how well they separate positive from negative\n"
               "tokens (docs/authoring.md): frequency, mean and max on each side, exact AUROC\n"
               "(Mann-Whitney, ties counted half) and the best `above:` threshold.\n"
               "  --positive FILE      every token of FILE is positive (repeatable)\n"
               "  --negative FILE      every token of FILE is negative (repeatable)\n"
               "  --input FILE         a recording labelled by the matching --labels (repeatable)\n"
               "  --labels L           JSONL spans or a 0/1 .npy mask, one per --input, in order\n"
               "  --per token|stream   compare tokens (default) or each stream's maximum\n"
               "                       (a stream is positive when any of its tokens is)\n"
               "  --top K              rows to print and rules to write (default 20)\n"
               "  --format table|json|csv\n"
               "  --max-fpr F          threshold: most positives with false-positive rate <= F\n"
               "                       (default: Youden's J = recall - fpr)\n"
               "  --rules-out R.yaml   write a starter rule file for the top K latents\n"
               "  --feature-labels F.json  show each latent's explanation (Neuronpedia-style JSON)\n"
               "  --plot F.png         ROC curves of the top latents (gnuplot)\n"
               CLI_ENCODER_USAGE);
}

/* Per-stream maxima of every latent, as one sparse observation. */
typedef struct stream_max {
    float *best;       /* [d_sae] */
    uint32_t *touched; /* latents set in best */
    float *vals;
    size_t n;
    bool positive;
} stream_max;

static void stream_max_flush(stream_max *m, auroc_acc *acc)
{
    for (size_t i = 0; i < m->n; i++) {
        m->vals[i] = m->best[m->touched[i]];
        m->best[m->touched[i]] = 0;
    }
    /* ascending indices are not required by the accumulator */
    auroc_add(acc, m->positive, m->touched, m->vals, m->n);
    m->n = 0;
    m->positive = false;
}

typedef struct run {
    saemon_encoder *enc;
    size_t d_in;
    bool per_stream;
    auroc_acc acc;
    stream_max sm;
    float *buf;
} run;

static bool scan(run *r, const auth_set *set)
{
    const size_t batch = saemon_encoder_get_max_batch(r->enc);
    saemon_error err = {0};
    for (size_t k = 0; k < set->n; k++) {
        auth_recording *rec = &set->rec[k];
        for (size_t row = 0; row < rec->n_rows;) {
            size_t m = rec->n_rows - row < batch ? rec->n_rows - row : batch;
            const float *x = npy_rows_read(&rec->rows, "features", row, m, r->buf);
            const saemon_features *f;
            if (!x)
                return false;
            if (saemon_encoder_encode(r->enc, x, m, &f, &err) != SAEMON_OK)
                return cli_fail("features", &err), false;
            for (size_t t = 0; t < m; t++) {
                size_t a = f->offsets[t], b = f->offsets[t + 1], rr = row + t;
                bool pos = rec->mask && rec->mask[rr];
                if (!r->per_stream) {
                    auroc_add(&r->acc, pos, f->index + a, f->value + a, b - a);
                    continue;
                }
                stream_max *sm = &r->sm;
                sm->positive |= pos;
                for (size_t i = a; i < b; i++) {
                    uint32_t l = f->index[i];
                    if (sm->best[l] == 0 && f->value[i] > 0)
                        sm->touched[sm->n++] = l;
                    if (f->value[i] > sm->best[l])
                        sm->best[l] = f->value[i];
                }
                if ((rr + 1) % rec->tokens_per_stream == 0)
                    stream_max_flush(sm, &r->acc);
            }
            row += m;
        }
    }
    if (r->acc.oom) {
        fprintf(stderr, "saemon features: out of memory keeping the activations (%" PRIu64 " bytes held)\n",
                r->acc.bytes);
        return false;
    }
    return true;
}

int cmd_features(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sae", required_argument, 0, 's'},      {"positive", required_argument, 0, 'p'},
        {"negative", required_argument, 0, 'n'}, {"input", required_argument, 0, 'i'},
        {"labels", required_argument, 0, 'l'},   {"per", required_argument, 0, 'e'},
        {"top", required_argument, 0, 'k'},      {"format", required_argument, 0, 'f'},
        {"max-fpr", required_argument, 0, 'm'},  {"rules-out", required_argument, 0, 'r'},
        {"feature-labels", required_argument, 0, 'L'}, {"plot", required_argument, 0, 'G'},
        CLI_ENCODER_LONG_OPTIONS,                {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *sae = NULL, *rules_out = NULL, *labels_path = NULL, *plot = NULL;
    features_opts fo = {.top = 20, .format = "table", .max_fpr = -1};
    saemon_encoder_options eo = {0};
    auth_files files = {0};
    int c, rc = CLI_USAGE;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sae = optarg; break;
        case 'p': if (!auth_files_push(&files, optarg, AUTH_POSITIVE)) goto out; break;
        case 'n': if (!auth_files_push(&files, optarg, AUTH_NEGATIVE)) goto out; break;
        case 'i': if (!auth_files_push(&files, optarg, AUTH_LABELLED)) goto out; break;
        case 'l': if (!auth_files_push_labels(&files, optarg)) goto out; break;
        case 'e':
            if (strcmp(optarg, "token") && strcmp(optarg, "stream")) {
                fprintf(stderr, "saemon features: --per expects token or stream, got '%s'\n", optarg);
                goto out;
            }
            fo.per_stream = !strcmp(optarg, "stream");
            break;
        case 'k': if (!cli_parse_size("--top", optarg, &fo.top)) goto out; break;
        case 'f':
            if (strcmp(optarg, "table") && strcmp(optarg, "json") && strcmp(optarg, "csv")) {
                fprintf(stderr, "saemon features: --format expects table, json or csv, got '%s'\n", optarg);
                goto out;
            }
            fo.format = optarg;
            break;
        case 'm': if (!auth_parse_fraction("--max-fpr", optarg, true, &fo.max_fpr)) goto out; break;
        case 'r': rules_out = optarg; break;
        case 'L': labels_path = optarg; break;
        case 'G': plot = optarg; break;
        case 'h': usage(stdout); rc = CLI_OK; goto out;
        default:
            if (cli_encoder_option(c, optarg, &eo) != 1) {
                usage(stderr);
                goto out;
            }
        }
    }
    if (!sae || !files.n || optind != argc) {
        usage(stderr);
        goto out;
    }
    rc = CLI_FAIL;
    saemon_error err = {0};
    saemon_dict *dict = NULL;
    auth_set set = {0};
    run r = {.per_stream = fo.per_stream};
    auroc_stat *stats = NULL;
    if (saemon_dict_open(sae, &dict, &err) != SAEMON_OK) {
        cli_fail("features", &err);
        goto out;
    }
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    char *probe_labels = NULL; /* a probe folder's names, written by its scripts as labels.json */
    if (!labels_path && (info->arch == SAEMON_ARCH_PROBE_SIGMOID || info->arch == SAEMON_ARCH_PROBE_IDENTITY) &&
        asprintf(&probe_labels, "%s/labels.json", sae) >= 0 && access(probe_labels, R_OK) == 0)
        labels_path = probe_labels;
    bool labels_ok = !labels_path || feature_names_load("features", labels_path, info->d_sae, &fo.labels);
    if (labels_ok && !labels_path && saemon_dict_get_label_count(dict)) { /* a pack's labels (saemon pack --labels) */
        labels_ok = (fo.labels = calloc(info->d_sae, sizeof *fo.labels)) != NULL;
        for (size_t j = 0; labels_ok && j < info->d_sae; j++) {
            const char *l = saemon_dict_get_feature_label(dict, j);
            labels_ok = !l || (fo.labels[j] = strdup(l));
        }
        if (!labels_ok)
            fprintf(stderr, "saemon features: out of memory for the pack's labels\n");
    }
    free(probe_labels);
    labels_path = NULL;
    if (!labels_ok)
        goto done;
    if (!auth_files_open(&files, "features", info->d_in, info->reshape_hook_z, &set))
        goto done;
    if (!fo.per_stream && !auth_set_check_both(&set, "features"))
        goto done;
    if (saemon_encoder_create(dict, &eo, &r.enc, &err) != SAEMON_OK) {
        cli_fail("features", &err);
        goto done;
    }
    cli_encoder_warn(r.enc);
    r.d_in = info->d_in;
    r.buf = malloc(saemon_encoder_get_max_batch(r.enc) * info->d_in * sizeof *r.buf);
    r.sm.best = calloc(info->d_sae, sizeof *r.sm.best);
    r.sm.touched = malloc(info->d_sae * sizeof *r.sm.touched);
    r.sm.vals = malloc(info->d_sae * sizeof *r.sm.vals);
    stats = malloc(info->d_sae * sizeof *stats);
    if (!r.buf || !r.sm.best || !r.sm.touched || !r.sm.vals || !stats || !auroc_init(&r.acc, info->d_sae)) {
        fprintf(stderr, "saemon features: out of memory\n");
        goto done;
    }
    double t0 = clock_now_s();
    if (!scan(&r, &set))
        goto done;
    if (!r.acc.n_obs[0] || !r.acc.n_obs[1]) {
        fprintf(stderr, "saemon features: %s: need both positive and negative streams (%" PRIu64
                        " positive, %" PRIu64 " negative)\n", fo.per_stream ? "--per stream" : "tokens",
                r.acc.n_obs[1], r.acc.n_obs[0]);
        goto done;
    }
    auroc_compute(&r.acc, fo.max_fpr, stats);
    auroc_rank(stats, info->d_sae);
    fo.n_pos = r.acc.n_obs[1];
    fo.n_neg = r.acc.n_obs[0];
    if (fo.top > info->d_sae)
        fo.top = info->d_sae;
    if (!features_print(stdout, &fo, info, stats))
        goto done;
    if (rules_out && !features_write_rules(rules_out, &fo, info, stats, &set))
        goto done;
    if (plot && !features_plot(plot, &fo, &r.acc, stats))
        goto done;
    fprintf(stderr, "saemon features: %" PRIu64 " tokens in %" PRIu64 " stream(s), %.1f s, %.1f MiB of activations "
                    "kept (kernel %s)\n", set.n_rows, set.n_streams, clock_now_s() - t0,
            (double)r.acc.bytes / 1048576.0, saemon_encoder_get_variant(r.enc));
    rc = CLI_OK;
done:
    feature_names_free(fo.labels, dict ? saemon_dict_get_info(dict)->d_sae : 0);
    free(stats);
    auroc_free(&r.acc);
    free(r.buf);
    free(r.sm.best);
    free(r.sm.touched);
    free(r.sm.vals);
    saemon_encoder_destroy(r.enc);
    auth_set_free(&set);
    saemon_dict_close(dict);
out:
    auth_files_free(&files);
    return rc;
}
