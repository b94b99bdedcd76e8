/* SPDX-License-Identifier: MIT */
/*
 * jobnet_host: a job's private network on this node, from the plan
 * (jobnet.h) to the devices (hostnet.h) and back: what job.c calls around
 * the guest's life, and what reconcile sweeps. Calls d->net; without one
 * (tests that have no use for it) a multi-node job is refused.
 */
#ifndef VMMD_JOBNET_HOST_H
#define VMMD_JOBNET_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "domxml.h"
#include "jobnet.h"
#include "slurmjob.h"
#include "vmmd.h"
#include "vmmdconf.h"

/* The network of job_id's guest on this node: the site key, and with a
 * tunnel net_nodes_file, read now. 0 or -errno with the reason. */
int jobnet_host_plan(struct vmmd *d, uint32_t job_id,
		     const struct slurmjob_info *si, struct jobnet *ret,
		     char *err, size_t errlen);

/* Before the guest: the guard, the job's bridge and tunnel on this host;
 * then the guest's NIC into s (pointing into n). 0 or -errno. */
int jobnet_host_up(struct vmmd *d, uint32_t job_id, const struct jobnet *n,
		   struct dom_spec *s, char *err, size_t errlen);

/* After job_id's guest here is gone: its bridge goes unless another guest
 * of the job on this host (another vmmd's) is still on it. Nothing for a
 * job without one. Logs what it did. */
void jobnet_host_release(struct vmmd *d, uint32_t job_id);

/* Reconcile: the guard again (a firewall reload may have flushed it), and
 * the bridges without guests of jobs that Slurm runs no more. */
void jobnet_host_sweep(struct vmmd *d);

/* The host's lock file for d->net: beside the nodes' run directories
 * (run_dir's parent), so every vmmd of the host shares it. */
int jobnet_host_lock_path(const struct vmmd_config *c, char *out, size_t size);

#endif
