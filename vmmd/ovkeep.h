/* SPDX-License-Identifier: MIT */
/*
 * Kept overlays in the daemon (docs/operations.md "Kept overlays"): a job
 * whose spec says keep_overlay leaves its qcow2 overlay in the node's
 * store (ovkeep_store.h) at its end, failed or not, with a lease on the
 * cached base it is backed by; limits per user and for the node; swept
 * after overlay_retention_s by reconcile; handed to its owner (or root) as
 * an fd by vmenvctl overlay get. Calls go down to ovkeep_store.c and the
 * image cache; this file logs.
 */
#ifndef VMMD_OVKEEP_H
#define VMMD_OVKEEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ovkeep_store.h"

struct job;
struct vmmd;

/* At the job's end on this node, after its guest is gone: keeps the
 * overlay when the spec says so (or says why not, in the log). */
void ovkeep_job_ended(struct job *j);

/* Removes kept overlays past overlay_retention_s and what no record
 * accounts for, with their leases (vmmd's start and every reconcile). */
void ovkeep_sweep(struct vmmd *d);

/* For a client of uid asker (SO_PEERCRED): its kept overlays (root: all),
 * oldest first, *ret malloc'ed. 0 or -errno. */
int ovkeep_list_for(struct vmmd *d, uid_t asker, struct ovkeep_rec **ret,
		    size_t *ret_n);
/* The kept overlay of job opened for reading by vmmd itself, when asker
 * is its owner or root: the fd, or -errno with the message for the
 * asker in err (the same for "none" and "not yours"). */
int ovkeep_open_for(struct vmmd *d, uid_t asker, uint32_t job,
		    struct ovkeep_rec *ret, char *err, size_t errlen);
/* Removes it (owner or root), with its lease. */
int ovkeep_remove_for(struct vmmd *d, uid_t asker, uint32_t job, char *err,
		      size_t errlen);

#endif
