/* SPDX-License-Identifier: MIT */
/*
 * What this process knows of the job's request: the --vm-env option (from
 * Slurm's option cache, or remembered from its callback or the job's
 * environment), and the first reason the request is refused.
 */
#include "plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* struct spank_option wants char *, and string literals are const. */
static char opt_name[] = "vm-env";
static char opt_arg[] = "IMAGE[:VERSION]";
static char opt_usage[] =
    "Run the job inside a virtual machine booted from IMAGE on every "
    "allocated node. Also set by SBATCH_VM_ENV, SALLOC_VM_ENV or "
    "SLURM_VM_ENV.";

/* Its callback is submit.c's, set by the entry point before it registers
 * the option (a pointer here would make this file depend on submit.c). */
struct spank_option plugin_opt_vm_env = {opt_name, opt_arg, opt_usage,
					 1,	   0,	    NULL};

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
