/* Machine topology (hwloc) and core placement for encoder workers: the
 * public part is include/saemon/topology.h; binding threads is internal. */
#ifndef SAEMON_RUNTIME_TOPOLOGY_H
#define SAEMON_RUNTIME_TOPOLOGY_H

#include "saemon/topology.h"

/* Bind the calling thread to one PU (OS index). */
saemon_status saemon_topology_bind_thread(saemon_topology *topo, unsigned pu, saemon_error *err);

/* The PU the calling thread is bound to, or -1 if it is bound to several/none. */
int saemon_topology_thread_binding(saemon_topology *topo);

#endif
