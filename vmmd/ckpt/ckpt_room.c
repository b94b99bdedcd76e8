/* SPDX-License-Identifier: MIT */
/*
 * Before a save: the job's store opened, and the save refused when it
 * cannot fit (it would fill the file system, the node's store being on /,
 * and fail anyway) or would put the user over the node's limits on kept
 * checkpoints. Also the overlay's size, which the schedule's lead counts
 * too. These only read the store and the job: the save calls them, and
 * they call nothing of the procedure but ckpt_job.c.
 */
#include "ckpt_priv.h"

#include "jobrec.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

uint64_t ckpt_overlay_bytes(const struct job *j)
{
	char p[VMENV_MAX_PATH];
	struct stat st;

	/* disk/ is the user's for a user image: a link there says
	 * nothing. */
	if (str_printf(p, sizeof(p), "%s/disk/overlay.qcow2", j->dir) < 0 ||
	    lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* What a save writes at most: the guest's memory (the save image holds
 * no more than its RAM and the devices' state) and the overlay. */
static uint64_t save_estimate(const struct job *j)
{
	return ((uint64_t)j->mem_mib << 20) + ckpt_overlay_bytes(j);
}

/* A save that cannot fit is refused before it fills the file system
 * (the node's store is on /) and fails anyway: the estimate, 1/16 more
 * and 64 MiB (the image's header and device state, the manifest, the
 * file system's own blocks). The previous checkpoint stays until the new
 * one is complete, so it is no room. */
#define CKPT_MARGIN_MIB 64u

static int check_room(const struct job *j, const struct ckpt_store *s,
		      char *err, size_t errlen)
{
	uint64_t est = save_estimate(j), avail = 0;
	uint64_t need = est + est / 16 + ((uint64_t)CKPT_MARGIN_MIB << 20);
	int r = ckpt_store_avail(s, &avail);

	if (r < 0)
		return err_set(err, errlen, r,
			       "cannot read the free space of %s: %s", s->path,
			       strerror(-r));
	if (avail >= need)
		return 0;
	return err_set(err, errlen, -ENOSPC,
		       "%s has %llu MiB free, the save needs about %llu MiB "
		       "(guest memory %u MiB, overlay %llu MiB, and a margin)",
		       s->path, (unsigned long long)(avail >> 20),
		       (unsigned long long)(need >> 20), j->mem_mib,
		       (unsigned long long)(ckpt_overlay_bytes(j) >> 20));
}

/* Kept checkpoints outlive their jobs by days: at most
 * checkpoint_keep_max of them and checkpoint_keep_max_mib per user in a
 * store (the job's own older one is replaced by this save); est: this
 * one's bytes. */
int ckpt_kept_within(const struct job *j, const struct ckpt_store *s,
		     uint64_t est, char *err, size_t errlen)
{
	const struct vmmd_config *cfg = &j->d->cfg;
	uint64_t max = (uint64_t)cfg->checkpoint_keep_max_mib << 20;
	struct ckpt_kept k;
	int r;

	if ((r = ckpt_store_kept(s, (uint32_t)j->uid, j->id, &k)) < 0)
		return err_set(err, errlen, r,
			       "cannot count the kept checkpoints in %s: %s",
			       s->path, strerror(-r));
	if (k.count >= cfg->checkpoint_keep_max)
		return err_set(
		    err, errlen, -EDQUOT,
		    "uid %u already keeps %u checkpoint(s) in %s (job %u's "
		    "among them) and this node allows %u per user "
		    "(checkpoint_keep_max); submit with "
		    "--vm-checkpoint-keep=no, or wait until one is past the "
		    "retention time",
		    (unsigned)j->uid, k.count, s->path, k.newest_job,
		    cfg->checkpoint_keep_max);
	if (k.bytes + est > max)
		return err_set(
		    err, errlen, -EDQUOT,
		    "uid %u keeps %llu MiB of checkpoints in %s and this one "
		    "would add about %llu MiB; this node allows %u MiB per "
		    "user (checkpoint_keep_max_mib); submit with "
		    "--vm-checkpoint-keep=no, or wait until one is past the "
		    "retention time",
		    (unsigned)j->uid, (unsigned long long)(k.bytes >> 20),
		    s->path, (unsigned long long)(est >> 20),
		    cfg->checkpoint_keep_max_mib);
	return 0;
}

static int check_kept(const struct job *j, const struct ckpt_store *s,
		      char *err, size_t errlen)
{
	if (!j->spec.v.checkpoint_keep)
		return 0;
	return ckpt_kept_within(j, s, save_estimate(j), err, errlen);
}

/* Opens the job's store and starts the next checkpoint in it (c->dirfd,
 * c->dir, c->seq). *refused: the save would not fit or is over the
 * user's limit (not a failure of the store). */
int ckpt_begin_save(struct job *j, bool *refused, char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;
	int r = ckpt_open_store(j, c, true, err, errlen);

	if (r < 0)
		return r;
	if ((r = check_room(j, &c->store, err, errlen)) < 0 ||
	    (r = check_kept(j, &c->store, err, errlen)) < 0) {
		*refused = true;
		return r;
	}
	r = ckpt_store_begin(&c->store, j->id, &c->seq, c->dir, sizeof(c->dir),
			     err, errlen);
	if (r < 0)
		return r;
	c->dirfd = r;
	return 0;
}
