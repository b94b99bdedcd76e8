/* SPDX-License-Identifier: MIT */
/*
 * When a save starts, and what follows when it does not happen. A save
 * starts at the job's time (its end time less the lead, re-read from
 * Slurm), on demand (vmenvctl checkpoint), for the node's evacuation, or
 * on a multi-node job's other nodes by the first node's plan, which they
 * watch for. A save refused or failed before the guest is gone lets it
 * go on (rescheduled, the evacuation's failure kept), or ends the job
 * when its time is up. These call one another in a loop through the
 * loop's timers (a failed save reschedules, the schedule starts a save),
 * so they are one file; ckpt.c calls them, never the other way.
 */
#include "ckpt_priv.h"

#include "agent.h"
#include "agentwire.h"
#include "ckpt.h"
#include "ckpt_coord.h"
#include "ckpt_lead.h"
#include "exec.h"
#include "jobfiles.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A refused scheduled checkpoint is tried again this much later. */
#define CKPT_RETRY_S 60u

static void evacuate_later(struct job *j);
static void due_fire(void *data);
static int group_ready(struct job *j);
static bool evacuate_now(struct job *j);
static int group_save(struct job *j, bool go_on, int cfd, char *err,
		      size_t errlen);
static int group_evacuate(struct job *j, char *err, size_t errlen);
static int start_save(struct job *j, bool go_on, bool evacuate, int cfd,
		      char *err, size_t errlen);
static void lead_watch(struct job *j);
static int group_start(struct job *j, bool go_on, bool evacuate, int cfd,
		       char *err, size_t errlen);

void ckpt_post(struct job *j, enum ckpt_event ev, const char *msg)
{
	ckpt_owner->event(j, ev, msg);
	if (ev == CKPT_EV_GOES_ON)
		evacuate_later(j);
}

/* The checkpoint failed in a way that ends the job: msg says why. */
void ckpt_fail(struct job *j, const char *fmt, ...)
{
	char msg[PROTO_MAX_ERROR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ckpt_post(j, CKPT_EV_FAILED, msg);
}

void ckpt_schedule(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	time_t now = time(NULL);

	loop_cancel_timer(c->due_t);
	c->due_t = NULL;
	if (ckpt_follower(j))
		return;
	c->lead_s =
	    ckpt_lead_s(j->spec.v.checkpoint_lead_s, (uint64_t)j->mem_mib << 20,
			ckpt_overlay_bytes(j), j->d->ckpt_bw_bps);
	c->due = ckpt_due(j->slurm.end_time, c->lead_s, now);
	if (!c->due)
		return;
	c->due_t = loop_add_timer(
	    j->d->loop, (uint64_t)(c->due - now) * 1000ull, due_fire, j);
	log_info("job %u: next checkpoint in %lld s (end time in %lld s, "
		 "lead %u s)",
		 j->id, (long long)(c->due - now),
		 (long long)(j->slurm.end_time - now), c->lead_s);
}

/* Asks Slurm for the end time again: an admin's scontrol update
 * TimeLimit= moves the checkpoint. true when it changed. */
static bool requery(struct job *j)
{
	struct slurmjob_info si;
	char why[256] = "";

	if (j->d->slurm_lookup(j->id, j->d->cfg.node_name, &si, why,
			       sizeof(why)) < 0) {
		log_debug("job %u: end time not re-read: %s", j->id, why);
		return false;
	}
	if (si.end_time == j->slurm.end_time)
		return false;
	log_info("job %u: end time moved by %lld s", j->id,
		 (long long)(si.end_time - j->slurm.end_time));
	j->slurm.end_time = si.end_time;
	return true;
}

static void requery_fire(void *data)
{
	struct job *j = data;
	struct ckpt_job *c = j->ckpt;

	c->requery_t =
	    loop_add_timer(j->d->loop, j->d->cfg.checkpoint_requery_s * 1000ull,
			   requery_fire, j);
	if (c->phase == PH_IDLE && requery(j))
		ckpt_schedule(j);
}

static void due_fire(void *data)
{
	struct job *j = data;
	struct ckpt_job *c = j->ckpt;
	char err[PROTO_MAX_ERROR];

	c->due_t = NULL;
	/* Just before firing: the time limit may have grown since. */
	if (requery(j) &&
	    ckpt_due(j->slurm.end_time, c->lead_s, time(NULL)) > time(NULL)) {
		ckpt_schedule(j);
		return;
	}
	if (ckpt_job_save(j, false, -1, err, sizeof(err)) < 0)
		log_err("%s", err);
}

void ckpt_job_ready(struct job *j)
{
	struct ckpt_job *c;

	/* Came up on a node being evacuated (it booted or restored
	 * meanwhile): saved and requeued at once; not one that this
	 * evacuation failed to move already (it came back from its save). */
	if (j->d->evacuating && !(j->ckpt && j->ckpt->evac_why[0]) &&
	    evacuate_now(j))
		return;
	if (!j->spec.v.checkpoint || !(c = ckpt_cj(j)) || c->phase != PH_IDLE)
		return;
	if (ckpt_multi(j) && group_ready(j) < 0)
		return;
	ckpt_schedule(j);
	if (!c->requery_t)
		c->requery_t = loop_add_timer(
		    j->d->loop, j->d->cfg.checkpoint_requery_s * 1000ull,
		    requery_fire, j);
}

void ckpt_resume_guest(struct job *j)
{
	struct aw_buf b = {0};

	/* Thaw (the agent ignores it when nothing is held). */
	if (aw_put_i64(&b, (int64_t)time(NULL)) == 0 && aw_put_u32(&b, 0) == 0)
		agent_send(j, AW_CKPT_RESUME, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* An evacuation's save did not happen: the job goes on here (its own
 * checkpoint stays scheduled) and vmenvctl list says why. */
void ckpt_evacuation_failed(struct job *j, const char *why)
{
	struct ckpt_job *c = j->ckpt;

	c->evacuate = false;
	snprintf(c->evac_why, sizeof(c->evac_why), "%s", why);
	log_warn("job %u: not evacuated from node %s, it goes on here: %s",
		 j->id, j->d->cfg.node_name, why);
	/* Its own checkpoint stays scheduled, and follows its end time. */
	if (!c->requery_t && j->spec.v.checkpoint)
		c->requery_t = loop_add_timer(
		    j->d->loop, j->d->cfg.checkpoint_requery_s * 1000ull,
		    requery_fire, j);
}

/* The node is evacuated: the save starts (true), or the job goes on here
 * with the reason kept for vmenvctl list (not up yet: asked again once it
 * is). */
static bool evacuate_now(struct job *j)
{
	char why[PROTO_MAX_ERROR];
	int r = ckpt_job_evacuate(j, why, sizeof(why));

	if (r == 0)
		log_notice("job %u: node %s is evacuated: saving it", j->id,
			   j->d->cfg.node_name);
	else if (r != -EAGAIN && j->ckpt)
		ckpt_evacuation_failed(j, why);
	return r == 0;
}

static void evacuate_fire(void *data)
{
	struct job *j = data;

	j->ckpt->evac_t = NULL;
	if (j->d->evacuating)
		evacuate_now(j);
}

/* After the job went on from a checkpoint that was not the evacuation's
 * (or one whose failure is not known yet): once the current path is done,
 * from the loop, never inside it (it may still answer a client). */
static void evacuate_later(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	if (!j->d->evacuating || !c || c->evac_why[0] || c->evac_t)
		return;
	c->evac_t = loop_add_timer(j->d->loop, 0, evacuate_fire, j);
}

/* The checkpoint did not happen; the guest (thawed) goes on. A scheduled
 * one that failed ends the job: its time is up; an evacuation's goes on. */
void ckpt_save_failed(struct job *j, const char *why, bool guest_gone)
{
	struct ckpt_job *c = j->ckpt;
	/* A multi-node job's scheduled save is tried again (every node of
	 * the group goes on): one node's refusal must not end the job. */
	bool again = ckpt_multi(j) && c->scheduled;

	ckpt_phase_done(j, PH_IDLE);
	loop_cancel_timer(c->coord_t);
	c->coord_t = NULL;
	c->wait = CW_NONE;
	if (ckpt_multi(j))
		ckpt_group_abort(j, why);
	if (c->files_frozen && !guest_gone) {
		char err[PROTO_MAX_ERROR] = "";

		if (jobfiles_thaw(j, NULL, NULL, err, sizeof(err)) < 0)
			log_err("%s", err);
	}
	c->files_frozen = false;
	if (c->evacuate)
		ckpt_evacuation_failed(j, why);
	else if ((!c->go_on && !ckpt_multi(j)) || guest_gone) {
		ckpt_answer(c, why);
		ckpt_post(j, CKPT_EV_FAILED, why);
		return;
	}
	if (guest_gone) {
		ckpt_post(j, CKPT_EV_FAILED, why);
		return;
	}
	log_warn("%s", why);
	if (j->agent) {
		ckpt_resume_guest(j);
		exec_ckpt_resumed(j);
		ckpt_post(j, CKPT_EV_GOES_ON, NULL);
		ckpt_answer(c, why);
		if (again)
			ckpt_retry_later(j);
		else
			ckpt_schedule(j);
		return;
	}
	/* libvirt gave the guest its vCPUs back after the failed save; its
	 * agent, still holding, answers the new channel's HELLO. */
	snprintf(c->fail, sizeof(c->fail), "%s", why);
	c->resume_only = true;
	ckpt_set_phase(j, PH_RESUMING);
	if (agent_attach(j) < 0) {
		ckpt_answer(c, why);
		ckpt_post(j, CKPT_EV_FAILED, why);
	}
}

static void prepare_timeout(void *data)
{
	struct job *j = data;
	char why[PROTO_MAX_ERROR];

	j->ckpt->phase_t = NULL;
	snprintf(why, sizeof(why),
		 "job %u: checkpoint refused: the guest did not get ready "
		 "for it within %u s",
		 j->id, CKPT_PREPARE_TIMEOUT_MS / 1000);
	ckpt_save_failed(j, why, false);
}

/* Checkpoints are the spec's: a job whose checkpoint field is off (a
 * policy's enforce, its allow, or the job never asked) is never saved,
 * on demand neither. */
static int ckpt_allowed(const struct job *j, char *err, size_t errlen)
{
	const struct vmspec_src *src = &j->spec.src[VMSPEC_CHECKPOINT];

	if (j->spec.v.checkpoint)
		return 0;
	if (src->origin == VMSPEC_ENFORCED)
		return err_set(err, errlen, -EPERM,
			       "job %u: checkpoint refused: policy '%s' (%s) "
			       "enforces checkpoint: no for this job",
			       j->id, src->policy, src->file);
	if (src->origin == VMSPEC_DEFAULT)
		return err_set(err, errlen, -EPERM,
			       "job %u: checkpoint refused: checkpoints are "
			       "off for this job (the default of policy '%s' "
			       "(%s)); submit it with --vm-checkpoint where "
			       "the policies allow it",
			       j->id, src->policy, src->file);
	return err_set(err, errlen, -EPERM,
		       "job %u: checkpoint refused: checkpoints are off for "
		       "this job; submit it with --vm-checkpoint where the "
		       "policies allow it",
		       j->id);
}

int ckpt_job_save(struct job *j, bool go_on, int cfd, char *err, size_t errlen)
{
	if (ckpt_multi(j))
		return group_save(j, go_on, cfd, err, errlen);
	return start_save(j, go_on, false, cfd, err, errlen);
}

int ckpt_job_evacuate(struct job *j, char *err, size_t errlen)
{
	struct ckpt_job *c = ckpt_cj(j);
	int r;

	if (!c)
		return -ENOMEM;
	c->evac_why[0] = '\0';
	if ((r = ckpt_allowed(j, err, errlen)) < 0)
		return r;
	/* A scheduled save under way: it requeues, whatever --vm-requeue
	 * says. An on-demand one restores here: asked again once ready. */
	if ((c->phase == PH_PREPARING || c->phase == PH_FLUSHING ||
	     c->phase == PH_SAVING) &&
	    !c->go_on) {
		c->evacuate = true;
		return 0;
	}
	if (j->state != JOB_READY || c->phase != PH_IDLE)
		return err_set(err, errlen, -EAGAIN,
			       "job %u: its guest is %s: saved once it is up",
			       j->id,
			       c->phase != PH_IDLE ? "checkpointing"
						   : job_state_name(j->state));
	if (ckpt_multi(j))
		return group_evacuate(j, err, errlen);
	return start_save(j, false, true, -1, err, errlen);
}

const char *ckpt_job_evacuate_failure(const struct job *j)
{
	return j->ckpt ? j->ckpt->evac_why : "";
}

/* The job's checkpoints are on and its guest is up and idle. */
static int save_possible(struct job *j, char *err, size_t errlen)
{
	const struct ckpt_job *c = j->ckpt;
	int r;

	if ((r = ckpt_allowed(j, err, errlen)) < 0)
		return r;
	if (j->state != JOB_READY || c->phase != PH_IDLE)
		return err_set(err, errlen, -EBUSY,
			       "job %u: no checkpoint now: the guest is %s%s",
			       j->id, job_state_name(j->state),
			       c->phase != PH_IDLE ? " (checkpointing)" : "");
	return 0;
}

static int start_save(struct job *j, bool go_on, bool evacuate, int cfd,
		      char *err, size_t errlen)
{
	struct ckpt_job *c = ckpt_cj(j);
	struct aw_buf b = {0};
	int r;

	if (!c)
		return -ENOMEM;
	if ((r = save_possible(j, err, errlen)) < 0)
		return r;
	if (!j->agent_ckpt)
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: checkpoint refused: the guest's agent "
			       "does not know checkpoints (image too old)",
			       j->id);
	/* A guest adopted by a restarted vmmd: its domain as built is not
	 * known here, and going on restores from it; a save that requeues
	 * restores in the next run, from that run's. */
	if (go_on && !c->xml)
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: checkpoint refused: its guest was "
			       "adopted by a restarted vmmd on node %s, which "
			       "saves it only to requeue the job (its "
			       "checkpoint before the time limit, an "
			       "evacuation)",
			       j->id, j->d->cfg.node_name);
	r = aw_put_u32(&b, j->files_kind == JOBFILES_VIRTIO_9P ? AW_CKPT_MOUNTS
							       : 0);
	if (r == 0)
		r = agent_send(j, AW_CKPT_PREPARE, 0, b.data, b.len);
	aw_buf_free(&b);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot reach the guest's agent: %s",
			       j->id, strerror(-r));
	loop_cancel_timer(c->due_t);
	c->due_t = NULL;
	c->go_on = go_on;
	c->evacuate = evacuate;
	c->scheduled = !go_on && !evacuate && cfd < 0;
	c->cfd = cfd;
	ckpt_set_phase(j, PH_PREPARING);
	c->t0 = now_ms();
	ckpt_post(j, CKPT_EV_SAVING, NULL);
	c->phase_t = loop_add_timer(j->d->loop, CKPT_PREPARE_TIMEOUT_MS,
				    prepare_timeout, j);
	log_info("job %u: checkpoint: preparing the guest", j->id);
	return 0;
}

/* A refused scheduled checkpoint: again in a minute (the refusal may go
 * away: a file closed, a hook's condition gone), never in a busy loop. */
void ckpt_retry_later(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	loop_cancel_timer(c->due_t);
	c->due_t = NULL;
	if (ckpt_follower(j))
		return;
	c->due = time(NULL) + CKPT_RETRY_S;
	c->due_t =
	    loop_add_timer(j->d->loop, CKPT_RETRY_S * 1000ull, due_fire, j);
}

/* Once a second: a node other than the first looks for a new plan of
 * the first node's, which starts its part; the first node for the other
 * nodes' evacuations. */
static void watch_fire(void *data)
{
	struct job *j = data;
	struct ckpt_job *c = j->ckpt;
	char err[PROTO_MAX_ERROR], out[64];
	uint32_t n, run, g = c->seen_plan + 1;
	bool go_on, evacuate;
	int r;

	c->watch_t = loop_add_timer(j->d->loop, COORD_WATCH_MS, watch_fire, j);
	if (!ckpt_follower(j)) {
		lead_watch(j);
		return;
	}
	/* Still in the last group (its guest coming back): the next plan is
	 * this node's once it is done with it. */
	if (c->phase != PH_IDLE)
		return;
	r = ckpt_coord_read_plan_run(&c->coord, g, &n, &go_on, &run);
	/* Not there yet, or not readable now (read again next time). */
	if (r < 0 && r != -EBADMSG)
		return;
	c->seen_plan = g;
	if (r < 0) {
		log_err("job %u: checkpoint group %u: unreadable plan", j->id,
			g);
		return;
	}
	/* Abandoned before this node saw it, or an earlier run's (the
	 * first node abandons it). */
	if (run != j->slurm.restart_count ||
	    ckpt_coord_outcome(&c->coord, g, out, sizeof(out)) != -ENOENT)
		return;
	c->group = g;
	if (n != j->slurm.nnodes) {
		str_printf(err, sizeof(err),
			   "job %u: checkpoint group %u is planned for %u "
			   "nodes, node %s counts %u",
			   j->id, g, n, j->d->cfg.node_name, j->slurm.nnodes);
		ckpt_group_abort(j, err);
		return;
	}
	log_info("job %u: checkpoint group %u: the first node asks", j->id, g);
	/* This node's evacuation is the group's only when the group
	 * requeues the job; an on-demand one (asked for before the first
	 * node saw the request) goes on everywhere, and the request waits
	 * for the next. */
	evacuate = c->evac_asked && !go_on;
	if (start_save(j, go_on, evacuate, -1, err, sizeof(err)) < 0) {
		log_warn("%s", err);
		ckpt_group_abort(j, err);
		if (evacuate)
			ckpt_evacuation_failed(j, err);
	}
}

/* The guest is up: the coordination directory is there, and a node other
 * than the first watches it for the first node's plans. */
static int group_ready(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char err[PROTO_MAX_ERROR], out[64];
	bool undecided;
	uint32_t last;

	if (ckpt_group_open(j, err, sizeof(err)) < 0) {
		log_err("job %u: no checkpoints of its %u nodes: %s", j->id,
			j->slurm.nnodes, err);
		return -1;
	}
	if (c->watch_t)
		return 0;
	last = ckpt_coord_last_plan(&c->coord);
	undecided = last && ckpt_coord_outcome(&c->coord, last, out,
					       sizeof(out)) == -ENOENT;
	/* The first node watches for its other nodes' evacuations. A plan
	 * still undecided when its guest comes up is an earlier run's (or a
	 * vmmd's that restarted in it): abandoned, so that no node waits
	 * for it. */
	if (!ckpt_follower(j)) {
		if (undecided) {
			c->group = last;
			ckpt_group_abort(j,
					 "an earlier run's checkpoint, never "
					 "completed");
			c->group = 0;
		}
		c->watch_t =
		    loop_add_timer(j->d->loop, COORD_WATCH_MS, watch_fire, j);
		return 0;
	}
	/* Plans decided before this start are an earlier run's; one not
	 * decided may be this run's (the first node came up first):
	 * watch_fire compares its run. */
	c->seen_plan = undecided ? last - 1 : last;
	c->watch_t = loop_add_timer(j->d->loop, 0, watch_fire, j);
	return 0;
}

/* The first node, once a second: another node of the job is evacuated. */
static void lead_watch(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char err[PROTO_MAX_ERROR];

	if (j->state != JOB_READY || c->phase != PH_IDLE ||
	    ckpt_coord_count(&c->coord, 0, "evacuate", j->slurm.nnodes) == 0)
		return;
	if (group_start(j, false, true, -1, err, sizeof(err)) < 0)
		log_err("job %u: another node's evacuation: %s", j->id, err);
}

/* A node of the job is evacuated: the first node saves every node's
 * guest and requeues the job; another node asks it to, through the
 * store. */
static int group_evacuate(struct job *j, char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;
	char text[PROTO_MAX_ERROR];
	int r;

	if ((r = ckpt_group_open(j, err, errlen)) < 0)
		return r;
	if (!ckpt_follower(j))
		return group_start(j, false, true, -1, err, errlen);
	str_printf(text, sizeof(text), "%s %s", j->d->cfg.node_name,
		   j->d->evacuate_reason);
	r = ckpt_coord_mark(&c->coord, 0, "evacuate", j->slurm.node_index,
			    text);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot ask its first node to save it "
			       "(store %s): %s",
			       j->id, ckpt_root(j), strerror(-r));
	c->evac_asked = true;
	log_notice("job %u: node %s is evacuated: asked the job's first node "
		   "to save its %u nodes",
		   j->id, j->d->cfg.node_name, j->slurm.nnodes);
	return 0;
}

/* The first node: a checkpoint of every node's guest (its time, or
 * vmenvctl checkpoint). */
static int group_save(struct job *j, bool go_on, int cfd, char *err,
		      size_t errlen)
{
	return group_start(j, go_on, false, cfd, err, errlen);
}

static int group_start(struct job *j, bool go_on, bool evacuate, int cfd,
		       char *err, size_t errlen)
{
	struct ckpt_job *c = ckpt_cj(j);
	char why[PROTO_MAX_ERROR];
	int r;

	if (!c)
		return -ENOMEM;
	if (ckpt_follower(j))
		return err_set(err, errlen, -EINVAL,
			       "job %u: checkpoint refused: node %s is node "
			       "%u of the job's %u; its first node's vmmd "
			       "checkpoints the job",
			       j->id, j->d->cfg.node_name, j->slurm.node_index,
			       j->slurm.nnodes);
	if ((r = save_possible(j, err, errlen)) < 0)
		return r;
	if ((r = ckpt_group_open(j, err, errlen)) < 0)
		return r;
	/* Another node's evacuation makes any save of the job one: it is
	 * requeued, to go on elsewhere. */
	if (ckpt_take_evacuations(j, why, sizeof(why))) {
		log_notice("job %u: %s is evacuated: saving its %u nodes",
			   j->id, why, j->slurm.nnodes);
		evacuate = true;
		go_on = false;
	}
	r = ckpt_coord_plan_run(&c->coord, j->slurm.nnodes, go_on,
				j->slurm.restart_count, &c->group);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: checkpoint failed: cannot write its "
			       "plan into the store %s: %s",
			       j->id, ckpt_root(j), strerror(-r));
	log_info("job %u: checkpoint group %u of its %u nodes", j->id, c->group,
		 j->slurm.nnodes);
	r = start_save(j, go_on, evacuate, cfd, err, errlen);
	if (r < 0)
		ckpt_group_abort(j, err);
	return r;
}
