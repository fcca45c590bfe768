/* saemon encode --sae DIR --input ACTS.npy [--output F.npy] [--sparse F.jsonl]
 * Dense float32 [n, d_sae] features for checking against another implementation. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon encode --sae SAE_DIR --input ACTS.npy [--output FEATURES.npy]\n"
               "                     [--sparse FEATURES.jsonl] [encoder options]\n"
               "Writes the encoded features as a dense float32 .npy of shape [n, d_sae] and/or one\n"
               "JSON line per token: {\"stream\":S,\"token\":T,\"index\":[...],\"value\":[...]}, with\n"
               "\"input_nonfinite\":true when the input row held a NaN or an infinity; a non-finite\n"
               "value is written as the string \"+Inf\", \"-Inf\" or \"NaN\" (as Prometheus does).\n" CLI_ENCODER_USAGE);
}

int cmd_encode(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sae", required_argument, 0, 's'},    {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'}, {"sparse", required_argument, 0, 'p'},
        CLI_ENCODER_LONG_OPTIONS, {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *sae = NULL, *input = NULL, *output = NULL, *sparse = NULL;
    saemon_encoder_options eo = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sae = optarg; break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'p': sparse = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: {
            int r = cli_encoder_option(c, optarg, &eo);
            if (r == 1)
                break;
            if (r == 0)
                usage(stderr);
            return CLI_USAGE;
        }
        }
    }
    if (!sae || !input || (!output && !sparse) || optind != argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    cli_session s;
    if (!cli_session_open(&s, "encode", sae, input, &eo))
        return CLI_FAIL;
    const size_t d_in = saemon_dict_get_info(s.dict)->d_in, d_sae = saemon_dict_get_info(s.dict)->d_sae;
    int rc = CLI_FAIL;
    float *dense = NULL;
    FILE *sp = NULL;
    saemon_error err = {0};
    if (output) {
        size_t cells;
        if (__builtin_mul_overflow(s.n_rows, d_sae, &cells) || !(dense = calloc(cells ? cells : 1, sizeof(float)))) {
            fprintf(stderr, "saemon encode: a dense [%zu, %zu] output does not fit in memory; use --sparse\n",
                    s.n_rows, d_sae);
            goto done;
        }
    }
    if (sparse && !(sp = fopen(sparse, "w"))) {
        fprintf(stderr, "saemon encode: cannot create %s: %s\n", sparse, strerror(errno));
        goto done;
    }
    const size_t batch_rows = saemon_encoder_get_max_batch(s.encoder);
    for (size_t done = 0; done < s.n_rows;) {
        size_t m = s.n_rows - done < batch_rows ? s.n_rows - done : batch_rows;
        const saemon_features *f;
        if (saemon_encoder_encode(s.encoder, s.input.data + done * d_in, m, &f, &err) != SAEMON_OK) {
            cli_fail("encode", &err);
            goto done;
        }
        for (size_t t = 0; t < m; t++) {
            size_t lo = f->offsets[t], hi = f->offsets[t + 1], row = done + t;
            if (dense)
                for (size_t e = lo; e < hi; e++)
                    dense[row * d_sae + f->index[e]] = f->value[e];
            if (sp && !cli_write_sparse_line(sp, NULL, NULL, row / s.tokens_per_stream, row % s.tokens_per_stream,
                                             f->index + lo, f->value + lo, hi - lo, f->input_nonfinite[t] != 0)) {
                fprintf(stderr, "saemon encode: writing %s failed: %s\n", sparse, strerror(errno));
                goto done;
            }
        }
        done += m;
    }
    if (sp) {
        int bad = fflush(sp) != 0 || fsync(fileno(sp)) != 0;
        bad |= fclose(sp) != 0;
        sp = NULL;
        if (bad) {
            fprintf(stderr, "saemon encode: writing %s failed: %s\n", sparse, strerror(errno));
            goto done;
        }
    }
    if (dense) {
        size_t shape[2] = {s.n_rows, d_sae};
        if (saemon_npy_write_f32(output, dense, 2, shape, &err) != SAEMON_OK) {
            cli_fail("encode", &err);
            goto done;
        }
    }
    fprintf(stderr, "saemon encode: %zu tokens, d_sae %zu, kernel %s\n", s.n_rows, d_sae,
            saemon_encoder_get_variant(s.encoder));
    rc = CLI_OK;
done:
    if (sp)
        fclose(sp);
    free(dense);
    cli_session_close(&s);
    return rc;
}
