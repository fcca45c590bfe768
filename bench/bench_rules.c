/* saemon-bench rules: rule evaluation cost in ns per token for 10, 100 and
 * 1000 rules of mixed kinds (leaf, any/all, between, at_least, probe, window,
 * mean_over, health), on synthetic sparse tokens (d_sae 16384, L0 64). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "bench.h"
#include "saemon/rules.h"

#define D_SAE 16384
#define L0 64
#define N_TOKENS 2048 /* distinct synthetic tokens, cycled */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t next_u32(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static size_t append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return *len;
        }
        *cap *= 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
}

/* Thresholds sit near the synthetic value range so rules do fire sometimes. */
static char *make_rules(size_t n)
{
    size_t len = 0, cap = 1 << 16;
    char *y = malloc(cap);
    if (!y)
        abort();
    y[0] = '\0';
    append(&y, &len, &cap, "rules:\n");
    for (size_t i = 0; i < n; i++) {
        uint32_t a = next_u32() % D_SAE, b = next_u32() % D_SAE, c = next_u32() % D_SAE;
        append(&y, &len, &cap, "  - name: r%zu\n", i);
        switch (i % 8) {
        case 0: append(&y, &len, &cap, "    condition: {feature: %u, above: 3.5}\n", a); break;
        case 1:
            append(&y, &len, &cap, "    condition: {any: [{feature: %u, above: 3}, {all: [{feature: %u, above: 1}, "
                                   "{feature: %u, below: 2}]}]}\n", a, b, c);
            break;
        case 2: append(&y, &len, &cap, "    condition: {feature: %u, between: [1, 2]}\n    for: 2\n", a); break;
        case 3:
            append(&y, &len, &cap, "    condition: {at_least: {count: 2, of: [{feature: %u, above: 1}, "
                                   "{feature: %u, above: 1}, {feature: %u, above: 1}]}}\n", a, b, c);
            break;
        case 4:
            append(&y, &len, &cap, "    condition:\n      probe:\n        weights: {");
            for (int k = 0; k < 8; k++)
                append(&y, &len, &cap, "%s%u: %.2f", k ? ", " : "", next_u32() % D_SAE, (double)(k % 3) - 0.5);
            append(&y, &len, &cap, "}\n        bias: -2\n        above: 0.7\n");
            break;
        case 5:
            append(&y, &len, &cap, "    condition: {feature: %u, above: 0.5}\n    window: {count_at_least: 2, tokens: 8}\n", a);
            break;
        case 6: append(&y, &len, &cap, "    condition: {feature: %u, mean_over: 16, above: 0.2}\n", a); break;
        case 7: append(&y, &len, &cap, "    health: {l0_outside: [8, %zu]}\n    keep_firing_for: 4\n", 60 + i % 8); break;
        }
        append(&y, &len, &cap, "    annotations: {s: \"{{ .rule }} {{ .value }}\"}\n");
    }
    return y;
}

static uint64_t alerts;
static void count_alert(const saemon_alert *a, void *user)
{
    (void)a, (void)user;
    alerts++;
}

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int bench_rules_main(int argc, char **argv)
{
    double min_seconds = argc > 1 && !strcmp(argv[1], "--quick") ? 0.05 : 0.5;
    static uint32_t index[N_TOKENS][L0];
    static float value[N_TOKENS][L0];
    for (size_t t = 0; t < N_TOKENS; t++) {
        for (size_t k = 0; k < L0; k++) {
            index[t][k] = next_u32() % D_SAE;
            value[t][k] = (float)(next_u32() % 4000) / 1000.0f;
        }
        qsort(index[t], L0, sizeof index[t][0], by_u32);
    }
    printf("saemon-bench rules: d_sae %d, L0 16-64, 4 streams, mixed rule kinds, resolved events on;\n"
           "thread CPU time per observed token\n", D_SAE);
    printf("%8s %12s %14s %10s\n", "rules", "ns/token", "ns/rule/token", "alerts/tok");
    const size_t counts[] = {10, 100, 1000};
    for (size_t ci = 0; ci < 3; ci++) {
        char *yaml = make_rules(counts[ci]);
        saemon_ruleset *rs = NULL;
        saemon_error err;
        if (saemon_rules_from_string(yaml, strlen(yaml), "bench.yaml", NULL, &rs, &err) != SAEMON_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        free(yaml);
        saemon_monitor *mon = NULL;
        saemon_monitor_options opts = {.resolved = true};
        if (saemon_monitor_create(rs, NULL, &opts, &mon, &err) != SAEMON_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        uint64_t tokens = 0;
        alerts = 0;
        double t0 = clock_thread_cpu_s(), t1;
        do {
            for (size_t t = 0; t < N_TOKENS; t++, tokens++) {
                size_t nnz = L0 - (t % 7) * 8; /* L0 varies 16..64 */
                saemon_token_view tok = {.stream = tokens % 4, .token = tokens / 4, .index = index[t],
                                         .value = value[t], .nnz = nnz, .input_norm = 1.0f};
                saemon_monitor_observe(mon, &tok, count_alert, NULL);
            }
            t1 = clock_thread_cpu_s();
        } while (t1 - t0 < min_seconds);
        double ns = (t1 - t0) * 1e9 / (double)tokens;
        printf("%8zu %12.1f %14.2f %10.3f\n", counts[ci], ns, ns / (double)counts[ci], (double)alerts / (double)tokens);
        saemon_monitor_destroy(mon);
        saemon_rules_close(rs);
    }
    return 0;
}
