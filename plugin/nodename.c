/* SPDX-License-Identifier: MIT */
/*
 * Which node a step runs on, from inside slurmstepd. SLURMD_NODENAME is
 * the answer for the batch and extern steps (slurmd sets it), but a step
 * started by an srun inside a job carries the environment of the srun,
 * SLURMD_NODENAME of the node the srun ran on included, until slurmstepd
 * sets the task's own just before exec. For those steps the step's node
 * list (SLURM_STEP_NODELIST, set by srun) and the node's index in it
 * (S_JOB_NODEID) say which node this is.
 */
#include "plugin.h"

#include <slurm/slurm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entry idx of a Slurm hostlist, with libslurm's parser (slurmstepd
 * exports it to plugins). */
static int hostlist_nth(const char *list, uint32_t idx, char *buf, size_t len)
{
	hostlist_t hl = slurm_hostlist_create(list);
	char *h = NULL;
	int r = -1;

	if (!hl)
		return -1;
	for (uint32_t i = 0; i <= idx; i++) {
		free(h);
		h = slurm_hostlist_shift(hl);
		if (!h)
			break;
	}
	if (h && strlen(h) < len) {
		snprintf(buf, len, "%s", h);
		r = 0;
	}
	free(h);
	slurm_hostlist_destroy(hl);
	return r;
}

static void from_env(spank_t sp, char *buf, size_t len)
{
	if (spank_getenv(sp, "SLURMD_NODENAME", buf, (int)len) !=
	    ESPANK_SUCCESS) {
		const char *n = getenv("SLURMD_NODENAME");

		snprintf(buf, len, "%s", n ? n : "");
	}
}

void plugin_node_name(spank_t sp, char *buf, size_t len)
{
	char list[4096];
	uint32_t step = 0, nodeid = 0;

	buf[0] = '\0';
	if (spank_get_item(sp, S_JOB_STEPID, &step) == ESPANK_SUCCESS &&
	    step != SLURM_BATCH_SCRIPT && step != SLURM_EXTERN_CONT &&
	    spank_get_item(sp, S_JOB_NODEID, &nodeid) == ESPANK_SUCCESS &&
	    spank_getenv(sp, "SLURM_STEP_NODELIST", list, sizeof(list)) ==
		ESPANK_SUCCESS &&
	    hostlist_nth(list, nodeid, buf, len) == 0)
		return;
	from_env(sp, buf, len);
}
