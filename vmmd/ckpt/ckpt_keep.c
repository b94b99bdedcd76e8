/* SPDX-License-Identifier: MIT */
#include "ckpt_keep.h"

#include "ckpt_coord.h"
#include "ckpt_store.h"
#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "loop.h"
#include "util.h"
#include "vmmd.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
static void newest(const struct ckpt_store *s, uint32_t job_id,
		   struct ckpt_fate_in *in)
{
	struct ckpt_manifest m;
	char dir[VMENV_MAX_PATH], why[256];
	uint32_t seq;

	if (ckpt_store_latest(s, job_id, &seq, NULL, 0) < 0)
		return;
	_cleanup_close_ int fd =
	    ckpt_store_open_seq(s, job_id, seq, dir, sizeof(dir), NULL, 0);
	/* An unreadable manifest counts as incomplete: no one can restore
	 * it. */
	if (fd < 0 || ckpt_store_load(fd, dir, &m, why, sizeof(why)) < 0)
		return;
	in->complete = true;
	in->keep = m.keep;
	in->created = m.created;
	ckpt_manifest_clear(&m);
}

static void decide(struct vmmd *d, const struct ckpt_store *s, uint32_t job_id,
		   struct ckpt_fate_in *in)
{
	uint32_t keep_s = d->cfg.checkpoint_retention_s;
	enum ckpt_fate f;

	newest(s, job_id, in);
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
			   s->path);
	else if (f == CKPT_GOES_EXPIRED)
		log_notice("checkpoints: job %u has ended and its kept "
			   "checkpoint is older than %u s; removing it from %s",
			   job_id, keep_s, s->path);
	else
		log_notice("checkpoints: job %u %s and did not ask to keep "
			   "its checkpoints; removing them from %s",
			   job_id,
			   in->lookup == -ENOENT ? "is unknown to Slurm"
						 : "has ended",
			   s->path);
	if (ckpt_store_remove_job(s, job_id) < 0)
		log_warn("checkpoints: job %u: %s/%u is not vmmd's (not root's "
			 "only); left alone",
			 job_id, s->path, job_id);
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

typedef void (*sweep_f)(struct vmmd *d, const struct ckpt_store *s,
			uint32_t job_id, struct ckpt_fate_in *in);

/* A multi-node job's coordination files (ckpt_coord.h: coord/<job> has
 * the store's layout) go once Slurm no longer has the job; a requeued one
 * still needs them for its restore. */
static void drop_coord(struct vmmd *d, const struct ckpt_store *s,
		       uint32_t job_id, struct ckpt_fate_in *in)
{
	(void)d;
	if (in->lookup == -ENOENT || in->finished)
		ckpt_store_remove_job(s, job_id);
}

/* fn for every job of the store at path that vmmd does not hold (a job
 * vmmd holds is not over: its end decides), with what Slurm says of it.
 * A store that cannot be opened is not swept (said so unless quiet). */
static void sweep_jobs(struct vmmd *d, const char *path, bool quiet, sweep_f fn)
{
	struct ckpt_store s = CKPT_STORE_INIT;
	_cleanup_free_ uint32_t *ids = NULL;
	char err[VMENV_MAX_PATH + 256];
	size_t n = 0;

	if (ckpt_store_open(path, CKPT_STORE_NODE, &s, err, sizeof(err)) < 0) {
		if (!quiet)
			log_warn("checkpoints: not swept: %s", err);
		return;
	}
	if (ckpt_store_jobs(&s, &ids, &n, 65536) < 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		struct ckpt_fate_in in = {0};

		if (job_find(d, ids[i]))
			continue;
		ask_slurm(d, ids[i], &in);
		fn(d, &s, ids[i], &in);
	}
	ckpt_store_close(&s);
}

/* Slurm still says "running" when a job's last step ends on a node (its
 * epilog has not run): asked again shortly after, its checkpoints go
 * minutes after the job instead of at the next hourly sweep. */
static const uint32_t reask_delays_s[] = {5, 15, 30, 60, 120, 300};

struct reask {
	struct vmmd *d;
	char root[VMENV_MAX_PATH];
	bool node_store;
	sweep_f fn; /* decide, or drop_coord */
	uint32_t job_id;
	size_t n;
	struct loop_timer *t;
	struct reask *next;
};

/* Those waiting: vmmd's end cancels them (ckpt_keep_fini). */
static struct reask *pending;

static void reask_free(struct reask *r)
{
	for (struct reask **p = &pending; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	free(r);
}

static void reask_tick(void *data);

static bool reask_arm(struct reask *r)
{
	uint32_t prev = r->n ? reask_delays_s[r->n - 1] : 0;

	if (r->n >= ARRAY_SIZE(reask_delays_s))
		return false;
	r->t = loop_add_timer(
	    r->d->loop, (reask_delays_s[r->n] - prev) * 1000ull, reask_tick, r);
	return r->t != NULL;
}

void ckpt_keep_fini(struct vmmd *d)
{
	struct reask *r = pending, *next;

	for (; r; r = next) {
		next = r->next;
		if (r->d != d)
			continue;
		loop_cancel_timer(r->t);
		reask_free(r);
	}
}

/* Decides the job's fate in root (fn); true if Slurm still runs it. */
static bool settle(struct vmmd *d, const char *root, bool node_store,
		   uint32_t job_id, sweep_f fn)
{
	struct ckpt_store s = CKPT_STORE_INIT;
	struct ckpt_fate_in in = {0};
	bool running = false;

	if (ckpt_store_open(root, node_store ? CKPT_STORE_NODE : 0, &s, NULL,
			    0) < 0)
		return false;
	if (ckpt_store_has_job(&s, job_id)) {
		ask_slurm(d, job_id, &in);
		fn(d, &s, job_id, &in);
		running = in.lookup == 0 && !in.finished &&
			  ckpt_store_has_job(&s, job_id);
	}
	ckpt_store_close(&s);
	return running;
}

static void reask_tick(void *data)
{
	struct reask *r = data;

	/* Back on this node (restored): its own end decides. */
	if (!job_find(r->d, r->job_id) &&
	    settle(r->d, r->root, r->node_store, r->job_id, r->fn)) {
		r->n++;
		if (reask_arm(r))
			return;
		log_debug("checkpoints: job %u still runs in Slurm; the "
			  "hourly sweep decides its checkpoints",
			  r->job_id);
	}
	reask_free(r);
}

static void ended(struct vmmd *d, const char *root, bool node_store,
		  uint32_t job_id, sweep_f fn)
{
	struct reask *r;

	/* Most jobs have none: no question to slurmctld for them. */
	if (!settle(d, root, node_store, job_id, fn))
		return;
	r = calloc(1, sizeof(*r));
	if (!r || str_printf(r->root, sizeof(r->root), "%s", root) < 0) {
		free(r);
		return;
	}
	r->d = d;
	r->node_store = node_store;
	r->fn = fn;
	r->job_id = job_id;
	r->next = pending;
	pending = r;
	if (!reask_arm(r))
		reask_free(r);
}

void ckpt_keep_job_ended(struct vmmd *d, const char *root, bool node_store,
			 uint32_t job_id, bool requeued)
{
	if (!requeued)
		ended(d, root, node_store, job_id, decide);
}

void ckpt_keep_coord_ended(struct vmmd *d, const char *root, uint32_t job_id)
{
	char path[VMENV_MAX_PATH];

	if (str_printf(path, sizeof(path), "%s/coord", root) == 0)
		ended(d, path, true, job_id, drop_coord);
}

/* "n<i>": node i's part of the store (ckpt_coord_node_root). */
static bool node_part(const char *name)
{
	uint32_t i;

	return name[0] == 'n' && parse_u32(name + 1, &i) == 0 && i > 0 &&
	       i < CKPT_COORD_MAX_NODES;
}

void ckpt_sweep(struct vmmd *d)
{
	const char *root = d->cfg.checkpoint_dir;
	char path[VMENV_MAX_PATH];
	struct dirent *e;
	DIR *dp;

	sweep_jobs(d, root, false, decide);
	/* The node's store is root's all the way: its paths are safe. */
	if ((dp = opendir(root))) {
		while ((e = readdir(dp)))
			if (node_part(e->d_name) &&
			    str_printf(path, sizeof(path), "%s/%s", root,
				       e->d_name) == 0)
				sweep_jobs(d, path, false, decide);
		closedir(dp);
	}
	if (str_printf(path, sizeof(path), "%s/coord", root) == 0)
		sweep_jobs(d, path, true, drop_coord);
}
