/* saemon pack SAE_DIR -o FILE [--rules R.yaml | --latents LIST] [--decoder]:
 * write saemon's native pack file (docs/formats.md "Pack files"). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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

int cmd_pack(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"rules", required_argument, 0, 'r'},
                                         {"latents", required_argument, 0, 'l'}, {"decoder", no_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *output = NULL, *rules_path = NULL, *latents_text = NULL;
    bool decoder = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'r': rules_path = optarg; break;
        case 'l': latents_text = optarg; break;
        case 'd': decoder = true; break;
        case 'h':
            printf("usage: saemon pack SAE_DIR -o FILE [--rules RULES.yaml | --latents LIST] [--decoder]\n"
                   "Writes saemon's native dictionary file: a versioned, checksummed header and\n"
                   "64-byte-aligned fp32 encoder rows, biases and thresholds, opened later as a\n"
                   "read-only shared mapping (no copy; start-up reads the header only).\n"
                   "  --rules FILE    keep only the latents these rules read (a subset pack)\n"
                   "  --latents LIST  keep only these latents, e.g. 3,17,40-47\n"
                   "  --decoder       also store W_dec (whole packs; for reconstruction rules)\n"
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
    saemon_pack_options po = {.subset = lat != NULL, .latents = lat, .n_latents = n, .decoder = decoder};
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
    rc = CLI_OK;
done:
    saemon_dict_close(dict);
    saemon_rules_close(rules);
    free(lat);
    return rc;
}
