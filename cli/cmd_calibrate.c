/* saemon calibrate R.yaml --sae S --input BENIGN.npy... (--max-rate R | --max-alerts-per-1k N)
 * For each rule's threshold, the least strict value at which the rule fires at
 * most the target rate on the benign recordings, found by replaying them
 * through the real monitor from the strictest threshold toward looser ones. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "cli/auth_args.h"
#include "cli/authoring.h"
#include "cli/calibrate.h"
#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon calibrate RULES.yaml --sae SAE_DIR --input BENIGN.npy...\n"
               "                        (--max-rate R | --max-alerts-per-1k N) [options]\n"
               "Tunes each rule's threshold to the least strict value at which it fires at most\n"
               "the target rate (firing events per benign token) when the recordings are\n"
               "replayed through the monitor (docs/authoring.md).\n"
               "  --input FILE         a recording (repeatable); negative unless --labels mark spans\n"
               "  --labels L           JSONL spans or a 0/1 .npy mask, one per --input, in order:\n"
               "                       firings inside spans do not count against the rate\n"
               "  --positives FILE     every stream of FILE is a positive span (recall; repeatable)\n"
               "  --max-rate R         most firing events per benign token, 0 < R <= 1\n"
               "  --max-alerts-per-1k N  the same per 1000 benign tokens, 0 < N <= 1000\n"
               "  --tune RULE:PATH     the threshold to tune in RULE, e.g. condition.all.0.above\n"
               "                       (default: condition.above/below of a feature leaf)\n"
               "  -o, --output FILE    write the tuned rule file (temporary file + rename)\n"
               "  --threads N          encoder threads (default: the calling thread)\n");
}

int cmd_calibrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sae", required_argument, 0, 's'},       {"input", required_argument, 0, 'i'},
        {"labels", required_argument, 0, 'l'},    {"positives", required_argument, 0, 'p'},
        {"max-rate", required_argument, 0, 'r'},  {"max-alerts-per-1k", required_argument, 0, 'k'},
        {"tune", required_argument, 0, 't'},      {"output", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 'T'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    calib_opts co = {0};
    auth_files files = {0};
    char **tune = NULL;
    size_t n_tune = 0;
    int c, rc = CLI_USAGE;
    bool have_rate = false;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 's': co.sae = optarg; break;
        case 'i': if (!auth_files_push(&files, optarg, AUTH_LABELLED)) goto out; break;
        case 'p': if (!auth_files_push(&files, optarg, AUTH_POSITIVE)) goto out; break;
        case 'l': if (!auth_files_push_labels(&files, optarg)) goto out; break;
        case 'r':
            if (have_rate || !auth_parse_fraction("--max-rate", optarg, false, &co.max_rate))
                goto rate;
            have_rate = true;
            break;
        case 'k': {
            double v;
            char *end;
            v = strtod(optarg, &end);
            if (have_rate || *end || end == optarg || !(v > 0) || v > 1000)
                goto rate;
            co.max_rate = v / 1000.0;
            have_rate = true;
            break;
        }
        case 't': {
            char **g = realloc(tune, (n_tune + 1) * sizeof *g);
            if (!g || !strchr(optarg, ':')) {
                free(g ? g : tune);
                tune = NULL;
                fprintf(stderr, "saemon calibrate: --tune expects RULE:PATH, got '%s'\n", optarg);
                goto out;
            }
            tune = g;
            tune[n_tune++] = optarg;
            break;
        }
        case 'o': co.output = optarg; break;
        case 'T': if (!cli_parse_size("--threads", optarg, &co.threads)) goto out; break;
        case 'h': usage(stdout); rc = CLI_OK; goto out;
        default: usage(stderr); goto out;
        }
    }
    if (optind + 1 != argc || !co.sae || !files.n) {
        usage(stderr);
        goto out;
    }
    if (!have_rate) {
    rate:
        fprintf(stderr, "saemon calibrate: give one target: --max-rate R (0 < R <= 1 per token) or "
                        "--max-alerts-per-1k N (0 < N <= 1000)\n");
        goto out;
    }
    co.rules_path = argv[optind];
    co.tune = tune;
    co.n_tune = n_tune;
    rc = calibrate_run(&co, &files);
out:
    free(tune);
    auth_files_free(&files);
    return rc;
}
