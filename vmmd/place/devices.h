/* SPDX-License-Identifier: MIT */
/*
 * A job's devices on this node: the InfiniBand VFs it gets from the PFs
 * vmmd's config names, and the GPUs Slurm allocated to it, each held by a
 * lease (devlease.h) for the job's life, so two jobs never share one and a
 * vmmd restart forgets nothing.
 *
 * - VFs: the first free VFs of the configured PFs, those on the job's NUMA
 *   nodes first. Where ib_guid_prefix is set, each VF gets a per-job node
 *   and port GUID (sysfs sriov/N/{node,port}); the old ones are kept in
 *   the lease and put back at release. GUID layout (64 bits):
 *     prefix:16 | job id:32 | ib_guid_node_id:8 | VF slot in job:7 | port:1
 * - GPUs: only the indices in slurmctld's GRES detail for this job and
 *   node, mapped through gres.conf to device files and through sysfs to
 *   PCI devices (an IOMMU group brings all its functions). Never another
 *   GPU: a device that resolves to another job's lease fails the start.
 *
 * Everything taken is given back when acquisition fails half-way, so a
 * failed start leaves no lease. Errors name the job and say what the node
 * lacks. Reads sysfs under the configured roots; does not log.
 */
#ifndef VMMD_DEVICES_H
#define VMMD_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpuset.h"
#include "placement.h"
#include "vmmdconf.h"

struct dev_request {
	uint32_t job_id;
	uint32_t ib_vfs;
	const char *gres;	  /* slurmctld's GRES detail on this node */
	struct cpuset numa_nodes; /* where the job's CPUs are */
};

struct dev_grant {
	uint32_t ndevs;
	struct place_dev dev[DOM_MAX_HOSTDEVS];
};

/* Checks the device keys of the config (PFs exist, GUID prefix, emulator
 * CPUs): 0 or -EINVAL with the key in err. */
int devices_config_check(const struct vmmd_config *c, char *err, size_t errlen);
/* The node's housekeeping_cpus (empty when none are configured). */
int devices_housekeeping(const struct vmmd_config *c, struct cpuset *ret);

/* All or nothing. 0, or -errno with "job N: ..." in err. */
int devices_acquire(const struct vmmd_config *c, const struct dev_request *q,
		    struct dev_grant *ret, char *err, size_t errlen);
/* Gives back every device the job holds (restoring VF GUIDs). Returns how
 * many; problems are described in err (the leases go anyway). */
int devices_release(const struct vmmd_config *c, uint32_t job_id, char *err,
		    size_t errlen);
/* Reconcile: releases the devices of every job for which alive() says
 * false (and damaged leases). Returns how many were released. */
int devices_sweep(const struct vmmd_config *c,
		  bool (*alive)(uint32_t job_id, void *data), void *data);

/* run_dir/devices */
int devices_lease_dir(const struct vmmd_config *c, char *buf, size_t len);

#endif
