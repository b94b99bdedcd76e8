/* SPDX-License-Identifier: MIT */
/*
 * sbatch, salloc and srun: the --vm-env option and its environment
 * variables. Checks here only give the user a good message before anything
 * is queued; vmmd re-checks everything on the node.
 */
#include "plugin.h"

#include "catalog.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Where Slurm itself looks for a SPANK option in the environment (and
 * where it passes options on to steps inside the job). */
#define SLURM_OPT_ENV "SLURM_SPANK__SLURM_SPANK_OPTION_vmenv_vm_env"

int submit_init(spank_t sp)
{
	extern char *program_invocation_short_name;
	const char *prog = program_invocation_short_name;
	const char *v = NULL;

	(void)sp;
	if (strcmp(prog, "sbatch") == 0)
		v = getenv("SBATCH_VM_ENV");
	else if (strcmp(prog, "salloc") == 0)
		v = getenv("SALLOC_VM_ENV");
	if (!v || !*v)
		v = getenv("SLURM_VM_ENV");
	/* The command line still wins: Slurm applies it after this. */
	if (v && *v && !getenv(SLURM_OPT_ENV))
		setenv(SLURM_OPT_ENV, v, 1);
	return 0;
}

int submit_opt_cb(int val, const char *optarg, int remote)
{
	struct catalog cat;
	const struct catalog_image *img;
	char err[512], names[512], safe[VMENV_MAX_IMAGE_NAME];

	(void)val;
	if (remote) {
		plugin_remember_image(optarg);
		return 0;
	}
	if (!optarg || !valid_image_ref(optarg)) {
		log_err("vmenv: invalid image name '%s': use NAME or "
			"NAME:VERSION (letters, digits, '.', '_', '+', '-')",
			printable(optarg ? optarg : "", safe, sizeof(safe)));
		return -1;
	}
	if (catalog_load(plugin_cfg.catalog, &cat, err, sizeof(err)) < 0) {
		/* A login node without the catalog defers to the nodes. */
		log_info("vmenv: %s; image '%s' will be checked on the nodes",
			 err, optarg);
		return 0;
	}
	img = catalog_find(&cat, optarg);
	if (!img) {
		catalog_names(&cat, names, sizeof(names));
		log_err(
		    "vmenv: image '%s' is not in the catalog (known images: "
		    "%s)",
		    optarg, names);
	}
	catalog_clear(&cat);
	return img ? 0 : -1;
}
