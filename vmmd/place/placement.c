/* SPDX-License-Identifier: MIT */
#include "placement.h"

#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int check_cpus(const struct host_topo *t, const struct place_req *q,
		      char *err, size_t errlen)
{
	struct cpuset off;
	char list[256];

	if (cpuset_empty(&q->cpus))
		return err_set(err, errlen, -EINVAL,
			       "job %u: Slurm allocated no CPUs on node %s",
			       q->job_id, q->node);
	for (int i = 0; i < 2; i++) {
		off = i ? q->housekeeping : q->cpus;
		for (int c = cpuset_next(&t->online, -1); c >= 0;
		     c = cpuset_next(&t->online, c))
			off.w[c / 64] &= ~(1ull << (c % 64));
		if (cpuset_empty(&off))
			continue;
		cpuset_format(&off, list, sizeof(list));
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s CPUs %s are not online on node %s",
			       q->job_id, i ? "housekeeping" : "allocated",
			       list, q->node);
	}
	return 0;
}

/* Same package and core as the previous CPU in topology order? */
static bool same_core(const struct host_topo *t, uint32_t a, uint32_t b)
{
	return t->cpu[a].package == t->cpu[b].package &&
	       t->cpu[a].core == t->cpu[b].core;
}

/* sockets x cores x threads of the ordered pins when every package has
 * as many cores and every core as many threads; otherwise one socket
 * (keeping threads when they are uniform), which loses only the socket
 * boundaries. */
static void topology(const struct host_topo *t, struct dom_placement *p)
{
	uint32_t pkgs = 0, cores = 0, threads = 0, run_t = 0, run_c = 0;
	uint32_t pkg_cores = 0;
	bool uniform_t = true, uniform_c = true;

	for (uint32_t i = 0; i < p->nvcpus; i++) {
		uint32_t c = p->pin[i], prev = i ? p->pin[i - 1] : c;
		bool new_pkg = !i || t->cpu[c].package != t->cpu[prev].package;
		bool new_core = new_pkg || !same_core(t, c, prev);

		if (new_core && i) {
			uniform_t &= !threads || run_t == threads;
			threads = threads ? threads : run_t;
			run_t = 0;
		}
		if (new_pkg && i) {
			uniform_c &= !pkg_cores || run_c == pkg_cores;
			pkg_cores = pkg_cores ? pkg_cores : run_c;
			run_c = 0;
		}
		pkgs += new_pkg;
		cores += new_core;
		run_c += new_core;
		run_t++;
	}
	uniform_t &= !threads || run_t == threads;
	threads = threads ? threads : run_t;
	uniform_c &= !pkg_cores || run_c == pkg_cores;
	if (uniform_t && uniform_c) {
		p->sockets = pkgs;
		p->cores = cores / pkgs;
		p->threads = threads;
	} else {
		p->sockets = 1;
		p->threads = uniform_t ? threads : 1;
		p->cores = p->nvcpus / p->threads;
	}
}

static void make_cells(const struct host_topo *t, struct dom_placement *p)
{
	for (int n = cpuset_next(&t->nodes, -1); n >= 0;
	     n = cpuset_next(&t->nodes, n)) {
		struct dom_cell *c = &p->cell[p->ncells];

		memset(c, 0, sizeof(*c));
		c->host_node = (uint32_t)n;
		for (uint32_t i = 0; i < p->nvcpus; i++)
			if (t->cpu[p->pin[i]].node == (uint32_t)n)
				cpuset_set(&c->vcpus, i);
		if (!cpuset_empty(&c->vcpus) && p->ncells < DOM_MAX_CELLS)
			p->ncells++;
	}
}

static uint32_t cells_vcpus(const struct dom_placement *p)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->ncells; i++)
		n += cpuset_count(&p->cell[i].vcpus);
	return n;
}

/* Splits mem_mib over the cells in proportion to their vCPUs, in whole
 * units (a hugepage, or 1 MiB); the remainder goes one unit at a time to
 * the first cells. 0, or -EINVAL when not even one unit fits. */
static int split_mem(struct dom_placement *p, uint32_t mem_mib,
		     uint32_t unit_mib)
{
	uint64_t units = mem_mib / unit_mib, given = 0;

	if (units == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < p->ncells; i++) {
		uint64_t u =
		    units * cpuset_count(&p->cell[i].vcpus) / p->nvcpus;
		p->cell[i].mem_mib = (uint32_t)(u * unit_mib);
		given += u;
	}
	for (uint32_t i = 0; given < units; i = (i + 1) % p->ncells, given++)
		p->cell[i].mem_mib += unit_mib;
	return 0;
}

static int check_hugepages(const struct host_topo *t, const struct place_req *q,
			   const struct dom_placement *p, char *err,
			   size_t errlen)
{
	enum host_hp hp;

	if (hostinfo_hp_from_kib(q->hugepage_kib, &hp) < 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: hugepages of %u KiB are not supported "
			       "(2048 or 1048576)",
			       q->job_id, q->hugepage_kib);
	for (uint32_t i = 0; i < p->ncells; i++) {
		const struct dom_cell *c = &p->cell[i];
		uint64_t need = (uint64_t)c->mem_mib * 1024 / q->hugepage_kib;
		uint64_t have = t->node[c->host_node].hp_free[hp];

		if (need > have)
			return err_set(
			    err, errlen, -ENOMEM,
			    "job %u: the guest needs %llu hugepages of "
			    "%u KiB on NUMA node %u but node %s has %llu "
			    "free there",
			    q->job_id, (unsigned long long)need,
			    q->hugepage_kib, c->host_node, q->node,
			    (unsigned long long)have);
	}
	return 0;
}

static int guest_cell_of(const struct dom_placement *p, int host_node)
{
	for (uint32_t i = 0; i < p->ncells; i++)
		if (host_node >= 0 &&
		    p->cell[i].host_node == (uint32_t)host_node)
			return (int)i;
	return -1;
}

static void place_devices(const struct place_req *q, struct dom_placement *p,
			  char *note, size_t notelen)
{
	size_t o = 0;

	for (uint32_t i = 0; i < q->ndevs && i < DOM_MAX_HOSTDEVS; i++) {
		const struct place_dev *d = &q->dev[i];
		int cell = guest_cell_of(p, d->numa_node);
		char a[PCI_ADDR_LEN];

		p->dev[p->ndevs].host = d->addr;
		/* One cell needs no expander bus: everything is local. */
		p->dev[p->ndevs++].cell = p->ncells > 1 ? cell : -1;
		if (cell >= 0 || d->numa_node < 0 || o >= notelen)
			continue;
		pci_addr_format(&d->addr, a);
		o += (size_t)snprintf(note + o, notelen - o,
				      "%s%s %s is on NUMA node %d, where the "
				      "job has no CPUs",
				      o ? "; " : "", d->what, a, d->numa_node);
	}
}

int placement_build(const struct host_topo *t, const struct place_req *q,
		    struct dom_placement *ret, char *note, size_t notelen,
		    char *err, size_t errlen)
{
	uint32_t unit = q->hugepage_kib >= 1024 ? q->hugepage_kib / 1024 : 1;
	struct dom_placement *p = ret;
	int r;

	if (notelen)
		note[0] = '\0';
	memset(p, 0, sizeof(*p));
	if ((r = check_cpus(t, q, err, errlen)) < 0)
		return r;
	if (q->hard_limit_mib && q->hard_limit_mib < q->mem_mib)
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: memory limit %u MiB is below the guest's "
		    "%u MiB",
		    q->job_id, q->hard_limit_mib, q->mem_mib);
	{
		uint32_t order[CPUSET_MAX];
		p->nvcpus = hostinfo_order(t, &q->cpus, order, CPUSET_MAX);
		for (uint32_t i = 0; i < p->nvcpus; i++)
			p->pin[i] = (uint16_t)order[i];
	}
	p->emulator =
	    cpuset_empty(&q->housekeeping) ? q->cpus : q->housekeeping;
	topology(t, p);
	make_cells(t, p);
	if (cells_vcpus(p) != p->nvcpus)
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: some allocated CPUs are on no online NUMA "
		    "node of node %s",
		    q->job_id, q->node);
	if (split_mem(p, q->mem_mib, unit) < 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %u MiB for the guest is less than one "
			       "hugepage of %u KiB",
			       q->job_id, q->mem_mib, q->hugepage_kib);
	p->hugepage_kib = q->hugepage_kib;
	if (q->hugepage_kib && (r = check_hugepages(t, q, p, err, errlen)) < 0)
		return r;
	p->hard_limit_mib = q->hard_limit_mib;
	if (q->ndevs > DOM_MAX_HOSTDEVS)
		return err_set(err, errlen, -E2BIG,
			       "job %u: %u devices exceed vmmd's limit of %d",
			       q->job_id, q->ndevs, DOM_MAX_HOSTDEVS);
	place_devices(q, p, note, notelen);
	return 0;
}

uint32_t placement_mem_mib(const struct dom_placement *p)
{
	uint32_t m = 0;

	for (uint32_t i = 0; i < p->ncells; i++)
		m += p->cell[i].mem_mib;
	return m;
}
