/* SPDX-License-Identifier: MIT */
/*
 * What Slurm says about a job, asked of slurmctld (libslurm). The plugin
 * only hands vmmd a job id, uid and gid; the working directory, this node's
 * CPUs (which ones, not only how many), memory and GPUs, and the end time
 * come from Slurm itself, which is also the truth for "is this job still
 * running here" when vmmd reconciles. Nothing a user could set decides
 * which host devices or CPUs a guest gets.
 */
#ifndef VMMD_SLURMJOB_H
#define VMMD_SLURMJOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

struct slurmjob_info {
	uint32_t job_id;
	uint32_t uid;
	uint32_t gid;
	bool active;  /* pending, running, suspended, or completing */
	bool ending;  /* completing or done: no new step will come */
	bool on_node; /* this node is in the allocation */
	/* It will not run again: done, or completing without a requeue (a
	 * requeued job completes as pending). */
	bool finished;
	uint32_t cpus;	  /* CPUs allocated on this node */
	uint64_t mem_mib; /* memory allocated on this node; 0 = none set */
	time_t end_time;
	/* How often Slurm started the job again (requeue): > 0 means a
	 * checkpoint of it may wait in the store. */
	uint32_t restart_count;
	char work_dir[VMENV_MAX_PATH];
	/* What site policies match on ("" when Slurm has none). */
	char partition[128];
	char account[128];
	char qos[128];
	/* This node's share, as slurmctld allocated it: core indices in
	 * Slurm's numbering ("0-3,8"; hostinfo_slurm_cpus() maps them to
	 * Linux CPUs), Slurm's core count of the node (Sockets x
	 * CoresPerSocket), and the GRES detail ("gpu:a100:2(IDX:0-1)"). */
	char cpu_ids[1024];
	uint32_t node_cores;
	char gres[512];
	/* The allocation's nodes (Slurm's hostlist form, "n[1-3],m4"), this
	 * node's index in it, their count, and when this run of the job
	 * started (a requeued job starts again). */
	char nodes[1024];
	uint32_t node_index;
	uint32_t nnodes;
	time_t start_time;
};

/* 0; -ENOENT when Slurm does not know the job; other -errno with err. */
typedef int (*slurmjob_lookup_f)(uint32_t job_id, const char *node,
				 struct slurmjob_info *ret, char *err,
				 size_t errlen);

int slurmjob_lookup(uint32_t job_id, const char *node,
		    struct slurmjob_info *ret, char *err, size_t errlen);

/* Slurm's hostlist expanded: *names (NULL-terminated, malloc'ed, free with
 * strv_free) and *n. 0, -EINVAL for a bad list, -E2BIG past
 * max names, -ENOMEM. */
int slurmjob_hostlist_expand(const char *hostlist, uint32_t max, char ***names,
			     uint32_t *n);
/* Puts a job back in the queue (after its checkpoint): 0 or -errno with
 * Slurm's reason in err. */
typedef int (*slurmjob_requeue_f)(uint32_t job_id, char *err, size_t errlen);

int slurmjob_requeue(uint32_t job_id, char *err, size_t errlen);

/* The node as Slurm sees it (vmmd evacuates a node drained with the
 * site's reason, docs/checkpoint.md "Evacuating a node"). */
struct slurmnode_info {
	bool drain; /* drain asked (draining or drained) */
	char reason[256];
};
struct slurmnode_ops {
	/* 0, or -errno with Slurm's reason in err. */
	int (*state)(const char *node, struct slurmnode_info *ret, char *err,
		     size_t errlen);
	/* Drains the node with reason: running jobs go on, no new ones
	 * come. 0, or -errno with Slurm's reason in err. */
	int (*drain)(const char *node, const char *reason, char *err,
		     size_t errlen);
};
extern const struct slurmnode_ops slurmnode_libslurm;

#endif
