/* SPDX-License-Identifier: MIT */
/*
 * How long checkpoints live (docs/checkpoint.md, "Retention").
 *
 * While Slurm may still run the job (pending, running, requeued) its
 * checkpoints stay: its own restart restores them. Once it has ended (or
 * Slurm no longer knows it), a checkpoint goes unless the job asked to
 * keep it (checkpoint_keep, recorded in the manifest); a kept one goes
 * checkpoint_retention_s after it was written. Decided at the job's end
 * (vmmd's job_stop; Slurm asked again 5 s to 5 min after while it still
 * says the job runs, as it does until the epilog) and by a sweep of the node's store at vmmd start and
 * every hour after; slurmctld unreachable decides nothing.
 */
#ifndef VMMD_CKPT_KEEP_H
#define VMMD_CKPT_KEEP_H

#include <stdbool.h>
#include <stdint.h>

struct vmmd;

/* The sweep's period. */
#define CKPT_SWEEP_S 3600u

enum ckpt_fate {
	CKPT_STAYS,
	CKPT_GOES_ENDED,   /* the job ended and did not keep it */
	CKPT_GOES_EXPIRED, /* kept, and older than the retention time */
};

struct ckpt_fate_in {
	int lookup;	 /* Slurm's answer: 0, -ENOENT (unknown), -errno */
	bool finished;	 /* with lookup 0: the job will not run again */
	bool complete;	 /* the store holds a complete checkpoint of it */
	bool keep;	 /* that checkpoint's manifest says keep */
	int64_t created; /* and when it was written */
};

/* Pure. */
enum ckpt_fate ckpt_fate(const struct ckpt_fate_in *in, int64_t now,
			 uint32_t retention_s);

/* Every job's checkpoints in the node's store that no job of this vmmd
 * holds: those whose fate is to go are removed (logged). */
void ckpt_sweep(struct vmmd *d);

/* At the job's end on this node: its checkpoints in root (the node's
 * store: node_store) follow their fate now. requeued: vmmd requeued the
 * job itself after a checkpoint (Slurm need not be asked). */
void ckpt_keep_job_ended(struct vmmd *d, const char *root, bool node_store,
			 uint32_t job_id, bool requeued);
/* At a multi-node job's end on its first node: its coordination files in
 * the store at root go once Slurm no longer has the job (asked now and
 * again shortly after, as above); a requeued job keeps them for its
 * restore. */
void ckpt_keep_coord_ended(struct vmmd *d, const char *root, uint32_t job_id);
/* vmmd's end: the questions still to ask go unasked (the next vmmd's
 * sweep at its start decides). */
void ckpt_keep_fini(struct vmmd *d);

#endif
