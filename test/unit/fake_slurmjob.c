// SPDX-License-Identifier: MIT
/* Slurm for test_vmmd: a table of jobs instead of slurmctld. */
#include "fakes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fake_slurm_fail;
unsigned fake_slurm_calls;
unsigned fake_slurm_requeues;
int fake_slurm_requeue_fail;
struct slurmnode_info fake_node;
unsigned fake_node_drains;
int fake_node_drain_fail;

static struct slurmjob_info jobs[FAKE_SLURM_MAX_JOBS];
static size_t njobs;

void fake_slurm_reset(void)
{
	memset(jobs, 0, sizeof(jobs));
	njobs = 0;
	fake_slurm_fail = 0;
	fake_slurm_calls = 0;
	fake_slurm_requeues = 0;
	fake_slurm_requeue_fail = 0;
	memset(&fake_node, 0, sizeof(fake_node));
	fake_node_drains = 0;
	fake_node_drain_fail = 0;
}

void fake_slurm_set(const struct slurmjob_info *info)
{
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].job_id == info->job_id) {
			jobs[i] = *info;
			return;
		}
	}
	if (njobs < FAKE_SLURM_MAX_JOBS)
		jobs[njobs++] = *info;
}

int fake_slurm_lookup(uint32_t job_id, const char *node,
		      struct slurmjob_info *ret, char *err, size_t errlen)
{
	fake_slurm_calls++;
	if (fake_slurm_fail) {
		snprintf(err, errlen, "fake: cannot ask slurmctld about job %u",
			 job_id);
		return fake_slurm_fail;
	}
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].job_id == job_id) {
			*ret = jobs[i];
			return 0;
		}
	}
	return -ENOENT;
}

/* Comma-separated names only: the fakes' jobs use no ranges. */
int slurmjob_hostlist_expand(const char *hostlist, uint32_t max, char ***names,
			     uint32_t *n)
{
	char *copy = strdup(hostlist), *save = NULL, *t;
	char **v = calloc((size_t)max + 1, sizeof(*v));
	uint32_t k = 0;

	if (!copy || !v) {
		free(copy);
		free(v);
		return -ENOMEM;
	}
	for (t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (k == max) {
			free(copy);
			strv_free(v);
			return -E2BIG;
		}
		v[k++] = strdup(t);
	}
	free(copy);
	*names = v;
	*n = k;
	return k ? 0 : -EINVAL;
}

int fake_slurm_requeue(uint32_t job_id, char *err, size_t errlen)
{
	if (fake_slurm_requeue_fail) {
		snprintf(err, errlen, "fake: Slurm refused to requeue job %u",
			 job_id);
		return fake_slurm_requeue_fail;
	}
	fake_slurm_requeues++;
	return 0;
}

static int node_state(const char *node, struct slurmnode_info *ret, char *err,
		      size_t errlen)
{
	(void)node;
	(void)err;
	(void)errlen;
	*ret = fake_node;
	return 0;
}

static int node_drain(const char *node, const char *reason, char *err,
		      size_t errlen)
{
	if (fake_node_drain_fail) {
		snprintf(err, errlen, "Slurm refused to drain node %s: fake",
			 node);
		return fake_node_drain_fail;
	}
	fake_node_drains++;
	fake_node.drain = true;
	snprintf(fake_node.reason, sizeof(fake_node.reason), "%s", reason);
	return 0;
}

const struct slurmnode_ops fake_slurm_node = {
    .state = node_state,
    .drain = node_drain,
};
