/* SPDX-License-Identifier: MIT */
/*
 * The --vm-* options of a batch job that came without any: a job
 * submitted through slurmrestd (or any client that is not sbatch) carries
 * no SPANK options, only its environment. The batch step reads the
 * documented variables there, in sbatch's order (SBATCH_VM_X, then
 * SLURM_VM_X), so such a job is a VM job exactly when the same
 * environment would have made `sbatch` submit one.
 *
 * Pure: the environment is read through a callback (slurmstepd's
 * spank_getenv in the plugin, a table in the unit test).
 */
#ifndef VMENV_ENVOPT_H
#define VMENV_ENVOPT_H

#include "vmspec.h"

#include <stdbool.h>
#include <stddef.h>

/* One variable of the job's environment into buf: 0, -ENOENT when it is
 * not set, -ENOSPC when its value does not fit in len bytes (buf then
 * holds its first len - 1 bytes, as spank_getenv's strlcpy leaves them). */
typedef int (*envopt_lookup_fn)(void *data, const char *name, char *buf,
				size_t len);

struct envopt {
	char *value[VMSPEC_NOPTS];   /* owned; NULL: not in the environment */
	char from[VMSPEC_NOPTS][64]; /* the variable the value came from */
};

/* Every option not already given (given[o] true) that the environment
 * sets to a non-empty value. 0; -ENOMEM; -E2BIG when a value is longer
 * than the request to vmmd may carry (err names the variable, quotes the
 * start of the value and says the limit). The image's limit is VMENV_MAX_IMAGE_NAME - 1 bytes, every
 * other option's VMSPEC_MAX_OPTARG - 1. On failure e holds nothing. */
int envopt_collect(envopt_lookup_fn lookup, void *data,
		   const bool given[VMSPEC_NOPTS], struct envopt *e, char *err,
		   size_t errlen);
/* Frees the values; e may be all zeroes. */
void envopt_clear(struct envopt *e);

#endif
