/* SPDX-License-Identifier: MIT */
/* The only file with SPANK entry points. */
#include "plugin.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

SPANK_PLUGIN(vmenv, 1);

struct plugin_cfg plugin_cfg = {
    .catalog = VMENV_SYSCONFDIR "/catalog.json",
    .socket = VMENV_RUNDIR "/%n/vmmd.sock",
    .run_dir = VMENV_RUNDIR "/%n",
    .exec = VMENV_LIBEXECDIR "/vmenv-exec",
    .policies = VMENV_SYSCONFDIR "/policies.d",
    .srun = VMENV_SRUN,
    .timeout_ms = 8000,
};

/* struct spank_option wants char *, and string literals are const. */
static char opt_name[] = "vm-env";
static char opt_arg[] = "IMAGE[:VERSION]";
static char opt_usage[] =
    "Run the job inside a virtual machine booted from IMAGE on every "
    "allocated node. Also set by SBATCH_VM_ENV, SALLOC_VM_ENV or "
    "SLURM_VM_ENV.";

struct spank_option plugin_opt_vm_env = {opt_name, opt_arg, opt_usage,
					 1,	   0,	    submit_opt_cb};

static void slurm_sink(int prio, const char *msg)
{
	if (prio <= LOG_ERR)
		slurm_error("%s", msg);
	else if (prio <= LOG_INFO)
		slurm_info("%s", msg);
	else
		slurm_debug("%s", msg);
}

static int set_cfg(const char *arg)
{
	static const struct {
		const char *key;
		char *dst;
	} paths[] = {
	    {"catalog=", plugin_cfg.catalog},	{"socket=", plugin_cfg.socket},
	    {"run_dir=", plugin_cfg.run_dir},	{"exec=", plugin_cfg.exec},
	    {"policies=", plugin_cfg.policies}, {"srun=", plugin_cfg.srun}};
	uint32_t ms;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		size_t kl = strlen(paths[i].key);
		if (strncmp(arg, paths[i].key, kl) == 0) {
			if (arg[kl] != '/' ||
			    strlen(arg + kl) >= VMENV_MAX_PATH)
				return -1;
			strcpy(paths[i].dst, arg + kl);
			return 0;
		}
	}
	if (strncmp(arg, "timeout_ms=", 11) == 0 &&
	    parse_u32(arg + 11, &ms) == 0 && ms > 0 && ms < 600000) {
		plugin_cfg.timeout_ms = (int)ms;
		return 0;
	}
	return -1;
}

int plugin_parse_args(int ac, char **av)
{
	int bad = 0;

	for (int i = 0; i < ac; i++) {
		if (set_cfg(av[i]) < 0) {
			log_err("vmenv: init: bad plugstack.conf argument '%s'",
				av[i]);
			bad = -1;
		}
	}
	return bad;
}

int plugin_socket_path(const char *node, char *buf, size_t len)
{
	return plugin_expand_node(plugin_cfg.socket, node, buf, len);
}

int plugin_expand_node(const char *p, const char *node, char *buf, size_t len)
{
	const char *n = strstr(p, "%n");
	int r;

	if (!n)
		r = snprintf(buf, len, "%s", p);
	else if (!node || !*node || strchr(node, '/'))
		return -EINVAL;
	else
		r = snprintf(buf, len, "%.*s%s%s", (int)(n - p), p, node,
			     n + 2);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

static char remembered_image[VMENV_MAX_IMAGE_NAME];
static char refusal[512];

void plugin_refuse(const char *fmt, ...)
{
	va_list ap;

	/* The first reason is the one to fix first. */
	if (*refusal)
		return;
	va_start(ap, fmt);
	vsnprintf(refusal, sizeof(refusal), fmt, ap);
	va_end(ap);
}

const char *plugin_refusal(void)
{
	return *refusal ? refusal : NULL;
}

void plugin_remember_image(const char *image)
{
	char safe[48];

	/* Cut short, a name could become another image's: only sbatch
	 * checks the length, and slurmrestd runs no plugin. */
	if (image && strlen(image) >= sizeof(remembered_image)) {
		plugin_refuse("image name '%s...' is longer than %zu bytes",
			      printable(image, safe, sizeof(safe)),
			      sizeof(remembered_image) - 1);
		return;
	}
	snprintf(remembered_image, sizeof(remembered_image), "%s",
		 image ? image : "");
}

bool plugin_image_remembered(void)
{
	return *remembered_image != '\0';
}

const char *plugin_image(spank_t sp)
{
	static char image[VMENV_MAX_IMAGE_NAME];
	char *val = NULL;

	if (spank_option_getopt(sp, &plugin_opt_vm_env, &val) !=
		ESPANK_SUCCESS ||
	    !val || !*val)
		return *remembered_image ? remembered_image : NULL;
	snprintf(image, sizeof(image), "%s", val);
	return image;
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
