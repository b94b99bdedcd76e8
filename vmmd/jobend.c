/* SPDX-License-Identifier: MIT */
#include "jobend.h"

#include "agent.h"
#include "bulk.h"
#include "ckpt.h"
#include "cleanup.h"
#include "console_keep.h"
#include "exec.h"
#include "jobfiles.h"
#include "jobimage.h"
#include "jobnet_host.h"
#include "jobplace.h"
#include "jobrec.h"
#include "log.h"
#include "ovkeep.h"
#include "rmtree.h"
#include "vmmd.h"
#include "warm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* What the parts before tell the parts after. */
struct end {
	enum job_end how;
	bool failed;	 /* the job had failed (console log kept longer) */
	bool guest_gone; /* false: libvirt could not destroy the guest */
};

/* Whether the domain of the job's name is still this job's guest: a guest
 * restored from the job's kept checkpoint by another job (--vm-restore)
 * carries the same name, but that job in its metadata. */
static bool guest_is_ours(struct job *j)
{
	char node[sizeof(j->d->cfg.node_name)];
	uint32_t id;

	if (!j->d->hv->owner || j->d->hv->owner(j->d->hv_ctx, j->domain, &id,
						node, sizeof(node)) < 0)
		return true; /* gone, or no metadata: the name decides */
	return id == j->id && strcmp(node, j->d->cfg.node_name) == 0;
}

/* Returns whether the guest is gone (false: libvirt could not destroy it
 * and its files must stay for the next attempt). */
static bool destroy_guest(struct job *j)
{
	char why[512] = "";
	bool ours;
	int r;

	agent_detach(j);
	bulk_detach(j);
	loop_cancel_timer(j->boot_timer);
	j->boot_timer = NULL;
	ours = guest_is_ours(j);
	if (!ours)
		log_notice("job %u: guest %s now belongs to another job; left "
			   "alone",
			   j->id, j->domain);
	r = ours ? j->d->hv->destroy(j->d->hv_ctx, j->domain, why, sizeof(why))
		 : 0;
	if (r < 0 && r != -ENOENT) {
		log_err("job %u: %s", j->id, why);
		return false;
	}
	j->domain_running = false;
	/* libvirt has given the passed-through devices back to their host
	 * drivers by now; QEMU's end of the files port is closed. */
	job_release_devices(j);
	jobfiles_stop(j);
	/* libvirt removed the guest's tap: the job's bridge may go. */
	jobnet_host_release(j->d, j->id);
	return true;
}

/* The console log stays readable by the job's owner for a while
 * (console_keep.h); one keep_console_logs does not keep goes after that. */
static void remove_traces(struct job *j, bool failed)
{
	const char *keep = j->d->cfg.keep_console_logs;
	int r = rm_rf(j->dir);

	if (r < 0)
		log_err("job %u: cannot remove %s: %s", j->id, j->dir,
			strerror(-r));
	console_keep_ended(j->d, j->id, j->uid,
			   strcmp(keep, "all") != 0 &&
			       !(strcmp(keep, "failed") == 0 && failed));
}

/* --- the parts -------------------------------------------------------- */

static void sessions_end(struct job *j, struct end *e)
{
	static const char *const why[] = {
	    [JOB_END_STOP] = "job ended",
	    [JOB_END_FORGET] = "vmmd is shutting down",
	};

	/* The guest keeps running for the next vmmd, and so do the steps:
	 * their tasks come back to it (docs/restart.md). */
	if (e->how == JOB_END_FORGET) {
		exec_job_forget(j);
		return;
	}
	exec_job_gone(j, e->how == JOB_END_FAIL ? j->error : why[e->how]);
}

static void image_abort(struct job *j, struct end *e)
{
	(void)e;
	jobimg_abort(j);
}

static void image_forget(struct job *j, struct end *e)
{
	(void)e;
	jobimg_forget(j);
}

static void image_release(struct job *j, struct end *e)
{
	(void)e;
	jobimg_release(j);
}

/* Its checkpoints stay while Slurm may run the job again (ckpt_keep.h). */
static void ckpt_ended(struct job *j, struct end *e)
{
	(void)e;
	ckpt_job_ended(j);
	ckpt_job_free(j);
}

static void ckpt_free(struct job *j, struct end *e)
{
	(void)e;
	ckpt_job_free(j);
}

/* Before the guest: a restore in flight ends first, so the guest it may
 * start is there for the guest's step to destroy. */
static void warm_free(struct job *j, struct end *e)
{
	(void)e;
	warm_job_free(j);
}

static void guest_destroy(struct job *j, struct end *e)
{
	e->guest_gone = destroy_guest(j);
}

/* The guest runs on: only vmmd's ends of it close. */
static void guest_leave(struct job *j, struct end *e)
{
	(void)e;
	agent_detach(j);
	bulk_detach(j);
	loop_cancel_timer(j->boot_timer);
	j->boot_timer = NULL;
}

/* A failed job's files go with its guest, unless libvirt still holds
 * the guest: then they stay for the next attempt (job_stop). */
static void dir_remove(struct job *j, struct end *e)
{
	if (e->guest_gone && rm_rf(j->dir) < 0)
		log_err("job %u: cannot remove %s", j->id, j->dir);
}

/* --vm-keep-overlay: the overlay leaves the job's directory for the
 * node's store before that goes, failed job or not (ovkeep.h); never
 * while libvirt may still hold the guest. */
static void overlay_keep(struct job *j, struct end *e)
{
	if (e->guest_gone)
		ovkeep_job_ended(j);
}

static void traces_remove(struct job *j, struct end *e)
{
	remove_traces(j, e->failed);
}

typedef void (*end_step)(struct job *j, struct end *e);

/* One row per part of a job, in the order they go; NULL: that part is
 * left as it is. */
static const struct {
	const char *part;
	end_step step[3]; /* by enum job_end */
} parts[] = {
    {"image download",
     {[JOB_END_FAIL] = image_abort, [JOB_END_FORGET] = image_forget}},
    {"exec sessions", {sessions_end, sessions_end, sessions_end}},
    {"checkpoint", {ckpt_free, ckpt_ended, ckpt_free}},
    {"warm start", {warm_free, warm_free, warm_free}},
    {"guest", {guest_destroy, guest_destroy, guest_leave}},
    {"kept overlay",
     {[JOB_END_FAIL] = overlay_keep, [JOB_END_STOP] = overlay_keep}},
    {"image lease", {[JOB_END_STOP] = image_release}},
    {"job directory",
     {[JOB_END_FAIL] = dir_remove, [JOB_END_STOP] = traces_remove}},
};

void job_end(struct job *j, enum job_end how)
{
	struct end e = {.how = how, .failed = j->state == JOB_FAILED};

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		if (parts[i].step[how])
			parts[i].step[how](j, &e);
}
