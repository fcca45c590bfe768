/* Machine topology (hwloc) and core placement for encoder workers. */
#ifndef SAEMON_TOPOLOGY_H
#define SAEMON_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "saemon/error.h"

typedef struct saemon_topology saemon_topology;

saemon_status saemon_topology_open(saemon_topology **out, saemon_error *err);
void saemon_topology_close(saemon_topology *topo);

/* Choose up to `want` cores (0 = every allowed core) for workers: from the
 * cpuset list `cpus` ("2-5,8", NULL = all allowed), minus `exclude`, always
 * within the process's allowed cpuset (taskset, containers). Writes the OS
 * index of one PU per chosen core to pus[] (capacity max) and returns how many
 * were chosen; `warning` (may be NULL) receives a message when fewer than
 * asked could be had. Returns 0 with err set if the lists do not parse or no
 * core is left. */
size_t saemon_topology_choose(saemon_topology *topo, const char *cpus, const char *exclude, size_t want,
                              unsigned *pus, size_t max, char *warning, size_t warning_len, saemon_error *err);

/* Bind the calling thread to one PU (OS index). */
saemon_status saemon_topology_bind_thread(saemon_topology *topo, unsigned pu, saemon_error *err);

/* The PU the calling thread is bound to, or -1 if it is bound to several/none. */
int saemon_topology_thread_binding(saemon_topology *topo);

/* Describe packages, NUMA nodes, L3 domains, cores and the allowed cpuset. */
void saemon_topology_print(saemon_topology *topo, FILE *f);

#endif
