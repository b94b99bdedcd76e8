/* SPDX-License-Identifier: MIT */
/* The submit side's policy context (subctx.c says where each part comes
 * from). The scanners are pure and tested on their own. */
#ifndef VMENV_SUBCTX_H
#define VMENV_SUBCTX_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"
#include "util.h"

struct subctx_args {
	char partition[256]; /* may be a list: "a,b" */
	char account[128];
	char qos[128];
	char script[VMENV_MAX_PATH]; /* the first word that is no option */
};

struct subctx {
	char user[64];
	char gnames[POLICY_MAX_GROUPS][64];
	const char *groups[POLICY_MAX_GROUPS]; /* the user's group first */
	size_t ngroups;
	struct subctx_args args;
};

/* sbatch/salloc/srun options as on their command line: fills what a is
 * still missing (earlier sources win). */
void subctx_scan_args(int argc, char **argv, bool is_sbatch,
		      struct subctx_args *a);
/* A batch script's #SBATCH lines, up to its first command. */
void subctx_scan_script(const char *text, struct subctx_args *a);
/* Everything, for the running sbatch, salloc or srun (prog); in_job: srun
 * inside an existing allocation. */
void subctx_fill(struct subctx *c, const char *prog, bool in_job);

#endif
