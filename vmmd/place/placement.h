/* SPDX-License-Identifier: MIT */
/*
 * Slurm's allocation on this node -> where the guest runs. Pure: from the
 * host's topology (hostinfo) and the job's CPUs, memory, hugepage choice
 * and devices to a struct dom_placement for the domain XML:
 *
 * - one vCPU per allocated host CPU, pinned 1:1, vCPUs numbered in
 *   topology order (package, core, thread) so the guest's
 *   sockets/cores/threads are the host's for those CPUs;
 * - QEMU's other threads on housekeeping CPUs when configured, else on the
 *   job's own CPUs (never on another job's);
 * - one guest NUMA cell per host node holding the job's CPUs, memory split
 *   in proportion to the vCPUs, bound strictly to that node;
 * - hugepages: every cell's share must be free on its host node now, or
 *   the start fails with the numbers (QEMU preallocates them);
 * - devices sit on the guest cell of their host node (a device on a node
 *   without the job's CPUs is placed on the root bus, with a note).
 */
#ifndef VMMD_PLACEMENT_H
#define VMMD_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "domxml.h"
#include "hostinfo.h"

struct place_dev {
	struct pci_addr addr;
	int numa_node;	  /* -1: unknown */
	const char *what; /* "GPU", "IB VF": for messages */
};

struct place_req {
	uint32_t job_id; /* for messages */
	const char *node;
	struct cpuset cpus;	    /* the job's host CPUs */
	struct cpuset housekeeping; /* empty: the job's CPUs */
	uint32_t mem_mib;	    /* guest RAM asked for */
	uint32_t hard_limit_mib;    /* 0: none */
	uint32_t hugepage_kib;	    /* 0: ordinary pages */
	uint32_t ndevs;
	struct place_dev dev[DOM_MAX_HOSTDEVS];
};

/* 0, or -errno with "job N: ..." in err. note gets advice worth logging
 * ("" when none). The guest's memory is ret's cells' sum (hugepages round
 * it down to whole pages); ret->nvcpus is the vCPU count. */
int placement_build(const struct host_topo *t, const struct place_req *req,
		    struct dom_placement *ret, char *note, size_t notelen,
		    char *err, size_t errlen);

/* The guest memory of a placement (sum of its cells). */
uint32_t placement_mem_mib(const struct dom_placement *p);

#endif
