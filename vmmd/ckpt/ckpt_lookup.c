/* SPDX-License-Identifier: MIT */
/*
 * Which checkpoint a starting job restores instead of booting: a
 * restarted job's own, another (ended) job's kept one (--vm-restore), or
 * a multi-node job's part of its newest complete group; its directory is
 * held open for the worker. Then whether it fits this allocation (size,
 * image, CPU model, working directory, files). The restore itself is
 * ckpt.c's.
 */
#include "ckpt_priv.h"

#include "ckpt.h"
#include "ckpt_source.h"
#include "hv.h"
#include "jobfiles.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int group_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			    size_t errlen);

/* libvirt restores a domain only under the name it was saved with
 * ("Target domain name ... does not match source"): a job restored on
 * another node keeps its old node's domain name, a --vm-restore job the
 * old job's. Noted here; the job takes it only when its domain is built
 * (ckpt_job_placed): until then a failing job's teardown must not touch a
 * guest of that name, which may be another job's. */
static void saved_name(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	const char *x = c->man.domain_xml;
	const char *p = x ? strstr(x, "<name>") : NULL, *e;
	size_t n;

	snprintf(c->name, sizeof(c->name), "%s", j->domain);
	if (!p || !(e = strstr(p, "</name>")))
		return;
	p += 6;
	n = (size_t)(e - p);
	if (n >= sizeof(c->name) || strncmp(p, "vmenv-", 6) != 0 ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") < n)
		return;
	memcpy(c->name, p, n);
	c->name[n] = '\0';
}

/* The checkpoint opened is the job's own (its manifest's job and user):
 * the job restores it. */
static int restore_own(struct job *j, struct ckpt_job *c, char *err,
		       size_t errlen)
{
	if (c->man.job_id != j->id || c->man.uid != (uint32_t)j->uid)
		return err_set(err, errlen, -EPERM,
			       "job %u: checkpoint %s is not this job's", j->id,
			       c->dir);
	c->job_id = j->id;
	c->restore = true;
	c->keep = c->man.keep;
	return 0;
}

/* A restarted job's own checkpoint: 1 found, 0 none. */
static int own_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			  size_t errlen)
{
	uint32_t seq = 0;
	int r = ckpt_open_store(j, c, false, err, errlen);

	if (r == 0)
		r = ckpt_store_latest(&c->store, j->id, &seq, err, errlen);
	if (r == -ENOENT) {
		log_info("job %u: restart %u without a checkpoint of its own",
			 j->id, j->slurm.restart_count);
		return 0;
	}
	if (r == 0)
		r = ckpt_open_checkpoint(c, j->id, seq, err, errlen);
	if (r < 0)
		return r;
	if ((r = restore_own(j, c, err, errlen)) < 0)
		return r;
	saved_name(j);
	log_info("job %u: restart %u restores checkpoint %u from %s", j->id,
		 j->slurm.restart_count, seq, c->dir);
	return 1;
}

/* libvirt keeps the saved name: a guest restored from the same kept
 * checkpoint by another job (or the old job's guest) may run already. */
static bool domain_taken(struct job *j)
{
	return hv_domain_runs(j->d->hv, j->d->hv_ctx, j->ckpt->name) == 1;
}

/* --vm-restore: another (ended) job's kept checkpoint. 1 found, 0 boot. */
static int other_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			    size_t errlen)
{
	struct ckpt_source s = {
	    .store = &c->store,
	    .job_id = j->id,
	    .uid = (uint32_t)j->uid,
	    .from = j->spec.v.restore_from,
	};
	int r =
	    c->store.fd >= 0 ? 0 : ckpt_open_store(j, c, false, err, errlen);

	/* A store that does not exist holds no checkpoint (said so). */
	if (r == 0 || r == -ENOENT)
		r = ckpt_source_find(j->d, &s, &c->dirfd, c->dir,
				     sizeof(c->dir), &c->man, err, errlen);

	/* Restored once already (and not kept): a later restart of this
	 * job boots, like a requeued job without a checkpoint. */
	if (r == -ENOENT && j->slurm.restart_count > 0) {
		log_info("%s; restart %u boots", err, j->slurm.restart_count);
		return 0;
	}
	if (r < 0)
		return r;
	c->job_id = s.from;
	c->restore = true;
	c->keep = c->man.keep;
	saved_name(j);
	if (domain_taken(j))
		return err_set(
		    err, errlen, -EEXIST,
		    "job %u: --vm-restore=%u: the guest of checkpoint "
		    "%s (%s) already runs on node %s",
		    j->id, s.from, c->dir, c->name, j->d->cfg.node_name);
	log_notice("job %u: restores job %u's checkpoint %u from %s", j->id,
		   s.from, c->man.seq, c->dir);
	return 1;
}

int ckpt_job_lookup(struct job *j, char *err, size_t errlen)
{
	uint32_t from = j->spec.v.restore_from;
	bool own = j->spec.v.checkpoint && j->slurm.restart_count > 0;
	struct ckpt_job *c;
	int r;

	/* Said at the start, not found out at the first checkpoint. */
	if (j->slurm.nnodes > 1 && j->spec.v.checkpoint &&
	    j->spec.v.checkpoint_dir[0])
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: --vm-checkpoint-dir=%s: a job of %u "
			       "nodes is checkpointed into the nodes' shared "
			       "store (%s) only; submit it without that option",
			       j->id, j->spec.v.checkpoint_dir, j->slurm.nnodes,
			       j->d->cfg.checkpoint_dir);
	if (j->slurm.nnodes > 1 && from)
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: --vm-restore=%u: a job of %u nodes "
			       "cannot restore another job's checkpoint (not "
			       "supported yet)",
			       j->id, from, j->slurm.nnodes);
	if (j->slurm.nnodes > 1) {
		if (!own)
			return 0;
		if (!(c = ckpt_cj(j)))
			return -ENOMEM;
		return group_checkpoint(j, c, err, errlen);
	}
	if (!own && !from)
		return 0;
	if (!(c = ckpt_cj(j)))
		return -ENOMEM;
	if (own && (r = own_checkpoint(j, c, err, errlen)) != 0)
		return r;
	return from ? other_checkpoint(j, c, err, errlen) : 0;
}

/* "checkpoint DIR", or "job 42's checkpoint DIR" (--vm-restore). */
const char *ckpt_label(const struct job *j, char *buf, size_t len)
{
	const struct ckpt_job *c = j->ckpt;

	if (c->job_id == j->id)
		str_printf(buf, len, "checkpoint %s", c->dir);
	else
		str_printf(buf, len, "job %u's checkpoint %s", c->job_id,
			   c->dir);
	return buf;
}

int ckpt_job_check(struct job *j, char *err, size_t errlen)
{
	const struct ckpt_manifest *m;
	char why[256] = "", what[VMENV_MAX_PATH + 32];
	int r;

	if (!ckpt_job_restoring(j))
		return 0;
	m = &j->ckpt->man;
	ckpt_label(j, what, sizeof(what));
	if (m->vcpus != j->vcpus || m->mem_mib != j->mem_mib)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s holds a guest of %u vCPUs "
			       "and %u MiB, but this allocation gives %u vCPUs "
			       "and %u MiB on node %s",
			       j->id, what, m->vcpus, m->mem_mib, j->vcpus,
			       j->mem_mib, j->d->cfg.node_name);
	if (strcmp(m->image, j->image) != 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s is of image '%s', not '%s'", j->id,
			       what, m->image, j->image);
	if (strcmp(m->cpu_model, j->spec.v.cpu_model) != 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s was taken with CPU model "
			       "'%s', the policy now gives '%s'",
			       j->id, what, m->cpu_model, j->spec.v.cpu_model);
	/* The guest has the old job's working directory mounted at its path,
	 * with its processes' cwd and open files in it: another directory
	 * under that path would be a different set of files. */
	if (m->work_dir[0] && strcmp(m->work_dir, j->work_dir) != 0)
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: %s was taken with the working directory "
		    "%s; this job's is %s (submit it from there)",
		    j->id, what, m->work_dir, j->work_dir);
	/* The share's device is part of the guest: the restored one keeps
	 * the kind it was saved with, whatever the node's config says now. */
	if (jobfiles_kind_parse(m->files_kind, &j->files_kind) < 0)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s: unknown files kind '%s'", j->id,
			       what, m->files_kind);
	/* A served job's mounts are a port and a server's state each: the
	 * guest has as many mounted, with open files on them. */
	if (j->files_kind == JOBFILES_SERVED &&
	    ckpt_manifest_mounts(m) != j->spec.v.mounts.n)
		return err_set(err, errlen, -EINVAL,
			       "job %u: %s was taken with %u served mount(s); "
			       "this job has %u (give it the same --vm-mount)",
			       j->id, what, ckpt_manifest_mounts(m),
			       j->spec.v.mounts.n);
	r = j->d->hv->cpu_ok(j->d->hv_ctx, j->d->domain_type, m->cpu_model, why,
			     sizeof(why));
	if (r <= 0)
		return err_set(err, errlen, r < 0 ? r : -EINVAL,
			       "job %u: cannot restore %s (saved on node %s) "
			       "on node %s: %s",
			       j->id, what, m->node, j->d->cfg.node_name, why);
	return 0;
}

/* A requeued multi-node job: node i's guest of the newest complete group
 * (1), or a boot on every node alike when there is none (0). */
static int group_checkpoint(struct job *j, struct ckpt_job *c, char *err,
			    size_t errlen)
{
	char out[CKPT_COORD_MAX_TEXT];
	uint32_t g = 0, n, seq, i = j->slurm.node_index;
	int r;

	if (j->spec.v.checkpoint_dir[0])
		return 0;
	r = ckpt_coord_open(ckpt_root(j), j->id, false, &c->coord, NULL, 0);
	if (r == 0)
		r = ckpt_coord_latest_complete(&c->coord, &g);
	if (r < 0) {
		log_info("job %u: restart %u without a checkpoint of its %u "
			 "nodes",
			 j->id, j->slurm.restart_count, j->slurm.nnodes);
		return 0;
	}
	if (ckpt_coord_outcome(&c->coord, g, out, sizeof(out)) < 0 ||
	    ckpt_coord_parse_complete(out, i, &n, &seq) < 0)
		return err_set(err, errlen, -EBADMSG,
			       "job %u: checkpoint group %u: its outcome does "
			       "not name node %u's checkpoint",
			       j->id, g, i);
	if (n == j->slurm.nnodes && ckpt_group_used(j, &c->coord, g, n)) {
		log_info("job %u: restart %u: checkpoint group %u was "
			 "restored from already and is not kept; every node "
			 "boots",
			 j->id, j->slurm.restart_count, g);
		return 0;
	}
	if (n != j->slurm.nnodes)
		return err_set(err, errlen, -EINVAL,
			       "job %u: checkpoint group %u holds the guests "
			       "of %u nodes, this run of the job has %u",
			       j->id, g, n, j->slurm.nnodes);
	r = ckpt_open_store(j, c, false, err, errlen);
	if (r == 0)
		r = ckpt_open_checkpoint(c, j->id, seq, err, errlen);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: checkpoint group %u: node %u's "
			       "checkpoint %u on node %s: %s",
			       j->id, g, i, seq, j->d->cfg.node_name,
			       strerror(-r));
	if ((r = restore_own(j, c, err, errlen)) < 0)
		return r;
	c->group = g;
	c->back = true;
	saved_name(j);
	log_info("job %u: restart %u restores node %u's guest of checkpoint "
		 "group %u from %s",
		 j->id, j->slurm.restart_count, i, g, c->dir);
	return 1;
}
