/* libFuzzer harness: any bytes through the rule parser, then bind and a few
 * observed tokens, so parse, bind and evaluation all see fuzzed rules. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/rules.h"

static void ignore_alert(const saemon_alert *alert, void *user)
{
    char *json = saemon_alert_to_json(alert);
    (void)user;
    if (json)
        free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    saemon_ruleset *rules = NULL;
    saemon_error err;
    if (saemon_rules_from_string((const char *)data, size, "fuzz.yaml", NULL, &rules, &err) != SAEMON_OK) {
        /* Every failure must carry a message naming the input. */
        if (strncmp(err.message, "fuzz.yaml", 9) != 0)
            __builtin_trap();
        return 0;
    }
    saemon_dict_info info;
    memset(&info, 0, sizeof info);
    info.name = "fuzz";
    info.d_sae = 1u << 20;
    /* Bind exercises the pin and range checks; the monitor is created
     * unbound so huge feature indices reach the binary-search lookup too. */
    if (saemon_rules_bind(rules, &info, &err) != SAEMON_OK && strncmp(err.message, "fuzz.yaml", 9) != 0)
        __builtin_trap();
    saemon_monitor *mon = NULL;
    saemon_monitor_options opts = {.resolved = true};
    if (saemon_monitor_create(rules, NULL, &opts, &mon, &err) == SAEMON_OK) {
        const uint32_t index[] = {0, 1, 7, 12, 100, 4000000000u};
        const float value[] = {0.5f, 1.0f, 5.0f, 2.0f, 9.0f, 3.0f};
        for (uint64_t t = 0; t < 12; t++) {
            saemon_token_view tok = {.stream = t & 1, .token = t / 2, .index = index, .value = value,
                                     .nnz = (size_t)(t % 7), .input_norm = (float)t, .input_nonfinite = t == 5,
                                     .recon_error = t & 2 ? 0.75f : 0.0f};
            saemon_monitor_observe(mon, &tok, ignore_alert, NULL);
        }
        saemon_monitor_destroy(mon);
    }
    saemon_rules_close(rules);
    return 0;
}
