/* SPDX-License-Identifier: MIT */
/* The one file of vmmd that calls libslurm. */
#include "slurmjob.h"

#include <errno.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pending (also a requeued job while it completes), running or
 * suspended. */
static bool state_runs(uint32_t st)
{
	uint32_t base = st & JOB_STATE_BASE;

	return base == JOB_PENDING || base == JOB_RUNNING ||
	       base == JOB_SUSPENDED;
}

static bool state_active(uint32_t st)
{
	return (st & JOB_COMPLETING) || state_runs(st);
}

static uint64_t mem_on_node(const slurm_job_info_t *j, uint32_t cpus)
{
	if (j->pn_min_memory & MEM_PER_CPU)
		return (j->pn_min_memory & ~MEM_PER_CPU) * cpus;
	return j->pn_min_memory;
}

/* Where node is in the allocation's node list, and how many nodes. */
static void node_position(const slurm_job_info_t *j, const char *node,
			  struct slurmjob_info *ret)
{
	hostlist_t hl;
	int idx;

	if (!j->nodes)
		return;
	snprintf(ret->nodes, sizeof(ret->nodes), "%s", j->nodes);
	hl = slurm_hostlist_create(j->nodes);
	if (!hl)
		return;
	idx = slurm_hostlist_find(hl, node);
	ret->nnodes = (uint32_t)slurm_hostlist_count(hl);
	ret->node_index = idx >= 0 ? (uint32_t)idx : 0;
	slurm_hostlist_destroy(hl);
}

/* The job's GRES detail for node: gres_detail_str has one entry per node
 * of the allocation, in the order of its node list. */
static void gres_on_node(const slurm_job_info_t *j, struct slurmjob_info *ret)
{
	uint32_t idx = ret->node_index;

	if (!ret->nnodes || !j->gres_detail_str || !j->gres_detail_cnt)
		return;
	if (idx < j->gres_detail_cnt && j->gres_detail_str[idx])
		snprintf(ret->gres, sizeof(ret->gres), "%s",
			 j->gres_detail_str[idx]);
}

/* Slurm's idea of the node's cores, which numbers the job's cores. */
static uint32_t node_cores(const char *node)
{
	node_info_msg_t *msg = NULL;
	uint32_t n = 0;

	if (slurm_load_node_single(&msg, (char *)(uintptr_t)node, SHOW_ALL) !=
	    SLURM_SUCCESS)
		return 0;
	if (msg->record_count > 0)
		n = (uint32_t)msg->node_array[0].sockets *
		    msg->node_array[0].cores;
	slurm_free_node_info_msg(msg);
	return n;
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
	ret->finished = !state_runs(j->job_state);
	ret->end_time = j->end_time;
	ret->restart_count = j->restart_cnt;
	if (j->job_resrcs)
		cpus = slurm_job_cpus_allocated_on_node(j->job_resrcs, node);
	ret->on_node = cpus > 0;
	ret->cpus = cpus > 0 ? (uint32_t)cpus : 0;
	if (cpus > 0 &&
	    slurm_job_cpus_allocated_str_on_node(
		ret->cpu_ids, sizeof(ret->cpu_ids), j->job_resrcs, node) != 0)
		ret->cpu_ids[0] = '\0';
	node_position(j, node, ret);
	ret->start_time = j->start_time;
	gres_on_node(j, ret);
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
		if (ret->on_node)
			ret->node_cores = node_cores(node);
		r = 0;
		break;
	}
	slurm_free_job_info_msg(msg);
	return r;
}

int slurmjob_hostlist_expand(const char *hostlist, uint32_t max, char ***names,
			     uint32_t *n)
{
	hostlist_t hl = slurm_hostlist_create(hostlist);
	char **v = NULL, *h;
	uint32_t k = 0;
	int count, r = 0;

	if (!hl)
		return -EINVAL;
	count = slurm_hostlist_count(hl);
	if (count <= 0 || (uint32_t)count > max) {
		slurm_hostlist_destroy(hl);
		return count <= 0 ? -EINVAL : -E2BIG;
	}
	v = calloc((size_t)count + 1, sizeof(*v));
	while (v && (h = slurm_hostlist_shift(hl))) {
		/* libslurm's string: freed with free() like its other
		 * hostlist results. */
		if (k < (uint32_t)count)
			v[k++] = h;
		else
			free(h);
	}
	slurm_hostlist_destroy(hl);
	if (!v)
		r = -ENOMEM;
	else if (k != (uint32_t)count) {
		strv_free(v);
		r = -EINVAL;
	}
	if (r == 0) {
		*names = v;
		*n = k;
	}
	return r;
}

int slurmjob_requeue(uint32_t job_id, char *err, size_t errlen)
{
	if (slurm_requeue(job_id, 0) == SLURM_SUCCESS)
		return 0;
	snprintf(err, errlen, "Slurm refused to requeue job %u: %s", job_id,
		 slurm_strerror(slurm_get_errno()));
	return -EPERM;
}

static int node_state(const char *node, struct slurmnode_info *ret, char *err,
		      size_t errlen)
{
	node_info_msg_t *msg = NULL;

	memset(ret, 0, sizeof(*ret));
	if (slurm_load_node_single(&msg, (char *)(uintptr_t)node, SHOW_ALL) !=
	    SLURM_SUCCESS) {
		snprintf(err, errlen, "Slurm does not tell node %s's state: %s",
			 node, slurm_strerror(slurm_get_errno()));
		return -EIO;
	}
	if (msg->record_count < 1) {
		slurm_free_node_info_msg(msg);
		snprintf(err, errlen, "Slurm does not know node %s", node);
		return -ENOENT;
	}
	ret->drain = (msg->node_array[0].node_state & NODE_STATE_DRAIN) != 0;
	if (msg->node_array[0].reason)
		snprintf(ret->reason, sizeof(ret->reason), "%s",
			 msg->node_array[0].reason);
	slurm_free_node_info_msg(msg);
	return 0;
}

static int node_drain(const char *node, const char *reason, char *err,
		      size_t errlen)
{
	update_node_msg_t m;

	slurm_init_update_node_msg(&m);
	m.node_names = (char *)(uintptr_t)node;
	m.node_state = NODE_STATE_DRAIN;
	m.reason = (char *)(uintptr_t)reason;
	m.reason_uid = 0;
	if (slurm_update_node(&m) == SLURM_SUCCESS)
		return 0;
	snprintf(err, errlen, "Slurm refused to drain node %s: %s", node,
		 slurm_strerror(slurm_get_errno()));
	return -EPERM;
}

const struct slurmnode_ops slurmnode_libslurm = {
    .state = node_state,
    .drain = node_drain,
};
