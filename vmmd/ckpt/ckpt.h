/* SPDX-License-Identifier: MIT */
/*
 * A job's checkpoint: when (the schedule: end time - lead, re-read from
 * Slurm), the save (agent prepare, files, libvirt save, overlay, manifest),
 * what follows (requeue, end, or go on at once), and the restore of a
 * restarted job (instead of a boot) with its batch session re-attached.
 * docs/checkpoint.md has the whole story.
 *
 * The slow parts (libvirt's save and restore, copying the overlay, hashing)
 * run in a worker thread that touches only its own copy of what it needs;
 * its result comes back to the loop through a pipe. Everything else runs
 * on vmmd's loop.
 */
#ifndef VMMD_CKPT_H
#define VMMD_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dom_placement;
struct dom_spec;
struct job;
struct vmmd;

/* What the checkpoint procedure tells the job's owner (job.c), which
 * alone changes the job's state: the procedure's own sub-steps (prepare,
 * flush, save, restore, resume) stay inside ckpt.c and its files
 * (ckpt_priv.h). */
enum ckpt_event {
	CKPT_EV_SAVING,	   /* a save began: the guest is being frozen */
	CKPT_EV_GOES_ON,   /* the save did not happen; the guest runs on */
	CKPT_EV_SAVED,	   /* the guest is in the store; msg for the tasks */
	CKPT_EV_RESTORING, /* the saved guest comes back (vmenvctl checkpoint) */
	CKPT_EV_READY,	   /* the restored (or released) guest runs */
	CKPT_EV_FAILED,	   /* the job cannot go on: msg says why */
	/* The restored guest of a multi-node job waits for the other
	 * nodes' (bounded by the checkpoint, not by the boot timeout). */
	CKPT_EV_WAITING,
};
struct ckpt_sink {
	void (*event)(struct job *j, enum ckpt_event ev, const char *msg);
};

/* vmmd start: incomplete checkpoints go, the save bandwidth is loaded or
 * measured. sink: where every job's checkpoint events go. */
void ckpt_init(struct vmmd *d, const struct ckpt_sink *sink);
/* vmmd's end, after the jobs' records: timers of ended jobs' checkpoints. */
void ckpt_fini(struct vmmd *d);

/* The store a job's checkpoints go to (its spec's, else the node's). */
const char *ckpt_root(const struct job *j);
/* Where this node's checkpoints of the job are: ckpt_root, or its node's
 * part of it for node i > 0 of a multi-node job. 0 or -ENAMETOOLONG. */
int ckpt_job_store_root(const struct job *j, char *buf, size_t len);

/* Job start, after Slurm and the spec are known: a requeued job with a
 * checkpoint in the store (or --vm-restore) restores instead of booting.
 * 0: boot, 1: restore (the guest's size is then checked against the
 * checkpoint by ckpt_job_check), -errno with the reason. */
int ckpt_job_lookup(struct job *j, char *err, size_t errlen);
/* After the guest was sized: vCPUs, memory, CPU model and image must
 * match the checkpoint. */
int ckpt_job_check(struct job *j, char *err, size_t errlen);
/* The job restores (rather than boots) its guest. */
bool ckpt_job_restoring(const struct job *j);
/* Starts the restore with this allocation's domain XML (instead of
 * creating the domain). 0: under way. */
int ckpt_job_restore(struct job *j, const char *xml, uint64_t hard_limit_kib,
		     char *err, size_t errlen);

/* The guest is ready (booted, or resumed after a restore): schedule the
 * next checkpoint when the spec asks for them. */
void ckpt_job_ready(struct job *j);
/* The job is over on this node (job_stop): its checkpoints stay while
 * Slurm may run it again, else they go unless kept (ckpt_keep.h). */
void ckpt_job_ended(struct job *j);
/* Job teardown: timers, worker (waited for), restore state. */
void ckpt_job_free(struct job *j);

/* Saves the guest now. go_on: restore it at once and keep the
 * checkpoint (vmenvctl checkpoint). cfd >= 0: a client that gets the
 * outcome (ok or the reason) and is then closed. */
int ckpt_job_save(struct job *j, bool go_on, int cfd, char *err, size_t errlen);
/* The node is evacuated (evacuate.h): saves the guest now and requeues
 * the job (whatever --vm-requeue says) so that it goes on elsewhere. 0:
 * the save is under way (or one already was); -EAGAIN: the guest is not
 * up yet (ckpt_job_ready saves it once it is); other -errno: it cannot
 * be saved, err says why. A save that fails later lets the job go on
 * here, and ckpt_job_evacuate_failure says why ("" when none did). */
int ckpt_job_evacuate(struct job *j, char *err, size_t errlen);
const char *ckpt_job_evacuate_failure(const struct job *j);

/* During a restore's jobfiles_thaw (the file server's state): the fd of
 * the checkpoint's file name as the worker opened and verified it
 * (still the checkpoint code's: do not close it) and its size; -ENOENT
 * when the manifest does not list it. What is restored is read from the
 * fd that was hashed, never opened again by name. */
int ckpt_job_restored_file(const struct job *j, const char *name,
			   uint64_t *ret_size);

/* A checkpoint is in progress: signals to the guest are held back. */
bool ckpt_busy(const struct job *j);

/* From agent.c: the agent answered CKPT_OK / CKPT_REFUSED; a restored
 * guest's agent said it holds a prepared checkpoint (HELLO). */
int ckpt_on_agent_frame(struct job *j, uint8_t type, const uint8_t *p,
			size_t n);
void ckpt_on_agent_held(struct job *j);

/* job.c, before the domain XML is built from the placement: a job that
 * checkpoints gets its passed-through devices on the root PCI bus (no
 * expander: what is unplugged before a save must leave the saved
 * guest's buses as a restore rebuilds them), and its devices are noted
 * for the unplug and the replug. */
void ckpt_job_placed(struct job *j, struct dom_placement *place);
/* The guest gets the emulated stand-in device (vmmd.conf
 * checkpoint_standin_device, for tests): a checkpointing job only. */
bool ckpt_job_standin(const struct job *j);
/* After: notes the domain XML without those devices (the manifest records
 * it; a restore uses it, then plugs the devices). Returns 1 when the job
 * restores (the restore is under way: no create), 0 to create, -errno
 * (why says it). */
int ckpt_job_built(struct job *j, struct dom_spec *s,
		   struct dom_placement *place, uint64_t hard_limit_kib,
		   char *why, size_t whylen);

/* For vmenvctl status/list: the next checkpoint (0: none) and its lead. */
void ckpt_job_due(const struct job *j, int64_t *due, uint32_t *lead_s);

#endif
