/* SPDX-License-Identifier: MIT */
/*
 * The node's side of checkpoints, not a job's: at vmmd's start the node's
 * store is opened (made if missing, root's all the way), its incomplete
 * saves removed, ended jobs' checkpoints swept (then hourly), and the
 * node's save bandwidth loaded or probed; each save refines it
 * (ckpt_lead.c has the formula and the file). The job's owner given to
 * ckpt_init is kept here for ckpt_post.
 */
#include "ckpt_priv.h"

#include "ckpt.h"
#include "ckpt_keep.h"
#include "ckpt_lead.h"
#include "ckpt_store.h"
#include "log.h"
#include "vmmd.h"

#include <stdio.h>

/* The figure's file in the node's store, by path: only while the store
 * is root's all the way (then no one else can redirect the path). */
static void bw_path(const struct vmmd *d, char *buf, size_t len)
{
	struct ckpt_store s = CKPT_STORE_INIT;

	if (ckpt_store_open(d->cfg.checkpoint_dir, CKPT_STORE_NODE, &s, NULL,
			    0) < 0 ||
	    str_printf(buf, len, "%s/.bandwidth-%s", d->cfg.checkpoint_dir,
		       d->cfg.node_name) < 0)
		buf[0] = '\0';
	ckpt_store_close(&s);
}

static void sweep_tick(void *data)
{
	struct vmmd *d = data;

	ckpt_sweep(d);
	loop_add_timer(d->loop, CKPT_SWEEP_S * 1000ull, sweep_tick, d);
}

/* The job's owner (job.c): the only one that changes a job's state. */
const struct ckpt_sink *ckpt_owner;

void ckpt_fini(struct vmmd *d)
{
	ckpt_keep_fini(d);
}

void ckpt_init(struct vmmd *d, const struct ckpt_sink *sink)
{
	struct ckpt_store s = CKPT_STORE_INIT;
	char path[VMENV_MAX_PATH], err[VMENV_MAX_PATH + 256];
	uint64_t bps = 0, probed = 0;
	int r;

	ckpt_owner = sink;

	/* The store holds guests' memory: root's only, all the way. */
	r = ckpt_store_open(d->cfg.checkpoint_dir,
			    CKPT_STORE_CREATE | CKPT_STORE_NODE, &s, err,
			    sizeof(err));
	if (r < 0) {
		log_err("checkpoints: %s; checkpoints into it are refused",
			err);
		return;
	}
	r = ckpt_store_gc(&s, 0, CKPT_GC_IDLE_S);
	ckpt_store_close(&s);
	if (r > 0)
		log_notice("checkpoints: removed %d incomplete save(s) in %s",
			   r, d->cfg.checkpoint_dir);
	/* Checkpoints of ended jobs (cancelled while requeued, or finished
	 * while this vmmd was down) and kept ones past their time. */
	ckpt_sweep(d);
	loop_add_timer(d->loop, CKPT_SWEEP_S * 1000ull, sweep_tick, d);
	bw_path(d, path, sizeof(path));
	if (path[0])
		ckpt_bw_load(path, &bps);
	if (d->cfg.checkpoint_probe_mib &&
	    ckpt_bw_probe(d->cfg.checkpoint_dir,
			  (uint64_t)d->cfg.checkpoint_probe_mib << 20, &probed,
			  err, sizeof(err)) < 0)
		log_warn("checkpoints: %s", err);
	if (probed)
		bps = bps ? bps / 2 + probed / 2 : probed;
	d->ckpt_bw_bps = bps;
	if (bps && path[0])
		ckpt_bw_save(path, bps);
	log_info("checkpoints: store %s, save bandwidth %llu MiB/s%s",
		 d->cfg.checkpoint_dir, (unsigned long long)(bps >> 20),
		 probed ? " (probed)" : "");
}

void ckpt_node_bw_refine(struct vmmd *d, uint64_t bytes, uint64_t ms)
{
	char path[VMENV_MAX_PATH];

	d->ckpt_bw_bps = ckpt_bw_refine(d->ckpt_bw_bps, bytes, ms);
	bw_path(d, path, sizeof(path));
	if (path[0] && ckpt_bw_save(path, d->ckpt_bw_bps) < 0)
		log_warn("checkpoints: cannot write %s", path);
}
