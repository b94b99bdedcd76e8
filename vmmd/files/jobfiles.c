/* SPDX-License-Identifier: MIT */
/*
 * jobfiles.h's calls, dispatched on the job's kind. Each kind is a table
 * of operations in a file of its own; a kind that is not built answers
 * -EOPNOTSUPP with the reason.
 */
#include "jobfiles.h"

#include "cleanup.h"
#include "jobfiles_ops.h"
#include "jobfiles_served.h"
#include "jobrec.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <string.h>

static const struct jobfiles_ops *const kinds[] = {
    [JOBFILES_VIRTIO_9P] = &jobfiles_9p_ops,
    [JOBFILES_SERVED] = &jobfiles_served_ops,
};

static const char *const kind_names[] = {
    [JOBFILES_VIRTIO_9P] = "9p",
    [JOBFILES_SERVED] = "served",
};

enum jobfiles_kind jobfiles_kind_pick(const struct vmmd_config *c,
				      bool checkpoint, uint32_t files)
{
	if (!checkpoint)
		return JOBFILES_VIRTIO_9P;
	switch (files) {
	case VMSPEC_CF_SERVED:
		return JOBFILES_SERVED;
	case VMSPEC_CF_9P:
		return JOBFILES_VIRTIO_9P;
	default:
		return strcmp(c->checkpoint_files, "served") == 0
			   ? JOBFILES_SERVED
			   : JOBFILES_VIRTIO_9P;
	}
}

enum jobfiles_kind jobfiles_kind_for(const struct job *j)
{
	return jobfiles_kind_pick(&j->d->cfg, j->spec.v.checkpoint,
				  j->spec.v.checkpoint_files);
}

const char *jobfiles_kind_name(enum jobfiles_kind k)
{
	return (size_t)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

int jobfiles_kind_parse(const char *s, enum jobfiles_kind *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*k = (enum jobfiles_kind)i;
			return 0;
		}
	return -EINVAL;
}

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

/* vmenv-9p never runs as root: a file server with root's rights in
 * front of an untrusted guest is what the served kind exists to avoid
 * (it refuses uid 0 itself). Said at once, rather than as a guest that
 * never becomes ready. */
static int refuse_root(const struct job *j, char *err, size_t errlen)
{
	return err_set(err, errlen, -EPERM,
		       "job %u: root's jobs cannot checkpoint with served "
		       "files (vmenv-9p, which serves them, never runs as "
		       "root): run the job as an ordinary user, or use "
		       "--vm-checkpoint-files=9p",
		       j->id);
}

int jobfiles_prepare(struct job *j, char *err, size_t errlen)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return missing(j, err, errlen);
	if (j->files_kind == JOBFILES_SERVED && j->uid == 0)
		return refuse_root(j, err, errlen);
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

int jobfiles_thaw(struct job *j, const char *ckpt_dir,
		  jobfiles_restored_f restored, char *err, size_t errlen)
{
	const struct jobfiles_ops *o = ops(j);

	if (!o)
		return missing(j, err, errlen);
	return o->thaw ? o->thaw(j, ckpt_dir, restored, err, errlen) : 0;
}

void jobfiles_adopt(struct job *j)
{
	char err[1024];

	if (j->files_kind == JOBFILES_SERVED &&
	    jobfiles_served_adopt(j, err, sizeof(err)) < 0)
		log_warn("%s", err);
}

void jobfiles_reap_dir(const char *dir)
{
	int n = jobfiles_served_reap_dir(dir);

	if (n > 0)
		log_warn("reconcile: ended %d vmenv-9p of %s (its job is gone)",
			 n, dir);
}

void jobfiles_stop(struct job *j)
{
	const struct jobfiles_ops *o = ops(j);

	if (o && o->stop)
		o->stop(j);
}

/* Only the served kind has a server that outlives QEMU's end by a moment;
 * no table entry: these run on plain values (the worker thread). */
void jobfiles_after_save_plan(const struct job *j,
			      struct jobfiles_after_save *p)
{
	memset(p, 0, sizeof(*p));
	if (j->files_kind == JOBFILES_SERVED)
		jobfiles_served_plan(j, p);
}

int jobfiles_after_save_run(const struct jobfiles_after_save *p,
			    const char *ckpt_dir, char *err, size_t errlen)
{
	return jobfiles_served_after_save(p, ckpt_dir, err, errlen);
}

void jobfiles_saved(struct job *j)
{
	if (j->files_kind == JOBFILES_SERVED)
		jobfiles_served_forget(j);
}
