/* SPDX-License-Identifier: MIT */
/*
 * Builds the libvirt domain XML of a job's guest. Pure: no I/O. Every string
 * is XML-escaped here, and callers have already validated them (paths are
 * clean absolute paths, names are vmmd's own).
 *
 * Choices worth knowing:
 * - QEMU runs as the job's user (static DAC label): the guest can then reach
 *   on the host only what that user could, and files it creates through the
 *   9p share belong to the user. libvirt relabels the boot files, so each job
 *   boots from its own copies.
 * - The agent channel is a virtio-serial port whose host end QEMU listens on
 *   (a Unix socket in the job's directory); vmmd connects to it.
 * - The console goes to a file through virtlogd, for "guest never booted".
 */
#ifndef VMMD_DOMXML_H
#define VMMD_DOMXML_H

#include <stdint.h>

struct dom_spec {
	const char *name;
	const char *type; /* "kvm" or "qemu" */
	uint32_t job_id;
	const char *node;
	uint32_t uid;
	uint32_t gid;
	uint32_t vcpus;
	uint32_t mem_mib;
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *console_log;
	const char *agent_sock;
	const char *share_dir; /* NULL: no share */
	const char *share_tag;
};

/* *ret is malloc'ed (caller frees). 0, -EINVAL for a bad spec, -ENOMEM. */
int domxml_build(const struct dom_spec *s, char **ret);

#define DOMXML_NS "https://vmenv.invalid/xmlns/domain/1"

#endif
