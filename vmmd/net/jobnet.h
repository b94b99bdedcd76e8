/* SPDX-License-Identifier: MIT */
/*
 * jobnet: the private network of a multi-node job's guests.
 *
 * Every node works its own share out from what Slurm says (the job's node
 * list, this node's index in it, when the job started) and from the site's
 * configuration, so the nodes agree without talking to each other:
 *
 * - Segment: a Linux bridge per job and host, made by vmmd as root, with
 *   each guest's virtio NIC on a tap libvirt makes under a name vmmd gives
 *   it; local processes are kept off every such device by a guard in
 *   nf_tables (vmmd/net/hostnet.h). A guest has no say in which bridge its tap
 *   is on, so it cannot join another job's segment.
 * - Across hosts (net_tunnel = vxlan): a VXLAN device on the bridge, VNI
 *   from the job id, with a forwarding entry per remote host (broadcasts)
 *   and per remote guest (its MAC), addresses from net_nodes_file; nothing
 *   is learnt from what arrives. docs/multinode.md says what the site must
 *   make of the network under it.
 * - Addresses: node i of the job gets host i+1 of guest_net, the same in
 *   every job (segments are separate); the peers' names are Slurm's node
 *   names, so a hostfile of node names works in the guests.
 * - Token: HMAC-SHA256(site key, "vmenv-job\0" job id, start time), hex.
 *   The same on every node of the job, different for every job and every
 *   run of a requeued job; the guests' remote shell (vmenv-rsh) proves it
 *   holds it without sending it (common/rshwire.h). The site key
 *   (job_key_file) is distributed like munge.key.
 */
#ifndef VMMD_JOBNET_H
#define VMMD_JOBNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostnet.h"
#include "slurmjob.h"
#include "vmmdconf.h"

#define JOBNET_MAX_NODES 65534u

#define JOBNET_MTU	 1500u
#define JOBNET_VXLAN_MTU 1450u /* 1500 less VXLAN's 50 bytes */

struct jobnet {
	uint32_t node_index;
	uint32_t nnodes;
	char mac[18];
	char addr[20]; /* this guest's a.b.c.d/len */
	char token[65];
	char tap[HOSTNET_IFNAME_MAX]; /* this guest's, made by libvirt */
	uint32_t mtu;		      /* of the guest's NIC */
	struct hostnet_spec host;     /* the job's devices on this host */
	char **peer_names;	      /* nnodes names, NULL-terminated */
	char (*peer_addrs)[16];	      /* nnodes dotted quads */
};

/* Every node's tunnel address (net_nodes_file). */
struct jobnet_node {
	char name[65];
	char addr[16];
};

struct jobnet_nodes {
	struct jobnet_node *v;
	size_t n;
};

/* The network of job's guest on this node (si: Slurm's view of the job);
 * key: the site key's bytes; nodes: with net_tunnel = vxlan, every node's
 * tunnel address (else NULL). 0, or -errno with the reason in err. */
int jobnet_plan(const struct vmmd_config *c, uint32_t job_id,
		const struct slurmjob_info *si, const void *key, size_t keylen,
		const struct jobnet_nodes *nodes, struct jobnet *ret, char *err,
		size_t errlen);

/* Reads net_nodes_file: "NODE ADDRESS" lines, '#' comments. It decides
 * where a job's frames go, so it must be root's and written by no one
 * else. 0 or -errno with the reason. */
int jobnet_read_nodes(const char *path, struct jobnet_nodes *ret, char *err,
		      size_t errlen);
/* Parses that file's text (name: for messages). */
int jobnet_parse_nodes(const char *text, const char *name,
		       struct jobnet_nodes *ret, char *err, size_t errlen);
void jobnet_nodes_clear(struct jobnet_nodes *n);

/* Reads the site key (at most 4 KiB; must not be readable by others). */
int jobnet_read_key(const char *path, unsigned char *buf, size_t size,
		    size_t *len, char *err, size_t errlen);

void jobnet_clear(struct jobnet *n);

#endif
