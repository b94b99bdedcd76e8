/* SPDX-License-Identifier: MIT */
/*
 * Evacuating a node (docs/checkpoint.md "Evacuating a node"): before a
 * node fails (a disk, fans, an ECC count) its VM jobs are saved and
 * requeued so that they go on elsewhere from their checkpoints. Asked by
 * root with vmenvctl evacuate, or by Slurm: a node an admin drains with
 * a reason that begins with vmmd.conf's evacuate_drain_reason. The node
 * is drained in Slurm first, so that no job (nor a requeued one) comes
 * back to it, with the reason as "vmenv evacuate: REASON"; a job whose
 * guest comes up later is saved then (ckpt_sched.c). The evacuation lasts until
 * Slurm no longer drains the node, across a vmmd restart.
 */
#ifndef VMMD_EVACUATE_H
#define VMMD_EVACUATE_H

#include <stdbool.h>
#include <stddef.h>

struct vmmd;

/* Evacuates the node for reason (proto_reason_check's form). by_drain:
 * Slurm already drains it. *report (malloc'ed, may be NULL): a line for
 * the node and one per job, saving or why it cannot be. 0, or -errno
 * with why in err (nothing was done). */
int evacuate_node(struct vmmd *d, const char *reason, bool by_drain,
		  char **report, char *err, size_t errlen);

/* From the reconcile tick (and vmmd's start, at_start): evacuates a node
 * Slurm drains with the site's reason (or, at start, with vmenvctl
 * evacuate's), and ends the evacuation once Slurm resumed the node. */
void evacuate_watch_drain(struct vmmd *d, bool at_start);

#endif
