/* SPDX-License-Identifier: MIT */
/*
 * A job's checkpoint state (struct ckpt_job) and the calls between the
 * files of the checkpoint procedure that ckpt.h declares; nothing else
 * includes it (but test_vmmd, which moves a wait's start back). Each
 * file calls only those below it:
 *   ckpt.c         the save and the restore once under way (the guest
 *                  saved, requeued, ended or going on, restored and
 *                  resumed), the agent's answers, and a multi-node job's
 *                  barriers between them, which call them back
 *   ckpt_sched.c   when a save starts (its time, an evacuation, on
 *                  demand, the first node's plan) and what follows when
 *                  it does not happen: the guest goes on, rescheduled
 *   ckpt_node.c    vmmd's start and end for checkpoints, the node's save
 *                  bandwidth
 *   ckpt_lookup.c  which checkpoint a starting job restores, and whether
 *                  it fits this allocation
 *   ckpt_room.c    before a save: the store, its room, the user's kept
 *                  ones
 *   ckpt_group.c   a multi-node job's coordination files as this node
 *                  reads and writes them
 *   ckpt_job.c     a job's checkpoint state: made, its store and
 *                  checkpoint opened, its phase, the client's answer,
 *                  freed
 * (the CI's layers check: a call back up would be a loop).
 */
#ifndef VMMD_CKPT_PRIV_H
#define VMMD_CKPT_PRIV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ckpt.h"
#include "ckpt_coord.h"
#include "ckpt_store.h"
#include "domxml.h"
#include "jobrec.h"
#include "loop.h"
#include "proto.h"
#include "util.h"

struct ckpt_work;

/* The agent's prepare hook may take up to 120 s, freezing up to 10 s. */
#define CKPT_PREPARE_TIMEOUT_MS 150000u
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
/* After a complete group that does not go on, how long a node other than
 * the first waits for the first node's verdict (what Slurm did with its
 * requeue: libslurm's call blocks while slurmctld does not answer, its
 * MessageTimeout is 10 s by default) before its part ends all the same. */
#define COORD_VERDICT_MS 60000u

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
	 * guest until every node's is back. CW_VERDICT: a node other than
	 * the first, its group complete, waits for the first node's word on
	 * the requeue (g<G>.verdict). */
	struct ckpt_coord coord;
	struct loop_timer *watch_t, *coord_t;
	enum { CW_NONE, CW_FROZEN, CW_SAVED, CW_VERDICT, CW_BACK } wait;
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

/* --- ckpt_job.c ------------------------------------------------------------ */

/* The job's checkpoint state, made on first use (NULL: out of memory). */
struct ckpt_job *ckpt_cj(struct job *j);
/* The job runs on more than one node. */
bool ckpt_multi(const struct job *j);
/* A node of a multi-node job other than its first (which decides when). */
bool ckpt_follower(const struct job *j);
/* The job's store (its --vm-checkpoint-dir, or the node's) into
 * c->store. */
int ckpt_open_store(struct job *j, struct ckpt_job *c, bool create, char *err,
		    size_t errlen);
/* Checkpoint seq of job_id in c->store: its directory held open in
 * c->dirfd, its manifest in c->man. */
int ckpt_open_checkpoint(struct ckpt_job *c, uint32_t job_id, uint32_t seq,
			 char *err, size_t errlen);
/* The client of an on-demand checkpoint gets the outcome (error NULL: ok)
 * and is closed. */
void ckpt_answer(struct ckpt_job *c, const char *error);
/* Every phase change (signals and stdin held while not idle). */
void ckpt_set_phase(struct job *j, enum ckpt_phase next);
/* The same, with the phase's timer cancelled. */
void ckpt_phase_done(struct job *j, enum ckpt_phase next);

/* --- ckpt_group.c ---------------------------------------------------------- */

/* The job's coordination files in the node's store, opened once. */
int ckpt_group_open(struct job *j, char *err, size_t errlen);
/* Abandons the group (unless its outcome is decided already). */
void ckpt_group_abort(struct job *j, const char *why);
/* The first node: the other nodes' evacuation requests, taken. */
bool ckpt_take_evacuations(struct job *j, char *why, size_t len);
/* An outcome's reason, for messages: "abort NODE WHY" -> "node NODE: WHY". */
void ckpt_abort_reason(const char *out, char *buf, size_t len);
/* Every node's guest reached the barrier this node waited at (logged). */
void ckpt_barrier_passed(struct job *j, const char *state, const char *next);
/* Every node's guest is saved: writes the outcome, with each node's seq. */
bool ckpt_decide_complete(struct job *j);
/* The first node: the group's verdict after its requeue (logged if it
 * cannot be written). */
void ckpt_group_verdict(struct job *j, enum ckpt_verdict v, const char *why);
/* The name of this run's "back" marks (the restored guests hold). */
void ckpt_back_name(const struct job *j, char *buf, size_t len);
/* Group g was restored from already and is not kept. */
bool ckpt_group_used(const struct job *j, const struct ckpt_coord *co,
		     uint32_t g, uint32_t n);

/* --- ckpt_room.c ----------------------------------------------------------- */

/* The bytes of the job's overlay (0 when it is not a plain file). */
uint64_t ckpt_overlay_bytes(const struct job *j);
/* The user's kept checkpoints in the store leave room for est bytes more. */
int ckpt_kept_within(const struct job *j, const struct ckpt_store *s,
		     uint64_t est, char *err, size_t errlen);
/* Opens the job's store and starts the next checkpoint in it; *refused:
 * no room, or over the user's limit. */
int ckpt_begin_save(struct job *j, bool *refused, char *err, size_t errlen);

/* --- ckpt_lookup.c --------------------------------------------------------- */

/* "checkpoint DIR", or "job 42's checkpoint DIR" (--vm-restore). */
const char *ckpt_label(const struct job *j, char *buf, size_t len);

/* --- ckpt_node.c ----------------------------------------------------------- */

/* The job's owner (job.c), given to ckpt_init: where ckpt_post goes. */
extern const struct ckpt_sink *ckpt_owner;
/* A save's bytes and time refine the node's save bandwidth (kept). */
void ckpt_node_bw_refine(struct vmmd *d, uint64_t bytes, uint64_t ms);

/* --- ckpt_sched.c ---------------------------------------------------------- */

/* Posts the event to the job's owner (a guest that goes on during the
 * node's evacuation is asked again). */
void ckpt_post(struct job *j, enum ckpt_event ev, const char *msg);
/* The checkpoint failed in a way that ends the job: msg says why. */
void ckpt_fail(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Schedules the job's next checkpoint (the first node's only). */
void ckpt_schedule(struct job *j);
/* A refused scheduled checkpoint: again in a minute. */
void ckpt_retry_later(struct job *j);
/* Thaws a held guest (the agent ignores it when nothing is held). */
void ckpt_resume_guest(struct job *j);
/* An evacuation's save did not happen: the job goes on here. */
void ckpt_evacuation_failed(struct job *j, const char *why);
/* The checkpoint did not happen: the guest goes on, or the job ends. */
void ckpt_save_failed(struct job *j, const char *why, bool guest_gone);

#endif
