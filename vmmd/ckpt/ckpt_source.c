/* SPDX-License-Identifier: MIT */
#include "ckpt_source.h"

#include "ckpt_store.h"
#include "jobrec.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The old job must be over: while Slurm may still run it, the checkpoint
 * is its own (its restart restores it, and consumes it). */
static int source_ended(struct vmmd *d, const struct ckpt_source *s, char *err,
			size_t errlen)
{
	struct slurmjob_info si;
	char why[256] = "";
	int r =
	    d->slurm_lookup(s->from, d->cfg.node_name, &si, why, sizeof(why));

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot ask Slurm whether job %u has "
			       "ended (--vm-restore=%u): %s",
			       s->job_id, s->from, s->from, why);
	if (si.uid != s->uid)
		return err_set(err, errlen, -EPERM,
			       "job %u: --vm-restore=%u: job %u is another "
			       "user's",
			       s->job_id, s->from, s->from);
	if (!si.finished)
		return err_set(err, errlen, -EBUSY,
			       "job %u: --vm-restore=%u: job %u has not ended "
			       "(pending or running); its checkpoint is its "
			       "own until it does",
			       s->job_id, s->from, s->from);
	return 0;
}

static int no_checkpoint(const struct ckpt_source *s, char *err, size_t errlen)
{
	char jdir[VMENV_MAX_PATH];

	if (ckpt_store_job_dir(s->store->path, s->from, jdir, sizeof(jdir)) ==
		0 &&
	    s->store->fd >= 0 && ckpt_store_has_job(s->store, s->from))
		return err_set(err, errlen, -ENOENT,
			       "job %u: --vm-restore=%u: %s holds no complete "
			       "checkpoint of job %u (an interrupted save)",
			       s->job_id, s->from, jdir, s->from);
	return err_set(err, errlen, -ENOENT,
		       "job %u: --vm-restore=%u: no checkpoint of job %u in %s "
		       "(none taken, not kept with --vm-checkpoint-keep, "
		       "already restored, or past the retention time)",
		       s->job_id, s->from, s->from, s->store->path);
}

int ckpt_source_find(struct vmmd *d, const struct ckpt_source *s,
		     int *ret_dirfd, char *dir, size_t dirlen,
		     struct ckpt_manifest *man, char *err, size_t errlen)
{
	char why[PROTO_MAX_ERROR];
	uint32_t seq;
	int r, fd;

	memset(man, 0, sizeof(*man));
	if (s->from == s->job_id)
		return err_set(err, errlen, -EINVAL,
			       "job %u: --vm-restore=%u names the job itself",
			       s->job_id, s->from);
	if ((r = source_ended(d, s, err, errlen)) < 0)
		return r;
	if (s->store->fd < 0)
		return no_checkpoint(s, err, errlen);
	r = ckpt_store_latest(s->store, s->from, &seq, why, sizeof(why));
	if (r == -ENOENT)
		return no_checkpoint(s, err, errlen);
	if (r == 0 &&
	    (r = ckpt_store_open_seq(s->store, s->from, seq, dir, dirlen, why,
				     sizeof(why))) >= 0) {
		fd = r;
		r = ckpt_store_load(fd, dir, man, why, sizeof(why));
		if (*ret_dirfd >= 0)
			close(*ret_dirfd);
		*ret_dirfd = fd;
	}
	if (r < 0)
		return err_set(err, errlen, r, "job %u: --vm-restore=%u: %s",
			       s->job_id, s->from, why);
	if (man->job_id != s->from || man->uid != s->uid) {
		ckpt_manifest_clear(man);
		return err_set(err, errlen, -EPERM,
			       "job %u: --vm-restore=%u: checkpoint %s is not "
			       "yours (it is of job %u, uid %u)",
			       s->job_id, s->from, dir, man->job_id, man->uid);
	}
	return 0;
}
