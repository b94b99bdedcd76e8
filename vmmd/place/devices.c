/* SPDX-License-Identifier: MIT */
#include "devices.h"

#include "cleanup.h"
#include "devlease.h"
#include "gres.h"
#include "pcidev.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PFS	       8
#define MAX_VFS_PER_PF 256
#define MAX_GPU_FUNCS  8 /* PCI functions one GPU device file brings */

int devices_lease_dir(const struct vmmd_config *c, char *buf, size_t len)
{
	return str_printf(buf, len, "%s/devices", c->run_dir);
}

/* --- configuration ---------------------------------------------------- */

/* The PFs of ib_pfs ("mlx5_0 0000:3b:00.0", comma or space separated). */
static int parse_pfs(const struct vmmd_config *c, struct pci_addr *ret,
		     size_t *ret_n, char *err, size_t errlen)
{
	char copy[sizeof(c->ib_pfs)], *save = NULL;
	size_t n = 0;

	snprintf(copy, sizeof(copy), "%s", c->ib_pfs);
	for (char *t = strtok_r(copy, " ,\t", &save); t;
	     t = strtok_r(NULL, " ,\t", &save))
		n++;
	if (n > MAX_PFS)
		return err_set(err, errlen, -EINVAL, "ib_pfs: more than %d PFs",
			       MAX_PFS);
	n = 0;
	snprintf(copy, sizeof(copy), "%s", c->ib_pfs);
	for (char *t = strtok_r(copy, " ,\t", &save); t;
	     t = strtok_r(NULL, " ,\t", &save)) {
		char safe[64];
		int r;

		r = pci_resolve_pf(c->sysfs_root, t, &ret[n]);
		if (r < 0)
			return err_set(err, errlen, -EINVAL,
				       "ib_pfs: '%s' is neither an InfiniBand "
				       "device nor a PCI device under %s",
				       printable(t, safe, sizeof(safe)),
				       c->sysfs_root);
		n++;
	}
	*ret_n = n;
	return 0;
}

static int guid_prefix(const struct vmmd_config *c, uint32_t *ret)
{
	const char *p = c->ib_guid_prefix;
	uint32_t v = 0;

	if (strlen(p) != 4)
		return -EINVAL;
	for (; *p; p++) {
		if (!isxdigit((unsigned char)*p))
			return -EINVAL;
		v = v * 16 +
		    (uint32_t)(isdigit((unsigned char)*p)
				   ? *p - '0'
				   : tolower((unsigned char)*p) - 'a' + 10);
	}
	*ret = v;
	return 0;
}

int devices_housekeeping(const struct vmmd_config *c, struct cpuset *ret)
{
	cpuset_zero(ret);
	return cpuset_parse(c->housekeeping_cpus, ret) < 0 ? -EINVAL : 0;
}

int devices_config_check(const struct vmmd_config *c, char *err, size_t errlen)
{
	struct pci_addr pfs[MAX_PFS];
	struct cpuset hk;
	uint32_t prefix;
	size_t n;
	int r;

	if (devices_housekeeping(c, &hk) < 0)
		return err_set(
		    err, errlen, -EINVAL,
		    "housekeeping_cpus: a CPU list like 0-1,8 (or empty)");
	if (c->ib_guid_prefix[0] && guid_prefix(c, &prefix) < 0)
		return err_set(err, errlen, -EINVAL,
			       "ib_guid_prefix: 4 hex digits, e.g. fa16");
	if ((r = parse_pfs(c, pfs, &n, err, errlen)) < 0)
		return r;
	return 0;
}

/* --- VFs -------------------------------------------------------------- */

static uint64_t job_guid(const struct vmmd_config *c, uint32_t job,
			 uint32_t slot, bool port)
{
	uint32_t prefix = 0;

	guid_prefix(c, &prefix);
	return ((uint64_t)prefix << 48) | ((uint64_t)job << 16) |
	       ((uint64_t)(c->ib_guid_node_id & 0xff) << 8) |
	       ((uint64_t)(slot & 0x7f) << 1) | (port ? 1 : 0);
}

static void grant_add(struct dev_grant *g, const struct pci_addr *a, int numa,
		      const char *what)
{
	g->dev[g->ndevs].addr = *a;
	g->dev[g->ndevs].numa_node = numa;
	g->dev[g->ndevs].what = what;
	g->ndevs++;
}

/* Per-job identity: remember the VF's GUIDs in its lease, then set the
 * job's. */
static int set_identity(const struct vmmd_config *c, const char *dir,
			struct devlease *l, const struct pci_vf *vf,
			uint32_t slot, char *err, size_t errlen)
{
	char a[PCI_ADDR_LEN];
	int r;

	pci_addr_format(&vf->addr, a);
	r = ib_vf_get_guids(c->sysfs_root, vf, &l->node_guid, &l->port_guid);
	if (r < 0)
		return err_set(
		    err, errlen, r,
		    "job %u: ib_guid_prefix is set but VF %s offers no "
		    "per-VF GUIDs (sriov/%u/node): %s",
		    l->job_id, a, vf->index, strerror(-r));
	l->has_guids = true;
	if ((r = devlease_update(dir, l)) < 0 ||
	    (r = ib_vf_set_guids(c->sysfs_root, vf,
				 job_guid(c, l->job_id, slot, false),
				 job_guid(c, l->job_id, slot, true))) < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot set the GUIDs of VF %s: %s",
			       l->job_id, a, strerror(-r));
	return 0;
}

/* 0 taken, 1 held by another job, -errno. */
static int take_vf(const struct vmmd_config *c, const char *dir,
		   const struct pci_vf *vf, uint32_t job, struct dev_grant *g,
		   uint32_t slot, char *err, size_t errlen)
{
	struct devlease l = {.addr = vf->addr,
			     .job_id = job,
			     .kind = DEVLEASE_VF,
			     .pf = vf->pf,
			     .vf_index = vf->index};
	int r = devlease_take(dir, &l, NULL);

	if (r == -EBUSY)
		return 1;
	if (r < 0)
		return err_set(err, errlen, r, "job %u: cannot lease a VF: %s",
			       job, strerror(-r));
	grant_add(g, &vf->addr, vf->numa_node, "IB VF");
	if (c->ib_guid_prefix[0])
		return set_identity(c, dir, &l, vf, slot, err, errlen);
	return 0;
}

static bool vf_local(const struct pci_vf *vf, const struct cpuset *nodes)
{
	return vf->numa_node < 0 || cpuset_has(nodes, (uint32_t)vf->numa_node);
}

/* Every VF of every configured PF; *ret is malloc'ed. */
static int all_vfs(const struct vmmd_config *c, struct pci_vf **ret,
		   size_t *ret_n, char *err, size_t errlen)
{
	struct pci_addr pfs[MAX_PFS];
	_cleanup_free_ struct pci_vf *v = NULL;
	size_t npf, n = 0;
	int r;

	if ((r = parse_pfs(c, pfs, &npf, err, errlen)) < 0)
		return r;
	v = calloc(MAX_PFS * MAX_VFS_PER_PF, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < npf; i++) {
		size_t k = 0;
		r = pci_list_vfs(c->sysfs_root, &pfs[i], v + n, MAX_VFS_PER_PF,
				 &k);
		if (r < 0 && r != -E2BIG)
			return err_set(err, errlen, r,
				       "ib_pfs: cannot list VFs: %s",
				       strerror(-r));
		n += k < MAX_VFS_PER_PF ? k : MAX_VFS_PER_PF;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static int acquire_vfs(const struct vmmd_config *c, const char *dir,
		       const struct dev_request *q, struct dev_grant *g,
		       char *err, size_t errlen)
{
	_cleanup_free_ struct pci_vf *vfs = NULL;
	uint32_t got = 0;
	size_t n = 0;
	int r;

	if (q->ib_vfs == 0)
		return 0;
	if (q->ib_vfs > c->max_ib_vfs)
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: %u InfiniBand VFs asked, at most %u per "
		    "job on node %s",
		    q->job_id, q->ib_vfs, c->max_ib_vfs, c->node_name);
	if ((r = all_vfs(c, &vfs, &n, err, errlen)) < 0)
		return r;
	/* Pass 0 takes VFs on the job's NUMA nodes, pass 1 any. */
	for (int pass = 0; pass < 2 && got < q->ib_vfs; pass++) {
		for (size_t i = 0; i < n && got < q->ib_vfs; i++) {
			if (vf_local(&vfs[i], &q->numa_nodes) != (pass == 0))
				continue;
			if (g->ndevs == DOM_MAX_HOSTDEVS)
				return err_set(err, errlen, -E2BIG,
					       "job %u: too many devices",
					       q->job_id);
			r = take_vf(c, dir, &vfs[i], q->job_id, g, got, err,
				    errlen);
			if (r < 0)
				return r;
			got += r == 0;
		}
	}
	if (got == q->ib_vfs)
		return 0;
	if (n == 0)
		return err_set(
		    err, errlen, -ENODEV,
		    "job %u: asked for %u InfiniBand VFs but node %s "
		    "has none%s",
		    q->job_id, q->ib_vfs, c->node_name,
		    c->ib_pfs[0] ? " (its PFs have no VFs enabled)"
				 : " (ib_pfs is not set)");
	return err_set(err, errlen, -EBUSY,
		       "job %u: asked for %u InfiniBand VFs but only %u of the "
		       "%zu on node %s are free",
		       q->job_id, q->ib_vfs, got, n, c->node_name);
}

/* --- GPUs ------------------------------------------------------------- */

static int node_gpu_files(const struct vmmd_config *c, struct gres_gpus *ret,
			  uint32_t job, char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	char why[256];
	int r = read_file_limited(c->gres_conf, 1 << 20, &text, NULL);

	if (r == -ENOENT) {
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	if (r < 0)
		return err_set(err, errlen, r, "job %u: %s: %s", job,
			       c->gres_conf, strerror(-r));
	if ((r = gres_conf_gpus(text, c->node_name, ret, why, sizeof(why))) < 0)
		return err_set(err, errlen, r, "job %u: %s: %s", job,
			       c->gres_conf, why);
	return 0;
}

/* Leases one PCI function of the job's GPU. */
static int take_gpu(const char *dir, const struct vmmd_config *c, uint32_t job,
		    const struct pci_addr *a, const char *file,
		    struct dev_grant *g, char *err, size_t errlen)
{
	struct devlease l = {.addr = *a, .job_id = job, .kind = DEVLEASE_GPU};
	struct devlease holder;
	char s[PCI_ADDR_LEN];
	int numa, r;

	pci_addr_format(a, s);
	if (g->ndevs == DOM_MAX_HOSTDEVS)
		return err_set(err, errlen, -E2BIG, "job %u: too many devices",
			       job);
	r = devlease_take(dir, &l, &holder);
	if (r == -EBUSY)
		return err_set(
		    err, errlen, -EBUSY,
		    "job %u: GPU %s (%s) on node %s is held by job %u", job, s,
		    file, c->node_name, holder.job_id);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot lease GPU %s: %s", job, s,
			       strerror(-r));
	if (pci_numa_node(c->sysfs_root, a, &numa) < 0)
		numa = -1;
	grant_add(g, a, numa, "GPU");
	return 0;
}

static int acquire_gpus(const struct vmmd_config *c, const char *dir,
			const struct dev_request *q, struct dev_grant *g,
			char *err, size_t errlen)
{
	struct gres_gpus *files = NULL;
	struct cpuset idx;
	char why[256], list[256];
	int r;

	if ((r = gres_detail_gpus(q->gres, &idx, why, sizeof(why))) < 0)
		return err_set(err, errlen, r, "job %u: %s", q->job_id, why);
	if (cpuset_empty(&idx))
		return 0;
	cpuset_format(&idx, list, sizeof(list));
	files = malloc(sizeof(*files));
	if (!files)
		return -ENOMEM;
	r = node_gpu_files(c, files, q->job_id, err, errlen);
	if (r == 0 && files->n == 0)
		r = err_set(err, errlen, -ENODEV,
			    "job %u: Slurm allocated GPUs %s on node %s but %s "
			    "lists no GPUs for it",
			    q->job_id, list, c->node_name, c->gres_conf);
	for (int i = cpuset_next(&idx, -1); r == 0 && i >= 0;
	     i = cpuset_next(&idx, i)) {
		struct pci_addr fn[MAX_GPU_FUNCS];
		size_t nfn = 0;
		const char *file;

		if ((uint32_t)i >= files->n) {
			r = err_set(
			    err, errlen, -ENODEV,
			    "job %u: GPU index %d is not in %s for node "
			    "%s",
			    q->job_id, i, c->gres_conf, c->node_name);
			break;
		}
		file = files->file[i];
		r = pci_from_devfile(c->sysfs_root, c->proc_root, file, fn,
				     MAX_GPU_FUNCS, &nfn);
		if (r < 0) {
			r = err_set(err, errlen, r,
				    "job %u: GPU %s: no PCI device found (%s)",
				    q->job_id, file, strerror(-r));
			break;
		}
		for (size_t k = 0; r == 0 && k < nfn; k++)
			r = take_gpu(dir, c, q->job_id, &fn[k], file, g, err,
				     errlen);
	}
	free(files);
	return r;
}

/* --- the job's whole share -------------------------------------------- */

int devices_acquire(const struct vmmd_config *c, const struct dev_request *q,
		    struct dev_grant *ret, char *err, size_t errlen)
{
	char dir[VMENV_MAX_PATH], why[256];
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = devices_lease_dir(c, dir, sizeof(dir))) < 0)
		return r;
	/* Leases of an earlier start of this job id are stale. */
	devices_release(c, q->job_id, why, sizeof(why));
	r = acquire_gpus(c, dir, q, ret, err, errlen);
	if (r == 0)
		r = acquire_vfs(c, dir, q, ret, err, errlen);
	if (r < 0) {
		devices_release(c, q->job_id, why, sizeof(why));
		memset(ret, 0, sizeof(*ret));
	}
	return r;
}

/* Puts a VF's own GUIDs back, then drops the lease. */
static int release_one(const struct vmmd_config *c, const char *dir,
		       const struct devlease *l, char *err, size_t errlen)
{
	struct pci_vf vf = {.addr = l->addr, .pf = l->pf, .index = l->vf_index};
	char a[PCI_ADDR_LEN];
	int r = 0;

	pci_addr_format(&l->addr, a);
	if (l->kind == DEVLEASE_VF && l->has_guids &&
	    (r = ib_vf_set_guids(c->sysfs_root, &vf, l->node_guid,
				 l->port_guid)) < 0)
		err_set(err, errlen, r,
			"job %u: VF %s: cannot restore GUIDs: %s", l->job_id, a,
			strerror(-r));
	if (devlease_drop(dir, &l->addr, l->job_id) < 0)
		r = err_set(err, errlen, -EIO,
			    "job %u: cannot drop lease of %s", l->job_id, a);
	return r;
}

int devices_release(const struct vmmd_config *c, uint32_t job_id, char *err,
		    size_t errlen)
{
	_cleanup_free_ struct devlease *v = NULL;
	char dir[VMENV_MAX_PATH];
	size_t n = 0;
	int count = 0;

	if (devices_lease_dir(c, dir, sizeof(dir)) < 0 ||
	    devlease_list(dir, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].job_id != job_id)
			continue;
		release_one(c, dir, &v[i], err, errlen);
		count++;
	}
	return count;
}

int devices_sweep(const struct vmmd_config *c,
		  bool (*alive)(uint32_t job_id, void *data), void *data)
{
	_cleanup_free_ struct devlease *v = NULL;
	char dir[VMENV_MAX_PATH], why[256];
	size_t n = 0;
	int count = 0;

	if (devices_lease_dir(c, dir, sizeof(dir)) < 0 ||
	    devlease_list(dir, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].job_id && alive(v[i].job_id, data))
			continue;
		release_one(c, dir, &v[i], why, sizeof(why));
		count++;
	}
	return count;
}
