/* SPDX-License-Identifier: MIT */
/*
 * PCI devices as sysfs shows them, under a configurable root: addresses,
 * NUMA node, SR-IOV virtual functions of a physical function, IOMMU groups,
 * the PCI device behind a GPU's device file, and the per-VF InfiniBand
 * GUIDs of ConnectX adapters. Reads (and for GUIDs writes) files; never
 * logs; no state.
 *
 * Layout relied on (as on real nodes; the fixtures copy it):
 *   bus/pci/devices/ADDR -> ../../../devices/pci.../ADDR
 *   ADDR/{numa_node,class,vendor,device}
 *   ADDR/virtfnN -> ../VFADDR, VFADDR/physfn -> ../ADDR
 *   ADDR/iommu_group -> .../kernel/iommu_groups/G
 *   kernel/iommu_groups/G/devices/ADDR -> device directories
 *   class/infiniband/IBDEV/device -> the PF's directory
 *   class/drm/renderDN/device -> the GPU's directory
 *   ADDR/sriov/N/{node,port,policy}   per-VF GUIDs of the PF's VF N
 *                                     (mlx5; "11:22:...:88")
 *   PROC/driver/nvidia/gpus/ADDR/information   "Device Minor: N"
 */
#ifndef VMMD_PCIDEV_H
#define VMMD_PCIDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pci_addr {
	uint16_t domain;
	uint8_t bus;
	uint8_t slot; /* 0..31 */
	uint8_t func; /* 0..7 */
};

/* "0000:3b:00.2" plus NUL */
#define PCI_ADDR_LEN 13

/* Exactly DDDD:BB:SS.F in hex (lower or upper case). 0 or -EINVAL. */
int pci_addr_parse(const char *s, struct pci_addr *ret);
/* Lower-case canonical form into buf[PCI_ADDR_LEN]. */
void pci_addr_format(const struct pci_addr *a, char *buf);
bool pci_addr_equal(const struct pci_addr *a, const struct pci_addr *b);

/* The device's NUMA node; -1 when the platform has none. -ENOENT when no
 * such device. */
int pci_numa_node(const char *root, const struct pci_addr *a, int *ret);

struct pci_vf {
	struct pci_addr addr;
	struct pci_addr pf;
	uint32_t index; /* N of the PF's virtfnN */
	int numa_node;
};

/* A PF named by its PCI address or its InfiniBand device name (mlx5_0).
 * 0, -ENOENT (no such device), -EINVAL (neither form). */
int pci_resolve_pf(const char *root, const char *name, struct pci_addr *ret);
/* The PF's VFs, ordered by index. At most max; *ret_n is how many the PF
 * has (> max: -E2BIG). A PF without SR-IOV enabled has none. */
int pci_list_vfs(const char *root, const struct pci_addr *pf,
		 struct pci_vf *ret, size_t max, size_t *ret_n);

/* The devices of an IOMMU group that a guest takes, i.e. all but PCI
 * bridges (the group is only usable whole), ordered by address. */
int pci_iommu_group(const char *root, uint32_t group, struct pci_addr *ret,
		    size_t max, size_t *ret_n);

/*
 * The PCI devices behind a GPU device file as gres.conf names it:
 *   /dev/nvidiaN      the NVIDIA driver's GPU with device minor N
 *   /dev/vfio/G       IOMMU group G (a GPU already bound to vfio-pci)
 *   /dev/dri/renderDN, /dev/dri/cardN   the DRM device's PCI parent
 * Resolved by name through sysfs/procfs (no stat of /dev, so fixtures
 * work). -ENOENT when the file maps to nothing, -EOPNOTSUPP for another
 * kind of file.
 */
int pci_from_devfile(const char *sysfs_root, const char *proc_root,
		     const char *devfile, struct pci_addr *ret, size_t max,
		     size_t *ret_n);

/* 64-bit GUID <-> "11:22:33:44:55:66:77:88". */
#define IB_GUID_LEN 24
void ib_guid_format(uint64_t guid, char *buf);
int ib_guid_parse(const char *s, uint64_t *ret);
/* Current node and port GUIDs of a PF's VF (sriov/N/{node,port}).
 * -ENOENT when the PF offers no per-VF GUIDs. */
int ib_vf_get_guids(const char *root, const struct pci_vf *vf, uint64_t *node,
		    uint64_t *port);
/* Sets them, and the VF port policy to "Follow" (the PF's state). */
int ib_vf_set_guids(const char *root, const struct pci_vf *vf, uint64_t node,
		    uint64_t port);

#endif
