/* SPDX-License-Identifier: MIT */
/*
 * hostnet: the host's side of a multi-node job's private network, the seam
 * between vmmd and the kernel (hostnet_linux.c speaks rtnetlink and
 * nf_tables; test/unit/fake_hostnet.c keeps it in memory).
 *
 * Per job and host: a Linux bridge (HOSTNET_PREFIX + the job id in hex)
 * that the job's guests on this host are attached to, each through a tap
 * libvirt creates under a name vmmd gives it (same prefix), and, across
 * hosts, a VXLAN device on the bridge (docs/multinode.md). None has an
 * address. Several vmmd on one host (the test cluster's simulated nodes)
 * share the job's bridge: the first creates it, the last removes it; every
 * operation holds a lock file of the host's, so they see each other's
 * changes whole.
 *
 * What keeps local users out is not that a bridge needs CAP_NET_ADMIN: any
 * process may send through any interface that is up (SO_BINDTODEVICE,
 * IP_PKTINFO, IPV6 scope ids, multicast interface options) and receive what
 * reaches the host's stack through it. So before any bridge exists, the
 * guard (nf_tables table "inet vmenv_jobnet" and "arp vmenv_jobnet") drops
 * every packet the host's own stack would send or receive through a device
 * whose name starts with the prefix, anything routed between those devices
 * and others, and, with a tunnel, UDP to the tunnel's port from any socket
 * not of root (the kernel's own VXLAN socket has no owner and passes). The
 * guard is replaced whole in one transaction each time it is installed.
 * Bridged traffic between a job's guests never meets those hooks.
 */
#ifndef VMMD_HOSTNET_H
#define VMMD_HOSTNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTNET_PREFIX	   "vmj"
#define HOSTNET_IFNAME_MAX 16 /* IFNAMSIZ, with the NUL */
#define HOSTNET_GUARD	   "vmenv_jobnet"

/* A forwarding entry of the tunnel: frames for mac go to host dst. The
 * all-zero MAC: broadcast and unknown destinations go there too. */
struct hostnet_fdb {
	char mac[18];
	char dst[16];
};

/* One job's devices on this host. */
struct hostnet_spec {
	char bridge[HOSTNET_IFNAME_MAX];
	char tunnel[HOSTNET_IFNAME_MAX]; /* "": none (all on this host) */
	uint32_t vni;
	uint16_t port;	/* the tunnel's UDP port */
	char local[16]; /* this host's underlay address */
	uint32_t mtu;	/* of the tunnel; the bridge follows its ports */
	uint32_t nfdb;
	struct hostnet_fdb *fdb; /* owned by whoever filled the spec */
	/* The guard's tunnel port (0: no tunnel on this host), the same for
	 * every job of the site's configuration. */
	uint16_t guard_port;
};

/* A bridge of ours, as found on the host. */
struct hostnet_bridge {
	char name[HOSTNET_IFNAME_MAX];
	uint32_t job_id;
	uint32_t guests; /* its ports other than the tunnel: taps */
};

struct hostnet_ops {
	/* Installs the guard (replacing whatever guard was there). */
	int (*guard)(void *ctx, uint16_t tunnel_port, char *err, size_t errlen);
	/* The guard, then the job's bridge (created, or found), addressless
	 * and up; then its tunnel (made afresh when no guest is attached yet)
	 * and the forwarding entries. */
	int (*up)(void *ctx, const struct hostnet_spec *s, char *err,
		  size_t errlen);
	/* Removes bridge (and its tunnel) when no guest is attached any
	 * more: 1 removed, 0 still in use, -ENOENT when there is none. */
	int (*release)(void *ctx, const char *bridge, char *err, size_t errlen);
	/* Every bridge of ours on the host: *ret malloc'ed (caller frees). */
	int (*list)(void *ctx, struct hostnet_bridge **ret, size_t *n,
		    char *err, size_t errlen);
};

/* The real one; ctx: a struct hostnet_linux. */
struct hostnet_linux {
	const char *lock_path; /* in a directory only root writes */
};
extern const struct hostnet_ops hostnet_linux_ops;

/* The names of job_id's devices: bridge "vmj" + 8 hex digits, tunnel the
 * same + "t", the tap of node node_index the bridge's + 4 hex digits. */
void hostnet_names(uint32_t job_id, uint32_t node_index,
		   char bridge[HOSTNET_IFNAME_MAX],
		   char tunnel[HOSTNET_IFNAME_MAX],
		   char tap[HOSTNET_IFNAME_MAX]);
/* Whether name is a bridge name of ours; its job id then. */
bool hostnet_bridge_job(const char *name, uint32_t *job_id);

/* nftguard.c: the guard in one nf_tables transaction (hostnet.h). */
int nftguard_install(uint16_t tunnel_port, char *err, size_t errlen);

#endif
