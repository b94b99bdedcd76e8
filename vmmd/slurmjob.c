/* SPDX-License-Identifier: MIT */
/* The one file of vmmd that calls libslurm. */
#include "slurmjob.h"

#include <errno.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <stdio.h>
#include <string.h>

static bool state_active(uint32_t st)
{
	uint32_t base = st & JOB_STATE_BASE;

	if (st & JOB_COMPLETING)
		return true;
	return base == JOB_PENDING || base == JOB_RUNNING ||
	       base == JOB_SUSPENDED;
}

static uint64_t mem_on_node(const slurm_job_info_t *j, uint32_t cpus)
{
	if (j->pn_min_memory & MEM_PER_CPU)
		return (j->pn_min_memory & ~MEM_PER_CPU) * cpus;
	return j->pn_min_memory;
}

static void fill(const slurm_job_info_t *j, const char *node,
		 struct slurmjob_info *ret)
{
	int cpus = -1;

	memset(ret, 0, sizeof(*ret));
	ret->job_id = j->job_id;
	ret->uid = j->user_id;
	ret->gid = j->group_id;
	ret->active = state_active(j->job_state);
	ret->ending = (j->job_state & JOB_COMPLETING) || !ret->active;
	ret->end_time = j->end_time;
	if (j->job_resrcs)
		cpus = slurm_job_cpus_allocated_on_node(j->job_resrcs, node);
	ret->on_node = cpus > 0;
	ret->cpus = cpus > 0 ? (uint32_t)cpus : 0;
	ret->mem_mib = mem_on_node(j, ret->cpus);
	snprintf(ret->work_dir, sizeof(ret->work_dir), "%s",
		 j->work_dir ? j->work_dir : "");
	snprintf(ret->partition, sizeof(ret->partition), "%s",
		 j->partition ? j->partition : "");
	snprintf(ret->account, sizeof(ret->account), "%s",
		 j->account ? j->account : "");
	snprintf(ret->qos, sizeof(ret->qos), "%s", j->qos ? j->qos : "");
}

int slurmjob_lookup(uint32_t job_id, const char *node,
		    struct slurmjob_info *ret, char *err, size_t errlen)
{
	job_info_msg_t *msg = NULL;
	int r;

	if (slurm_load_job(&msg, job_id, SHOW_DETAIL) != SLURM_SUCCESS) {
		int e = slurm_get_errno();

		if (e == ESLURM_INVALID_JOB_ID)
			return -ENOENT;
		snprintf(err, errlen, "cannot ask slurmctld about job %u: %s",
			 job_id, slurm_strerror(e));
		return -EHOSTUNREACH;
	}
	r = -ENOENT;
	for (uint32_t i = 0; i < msg->record_count; i++) {
		if (msg->job_array[i].job_id != job_id)
			continue;
		fill(&msg->job_array[i], node, ret);
		r = 0;
		break;
	}
	slurm_free_job_info_msg(msg);
	return r;
}
