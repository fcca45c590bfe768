/* saemon pack SAE_DIR -o FILE [--rules R.yaml | --latents LIST] [--decoder]:
 * write saemon's native pack file (docs/formats.md "Pack files"). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/feature_names.h"

/* "3,17,40-47" into a malloc'd array. */
static bool parse_latents(const char *text, uint32_t **out, size_t *n)
{
    size_t cap = 16, k = 0;
    uint32_t *a = malloc(cap * sizeof *a);
    const char *p = text;
    while (a && *p) {
        char *end;
        errno = 0;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (end == p || errno || lo > UINT32_MAX || *p == '-')
            goto bad;
        p = end;
        if (*p == '-') {
            hi = strtoul(p + 1, &end, 10);
            if (end == p + 1 || errno || hi > UINT32_MAX || hi < lo || hi - lo > (1ul << 26))
                goto bad;
            p = end;
        }
        for (unsigned long v = lo; v <= hi; v++) {
            if (k == cap) {
                uint32_t *b = realloc(a, (cap *= 2) * sizeof *a);
                if (!b)
                    break;
                a = b;
            }
            a[k++] = (uint32_t)v;
        }
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            goto bad;
    }
    if (!a || k == 0)
        goto bad;
    *out = a;
    *n = k;
    return true;
bad:
    fprintf(stderr, "saemon pack: --latents '%s': expected indices and ranges like 3,17,40-47\n", text);
    free(a);
    return false;
}

/* --kernels: "auto" (the variant this CPU chooses), "none", "runnable" (every
 * variant that runs here but the reference), or a comma list of names. */
static bool parse_kernels(const char *text, const char **names, size_t *n)
{
    *n = 0;
    if (!strcmp(text, "none"))
        return true;
    if (!strcmp(text, "auto")) {
        saemon_kernel_info k;
        for (size_t i = 0; saemon_kernel_get(i, &k); i++)
            if (k.chosen)
                names[(*n)++] = k.name;
        return true;
    }
    if (!strcmp(text, "runnable")) {
        saemon_kernel_info k;
        for (size_t i = 0; saemon_kernel_get(i, &k) && *n < 16; i++)
            if (k.runnable && !k.reference)
                names[(*n)++] = k.name;
        return true;
    }
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == 16) {
            fprintf(stderr, "saemon pack: --kernels: at most 16 variants\n");
            return false;
        }
        names[(*n)++] = t;
    }
    return true;
}

int cmd_pack(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"rules", required_argument, 0, 'r'},
                                         {"latents", required_argument, 0, 'l'}, {"decoder", no_argument, 0, 'd'},
                                         {"kernels", required_argument, 0, 'k'}, {"labels", required_argument, 0, 'L'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *output = NULL, *rules_path = NULL, *latents_text = NULL, *kernels_text = NULL, *labels_path = NULL;
    bool decoder = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'r': rules_path = optarg; break;
        case 'l': latents_text = optarg; break;
        case 'd': decoder = true; break;
        case 'k': kernels_text = optarg; break;
        case 'L': labels_path = optarg; break;
        case 'h':
            printf("usage: saemon pack SAE_DIR -o FILE [--rules RULES.yaml | --latents LIST] [--decoder]\n"
                   "                  [--kernels auto|none|runnable|NAME,...] [--labels FILE.json]\n"
                   "Writes saemon's native dictionary file: a versioned, checksummed header and\n"
                   "64-byte-aligned fp32 encoder rows, biases and thresholds, opened later as a\n"
                   "read-only shared mapping (no copy; start-up reads the header only).\n"
                   "  --rules FILE    keep only the latents these rules read (a subset pack)\n"
                   "  --latents LIST  keep only these latents, e.g. 3,17,40-47\n"
                   "  --decoder       also store W_dec (whole packs; for reconstruction rules)\n"
                   "  --kernels K     whole packs: also store these kernel variants' packed form, used\n"
                   "                  in place by --encode all (no packing at load, shared pages);\n"
                   "                  auto (default): the variant this CPU chooses; runnable: every\n"
                   "                  variant that runs here; none. Other variants pack at load.\n"
                   "  --labels FILE   store feature labels (Neuronpedia-style JSON, as feature_labels:);\n"
                   "                  a probe folder's labels.json is stored without it\n"
                   "FILE is written beside itself and renamed into place: a running saemon that\n"
                   "maps the old pack keeps its pages.\n");
            return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind + 1 != argc || !output || (rules_path && latents_text)) {
        fprintf(stderr, "usage: saemon pack SAE_DIR -o FILE [--rules RULES.yaml | --latents LIST] [--decoder]\n");
        return CLI_USAGE;
    }
    const char *dir = argv[optind];
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    uint32_t *lat = NULL;
    size_t n = 0;
    int rc = CLI_FAIL;
    saemon_dict *dict = NULL;
    char **labels = NULL;
    if (latents_text && !parse_latents(latents_text, &lat, &n))
        return CLI_USAGE;
    if (rules_path) {
        if (saemon_rules_open(rules_path, NULL, &rules, &err) != SAEMON_OK) {
            fprintf(stderr, "%s\n", err.message);
            return CLI_FAIL;
        }
        saemon_rules_needs needs;
        n = saemon_rules_needed_latents(rules, NULL, 0, &needs);
        if (needs.out_of_memory || !(lat = malloc((n ? n : 1) * sizeof *lat))) {
            fprintf(stderr, "saemon pack: out of memory\n");
            goto done;
        }
        saemon_rules_needed_latents(rules, lat, n, NULL);
        if (needs.full_reason[0] || needs.full_every || needs.capture_window) {
            fprintf(stderr, "saemon pack: %s needs every latent (%s); pack the whole dictionary\n", rules_path,
                    needs.full_reason[0] ? needs.full_reason
                    : needs.full_every   ? "a health rule with every:"
                                         : "capture on demand");
            goto done;
        }
        if (n == 0) {
            fprintf(stderr, "saemon pack: %s reads no latent; nothing to pack\n", rules_path);
            goto done;
        }
    }
    saemon_dict_load_options lo = {.subset = lat != NULL, .latents = lat, .n_latents = n, .no_decoder = !decoder};
    if (saemon_dict_open_with(dir, &lo, &dict, &err) != SAEMON_OK) {
        rc = cli_fail("pack", &err);
        goto done;
    }
    if (rules && saemon_rules_bind(rules, saemon_dict_get_info(dict), &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    const saemon_dict_info *di = saemon_dict_get_info(dict);
    const char *kernels[16];
    size_t n_kernels = 0;
    if (!parse_kernels(kernels_text ? kernels_text : lat ? "none" : "auto", kernels, &n_kernels))
        goto done;
    char *probe_labels = NULL; /* a probe folder's names, as `saemon features` reads them */
    if (!labels_path && (di->arch == SAEMON_ARCH_PROBE_SIGMOID || di->arch == SAEMON_ARCH_PROBE_IDENTITY) &&
        asprintf(&probe_labels, "%s/labels.json", dir) >= 0 && access(probe_labels, R_OK) == 0)
        labels_path = probe_labels;
    bool labels_ok = !labels_path || feature_names_load("pack", labels_path, di->d_sae, &labels);
    free(probe_labels);
    if (!labels_ok)
        goto done;
    saemon_pack_options po = {.subset = lat != NULL, .latents = lat, .n_latents = n, .decoder = decoder,
                              .kernels = kernels, .n_kernels = n_kernels, .labels = (const char *const *)labels};
    if (saemon_dict_pack(dict, &po, output, &err) != SAEMON_OK) {
        rc = cli_fail("pack", &err);
        goto done;
    }
    const saemon_dict_info *in = saemon_dict_get_info(dict);
    saemon_dict_load_stats ls;
    saemon_dict_get_load_stats(dict, &ls);
    fprintf(stderr, "saemon pack: %s -> %s: %s %zu x %zu, %zu of %zu latents%s, source sha256 %s\n", dir, output,
            saemon_arch_name(in->arch), in->d_in, in->d_sae, ls.latents_loaded, in->d_sae,
            decoder ? ", with W_dec" : "", in->sha256);
    for (size_t k = 0; k < n_kernels; k++)
        fprintf(stderr, "saemon pack: stored the packed form of kernel %s\n", kernels[k]);
    if (labels)
        fprintf(stderr, "saemon pack: stored the feature labels of %s\n", labels_path);
    rc = CLI_OK;
done:
    if (labels)
        feature_names_free(labels, saemon_dict_get_info(dict)->d_sae);
    saemon_dict_close(dict);
    saemon_rules_close(rules);
    free(lat);
    return rc;
}
