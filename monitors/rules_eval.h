/* Evaluating one condition tree on one token. */
#ifndef SAEMON_MONITORS_RULES_EVAL_H
#define SAEMON_MONITORS_RULES_EVAL_H

#include "monitors/rules_internal.h"

/* The token being evaluated and where to look its features up. */
typedef struct eval_ctx {
    const saemon_token_view *tok;
    const float *dense;   /* values of features [0, dense_len), or NULL: binary search */
    const float *means;   /* current running mean per tracker (NaN until its window is full) */
} eval_ctx;

float eval_feature(const eval_ctx *ctx, uint32_t feature);
bool eval_cond(const rules_cond *c, const eval_ctx *ctx);

/* Every feature leaf / probe feature of the condition whose own check holds,
 * appended to out[*n] (room for rules_cond_max_features). */
void eval_collect(const rules_cond *c, const eval_ctx *ctx, saemon_alert_feature *out, size_t *n);

/* The value of the first part of the condition (depth first) whose own check
 * holds: feature value or mean, probe probability, health measure; NaN if none. */
double eval_value(const rules_cond *c, const eval_ctx *ctx);

/* Largest feature index the condition reads (0 for none). */
uint32_t eval_max_feature(const rules_cond *c);

#endif
