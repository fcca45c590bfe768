#include "runtime/topology.h"

#include <errno.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

struct saemon_topology {
    hwloc_topology_t topo;
};

saemon_status saemon_topology_create(saemon_topology **out, saemon_error *err)
{
    *out = NULL;
    saemon_topology *t = calloc(1, sizeof *t);
    if (!t)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (hwloc_topology_init(&t->topo) != 0) {
        free(t);
        return saemon_error_set(err, SAEMON_ERR_IO, "hwloc_topology_init failed");
    }
    if (hwloc_topology_load(t->topo) != 0) {
        hwloc_topology_destroy(t->topo);
        free(t);
        return saemon_error_set(err, SAEMON_ERR_IO, "hwloc could not read the machine topology");
    }
    *out = t;
    return SAEMON_OK;
}

void saemon_topology_destroy(saemon_topology *t)
{
    if (!t)
        return;
    hwloc_topology_destroy(t->topo);
    free(t);
}

static saemon_status parse_list(const char *what, const char *text, hwloc_bitmap_t into, saemon_error *err)
{
    if (hwloc_bitmap_list_sscanf(into, text) != 0 || hwloc_bitmap_iszero(into))
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s '%s' is not a CPU list such as '0-3,6'", what, text);
    return SAEMON_OK;
}

size_t saemon_topology_choose(saemon_topology *t, const char *cpus, const char *exclude, size_t want,
                              unsigned *pus, size_t max, char *warning, size_t warning_len, saemon_error *err)
{
    if (warning && warning_len)
        warning[0] = 0;
    hwloc_bitmap_t allowed = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t->topo));
    hwloc_bitmap_t proc = hwloc_bitmap_alloc();
    hwloc_bitmap_t sel = hwloc_bitmap_alloc();
    size_t n = 0;
    if (!allowed || !proc || !sel) {
        saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* The process's own binding (taskset, cgroups) limits us too. */
    if (hwloc_get_cpubind(t->topo, proc, HWLOC_CPUBIND_PROCESS) == 0 && !hwloc_bitmap_iszero(proc))
        hwloc_bitmap_and(allowed, allowed, proc);
    if (cpus && *cpus) {
        if (parse_list("--cpus", cpus, sel, err) != SAEMON_OK)
            goto done;
        hwloc_bitmap_and(allowed, allowed, sel);
    }
    if (exclude && *exclude) {
        hwloc_bitmap_zero(sel);
        if (parse_list("--exclude", exclude, sel, err) != SAEMON_OK)
            goto done;
        hwloc_bitmap_andnot(allowed, allowed, sel);
    }
    int ncores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
    for (int c = 0; c < ncores && n < max && (want == 0 || n < want); c++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_CORE, (unsigned)c);
        hwloc_bitmap_and(sel, core->cpuset, allowed);
        int pu = hwloc_bitmap_first(sel); /* one PU per core: no SMT siblings */
        if (pu >= 0)
            pus[n++] = (unsigned)pu;
    }
    if (ncores <= 0) { /* hwloc saw no cores (odd VMs): fall back to PUs */
        for (int pu = hwloc_bitmap_first(allowed); pu >= 0 && n < max && (want == 0 || n < want);
             pu = hwloc_bitmap_next(allowed, pu))
            pus[n++] = (unsigned)pu;
    }
    if (n == 0) {
        saemon_error_set(err, SAEMON_ERR_ARG, "no allowed core is left for workers (cpus %s, exclude %s)",
                         cpus ? cpus : "all", exclude ? exclude : "none");
    } else if (want && n < want && warning) {
        snprintf(warning, warning_len, "asked for %zu cores, only %zu are available to this process; using %zu",
                 want, n, n);
    }
done:
    hwloc_bitmap_free(allowed);
    hwloc_bitmap_free(proc);
    hwloc_bitmap_free(sel);
    return n;
}

saemon_status saemon_topology_bind_thread(saemon_topology *t, unsigned pu, saemon_error *err)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    hwloc_bitmap_only(set, pu);
    int rc = hwloc_set_cpubind(t->topo, set, HWLOC_CPUBIND_THREAD);
    int e = errno;
    hwloc_bitmap_free(set);
    if (rc != 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "binding a worker to CPU %u failed: %s", pu, strerror(e));
    return SAEMON_OK;
}

int saemon_topology_thread_binding(saemon_topology *t)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    int pu = -1;
    if (set && hwloc_get_cpubind(t->topo, set, HWLOC_CPUBIND_THREAD) == 0 && hwloc_bitmap_weight(set) == 1)
        pu = hwloc_bitmap_first(set);
    hwloc_bitmap_free(set);
    return pu;
}

static void print_count(FILE *f, hwloc_topology_t topo, hwloc_obj_type_t type, const char *name)
{
    fprintf(f, "%-14s %d\n", name, hwloc_get_nbobjs_by_type(topo, type));
}

void saemon_topology_print(saemon_topology *t, FILE *f)
{
    char buf[256];
    print_count(f, t->topo, HWLOC_OBJ_PACKAGE, "packages");
    print_count(f, t->topo, HWLOC_OBJ_NUMANODE, "NUMA nodes");
    print_count(f, t->topo, HWLOC_OBJ_L3CACHE, "L3 domains");
    print_count(f, t->topo, HWLOC_OBJ_CORE, "cores");
    print_count(f, t->topo, HWLOC_OBJ_PU, "PUs");
    hwloc_bitmap_list_snprintf(buf, sizeof buf, hwloc_topology_get_allowed_cpuset(t->topo));
    fprintf(f, "%-14s %s\n", "allowed cpus", buf);
    int ncores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
    for (int c = 0; c < ncores; c++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_CORE, (unsigned)c);
        hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_L3CACHE, core);
        hwloc_obj_t numa = NULL;
        hwloc_obj_t anc = core;
        while (anc && !(anc->memory_arity > 0))
            anc = anc->parent;
        if (anc)
            numa = anc->memory_first_child;
        char l3buf[16] = "-", numabuf[16] = "-";
        if (l3)
            snprintf(l3buf, sizeof l3buf, "%u", l3->logical_index);
        if (numa)
            snprintf(numabuf, sizeof numabuf, "%u", numa->os_index);
        hwloc_bitmap_list_snprintf(buf, sizeof buf, core->cpuset);
        fprintf(f, "  core %-3u pus %-8s L3 %-3s NUMA %s\n", core->logical_index, buf, l3buf, numabuf);
    }
}
