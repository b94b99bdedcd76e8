/* SPDX-License-Identifier: MIT */
/* The kinds behind jobfiles.h: one table of operations each. A NULL
 * operation does nothing and succeeds (domspec is required). */
#ifndef VMMD_JOBFILES_PRIV_H
#define VMMD_JOBFILES_PRIV_H

#include <stddef.h>

struct job;
struct dom_spec;

struct jobfiles_ops {
	int (*prepare)(struct job *j, char *err, size_t errlen);
	int (*domspec)(const struct job *j, struct dom_spec *s);
	int (*attach)(struct job *j, char *err, size_t errlen);
	int (*freeze)(struct job *j, const char *ckpt_dir, char *err,
		      size_t errlen);
	int (*thaw)(struct job *j, const char *ckpt_dir, char *err,
		    size_t errlen);
	void (*stop)(struct job *j);
};

extern const struct jobfiles_ops jobfiles_9p_ops;
extern const struct jobfiles_ops jobfiles_served_ops;

#endif
