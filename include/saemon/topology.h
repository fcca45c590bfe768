/* saemon — the machine as hwloc sees it, and where encoder threads would go
 * (what `saemon inspect --topology` prints). The encoder uses the same rule
 * (saemon_encoder_options threads / cpus / exclude_cpus). */
#ifndef SAEMON_TOPOLOGY_PUBLIC_H
#define SAEMON_TOPOLOGY_PUBLIC_H

#include <stddef.h>
#include <stdio.h>

#include "saemon/api.h"
#include "saemon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saemon_topology saemon_topology;

SAEMON_API saemon_status saemon_topology_create(saemon_topology **out, saemon_error *err);
SAEMON_API void saemon_topology_destroy(saemon_topology *topo);

/* Describe packages, NUMA nodes, L3 domains, cores and the allowed cpuset. */
SAEMON_API void saemon_topology_print(saemon_topology *topo, FILE *f);

/* Choose up to `want` cores (0 = every allowed core) for workers: from the
 * cpuset list `cpus` ("2-5,8", NULL = all allowed), minus `exclude`, always
 * within the process's allowed cpuset (taskset, containers). Writes the OS
 * index of one PU per chosen core to pus[] (capacity max) and returns how many
 * were chosen; `warning` (may be NULL) receives a message when fewer than
 * asked could be had. Returns 0 with err set if the lists do not parse or no
 * core is left. */
SAEMON_API size_t saemon_topology_choose(saemon_topology *topo, const char *cpus, const char *exclude,
                                         size_t want, unsigned *pus, size_t max, char *warning,
                                         size_t warning_len, saemon_error *err);

#ifdef __cplusplus
}
#endif
#endif
