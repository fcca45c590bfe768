#include "monitors/rules_eval.h"

#include <math.h>
#include <sleef.h>

float eval_feature(const eval_ctx *ctx, uint32_t feature)
{
    if (ctx->dense)
        return ctx->dense[feature];
    const saemon_token_view *tok = ctx->tok;
    size_t lo = 0, hi = tok->nnz;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok->index[mid] < feature)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < tok->nnz && tok->index[lo] == feature ? tok->value[lo] : 0.0f;
}

static float leaf_value(const rules_cond *c, const eval_ctx *ctx)
{
    return c->tracker >= 0 ? ctx->means[c->tracker] : eval_feature(ctx, c->feature);
}

/* NaN (a mean whose window is not full yet) fails every comparison. */
static bool leaf_holds(const rules_cond *c, float v)
{
    if (c->has_between)
        return v >= c->lo && v <= c->hi;
    return (!c->has_above || v > c->above) && (!c->has_below || v < c->below) && !isnan(v);
}

/* sigmoid(w·z + b). The sum is accumulated in double: a float product of a
 * huge feature and its weight can overflow, and inf - inf would make the
 * score NaN (never firing) where the exact sum is ordinary. SLEEF's exp
 * keeps the result within 1 ulp, rounded once to float. */
static float probe_score(const rules_cond *c, const eval_ctx *ctx)
{
    double s = c->bias;
    for (size_t i = 0; i < c->n_weights; i++)
        s += (double)c->probe_weights[i] * (double)eval_feature(ctx, c->probe_features[i]);
    return (float)(1.0 / (1.0 + Sleef_exp_u10(-s)));
}

static float health_value(const rules_cond *c, const saemon_token_view *tok)
{
    switch (c->health) {
    case RULES_HEALTH_RECON_ABOVE: return tok->recon_error;
    case RULES_HEALTH_L0_OUTSIDE: return (float)tok->nnz;
    case RULES_HEALTH_NONFINITE: return tok->input_nonfinite ? 1.0f : 0.0f;
    case RULES_HEALTH_NORM_OUTSIDE: return tok->input_norm;
    }
    return NAN;
}

static bool health_holds(const rules_cond *c, float v)
{
    switch (c->health) {
    case RULES_HEALTH_RECON_ABOVE: return v > c->lo; /* NaN: not computed, never holds */
    case RULES_HEALTH_L0_OUTSIDE: return v < c->lo || v > c->hi;
    case RULES_HEALTH_NONFINITE: return v != 0.0f;
    case RULES_HEALTH_NORM_OUTSIDE: return !(v >= c->lo && v <= c->hi); /* NaN is outside */
    }
    return false;
}

bool eval_cond(const rules_cond *c, const eval_ctx *ctx)
{
    switch (c->kind) {
    case RULES_COND_LEAF: return leaf_holds(c, leaf_value(c, ctx));
    case RULES_COND_ANY:
        for (size_t i = 0; i < c->n_children; i++)
            if (eval_cond(&c->children[i], ctx))
                return true;
        return false;
    case RULES_COND_ALL:
        for (size_t i = 0; i < c->n_children; i++)
            if (!eval_cond(&c->children[i], ctx))
                return false;
        return true;
    case RULES_COND_AT_LEAST: {
        size_t held = 0;
        for (size_t i = 0; i < c->n_children && held < c->count; i++) {
            if (c->n_children - i < c->count - held)
                return false; /* not enough children left */
            held += eval_cond(&c->children[i], ctx);
        }
        return held >= c->count;
    }
    case RULES_COND_PROBE: return probe_score(c, ctx) > c->above;
    case RULES_COND_HEALTH: return health_holds(c, health_value(c, ctx->tok));
    }
    return false;
}

void eval_collect(const rules_cond *c, const eval_ctx *ctx, saemon_alert_feature *out, size_t *n)
{
    switch (c->kind) {
    case RULES_COND_LEAF: {
        float v = leaf_value(c, ctx);
        if (leaf_holds(c, v))
            out[(*n)++] = (saemon_alert_feature){c->feature, v, NULL};
        return;
    }
    case RULES_COND_PROBE:
        if (probe_score(c, ctx) > c->above) /* the features that contributed */
            for (size_t i = 0; i < c->n_weights; i++) {
                float v = eval_feature(ctx, c->probe_features[i]);
                if (v != 0.0f)
                    out[(*n)++] = (saemon_alert_feature){c->probe_features[i], v, NULL};
            }
        return;
    case RULES_COND_HEALTH: return;
    default:
        for (size_t i = 0; i < c->n_children; i++)
            eval_collect(&c->children[i], ctx, out, n);
    }
}

double eval_value(const rules_cond *c, const eval_ctx *ctx)
{
    switch (c->kind) {
    case RULES_COND_LEAF: {
        float v = leaf_value(c, ctx);
        return leaf_holds(c, v) ? (double)v : NAN;
    }
    case RULES_COND_PROBE: {
        float p = probe_score(c, ctx);
        return p > c->above ? (double)p : NAN;
    }
    case RULES_COND_HEALTH: {
        float v = health_value(c, ctx->tok);
        return health_holds(c, v) ? (double)v : NAN;
    }
    default:
        for (size_t i = 0; i < c->n_children; i++) {
            double v = eval_value(&c->children[i], ctx);
            if (!isnan(v))
                return v;
        }
        return NAN;
    }
}

uint32_t eval_max_feature(const rules_cond *c)
{
    uint32_t m = 0;
    if (c->kind == RULES_COND_LEAF)
        return c->feature;
    if (c->kind == RULES_COND_PROBE) {
        for (size_t i = 0; i < c->n_weights; i++)
            m = c->probe_features[i] > m ? c->probe_features[i] : m;
        return m;
    }
    for (size_t i = 0; i < c->n_children; i++) {
        uint32_t x = eval_max_feature(&c->children[i]);
        m = x > m ? x : m;
    }
    return m;
}
