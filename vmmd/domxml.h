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
 * - A disk image is the job's own qcow2 overlay (virtio-blk, vda) on the
 *   cached base. The base is named as the overlay's backing store with
 *   <seclabel relabel='no'>: libvirt would otherwise chown the shared,
 *   root-owned base to the job's user (and back), making it writable by
 *   one user's guest while others boot from it. QEMU only reads it (it is
 *   0644 in a 0755 directory).
 */
#ifndef VMMD_DOMXML_H
#define VMMD_DOMXML_H

#include <stdint.h>

#include "cpuset.h"
#include "pcidev.h"

#define DOM_MAX_CELLS	 64
#define DOM_MAX_HOSTDEVS 32

/* A guest NUMA cell mirroring one host node. */
struct dom_cell {
	uint32_t host_node;
	struct cpuset vcpus; /* guest vCPU numbers */
	uint32_t mem_mib;
};

/* A PCI device passed through (VFIO, managed: libvirt binds it to
 * vfio-pci for the guest's life). cell >= 0 puts it behind a PCI expander
 * bus on that guest NUMA cell, so the guest sees the device's locality. */
struct dom_hostdev {
	struct pci_addr host;
	int cell;
};

/* A host directory shared into the guest under a 9p mount tag. */
struct dom_mount {
	const char *dir;
	const char *tag;
	bool ro;
};

/* A virtio-serial port named name whose host end QEMU binds at sock. */
struct dom_port {
	const char *sock;
	const char *name;
};

/* At most as many served mounts (files_mounts) as a spec has mounts. */
#define DOM_MAX_FILES_MOUNTS 16

/*
 * Where the guest runs and what it holds (placement.c fills it from
 * Slurm's allocation and the host's topology). Each part is optional:
 * pin[] when nvcpus > 0, topology when sockets > 0, cells when ncells > 0,
 * hugepages when hugepage_kib > 0, <memtune> when hard_limit_mib > 0.
 * nvcpus, when set, equals dom_spec.vcpus; the cells' memory adds up to
 * dom_spec.mem_mib.
 */
struct dom_placement {
	uint32_t nvcpus;
	uint16_t pin[CPUSET_MAX]; /* vCPU i runs on host CPU pin[i] */
	struct cpuset emulator;	  /* QEMU's other threads */
	uint32_t sockets, cores, threads;
	uint32_t ncells;
	struct dom_cell cell[DOM_MAX_CELLS];
	uint32_t hugepage_kib;
	uint32_t hard_limit_mib;
	uint32_t ndevs;
	struct dom_hostdev dev[DOM_MAX_HOSTDEVS];
};

struct dom_spec {
	const char *name;
	const char *type; /* "kvm" or "qemu" */
	uint32_t job_id;
	const char *node;
	uint32_t uid;
	uint32_t gid;
	uint32_t vcpus;
	uint32_t mem_mib;
	const struct dom_placement *place; /* NULL: unpinned, no devices */
	/* The spec's cpu_model: NULL or "" the node's default (the host's CPU
	 * under KVM, QEMU's default under TCG), "host-passthrough" (under TCG:
	 * QEMU's "max"), "host-model", or a QEMU model name (validated by the
	 * spec: [A-Za-z0-9_.+-]). */
	const char *cpu_model;
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *console_log;
	const char *agent_sock;
	const char *share_dir; /* NULL: no share */
	const char *share_tag;
	/* More host directories shared by QEMU's 9p (the job's --vm-mount,
	 * vmmd/files/jobmounts.h). ro: QEMU refuses every write, whatever the
	 * guest mounts it as. */
	uint32_t nmounts;
	const struct dom_mount *mounts;
	/* A multi-node job's private segment (vmmd/net/jobnet.h): a virtio NIC
	 * on a tap named net_tap that libvirt makes and puts on the job's
	 * bridge net_bridge (both named by vmmd: hostnet_names), with the
	 * segment's MTU. NULL: no NIC. */
	const char *net_bridge;
	const char *net_tap;
	uint32_t net_mtu;
	const char *net_mac;
	/* The job's files served outside QEMU (vmmd/files/jobfiles.h): a second
	 * virtio-serial port named files_port whose host end QEMU binds at
	 * files_sock (NULL: none). */
	const char *files_sock;
	const char *files_port;
	/* The job's --vm-mount directories served the same way (the served
	 * kind's, instead of mounts: vmmd/files/jobmounts.h), a port each;
	 * at most DOM_MAX_FILES_MOUNTS, and only with files_sock. */
	uint32_t nfiles_mounts;
	const struct dom_port *files_mounts;
	/* Bulk ports (docs/design.md §9): bulk_ports more virtio-serial
	 * ports, AW_BULK_PORT_FMT 0..n-1, whose host ends QEMU binds at
	 * <bulk_sock_prefix><i>.sock. 0: none. */
	uint32_t bulk_ports;
	const char *bulk_sock_prefix;
	/* The disk: the job's overlay and its read-only base (NULL: no
	 * disk). Without a kernel the guest boots from the disk. */
	const char *disk_overlay;
	const char *disk_base;
	const char *disk_base_format; /* "qcow2" or "raw" */
	/* An emulated PCI device standing in for a VF (vmmd.conf
	 * checkpoint_standin_device): DOMXML_STANDIN_XML. */
	bool standin;
};

/* *ret is malloc'ed (caller frees). 0, -EINVAL for a bad spec, -ENOMEM.
 * kernel, initrd and cmdline may be NULL when a disk is given. */
int domxml_build(const struct dom_spec *s, char **ret);

/* One passed-through device on its own, for hot-(un)plug across a
 * checkpoint (ckpt.c): *ret is malloc'ed. And the text of its source that
 * the domain's XML holds exactly while the device is attached. */
int domxml_hostdev(const struct dom_hostdev *d, char **ret);
/* The spec's NIC on its own, for hot-plug into a guest restored from a
 * template (warm.c); -EINVAL without one. */
int domxml_net(const struct dom_spec *s, char **ret);
int domxml_hostdev_gone(const struct dom_hostdev *d, char *buf, size_t len);

#define DOMXML_NS "https://vmenv.invalid/xmlns/domain/1"

/* The stand-in device on its own (hot-plug), and what is in the live
 * domain's XML while it is there. */
#define DOMXML_STANDIN_ALIAS "ua-vmenv-standin"
#define DOMXML_STANDIN_XML                                                   \
	"<rng model='virtio'><backend model='random'>/dev/urandom</backend>" \
	"<alias name='" DOMXML_STANDIN_ALIAS "'/></rng>"
#define DOMXML_STANDIN_GONE "<alias name='" DOMXML_STANDIN_ALIAS "'/>"

#endif
