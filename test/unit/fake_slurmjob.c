// SPDX-License-Identifier: MIT
/* Slurm for test_vmmd: a table of jobs instead of slurmctld. */
#include "fakes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int fake_slurm_fail;
unsigned fake_slurm_calls;

static struct slurmjob_info jobs[FAKE_SLURM_MAX_JOBS];
static size_t njobs;

void fake_slurm_reset(void)
{
	memset(jobs, 0, sizeof(jobs));
	njobs = 0;
	fake_slurm_fail = 0;
	fake_slurm_calls = 0;
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
