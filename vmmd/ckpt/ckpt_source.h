/* SPDX-License-Identifier: MIT */
/*
 * --vm-restore=JOBID: finding the checkpoint another job of the same user
 * left in the store (kept with checkpoint_keep), and the checks before
 * anything of the new guest exists: the old job has ended (a pending or
 * running job may still restore its own checkpoint), a complete
 * checkpoint is there, and it is the new job's user's.
 */
#ifndef VMMD_CKPT_SOURCE_H
#define VMMD_CKPT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt_store.h"

struct vmmd;

struct ckpt_source {
	/* The store (the new job's); not open: it does not exist. */
	const struct ckpt_store *store;
	uint32_t job_id; /* the new job */
	uint32_t uid;	 /* its user */
	uint32_t from;	 /* the job whose checkpoint it restores */
};

/* 0 with the checkpoint's directory open in *ret_dirfd (closed first
 * when >= 0), its path in dir and its manifest in *man
 * (ckpt_manifest_clear it); -errno with the reason in err, naming both
 * jobs and the store. The manifest is evidence of the job and its owner:
 * it is read from a directory only root can write (ckpt_store.h). */
int ckpt_source_find(struct vmmd *d, const struct ckpt_source *s,
		     int *ret_dirfd, char *dir, size_t dirlen,
		     struct ckpt_manifest *man, char *err, size_t errlen);

#endif
