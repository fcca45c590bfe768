/* The canonical form of a rule: its compiled definition serialised to bytes
 * (docs/rules.md "Reloading" lists what is in it). A reload keeps a rule's
 * per-stream state only when name and canonical form are both unchanged. */
#ifndef SAEMON_MONITORS_RULES_CANON_H
#define SAEMON_MONITORS_RULES_CANON_H

#include <stdbool.h>

#include "monitors/rules_internal.h"

/* Set r->canon / r->canon_len (stored in `mem`); false when out of memory.
 * Needs r->group and r->interval set and rs->trackers filled for r. */
bool rules_canon_build(arena *mem, const saemon_ruleset *rs, rules_rule *r);

/* Same name and same definition. */
bool rules_canon_equal(const rules_rule *a, const rules_rule *b);

#endif
