/* The alerts an Alertmanager sink has reported firing and not yet resolved,
 * so it can re-send them periodically (as Prometheus does): Alertmanager
 * otherwise resolves an alert on its own once its endsAt (or, without one,
 * resolve_timeout) passes while the rule still holds. Identity = what makes
 * the Alertmanager labels: rule, stream, dictionary, group. Used by the sink
 * thread only. */
#ifndef SAEMON_MONITORS_SINKS_AM_ACTIVE_H
#define SAEMON_MONITORS_SINKS_AM_ACTIVE_H

#include <stddef.h>

#include "monitors/sinks/sink_internal.h"

#define AM_ACTIVE_MAX 65536 /* beyond this, new alerts are not re-sent */

typedef struct am_active {
    sink_alert **v; /* own copies */
    size_t n, cap;
} am_active;

/* A firing alert becomes (or replaces) the active one of its identity; a
 * resolved alert removes it. false when it could not be tracked (OOM/max). */
bool am_active_note(am_active *set, const saemon_alert *a);
void am_active_free(am_active *set);

#endif
