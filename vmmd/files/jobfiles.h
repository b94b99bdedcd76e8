/* SPDX-License-Identifier: MIT */
/*
 * jobfiles: how the job's files (its working directory, shared with the
 * host) reach the guest, and how they cross a checkpoint.
 *
 * QEMU's own 9p server (virtio-9p) keeps its open files inside QEMU and
 * blocks a save while the share is mounted, so a job that holds a file
 * open in its working directory could never be checkpointed with it.
 * Two kinds, chosen per job:
 *
 *   JOBFILES_VIRTIO_9P  QEMU's virtio-9p device (the default for jobs
 *                       that do not checkpoint). Across a checkpoint the
 *                       agent must unmount the share first; a busy share
 *                       refuses the checkpoint with the reason.
 *   JOBFILES_SERVED     a 9P2000.L server outside QEMU (vmenv-9p, run as
 *                       the job's user), reached through a virtio-serial
 *                       port; the guest kernel's 9p client keeps its state
 *                       in guest memory and the server's state (its fids)
 *                       is written into the checkpoint, so open files and
 *                       the cwd survive save and restore.
 *
 * The job's --vm-mount directories go the same way (jobmounts.h): shares
 * of QEMU's virtio-9p, or a vmenv-9p each (jobfiles_served.h).
 *
 * Calls, in the order job.c and the checkpoint code make them. Each
 * returns 0 or a negative errno with the reason in err (naming the job).
 */
#ifndef VMMD_JOBFILES_H
#define VMMD_JOBFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jobfiles_kind.h"
#include "jobfiles_ops.h"
#include "util.h"

struct job;
struct dom_spec;

/* The kind for a job whose spec is resolved: for a job that checkpoints,
 * its spec's checkpoint_files, or the node's when the spec says "node"
 * (served unless the node's config says 9p); virtio-9p otherwise. */
enum jobfiles_kind jobfiles_kind_for(const struct job *j);
/* The same from its parts (a template's shape, warmshape.c): whether the
 * job checkpoints, and its spec's checkpoint_files (enum
 * vmspec_ckpt_files). */
struct vmmd_config;
enum jobfiles_kind jobfiles_kind_pick(const struct vmmd_config *c,
				      bool checkpoint, uint32_t files);
/* "9p" or "served"; and back (-EINVAL for anything else). */
const char *jobfiles_kind_name(enum jobfiles_kind k);
int jobfiles_kind_parse(const char *s, enum jobfiles_kind *k);

/* Before the domain is created: start what serves the files (if any). */
int jobfiles_prepare(struct job *j, char *err, size_t errlen);

/* What the domain needs for the job's files: fills the share fields of
 * the domain spec (vmmd/domxml.h: a <filesystem>, or a virtio-serial port
 * for the served kind; add fields there as the kind needs). */
int jobfiles_domspec(const struct job *j, struct dom_spec *s);

/* After the domain started: connect the server to QEMU's end. */
int jobfiles_attach(struct job *j, char *err, size_t errlen);

/* The job's processes in the guest are frozen (no request in flight):
 * make the files' state saveable and write it under ckpt_dir. */
int jobfiles_freeze(struct job *j, const char *ckpt_dir, char *err,
		    size_t errlen);

/* After the save ended QEMU and before the checkpoint's manifest, the
 * files' last state (what the guest sent after the freeze) goes into the
 * checkpoint. The worker thread does it from values taken on the loop
 * (it never touches the job): _plan on the loop before the save, _run in
 * the worker after it, jobfiles_saved on the loop once the worker ended
 * (the server it waited for is gone). struct jobfiles_after_save is in
 * jobfiles_ops.h. */
void jobfiles_after_save_plan(const struct job *j,
			      struct jobfiles_after_save *p);
int jobfiles_after_save_run(const struct jobfiles_after_save *p,
			    const char *ckpt_dir, char *err, size_t errlen);
void jobfiles_saved(struct job *j);

/* After a restore from ckpt_dir, whose files restored gives (or after a
 * save that failed: ckpt_dir and restored NULL): serve the files again
 * with the state that was frozen. */
int jobfiles_thaw(struct job *j, const char *ckpt_dir,
		  jobfiles_restored_f restored, char *err, size_t errlen);

/* A restarted vmmd adopting j's running guest: takes over what serves
 * its files (the served kind's vmenv-9p); when it cannot, says why in the
 * log and the job runs on without checkpoints. */
void jobfiles_adopt(struct job *j);

/* Job end: stop serving, nothing left behind. */
void jobfiles_stop(struct job *j);
/* Before reconcile removes the directory of a job that is gone (a vmmd
 * killed while it restored it): its file servers, if they still run. */
void jobfiles_reap_dir(const char *dir);

#endif
