/* saemon run --sae DIR --rules RULES.yaml --input ACTS.npy [sink options]
 * Replays a recording through the encoder and the rules, one JSON line per alert. */
#include <getopt.h>
#include <inttypes.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon run --sae SAE_DIR --rules RULES.yaml --input ACTS.npy\n"
               "                  [--rate TOKENS_PER_SEC] [sink options] [encoder options]\n"
               "Encodes every row of ACTS.npy ([n, d_in] or [batch, seq, d_in]: one stream per\n"
               "sequence), evaluates the rules per token and writes one JSON line per alert to\n"
               "stdout, or to the sinks given.\n" CLI_LIVE_USAGE CLI_SINK_USAGE CLI_ENCODER_USAGE CLI_PLAN_USAGE);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sae", required_argument, 0, 's'},    {"rules", required_argument, 0, 'r'},
        {"input", required_argument, 0, 'i'},  {"rate", required_argument, 0, 'L'},
        CLI_ENCODER_LONG_OPTIONS, CLI_PLAN_LONG_OPTION, CLI_SINK_LONG_OPTIONS, {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *sae = NULL, *rules_path = NULL, *input = NULL;
    cli_live_flags fl = CLI_LIVE_FLAGS_INIT;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sae = optarg; break;
        case 'r': rules_path = optarg; break;
        case 'i': input = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default:
            if (!cli_live_option(c, optarg, &fl, usage))
                return CLI_USAGE;
            break;
        }
    }
    if (!sae || !rules_path || !input || optind != argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    saemon_error err = {0};
    saemon_ruleset *rules = NULL;
    if (saemon_rules_open(rules_path, NULL, &rules, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        return CLI_FAIL;
    }
    cli_session s;
    if (!cli_session_open_rules(&s, "run", sae, input, &fl.eo, rules, &fl.plan)) {
        saemon_rules_close(rules);
        cli_plan_free(&fl.plan);
        return CLI_FAIL;
    }
    const saemon_dict_info *info = saemon_dict_get_info(s.dict);
    int rc = CLI_FAIL;
    saemon_monitor *mon = NULL;
    cli_capture capture = {0};
    saemon_sinks *sinks = NULL;
    if (saemon_monitor_create(rules, info, &(saemon_monitor_options){.resolved = fl.sf.resolved}, &mon, &err) != SAEMON_OK) {
        cli_fail("run", &err);
        goto done;
    }
    /* rules with `capture:` (now or after a reload) get the window's top features */
    capture = (cli_capture){.dict = s.dict, .variant = fl.eo.variant, .rows = s.input.data, .d_in = info->d_in,
                            .tokens_per_stream = s.tokens_per_stream, .n_rows = s.n_rows};
    saemon_monitor_set_capture(mon, cli_capture_fn, &capture);
    if (!(sinks = cli_sinks_open("run", &fl.sf, input)))
        goto done;
    /* a recording or a generator: slow down rather than lose an alert */
    saemon_sinks_set_backpressure(sinks, true);
    cli_replay rp = {.encoder = s.encoder, .monitor = mon, .d_in = info->d_in,
                     .tokens_per_stream = s.tokens_per_stream, .on_alert = saemon_sinks_alert,
                     .alert_user = sinks};
    cli_live live = {.what = "run", .rules_path = rules_path, .dict = info, .can_reconstruct = fl.eo.reconstruction,
                     .encoder = s.encoder, .plan = &fl.plan,
                     .monitor = mon, .rules = &rules, .on_alert = saemon_sinks_alert, .alert_user = sinks,
                     .rate = fl.rate};
    cli_live_start(&live);
    const size_t batch = saemon_encoder_get_max_batch(s.encoder);
    for (size_t row = 0; row < s.n_rows && !cli_live_stopping();) {
        size_t m = s.n_rows - row < batch ? s.n_rows - row : batch;
        if (!cli_live_replay_batch(&live, &rp, s.input.data + row * info->d_in, row, m))
            goto done;
        row += m;
    }
    cli_run_summary sum;
    int closed = cli_live_finish(&live, &rp, &sinks, &sum);
    if (closed == CLI_FAIL)
        goto done;
    fprintf(stderr, "saemon run: %" PRIu64 " tokens in %zu stream(s), %" PRIu64 " alerts, mean %s %.2f, %.0f tokens/s (kernel %s)\n",
            sum.tokens, s.n_streams, sum.alerts, sum.mean_what, sum.mean_active, sum.tokens_per_s,
            saemon_encoder_get_variant(s.encoder));
    rc = closed; /* CLI_OK, or CLI_DELIVERY when alerts failed delivery */
done:
    if (sinks)
        cli_sinks_close("run", sinks, NULL);
    saemon_monitor_destroy(mon);
    cli_capture_close(&capture);
    cli_session_close(&s);
    saemon_rules_close(rules);
    cli_plan_free(&fl.plan);
    return rc;
}
