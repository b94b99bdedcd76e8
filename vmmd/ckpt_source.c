/* SPDX-License-Identifier: MIT */
#include "ckpt_source.h"

#include "ckpt_store.h"
#include "job.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
	struct stat st;

	if (ckpt_store_job_dir(s->root, s->from, jdir, sizeof(jdir)) == 0 &&
	    stat(jdir, &st) == 0)
		return err_set(err, errlen, -ENOENT,
			       "job %u: --vm-restore=%u: %s holds no complete "
			       "checkpoint of job %u (an interrupted save)",
			       s->job_id, s->from, jdir, s->from);
	return err_set(err, errlen, -ENOENT,
		       "job %u: --vm-restore=%u: no checkpoint of job %u in %s "
		       "(none taken, not kept with --vm-checkpoint-keep, "
		       "already restored, or past the retention time)",
		       s->job_id, s->from, s->from, s->root);
}

int ckpt_source_find(struct vmmd *d, const struct ckpt_source *s, char *dir,
		     size_t dirlen, struct ckpt_manifest *man, char *err,
		     size_t errlen)
{
	char why[PROTO_MAX_ERROR];
	uint32_t seq;
	int r;

	memset(man, 0, sizeof(*man));
	if (s->from == s->job_id)
		return err_set(err, errlen, -EINVAL,
			       "job %u: --vm-restore=%u names the job itself",
			       s->job_id, s->from);
	if ((r = source_ended(d, s, err, errlen)) < 0)
		return r;
	if (ckpt_store_latest(s->root, s->from, &seq) < 0)
		return no_checkpoint(s, err, errlen);
	if (ckpt_store_seq_dir(s->root, s->from, seq, dir, dirlen) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: checkpoint path too long", s->job_id);
	if ((r = ckpt_store_load(dir, man, why, sizeof(why))) < 0)
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
