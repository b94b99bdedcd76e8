/* SPDX-License-Identifier: MIT */
/*
 * In-memory stand-ins for vmmd's two outside seams, for test_vmmd:
 *
 * - fake_hv_ops (struct hv_ops): records create/destroy calls, can be told
 *   to fail create, and does for the agent channel what QEMU would: binds
 *   and listens on the Unix socket named in the domain XML, so the test can
 *   accept vmmd's connection and play the guest agent.
 * - fake_slurm_lookup (slurmjob_lookup_f): answers from a table of jobs.
 *
 * One instance each per process (vmmd has one hypervisor connection too);
 * fake_hv_reset()/fake_slurm_reset() between tests.
 */
#ifndef VMENV_TEST_FAKES_H
#define VMENV_TEST_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostnet.h"
#include "hv.h"
#include "slurmjob.h"
#include "util.h"

#define FAKE_HV_MAX_DOMAINS 8
#define FAKE_HV_MAX_CALLS   16
#define FAKE_HV_MAX_EVENTS  8

#define FAKE_HV_MAX_BULK 4

struct fake_domain {
	char name[160];
	char agent_sock[VMENV_MAX_PATH];
	int listen_fd; /* QEMU's end of the agent channel */
	int agent_fd;  /* the accepted connection, see fake_hv_accept_agent */
	bool running;
	char *xml; /* what it was started with (owned) */
	/* The first bulk ports' sockets (vmmd/bulk.h), as QEMU binds them. */
	unsigned nbulk;
	char bulk_sock[FAKE_HV_MAX_BULK][VMENV_MAX_PATH];
	int bulk_listen[FAKE_HV_MAX_BULK];
	int bulk_fd[FAKE_HV_MAX_BULK]; /* fake_hv_accept_bulk */
};

struct fake_hv {
	/* Set by the test. */
	int fail_create;	/* -errno for create to return, 0: succeed */
	char fail_message[256]; /* and the message it gives */
	int kvm;		/* what kvm_offered() answers */
	/* Recorded. */
	bool open;
	unsigned ncreate, ndestroy;
	char created[FAKE_HV_MAX_CALLS][160]; /* domain names, in order */
	char destroyed[FAKE_HV_MAX_CALLS][160];
	char *last_xml;		 /* of the last create (owned) */
	uint64_t last_limit_kib; /* of the last create_limited, else 0 */
	struct fake_domain dom[FAKE_HV_MAX_DOMAINS];
	/* Checkpoints: set by the test. */
	int fail_save;	  /* -errno for save (after writing half) */
	int fail_restore; /* -errno for restore */
	/* A restore that returns this long after QEMU runs again (the
	 * guest's agent may say hello before vmmd's loop hears of it). */
	unsigned restore_delay_ms;
	char cpu_refuse[64]; /* cpu_ok says no to this model */
	/* Runs as save starts (in vmmd's worker thread), before the image
	 * is written: what another process may do meanwhile. */
	void (*on_save)(const char *path);
	int fail_owner; /* -errno for owner (libvirt not answering) */
	/* Recorded. */
	unsigned nsave, nrestore, ndetach, nattach;
	char saved_path[VMENV_MAX_PATH];
	char *restore_xml; /* of the last restore (owned) */
	uint64_t restore_limit_kib;
	/* set_limit: each call's limit (KiB), fake_hv.nsave then, and
	 * whether the last save's file (saved_path) was still there. */
	unsigned nset_limit;
	struct {
		char name[160];
		uint64_t kib;
		unsigned nsave;
		bool save_file;
	} set_limit[FAKE_HV_MAX_CALLS];
	char detached[FAKE_HV_MAX_CALLS][256]; /* the devices' XML */
	char attached[FAKE_HV_MAX_CALLS][256];
	int event_fd;
	size_t nevents;
	struct {
		char name[160];
		enum hv_event ev;
	} events[FAKE_HV_MAX_EVENTS];
};

extern struct fake_hv fake_hv;
extern const struct hv_ops fake_hv_ops;

/* Forgets every call, closes every socket, keeps nothing set. */
void fake_hv_reset(void);
/* The running (or last) domain of that name, or NULL. */
struct fake_domain *fake_hv_domain(const char *name);
/* Accepts vmmd's connection on the domain's agent socket (waiting at most
 * timeout_ms); returns the fd, which stays owned by the fake. -errno on
 * failure. */
int fake_hv_accept_agent(struct fake_domain *dom, int timeout_ms);
/* Accepts vmmd's connection to bulk port i (the fake keeps the fd). */
int fake_hv_accept_bulk(struct fake_domain *dom, unsigned i, int timeout_ms);
/* Queues a lifecycle event, as libvirt would report one. */
void fake_hv_emit(const char *name, enum hv_event ev);
/* Does an XML attribute/element value unescape: &amp; &lt; &gt; &apos;
 * &quot;. Exposed so the test can check what the fake parsed. */
int fake_xml_unescape(const char *in, size_t n, char *out, size_t outlen);

/* fake_net_ops (struct hostnet_ops): bridges in memory. A test puts
 * guests on a bridge (guests > 0) to play another vmmd's guest of the job;
 * fail_up makes up() fail. */
#define FAKE_NET_MAX 8

struct fake_net {
	int fail_up;
	unsigned nguard, nup, nrelease;
	uint16_t guard_port;
	struct hostnet_spec last; /* of the last up (fdb not kept) */
	struct hostnet_bridge br[FAKE_NET_MAX];
	size_t nbr;
};

extern struct fake_net fake_net;
extern const struct hostnet_ops fake_net_ops;
void fake_net_reset(void);
/* The bridge of that name, or NULL. */
struct hostnet_bridge *fake_net_bridge(const char *name);

#define FAKE_SLURM_MAX_JOBS 16

/* Every lookup fails with this when set (-EHOSTUNREACH: slurmctld down). */
extern int fake_slurm_fail;
extern unsigned fake_slurm_calls;

void fake_slurm_reset(void);
/* Adds or replaces the job with info->job_id. */
void fake_slurm_set(const struct slurmjob_info *info);
int fake_slurm_lookup(uint32_t job_id, const char *node,
		      struct slurmjob_info *ret, char *err, size_t errlen);
/* Requeues: counted; the job's restart count goes up when it starts
 * again (fake_slurm_set by the test). fake_slurm_requeue_fail: -errno. */
extern unsigned fake_slurm_requeues;
extern int fake_slurm_requeue_fail;
int fake_slurm_requeue(uint32_t job_id, char *err, size_t errlen);
/* The node's state in Slurm: drain and its reason, as the test sets them
 * or fake_slurm_node.drain does (counted; fake_node_drain_fail: -errno). */
extern struct slurmnode_info fake_node;
extern unsigned fake_node_drains;
extern int fake_node_drain_fail;
extern const struct slurmnode_ops fake_slurm_node;

#endif
