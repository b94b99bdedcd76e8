/* SPDX-License-Identifier: MIT */
#include "ckpt_keep.h"

#include "ckpt_store.h"
#include "cleanup.h"
#include "job.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

enum ckpt_fate ckpt_fate(const struct ckpt_fate_in *in, int64_t now,
			 uint32_t retention_s)
{
	/* slurmctld away, or the job may still run: it may restore. */
	if (in->lookup < 0 && in->lookup != -ENOENT)
		return CKPT_STAYS;
	if (in->lookup == 0 && !in->finished)
		return CKPT_STAYS;
	if (!in->complete || !in->keep)
		return CKPT_GOES_ENDED;
	if (now - in->created >= (int64_t)retention_s)
		return CKPT_GOES_EXPIRED;
	return CKPT_STAYS;
}

/* What the store says of the job's newest complete checkpoint. */
static void newest(const char *root, uint32_t job_id, struct ckpt_fate_in *in)
{
	struct ckpt_manifest m;
	char dir[VMENV_MAX_PATH], why[256];
	uint32_t seq;

	if (ckpt_store_latest(root, job_id, &seq) < 0 ||
	    ckpt_store_seq_dir(root, job_id, seq, dir, sizeof(dir)) < 0)
		return;
	/* An unreadable manifest counts as incomplete: no one can restore
	 * it. */
	if (ckpt_store_load(dir, &m, why, sizeof(why)) < 0)
		return;
	in->complete = true;
	in->keep = m.keep;
	in->created = m.created;
	ckpt_manifest_clear(&m);
}

static void decide(struct vmmd *d, const char *root, uint32_t job_id,
		   struct ckpt_fate_in *in)
{
	uint32_t keep_s = d->cfg.checkpoint_retention_s;
	enum ckpt_fate f;

	newest(root, job_id, in);
	f = ckpt_fate(in, (int64_t)time(NULL), keep_s);
	if (f == CKPT_STAYS) {
		if (in->complete && in->keep &&
		    (in->lookup == -ENOENT || in->finished))
			log_debug("checkpoints: job %u has ended; its kept "
				  "checkpoint stays %lld s more",
				  job_id,
				  (long long)(in->created + keep_s -
					      (int64_t)time(NULL)));
		return;
	}
	if (!in->complete)
		log_notice("checkpoints: job %u %s; removing what an "
			   "interrupted save left in %s",
			   job_id,
			   in->lookup == -ENOENT ? "is unknown to Slurm"
						 : "has ended",
			   root);
	else if (f == CKPT_GOES_EXPIRED)
		log_notice("checkpoints: job %u has ended and its kept "
			   "checkpoint is older than %u s; removing it from %s",
			   job_id, keep_s, root);
	else
		log_notice("checkpoints: job %u %s and did not ask to keep "
			   "its checkpoints; removing them from %s",
			   job_id,
			   in->lookup == -ENOENT ? "is unknown to Slurm"
						 : "has ended",
			   root);
	ckpt_store_remove_job(root, job_id);
}

static void ask_slurm(struct vmmd *d, uint32_t job_id, struct ckpt_fate_in *in)
{
	struct slurmjob_info si;
	char why[256] = "";

	in->lookup =
	    d->slurm_lookup(job_id, d->cfg.node_name, &si, why, sizeof(why));
	in->finished = in->lookup == 0 && si.finished;
	if (in->lookup < 0 && in->lookup != -ENOENT)
		log_debug("checkpoints: job %u: %s", job_id, why);
}

void ckpt_sweep(struct vmmd *d)
{
	_cleanup_free_ uint32_t *ids = NULL;
	size_t n = 0;

	if (ckpt_store_jobs(d->cfg.checkpoint_dir, &ids, &n, 65536) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct ckpt_fate_in in = {0};

		/* A job vmmd holds is not over (its end decides). */
		if (job_find(d, ids[i]))
			continue;
		ask_slurm(d, ids[i], &in);
		decide(d, d->cfg.checkpoint_dir, ids[i], &in);
	}
}

void ckpt_keep_job_ended(struct vmmd *d, const char *root, uint32_t job_id,
			 bool requeued)
{
	struct ckpt_fate_in in = {0};
	char dir[VMENV_MAX_PATH];
	struct stat st;

	/* Most jobs have none: no question to slurmctld for them. */
	if (requeued ||
	    ckpt_store_job_dir(root, job_id, dir, sizeof(dir)) < 0 ||
	    stat(dir, &st) < 0)
		return;
	ask_slurm(d, job_id, &in);
	decide(d, root, job_id, &in);
}
