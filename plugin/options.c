/* SPDX-License-Identifier: MIT */
/*
 * The --vm-* options besides --vm-env (which vmenv.c owns): one SPANK
 * option per concern, registered from the table in common/vmspec_opt.c,
 * each mirrored by SBATCH_VM_*, SALLOC_VM_* and SLURM_VM_* variables.
 *
 * Every value is kept as the user wrote it. On the submit side the
 * callback checks its syntax for a good message (the policy check of the
 * whole request is submit.c's, once all options are known); in slurmstepd
 * the values go to vmmd as they are, and vmmd judges them.
 */
#include "plugin.h"

#include "envopt.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SPANK wants char * for name, arginfo and usage. */
static char texts[VMSPEC_NOPTS][3][512];
static struct spank_option opts[VMSPEC_NOPTS];
/* What each option was given as ("" for a bare yes/no option); NULL when
 * it was not given. */
static char *given[VMSPEC_NOPTS];

void plugin_remember_option(enum vmspec_opt o, const char *value)
{
	char *copy = strdup(value ? value : "");

	if (!copy) {
		log_err("vmenv: out of memory");
		return;
	}
	free(given[o]);
	given[o] = copy;
}

const char *plugin_option_given(enum vmspec_opt o)
{
	return given[o];
}

static int option_cb(int val, const char *optarg, int remote)
{
	struct vmspec_request *r;
	char err[512];
	int rc;

	if (val <= VMSPEC_OPT_ENV || val >= VMSPEC_NOPTS)
		return -1;
	/* A valueless option (sbatch --vm-checkpoint) reaches the job's
	 * sruns through the environment as "(null)": Slurm's printf of
	 * the NULL optarg. */
	if (optarg && strcmp(optarg, "(null)") == 0)
		optarg = NULL;
	plugin_remember_option(val, optarg);
	if (remote)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	rc = vmspec_request_set(r, val, optarg, err, sizeof(err));
	free(r);
	if (rc < 0) {
		log_err("vmenv: %s", err);
		return -1;
	}
	return 0;
}

int plugin_register_options(spank_t sp)
{
	for (int o = VMSPEC_OPT_ENV + 1; o < VMSPEC_NOPTS; o++) {
		const struct vmspec_option *vo = vmspec_option(o);
		char sb[64], sa[64], sl[64];

		vmspec_option_env(o, "SBATCH_", sb, sizeof(sb));
		vmspec_option_env(o, "SALLOC_", sa, sizeof(sa));
		vmspec_option_env(o, "SLURM_", sl, sizeof(sl));
		snprintf(texts[o][0], sizeof(texts[o][0]), "%s", vo->name);
		snprintf(texts[o][1], sizeof(texts[o][1]), "%s", vo->arg);
		snprintf(texts[o][2], sizeof(texts[o][2]),
			 "%s Also set by %s, %s or %s.", vo->help, sb, sa, sl);
		opts[o] = (struct spank_option){
		    .name = texts[o][0],
		    .arginfo = texts[o][1],
		    .usage = texts[o][2],
		    /* yes/no options may be given bare: --vm-checkpoint */
		    .has_arg = vo->optional_arg ? 2 : 1,
		    .val = o,
		    .cb = option_cb,
		};
		if (spank_option_register(sp, &opts[o]) != ESPANK_SUCCESS) {
			log_err("vmenv: init: cannot register --%s", vo->name);
			return -1;
		}
	}
	return 0;
}

/* Where Slurm looks for a SPANK option in the environment, and where it
 * passes options on to steps inside the job:
 * SLURM_SPANK__SLURM_SPANK_OPTION_vmenv_vm_hugepages. */
static void slurm_env_name(enum vmspec_opt o, char *buf, size_t len)
{
	snprintf(buf, len, "SLURM_SPANK__SLURM_SPANK_OPTION_vmenv_%s",
		 vmspec_option(o)->name);
	for (char *p = buf; *p; p++)
		if (*p == '-')
			*p = '_';
}

void plugin_mirror_env(const char *prog)
{
	const char *prefix = strcmp(prog, "sbatch") == 0   ? "SBATCH_"
			     : strcmp(prog, "salloc") == 0 ? "SALLOC_"
							   : NULL;

	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		char name[128], slurm[128];
		const char *v = NULL;

		if (prefix &&
		    vmspec_option_env(o, prefix, name, sizeof(name)) == 0)
			v = getenv(name);
		if ((!v || !*v) &&
		    vmspec_option_env(o, "SLURM_", name, sizeof(name)) == 0)
			v = getenv(name);
		slurm_env_name(o, slurm, sizeof(slurm));
		/* The command line still wins: Slurm applies it after
		 * this. */
		if (v && *v && !getenv(slurm))
			setenv(slurm, v, 1);
	}
}

/* envopt's view of the job's environment in slurmstepd. */
static int job_getenv(void *data, const char *name, char *buf, size_t len)
{
	spank_err_t r = spank_getenv(data, name, buf, (int)len);

	if (r == ESPANK_NOSPACE)
		return -ENOSPC;
	return r == ESPANK_SUCCESS ? 0 : -ENOENT;
}

/* Keeps a value taken from the environment like the option's, and puts
 * it where sbatch's options are in a job's environment: vmenv-exec passes
 * them to the srun that starts the other nodes' guests, and an srun in
 * the job reads them. It replaces whatever the submitter put there, so
 * every guest of the job gets the value this step asked for. */
static void adopt(spank_t sp, uint32_t job_id, enum vmspec_opt o,
		  const struct envopt *e)
{
	char slurm[128], safe[96];

	if (o == VMSPEC_OPT_ENV)
		plugin_remember_image(e->value[o]);
	else
		plugin_remember_option(o, e->value[o]);
	slurm_env_name(o, slurm, sizeof(slurm));
	if (spank_setenv(sp, slurm, e->value[o], 1) != ESPANK_SUCCESS)
		log_err("vmenv: start: job %u: cannot set %s", job_id, slurm);
	log_info("vmenv: start: job %u: --%s='%s' from %s", job_id,
		 vmspec_option(o)->name,
		 printable(e->value[o], safe, sizeof(safe)), e->from[o]);
}

void plugin_options_from_env(spank_t sp, uint32_t job_id)
{
	bool given_now[VMSPEC_NOPTS];
	struct envopt e;
	char err[256];

	for (int o = 0; o < VMSPEC_NOPTS; o++)
		given_now[o] = o == VMSPEC_OPT_ENV ? plugin_image_remembered()
						   : given[o] != NULL;
	if (envopt_collect(job_getenv, sp, given_now, &e, err, sizeof(err)) <
	    0) {
		/* -ENOMEM has no message of its own. */
		plugin_refuse("%s", *err ? err : "out of memory");
		return;
	}
	/* Options without an image make no VM job, as with sbatch (which
	 * refuses them); the step runs on the host. */
	if (!given_now[VMSPEC_OPT_ENV] && !e.value[VMSPEC_OPT_ENV]) {
		envopt_clear(&e);
		return;
	}
	for (int o = 0; o < VMSPEC_NOPTS; o++)
		if (e.value[o])
			adopt(sp, job_id, o, &e);
	envopt_clear(&e);
}

int plugin_request_from_spank(spank_t sp, struct proto_start *start)
{
	for (int o = VMSPEC_OPT_ENV + 1; o < VMSPEC_NOPTS; o++) {
		const char *v = given[o];
		char *val = NULL;

		/* slurmstepd hands options to their callback; the getopt
		 * is for contexts where it does not. */
		if (!v && opts[o].name &&
		    spank_option_getopt(sp, &opts[o], &val) == ESPANK_SUCCESS)
			v = val ? val : "";
		if (!v)
			continue;
		free(start->opts[o]);
		start->opts[o] = strdup(v);
		if (!start->opts[o])
			return -ENOMEM;
	}
	return 0;
}
