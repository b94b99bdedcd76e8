/* SPDX-License-Identifier: MIT */
/* The daemon's state, shared by its modules. One instance per process. */
#ifndef VMMD_VMMD_H
#define VMMD_VMMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "catalog.h"
#include "clientlimit.h"
#include "console_keep.h"
#include "hostnet.h"
#include "hv.h"
#include "loop.h"
#include "metrics.h"
#include "policy.h"
#include "proto.h"
#include "slurmjob.h"
#include "vmmdconf.h"

struct job;
struct client;
struct console_stream;
struct images;

struct warm;

struct vmmd {
	struct vmmd_config cfg;
	struct loop *loop;
	const struct hv_ops *hv;
	void *hv_ctx;
	/* The host's side of job networks (NULL: multi-node jobs refused). */
	const struct hostnet_ops *net;
	void *net_ctx;
	slurmjob_lookup_f slurm_lookup;
	slurmjob_requeue_f slurm_requeue; /* NULL: checkpoints end the job */
	const struct slurmnode_ops
	    *slurm_node; /* NULL: no evacuation by drain */
	/* The node is being evacuated (evacuate.h): every job that can be
	 * is saved and requeued, also one whose guest comes up later. */
	bool evacuating;
	char evacuate_reason[PROTO_MAX_REASON];
	/* The jobs the last evacuation saved and requeued (vmenvctl list,
	 * for root: --wait tells moved from gone). */
	uint32_t evacuate_moved[PROTO_MAX_MOVED];
	uint32_t evacuate_nmoved;
	struct catalog catalog;
	/* The policy set in force (NULL: none ever loaded; every VM job is
	 * refused) and why the last load failed ("" when it did not). */
	struct policy_set *policies;
	char policy_error[PROTO_MAX_ERROR];
	char domain_type[8];	 /* resolved: "kvm" or "qemu" */
	bool mem_limit_live;	 /* resolved mem_limit: set after create */
	char domain_prefix[160]; /* "vmenv-<node>-" */
	uid_t slurm_uid;	 /* may start/stop besides root */
	struct job *jobs;
	struct client *clients;
	/* Connections per uid, with root's and SlurmUser's reserve. */
	struct clientlimit climit;
	int listen_fd;
	struct loop_watch *listen_w;
	struct loop_watch *hv_w;
	struct loop_timer *reconcile_t;
	uint64_t started_ms;
	struct images *images;	/* image.h */
	struct warm *warm;	/* warm start's templates (warm.h) */
	uint64_t ckpt_bw_bps;	/* measured save bandwidth (ckpt_lead.h) */
	struct metrics metrics; /* since start (metrics.h) */
	struct console_stream *consoles;   /* vmenvctl console (console.h) */
	struct console_keep console_ended; /* console_keep.h */
};

/* daemon.c: bring the daemon up around an already filled d->cfg, d->hv
 * and d->slurm_lookup; and take it down (guests keep running). */
int vmmd_init(struct vmmd *d);
void vmmd_fini(struct vmmd *d);
/* "kvm" or "qemu" from the configured domain_type; why says what decided. */
const char *vmmd_pick_domain_type(const char *configured, int kvm_offered,
				  int cpu_has_virt, char *why, size_t whylen);
/* Whether the memory hard limit is set live (true) or in the XML, from the
 * configured mem_limit and whether this process (root, like libvirtd) may
 * raise RLIMIT_MEMLOCK, which libvirt does to the limit from the XML. */
bool vmmd_pick_mem_limit_live(const char *configured, bool can_raise_memlock,
			      char *why, size_t whylen);

/* d's counters (metrics.h) and ended jobs' console logs (console_keep.h)
 * under the names job.c and ckpt.c call; the work is those leaves', on
 * d's members and configuration. */
static inline void metrics_job_started(struct vmmd *d)
{
	metrics_count_start(&d->metrics);
}

static inline void metrics_ckpt_saved(struct vmmd *d, uint64_t ms,
				      uint64_t bytes)
{
	metrics_count_ckpt(&d->metrics, ms, bytes);
}

static inline void console_keep_ended(struct vmmd *d, uint32_t job, uid_t uid,
				      bool remove)
{
	console_keep_add(&d->console_ended, &d->cfg, job, uid, remove);
}

static inline void console_keep_forget(struct vmmd *d, uint32_t job)
{
	console_keep_del(&d->console_ended, &d->cfg, job);
}

#endif
