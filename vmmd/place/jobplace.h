/* SPDX-License-Identifier: MIT */
/*
 * job.c's step from "Slurm gave this job these CPUs, this memory and these
 * GPUs on this node" to the guest's placement and devices: reads the host
 * (hostinfo), maps Slurm's core indices to Linux CPUs, takes the job's
 * devices (devices.h) and builds the placement (placement.h). Logs advice
 * (a device far from the job's CPUs); errors go to the caller.
 */
#ifndef VMMD_JOBPLACE_H
#define VMMD_JOBPLACE_H

#include <stddef.h>

#include "domxml.h"
#include "jobrec.h"
#include "slurmjob.h"
#include "vmspec.h"

/* What the merged spec (request x policy) adds to Slurm's allocation:
 * ib_vfs, hugepages, gpus (pass Slurm's GPUs or not), emulator_threads
 * (the job's CPUs, or the node's housekeeping_cpus).
 * On success *ret is malloc'ed (caller frees) and j->vcpus/j->mem_mib are
 * the guest's; the job then holds its devices until job_release_devices.
 * On failure the job holds nothing. alloc_mib is the job's memory on the
 * node (the hard limit); j->mem_mib the guest's RAM before placement. */
int job_place(struct job *j, const struct slurmjob_info *si,
	      const struct vmspec_values *spec, uint32_t alloc_mib,
	      struct dom_placement **ret, char *err, size_t errlen);

/* Gives the job's devices back (logged). */
void job_release_devices(struct job *j);

/* Reconcile: devices of jobs vmmd no longer has. */
void job_sweep_devices(struct vmmd *d);

#endif
