/* SPDX-License-Identifier: MIT */
/*
 * A job's checkpoint state (struct ckpt_job, ckpt_priv.h): made on first
 * use, its store and a checkpoint in it opened, its phase, the answer to
 * the client of an on-demand checkpoint, and its end (what stays of its
 * checkpoints, the state freed). The helpers every other file of the
 * procedure calls, so it calls none of them (a loop otherwise).
 */
#include "ckpt_priv.h"

#include "ckpt.h"
#include "ckpt_coord.h"
#include "ckpt_store.h"
#include "ckpt_work.h"
#include "exec.h"
#include "jobrec.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ckpt_job *ckpt_cj(struct job *j)
{
	if (!j->ckpt) {
		j->ckpt = calloc(1, sizeof(*j->ckpt));
		if (j->ckpt) {
			j->ckpt->cfd = -1;
			j->ckpt->dirfd = -1;
			j->ckpt->store.fd = -1;
			j->ckpt->coord.fd = -1;
			ckpt_verified_init(&j->ckpt->ver);
		}
	}
	return j->ckpt;
}

const char *ckpt_root(const struct job *j)
{
	return j->spec.v.checkpoint_dir[0] ? j->spec.v.checkpoint_dir
					   : j->d->cfg.checkpoint_dir;
}

bool ckpt_multi(const struct job *j)
{
	return j->slurm.nnodes > 1;
}

/* Node i of a multi-node job keeps its guest's checkpoints in its own
 * part of the store (ckpt_coord.h); the first node, as a one-node job,
 * in the store itself. */
int ckpt_job_store_root(const struct job *j, char *buf, size_t len)
{
	return ckpt_coord_node_root(
	    ckpt_root(j), ckpt_multi(j) ? j->slurm.node_index : 0, buf, len);
}

/* The job's store (its --vm-checkpoint-dir, or the node's) into
 * c->store. */
int ckpt_open_store(struct job *j, struct ckpt_job *c, bool create, char *err,
		    size_t errlen)
{
	unsigned flags = (create ? CKPT_STORE_CREATE : 0) |
			 (j->spec.v.checkpoint_dir[0] ? 0 : CKPT_STORE_NODE);

	if (ckpt_job_store_root(j, c->root, sizeof(c->root)) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: checkpoint path too long", j->id);
	return ckpt_store_open(c->root, flags, &c->store, err, errlen);
}

/* Checkpoint seq of job_id in c->store: its directory held open in
 * c->dirfd (the worker verifies and restores from that very directory),
 * its manifest in c->man. */
int ckpt_open_checkpoint(struct ckpt_job *c, uint32_t job_id, uint32_t seq,
			 char *err, size_t errlen)
{
	int fd;

	if (c->dirfd >= 0)
		close(c->dirfd);
	c->dirfd = -1;
	fd = ckpt_store_open_seq(&c->store, job_id, seq, c->dir, sizeof(c->dir),
				 err, errlen);
	if (fd < 0)
		return fd;
	c->dirfd = fd;
	return ckpt_store_load(fd, c->dir, &c->man, err, errlen);
}

int ckpt_job_restored_file(const struct job *j, const char *name,
			   uint64_t *ret_size)
{
	if (!j->ckpt)
		return -ENOENT;
	return ckpt_verified_fd(&j->ckpt->ver, name, ret_size);
}

bool ckpt_busy(const struct job *j)
{
	return j->ckpt && j->ckpt->phase != PH_IDLE;
}

bool ckpt_job_restoring(const struct job *j)
{
	return j->ckpt && j->ckpt->restore;
}

void ckpt_job_due(const struct job *j, int64_t *due, uint32_t *lead_s)
{
	*due = j->ckpt && j->ckpt->due_t ? (int64_t)j->ckpt->due : 0;
	*lead_s = j->ckpt ? j->ckpt->lead_s : 0;
}

void ckpt_answer(struct ckpt_job *c, const char *error)
{
	struct proto_reply rep = {.kind = error ? PROTO_REPLY_ERROR
						: PROTO_REPLY_OK};

	if (c->cfd < 0)
		return;
	if (error)
		snprintf(rep.error, sizeof(rep.error), "%s", error);
	proto_send_reply(c->cfd, &rep);
	close(c->cfd);
	c->cfd = -1;
}

/* Every phase change: while a checkpoint is under way (not idle), the
 * guest gets neither stdin nor signals from the exec sessions. */
void ckpt_set_phase(struct job *j, enum ckpt_phase next)
{
	j->ckpt->phase = next;
	exec_hold(j, next != PH_IDLE);
}

void ckpt_phase_done(struct job *j, enum ckpt_phase next)
{
	struct ckpt_job *c = j->ckpt;

	loop_cancel_timer(c->phase_t);
	c->phase_t = NULL;
	ckpt_set_phase(j, next);
}

/* Only a job's first node decides when: the others follow its plans. */
bool ckpt_follower(const struct job *j)
{
	return ckpt_multi(j) && j->slurm.node_index > 0;
}

void ckpt_job_free(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	if (!c)
		return;
	loop_cancel_timer(c->due_t);
	loop_cancel_timer(c->requery_t);
	loop_cancel_timer(c->phase_t);
	loop_cancel_timer(c->evac_t);
	loop_cancel_timer(c->watch_t);
	loop_cancel_timer(c->coord_t);
	ckpt_coord_close(&c->coord);
	ckpt_work_cancel(c->work);
	ckpt_answer(c, "the job ended during the checkpoint");
	ckpt_manifest_clear(&c->man);
	ckpt_verified_clear(&c->ver);
	ckpt_store_close(&c->store);
	if (c->dirfd >= 0)
		close(c->dirfd);
	if (c->replay[0])
		unlink(c->replay);
	free(c->xml);
	free(c);
	j->ckpt = NULL;
	exec_hold(j, false);
}
