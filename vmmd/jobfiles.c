/* SPDX-License-Identifier: MIT */
/*
 * jobfiles.h's calls, dispatched on the job's kind. Each kind is a table
 * of operations in a file of its own; a kind that is not built answers
 * -EOPNOTSUPP with the reason.
 */
#include "jobfiles.h"

#include "cleanup.h"
#include "job.h"
#include "jobfiles_priv.h"
#include "log.h"

#include <errno.h>
#include <string.h>

static const struct jobfiles_ops *const kinds[] = {
    [JOBFILES_VIRTIO_9P] = &jobfiles_9p_ops,
    [JOBFILES_SERVED] = &jobfiles_served_ops,
};

static const struct jobfiles_ops *ops(const struct job *j)
{
	if ((size_t)j->files_kind >= ARRAY_SIZE(kinds))
		return NULL;
	return kinds[j->files_kind];
}

static int missing(const struct job *j, char *err, size_t errlen)
{
	return err_set(err, errlen, -EOPNOTSUPP,
		       "job %u: this vmmd cannot serve the job's files that "
		       "way (kind %d)",
		       j->id, (int)j->files_kind);
}

int jobfiles_prepare(struct job *j, char *err, size_t errlen)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return missing(j, err, errlen);
	return o->prepare ? o->prepare(j, err, errlen) : 0;
}

int jobfiles_domspec(const struct job *j, struct dom_spec *s)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return -EOPNOTSUPP;
	return o->domspec(j, s);
}

int jobfiles_attach(struct job *j, char *err, size_t errlen)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return missing(j, err, errlen);
	return o->attach ? o->attach(j, err, errlen) : 0;
}

int jobfiles_freeze(struct job *j, const char *ckpt_dir, char *err,
		    size_t errlen)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return missing(j, err, errlen);
	return o->freeze ? o->freeze(j, ckpt_dir, err, errlen) : 0;
}

int jobfiles_thaw(struct job *j, const char *ckpt_dir, char *err, size_t errlen)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return missing(j, err, errlen);
	return o->thaw ? o->thaw(j, ckpt_dir, err, errlen) : 0;
}

void jobfiles_stop(struct job *j)
{
	const struct jobfiles_ops *o = ops(j);

	if (o && o->stop)
		o->stop(j);
}
