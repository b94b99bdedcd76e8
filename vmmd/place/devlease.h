/* SPDX-License-Identifier: MIT */
/*
 * Which job owns which host device (SR-IOV VF, GPU): one lease file per
 * device under a directory (vmmd's run_dir/devices), named by the device's
 * PCI address, holding key=value lines.
 *
 * Taking a lease is link(2) of a fully written and synced temp file to that
 * name: atomic (no reader ever sees half a lease) and exclusive (EEXIST
 * when another job holds it). Nothing is kept in memory, so a vmmd killed
 * with SIGKILL and restarted mid-job sees exactly the leases on disk and
 * cannot hand a device out twice; reconcile drops the leases of jobs that
 * are gone. No logging.
 */
#ifndef VMMD_DEVLEASE_H
#define VMMD_DEVLEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcidev.h"

enum devlease_kind { DEVLEASE_VF = 1, DEVLEASE_GPU };

struct devlease {
	struct pci_addr addr; /* the device, and the file's name */
	uint32_t job_id;
	enum devlease_kind kind;
	/* VFs: to restore the VF's GUIDs when the lease is dropped. */
	struct pci_addr pf;
	uint32_t vf_index;
	bool has_guids;
	uint64_t node_guid, port_guid; /* the VF's GUIDs before the job */
};

/* 0; -EBUSY when the device is leased already (*holder, if not NULL, gets
 * that lease); other -errno. Creates dir if needed. */
int devlease_take(const char *dir, const struct devlease *l,
		  struct devlease *holder);
/* Rewrites a lease the caller holds (atomically). */
int devlease_update(const char *dir, const struct devlease *l);
/* -ENOENT when not leased; -EBADMSG for a damaged file. */
int devlease_read(const char *dir, const struct pci_addr *addr,
		  struct devlease *ret);
/* Removes the lease if job_id holds it: 0, -ENOENT, -EPERM (another job's). */
int devlease_drop(const char *dir, const struct pci_addr *addr,
		  uint32_t job_id);
/* Every lease (damaged files too, as job_id 0, so reconcile removes them).
 * *ret is malloc'ed (caller frees), *ret_n entries. */
int devlease_list(const char *dir, struct devlease **ret, size_t *ret_n);

#endif
