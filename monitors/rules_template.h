/* Annotation templates: "{{ .rule }} fired at {{ .token }}". No loops, no
 * functions: a template is literal text and references to a fixed set of
 * names, resolved and bounded in length when the rule file is parsed. */
#ifndef SAEMON_MONITORS_RULES_TEMPLATE_H
#define SAEMON_MONITORS_RULES_TEMPLATE_H

#include <math.h>

#include "monitors/rules_internal.h"
#include "base/yaml_walk.h"

/* Parse the annotation `text` held by scalar `node` of rule `r` (whose labels
 * are already parsed). Unknown names fail at their line:column. */
saemon_status rules_template_parse(walk *w, const yaml_node_t *node, const char *text,
                                   const rules_rule *r, const saemon_ruleset *rs, rules_template *out);

typedef struct template_ctx {
    const char *rule;
    uint64_t token, stream;
    double value;                         /* NaN: none */
    const saemon_alert_feature *feature;  /* NULL: none */
} template_ctx;

/* Render into buf (at least t->max_len + 1 bytes); returns the length. Call
 * with the C numeric locale in effect. */
size_t rules_template_render(const rules_template *t, const template_ctx *ctx, char *buf);

#endif
