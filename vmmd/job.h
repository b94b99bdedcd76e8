/* SPDX-License-Identifier: MIT */
/*
 * A VM job on this node: one guest per job, shared by all its steps.
 *
 * Life: job_start() (from each step's start; idempotent) prepares the job
 * directory and the image (jobimage.h; a fetch runs in the background, state
 * preparing, then job_image_ready), places the guest (jobplace.h: CPUs,
 * NUMA, devices), builds the domain and starts it without waiting for the
 * boot; the agent channel
 * then reports the guest ready (job_set_ready) or the boot timer fails the
 * job. job_stop() (at the batch or extern step's end, job_watch_end, or
 * reconcile) tears everything down.
 * A job that failed keeps its record, with the reason, until it is stopped,
 * so every task that asks learns why.
 *
 * On disk, under run_dir/jobs/<id>/ (root, 0755):
 *   state           key=value lines reconcile needs after a vmmd restart
 *                   (written atomically)
 *   spec            the merged spec with its origins (vmmd/spec.h)
 *   boot/           the job's copies of kernel and initrd (libvirt chowns
 *                   them to the user while the guest runs)
 *   disk/           the job's qcow2 overlay on the cached disk image
 *                   (jobimage.h)
 *   q/              root's, 0700: libvirtd binds QEMU's sockets here and
 *                   passes QEMU their fds; only root resolves these paths
 *   q/agent.sock    QEMU's end of the agent channel
 *   q/bulk.<i>.sock QEMU's ends of the bulk ports (bulk.h)
 *   q/files.sock    QEMU's end of the served files' port; q/files.in the
 *                   state a restored vmenv-9p starts from (written by vmmd)
 *   q/files.state   vmenv-9p's state and q/files.state.pending: created
 *                   by vmenv-9p as root before it becomes the user, then
 *                   written through those fds; vmmd reads them only with
 *                   O_NOFOLLOW|O_NONBLOCK as root's plain files
 * No directory below is writable by the user: docs/security.md.
 */
#ifndef VMMD_JOB_H
#define VMMD_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "jobfiles.h"
#include "jobnet.h"
#include "metrics.h"
#include "proto.h"
#include "slurmjob.h"
#include "stray.h"
#include "vmmd.h"
#include "vmspec.h"

/* 9p mount tag of the job's working directory. */
#define JOB_SHARE_TAG "vmenv.workdir"

/* PREPARING: the image is being fetched or its overlay made; the guest
 * does not exist yet (tasks wait as they do while it boots). */
/* SAVED: the guest went into the checkpoint store (ckpt.h); the record
 * stays, with the message, until the job's end here. */
enum job_state { JOB_BOOTING, JOB_READY, JOB_FAILED, JOB_PREPARING, JOB_SAVED };

struct agent;
struct bulk_job;
struct ckpt_job;
struct exec_session;
struct jobfiles_served;
struct jobimg;

struct job {
	struct job *next;
	struct vmmd *d;
	uint32_t id;
	uid_t uid;
	gid_t gid;
	char user[64];
	char group[64];
	char home[VMENV_MAX_PATH];
	uint32_t ngroups;
	gid_t groups[64];
	char image[VMENV_MAX_IMAGE_NAME];
	char work_dir[VMENV_MAX_PATH];
	char dir[VMENV_MAX_PATH];
	char domain[160];
	char console[VMENV_MAX_PATH];
	char agent_sock[VMENV_MAX_PATH];
	uint32_t vcpus;
	uint32_t mem_mib;
	/* Slurm's view of the job and its memory on the node (the hard
	 * limit): placement needs them once the image is ready. */
	struct slurmjob_info slurm;
	uint32_t alloc_mib;
	/* The user's request merged with the site's policies (vmmd/spec.c):
	 * what every part of vmmd builds the guest from. */
	struct vmspec spec;
	bool domain_running;
	enum job_state state;
	/* What a failure now counts as (metrics.h); NONE: by the state. */
	enum metrics_fail fail_reason;
	char error[PROTO_MAX_ERROR];
	struct agent *agent;
	bool agent_ckpt; /* the guest's agent knows checkpoints */
	bool agent_bulk; /* ... and bulk ports (bulk.h) */
	struct bulk_job *bulk;
	char bulk_prefix[VMENV_MAX_PATH]; /* q/bulk. : QEMU binds <i>.sock */
	/* How the working directory reaches the guest (jobfiles.h). */
	enum jobfiles_kind files_kind;
	struct ckpt_job *ckpt; /* ckpt.c's state; NULL until needed */
	struct exec_session *sessions;
	uint32_t next_session;
	/* What the guest sends that vmmd drops, within a budget (stray.h). */
	struct stray stray;
	struct loop_timer *boot_timer; /* also the image's, while preparing */
	/* Slurm said the job ended while steps still ran in the guest
	 * (job_stop_when_idle): the guest goes when they are done. */
	struct loop_timer *stop_timer;
	uint64_t stop_deadline_ms;
	struct jobimg *img;
	/* A multi-node job's private network (nnodes > 1 only). */
	bool has_net;
	struct jobnet net;
	/* The job's files served by vmenv-9p (vmmd/jobfiles_served.h). */
	struct jobfiles_served *served;
	/* Timings, for the benchmark: monotonic ms. */
	uint64_t t_request, t_prepared, t_created, t_ready, t_first_output;
	/* Output that came through bulk ports (tests, the benchmark). */
	uint64_t bulk_bytes;
};

struct job *job_find(struct vmmd *d, uint32_t id);
/* The job whose guest is the domain called name (a restored guest keeps
 * the name it was saved with: maybe another job's), or NULL. */
struct job *job_find_domain(struct vmmd *d, const char *name);
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

/* Called by jobimage.c when the image is in place: boots the guest. */
void job_image_ready(struct job *j);
/* Called by jobimage.c while the image downloads (and once when it is in,
 * p->ready): the job's waiting tasks show it. */
void job_image_progress(struct job *j, const struct proto_progress *p);
/* Called by the agent channel. */
void job_set_ready(struct job *j);
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

const char *job_state_name(enum job_state s);

#endif
