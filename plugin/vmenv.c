/* SPDX-License-Identifier: MIT */
/* The only file with SPANK entry points: they dispatch by context to
 * submit.c (sbatch, salloc, srun), jobctl.c and task.c (slurmstepd). */
#include "plugin.h"

#include "log.h"

SPANK_PLUGIN(vmenv, 1);

static void slurm_sink(int prio, const char *msg)
{
	if (prio <= LOG_ERR)
		slurm_error("%s", msg);
	else if (prio <= LOG_INFO)
		slurm_info("%s", msg);
	else
		slurm_debug("%s", msg);
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	log_set_sink(slurm_sink);
	log_set_level(LOG_DEBUG);
	if (ctx == S_CTX_SLURMD || ctx == S_CTX_ERROR)
		return 0;
	/* A broken argument list must not fail every job on the node; the
	 * defaults apply and the error is in the log. */
	plugin_parse_args(ac, av);
	plugin_opt_vm_env.cb = submit_opt_cb;
	if (spank_option_register(sp, &plugin_opt_vm_env) != ESPANK_SUCCESS) {
		log_err("vmenv: init: cannot register --vm-env");
		return -1;
	}
	if (plugin_register_options(sp) < 0)
		return -1;
	if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR)
		return submit_init(sp);
	return 0;
}

/* No slurm_spank_job_prolog/epilog on purpose: see jobctl.c. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	switch (spank_context()) {
	case S_CTX_REMOTE:
		return jobctl_step_init(sp);
	case S_CTX_LOCAL:
	case S_CTX_ALLOCATOR:
		return submit_post_opt(sp);
	case S_CTX_ERROR:
	case S_CTX_SLURMD:
	case S_CTX_JOB_SCRIPT:
		break;
	}
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return spank_context() == S_CTX_REMOTE ? jobctl_step_exit(sp) : 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return task_init(sp);
}
