/* SPDX-License-Identifier: MIT */
/*
 * jobnet: the private network of a multi-node job's guests.
 *
 * Every node works its own share out from what Slurm says (the job's node
 * list, this node's index in it, when the job started) and from the site's
 * configuration, so the nodes agree without talking to each other:
 *
 * - Segment: a QEMU multicast socket segment per job. The group is
 *   239.192.0.0/10 plus the job id's low 22 bits, on net_mcast_port: the
 *   guests of one job see each other's Ethernet frames and nothing else.
 *   The host side of that socket is QEMU's, not the guest's: a guest cannot
 *   join another job's group. On a site network this needs multicast
 *   between the nodes; docs/multinode.md says what to use instead (a
 *   per-job VLAN/VXLAN bridge, or the IB VFs' own partition).
 * - Addresses: node i of the job gets host i+1 of guest_net, the same in
 *   every job (segments are separate); the peers' names are Slurm's node
 *   names, so a hostfile of node names works in the guests.
 * - Token: HMAC-SHA256(site key, "vmenv-job\0" job id, start time), hex.
 *   The same on every node of the job, different for every job and every
 *   run of a requeued job; the guest's remote shell (vmenv-rsh) accepts
 *   only it. The site key (job_key_file) is distributed like munge.key.
 */
#ifndef VMMD_JOBNET_H
#define VMMD_JOBNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "slurmjob.h"

#define JOBNET_MAX_NODES 65534u

struct jobnet {
	uint32_t node_index;
	uint32_t nnodes;
	char mcast_group[16];
	uint16_t mcast_port;
	char mac[18];
	char addr[20]; /* this guest's a.b.c.d/len */
	char token[65];
	char **peer_names;	/* nnodes names, NULL-terminated */
	char (*peer_addrs)[16]; /* nnodes dotted quads */
};

/* The network of job's guest on this node (si: Slurm's view of the job);
 * key: the site key's bytes. 0, or -errno with the reason in err. */
int jobnet_plan(const struct vmmd_config *c, uint32_t job_id,
		const struct slurmjob_info *si, const void *key, size_t keylen,
		struct jobnet *ret, char *err, size_t errlen);

/* Reads the site key (at most 4 KiB; must not be readable by others). */
int jobnet_read_key(const char *path, unsigned char *buf, size_t size,
		    size_t *len, char *err, size_t errlen);

void jobnet_clear(struct jobnet *n);

#endif
