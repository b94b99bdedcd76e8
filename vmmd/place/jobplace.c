/* SPDX-License-Identifier: MIT */
#include "jobplace.h"

#include "cleanup.h"
#include "devices.h"
#include "hostinfo.h"
#include "log.h"
#include "placement.h"
#include "vmmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The job's Linux CPUs from Slurm's core indices. */
static int job_cpus(struct job *j, const struct host_topo *t,
		    const struct slurmjob_info *si, struct cpuset *ret,
		    char *err, size_t errlen)
{
	const struct vmmd_config *c = &j->d->cfg;
	struct cpuset ids;
	char why[256];
	int r;

	if (!si->cpu_ids[0] || cpuset_parse(si->cpu_ids, &ids) < 0 ||
	    cpuset_empty(&ids))
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: Slurm did not say which CPUs of node %s "
		    "the job has ('%.64s')",
		    j->id, c->node_name, si->cpu_ids);
	r = hostinfo_slurm_cpus(t, &ids, si->node_cores, ret, why, sizeof(why));
	if (r < 0)
		return err_set(err, errlen, r, "job %u: node %s: %s", j->id,
			       c->node_name, why);
	if (cpuset_count(ret) > c->max_vcpus)
		return err_set(err, errlen, -E2BIG,
			       "job %u: %u CPUs on node %s exceed max_vcpus %u",
			       j->id, cpuset_count(ret), c->node_name,
			       c->max_vcpus);
	return 0;
}

static void numa_nodes(const struct host_topo *t, const struct cpuset *cpus,
		       struct cpuset *ret)
{
	cpuset_zero(ret);
	for (int c = cpuset_next(cpus, -1); c >= 0; c = cpuset_next(cpus, c))
		cpuset_set(ret, t->cpu[c].node);
}

static int build(struct job *j, const struct host_topo *t,
		 const struct place_req *q, struct dom_placement **ret,
		 char *err, size_t errlen)
{
	_cleanup_free_ struct dom_placement *p = malloc(sizeof(*p));
	char note[512], cpus[256];
	int r;

	if (!p)
		return -ENOMEM;
	r = placement_build(t, q, p, note, sizeof(note), err, errlen);
	if (r < 0)
		return r;
	if (note[0])
		log_notice("job %u: %s", j->id, note);
	j->vcpus = p->nvcpus;
	j->mem_mib = placement_mem_mib(p);
	if (cpuset_format(&q->cpus, cpus, sizeof(cpus)) < 0)
		snprintf(cpus, sizeof(cpus), "...");
	log_info("job %u: %u vCPUs on CPUs %s (%ux%ux%u), %u NUMA cells, "
		 "%u MiB%s, %u devices",
		 j->id, p->nvcpus, cpus, p->sockets, p->cores, p->threads,
		 p->ncells, j->mem_mib, p->hugepage_kib ? " in hugepages" : "",
		 p->ndevs);
	*ret = TAKE_PTR(p);
	return 0;
}

static uint32_t hugepage_kib(uint32_t hp)
{
	switch (hp) {
	case VMSPEC_HP_2M:
		return 2048;
	case VMSPEC_HP_1G:
		return 1048576;
	default:
		return 0;
	}
}

/* QEMU's other threads: on the job's CPUs (empty set) or the node's
 * housekeeping CPUs, as the spec says. */
static int emulator_set(struct job *j, const struct vmspec_values *spec,
			struct cpuset *ret, char *err, size_t errlen)
{
	const struct vmmd_config *c = &j->d->cfg;

	cpuset_zero(ret);
	if (spec->emulator_threads != VMSPEC_EMU_HOUSEKEEPING)
		return 0;
	if (devices_housekeeping(c, ret) < 0 || cpuset_empty(ret))
		return err_set(err, errlen, -EINVAL,
			       "job %u: its spec puts QEMU's threads on "
			       "housekeeping CPUs but node %s has none "
			       "(housekeeping_cpus in vmmd.conf)",
			       j->id, c->node_name);
	return 0;
}

int job_place(struct job *j, const struct slurmjob_info *si,
	      const struct vmspec_values *spec, uint32_t alloc_mib,
	      struct dom_placement **ret, char *err, size_t errlen)
{
	const struct vmmd_config *c = &j->d->cfg;
	_cleanup_free_ struct host_topo *t = malloc(sizeof(*t));
	_cleanup_free_ struct place_req *q = calloc(1, sizeof(*q));
	_cleanup_free_ struct dev_grant *g = malloc(sizeof(*g));
	/* The spec may decline the GPUs Slurm allocated (gpus = false). */
	struct dev_request dq = {.job_id = j->id,
				 .ib_vfs = spec->ib_vfs,
				 .gres = spec->gpus ? si->gres : NULL};
	uint64_t t0 = now_ms();
	char why[512];
	int r;

	if (!t || !q || !g)
		return -ENOMEM;
	if ((r = hostinfo_read(c->sysfs_root, t, why, sizeof(why))) < 0)
		return err_set(err, errlen, r, "job %u: node %s: %s", j->id,
			       c->node_name, why);
	q->job_id = j->id;
	q->node = c->node_name;
	if ((r = job_cpus(j, t, si, &q->cpus, err, errlen)) < 0)
		return r;
	if ((r = emulator_set(j, spec, &q->housekeeping, err, errlen)) < 0)
		return r;
	q->mem_mib = j->mem_mib;
	q->hard_limit_mib = alloc_mib;
	q->hugepage_kib = hugepage_kib(spec->hugepages);
	numa_nodes(t, &q->cpus, &dq.numa_nodes);
	if ((r = devices_acquire(c, &dq, g, err, errlen)) < 0)
		return r;
	q->ndevs = g->ndevs;
	memcpy(q->dev, g->dev, sizeof(g->dev[0]) * g->ndevs);
	r = build(j, t, q, ret, err, errlen);
	if (r < 0)
		job_release_devices(j);
	else
		log_debug("job %u: placement took %llu ms", j->id,
			  (unsigned long long)(now_ms() - t0));
	return r;
}

void job_release_devices(struct job *j)
{
	char why[256] = "";
	int n = devices_release(&j->d->cfg, j->id, why, sizeof(why));

	if (why[0])
		log_err("%s", why);
	if (n > 0)
		log_info("job %u: released %d devices", j->id, n);
}

struct sweep_ctx {
	struct vmmd *d;
	char **domains; /* running guests of this node */
};

/* A job's devices stay while vmmd has the job or its guest still runs
 * (a guest libvirt failed to destroy still holds them). */
static bool job_alive(uint32_t id, void *data)
{
	struct sweep_ctx *s = data;
	char name[sizeof(s->d->domain_prefix) + 16];

	if (job_find(s->d, id))
		return true;
	snprintf(name, sizeof(name), "%s%u", s->d->domain_prefix, id);
	for (char **n = s->domains; n && *n; n++)
		if (strcmp(*n, name) == 0)
			return true;
	return false;
}

void job_sweep_devices(struct vmmd *d)
{
	struct sweep_ctx s = {.d = d};
	int n;

	/* Without the list of running guests nothing can be judged. */
	if (d->hv->list(d->hv_ctx, d->domain_prefix, &s.domains) < 0)
		return;
	n = devices_sweep(&d->cfg, job_alive, &s);
	hv_names_free(s.domains);
	if (n > 0)
		log_warn("reconcile: released %d devices of jobs that are gone",
			 n);
}
