/* saemon demo — a self-contained run: the built-in toy model of superposition
 * produces activations with planted features, a matching dictionary is built
 * in memory, and the shipped rule file (monitors/examples/demo.yaml, embedded)
 * raises alerts as the planted alarm appears. Needs no files. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "demo_rules.h" /* generated: demo_rules_yaml[] */
#include "cli/cli.h"
#include "cli/toy_model.h"

#define CHUNK 64

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon demo [--tokens N] [--seed S] [--rules RULES.yaml] [--rate TOKENS_PER_SEC]\n"
               "                   [sink options] [encoder options]\n"
               "Runs the built-in toy model (128-d activations, 256 sparse features in\n"
               "superposition, a planted alarm feature) through the encoder and the shipped\n"
               "demo rules; prints the alerts as they fire and a summary.\n"
               "  --tokens N           tokens to generate (default 20000; 0 = until SIGINT/SIGTERM)\n"
               CLI_LIVE_USAGE CLI_SINK_USAGE CLI_ENCODER_USAGE CLI_PLAN_USAGE);
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tokens", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
        {"rules", required_argument, 0, 'r'},  {"rate", required_argument, 0, 'L'},
        CLI_ENCODER_LONG_OPTIONS, CLI_PLAN_LONG_OPTION, CLI_SINK_LONG_OPTIONS, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    size_t n_tokens = 20000, seed = 2024;
    const char *rules_path = NULL;
    cli_live_flags fl = CLI_LIVE_FLAGS_INIT;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': /* 0: run until stopped */
            if (strcmp(optarg, "0") != 0 && !cli_parse_size("--tokens", optarg, &n_tokens))
                return CLI_USAGE;
            if (strcmp(optarg, "0") == 0)
                n_tokens = 0;
            break;
        case 's': if (!cli_parse_size("--seed", optarg, &seed)) return CLI_USAGE; break;
        case 'r': rules_path = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default:
            if (!cli_live_option(c, optarg, &fl, usage))
                return CLI_USAGE;
            break;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    int rc = CLI_FAIL;
    saemon_error err = {0};
    toy_model *toy = toy_create(seed);
    saemon_dict *dict = NULL;
    saemon_encoder *enc = NULL;
    saemon_ruleset *rules = NULL;
    saemon_monitor *mon = NULL;
    saemon_sinks *sinks = NULL;
    if (!toy) {
        fprintf(stderr, "saemon demo: out of memory\n");
        return CLI_FAIL;
    }
    if (toy_dictionary(toy, &dict, &err) != SAEMON_OK) {
        cli_fail("demo", &err);
        goto done;
    }
    saemon_status st = rules_path ? saemon_rules_open(rules_path, NULL, &rules, &err)
                                  : saemon_rules_from_string(demo_rules_yaml, strlen(demo_rules_yaml),
                                                             "monitors/examples/demo.yaml", NULL, &rules, &err);
    const saemon_dict_info *info = saemon_dict_get_info(dict);
    if (st != SAEMON_OK || saemon_rules_bind(rules, info, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    if (saemon_monitor_create(rules, info, &(saemon_monitor_options){.resolved = fl.sf.resolved}, &mon, &err) != SAEMON_OK) {
        cli_fail("demo", &err);
        goto done;
    }
    fl.eo.max_batch = CHUNK;
    if (!cli_plan_apply(&fl.plan, rules, &fl.eo))
        goto done;
    if (saemon_encoder_create(dict, &fl.eo, &enc, &err) != SAEMON_OK) {
        cli_fail("demo", &err);
        goto done;
    }
    cli_encoder_warn(enc);
    cli_plan_log("demo", enc);
    if (n_tokens)
        printf("saemon demo: toy model of superposition, %zu tokens, seed %zu\n", n_tokens, seed);
    else
        printf("saemon demo: toy model of superposition, until stopped, seed %zu\n", seed);
    cli_print_dict(stdout, info, enc);
    printf("rules          %s (%zu rules, %zu enabled)\n\n", rules_path ? rules_path : "monitors/examples/demo.yaml (embedded)",
           saemon_rules_get_count(rules), saemon_rules_get_enabled_count(rules));
    fflush(stdout);
    if (!(sinks = cli_sinks_open("demo", &fl.sf, "demo")))
        goto done;
    /* a recording or a generator: slow down rather than lose an alert */
    saemon_sinks_set_backpressure(sinks, true);

    float x[CHUNK * TOY_D_IN];
    toy_truth truth[CHUNK];
    uint64_t alarm_tokens = 0, long_bursts = 0, pairs = 0;
    cli_replay rp = {.encoder = enc, .monitor = mon, .d_in = TOY_D_IN, .tokens_per_stream = UINT64_MAX,
                     .on_alert = saemon_sinks_alert, .alert_user = sinks};
    cli_live live = {.what = "demo", .rules_path = rules_path, .dict = info, .can_reconstruct = fl.eo.reconstruction,
                     .encoder = enc, .plan = &fl.plan,
                     .monitor = mon, .rules = &rules, .on_alert = saemon_sinks_alert, .alert_user = sinks,
                     .rate = fl.rate};
    cli_live_start(&live);
    for (size_t done_tokens = 0; (n_tokens == 0 || done_tokens < n_tokens) && !cli_live_stopping();) {
        size_t m = n_tokens && n_tokens - done_tokens < CHUNK ? n_tokens - done_tokens : CHUNK;
        toy_generate(toy, x, m, truth);
        for (size_t t = 0; t < m; t++) {
            alarm_tokens += truth[t].alarm;
            pairs += truth[t].pair;
            long_bursts += truth[t].burst_start && truth[t].burst_len >= 3;
        }
        if (!cli_live_replay_batch(&live, &rp, x, done_tokens, m))
            goto done;
        done_tokens += m;
    }
    cli_run_summary sum;
    int closed = cli_live_finish(&live, &rp, &sinks, &sum);
    if (closed == CLI_FAIL)
        goto done;
    printf("\nsummary: %" PRIu64 " tokens, %" PRIu64 " alerts, mean %s %.2f features/token, %.0f tokens/s\n",
           sum.tokens, sum.alerts, sum.mean_what, sum.mean_active, sum.tokens_per_s);
    printf("planted: %" PRIu64 " alarm tokens (%" PRIu64 " bursts of >= 3 tokens), %" PRIu64 " feature pairs\n",
           alarm_tokens, long_bursts, pairs);
    rc = closed; /* CLI_OK, or CLI_DELIVERY when alerts failed delivery */
done:
    if (sinks)
        cli_sinks_close("demo", sinks, NULL);
    saemon_monitor_destroy(mon);
    saemon_rules_close(rules);
    saemon_encoder_destroy(enc);
    saemon_dict_close(dict);
    toy_destroy(toy);
    cli_plan_free(&fl.plan);
    return rc;
}
