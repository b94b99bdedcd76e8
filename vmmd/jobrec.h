/* SPDX-License-Identifier: MIT */
/*
 * The record of a VM job on this node: what every part of vmmd reads.
 * Only the lifecycle (job.c) changes a job's state; the parts below it
 * keep their own fields (their structs behind the pointers) and report
 * what happened through the handlers job.c gives them. This module is
 * the record and what only reads it (finding a job, its state's name,
 * counting it in the metrics), so that any module can read a job without
 * depending on the modules that run it.
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
 *   q/files.m<i>.*  the same for a served job's mount i (its own server;
 *                   files.m<i>.ctl and .pid beside files.ctl, files.pid)
 * No directory below is writable by the user: docs/security.md.
 */
#ifndef VMMD_JOBREC_H
#define VMMD_JOBREC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "jobfiles_kind.h"
#include "jobnet.h"
#include "metrics.h"
#include "proto.h"
#include "slurmjob.h"
#include "stray.h"
#include "vmspec.h"

struct vmmd;
struct loop_timer;
/* 9p mount tag of the job's working directory. */
#define JOB_SHARE_TAG "vmenv.workdir"

/* PREPARING: the image is being fetched or its overlay made; the guest
 * does not exist yet (tasks wait as they do while it boots). */
/* SAVED: the guest went into the checkpoint store (ckpt.h); the record
 * stays, with the message, until the job's end here. */
/* SAVING: a checkpoint is being taken (the guest freezes, then goes into
 * the store); new tasks wait, the running ones are held. RESTORING: the
 * guest comes back from a checkpoint instead of booting. Both end in
 * READY, or SAVED/FAILED. */
enum job_state {
	JOB_BOOTING,
	JOB_READY,
	JOB_FAILED,
	JOB_PREPARING,
	JOB_SAVED,
	JOB_SAVING,
	JOB_RESTORING,
};

struct agent;
struct agent_handlers;
struct bulk_job;
struct ckpt_job;
struct exec_session;
struct jobfiles_served;
struct jobimg;
struct warm_job;

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
	/* What the agent channel reports to, the owner's (agent.h): set
	 * once, before the first agent_attach. */
	const struct agent_handlers *agent_h;
	bool agent_ckpt; /* the guest's agent knows checkpoints */
	bool agent_bulk; /* ... and bulk ports (bulk.h) */
	/* ... and agentwire v3: its sessions outlive vmmd (exec_reattach.c) */
	bool agent_resume;
	struct bulk_job *bulk;
	char bulk_prefix[VMENV_MAX_PATH]; /* q/bulk. : QEMU binds <i>.sock */
	/* How the working directory reaches the guest (jobfiles.h). */
	enum jobfiles_kind files_kind;
	struct ckpt_job *ckpt; /* ckpt_priv.h; NULL until needed */
	struct exec_session *sessions;
	uint32_t next_session;
	/* exec_hold(): a checkpoint is in progress, the sessions send the
	 * guest neither stdin nor signals. */
	bool exec_held;
	/* What the guest sends that vmmd drops, within a budget (stray.h). */
	struct stray stray;
	struct loop_timer *boot_timer; /* also the image's, while preparing */
	/* Slurm said the job ended while steps still ran in the guest
	 * (job_stop_when_idle): the guest goes when they are done. */
	struct loop_timer *stop_timer;
	uint64_t stop_deadline_ms;
	struct jobimg *img;
	/* Warm start (warm.h): NULL unless the job asked for it. */
	struct warm_job *warm;
	/* A multi-node job's private network (nnodes > 1 only). */
	bool has_net;
	struct jobnet net;
	/* The job's files served by vmenv-9p (vmmd/files/jobfiles_served.h). */
	struct jobfiles_served *served;
	/* Timings, for the benchmark: monotonic ms. */
	uint64_t t_request, t_prepared, t_created, t_ready, t_first_output;
	/* Output that came through bulk ports (tests, the benchmark). */
	uint64_t bulk_bytes;
};

const char *job_state_name(enum job_state s);
struct job *job_find(struct vmmd *d, uint32_t id);
/* The job whose guest is the domain called name (a restored guest keeps
 * the name it was saved with: maybe another job's), or NULL. */
struct job *job_find_domain(struct vmmd *d, const char *name);

/* What a job counts in its daemon's metrics (d->metrics, metrics.h). Its
 * failure, once, under j->fail_reason or, when that is not set, the reason
 * its state implies; its prepare and boot times when its guest is ready
 * (nothing for a guest restored or adopted). */
void metrics_job_failed(const struct job *j);
void metrics_job_ready(const struct job *j);

#endif
