/* A deterministic "toy model of superposition" (Elhage et al., 2022): more
 * sparse ground-truth features than dimensions, each a fixed unit direction in
 * activation space, plus a rare planted "alarm" feature that arrives in
 * bursts. The matching dictionary is the set of true directions,
 * so the demo knows which alerts must fire. */
#ifndef TOY_MODEL_H
#define TOY_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "saemon/dict.h"

#define TOY_D_IN 128
#define TOY_N_FEATURES 256
#define TOY_ALARM_FEATURE 173u   /* the planted direction the demo rules watch */
#define TOY_PAIR_A 41u           /* two features planted together now and then */
#define TOY_PAIR_B 97u

typedef struct toy_model toy_model;

/* What was planted on a token, for checking the alerts. */
typedef struct toy_truth {
    uint8_t alarm;      /* alarm direction present */
    uint8_t pair;       /* both pair features present */
    uint8_t burst_start; /* first token of an alarm burst */
    uint32_t burst_len;  /* length of the alarm burst this token belongs to (0 if none) */
} toy_truth;

toy_model *toy_create(uint64_t seed);
void toy_destroy(toy_model *toy);

/* The dictionary that reads the toy model: JumpReLU with encoder = decoderᵀ =
 * the true directions, threshold above the interference level. */
saemon_status toy_dictionary(const toy_model *toy, saemon_dict **out, saemon_error *err);

/* Produce the next n token activations ([n][TOY_D_IN]) and, if truth is
 * not NULL, what was planted on each. */
void toy_generate(toy_model *toy, float *x, size_t n, toy_truth *truth);

#endif
