/* SPDX-License-Identifier: MIT */
/*
 * Each task of a VM job (slurmstepd, as the user, just before Slurm execs
 * the task): argv[0] of the very argv Slurm is about to exec becomes
 * vmenv-exec, which runs the original command in the job's guest. Changing
 * argv rather than exec-ing here keeps Slurm's own TaskProlog, TMPDIR and
 * rlimit handling. (Slurm 23.11 has spank_prepend_task_argv; 22.05 not.)
 */
#include "plugin.h"

#include "log.h"

#include <slurm/slurm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set(spank_t sp, const char *name, const char *val)
{
	if (spank_setenv(sp, name, val, 1) != ESPANK_SUCCESS) {
		log_err("vmenv: task: cannot set %s", name);
		return -1;
	}
	return 0;
}

/* Only the plugin says a job is refused: a VMENV_REFUSED the user put in
 * the environment goes. */
static int set_refusal(spank_t sp, const char *refused)
{
	if (refused)
		return set(sp, "VMENV_REFUSED", refused);
	if (spank_unsetenv(sp, "VMENV_REFUSED") != ESPANK_SUCCESS) {
		log_err("vmenv: task: cannot unset VMENV_REFUSED");
		return -1;
	}
	return 0;
}

int task_init(spank_t sp)
{
	char node[256] = "", sock[VMENV_MAX_PATH];
	uint32_t step = 0;
	char **argv = NULL;
	char *shim;
	int argc = 0;

	/* A VM job whose request could not even be sent still runs the
	 * shim: it fails the job with the reason in the job's output,
	 * rather than the task running on the host. */
	const char *refused = plugin_refusal();

	if (!refused && !plugin_image(sp))
		return 0;
	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS ||
	    argc < 1 || !argv || !argv[0]) {
		log_err("vmenv: task: no command to run");
		return -1;
	}
	spank_get_item(sp, S_JOB_STEPID, &step);
	plugin_node_name(sp, node, sizeof(node));
	if (plugin_socket_path(node, sock, sizeof(sock)) < 0) {
		log_err("vmenv: task: cannot form vmmd's socket path");
		return -1;
	}
	shim = strdup(plugin_cfg.exec);
	if (!shim || set(sp, "VMENV_ARGV0", argv[0]) < 0 ||
	    set(sp, "VMENV_SOCKET", sock) < 0 ||
	    set(sp, "VMENV_BATCH", step == SLURM_BATCH_SCRIPT ? "1" : "0") <
		0 ||
	    set(sp, "VMENV_SRUN", plugin_cfg.srun) < 0 ||
	    set_refusal(sp, refused) < 0) {
		free(shim);
		return -1;
	}
	/* argv belongs to slurmstepd and is exec'ed right after this hook;
	 * the old argv[0] is not ours to free. */
	argv[0] = shim;
	return 0;
}
