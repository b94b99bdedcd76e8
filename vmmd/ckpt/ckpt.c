/* SPDX-License-Identifier: MIT */
#include "ckpt.h"

#include "agent.h"
#include "agentwire.h"
#include "ckpt_coord.h"
#include "ckpt_keep.h"
#include "ckpt_lead.h"
#include "ckpt_source.h"
#include "ckpt_store.h"
#include "ckpt_work.h"
#include "cleanup.h"
#include "domxml.h"
#include "exec.h"
#include "jobfiles.h"
#include "jobimage.h"
#include "jobrec.h"
#include "log.h"
#include "rmtree.h"
#include "vmmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A refused scheduled checkpoint is tried again this much later. */
#define CKPT_RETRY_S 60u
/* The agent's prepare hook may take up to 120 s, freezing up to 10 s. */
#define CKPT_PREPARE_TIMEOUT_MS 150000u
/* Output still queued toward a task when the guest froze. */
#define CKPT_FLUSH_WAIT_MS 10000u
#define CKPT_FLUSH_TICK_MS 50u
/* vmenv-exec's exit code when the job ends checkpointed (not requeued). */
#define CKPT_EXIT_ENDED 125
/* A multi-node job's nodes (docs/checkpoint.md, "Multi-node jobs"): how
 * often a node looks at the coordination files, and how long it waits
 * for every node to hold (the prepare's bound and more), to be saved, and
 * to be restored. */
#define COORD_WATCH_MS	1000u
#define COORD_TICK_MS	200u
#define COORD_FROZEN_MS (CKPT_PREPARE_TIMEOUT_MS + 30000u)
#define COORD_SAVED_MS	900000u
#define COORD_BACK_MS	600000u
#define COORD_GRACE_MS	60000u

enum ckpt_phase {
	PH_IDLE,
	PH_PREPARING, /* CKPT_PREPARE sent, waiting for the agent */
	PH_FLUSHING,  /* agent frozen; vmmd's queues toward tasks drain */
	PH_SAVING,    /* worker: save, overlay, manifest */
	PH_RESTORING, /* worker: verify, overlay, restore */
	PH_RESUMING,  /* restored; waiting for the agent's CKPT_OK(RESUME) */
	PH_SAVED,     /* the guest is in the store; the job is over here */
};

struct ckpt_job {
	enum ckpt_phase phase;
	/* On demand: restore right after the save, keep the checkpoint. */
	bool go_on;
	/* The node is evacuated (ckpt_job_evacuate): requeued whatever
	 * --vm-requeue says; a failed save lets the job go on. evac_why: the
	 * last evacuation's failure, for vmenvctl list. */
	bool evacuate;
	char evac_why[PROTO_MAX_ERROR];
	/* The node is evacuated and the job went on (an on-demand save
	 * ended, a refusal of another save): asked again from the loop. */
	struct loop_timer *evac_t;
	int cfd;
	struct loop_timer *due_t, *requery_t, *phase_t;
	time_t due;
	uint32_t lead_s;
	uint64_t t0;
	char *xml; /* the domain as last built, without hostdevs */
	uint64_t limit_kib;
	/* The domain's hard limit wherever it is set (in its XML or live):
	 * what the save raises. */
	uint64_t save_limit_kib;
	/* Passed-through devices: unplugged before the save, plugged
	 * (this allocation's) after the restore. */
	uint32_t ndevs;
	struct dom_hostdev devs[DOM_MAX_HOSTDEVS];
	/* A failed on-demand save: the guest is thawed, then this goes to
	 * the client. */
	bool resume_only;
	/* jobfiles_freeze succeeded: a save that fails with the guest alive
	 * must let the file server serve again. */
	bool files_frozen;
	/* The restored guest's agent said it holds before the loop saw the
	 * restore end: answered from restore_done. */
	bool held_early;
	char fail[PROTO_MAX_ERROR];
	struct ckpt_work *work;
	/* The checkpoint being written, or restored from: its store, its
	 * directory (held open from the lookup to the worker, which takes
	 * it over) and that directory's path for messages. */
	char root[VMENV_MAX_PATH];
	struct ckpt_store store;
	int dirfd;
	char dir[VMENV_MAX_PATH];
	/* A restore's checkpoint as the worker verified it: its files,
	 * still open, until the file server took its state (take_state). */
	struct ckpt_verified ver;
	uint32_t job_id, seq;
	struct ckpt_manifest man;
	bool restore;
	bool keep;     /* after the restore */
	bool requeued; /* by vmmd, after the save */
	char name[sizeof(((struct job *)0)->domain)]; /* saved_name() */
	char replay[VMENV_MAX_PATH];
	/* A job of several nodes: the checkpoint group being saved or
	 * restored from, what this node waits for in the coordination files
	 * (since wait_t0), the last plan a node other than the first saw.
	 * group_failed: the group was abandoned after this node's save; the
	 * guest is restored and the job goes on. back: the restore holds the
	 * guest until every node's is back. */
	struct ckpt_coord coord;
	struct loop_timer *watch_t, *coord_t;
	enum { CW_NONE, CW_FROZEN, CW_SAVED, CW_BACK } wait;
	uint64_t wait_t0;
	uint32_t group, seen_plan;
	bool group_failed, back;
	/* The save was the job's own, before its time limit. */
	bool scheduled;
	/* A node other than the first is evacuated: it asked the first
	 * node to save the job, and its part of that save is an
	 * evacuation. */
	bool evac_asked;
	/* The first node saves the job for another node's evacuation: that
	 * node and its reason, for the job's message. */
	char evac_node[128];
	char evac_reason[PROTO_MAX_REASON];
	uint64_t saved_bytes;
};

static struct ckpt_job *cj(struct job *j)
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

static bool multi(const struct job *j)
{
	return j->slurm.nnodes > 1;
}

/* Node i of a multi-node job keeps its guest's checkpoints in its own
 * part of the store (ckpt_coord.h); the first node, as a one-node job,
 * in the store itself. */
int ckpt_job_store_root(const struct job *j, char *buf, size_t len)
{
	return ckpt_coord_node_root(
	    ckpt_root(j), multi(j) ? j->slurm.node_index : 0, buf, len);
}

/* The job's store (its --vm-checkpoint-dir, or the node's) into
 * c->store. */
static int open_store(struct job *j, struct ckpt_job *c, bool create, char *err,
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
static int open_checkpoint(struct ckpt_job *c, uint32_t job_id, uint32_t seq,
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

static bool wants_ckpt(const struct job *j)
{
	return j->spec.v.checkpoint || ckpt_job_restoring(j);
}

void ckpt_job_placed(struct job *j, struct dom_placement *place)
{
	struct ckpt_job *c;

	if (!wants_ckpt(j) || !(c = cj(j)))
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

	if (!wants_ckpt(j) || !(c = cj(j)))
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

/* --- the client of an on-demand checkpoint ------------------------------- */

static void answer(struct ckpt_job *c, const char *error)
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
static void set_phase(struct job *j, enum ckpt_phase next)
{
	j->ckpt->phase = next;
	exec_hold(j, next != PH_IDLE);
}

static void phase_done(struct job *j, enum ckpt_phase next)
{
	struct ckpt_job *c = j->ckpt;

	loop_cancel_timer(c->phase_t);
	c->phase_t = NULL;
	set_phase(j, next);
}

/* --- the bandwidth ------------------------------------------------------- */

/* The figure's file in the node's store, by path: only while the store
 * is root's all the way (then no one else can redirect the path). */
static void bw_path(const struct vmmd *d, char *buf, size_t len)
{
	struct ckpt_store s = CKPT_STORE_INIT;

	if (ckpt_store_open(d->cfg.checkpoint_dir, CKPT_STORE_NODE, &s, NULL,
			    0) < 0 ||
	    str_printf(buf, len, "%s/.bandwidth-%s", d->cfg.checkpoint_dir,
		       d->cfg.node_name) < 0)
		buf[0] = '\0';
	ckpt_store_close(&s);
}

static void sweep_tick(void *data)
{
	struct vmmd *d = data;

	ckpt_sweep(d);
	loop_add_timer(d->loop, CKPT_SWEEP_S * 1000ull, sweep_tick, d);
}

/* The job's owner (job.c): the only one that changes a job's state. */
static const struct ckpt_sink *owner;

static void evacuate_later(struct job *j);

static void post(struct job *j, enum ckpt_event ev, const char *msg)
{
	owner->event(j, ev, msg);
	if (ev == CKPT_EV_GOES_ON)
		evacuate_later(j);
}

/* The checkpoint failed in a way that ends the job: msg says why. */
static void fail(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct job *j, const char *fmt, ...)
{
	char msg[PROTO_MAX_ERROR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	post(j, CKPT_EV_FAILED, msg);
}

void ckpt_fini(struct vmmd *d)
{
	ckpt_keep_fini(d);
}

void ckpt_init(struct vmmd *d, const struct ckpt_sink *sink)
{
	struct ckpt_store s = CKPT_STORE_INIT;
	char path[VMENV_MAX_PATH], err[VMENV_MAX_PATH + 256];
	uint64_t bps = 0, probed = 0;
	int r;

	owner = sink;

	/* The store holds guests' memory: root's only, all the way. */
	r = ckpt_store_open(d->cfg.checkpoint_dir,
			    CKPT_STORE_CREATE | CKPT_STORE_NODE, &s, err,
			    sizeof(err));
	if (r < 0) {
		log_err("checkpoints: %s; checkpoints into it are refused",
			err);
		return;
	}
	r = ckpt_store_gc(&s, 0, CKPT_GC_IDLE_S);
	ckpt_store_close(&s);
	if (r > 0)
		log_notice("checkpoints: removed %d incomplete save(s) in %s",
			   r, d->cfg.checkpoint_dir);
	/* Checkpoints of ended jobs (cancelled while requeued, or finished
	 * while this vmmd was down) and kept ones past their time. */
	ckpt_sweep(d);
	loop_add_timer(d->loop, CKPT_SWEEP_S * 1000ull, sweep_tick, d);
	bw_path(d, path, sizeof(path));
	if (path[0])
		ckpt_bw_load(path, &bps);
	if (d->cfg.checkpoint_probe_mib &&
	    ckpt_bw_probe(d->cfg.checkpoint_dir,
			  (uint64_t)d->cfg.checkpoint_probe_mib << 20, &probed,
			  err, sizeof(err)) < 0)
		log_warn("checkpoints: %s", err);
	if (probed)
		bps = bps ? bps / 2 + probed / 2 : probed;
	d->ckpt_bw_bps = bps;
	if (bps && path[0])
		ckpt_bw_save(path, bps);
	log_info("checkpoints: store %s, save bandwidth %llu MiB/s%s",
		 d->cfg.checkpoint_dir, (unsigned long long)(bps >> 20),
		 probed ? " (probed)" : "");
}

static void bw_refine(struct vmmd *d, uint64_t bytes, uint64_t ms)
{
	char path[VMENV_MAX_PATH];

	d->ckpt_bw_bps = ckpt_bw_refine(d->ckpt_bw_bps, bytes, ms);
	bw_path(d, path, sizeof(path));
	if (path[0] && ckpt_bw_save(path, d->ckpt_bw_bps) < 0)
		log_warn("checkpoints: cannot write %s", path);
}

/* --- the schedule ---------------------------------------------------------- */

static void due_fire(void *data);
static void requery_fire(void *data);
static int group_ready(struct job *j);
static void group_abort(struct job *j, const char *why);
static void retry_later(struct job *j);

static uint64_t overlay_bytes(const struct job *j)
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

/* Only a job's first node decides when: the others follow its plans. */
static bool follower(const struct job *j)
{
	return multi(j) && j->slurm.node_index > 0;
}

static void schedule(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	time_t now = time(NULL);

	loop_cancel_timer(c->due_t);
	c->due_t = NULL;
	if (follower(j))
		return;
	c->lead_s =
	    ckpt_lead_s(j->spec.v.checkpoint_lead_s, (uint64_t)j->mem_mib << 20,
			overlay_bytes(j), j->d->ckpt_bw_bps);
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
		schedule(j);
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
		schedule(j);
		return;
	}
	if (ckpt_job_save(j, false, -1, err, sizeof(err)) < 0)
		log_err("%s", err);
}

static bool evacuate_now(struct job *j);

void ckpt_job_ready(struct job *j)
{
	struct ckpt_job *c;

	/* Came up on a node being evacuated (it booted or restored
	 * meanwhile): saved and requeued at once; not one that this
	 * evacuation failed to move already (it came back from its save). */
	if (j->d->evacuating && !(j->ckpt && j->ckpt->evac_why[0]) &&
	    evacuate_now(j))
		return;
	if (!j->spec.v.checkpoint || !(c = cj(j)) || c->phase != PH_IDLE)
		return;
	if (multi(j) && group_ready(j) < 0)
		return;
	schedule(j);
	if (!c->requery_t)
		c->requery_t = loop_add_timer(
		    j->d->loop, j->d->cfg.checkpoint_requery_s * 1000ull,
		    requery_fire, j);
}

void ckpt_job_ended(struct job *j)
{
	char root[VMENV_MAX_PATH];
	bool requeued = j->ckpt && j->ckpt->requeued;

	if (ckpt_job_store_root(j, root, sizeof(root)) < 0)
		return;
	ckpt_keep_job_ended(j->d, root, !j->spec.v.checkpoint_dir[0], j->id,
			    requeued);
	/* The first node's end decides for the coordination files: without
	 * them a later start of the job boots on every node alike. */
	if (multi(j) && j->slurm.node_index == 0 && !requeued &&
	    !j->spec.v.checkpoint_dir[0])
		ckpt_keep_coord_ended(j->d, ckpt_root(j), j->id);
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
	answer(c, "the job ended during the checkpoint");
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

/* --- saving ---------------------------------------------------------------- */

static void resume_guest(struct job *j)
{
	struct aw_buf b = {0};

	/* Thaw (the agent ignores it when nothing is held). */
	if (aw_put_i64(&b, (int64_t)time(NULL)) == 0 && aw_put_u32(&b, 0) == 0)
		agent_send(j, AW_CKPT_RESUME, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* An evacuation's save did not happen: the job goes on here (its own
 * checkpoint stays scheduled) and vmenvctl list says why. */
static void evacuation_failed(struct job *j, const char *why)
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
		evacuation_failed(j, why);
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
static void save_failed(struct job *j, const char *why, bool guest_gone)
{
	struct ckpt_job *c = j->ckpt;
	/* A multi-node job's scheduled save is tried again (every node of
	 * the group goes on): one node's refusal must not end the job. */
	bool again = multi(j) && c->scheduled;

	phase_done(j, PH_IDLE);
	loop_cancel_timer(c->coord_t);
	c->coord_t = NULL;
	c->wait = CW_NONE;
	if (multi(j))
		group_abort(j, why);
	if (c->files_frozen && !guest_gone) {
		char err[PROTO_MAX_ERROR] = "";

		if (jobfiles_thaw(j, NULL, NULL, err, sizeof(err)) < 0)
			log_err("%s", err);
	}
	c->files_frozen = false;
	if (c->evacuate)
		evacuation_failed(j, why);
	else if ((!c->go_on && !multi(j)) || guest_gone) {
		answer(c, why);
		post(j, CKPT_EV_FAILED, why);
		return;
	}
	if (guest_gone) {
		post(j, CKPT_EV_FAILED, why);
		return;
	}
	log_warn("%s", why);
	if (j->agent) {
		resume_guest(j);
		exec_ckpt_resumed(j);
		post(j, CKPT_EV_GOES_ON, NULL);
		answer(c, why);
		if (again)
			retry_later(j);
		else
			schedule(j);
		return;
	}
	/* libvirt gave the guest its vCPUs back after the failed save; its
	 * agent, still holding, answers the new channel's HELLO. */
	snprintf(c->fail, sizeof(c->fail), "%s", why);
	c->resume_only = true;
	set_phase(j, PH_RESUMING);
	if (agent_attach(j) < 0) {
		answer(c, why);
		post(j, CKPT_EV_FAILED, why);
	}
}

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
static int group_save(struct job *j, bool go_on, int cfd, char *err,
		      size_t errlen);
static int group_evacuate(struct job *j, char *err, size_t errlen);
static int group_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			    size_t errlen);
static void group_back(struct job *j);

/* --- before a save: the store, its room, the user's kept ones --------- */

/* What a save writes at most: the guest's memory (the save image holds
 * no more than its RAM and the devices' state) and the overlay. */
static uint64_t save_estimate(const struct job *j)
{
	return ((uint64_t)j->mem_mib << 20) + overlay_bytes(j);
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
		       (unsigned long long)(overlay_bytes(j) >> 20));
}

/* Kept checkpoints outlive their jobs by days: at most
 * checkpoint_keep_max of them and checkpoint_keep_max_mib per user in a
 * store (the job's own older one is replaced by this save); est: this
 * one's bytes. */
static int kept_within(const struct job *j, const struct ckpt_store *s,
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
	return kept_within(j, s, save_estimate(j), err, errlen);
}

/* Opens the job's store and starts the next checkpoint in it (c->dirfd,
 * c->dir, c->seq). *refused: the save would not fit or is over the
 * user's limit (not a failure of the store). */
static int begin_save(struct job *j, bool *refused, char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;
	int r = open_store(j, c, true, err, errlen);

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

static void do_save(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	struct ckpt_work_save ws = {0};
	char err[PROTO_MAX_ERROR], why[PROTO_MAX_ERROR];
	char io_dir[VMENV_MAX_PATH];
	bool refused = false;
	int out_fd = -1, r;

	r = begin_save(j, &refused, err, sizeof(err));
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
		save_failed(j, why, false);
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
	ws.keep_older = multi(j);
	ws.limit_kib = c->save_limit_kib;
	ws.guest_kib = (uint64_t)j->mem_mib << 10;
	jobfiles_after_save_plan(j, &ws.files);
	set_phase(j, PH_SAVING);
	c->t0 = now_ms();
	log_info("job %u: saving the guest to %s", j->id, c->dir);
	r = ckpt_work_save(j, &ws, save_done, &c->work);
	if (r < 0) {
		snprintf(why, sizeof(why),
			 "job %u: checkpoint failed on node %s: cannot start "
			 "the save: %s",
			 j->id, j->d->cfg.node_name, strerror(-r));
		save_failed(j, why, false);
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

static void prepare_timeout(void *data)
{
	struct job *j = data;
	char why[PROTO_MAX_ERROR];

	j->ckpt->phase_t = NULL;
	snprintf(why, sizeof(why),
		 "job %u: checkpoint refused: the guest did not get ready "
		 "for it within %u s",
		 j->id, CKPT_PREPARE_TIMEOUT_MS / 1000);
	save_failed(j, why, false);
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

static int start_save(struct job *j, bool go_on, bool evacuate, int cfd,
		      char *err, size_t errlen);

int ckpt_job_save(struct job *j, bool go_on, int cfd, char *err, size_t errlen)
{
	if (multi(j))
		return group_save(j, go_on, cfd, err, errlen);
	return start_save(j, go_on, false, cfd, err, errlen);
}

int ckpt_job_evacuate(struct job *j, char *err, size_t errlen)
{
	struct ckpt_job *c = cj(j);
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
	if (multi(j))
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
	struct ckpt_job *c = cj(j);
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
	set_phase(j, PH_PREPARING);
	c->t0 = now_ms();
	post(j, CKPT_EV_SAVING, NULL);
	c->phase_t = loop_add_timer(j->d->loop, CKPT_PREPARE_TIMEOUT_MS,
				    prepare_timeout, j);
	log_info("job %u: checkpoint: preparing the guest", j->id);
	return 0;
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
	else if (kept_within(j, &c->store, bytes, why, sizeof(why)) == 0 &&
		 ckpt_store_keep(fd, c->dir, why, sizeof(why)) == 0) {
		snprintf(fate, len,
			 "kept for --vm-restore, as Slurm did not requeue "
			 "the job");
		return;
	}
	str_printf(fate, len, "removed at the job's end: not kept (%s)", why);
}

/* The job ends here (true), checkpointed, requeued or not; false: an
 * evacuation Slurm would not requeue (--no-requeue, slurmctld down),
 * where the job goes on here from the checkpoint just written instead:
 * a drained node still runs its jobs, and an evacuation must not end
 * one that the drain alone would have let run. */
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
		evacuation_failed(j, msg);
		return false;
	}
	c->requeued = requeued;
	if (requeued && c->evacuate &&
	    j->d->evacuate_nmoved < ARRAY_SIZE(j->d->evacuate_moved))
		j->d->evacuate_moved[j->d->evacuate_nmoved++] = j->id;
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
		else if (j->spec.v.requeue && !multi(j))
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
	set_phase(j, PH_SAVED);
	post(j, CKPT_EV_SAVED, msg);
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
		save_failed(j, why, res->guest_gone);
		return;
	}
	j->domain_running = false;
	bw_refine(j->d, res->bytes, res->ms);
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
	if (multi(j)) {
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
		answer(c, why);
		fail(j, "job %u: cannot go on after the checkpoint: %s", j->id,
		     why);
	}
}

/* --- the agent's answers --------------------------------------------------- */

/* A refused scheduled checkpoint: again in a minute (the refusal may go
 * away: a file closed, a hook's condition gone), never in a busy loop. */
static void retry_later(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	loop_cancel_timer(c->due_t);
	c->due_t = NULL;
	if (follower(j))
		return;
	c->due = time(NULL) + CKPT_RETRY_S;
	c->due_t =
	    loop_add_timer(j->d->loop, CKPT_RETRY_S * 1000ull, due_fire, j);
}

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
		phase_done(j, PH_IDLE);
		if (multi(j))
			group_abort(j, why);
		log_warn("%s", why);
		if (evacuating)
			evacuation_failed(j, why);
		post(j, CKPT_EV_GOES_ON, NULL);
		if (evacuating) {
			schedule(j);
		} else if (c->cfd >= 0) {
			answer(c, why);
			schedule(j);
		} else {
			retry_later(j);
		}
		return 0;
	}
	if (what == AW_CKPT_RESUME && c->phase == PH_RESUMING) {
		answer(c, safe);
		fail(j, "job %u: the restored guest did not resume: %s", j->id,
		     safe);
		return 0;
	}
	return -EPROTO;
}

static void resumed(struct job *j)
{
	struct ckpt_job *c = j->ckpt;

	phase_done(j, PH_IDLE);
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
			evacuation_failed(j, c->fail);
		c->evac_asked = false;
		exec_ckpt_resumed(j);
		post(j, CKPT_EV_GOES_ON, NULL);
		answer(c, c->fail);
		if (c->scheduled)
			retry_later(j);
		else
			schedule(j);
		return;
	}
	if (c->resume_only) {
		c->resume_only = false;
		exec_ckpt_resumed(j);
		post(j, CKPT_EV_GOES_ON, NULL);
		answer(c, c->fail);
		/* A multi-node job's failed save of its own: again in a
		 * minute (its time may be past: not at once, over and over). */
		if (multi(j) && c->scheduled)
			retry_later(j);
		else
			schedule(j);
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
	answer(c, NULL);
	post(j, CKPT_EV_READY, NULL);
}

int ckpt_on_agent_frame(struct job *j, uint8_t type, const uint8_t *p, size_t n)
{
	struct ckpt_job *c = j->ckpt;
	struct aw_reader r;
	uint32_t what;

	/* Answers to a resume_guest() of a vmmd that had no checkpoint
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
		phase_done(j, PH_FLUSHING);
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
		resume_guest(j);
		post(j, CKPT_EV_READY, NULL);
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

/* libvirt restores a domain only under the name it was saved with
 * ("Target domain name ... does not match source"): a job restored on
 * another node keeps its old node's domain name, a --vm-restore job the
 * old job's. Noted here; the job takes it only when its domain is built
 * (ckpt_job_placed): until then a failing job's teardown must not touch a
 * guest of that name, which may be another job's. */
static void saved_name(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	const char *x = c->man.domain_xml;
	const char *p = x ? strstr(x, "<name>") : NULL, *e;
	size_t n;

	snprintf(c->name, sizeof(c->name), "%s", j->domain);
	if (!p || !(e = strstr(p, "</name>")))
		return;
	p += 6;
	n = (size_t)(e - p);
	if (n >= sizeof(c->name) || strncmp(p, "vmenv-", 6) != 0 ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") < n)
		return;
	memcpy(c->name, p, n);
	c->name[n] = '\0';
}

/* A restarted job's own checkpoint: 1 found, 0 none. */
static int own_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			  size_t errlen)
{
	uint32_t seq = 0;
	int r = open_store(j, c, false, err, errlen);

	if (r == 0)
		r = ckpt_store_latest(&c->store, j->id, &seq, err, errlen);
	if (r == -ENOENT) {
		log_info("job %u: restart %u without a checkpoint of its own",
			 j->id, j->slurm.restart_count);
		return 0;
	}
	if (r == 0)
		r = open_checkpoint(c, j->id, seq, err, errlen);
	if (r < 0)
		return r;
	if (c->man.job_id != j->id || c->man.uid != (uint32_t)j->uid)
		return err_set(err, errlen, -EPERM,
			       "job %u: checkpoint %s is not this job's", j->id,
			       c->dir);
	c->job_id = j->id;
	c->restore = true;
	c->keep = c->man.keep;
	saved_name(j);
	log_info("job %u: restart %u restores checkpoint %u from %s", j->id,
		 j->slurm.restart_count, seq, c->dir);
	return 1;
}

/* libvirt keeps the saved name: a guest restored from the same kept
 * checkpoint by another job (or the old job's guest) may run already. */
static bool domain_taken(struct job *j)
{
	return hv_domain_runs(j->d->hv, j->d->hv_ctx, j->ckpt->name) == 1;
}

/* --vm-restore: another (ended) job's kept checkpoint. 1 found, 0 boot. */
static int other_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			    size_t errlen)
{
	struct ckpt_source s = {
	    .store = &c->store,
	    .job_id = j->id,
	    .uid = (uint32_t)j->uid,
	    .from = j->spec.v.restore_from,
	};
	int r = c->store.fd >= 0 ? 0 : open_store(j, c, false, err, errlen);

	/* A store that does not exist holds no checkpoint (said so). */
	if (r == 0 || r == -ENOENT)
		r = ckpt_source_find(j->d, &s, &c->dirfd, c->dir,
				     sizeof(c->dir), &c->man, err, errlen);

	/* Restored once already (and not kept): a later restart of this
	 * job boots, like a requeued job without a checkpoint. */
	if (r == -ENOENT && j->slurm.restart_count > 0) {
		log_info("%s; restart %u boots", err, j->slurm.restart_count);
		return 0;
	}
	if (r < 0)
		return r;
	c->job_id = s.from;
	c->restore = true;
	c->keep = c->man.keep;
	saved_name(j);
	if (domain_taken(j))
		return err_set(
		    err, errlen, -EEXIST,
		    "job %u: --vm-restore=%u: the guest of checkpoint "
		    "%s (%s) already runs on node %s",
		    j->id, s.from, c->dir, c->name, j->d->cfg.node_name);
	log_notice("job %u: restores job %u's checkpoint %u from %s", j->id,
		   s.from, c->man.seq, c->dir);
	return 1;
}

int ckpt_job_lookup(struct job *j, char *err, size_t errlen)
{
	uint32_t from = j->spec.v.restore_from;
	bool own = j->spec.v.checkpoint && j->slurm.restart_count > 0;
	struct ckpt_job *c;
	int r;

	/* Said at the start, not found out at the first checkpoint. */
	if (j->slurm.nnodes > 1 && j->spec.v.checkpoint &&
	    j->spec.v.checkpoint_dir[0])
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: --vm-checkpoint-dir=%s: a job of %u "
			       "nodes is checkpointed into the nodes' shared "
			       "store (%s) only; submit it without that option",
			       j->id, j->spec.v.checkpoint_dir, j->slurm.nnodes,
			       j->d->cfg.checkpoint_dir);
	if (j->slurm.nnodes > 1 && from)
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: --vm-restore=%u: a job of %u nodes "
			       "cannot restore another job's checkpoint (not "
			       "supported yet)",
			       j->id, from, j->slurm.nnodes);
	if (j->slurm.nnodes > 1) {
		if (!own)
			return 0;
		if (!(c = cj(j)))
			return -ENOMEM;
		return group_checkpoint(j, c, err, errlen);
	}
	if (!own && !from)
		return 0;
	if (!(c = cj(j)))
		return -ENOMEM;
	if (own && (r = own_checkpoint(j, c, err, errlen)) != 0)
		return r;
	return from ? other_checkpoint(j, c, err, errlen) : 0;
}

/* "checkpoint DIR", or "job 42's checkpoint DIR" (--vm-restore). */
static const char *ckpt_label(const struct job *j, char *buf, size_t len)
{
	const struct ckpt_job *c = j->ckpt;

	if (c->job_id == j->id)
		str_printf(buf, len, "checkpoint %s", c->dir);
	else
		str_printf(buf, len, "job %u's checkpoint %s", c->job_id,
			   c->dir);
	return buf;
}

int ckpt_job_check(struct job *j, char *err, size_t errlen)
{
	const struct ckpt_manifest *m;
	char why[256] = "", what[VMENV_MAX_PATH + 32];
	int r;

	if (!ckpt_job_restoring(j))
		return 0;
	m = &j->ckpt->man;
	ckpt_label(j, what, sizeof(what));
	if (m->vcpus != j->vcpus || m->mem_mib != j->mem_mib)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s holds a guest of %u vCPUs "
			       "and %u MiB, but this allocation gives %u vCPUs "
			       "and %u MiB on node %s",
			       j->id, what, m->vcpus, m->mem_mib, j->vcpus,
			       j->mem_mib, j->d->cfg.node_name);
	if (strcmp(m->image, j->image) != 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s is of image '%s', not '%s'", j->id,
			       what, m->image, j->image);
	if (strcmp(m->cpu_model, j->spec.v.cpu_model) != 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s was taken with CPU model "
			       "'%s', the policy now gives '%s'",
			       j->id, what, m->cpu_model, j->spec.v.cpu_model);
	/* The guest has the old job's working directory mounted at its path,
	 * with its processes' cwd and open files in it: another directory
	 * under that path would be a different set of files. */
	if (m->work_dir[0] && strcmp(m->work_dir, j->work_dir) != 0)
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: %s was taken with the working directory "
		    "%s; this job's is %s (submit it from there)",
		    j->id, what, m->work_dir, j->work_dir);
	/* The share's device is part of the guest: the restored one keeps
	 * the kind it was saved with, whatever the node's config says now. */
	if (jobfiles_kind_parse(m->files_kind, &j->files_kind) < 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s: unknown files kind '%s'", j->id,
			       what, m->files_kind);
	/* A served job's mounts are a port and a server's state each: the
	 * guest has as many mounted, with open files on them. */
	if (j->files_kind == JOBFILES_SERVED &&
	    ckpt_manifest_mounts(m) != j->spec.v.mounts.n)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s was taken with %u served mount(s); "
			       "this job has %u (give it the same --vm-mount)",
			       j->id, what, ckpt_manifest_mounts(m),
			       j->spec.v.mounts.n);
	r = j->d->hv->cpu_ok(j->d->hv_ctx, j->d->domain_type, m->cpu_model, why,
			     sizeof(why));
	if (r <= 0)
		return err_set(err, errlen, r < 0 ? r : -EINVAL,
			       "job %u: cannot restore %s (saved on node %s) "
			       "on node %s: %s",
			       j->id, what, m->node, j->d->cfg.node_name, why);
	return 0;
}

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
		answer(c, res->err);
		fail(j,
		     "job %u: cannot restore checkpoint %s on node %s: "
		     "%s",
		     j->id, c->dir, j->d->cfg.node_name, res->err);
		return;
	}
	set_phase(j, PH_RESUMING);
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
		answer(c, err);
		fail(j, "job %u: the restored guest's files: %s", j->id, err);
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
		fail(j, "job %u: agent channel after the restore", j->id);
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
	set_phase(j, PH_RESTORING);
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

	post(j, CKPT_EV_RESTORING, NULL);
	return run_restore(j, c->xml ? c->xml : "", c->limit_kib, err, errlen);
}

/* --- multi-node jobs ------------------------------------------------------
 *
 * Every node's guest of the job is saved at one point: the first node
 * writes a plan, each node's guest holds (the agent stops the job's
 * processes), and only when every node's holds does any node save; the
 * group is complete when every node's is saved, or abandoned (every node
 * goes on) when one cannot. A restore holds each restored guest until
 * every node's is back. docs/checkpoint.md, "Multi-node jobs". */

static void coord_tick(void *data);

static int coord_open(struct job *j, char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;

	if (c->coord.fd >= 0)
		return 0;
	/* The nodes agree through the node's store, which only root can
	 * write on every node; a user's directory is not that. */
	if (j->spec.v.checkpoint_dir[0])
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: checkpoint refused: a job of %u nodes "
			       "is checkpointed into the nodes' store (%s), "
			       "not into --vm-checkpoint-dir=%s",
			       j->id, j->slurm.nnodes, j->d->cfg.checkpoint_dir,
			       j->spec.v.checkpoint_dir);
	return ckpt_coord_open(ckpt_root(j), j->id, true, &c->coord, err,
			       errlen);
}

/* Abandons the group (unless its outcome is decided already): every
 * node sees it and goes on. */
static void group_abort(struct job *j, const char *why)
{
	struct ckpt_job *c = j->ckpt;
	char text[PROTO_MAX_ERROR + 160];
	int r;

	if (!c->group || c->coord.fd < 0)
		return;
	str_printf(text, sizeof(text), "abort %s %s\n", j->d->cfg.node_name,
		   why);
	r = ckpt_coord_decide(&c->coord, c->group, text);
	if (r < 0)
		log_err("job %u: cannot end checkpoint group %u: %s", j->id,
			c->group, strerror(-r));
	else if (r == 1)
		log_warn("job %u: checkpoint group %u abandoned by node %s",
			 j->id, c->group, j->d->cfg.node_name);
}

static void wait_for(struct job *j, int what)
{
	struct ckpt_job *c = j->ckpt;

	c->wait = what;
	c->wait_t0 = now_ms();
	loop_cancel_timer(c->coord_t);
	c->coord_t = NULL;
	coord_tick(j);
}

static void lead_watch(struct job *j);

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
	if (!follower(j)) {
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
		group_abort(j, err);
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
		group_abort(j, err);
		if (evacuate)
			evacuation_failed(j, err);
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

	if (coord_open(j, err, sizeof(err)) < 0) {
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
	if (!follower(j)) {
		if (undecided) {
			c->group = last;
			group_abort(j, "an earlier run's checkpoint, never "
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

/* The first node: the other nodes' evacuation requests, taken (removed):
 * true if there was one, its reason in why. */
static bool take_evacuations(struct job *j, char *why, size_t len)
{
	struct ckpt_job *c = j->ckpt;
	char text[PROTO_MAX_ERROR], safe[PROTO_MAX_ERROR], *sp;
	bool any = false;

	for (uint32_t i = 1; i < j->slurm.nnodes; i++) {
		if (ckpt_coord_read_mark(&c->coord, 0, "evacuate", i, text,
					 sizeof(text)) < 0)
			continue;
		ckpt_coord_unmark(&c->coord, 0, "evacuate", i);
		if (any)
			continue;
		/* "NODE REASON", as group_evacuate wrote it. */
		text[strcspn(text, "\n")] = '\0';
		printable(text, safe, sizeof(safe));
		if ((sp = strchr(safe, ' ')))
			*sp++ = '\0';
		str_printf(c->evac_node, sizeof(c->evac_node), "%s", safe);
		str_printf(c->evac_reason, sizeof(c->evac_reason), "%s",
			   sp ? sp : "");
		str_printf(why, len, "node %s (node %u of the job, %s)",
			   c->evac_node, i, c->evac_reason);
		any = true;
	}
	return any;
}

static int group_start(struct job *j, bool go_on, bool evacuate, int cfd,
		       char *err, size_t errlen);

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

	if ((r = coord_open(j, err, errlen)) < 0)
		return r;
	if (!follower(j))
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
	struct ckpt_job *c = cj(j);
	char why[PROTO_MAX_ERROR];
	int r;

	if (!c)
		return -ENOMEM;
	if (follower(j))
		return err_set(err, errlen, -EINVAL,
			       "job %u: checkpoint refused: node %s is node "
			       "%u of the job's %u; its first node's vmmd "
			       "checkpoints the job",
			       j->id, j->d->cfg.node_name, j->slurm.node_index,
			       j->slurm.nnodes);
	if ((r = save_possible(j, err, errlen)) < 0)
		return r;
	if ((r = coord_open(j, err, errlen)) < 0)
		return r;
	/* Another node's evacuation makes any save of the job one: it is
	 * requeued, to go on elsewhere. */
	if (take_evacuations(j, why, sizeof(why))) {
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
		group_abort(j, err);
	return r;
}

/* This node's guest holds (flushed): wait for every node's before any
 * is saved. */
static void group_frozen(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char why[PROTO_MAX_ERROR];
	int r;

	if (!multi(j)) {
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
		save_failed(j, why, false);
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
		group_abort(j, why);
	}
	wait_for(j, CW_SAVED);
}

/* The outcome's reason, for messages: "abort NODE WHY\n" -> "NODE: WHY". */
static void abort_reason(const char *out, char *buf, size_t len)
{
	char text[PROTO_MAX_ERROR], safe[PROTO_MAX_ERROR], *sp;
	const char *p = strncmp(out, "abort ", 6) == 0 ? out + 6 : out;

	snprintf(text, sizeof(text), "%s", p);
	text[strcspn(text, "\n")] = '\0';
	printable(text, safe, sizeof(safe));
	if ((sp = strchr(safe, ' ')))
		*sp++ = '\0';
	str_printf(buf, len, "node %s%s%s", safe, sp ? ": " : "", sp ? sp : "");
}

/* Every node's guest reached the barrier this node waited at. */
static void barrier_passed(struct job *j, const char *state, const char *next)
{
	struct ckpt_job *c = j->ckpt;

	c->wait = CW_NONE;
	log_info("job %u: checkpoint group %u: every node's guest %s (%llu ms "
		 "after this node's); %s",
		 j->id, c->group, state,
		 (unsigned long long)(now_ms() - c->wait_t0), next);
}

static bool frozen_tick(struct job *j, const char *out)
{
	struct ckpt_job *c = j->ckpt;
	uint32_t n = j->slurm.nnodes, k;
	char why[PROTO_MAX_ERROR], r[PROTO_MAX_ERROR];

	if (out) {
		abort_reason(out, r, sizeof(r));
		str_printf(why, sizeof(why),
			   "job %u: checkpoint group %u abandoned: %s", j->id,
			   c->group, r);
		save_failed(j, why, false);
		return true;
	}
	k = ckpt_coord_count(&c->coord, c->group, "frozen", n);
	if (k == n) {
		barrier_passed(j, "holds", "saving");
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
		save_failed(j, why, false);
		return true;
	}
	return false;
}

/* Every node's guest is saved: the outcome, with each node's seq. */
static void decide_complete(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char text[CKPT_COORD_MAX_TEXT], seq[32];
	size_t len;
	uint32_t v;

	len = (size_t)snprintf(text, sizeof(text), "complete %u",
			       j->slurm.nnodes);
	for (uint32_t i = 0; i < j->slurm.nnodes; i++) {
		if (ckpt_coord_read_mark(&c->coord, c->group, "saved", i, seq,
					 sizeof(seq)) < 0 ||
		    (seq[strcspn(seq, "\n")] = '\0', parse_u32(seq, &v)) < 0 ||
		    len + 12 >= sizeof(text)) {
			group_abort(j, "a node's saved mark is unreadable");
			return;
		}
		len +=
		    (size_t)snprintf(text + len, sizeof(text) - len, " %u", v);
	}
	if (ckpt_coord_decide(&c->coord, c->group, text) == 1)
		log_notice("job %u: checkpoint group %u complete: %s", j->id,
			   c->group, text);
}

/* Every node's guest is saved: go on (on demand), or end here; the first
 * node requeues the job. */
static void group_complete(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char msg[PROTO_MAX_ERROR];

	/* This group is the newest complete one: what older ones named
	 * goes, as a one-node job's does when its save is complete. */
	if (c->dirfd >= 0)
		ckpt_store_drop_older(c->dirfd, c->seq);
	if (c->go_on) {
		c->back = true;
		go_on_restore(j);
		return;
	}
	if (!follower(j)) {
		if (!saved_requeue(j))
			go_on_restore(j);
		return;
	}
	c->evac_asked = false;
	if (c->evacuate &&
	    j->d->evacuate_nmoved < ARRAY_SIZE(j->d->evacuate_moved))
		j->d->evacuate_moved[j->d->evacuate_nmoved++] = j->id;
	str_printf(msg, sizeof(msg),
		   "job %u: checkpointed on node %s (node %u of %u, "
		   "checkpoint group %u%s); the job's first node requeues it",
		   j->id, j->d->cfg.node_name, j->slurm.node_index,
		   j->slurm.nnodes, c->group,
		   c->evacuate ? ", the node is evacuated" : "");
	log_notice("%s", msg);
	exec_ckpt_end(j, msg, 0);
	set_phase(j, PH_SAVED);
	post(j, CKPT_EV_SAVED, msg);
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
		abort_reason(out, why, sizeof(why));
		str_printf(c->fail, sizeof(c->fail),
			   "job %u: checkpoint group %u abandoned: %s", j->id,
			   c->group, why);
		log_warn("%s", c->fail);
		c->group_failed = true;
		go_on_restore(j);
		return true;
	}
	k = ckpt_coord_count(&c->coord, c->group, "saved", n);
	if (k == n)
		decide_complete(j);
	else if (now_ms() - c->wait_t0 >= COORD_SAVED_MS) {
		str_printf(why, sizeof(why),
			   "the guests of %u of the job's %u nodes were saved "
			   "within %u s",
			   k, n, COORD_SAVED_MS / 1000);
		group_abort(j, why);
	}
	/* No outcome can be read or written (the store is gone): this
	 * node's guest is saved and the others' fate unknown. */
	if (now_ms() - c->wait_t0 >= COORD_SAVED_MS + COORD_GRACE_MS) {
		c->wait = CW_NONE;
		fail(j,
		     "job %u: checkpoint group %u: no outcome in the store %s "
		     "within %u s of this node's save",
		     j->id, c->group, ckpt_root(j),
		     (COORD_SAVED_MS + COORD_GRACE_MS) / 1000);
		return true;
	}
	return false;
}

static void back_name(const struct job *j, char *buf, size_t len)
{
	snprintf(buf, len, "back%u", j->slurm.restart_count);
}

/* The restored guest holds: it goes on once every node's does. */
static void group_back(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char what[24];
	int r;

	back_name(j, what, sizeof(what));
	if (c->coord.fd < 0 ||
	    (r = ckpt_coord_mark(&c->coord, c->group, what, j->slurm.node_index,
				 j->d->cfg.node_name)) < 0) {
		fail(j,
		     "job %u: restored on node %s, but it cannot tell the "
		     "job's other nodes (store %s)",
		     j->id, j->d->cfg.node_name, ckpt_root(j));
		return;
	}
	post(j, CKPT_EV_WAITING, NULL);
	wait_for(j, CW_BACK);
}

static bool back_tick(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	uint32_t n = j->slurm.nnodes, k;
	char what[24];

	back_name(j, what, sizeof(what));
	k = ckpt_coord_count(&c->coord, c->group, what, n);
	if (k == n) {
		barrier_passed(j, "is back", "resuming");
		c->back = false;
		send_resume(j);
		return true;
	}
	if (now_ms() - c->wait_t0 >= COORD_BACK_MS) {
		c->wait = CW_NONE;
		fail(j,
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
	if (c->wait != CW_BACK &&
	    ckpt_coord_outcome(&c->coord, c->group, out, sizeof(out)) == 0)
		o = out;
	if (c->wait == CW_FROZEN)
		done = frozen_tick(j, o);
	else if (c->wait == CW_SAVED)
		done = saved_tick(j, o);
	else if (c->wait == CW_BACK)
		done = back_tick(j);
	if (!done && j->ckpt == c)
		c->coord_t =
		    loop_add_timer(j->d->loop, COORD_TICK_MS, coord_tick, j);
}

/* Group g, complete, was restored from at an earlier restart with every
 * node's guest back (g<G>.back<R>.*), and its checkpoints are not kept:
 * each node removed its own once its guest went on. An on-demand group's
 * first such set is its own going on, which keeps them. */
static bool group_used(const struct job *j, const struct ckpt_coord *co,
		       uint32_t g, uint32_t n)
{
	uint32_t sets = 0, pn;
	bool go_on = false;
	char what[24];

	if (j->spec.v.checkpoint_keep)
		return false;
	if (ckpt_coord_read_plan(co, g, &pn, &go_on) < 0)
		go_on = false;
	for (uint32_t r = 0; r < j->slurm.restart_count; r++) {
		snprintf(what, sizeof(what), "back%u", r);
		if (ckpt_coord_count(co, g, what, n) == n)
			sets++;
	}
	return sets > (go_on ? 1u : 0u);
}

/* A requeued multi-node job: node i's guest of the newest complete group
 * (1), or a boot on every node alike when there is none (0). */
static int group_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			    size_t errlen)
{
	char out[CKPT_COORD_MAX_TEXT];
	uint32_t g = 0, n, seq, i = j->slurm.node_index;
	int r;

	if (j->spec.v.checkpoint_dir[0])
		return 0;
	r = ckpt_coord_open(ckpt_root(j), j->id, false, &c->coord, NULL, 0);
	if (r == 0)
		r = ckpt_coord_latest_complete(&c->coord, &g);
	if (r < 0) {
		log_info("job %u: restart %u without a checkpoint of its %u "
			 "nodes",
			 j->id, j->slurm.restart_count, j->slurm.nnodes);
		return 0;
	}
	if (ckpt_coord_outcome(&c->coord, g, out, sizeof(out)) < 0 ||
	    ckpt_coord_parse_complete(out, i, &n, &seq) < 0)
		return err_set(err, errlen, -EBADMSG,
			       "job %u: checkpoint group %u: its outcome does "
			       "not name node %u's checkpoint",
			       j->id, g, i);
	if (n == j->slurm.nnodes && group_used(j, &c->coord, g, n)) {
		log_info("job %u: restart %u: checkpoint group %u was "
			 "restored from already and is not kept; every node "
			 "boots",
			 j->id, j->slurm.restart_count, g);
		return 0;
	}
	if (n != j->slurm.nnodes)
		return err_set(err, errlen, -EINVAL,
			       "job %u: checkpoint group %u holds the guests "
			       "of %u nodes, this run of the job has %u",
			       j->id, g, n, j->slurm.nnodes);
	r = open_store(j, c, false, err, errlen);
	if (r == 0)
		r = open_checkpoint(c, j->id, seq, err, errlen);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: checkpoint group %u: node %u's "
			       "checkpoint %u on node %s: %s",
			       j->id, g, i, seq, j->d->cfg.node_name,
			       strerror(-r));
	if (c->man.job_id != j->id || c->man.uid != (uint32_t)j->uid)
		return err_set(err, errlen, -EPERM,
			       "job %u: checkpoint %s is not this job's", j->id,
			       c->dir);
	c->job_id = j->id;
	c->restore = true;
	c->keep = c->man.keep;
	c->group = g;
	c->back = true;
	saved_name(j);
	log_info("job %u: restart %u restores node %u's guest of checkpoint "
		 "group %u from %s",
		 j->id, j->slurm.restart_count, i, g, c->dir);
	return 1;
}
