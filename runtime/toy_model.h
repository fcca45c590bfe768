/* A deterministic "toy model of superposition" (Elhage et al., 2022): more
 * sparse ground-truth features than dimensions, each a fixed unit direction in
 * activation space, plus a rare planted "alarm" feature that arrives in
 * bursts. The matching dictionary is the set of true directions,
 * so the demo knows which alerts must fire. */
#ifndef SAEMON_TOY_MODEL_H
#define SAEMON_TOY_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"

#define SAEMON_TOY_D_IN 128
#define SAEMON_TOY_N_FEATURES 256
#define SAEMON_TOY_ALARM_FEATURE 173u   /* the planted direction the demo rules watch */
#define SAEMON_TOY_PAIR_A 41u           /* two features planted together now and then */
#define SAEMON_TOY_PAIR_B 97u

typedef struct saemon_toy_model saemon_toy_model;

/* What was planted on a token, for checking the alerts. */
typedef struct saemon_toy_truth {
    uint8_t alarm;      /* alarm direction present */
    uint8_t pair;       /* both pair features present */
    uint8_t burst_start; /* first token of an alarm burst */
    uint32_t burst_len;  /* length of the alarm burst this token belongs to (0 if none) */
} saemon_toy_truth;

saemon_toy_model *saemon_toy_create(uint64_t seed);
void saemon_toy_destroy(saemon_toy_model *toy);

/* The dictionary that reads the toy model: JumpReLU with encoder = decoderᵀ =
 * the true directions, threshold above the interference level. */
saemon_status saemon_toy_dictionary(const saemon_toy_model *toy, saemon_dict **out, saemon_error *err);

/* Produce the next n token activations ([n][SAEMON_TOY_D_IN]) and, if truth is
 * not NULL, what was planted on each. */
void saemon_toy_generate(saemon_toy_model *toy, float *x, size_t n, saemon_toy_truth *truth);

#endif
