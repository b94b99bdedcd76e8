/* SPDX-License-Identifier: MIT */
/*
 * The host's CPUs, NUMA nodes and hugepages, read from sysfs under a
 * configurable root (vmmd's sysfs_root; tests point it at fixture trees laid
 * out like real nodes under test/data/sysfs/). Reads files, never logs, keeps
 * no state.
 *
 * Files read, relative to the root:
 *   devices/system/cpu/online
 *   devices/system/cpu/cpuN/topology/{physical_package_id,core_id}
 *   devices/system/node/online, nodeN/cpulist, nodeN/meminfo,
 *   nodeN/hugepages/hugepages-{2048,1048576}kB/{nr,free}_hugepages
 * A kernel without NUMA (no devices/system/node) is one node 0 holding every
 * CPU, its memory unknown (0).
 */
#ifndef VMMD_HOSTINFO_H
#define VMMD_HOSTINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpuset.h"

#define HOST_MAX_NODES 64

/* Hugepage sizes vmmd knows (x86_64). */
enum host_hp { HOST_HP_2M, HOST_HP_1G, HOST_HP_N };

struct host_cpu {
	uint32_t package;
	uint32_t core; /* core_id: unique within its package */
	uint32_t node;
};

struct host_node {
	struct cpuset cpus;
	uint64_t mem_total_kib;
	uint64_t mem_free_kib;
	uint64_t hp_total[HOST_HP_N];
	uint64_t hp_free[HOST_HP_N];
};

struct host_topo {
	struct cpuset online;
	struct cpuset nodes;		       /* online NUMA nodes */
	struct host_cpu cpu[CPUSET_MAX];       /* valid for online CPUs */
	struct host_node node[HOST_MAX_NODES]; /* valid for nodes */
};

/* Fills *ret (large: allocate it). 0, or -errno with the file at fault in
 * err. */
int hostinfo_read(const char *sysfs_root, struct host_topo *ret, char *err,
		  size_t errlen);

/* Page size in KiB of a hugepage kind, and the kind for a size in KiB
 * (-EINVAL for one vmmd does not know). */
uint32_t hostinfo_hp_kib(enum host_hp hp);
int hostinfo_hp_from_kib(uint32_t kib, enum host_hp *ret);

/* Every online CPU on the same core as cpu (itself included). */
void hostinfo_core_siblings(const struct host_topo *t, uint32_t cpu,
			    struct cpuset *ret);

/*
 * Slurm's numbers for a node's cores to Linux CPU ids.
 *
 * slurmctld hands out cores by index: socket by socket, core by core, in
 * the order hwloc gives them (packages by their first CPU, cores within a
 * package by their first CPU) — what slurmd's own abstract-to-machine map
 * uses for task binding. libslurm reports those indices per core when the
 * caller has not loaded node threads (vmmd), so:
 *   - Slurm's core count (Sockets x CoresPerSocket) equals the host's core
 *     count: index k is every thread of the host's k-th core;
 *   - it equals the host's CPU count (slurm.conf says CPUs=N only, on a
 *     host with hyperthreads): index k is the host's k-th CPU;
 *   - anything else: -EINVAL with the mismatch in err (fix slurm.conf).
 * ids with an index past the end are refused too.
 */
int hostinfo_slurm_cpus(const struct host_topo *t, const struct cpuset *ids,
			uint32_t slurm_cores, struct cpuset *ret, char *err,
			size_t errlen);

/* Online CPUs in topology order (package, core, CPU id): the order vCPUs
 * must follow so the guest's sockets/cores/threads match the host's.
 * Returns the count written (at most max). */
uint32_t hostinfo_order(const struct host_topo *t, const struct cpuset *cpus,
			uint32_t *ret, uint32_t max);

#endif
