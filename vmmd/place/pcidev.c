/* SPDX-License-Identifier: MIT */
#include "pcidev.h"

#include "cleanup.h"
#include "sysfs.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n hex digits at s. */
static int hexn(const char *s, int n, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return -EINVAL;
		v = v * 16 + (uint32_t)h;
	}
	*ret = v;
	return 0;
}

int pci_addr_parse(const char *s, struct pci_addr *ret)
{
	uint32_t d, b, sl, f;

	if (strlen(s) != PCI_ADDR_LEN - 1 || s[4] != ':' || s[7] != ':' ||
	    s[10] != '.' || hexn(s, 4, &d) < 0 || hexn(s + 5, 2, &b) < 0 ||
	    hexn(s + 8, 2, &sl) < 0 || hexn(s + 11, 1, &f) < 0 || sl > 31 ||
	    f > 7)
		return -EINVAL;
	ret->domain = (uint16_t)d;
	ret->bus = (uint8_t)b;
	ret->slot = (uint8_t)sl;
	ret->func = (uint8_t)f;
	return 0;
}

void pci_addr_format(const struct pci_addr *a, char *buf)
{
	char tmp[48]; /* what the compiler thinks %x of an int may take */

	snprintf(tmp, sizeof(tmp), "%04x:%02x:%02x.%x", a->domain, a->bus,
		 a->slot & 31u, a->func & 7u);
	memcpy(buf, tmp, PCI_ADDR_LEN - 1);
	buf[PCI_ADDR_LEN - 1] = '\0';
}

bool pci_addr_equal(const struct pci_addr *a, const struct pci_addr *b)
{
	return a->domain == b->domain && a->bus == b->bus &&
	       a->slot == b->slot && a->func == b->func;
}

static int pci_cmp(const void *x, const void *y)
{
	const struct pci_addr *a = x, *b = y;
	uint32_t ka = ((uint32_t)a->domain << 16) | ((uint32_t)a->bus << 8) |
		      ((uint32_t)a->slot << 3) | a->func;
	uint32_t kb = ((uint32_t)b->domain << 16) | ((uint32_t)b->bus << 8) |
		      ((uint32_t)b->slot << 3) | b->func;

	return ka < kb ? -1 : ka > kb;
}

/* "bus/pci/devices/ADDR/attr" */
static int dev_rel(const struct pci_addr *a, const char *attr, char *buf,
		   size_t len)
{
	char s[PCI_ADDR_LEN];

	pci_addr_format(a, s);
	return str_printf(buf, len, "bus/pci/devices/%s%s%s", s,
			  *attr ? "/" : "", attr);
}

int pci_numa_node(const char *root, const struct pci_addr *a, int *ret)
{
	char rel[128];
	int64_t v;
	int r;

	if ((r = dev_rel(a, "numa_node", rel, sizeof(rel))) < 0 ||
	    (r = sysfs_read_i64(root, rel, &v)) < 0)
		return r;
	*ret = v < 0 || v > INT32_MAX ? -1 : (int)v;
	return 0;
}

static bool valid_ibdev(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.')
			return false;
	return true;
}

int pci_resolve_pf(const char *root, const char *name, struct pci_addr *ret)
{
	char rel[128], target[64], path[VMENV_MAX_PATH];
	struct pci_addr a;
	int r;

	if (pci_addr_parse(name, &a) == 0) {
		if ((r = dev_rel(&a, "", rel, sizeof(rel))) < 0 ||
		    (r = sysfs_path(root, rel, path, sizeof(path))) < 0)
			return r;
		if (access(path, F_OK) < 0)
			return -ENOENT;
		*ret = a;
		return 0;
	}
	if (!valid_ibdev(name))
		return -EINVAL;
	snprintf(rel, sizeof(rel), "class/infiniband/%s/device", name);
	if ((r = sysfs_link_name(root, rel, target, sizeof(target))) < 0)
		return r;
	return pci_addr_parse(target, ret) < 0 ? -ENOENT : 0;
}

static int vf_cmp(const void *x, const void *y)
{
	const struct pci_vf *a = x, *b = y;

	return a->index < b->index ? -1 : a->index > b->index;
}

/* One "virtfnN" entry of the PF into *vf. */
static int read_vf(const char *root, const struct pci_addr *pf,
		   const char *entry, struct pci_vf *vf)
{
	char rel[160], target[64];
	uint32_t idx;
	int r;

	if (parse_u32(entry + strlen("virtfn"), &idx) < 0)
		return -EINVAL;
	if ((r = dev_rel(pf, entry, rel, sizeof(rel))) < 0 ||
	    (r = sysfs_link_name(root, rel, target, sizeof(target))) < 0)
		return r;
	if (pci_addr_parse(target, &vf->addr) < 0)
		return -EINVAL;
	vf->pf = *pf;
	vf->index = idx;
	if (pci_numa_node(root, &vf->addr, &vf->numa_node) < 0)
		vf->numa_node = -1;
	return 0;
}

int pci_list_vfs(const char *root, const struct pci_addr *pf,
		 struct pci_vf *ret, size_t max, size_t *ret_n)
{
	char rel[128], path[VMENV_MAX_PATH];
	struct dirent *e;
	size_t n = 0;
	DIR *dir;
	int r = 0;

	if ((r = dev_rel(pf, "", rel, sizeof(rel))) < 0 ||
	    (r = sysfs_path(root, rel, path, sizeof(path))) < 0)
		return r;
	if (!(dir = opendir(path)))
		return -errno;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "virtfn", 6) != 0)
			continue;
		if (n < max && (r = read_vf(root, pf, e->d_name, &ret[n])) < 0)
			break;
		n++;
	}
	closedir(dir);
	if (r < 0)
		return r;
	*ret_n = n;
	if (n > max)
		return -E2BIG;
	qsort(ret, n, sizeof(*ret), vf_cmp);
	return 0;
}

static bool is_bridge(const char *root, const struct pci_addr *a)
{
	char rel[128];
	uint64_t cls;

	return dev_rel(a, "class", rel, sizeof(rel)) == 0 &&
	       sysfs_read_u64(root, rel, &cls) == 0 && (cls >> 8) == 0x0604;
}

int pci_iommu_group(const char *root, uint32_t group, struct pci_addr *ret,
		    size_t max, size_t *ret_n)
{
	char rel[96], path[VMENV_MAX_PATH];
	struct pci_addr a;
	struct dirent *e;
	size_t n = 0;
	DIR *dir;
	int r;

	snprintf(rel, sizeof(rel), "kernel/iommu_groups/%u/devices", group);
	if ((r = sysfs_path(root, rel, path, sizeof(path))) < 0)
		return r;
	if (!(dir = opendir(path)))
		return -errno;
	while ((e = readdir(dir))) {
		if (pci_addr_parse(e->d_name, &a) < 0 || is_bridge(root, &a))
			continue;
		if (n < max)
			ret[n] = a;
		n++;
	}
	closedir(dir);
	*ret_n = n;
	if (n > max)
		return -E2BIG;
	qsort(ret, n, sizeof(*ret), pci_cmp);
	return n ? 0 : -ENOENT;
}

/* The GPU whose "Device Minor:" is minor, from the NVIDIA driver's
 * per-GPU information files (the driver makes no sysfs class device). */
static int nvidia_minor(const char *proc_root, uint32_t minor,
			struct pci_addr *ret)
{
	char path[VMENV_MAX_PATH], rel[320];
	struct dirent *e;
	DIR *dir;
	int r = -ENOENT;

	if (sysfs_path(proc_root, "driver/nvidia/gpus", path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	if (!(dir = opendir(path)))
		return errno == ENOENT ? -ENOENT : -errno;
	while (r == -ENOENT && (e = readdir(dir))) {
		_cleanup_free_ char *text = NULL;
		struct pci_addr a;
		const char *p;
		uint32_t m;

		if (pci_addr_parse(e->d_name, &a) < 0)
			continue;
		snprintf(rel, sizeof(rel), "driver/nvidia/gpus/%s/information",
			 e->d_name);
		if (sysfs_read_text(proc_root, rel, 1 << 16, &text) < 0 ||
		    !(p = strstr(text, "Device Minor:")))
			continue;
		p += strlen("Device Minor:");
		while (*p == ' ' || *p == '\t')
			p++;
		if (sscanf(p, "%" SCNu32, &m) == 1 && m == minor) {
			*ret = a;
			r = 0;
		}
	}
	closedir(dir);
	return r;
}

/* "PREFIX<number>" -> number. */
static int numbered(const char *s, const char *prefix, uint32_t *ret)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? parse_u32(s + n, ret) : -EINVAL;
}

int pci_from_devfile(const char *sysfs_root, const char *proc_root,
		     const char *devfile, struct pci_addr *ret, size_t max,
		     size_t *ret_n)
{
	char rel[128], target[64];
	uint32_t n;
	int r;

	if (max == 0)
		return -E2BIG;
	if (numbered(devfile, "/dev/vfio/", &n) == 0)
		return pci_iommu_group(sysfs_root, n, ret, max, ret_n);
	if (numbered(devfile, "/dev/nvidia", &n) == 0) {
		*ret_n = 1;
		return nvidia_minor(proc_root, n, ret);
	}
	if (numbered(devfile, "/dev/dri/renderD", &n) == 0 ||
	    numbered(devfile, "/dev/dri/card", &n) == 0) {
		snprintf(rel, sizeof(rel), "class/drm/%s/device",
			 devfile + strlen("/dev/dri/"));
		if ((r = sysfs_link_name(sysfs_root, rel, target,
					 sizeof(target))) < 0)
			return r;
		*ret_n = 1;
		return pci_addr_parse(target, ret) < 0 ? -ENOENT : 0;
	}
	return -EOPNOTSUPP;
}

void ib_guid_format(uint64_t guid, char *buf)
{
	snprintf(buf, IB_GUID_LEN, "%02x:%02x:%02x:%02x:%02x:%02x:%02x:%02x",
		 (unsigned)(guid >> 56) & 0xff, (unsigned)(guid >> 48) & 0xff,
		 (unsigned)(guid >> 40) & 0xff, (unsigned)(guid >> 32) & 0xff,
		 (unsigned)(guid >> 24) & 0xff, (unsigned)(guid >> 16) & 0xff,
		 (unsigned)(guid >> 8) & 0xff, (unsigned)guid & 0xff);
}

int ib_guid_parse(const char *s, uint64_t *ret)
{
	uint64_t g = 0;
	uint32_t b;

	if (strlen(s) != IB_GUID_LEN - 1)
		return -EINVAL;
	for (int i = 0; i < 8; i++) {
		if (hexn(s + i * 3, 2, &b) < 0 ||
		    (i < 7 && s[i * 3 + 2] != ':'))
			return -EINVAL;
		g = (g << 8) | b;
	}
	*ret = g;
	return 0;
}

/* "bus/pci/devices/PF/sriov/N/what" */
static int sriov_rel(const struct pci_vf *vf, const char *what, char *buf,
		     size_t len)
{
	char sub[64];

	snprintf(sub, sizeof(sub), "sriov/%u/%s", vf->index, what);
	return dev_rel(&vf->pf, sub, buf, len);
}

int ib_vf_get_guids(const char *root, const struct pci_vf *vf, uint64_t *node,
		    uint64_t *port)
{
	char rel[160], line[64];
	int r;

	if ((r = sriov_rel(vf, "node", rel, sizeof(rel))) < 0 ||
	    (r = sysfs_read_line(root, rel, line, sizeof(line))) < 0 ||
	    (r = ib_guid_parse(line, node)) < 0 ||
	    (r = sriov_rel(vf, "port", rel, sizeof(rel))) < 0 ||
	    (r = sysfs_read_line(root, rel, line, sizeof(line))) < 0 ||
	    (r = ib_guid_parse(line, port)) < 0)
		return r;
	return 0;
}

int ib_vf_set_guids(const char *root, const struct pci_vf *vf, uint64_t node,
		    uint64_t port)
{
	char rel[160], g[IB_GUID_LEN + 1];
	int r;

	ib_guid_format(node, g);
	strcat(g, "\n");
	if ((r = sriov_rel(vf, "node", rel, sizeof(rel))) < 0 ||
	    (r = sysfs_write(root, rel, g)) < 0)
		return r;
	ib_guid_format(port, g);
	strcat(g, "\n");
	if ((r = sriov_rel(vf, "port", rel, sizeof(rel))) < 0 ||
	    (r = sysfs_write(root, rel, g)) < 0)
		return r;
	if ((r = sriov_rel(vf, "policy", rel, sizeof(rel))) < 0)
		return r;
	return sysfs_write(root, rel, "Follow\n");
}
