/* SPDX-License-Identifier: MIT */
/*
 * A job's checkpoint once the guest holds: it is saved (the worker,
 * ckpt_work.c), then the job is requeued, ends here, or goes on from a
 * restore of what was just written; a starting job's checkpoint is
 * restored and its guest resumed; the agent's answers drive these steps.
 * A multi-node job's barriers sit between them (every node's guest holds,
 * is saved, is back) and call them back, so they are here too. The rest
 * of the procedure is below it (ckpt_priv.h lists the files).
 */
#include "ckpt_priv.h"

#include "agent.h"
#include "agentwire.h"
#include "ckpt.h"
#include "ckpt_coord.h"
#include "ckpt_keep.h"
#include "ckpt_store.h"
#include "ckpt_work.h"
#include "cleanup.h"
#include "domxml.h"
#include "exec.h"
#include "jobfiles.h"
#include "jobimage.h"
#include "jobrec.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Output still queued toward a task when the guest froze. */
#define CKPT_FLUSH_WAIT_MS 10000u
#define CKPT_FLUSH_TICK_MS 50u
/* vmenv-exec's exit code when the job ends checkpointed (not requeued). */
#define CKPT_EXIT_ENDED 125

static bool wants_ckpt(const struct job *j)
{
	return j->spec.v.checkpoint || ckpt_job_restoring(j);
}

void ckpt_job_placed(struct job *j, struct dom_placement *place)
{
	struct ckpt_job *c;

	if (!wants_ckpt(j) || !(c = ckpt_cj(j)))
		return;
	if (ckpt_job_restoring(j) && c->name[0] && strcmp(c->name, j->domain)) {
		log_notice("job %u: restored as %s (the name it was saved "
			   "with)",
			   j->id, c->name);
		snprintf(j->domain, sizeof(j->domain), "%s", c->name);
	}
	c->ndevs = place->ndevs;
	for (uint32_t i = 0; i < place->ndevs; i++) {
		place->dev[i].cell = -1;
		c->devs[i] = place->dev[i];
	}
}

bool ckpt_job_standin(const struct job *j)
{
	return wants_ckpt(j) &&
	       strcmp(j->d->cfg.checkpoint_standin_device, "yes") == 0;
}

int ckpt_job_built(struct job *j, struct dom_spec *s,
		   struct dom_placement *place, uint64_t hard_limit_kib,
		   char *why, size_t whylen)
{
	struct ckpt_job *c;
	char *xml = NULL;
	uint32_t n = place->ndevs;
	int r;

	if (!wants_ckpt(j) || !(c = ckpt_cj(j)))
		return 0;
	/* The checkpoint's XML has no device that cannot be saved: they are
	 * unplugged before the save and plugged after the restore. */
	place->ndevs = 0;
	s->standin = false;
	r = domxml_build(s, &xml);
	place->ndevs = n;
	s->standin = ckpt_job_standin(j);
	if (r < 0)
		return err_set(why, whylen, r,
			       "cannot build the domain for checkpoints: %s",
			       strerror(-r));
	free(c->xml);
	c->xml = xml;
	c->limit_kib = hard_limit_kib;
	c->save_limit_kib = hard_limit_kib
				? hard_limit_kib
				: (uint64_t)place->hard_limit_mib << 10;
	if (!ckpt_job_restoring(j))
		return 0;
	r = ckpt_job_restore(j, xml, hard_limit_kib, why, whylen);
	return r < 0 ? r : 1;
}

/* The devices' XML for the worker (it owns the strings). */
static int devs_xml(const struct job *j, struct ckpt_work_devs *wd)
{
	const struct ckpt_job *c = j->ckpt;

	wd->n = 0;
	for (uint32_t i = 0; i < c->ndevs; i++) {
		if (domxml_hostdev(&c->devs[i], &wd->xml[i]) < 0)
			return -ENOMEM;
		domxml_hostdev_gone(&c->devs[i], wd->gone[i],
				    sizeof(wd->gone[i]));
		wd->n++;
	}
	if (ckpt_job_standin(j) && wd->n < CKPT_MAX_DEVS) {
		if (!(wd->xml[wd->n] = strdup(DOMXML_STANDIN_XML)))
			return -ENOMEM;
		snprintf(wd->gone[wd->n], sizeof(wd->gone[0]), "%s",
			 DOMXML_STANDIN_GONE);
		wd->n++;
	}
	return 0;
}

/* --- saving ---------------------------------------------------------------- */

static int fill_manifest(struct job *j, struct ckpt_manifest *m)
{
	struct ckpt_job *c = j->ckpt;
	const char *base = jobimg_base(j);
	char p[VMENV_MAX_PATH + 16];

	memset(m, 0, sizeof(*m));
	m->job_id = j->id;
	m->uid = (uint32_t)j->uid;
	m->restart_count = j->slurm.restart_count;
	m->seq = c->seq;
	snprintf(m->node, sizeof(m->node), "%s", j->d->cfg.node_name);
	snprintf(m->image, sizeof(m->image), "%s", j->image);
	snprintf(m->base_sha256, sizeof(m->base_sha256), "%s",
		 base ? base : "");
	snprintf(m->cpu_model, sizeof(m->cpu_model), "%s", j->spec.v.cpu_model);
	snprintf(m->files_kind, sizeof(m->files_kind), "%s",
		 jobfiles_kind_name(j->files_kind));
	snprintf(m->work_dir, sizeof(m->work_dir), "%s", j->work_dir);
	m->vcpus = j->vcpus;
	m->mem_mib = j->mem_mib;
	m->created = (int64_t)time(NULL);
	m->keep = j->spec.v.checkpoint_keep;
	m->domain_xml = strdup(c->xml ? c->xml : "");
	snprintf(p, sizeof(p), "%s/spec", j->dir);
	if (read_file_limited(p, CKPT_MAX_TEXT - 1, &m->spec, NULL) < 0)
		m->spec = strdup("");
	return m->spec && m->domain_xml ? 0 : -ENOMEM;
}

static void save_done(struct job *j, struct ckpt_work *w);
static void go_on_restore(struct job *j);
static void group_saved(struct job *j);
static void group_frozen(struct job *j);
static void group_back(struct job *j);

static void do_save(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	struct ckpt_work_save ws = {0};
	char err[PROTO_MAX_ERROR], why[PROTO_MAX_ERROR];
	char io_dir[VMENV_MAX_PATH];
	bool refused = false;
	int out_fd = -1, r;

	r = ckpt_begin_save(j, &refused, err, sizeof(err));
	if (r == 0 && (r = ckpt_store_path(&c->store, c->dirfd, c->dir, "",
					   io_dir, sizeof(io_dir))) < 0)
		snprintf(err, sizeof(err), "job %u: checkpoint path too long",
			 j->id);
	if (r == 0 && (r = jobfiles_freeze(j, io_dir, err, sizeof(err))) == 0)
		c->files_frozen = true;
	if (r == 0 && (r = fill_manifest(j, &ws.man)) < 0)
		snprintf(err, sizeof(err), "job %u: out of memory", j->id);
	if (r == 0 && (r = exec_ckpt_collect(j, &ws.man, &out_fd)) < 0)
		snprintf(err, sizeof(err), "job %u: too many sessions", j->id);
	if (r == 0 && (r = devs_xml(j, &ws.devs)) < 0)
		snprintf(err, sizeof(err), "job %u: out of memory", j->id);
	if (r < 0) {
		ckpt_manifest_clear(&ws.man);
		ckpt_work_devs_clear(&ws.devs);
		if (out_fd >= 0)
			close(out_fd);
		if (c->dirfd >= 0) {
			ckpt_store_discard(c->dirfd, c->seq);
			close(c->dirfd);
			c->dirfd = -1;
		}
		str_printf(why, sizeof(why),
			   "job %u: checkpoint %s on node %s: %s", j->id,
			   refused ? "refused" : "failed", j->d->cfg.node_name,
			   err);
		ckpt_save_failed(j, why, false);
		return;
	}
	/* QEMU's end of the channel closes with the save: not a failure. */
	agent_detach(j);
	ws.domain = j->domain;
	ws.dirfd = TAKE_FD(c->dirfd);
	ws.dir = c->dir;
	ws.io_dir = io_dir;
	ws.job_dir = j->dir;
	ws.uid = (uint32_t)j->uid;
	ws.out_fd = out_fd;
	/* A multi-node job's older checkpoint stays until this one's group
	 * is complete: it is what the last complete group names. */
	ws.keep_older = ckpt_multi(j);
	ws.limit_kib = c->save_limit_kib;
	ws.guest_kib = (uint64_t)j->mem_mib << 10;
	jobfiles_after_save_plan(j, &ws.files);
	ckpt_set_phase(j, PH_SAVING);
	c->t0 = now_ms();
	log_info("job %u: saving the guest to %s", j->id, c->dir);
	r = ckpt_work_save(j, &ws, save_done, &c->work);
	if (r < 0) {
		snprintf(why, sizeof(why),
			 "job %u: checkpoint failed on node %s: cannot start "
			 "the save: %s",
			 j->id, j->d->cfg.node_name, strerror(-r));
		ckpt_save_failed(j, why, false);
	}
}

static void flush_tick(void *data)
{
	struct job *j = data;
	struct ckpt_job *c = j->ckpt;

	c->phase_t = NULL;
	if (!exec_ckpt_flushed(j) && now_ms() - c->t0 < CKPT_FLUSH_WAIT_MS) {
		c->phase_t = loop_add_timer(j->d->loop, CKPT_FLUSH_TICK_MS,
					    flush_tick, j);
		return;
	}
	/* A task that reads nothing for 10 s loses what is queued for it:
	 * its restarted self would not read it either. */
	group_frozen(j);
}

static int start_restore(struct job *j, char *err, size_t errlen);

/* The job asked to go on (--vm-requeue) and Slurm did not requeue it
 * (slurmctld down, sbatch --no-requeue): the checkpoint it was saved to go
 * on from is kept for --vm-restore, within the user's kept limits, rather
 * than removed with the job. What became of it, for the job's message. */
static void keep_unrequeued(struct job *j, uint64_t bytes, char *fate,
			    size_t len)
{
	struct ckpt_job *c = j->ckpt;
	char why[PROTO_MAX_ERROR] = "";
	_cleanup_close_ int fd = TAKE_FD(c->dirfd);

	if (fd < 0)
		snprintf(why, sizeof(why), "its directory is gone");
	else if (ckpt_kept_within(j, &c->store, bytes, why, sizeof(why)) == 0 &&
		 ckpt_store_keep(fd, c->dir, why, sizeof(why)) == 0) {
		snprintf(fate, len,
			 "kept for --vm-restore, as Slurm did not requeue "
			 "the job");
		return;
	}
	str_printf(fate, len, "removed at the job's end: not kept (%s)", why);
}

/* The node's evacuation moved this job (vmenvctl evacuate --wait lists
 * it as saved and requeued). */
static void evacuation_moved(struct job *j)
{
	if (j->d->evacuate_nmoved < ARRAY_SIZE(j->d->evacuate_moved))
		j->d->evacuate_moved[j->d->evacuate_nmoved++] = j->id;
}

/* The job ends here (true), checkpointed, requeued or not; false: an
 * evacuation Slurm would not requeue (--no-requeue, slurmctld down),
 * where the job goes on here from the checkpoint just written instead:
 * a drained node still runs its jobs, and an evacuation must not end
 * one that the drain alone would have let run. A multi-node job's first
 * node tells its other nodes which (they wait for it). */
static bool saved_requeue(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char msg[PROTO_MAX_ERROR], why[256] = "", fate[PROTO_MAX_ERROR];
	bool requeued = false;

	/* An evacuated job goes on elsewhere: the node is going away. */
	if ((j->spec.v.requeue || c->evacuate) && j->d->slurm_requeue) {
		requeued = j->d->slurm_requeue(j->id, why, sizeof(why)) == 0;
		if (!requeued)
			log_err("job %u: %s", j->id, why);
	}
	if (c->evacuate && !requeued) {
		str_printf(msg, sizeof(msg),
			   "job %u: saved, but not requeued (%s): it goes on "
			   "here from the checkpoint",
			   j->id, why[0] ? why : "no Slurm to requeue it");
		if (ckpt_multi(j))
			ckpt_group_verdict(j, CKPT_VERDICT_GOON,
					   why[0] ? why
						  : "no Slurm to requeue it");
		ckpt_evacuation_failed(j, msg);
		return false;
	}
	c->requeued = requeued;
	if (ckpt_multi(j))
		ckpt_group_verdict(
		    j, requeued ? CKPT_VERDICT_REQUEUED : CKPT_VERDICT_ENDED,
		    NULL);
	if (requeued && c->evacuate)
		evacuation_moved(j);
	if (requeued && c->evacuate)
		str_printf(
		    msg, sizeof(msg),
		    "job %u: node %s is evacuated (%s): checkpointed, "
		    "requeued",
		    j->id, c->evac_node[0] ? c->evac_node : j->d->cfg.node_name,
		    c->evac_node[0] ? c->evac_reason : j->d->evacuate_reason);
	else if (requeued)
		snprintf(msg, sizeof(msg),
			 "job %u: checkpointed on node %s, requeued", j->id,
			 j->d->cfg.node_name);
	if (!requeued) {
		if (j->spec.v.checkpoint_keep)
			snprintf(fate, sizeof(fate), "kept for --vm-restore");
		/* A multi-node job's first part alone restores nothing
		 * (--vm-restore takes one-node checkpoints). */
		else if (j->spec.v.requeue && !ckpt_multi(j))
			keep_unrequeued(j, c->saved_bytes, fate, sizeof(fate));
		else
			snprintf(fate, sizeof(fate),
				 "removed at the job's end: not kept");
		str_printf(msg, sizeof(msg),
			   "job %u: checkpointed on node %s%s%s (checkpoint "
			   "%s, %s)",
			   j->id, j->d->cfg.node_name, why[0] ? "; " : "", why,
			   c->dir, fate);
	}
	log_notice("%s", msg);
	exec_ckpt_end(j, msg, requeued ? 0 : CKPT_EXIT_ENDED);
	ckpt_set_phase(j, PH_SAVED);
	ckpt_post(j, CKPT_EV_SAVED, msg);
	return true;
}

static void save_done(struct job *j, struct ckpt_work *w)
{
	struct ckpt_job *c = j->ckpt;
	const struct ckpt_work_result *res = ckpt_work_result(w);
	char why[PROTO_MAX_ERROR];

	c->work = NULL;
	/* The worker waited for the file server that QEMU's end let go. */
	if (res->guest_gone)
		jobfiles_saved(j);
	if (res->r < 0) {
		str_printf(why, sizeof(why),
			   "job %u: checkpoint failed on node %s: %s", j->id,
			   j->d->cfg.node_name, res->err);
		ckpt_save_failed(j, why, res->guest_gone);
		return;
	}
	j->domain_running = false;
	ckpt_node_bw_refine(j->d, res->bytes, res->ms);
	metrics_ckpt_saved(j->d, res->ms, res->bytes);
	log_notice(
	    "job %u: checkpoint %u saved in %s (%llu MiB in %llu ms, "
	    "%llu MiB/s)",
	    j->id, c->seq, c->dir, (unsigned long long)(res->bytes >> 20),
	    (unsigned long long)res->ms,
	    (unsigned long long)(res->bytes / (res->ms ? res->ms : 1) * 1000 >>
				 20));
	c->saved_bytes = res->bytes;
	/* From the directory just written, not from whatever its name in
	 * the store leads to now. */
	c->dirfd = ckpt_work_take_dir(w);
	if (ckpt_multi(j)) {
		group_saved(j);
		return;
	}
	if (!c->go_on && saved_requeue(j))
		return;
	go_on_restore(j);
}

/* On demand (or an evacuation Slurm would not requeue, or a multi-node
 * job's abandoned group): the job goes on from the checkpoint just
 * written (c->dirfd), which stays. */
static void go_on_restore(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char why[PROTO_MAX_ERROR];

	c->go_on = true;
	c->restore = true;
	c->keep = true;
	c->job_id = j->id;
	ckpt_manifest_clear(&c->man);
	if (ckpt_store_load(c->dirfd, c->dir, &c->man, why, sizeof(why)) < 0 ||
	    start_restore(j, why, sizeof(why)) < 0) {
		ckpt_answer(c, why);
		ckpt_fail(j, "job %u: cannot go on after the checkpoint: %s",
			  j->id, why);
	}
}

/* --- the agent's answers --------------------------------------------------- */

static int on_refused(struct job *j, const uint8_t *p, size_t n)
{
	struct ckpt_job *c = j->ckpt;
	_cleanup_free_ char *reason = NULL;
	char why[PROTO_MAX_ERROR], safe[300];
	struct aw_reader r;
	uint32_t what;

	aw_reader_init(&r, p, n);
	what = aw_get_u32(&r);
	(void)aw_get_u32(&r);
	reason = aw_get_str(&r, 1024);
	if (aw_reader_done(&r) < 0)
		return -EPROTO;
	printable(reason, safe, sizeof(safe));
	if (what == AW_CKPT_PREPARE && c->phase == PH_PREPARING) {
		bool evacuating = c->evacuate;

		snprintf(why, sizeof(why), "job %u: %s", j->id, safe);
		/* Refused by the guest: the job goes on (it ends at its time
		 * limit unless the refusal goes away); the reason is
		 * logged and answered, and a multi-node job's other nodes
		 * go on too. */
		ckpt_phase_done(j, PH_IDLE);
		if (ckpt_multi(j))
			ckpt_group_abort(j, why);
		log_warn("%s", why);
		if (evacuating)
			ckpt_evacuation_failed(j, why);
		ckpt_post(j, CKPT_EV_GOES_ON, NULL);
		if (evacuating) {
			ckpt_schedule(j);
		} else if (c->cfd >= 0) {
			ckpt_answer(c, why);
			ckpt_schedule(j);
		} else {
			ckpt_retry_later(j);
		}
		return 0;
	}
	if (what == AW_CKPT_RESUME && c->phase == PH_RESUMING) {
		ckpt_answer(c, safe);
		ckpt_fail(j, "job %u: the restored guest did not resume: %s",
			  j->id, safe);
		return 0;
	}
	return -EPROTO;
}

static void resumed(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	ckpt_phase_done(j, PH_IDLE);
	if (c->group_failed) {
		/* No complete group names it. */
		if (ckpt_store_remove(&c->store, c->job_id, c->man.seq) < 0)
			log_err("job %u: cannot remove the abandoned "
				"checkpoint %s",
				j->id, c->dir);
		c->group_failed = false;
		c->restore = false;
		c->go_on = false;
		if (c->evacuate)
			ckpt_evacuation_failed(j, c->fail);
		c->evac_asked = false;
		exec_ckpt_resumed(j);
		ckpt_post(j, CKPT_EV_GOES_ON, NULL);
		ckpt_answer(c, c->fail);
		if (c->scheduled)
			ckpt_retry_later(j);
		else
			ckpt_schedule(j);
		return;
	}
	if (c->resume_only) {
		c->resume_only = false;
		exec_ckpt_resumed(j);
		ckpt_post(j, CKPT_EV_GOES_ON, NULL);
		ckpt_answer(c, c->fail);
		/* A multi-node job's failed save of its own: again in a
		 * minute (its time may be past: not at once, over and over). */
		if (ckpt_multi(j) && c->scheduled)
			ckpt_retry_later(j);
		else
			ckpt_schedule(j);
		return;
	}
	if (c->go_on)
		exec_ckpt_resumed(j);
	else if (exec_ckpt_adopt(j, &c->man, c->replay[0] ? c->replay : NULL) <
		 0)
		log_err("job %u: cannot keep the sessions of the checkpoint",
			j->id);
	c->replay[0] = '\0';
	log_notice("job %u: restored from checkpoint %u (%s) in %llu ms", j->id,
		   c->man.seq, c->dir, (unsigned long long)(now_ms() - c->t0));
	if (!c->keep && ckpt_store_remove(&c->store, c->job_id, c->man.seq) < 0)
		log_err("job %u: cannot remove the used checkpoint %s", j->id,
			c->dir);
	c->restore = false;
	c->go_on = false;
	ckpt_answer(c, NULL);
	ckpt_post(j, CKPT_EV_READY, NULL);
}

int ckpt_on_agent_frame(struct job *j, uint8_t type, const uint8_t *p, size_t n)
{
	struct ckpt_job *c = j->ckpt;
	struct aw_reader r;
	uint32_t what;

	/* Answers to a ckpt_resume_guest() of a vmmd that had no checkpoint
	 * under way (restarted while the guest was held). */
	if (!c)
		return 0;
	if (type == AW_CKPT_REFUSED)
		return on_refused(j, p, n);
	aw_reader_init(&r, p, n);
	what = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0)
		return -EPROTO;
	if (what == AW_CKPT_PREPARE && c->phase == PH_PREPARING) {
		ckpt_phase_done(j, PH_FLUSHING);
		flush_tick(j);
		return 0;
	}
	if (what == AW_CKPT_RESUME && c->phase == PH_RESUMING) {
		resumed(j);
		return 0;
	}
	/* An answer to a request we gave up on (a timeout's RESUME). */
	return 0;
}

static void send_resume(struct job *j);

void ckpt_on_agent_held(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	if (c && c->phase == PH_RESTORING) {
		c->held_early = true;
		return;
	}
	if (!c || c->phase != PH_RESUMING) {
		/* Held, but no checkpoint of ours is under way (vmmd was
		 * restarted in the middle): the guest goes on. */
		ckpt_resume_guest(j);
		ckpt_post(j, CKPT_EV_READY, NULL);
		return;
	}
	/* A multi-node job's guests go on together. */
	if (c->back) {
		group_back(j);
		return;
	}
	send_resume(j);
}

/* Thaws the restored guest's processes. */
static void send_resume(struct job *j)
{
	struct aw_buf b = {0};

	/* Step the clock: the guest slept from the save until now. */
	if (aw_put_i64(&b, (int64_t)time(NULL)) == 0 &&
	    aw_put_u32(&b, j->files_kind == JOBFILES_VIRTIO_9P ? AW_CKPT_MOUNTS
							       : 0) == 0)
		agent_send(j, AW_CKPT_RESUME, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* --- restoring ------------------------------------------------------------- */

static void restore_done(struct job *j, struct ckpt_work *w)
{
	struct ckpt_job *c = j->ckpt;
	const struct ckpt_work_result *res = ckpt_work_result(w);
	char err[PROTO_MAX_ERROR];
	int r;

	c->work = NULL;
	if (res->r < 0) {
		/* No guest of ours runs under the saved name: the teardown
		 * must not destroy one that another job started meanwhile. */
		if (!c->go_on && !res->restored)
			str_printf(j->domain, sizeof(j->domain), "%s%u",
				   j->d->domain_prefix, j->id);
		ckpt_answer(c, res->err);
		ckpt_fail(j,
			  "job %u: cannot restore checkpoint %s on node %s: "
			  "%s",
			  j->id, c->dir, j->d->cfg.node_name, res->err);
		return;
	}
	ckpt_set_phase(j, PH_RESUMING);
	j->domain_running = true;
	if (!res->replayed)
		c->replay[0] = '\0';
	log_info("job %u: guest restored from %s in %llu ms; resuming", j->id,
		 c->dir, (unsigned long long)res->ms);
	/* The files are served again (from the state in the checkpoint, read
	 * from the fds the worker verified: ckpt_job_restored_file) before
	 * the guest's processes are thawed. */
	c->files_frozen = false;
	ckpt_work_take_verified(w, &c->ver);
	r = jobfiles_thaw(j, c->dir, ckpt_job_restored_file, err, sizeof(err));
	ckpt_verified_clear(&c->ver);
	if (r < 0) {
		ckpt_answer(c, err);
		ckpt_fail(j, "job %u: the restored guest's files: %s", j->id,
			  err);
		return;
	}
	if (c->held_early) {
		c->held_early = false;
		ckpt_on_agent_held(j);
		return;
	}
	/* The agent channel connects (agent_attach retries) and the agent
	 * says it holds the checkpoint: ckpt_on_agent_held. */
	if (!j->agent && agent_attach(j) < 0)
		ckpt_fail(j, "job %u: agent channel after the restore", j->id);
}

static int run_restore(struct job *j, const char *xml, uint64_t limit_kib,
		       char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;
	char io_dir[VMENV_MAX_PATH];
	struct ckpt_work_restore wr = {
	    .domain = j->domain,
	    .dir = c->dir,
	    .io_dir = io_dir,
	    .job_dir = j->dir,
	    .xml = xml,
	    .hard_limit_kib = limit_kib,
	    .job_id = c->job_id,
	    .uid = (uint32_t)j->uid,
	};
	int r;

	if (c->dirfd < 0 || ckpt_store_path(&c->store, c->dirfd, c->dir, "",
					    io_dir, sizeof(io_dir)) < 0)
		return err_set(err, errlen, -EBADF,
			       "job %u: checkpoint %s is not open", j->id,
			       c->dir);
	/* Another job's output (--vm-restore) is not this job's: its file
	 * starts with what the restored guest prints from now on. */
	if (c->job_id != j->id ||
	    str_printf(c->replay, sizeof(c->replay), "%s/%s", j->dir,
		       CKPT_WORK_REPLAY) < 0)
		c->replay[0] = '\0';
	wr.replay = c->replay[0] != '\0';
	ckpt_set_phase(j, PH_RESTORING);
	c->t0 = now_ms();
	if (devs_xml(j, &wr.devs) < 0) {
		ckpt_work_devs_clear(&wr.devs);
		return err_set(err, errlen, -ENOMEM, "job %u: out of memory",
			       j->id);
	}
	/* The worker takes the directory over (the io_dir path names its
	 * fd). */
	wr.dirfd = TAKE_FD(c->dirfd);
	r = ckpt_work_restore(j, &wr, restore_done, &c->work);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot start the restore: %s", j->id,
			       strerror(-r));
	return 0;
}

int ckpt_job_restore(struct job *j, const char *xml, uint64_t hard_limit_kib,
		     char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;
	const char *base = jobimg_base(j);
	char what[VMENV_MAX_PATH + 32];

	if (strcmp(c->man.base_sha256, base ? base : "") != 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s was taken on image base "
			       "%.12s, this node prepared %.12s",
			       j->id, ckpt_label(j, what, sizeof(what)),
			       c->man.base_sha256, base ? base : "(none)");
	return run_restore(j, xml, hard_limit_kib, err, errlen);
}

/* On demand, after the save: the same domain comes back from the XML it
 * was saved with. */
static int start_restore(struct job *j, char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;

	ckpt_post(j, CKPT_EV_RESTORING, NULL);
	return run_restore(j, c->xml ? c->xml : "", c->limit_kib, err, errlen);
}

/* --- multi-node jobs ------------------------------------------------------
 *
 * Every node's guest of the job is saved at one point: the first node
 * writes a plan, each node's guest holds (the agent stops the job's
 * processes), and only when every node's holds does any node save; the
 * group is complete when every node's is saved, or abandoned (every node
 * goes on) when one cannot. A restore holds each restored guest until
 * every node's is back. docs/checkpoint.md, "Multi-node jobs".
 *
 * Here are the barriers, which call the save and the restore and are
 * called back by them; the plan and the other nodes' watch for it start
 * a save (ckpt_sched.c), the coordination files' helpers are below
 * (ckpt_group.c), a requeued job's group is found with its other
 * checkpoints (ckpt_lookup.c). */

static void coord_tick(void *data);

static void wait_for(struct job *j, int what)
{
	struct ckpt_job *c = j->ckpt;

	c->wait = what;
	c->wait_t0 = now_ms();
	loop_cancel_timer(c->coord_t);
	c->coord_t = NULL;
	coord_tick(j);
}

/* This node's guest holds (flushed): wait for every node's before any
 * is saved. */
static void group_frozen(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char why[PROTO_MAX_ERROR];
	int r;

	if (!ckpt_multi(j)) {
		do_save(j);
		return;
	}
	r = ckpt_coord_mark(&c->coord, c->group, "frozen", j->slurm.node_index,
			    j->d->cfg.node_name);
	if (r < 0) {
		str_printf(why, sizeof(why),
			   "job %u: checkpoint failed on node %s: cannot "
			   "write to the store %s: %s",
			   j->id, j->d->cfg.node_name, ckpt_root(j),
			   strerror(-r));
		ckpt_save_failed(j, why, false);
		return;
	}
	wait_for(j, CW_FROZEN);
}

static void group_saved(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char seq[16], why[PROTO_MAX_ERROR];
	int r;

	snprintf(seq, sizeof(seq), "%u\n", c->seq);
	r = ckpt_coord_mark(&c->coord, c->group, "saved", j->slurm.node_index,
			    seq);
	if (r < 0) {
		str_printf(why, sizeof(why),
			   "node %s cannot write to the store %s: %s",
			   j->d->cfg.node_name, ckpt_root(j), strerror(-r));
		ckpt_group_abort(j, why);
	}
	wait_for(j, CW_SAVED);
}

static bool frozen_tick(struct job *j, const char *out)
{
	struct ckpt_job *c = j->ckpt;
	uint32_t n = j->slurm.nnodes, k;
	char why[PROTO_MAX_ERROR], r[PROTO_MAX_ERROR];

	if (out) {
		ckpt_abort_reason(out, r, sizeof(r));
		str_printf(why, sizeof(why),
			   "job %u: checkpoint group %u abandoned: %s", j->id,
			   c->group, r);
		ckpt_save_failed(j, why, false);
		return true;
	}
	k = ckpt_coord_count(&c->coord, c->group, "frozen", n);
	if (k == n) {
		ckpt_barrier_passed(j, "holds", "saving");
		do_save(j);
		return true;
	}
	if (now_ms() - c->wait_t0 >= COORD_FROZEN_MS) {
		/* This node goes on even if the store will not take the
		 * abort: no outcome is complete without its saved mark. */
		str_printf(why, sizeof(why),
			   "job %u: checkpoint group %u abandoned: the guests "
			   "of %u of the job's %u nodes held within %u s",
			   j->id, c->group, k, n, COORD_FROZEN_MS / 1000);
		ckpt_save_failed(j, why, false);
		return true;
	}
	return false;
}

/* Every node's guest is saved: go on (on demand), or end here; the first
 * node requeues the job, and the others wait for its verdict. */
static void group_complete(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	/* This group is the newest complete one: what older ones named
	 * goes, as a one-node job's does when its save is complete. */
	if (c->dirfd >= 0)
		ckpt_store_drop_older(c->dirfd, c->seq);
	if (c->go_on) {
		c->back = true;
		go_on_restore(j);
		return;
	}
	if (!ckpt_follower(j)) {
		/* An evacuation Slurm would not requeue: every node goes on
		 * from the group (its verdict), together, as after an
		 * on-demand one (a store that took no verdict takes no back
		 * mark either: the job fails then, rather than going on here
		 * alone). */
		if (!saved_requeue(j)) {
			c->back = true;
			go_on_restore(j);
		}
		return;
	}
	/* Not before the first node said what Slurm did: a job it could
	 * not requeue goes on, on every node. */
	wait_for(j, CW_VERDICT);
}

/* A node other than the first ends its part of the job with the group:
 * how (the first node's verdict, or none within its bound). */
static void follower_ends(struct job *j, const char *how)
{
	struct ckpt_job *c = j->ckpt;
	char msg[PROTO_MAX_ERROR];

	c->evac_asked = false;
	str_printf(msg, sizeof(msg),
		   "job %u: checkpointed on node %s (node %u of %u, "
		   "checkpoint group %u%s); %s",
		   j->id, j->d->cfg.node_name, j->slurm.node_index,
		   j->slurm.nnodes, c->group,
		   c->evacuate ? ", the node is evacuated" : "", how);
	log_notice("%s", msg);
	exec_ckpt_end(j, msg, 0);
	ckpt_set_phase(j, PH_SAVED);
	ckpt_post(j, CKPT_EV_SAVED, msg);
}

/* The first node could not requeue the evacuated job: this node's guest
 * comes back from what it just wrote, and goes on with every other
 * node's (the restore barrier). */
static void follower_goes_on(struct job *j, const char *why)
{
	struct ckpt_job *c = j->ckpt;
	char msg[PROTO_MAX_ERROR], safe[PROTO_MAX_ERROR];

	str_printf(msg, sizeof(msg),
		   "job %u: saved, but not requeued (%s): it goes on here "
		   "from the checkpoint",
		   j->id, printable(why, safe, sizeof(safe)));
	c->evac_asked = false;
	if (c->evacuate)
		ckpt_evacuation_failed(j, msg);
	else
		log_notice("%s", msg);
	c->back = true;
	go_on_restore(j);
}

static bool verdict_tick(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char why[PROTO_MAX_ERROR];
	enum ckpt_verdict v;
	int r;

	r = ckpt_coord_read_verdict(&c->coord, c->group, &v, why, sizeof(why));
	if (r < 0 && r != -EBADMSG && now_ms() - c->wait_t0 < COORD_VERDICT_MS)
		return false;
	c->wait = CW_NONE;
	if (r < 0) {
		/* Its part ends as it did before verdicts: most likely the
		 * job was requeued (a first node that died or is older
		 * writes none). */
		if (r == -EBADMSG)
			log_err("job %u: checkpoint group %u: the job's first "
				"node's verdict on its requeue is unreadable; "
				"this node's part ends",
				j->id, c->group);
		else
			log_warn("job %u: checkpoint group %u: no verdict from "
				 "the job's first node on its requeue within "
				 "%u s%s%s; this node's part ends",
				 j->id, c->group, COORD_VERDICT_MS / 1000,
				 r == -ENOENT ? "" : ": ",
				 r == -ENOENT ? "" : strerror(-r));
		if (c->evacuate)
			evacuation_moved(j);
		follower_ends(j, "the job's first node did not say whether "
				 "Slurm requeued it");
		return true;
	}
	if (v == CKPT_VERDICT_GOON) {
		follower_goes_on(j, why);
		return true;
	}
	if (v == CKPT_VERDICT_REQUEUED && c->evacuate)
		evacuation_moved(j);
	follower_ends(j, v == CKPT_VERDICT_REQUEUED
			     ? "the job's first node requeued it"
			     : "the job ends, checkpointed, not requeued");
	return true;
}

static bool saved_tick(struct job *j, const char *out)
{
	struct ckpt_job *c = j->ckpt;
	uint32_t n = j->slurm.nnodes, k;
	char why[PROTO_MAX_ERROR];

	if (out && strncmp(out, "complete ", 9) == 0) {
		c->wait = CW_NONE;
		group_complete(j);
		return true;
	}
	if (out) {
		/* This node's guest is saved and gone: back from it, and the
		 * job goes on with the reason. */
		c->wait = CW_NONE;
		ckpt_abort_reason(out, why, sizeof(why));
		str_printf(c->fail, sizeof(c->fail),
			   "job %u: checkpoint group %u abandoned: %s", j->id,
			   c->group, why);
		log_warn("%s", c->fail);
		c->group_failed = true;
		go_on_restore(j);
		return true;
	}
	k = ckpt_coord_count(&c->coord, c->group, "saved", n);
	/* Decided here: act on it now, not a tick later (the first node
	 * requeues at once, and Slurm then ends the job on this node). */
	if (k == n && ckpt_decide_complete(j)) {
		c->wait = CW_NONE;
		group_complete(j);
		return true;
	}
	if (k < n && now_ms() - c->wait_t0 >= COORD_SAVED_MS) {
		str_printf(why, sizeof(why),
			   "the guests of %u of the job's %u nodes were saved "
			   "within %u s",
			   k, n, COORD_SAVED_MS / 1000);
		ckpt_group_abort(j, why);
	}
	/* No outcome can be read or written (the store is gone): this
	 * node's guest is saved and the others' fate unknown. */
	if (now_ms() - c->wait_t0 >= COORD_SAVED_MS + COORD_GRACE_MS) {
		c->wait = CW_NONE;
		ckpt_fail(
		    j,
		    "job %u: checkpoint group %u: no outcome in the store %s "
		    "within %u s of this node's save",
		    j->id, c->group, ckpt_root(j),
		    (COORD_SAVED_MS + COORD_GRACE_MS) / 1000);
		return true;
	}
	return false;
}

/* The restored guest holds: it goes on once every node's does. */
static void group_back(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char what[24];
	int r;

	ckpt_back_name(j, what, sizeof(what));
	if (c->coord.fd < 0 ||
	    (r = ckpt_coord_mark(&c->coord, c->group, what, j->slurm.node_index,
				 j->d->cfg.node_name)) < 0) {
		ckpt_fail(j,
			  "job %u: restored on node %s, but it cannot tell the "
			  "job's other nodes (store %s)",
			  j->id, j->d->cfg.node_name, ckpt_root(j));
		return;
	}
	ckpt_post(j, CKPT_EV_WAITING, NULL);
	wait_for(j, CW_BACK);
}

static bool back_tick(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	uint32_t n = j->slurm.nnodes, k;
	char what[24];

	ckpt_back_name(j, what, sizeof(what));
	k = ckpt_coord_count(&c->coord, c->group, what, n);
	if (k == n) {
		ckpt_barrier_passed(j, "is back", "resuming");
		c->back = false;
		send_resume(j);
		return true;
	}
	if (now_ms() - c->wait_t0 >= COORD_BACK_MS) {
		c->wait = CW_NONE;
		ckpt_fail(
		    j,
		    "job %u: restored on node %s from checkpoint group %u, "
		    "but the guests of only %u of the job's %u nodes came "
		    "back within %u s",
		    j->id, j->d->cfg.node_name, c->group, k, n,
		    COORD_BACK_MS / 1000);
		return true;
	}
	return false;
}

static void coord_tick(void *data)
{
	struct job *j = data;
	struct ckpt_job *c = j->ckpt;
	char out[CKPT_COORD_MAX_TEXT];
	const char *o = NULL;
	bool done = true;

	c->coord_t = NULL;
	if ((c->wait == CW_FROZEN || c->wait == CW_SAVED) &&
	    ckpt_coord_outcome(&c->coord, c->group, out, sizeof(out)) == 0)
		o = out;
	if (c->wait == CW_FROZEN)
		done = frozen_tick(j, o);
	else if (c->wait == CW_SAVED)
		done = saved_tick(j, o);
	else if (c->wait == CW_VERDICT)
		done = verdict_tick(j);
	else if (c->wait == CW_BACK)
		done = back_tick(j);
	if (!done && j->ckpt == c)
		c->coord_t =
		    loop_add_timer(j->d->loop, COORD_TICK_MS, coord_tick, j);
}

/* The job ends on this node while its saved guest waited for the group's
 * outcome, or for the first node's verdict: another node read the outcome
 * first and the first node requeued the job at once (Slurm then ends it
 * here before this node's next look). A complete group moved it all the
 * same: an evacuation says so, unless the first node said the job goes
 * on (it ended here for another reason then). */
static void follower_saved_at_end(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char out[CKPT_COORD_MAX_TEXT];
	enum ckpt_verdict v;

	if (!c || (c->wait != CW_SAVED && c->wait != CW_VERDICT) ||
	    !ckpt_follower(j) ||
	    ckpt_coord_outcome(&c->coord, c->group, out, sizeof(out)) < 0 ||
	    strncmp(out, "complete ", 9) != 0)
		return;
	if (ckpt_coord_read_verdict(&c->coord, c->group, &v, NULL, 0) == 0 &&
	    v == CKPT_VERDICT_GOON)
		return;
	log_notice("job %u: checkpoint group %u complete; the job ended on "
		   "node %s before this node read %s",
		   j->id, c->group, j->d->cfg.node_name,
		   c->wait == CW_SAVED ? "it" : "the first node's verdict");
	if (c->evacuate)
		evacuation_moved(j);
}

/* Its checkpoints stay while Slurm may run the job again (ckpt_keep.h). */
void ckpt_job_ended(struct job *j)
{
	char root[VMENV_MAX_PATH];
	bool requeued = j->ckpt && j->ckpt->requeued;

	follower_saved_at_end(j);

	if (ckpt_job_store_root(j, root, sizeof(root)) < 0)
		return;
	ckpt_keep_job_ended(j->d, root, !j->spec.v.checkpoint_dir[0], j->id,
			    requeued);
	/* The first node's end decides for the coordination files: without
	 * them a later start of the job boots on every node alike. */
	if (ckpt_multi(j) && j->slurm.node_index == 0 && !requeued &&
	    !j->spec.v.checkpoint_dir[0])
		ckpt_keep_coord_ended(j->d, ckpt_root(j), j->id);
}
