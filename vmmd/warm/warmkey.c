// SPDX-License-Identifier: MIT
/*
 * The template key of a guest (warmkey.h).
 */
#include "warmkey.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "digest.h"
#include "util.h"
#include "warmdisk.h"

void warm_paths_in(struct warm_paths *p, const char *dir)
{
	snprintf(p->kernel, sizeof(p->kernel), "%s/kernel", dir);
	snprintf(p->initrd, sizeof(p->initrd), "%s/initrd", dir);
	snprintf(p->console, sizeof(p->console), "%s/console.log", dir);
	snprintf(p->agent, sizeof(p->agent), "%s/agent.sock", dir);
	snprintf(p->share, sizeof(p->share), "%s/share", dir);
	snprintf(p->files, sizeof(p->files), "%s/files.sock", dir);
	snprintf(p->bulk, sizeof(p->bulk), "%s/bulk.", dir);
	snprintf(p->disk, sizeof(p->disk), "%s/" WARM_DISK_NAME, dir);
	for (int i = 0; i < DOM_MAX_FILES_MOUNTS; i++)
		snprintf(p->fmount[i], sizeof(p->fmount[i]), "%s/fm%d.sock",
			 dir, i);
}

bool warm_eligible(const struct dom_spec *s, char *why, size_t whylen)
{
	const char *no = NULL;

	if (!s->kernel)
		no = "the image boots from its disk";
	else if (s->nmounts > 16)
		no = "too many mounts";
	if (no)
		snprintf(why, whylen, "%s", no);
	return !no;
}

static void normalize_place(const struct dom_placement *in,
			    struct dom_placement *out)
{
	memset(out, 0, sizeof(*out));
	if (!in)
		return;
	/* What the guest sees stays; where it runs on the host goes. */
	out->sockets = in->sockets;
	out->cores = in->cores;
	out->threads = in->threads;
	out->ncells = in->ncells;
	for (uint32_t i = 0; i < in->ncells && i < DOM_MAX_CELLS; i++)
		out->cell[i] = in->cell[i];
	out->hugepage_kib = in->hugepage_kib;
}

void warm_normalize(const struct dom_spec *s, const char *name, uint32_t uid,
		    uint32_t gid, const struct warm_paths *p,
		    struct warm_norm *out)
{
	out->s = *s;
	out->s.name = name;
	out->s.job_id = 0;
	out->s.uid = uid;
	out->s.gid = gid;
	out->s.kernel = p->kernel;
	out->s.initrd = p->initrd;
	out->s.console_log = p->console;
	out->s.agent_sock = p->agent;
	/* The template's own overlay, over the same cached base: the base's
	 * path stays in the key (the overlay names it). */
	if (s->disk_overlay)
		out->s.disk_overlay = p->disk;
	if (s->share_dir)
		out->s.share_dir = p->share;
	for (uint32_t i = 0; i < s->nmounts && i < 16; i++) {
		out->mounts[i] = s->mounts[i];
		out->mounts[i].dir = p->share;
	}
	out->s.mounts = s->nmounts ? out->mounts : NULL;
	if (s->files_sock)
		out->s.files_sock = p->files;
	for (uint32_t i = 0; i < s->nfiles_mounts && i < DOM_MAX_FILES_MOUNTS;
	     i++) {
		out->fmounts[i] = s->files_mounts[i];
		out->fmounts[i].sock = p->fmount[i];
	}
	out->s.files_mounts = s->nfiles_mounts ? out->fmounts : NULL;
	if (s->bulk_ports)
		out->s.bulk_sock_prefix = p->bulk;
	normalize_place(s->place, &out->place);
	/* The host NUMA nodes of the cells are where the memory comes from,
	 * not what the guest sees. */
	for (uint32_t i = 0; i < out->place.ncells; i++)
		out->place.cell[i].host_node = 0;
	out->s.place = &out->place;
	/* Plugged after the restore, as after a checkpoint's (warm.c). */
	out->s.standin = false;
	/* A multi-node job's NIC is plugged after the restore too: its MAC
	 * and tap are the job's, and virtio-net's saved state would carry the
	 * template's MAC into every guest. Its guest shares the template of
	 * a one-node job of its shape. */
	out->s.net_bridge = out->s.net_tap = out->s.net_mac = NULL;
	out->s.net_mtu = 0;
}

int warm_key(const struct dom_spec *s, const char *boot,
	     char key[WARM_KEY_LEN + 1])
{
	_cleanup_free_ struct warm_paths *p = calloc(1, sizeof(*p));
	_cleanup_free_ struct warm_norm *n = calloc(1, sizeof(*n));
	_cleanup_free_ char *xml = NULL;
	struct digest *dg = NULL;
	char why[128];
	int r;

	if (!p || !n)
		return -ENOMEM;
	if (!warm_eligible(s, why, sizeof(why)))
		return -EINVAL;
	warm_paths_in(p, "/t");
	warm_normalize(s, "t", 0, 0, p, n);
	if ((r = domxml_build(&n->s, &xml)) < 0)
		return r;
	if ((r = digest_new(&dg)) < 0)
		return r;
	r = digest_update(dg, boot, strlen(boot) + 1);
	r = r ?: digest_update(dg, xml, strlen(xml));
	r = r ?: digest_final_hex(dg, key);
	digest_free(dg);
	return r;
}

bool warm_boot_listed(const struct catalog *c, const char *boot)
{
	char b[300];

	for (size_t i = 0; i < c->n; i++)
		if (catalog_boot_digest(&c->images[i], b, sizeof(b)) == 0 &&
		    strcmp(b, boot) == 0)
			return true;
	return false;
}
