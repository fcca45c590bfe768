#include "cli/toy_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_ACTIVE_PER_TOKEN 1.5   /* mean number of background features per token */
#define ALARM_BURST_RATE 0.004      /* chance a burst starts on a token */
#define ALARM_MAGNITUDE 4.0f
#define PAIR_RATE 0.003
#define NOISE_SIGMA 0.02
#define JUMPRELU_THRESHOLD 0.8f     /* ~3 sigma above the interference of the background features */

struct toy_model {
    uint64_t rng;
    float directions[TOY_N_FEATURES][TOY_D_IN];
    double prob[TOY_N_FEATURES];
    uint32_t burst_left, burst_len;
};

static uint64_t next_u64(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

static double gaussian(uint64_t *s)
{
    double u = uniform(s), v = uniform(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

toy_model *toy_create(uint64_t seed)
{
    toy_model *toy = calloc(1, sizeof *toy);
    if (!toy)
        return NULL;
    toy->rng = seed;
    double zipf_total = 0.0;
    for (size_t j = 0; j < TOY_N_FEATURES; j++) {
        double norm = 0.0;
        for (size_t i = 0; i < TOY_D_IN; i++) {
            double g = gaussian(&toy->rng);
            toy->directions[j][i] = (float)g;
            norm += g * g;
        }
        norm = sqrt(norm);
        for (size_t i = 0; i < TOY_D_IN; i++)
            toy->directions[j][i] = (float)(toy->directions[j][i] / norm);
        toy->prob[j] = 1.0 / (double)(j % 64 + 4); /* Zipf-like firing rates */
        zipf_total += toy->prob[j];
    }
    for (size_t j = 0; j < TOY_N_FEATURES; j++)
        toy->prob[j] *= BASE_ACTIVE_PER_TOKEN / zipf_total;
    /* The planted features only appear when planted. */
    toy->prob[TOY_ALARM_FEATURE] = 0.0;
    toy->prob[TOY_PAIR_A] = 0.0;
    toy->prob[TOY_PAIR_B] = 0.0;
    return toy;
}

void toy_destroy(toy_model *toy) { free(toy); }

static void add_direction(float *x, const float *dir, float magnitude)
{
    for (size_t i = 0; i < TOY_D_IN; i++)
        x[i] += magnitude * dir[i];
}

void toy_generate(toy_model *toy, float *x, size_t n, toy_truth *truth)
{
    for (size_t t = 0; t < n; t++) {
        float *row = x + t * TOY_D_IN;
        for (size_t i = 0; i < TOY_D_IN; i++)
            row[i] = (float)(NOISE_SIGMA * gaussian(&toy->rng));
        size_t active = 0;
        for (size_t j = 0; j < TOY_N_FEATURES; j++)
            if (uniform(&toy->rng) < toy->prob[j]) {
                add_direction(row, toy->directions[j], (float)(1.0 + 1.5 * uniform(&toy->rng)));
                active++;
            }
        if (active == 0) { /* every token carries at least one background feature */
            size_t j;
            do
                j = next_u64(&toy->rng) % TOY_N_FEATURES;
            while (toy->prob[j] == 0.0);
            add_direction(row, toy->directions[j], (float)(1.0 + 1.5 * uniform(&toy->rng)));
        }

        if (toy->burst_left == 0 && uniform(&toy->rng) < ALARM_BURST_RATE) {
            toy->burst_len = 1 + (uint32_t)(next_u64(&toy->rng) % 6); /* 1..6 tokens */
            toy->burst_left = toy->burst_len;
        }
        toy_truth tr = {0};
        if (toy->burst_left > 0) {
            add_direction(row, toy->directions[TOY_ALARM_FEATURE], ALARM_MAGNITUDE);
            tr.alarm = 1;
            tr.burst_start = toy->burst_left == toy->burst_len;
            tr.burst_len = toy->burst_len;
            toy->burst_left--;
        }
        if (uniform(&toy->rng) < PAIR_RATE) {
            add_direction(row, toy->directions[TOY_PAIR_A], 2.0f);
            add_direction(row, toy->directions[TOY_PAIR_B], 2.0f);
            tr.pair = 1;
        }
        if (truth)
            truth[t] = tr;
    }
}

saemon_status toy_dictionary(const toy_model *toy, saemon_dict **out, saemon_error *err)
{
    const size_t d = TOY_D_IN, m = TOY_N_FEATURES;
    float *w_enc = malloc(d * m * sizeof(float));
    float *zeros_m = calloc(m, sizeof(float)), *zeros_d = calloc(d, sizeof(float));
    float *thr = malloc(m * sizeof(float));
    if (!w_enc || !zeros_m || !zeros_d || !thr) {
        free(w_enc), free(zeros_m), free(zeros_d), free(thr);
        if (err) {
            err->code = SAEMON_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "out of memory building the toy dictionary");
        }
        return SAEMON_ERR_NOMEM;
    }
    for (size_t j = 0; j < m; j++) {
        thr[j] = JUMPRELU_THRESHOLD;
        for (size_t i = 0; i < d; i++)
            w_enc[i * m + j] = toy->directions[j][i]; /* SAELens layout: W_enc [d_in][d_sae] */
    }
    saemon_dict_arrays a = {
        .name = "toy-superposition-128x256",
        .arch = SAEMON_ARCH_JUMPRELU,
        .d_in = d,
        .d_sae = m,
        .apply_b_dec_to_input = true,
        .norm = SAEMON_NORM_NONE,
        .W_enc = w_enc,
        .W_dec = &toy->directions[0][0],
        .b_enc = zeros_m,
        .b_dec = zeros_d,
        .threshold = thr,
    };
    saemon_status st = saemon_dict_from_arrays(&a, out, err);
    free(w_enc), free(zeros_m), free(zeros_d), free(thr);
    return st;
}
