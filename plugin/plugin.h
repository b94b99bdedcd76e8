/* SPDX-License-Identifier: MIT */
/*
 * The vmenv SPANK plugin. vmenv.c owns the entry points and dispatches by
 * context to one file each: submit.c (sbatch/salloc/srun: options and
 * submit-time checks), jobctl.c (slurmstepd, root: start and stop the
 * job's guest through vmmd as steps begin and end), task.c (slurmstepd, as the user: send the
 * task into the guest through vmenv-exec).
 *
 * The plugin lives inside slurmd, slurmstepd, srun and sbatch: it never
 * exits or aborts, and it logs through Slurm with "vmenv: <phase>: ".
 */
#ifndef VMENV_PLUGIN_H
#define VMENV_PLUGIN_H

#include <slurm/spank.h>

#include "proto.h"
#include "util.h"
#include "vmspec.h"

struct plugin_cfg {
	char catalog[VMENV_MAX_PATH];
	char socket[VMENV_MAX_PATH];  /* may contain %n (node name) */
	char run_dir[VMENV_MAX_PATH]; /* vmmd's run_dir, may contain %n */
	char exec[VMENV_MAX_PATH];
	char policies[VMENV_MAX_PATH]; /* site policies for submit checks */
	char srun[VMENV_MAX_PATH];     /* starts a multi-node job's guests */
	int timeout_ms;
};

extern struct plugin_cfg plugin_cfg;
extern struct spank_option plugin_opt_vm_env;

/* plugstack.conf arguments: catalog=, socket=, run_dir=, exec=,
 * policies=, srun=, timeout_ms=. */
int plugin_parse_args(int ac, char **av);
/* The image the job asked for, or NULL when this is not a VM job. The
 * result points into a static buffer. */
const char *plugin_image(spank_t sp);
/* In slurmstepd the option reaches the plugin through its callback (the
 * value is not available to spank_option_getopt before the task hooks). */
void plugin_remember_image(const char *image);
/* Whether an image was remembered (given as an option or taken from the
 * environment by this slurmstepd). */
bool plugin_image_remembered(void);
/* A VM job this step cannot ask vmmd for (a value too long to send): the
 * reason, which the job's task prints in the job's output before failing
 * (vmenv-exec, VMENV_REFUSED). The first one is kept. */
void plugin_refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The reason, or NULL. */
const char *plugin_refusal(void);
/* cfg.socket with %n replaced by node; 0 or -errno. */
/* The node this slurmstepd serves (several slurmd may share a host). */
void plugin_node_name(spank_t sp, char *buf, size_t len);
int plugin_socket_path(const char *node, char *buf, size_t len);
/* pattern with %n replaced by node; 0 or -errno. */
int plugin_expand_node(const char *pattern, const char *node, char *buf,
		       size_t len);

/* options.c: the --vm-* options besides --vm-env. */
int plugin_register_options(spank_t sp);
/* Keeps an option's value as given (value NULL: given bare). */
void plugin_remember_option(enum vmspec_opt o, const char *value);
/* The value given ("" for a bare yes/no option), NULL when not given. */
const char *plugin_option_given(enum vmspec_opt o);
/* SBATCH_VM_X / SALLOC_VM_X / SLURM_VM_X into the variable Slurm reads
 * SPANK options from, unless that is set already (prog: sbatch, salloc,
 * srun). */
void plugin_mirror_env(const char *prog);
/* The batch step of a job that came without --vm-* options (slurmrestd):
 * takes them from the job's SBATCH_VM_X / SLURM_VM_X variables, as sbatch
 * would have, and exports them to the job like sbatch's (for srun inside
 * the job and the guests of other nodes). */
void plugin_options_from_env(spank_t sp, uint32_t job_id);
/* Copies the options of the step (all but --vm-env, which is image) into
 * start->opts, as the user wrote them: vmmd judges them. 0 or -ENOMEM. */
int plugin_request_from_spank(spank_t sp, struct proto_start *start);

/* submit.c */
int submit_init(spank_t sp);
int submit_opt_cb(int val, const char *optarg, int remote);
/* Once every option is known: the request against the site's policies,
 * for a good message before anything is queued. -1 refuses. */
int submit_post_opt(spank_t sp);

/* jobctl.c */
int jobctl_step_init(spank_t sp);
int jobctl_step_exit(spank_t sp);

/* task.c */
int task_init(spank_t sp);

#endif
