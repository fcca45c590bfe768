/* saemon inspect SAE_DIR — what was loaded; saemon inspect --kernels — what runs here. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

static void print_kernels(void)
{
    const char *cpu = saemon_cpu_features_string();
    printf("cpu features  %s\n", *cpu ? cpu : "(baseline only)");
    saemon_kernel_info k;
    for (size_t i = 0; saemon_kernel_get(i, &k); i++)
        printf("  %-28s family %-9s %s\n", k.name, k.family, k.reason);
}

static int print_topology(size_t threads, const char *cpus, const char *exclude)
{
    saemon_error err = {0};
    saemon_topology *topo = NULL;
    if (saemon_topology_create(&topo, &err) != SAEMON_OK)
        return cli_fail("inspect", &err);
    saemon_topology_print(topo, stdout);
    unsigned pus[256];
    char warning[256];
    size_t n = saemon_topology_choose(topo, cpus, exclude, threads, pus, 256, warning, sizeof warning, &err);
    int rc = CLI_OK;
    if (n == 0) {
        rc = cli_fail("inspect", &err);
    } else {
        printf("placement      %zu worker thread(s) on CPU", n);
        for (size_t i = 0; i < n; i++)
            printf("%s%u", i ? "," : " ", pus[i]);
        printf(" (slice 0 on the submitting thread)\n");
        if (warning[0])
            printf("warning        %s\n", warning);
    }
    saemon_topology_destroy(topo);
    return rc;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kernels", no_argument, 0, 'k'},      {"isa", required_argument, 0, 'i'},
        {"topology", no_argument, 0, 't'},     {"threads", required_argument, 0, 'n'},
        {"cpus", required_argument, 0, 'c'},   {"exclude-cpus", required_argument, 0, 'x'},
        {"rules", required_argument, 0, 'r'},  CLI_PLAN_LONG_OPTION,
        {"verify", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *isa = NULL, *cpus = NULL, *exclude = NULL, *rules_path = NULL;
    cli_plan plan = {.mode = SAEMON_ENCODE_AUTO};
    size_t threads = 0;
    int kernels = 0, topology = 0, verify = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': kernels = 1; break;
        case 'i': isa = optarg; break;
        case 't': topology = 1; break;
        case 'n': if (!cli_parse_size("--threads", optarg, &threads)) return CLI_USAGE; break;
        case 'c': cpus = optarg; break;
        case 'x': exclude = optarg; break;
        case 'r': rules_path = optarg; break;
        case 'v': verify = 1; break;
        case 'N': if (!cli_parse_encode_mode(optarg, &plan.mode)) return CLI_USAGE; break;
        case 'h':
            printf("usage: saemon inspect SAE_DIR [--isa VARIANT] [--rules RULES.yaml [--encode MODE]]\n"
                   "       saemon inspect PACK [--verify]\n"
                   "       saemon inspect --kernels\n"
                   "       saemon inspect --topology [--threads N] [--cpus LIST] [--exclude-cpus LIST]\n"
                   "Prints the dictionary's format, architecture, shapes, dtypes, hook, model,\n"
                   "normalisation, file sizes, SHA-256 and the kernel variant chosen for it.\n"
                   "With --rules: the encoder plan those rules get (which latents, why).\n"
                   "A pack (saemon pack): its header, sections and latents; --verify also\n"
                   "checks the SHA-256 of its data (reads the whole file).\n" CLI_PLAN_USAGE);
            return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (kernels) {
        print_kernels();
        return CLI_OK;
    }
    if (topology)
        return print_topology(threads, cpus, exclude);
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: saemon inspect SAE_DIR [--isa VARIANT] | --kernels | --topology\n");
        return CLI_USAGE;
    }
    saemon_error err = {0};
    if (saemon_is_pack(argv[optind]) && !rules_path && !isa) {
        if (saemon_pack_print(argv[optind], stdout, &err) != SAEMON_OK)
            return cli_fail("inspect", &err);
        if (verify) {
            if (saemon_pack_verify(argv[optind], &err) != SAEMON_OK)
                return cli_fail("inspect", &err);
            printf("verify         data sha256 ok\n");
        }
        return CLI_OK;
    }
    if (verify) {
        fprintf(stderr, "saemon inspect: --verify checks a pack (saemon pack); %s is not one\n", argv[optind]);
        return CLI_USAGE;
    }
    saemon_dict *dict = NULL;
    if (saemon_dict_open(argv[optind], &dict, &err) != SAEMON_OK)
        return cli_fail("inspect", &err);
    saemon_encoder *enc = NULL;
    saemon_ruleset *rules = NULL;
    saemon_encoder_options eo = {.variant = isa, .max_batch = 1};
    int rc = CLI_FAIL;
    if (rules_path) {
        if (saemon_rules_open(rules_path, NULL, &rules, &err) != SAEMON_OK ||
            saemon_rules_bind(rules, saemon_dict_get_info(dict), &err) != SAEMON_OK) {
            fprintf(stderr, "%s\n", err.message);
            goto done;
        }
        if (!cli_plan_apply(&plan, rules, &eo))
            goto done;
    }
    if (saemon_encoder_create(dict, &eo, &enc, &err) != SAEMON_OK) {
        rc = cli_fail("inspect", &err);
        goto done;
    }
    cli_print_dict(stdout, saemon_dict_get_info(dict), enc);
    if (rules_path)
        printf("encoder plan   %s\n", saemon_encoder_get_plan(enc));
    rc = CLI_OK;
done:
    saemon_encoder_destroy(enc);
    saemon_rules_close(rules);
    saemon_dict_close(dict);
    cli_plan_free(&plan);
    return rc;
}
