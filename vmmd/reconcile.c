/* SPDX-License-Identifier: MIT */
/*
 * Nothing may leak, even when vmmd, libvirtd or the epilog failed: this
 * compares libvirt's domains, vmmd's job directories and Slurm's running
 * jobs, and removes whatever belongs to no running job.
 */
#include "job.h"

#include "cleanup.h"
#include "image.h"
#include "jobfiles.h"
#include "jobnet_host.h"
#include "jobplace.h"
#include "log.h"
#include "ovkeep.h"
#include "rmtree.h"
#include "warm.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whose guest a domain is: the job in its metadata when it names this
 * node (a restored guest keeps its saved name, maybe another job's or
 * another node's: docs/checkpoint.md), else the job in a name with this
 * node's prefix (a domain without metadata). -EXDEV: another node's;
 * libvirt not answering: not judged now (a restored guest must not be
 * taken for its name's job). */
static int domain_job_id(struct vmmd *d, const char *name, uint32_t *id)
{
	size_t plen = strlen(d->domain_prefix);
	char node[sizeof(d->cfg.node_name)];
	int r = d->hv->owner
		    ? d->hv->owner(d->hv_ctx, name, id, node, sizeof(node))
		    : -ENODATA;

	if (r == 0)
		return strcmp(node, d->cfg.node_name) == 0 ? 0 : -EXDEV;
	if (r != -ENODATA)
		return r;
	if (strncmp(name, d->domain_prefix, plen) != 0)
		return -EINVAL;
	return parse_u32(name + plen, id);
}

static void destroy_stray(struct vmmd *d, const char *name)
{
	char why[512] = "";

	log_warn("reconcile: destroying guest %s that belongs to no job", name);
	if (d->hv->destroy(d->hv_ctx, name, why, sizeof(why)) < 0)
		log_err("reconcile: %s", why);
}

static void sweep_domains(struct vmmd *d, bool adopt)
{
	char **names = NULL;
	uint32_t id;

	/* Every vmenv guest: a restored one may carry another node's name. */
	if (d->hv->list(d->hv_ctx, "vmenv-", &names) < 0) {
		log_warn("reconcile: cannot list guests");
		return;
	}
	for (char **n = names; *n; n++) {
		/* A template guest is being made, or an earlier vmmd's. */
		if (warm_template_domain(d, *n)) {
			if (!warm_owns_domain(d, *n))
				destroy_stray(d, *n);
			continue;
		}
		if (job_find_domain(d, *n) || domain_job_id(d, *n, &id) < 0 ||
		    job_find(d, id))
			continue;
		if (adopt && job_restore(d, id) == 0)
			continue;
		destroy_stray(d, *n);
	}
	hv_names_free(names);
}

static void sweep_dirs(struct vmmd *d)
{
	char path[VMENV_MAX_PATH + 16];
	DIR *dir;
	struct dirent *e;
	uint32_t id;

	snprintf(path, sizeof(path), "%s/jobs", d->cfg.run_dir);
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.' || parse_u32(e->d_name, &id) < 0 ||
		    job_find(d, id))
			continue;
		char sub[VMENV_MAX_PATH + 32];
		if (str_printf(sub, sizeof(sub), "%s/%s", path, e->d_name) < 0)
			continue;
		log_warn("reconcile: removing leftover %s", sub);
		jobfiles_reap_dir(sub);
		rm_rf(sub);
	}
	closedir(dir);
}

/* Jobs that Slurm no longer runs here lost their epilog (vmmd was down, or
 * the epilog failed): stop them now. */
static void sweep_jobs(struct vmmd *d)
{
	struct job *j = d->jobs, *next;

	for (; j; j = next) {
		struct slurmjob_info si;
		char why[256];
		int r;

		next = j->next;
		r = d->slurm_lookup(j->id, d->cfg.node_name, &si, why,
				    sizeof(why));
		if (r < 0 && r != -ENOENT)
			continue; /* slurmctld unreachable: try later */
		if (r == 0 && si.active && si.on_node)
			continue;
		log_warn("reconcile: job %u no longer runs on %s; removing "
			 "its guest",
			 j->id, d->cfg.node_name);
		job_stop(d, j->id);
	}
}

/* Delays of the checks after a step ended, in ms from the end: the last
 * step of an srun-made job is followed within about a second by the job's
 * completion in slurmctld. After these, the periodic reconcile takes over. */
static const uint32_t watch_delays_ms[] = {500, 1500, 4000, 10000};

struct end_watch {
	struct vmmd *d;
	uint32_t job_id;
	size_t n;
};

static void end_watch_tick(void *data)
{
	struct end_watch *w = data;
	struct slurmjob_info si;
	char why[256];
	int r;

	if (!job_find(w->d, w->job_id))
		goto done;
	r = w->d->slurm_lookup(w->job_id, w->d->cfg.node_name, &si, why,
			       sizeof(why));
	if (r == -ENOENT || (r == 0 && (si.ending || !si.on_node))) {
		log_info("job %u: over on %s; removing its guest", w->job_id,
			 w->d->cfg.node_name);
		job_stop(w->d, w->job_id);
		goto done;
	}
	if (++w->n < ARRAY_SIZE(watch_delays_ms) &&
	    loop_add_timer(w->d->loop,
			   watch_delays_ms[w->n] - watch_delays_ms[w->n - 1],
			   end_watch_tick, w))
		return;
done:
	free(w);
}

void job_watch_end(struct vmmd *d, uint32_t id)
{
	struct end_watch *w;

	if (!job_find(d, id))
		return;
	w = calloc(1, sizeof(*w));
	if (!w)
		return;
	*w = (struct end_watch){d, id, 0};
	if (!loop_add_timer(d->loop, watch_delays_ms[0], end_watch_tick, w))
		free(w);
}

static bool job_known(void *data, uint32_t id)
{
	return job_find(data, id) != NULL;
}

/* Image leases of this node's jobs that are gone (vmmd was down when they
 * ended): the images may be evicted again. */
static void sweep_leases(struct vmmd *d)
{
	int n;

	if (!d->images)
		return;
	n = imgcache_lease_sweep(images_cache(d), d->cfg.node_name, job_known,
				 d);
	if (n > 0)
		log_warn("reconcile: dropped %d image lease(s) of ended jobs",
			 n);
}

void job_reconcile(struct vmmd *d, bool at_start)
{
	sweep_domains(d, at_start);
	if (!at_start)
		sweep_jobs(d);
	sweep_dirs(d);
	/* After the guests: a device goes back only once no guest of its
	 * job runs. */
	job_sweep_devices(d);
	sweep_leases(d);
	/* After the guests: their taps are gone with them. */
	jobnet_host_sweep(d);
	console_keep_sweep(&d->console_ended, &d->cfg, at_start);
	ovkeep_sweep(d);
	warm_sweep(d);
}
