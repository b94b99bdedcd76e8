/* SPDX-License-Identifier: MIT */
/* The kinds behind jobfiles.h: one table of operations each. A NULL
 * operation does nothing and succeeds (domspec is required). With the
 * types the kinds and jobfiles.h share, so that a kind does not depend on
 * the front that dispatches to it. */
#ifndef VMMD_JOBFILES_OPS_H
#define VMMD_JOBFILES_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct job;
struct dom_spec;

/* The served kind's servers: the working directory's and one per mount
 * (as many as vmspec.h's VMSPEC_MAX_MOUNTS: jobfiles_served.c checks). */
#define JOBFILES_MAX_MOUNTS  16u
#define JOBFILES_MAX_SERVERS (1u + JOBFILES_MAX_MOUNTS)

/* What the worker does after a save (jobfiles.h, jobfiles_after_save_plan). */
struct jobfiles_after_save {
	uint32_t n; /* servers to wait for */
	struct {
		pid_t pid;  /* the server, or 0 */
		int pidfd;  /* its pidfd (the job's), or -1 */
		bool child; /* a child of this vmmd */
		char name
		    [24]; /* q/<name>.state.pending -> <ckpt>/<name>.pending */
	} srv[JOBFILES_MAX_SERVERS];
	uid_t uid;		   /* who owns what they keep */
	char qdir[VMENV_MAX_PATH]; /* the job's q/ */
};

/* During a restore: the fd of the checkpoint's file name as the restore
 * opened and verified it (still the caller's: not closed here) and its
 * size; -ENOENT when the checkpoint does not list it. What is restored
 * is read from the fd that was hashed, never opened again by name. */
typedef int (*jobfiles_restored_f)(const struct job *j, const char *name,
				   uint64_t *ret_size);

struct jobfiles_ops {
	int (*prepare)(struct job *j, char *err, size_t errlen);
	int (*domspec)(const struct job *j, struct dom_spec *s);
	int (*attach)(struct job *j, char *err, size_t errlen);
	int (*freeze)(struct job *j, const char *ckpt_dir, char *err,
		      size_t errlen);
	int (*thaw)(struct job *j, const char *ckpt_dir,
		    jobfiles_restored_f restored, char *err, size_t errlen);
	void (*stop)(struct job *j);
};

extern const struct jobfiles_ops jobfiles_9p_ops;
extern const struct jobfiles_ops jobfiles_served_ops;

#endif
