/* What the encoder must compute for a ruleset (rules_needs.c): the latents
 * the enabled rules read and whether some rule needs every latent. */
#ifndef SAEMON_MONITORS_RULES_NEEDS_H
#define SAEMON_MONITORS_RULES_NEEDS_H

#include "monitors/rules_internal.h"

/* The health measure of `c` that only a full encode gives (L0, or the
 * reconstruction error), or NULL when its health checks need no latent. */
const char *rules_cond_full_measure(const rules_cond *c);
bool rules_cond_has_health(const rules_cond *c);

#endif
