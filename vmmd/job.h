/* SPDX-License-Identifier: MIT */
/*
 * A VM job on this node: one guest per job, shared by all its steps.
 *
 * Life: job_start() (from each step's start; idempotent) prepares the job
 * directory and the image (jobimage.h; a fetch runs in the background, state
 * preparing, then its sink reports ready), places the guest (jobplace.h: CPUs,
 * NUMA, devices), builds the domain and starts it without waiting for the
 * boot; the agent channel
 * then reports the guest ready (job_set_ready) or the boot timer fails the
 * job. job_stop() (at the batch or extern step's end, job_watch_end, or
 * reconcile) tears everything down.
 * A job that failed keeps its record, with the reason, until it is stopped,
 * so every task that asks learns why.
 */
#ifndef VMMD_JOB_H
#define VMMD_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "jobrec.h"
#include "proto.h"
#include "vmmd.h"
#include "warm.h"

/* 0, or -errno with a message for the requester in err ("job 42: ..."). */
int job_start(struct vmmd *d, const struct proto_start *req, char *err,
	      size_t errlen);
/* Destroys the guest and every trace of the job. Idempotent. */
int job_stop(struct vmmd *d, uint32_t id);
/* The job ended in Slurm (its extern or batch step is over): job_stop
 * once no step of it runs in the guest any more, or after
 * JOB_STOP_GRACE_S. Slurm signals every step at the job's end and gives
 * them KillWait to finish: their last output (a trap that saves state
 * and says so) must reach the job's files, not die with the guest.
 * -ENOENT when vmmd has no such job. */
int job_stop_when_idle(struct vmmd *d, uint32_t id);
/* Longer than Slurm's default KillWait (30 s), after which slurmstepd
 * kills the steps' shims and their sessions end. */
#define JOB_STOP_GRACE_S 60
/* JOB_STOP_GRACE_S in ms; unit tests shorten it. */
extern uint64_t job_stop_grace_ms;
void job_stop_all_records(struct vmmd *d);

/* The guest is ready: job.c's agent handlers (SETUP_OK, or a HELLO of a
 * guest already set up), or the checkpoint's READY event. */
void job_set_ready(struct job *j);
/* Where the checkpoint procedure's events go (ckpt_init). */
extern const struct ckpt_sink job_ckpt_events;
extern const struct warm_sink job_warm_events;
/* Marks the job failed (once), destroys its guest, tells its sessions. */
void job_fail(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* job_fail, counted under reason (enum metrics_fail) in the metrics. */
#define job_fail_for(j, reason, ...)         \
	do {                                 \
		(j)->fail_reason = (reason); \
		job_fail((j), __VA_ARGS__);  \
	} while (0)
void job_on_domain_event(struct vmmd *d, const char *name, int ev);

/* Re-creates the record of a running guest from its state file (after a
 * vmmd restart) and reattaches the agent channel. */
int job_restore(struct vmmd *d, uint32_t id);

/* reconcile.c: at start, adopt guests whose state survived and remove
 * the rest; periodically, remove guests of jobs Slurm no longer runs
 * here and domains nobody owns. */
void job_reconcile(struct vmmd *d, bool at_start);
/* A step of the job ended on this node: the job may be over (an srun that
 * made its own allocation) or not (salloc, more steps to come). Asks Slurm
 * a few times over the next seconds and stops the guest once the job is
 * no longer running here. */
void job_watch_end(struct vmmd *d, uint32_t id);

#endif
