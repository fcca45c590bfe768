/* monitors/monitor.c evaluates a rule that cannot hold without one of its
 * features (feature leaves under any/all/at_least, false at 0, no window)
 * only on tokens carrying one of its features or while it holds / fires.
 * The alerts (firing and resolved, every field the sinks see) must be those
 * of evaluating every rule on every token: the reference monitor below
 * watches one extra feature beyond the dense range, which turns the dense
 * view, and with it the skip, off. Random sparse tokens on several streams
 * with sequence restarts, for:, keep_firing_for, cooldown, windows,
 * trackers, below/between leaves (true at 0: never skipped). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "saemon/saemon.h"

#define RULES                                                                                                    \
    "version: 1\n"                                                                                               \
    "rules:\n"                                                                                                   \
    "  - {name: plain, condition: {feature: 3, above: 1.0}}\n"                                                  \
    "  - {name: held, for: 3, keep_firing_for: 2, condition: {feature: 5, above: 0.5}}\n"                      \
    "  - {name: cool, cooldown: 7, condition: {feature: 5, above: 1.5}}\n"                                      \
    "  - {name: band, condition: {feature: 8, above: 0.5, below: 2.0}}\n"                                       \
    "  - {name: between, condition: {feature: 9, between: [0.5, 2.0]}}\n"                                       \
    "  - {name: silent, for: 4, condition: {feature: 11, below: 0.1}}\n"                                        \
    "  - {name: all, condition: {all: [{feature: 1, above: 0.2}, {feature: 2, above: 0.2}]}}\n"                \
    "  - {name: any, for: 2, condition: {any: [{feature: 6, above: 1.2}, {feature: 7, above: 1.2}]}}\n"         \
    "  - {name: two, condition: {at_least: {count: 2, of: [{feature: 1, above: 0.3}, {feature: 4, above: 0.3},"  \
    " {feature: 7, above: 0.3}]}}}\n"                                                                            \
    "  - {name: nested-not-quiet, condition: {any: [{feature: 10, above: 1.0}, {feature: 12, below: 0.5}]}}\n"   \
    "  - {name: windowed, window: {count_at_least: 2, tokens: 4}, condition: {feature: 13, above: 0.5}}\n"       \
    "  - {name: mean, condition: {feature: 15, mean_over: 3, above: 0.3}}\n"                                     \
    "  - {name: low, keep_firing_for: 1, condition: {feature: 0, above: 0.7}}\n"

typedef struct log {
    uint64_t hash; /* of every alert's text, in order */
    size_t n;
} log_t;

static void record(const saemon_alert *a, void *user)
{
    log_t *l = user;
    if (!strcmp(a->rule, "reference-only"))
        return;
    float v = (float)a->value;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    char text[4096];
    size_t len = 0;
    len += (size_t)snprintf(text, sizeof text, "%s %s s%llu t%llu f%llu v%08x", a->rule, a->status,
                     (unsigned long long)a->stream, (unsigned long long)a->token,
                     (unsigned long long)a->fired_token, bits);
    for (size_t i = 0; i < a->n_features && len < sizeof text - 64; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, " %u=%a", a->features[i].index,
                                (double)a->features[i].value);
    for (size_t i = 0; i < len; i++)
        l->hash = (l->hash ^ (uint8_t)text[i]) * 0x100000001b3ull;
    l->hash = (l->hash ^ '\n') * 0x100000001b3ull;
    l->n++;
}

static uint64_t rng = 12345;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 20);
}

static log_t fast_log, full_log;

Test(quiet_rules, alerts_equal_evaluating_every_rule)
{
    saemon_error err = {0};
    const char *fast_yaml = RULES;
    char full_yaml[8192];
    snprintf(full_yaml, sizeof full_yaml, "%s  - {name: reference-only, condition: {feature: 2000000, above: 1e30}}\n",
             RULES);
    saemon_ruleset *fast_rs = NULL, *full_rs = NULL;
    cr_assert_eq(saemon_rules_from_string(fast_yaml, strlen(fast_yaml), "fast", NULL, &fast_rs, &err), SAEMON_OK,
                 "%s", err.message);
    cr_assert_eq(saemon_rules_from_string(full_yaml, strlen(full_yaml), "full", NULL, &full_rs, &err), SAEMON_OK,
                 "%s", err.message);
    const saemon_monitor_options mo = {.resolved = true};
    saemon_monitor *fast = NULL, *full = NULL;
    cr_assert_eq(saemon_monitor_create(fast_rs, NULL, &mo, &fast, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(saemon_monitor_create(full_rs, NULL, &mo, &full, &err), SAEMON_OK, "%s", err.message);

    uint64_t next_token[4] = {0, 0, 0, 0};
    for (int step = 0; step < 200000; step++) {
        uint32_t idx[20];
        float val[20];
        size_t nnz = 0;
        /* ascending features of 0..19, each present with probability 1/4 */
        for (uint32_t f = 0; f < 20; f++)
            if (next() % 4 == 0) {
                idx[nnz] = f;
                val[nnz++] = (float)(next() % 2500) / 1000.0f; /* 0 .. 2.5, zero included */
            }
        const uint64_t stream = next() % 4;
        if (next() % 500 == 0) /* a new sequence: a gap, or back to token 0 */
            next_token[stream] = next() % 2 ? next_token[stream] + 3 : 0;
        saemon_token_view tok = {.stream = stream, .token = next_token[stream]++, .index = idx, .value = val,
                                 .nnz = nnz, .input_norm = 1.0f};
        saemon_monitor_observe(fast, &tok, record, &fast_log);
        saemon_monitor_observe(full, &tok, record, &full_log);
        if (step % 50000 == 49999) { /* end a stream: resolves what fires in it */
            saemon_monitor_end_stream(fast, step % 4, record, &fast_log);
            saemon_monitor_end_stream(full, step % 4, record, &full_log);
        }
    }
    cr_assert_gt(fast_log.n, 1000, "too few alerts to compare (%zu)", fast_log.n);
    cr_assert_eq(fast_log.n, full_log.n);
    cr_assert_eq(fast_log.hash, full_log.hash, "the alerts differ");
    saemon_monitor_destroy(fast);
    saemon_monitor_destroy(full);
    saemon_rules_close(fast_rs);
    saemon_rules_close(full_rs);
}
