/* SPDX-License-Identifier: MIT */
#include "hostinfo.h"

#include "cleanup.h"
#include "sysfs.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t hp_kib[HOST_HP_N] = {
    [HOST_HP_2M] = 2048, [HOST_HP_1G] = 1048576};

uint32_t hostinfo_hp_kib(enum host_hp hp)
{
	return hp_kib[hp];
}

int hostinfo_hp_from_kib(uint32_t kib, enum host_hp *ret)
{
	for (int i = 0; i < HOST_HP_N; i++) {
		if (hp_kib[i] == kib) {
			*ret = (enum host_hp)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int read_cpus(const char *root, struct host_topo *t, char *err,
		     size_t errlen)
{
	char rel[128];
	uint64_t v;
	int r =
	    sysfs_read_cpuset(root, "devices/system/cpu/online", &t->online);

	if (r < 0)
		return err_set(err, errlen, r,
			       "%s/devices/system/cpu/online: %s", root,
			       r == -ERANGE ? "a CPU number beyond vmmd's limit"
					    : strerror(-r));
	for (int c = cpuset_next(&t->online, -1); c >= 0;
	     c = cpuset_next(&t->online, c)) {
		snprintf(
		    rel, sizeof(rel),
		    "devices/system/cpu/cpu%d/topology/physical_package_id", c);
		if ((r = sysfs_read_u64(root, rel, &v)) < 0)
			return err_set(err, errlen, r, "%s/%s: %s", root, rel,
				       strerror(-r));
		t->cpu[c].package = (uint32_t)v;
		snprintf(rel, sizeof(rel),
			 "devices/system/cpu/cpu%d/topology/core_id", c);
		if ((r = sysfs_read_u64(root, rel, &v)) < 0)
			return err_set(err, errlen, r, "%s/%s: %s", root, rel,
				       strerror(-r));
		t->cpu[c].core = (uint32_t)v;
	}
	return 0;
}

/* "Node 0 MemTotal:  123 kB" */
static uint64_t meminfo_kib(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static int read_node_mem(const char *root, uint32_t n, struct host_node *nd)
{
	_cleanup_free_ char *text = NULL;
	char rel[160];
	uint64_t v;
	int r;

	snprintf(rel, sizeof(rel), "devices/system/node/node%u/meminfo", n);
	if ((r = sysfs_read_text(root, rel, 1 << 16, &text)) < 0)
		return r;
	nd->mem_total_kib = meminfo_kib(text, "MemTotal:");
	nd->mem_free_kib = meminfo_kib(text, "MemFree:");
	for (int hp = 0; hp < HOST_HP_N; hp++) {
		snprintf(rel, sizeof(rel),
			 "devices/system/node/node%u/hugepages/"
			 "hugepages-%ukB/nr_hugepages",
			 n, hp_kib[hp]);
		nd->hp_total[hp] = sysfs_read_u64(root, rel, &v) == 0 ? v : 0;
		snprintf(rel, sizeof(rel),
			 "devices/system/node/node%u/hugepages/"
			 "hugepages-%ukB/free_hugepages",
			 n, hp_kib[hp]);
		nd->hp_free[hp] = sysfs_read_u64(root, rel, &v) == 0 ? v : 0;
	}
	return 0;
}

static int read_nodes(const char *root, struct host_topo *t, char *err,
		      size_t errlen)
{
	char rel[160];
	int r =
	    sysfs_read_cpuset(root, "devices/system/node/online", &t->nodes);

	if (r == -ENOENT) {
		/* No NUMA in this kernel: one node with everything. */
		cpuset_set(&t->nodes, 0);
		t->node[0].cpus = t->online;
		return 0;
	}
	if (r < 0)
		return err_set(err, errlen, r,
			       "%s/devices/system/node/online: %s", root,
			       strerror(-r));
	for (int n = cpuset_next(&t->nodes, -1); n >= 0;
	     n = cpuset_next(&t->nodes, n)) {
		if (n >= HOST_MAX_NODES)
			return err_set(
			    err, errlen, -ERANGE,
			    "%s: NUMA node %d beyond vmmd's limit of "
			    "%d",
			    root, n, HOST_MAX_NODES);
		snprintf(rel, sizeof(rel), "devices/system/node/node%d/cpulist",
			 n);
		if ((r = sysfs_read_cpuset(root, rel, &t->node[n].cpus)) < 0)
			return err_set(err, errlen, r, "%s/%s: %s", root, rel,
				       strerror(-r));
		cpuset_and(&t->node[n].cpus, &t->online);
		for (int c = cpuset_next(&t->node[n].cpus, -1); c >= 0;
		     c = cpuset_next(&t->node[n].cpus, c))
			t->cpu[c].node = (uint32_t)n;
		if ((r = read_node_mem(root, (uint32_t)n, &t->node[n])) < 0)
			return err_set(err, errlen, r, "%s: node%d/meminfo: %s",
				       root, n, strerror(-r));
	}
	return 0;
}

int hostinfo_read(const char *sysfs_root, struct host_topo *ret, char *err,
		  size_t errlen)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = read_cpus(sysfs_root, ret, err, errlen)) < 0 ||
	    (r = read_nodes(sysfs_root, ret, err, errlen)) < 0)
		return r;
	return 0;
}

void hostinfo_core_siblings(const struct host_topo *t, uint32_t cpu,
			    struct cpuset *ret)
{
	cpuset_zero(ret);
	for (int c = cpuset_next(&t->online, -1); c >= 0;
	     c = cpuset_next(&t->online, c))
		if (t->cpu[c].package == t->cpu[cpu].package &&
		    t->cpu[c].core == t->cpu[cpu].core)
			cpuset_set(ret, (uint32_t)c);
}

/* Sort keys: the first CPU of the package and of the core. */
struct okey {
	uint32_t cpu, pkg_first, core_first;
};

static int okey_cmp(const void *a, const void *b)
{
	const struct okey *x = a, *y = b;

	if (x->pkg_first != y->pkg_first)
		return x->pkg_first < y->pkg_first ? -1 : 1;
	if (x->core_first != y->core_first)
		return x->core_first < y->core_first ? -1 : 1;
	return x->cpu < y->cpu ? -1 : x->cpu > y->cpu;
}

static uint32_t first_of(const struct host_topo *t, uint32_t cpu, bool core)
{
	for (int c = cpuset_next(&t->online, -1); c >= 0;
	     c = cpuset_next(&t->online, c))
		if (t->cpu[c].package == t->cpu[cpu].package &&
		    (!core || t->cpu[c].core == t->cpu[cpu].core))
			return (uint32_t)c;
	return cpu;
}

uint32_t hostinfo_order(const struct host_topo *t, const struct cpuset *cpus,
			uint32_t *ret, uint32_t max)
{
	struct okey k[CPUSET_MAX];
	uint32_t n = 0;

	for (int c = cpuset_next(cpus, -1); c >= 0 && n < CPUSET_MAX;
	     c = cpuset_next(cpus, c)) {
		if (!cpuset_has(&t->online, (uint32_t)c))
			continue;
		k[n].cpu = (uint32_t)c;
		k[n].pkg_first = first_of(t, (uint32_t)c, false);
		k[n].core_first = first_of(t, (uint32_t)c, true);
		n++;
	}
	qsort(k, n, sizeof(k[0]), okey_cmp);
	for (uint32_t i = 0; i < n && i < max; i++)
		ret[i] = k[i].cpu;
	return n < max ? n : max;
}

int hostinfo_slurm_cpus(const struct host_topo *t, const struct cpuset *ids,
			uint32_t slurm_cores, struct cpuset *ret, char *err,
			size_t errlen)
{
	uint32_t order[CPUSET_MAX];
	uint32_t core_of[CPUSET_MAX]; /* core index of order[i] */
	uint32_t n = hostinfo_order(t, &t->online, order, CPUSET_MAX);
	uint32_t ncores = 0, k;
	int last;

	for (uint32_t i = 0; i < n; i++) {
		if (i == 0 || first_of(t, order[i], true) !=
				  first_of(t, order[i - 1], true))
			ncores++;
		core_of[i] = ncores - 1;
	}
	last = cpuset_next(ids, -1);
	for (int c = last; c >= 0; c = cpuset_next(ids, c))
		last = c;
	if (slurm_cores != ncores && slurm_cores != n)
		return err_set(
		    err, errlen, -EINVAL,
		    "Slurm describes this node with %u cores but the "
		    "host has %u cores (%u CPUs); make NodeName in "
		    "slurm.conf match the hardware",
		    slurm_cores, ncores, n);
	if (last >= 0 && (uint32_t)last >= slurm_cores)
		return err_set(err, errlen, -EINVAL,
			       "Slurm allocated core index %d of only %u", last,
			       slurm_cores);
	cpuset_zero(ret);
	for (uint32_t i = 0; i < n; i++) {
		k = slurm_cores == ncores ? core_of[i] : i;
		if (cpuset_has(ids, k))
			cpuset_set(ret, order[i]);
	}
	return 0;
}
