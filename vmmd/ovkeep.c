/* SPDX-License-Identifier: MIT */
/* Kept overlays in the daemon (ovkeep.h). */
#include "ovkeep.h"

#include "cleanup.h"
#include "image.h"
#include "imgcache.h"
#include "jobimage.h"
#include "jobrec.h"
#include "log.h"
#include "safefs.h"
#include "vmmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB(b) ((unsigned long long)(((b) + (1u << 20) - 1) >> 20))

static const struct imgcache *cache_of(struct vmmd *d)
{
	return d->images ? images_cache(d) : NULL;
}

static void unlease(struct vmmd *d, const struct ovkeep_rec *r)
{
	const struct imgcache *c = cache_of(d);
	char owner[160];
	int e;

	if (!c || !r->base_hex[0] ||
	    ovkeep_lease_owner(r->node, r->job, owner, sizeof(owner)) < 0)
		return;
	e = imgcache_unlease(c, r->base_hex, owner);
	if (e < 0)
		log_warn("overlays: job %u: cannot drop the lease on %s: %s",
			 r->job, r->base_hex, strerror(-e));
}

/* Removes a kept overlay and its lease; why for the log. */
static void drop(struct vmmd *d, int sfd, const struct ovkeep_rec *r,
		 const char *why)
{
	int e = ovkeep_store_remove(sfd, r->job);

	if (e < 0) {
		log_err("overlays: job %u: cannot remove %s/%s/%u.qcow2: %s",
			r->job, d->cfg.run_dir, OVKEEP_DIR, r->job,
			strerror(-e));
		return;
	}
	unlease(d, r);
	log_notice("overlays: job %u: kept overlay of uid %u (%llu MiB) "
		   "removed: %s",
		   r->job, r->uid, MIB(r->bytes), why);
}

/* --- at a job's end ------------------------------------------------------ */

/* The job's disk/ directory, opened without following a link. */
static int open_disk(const struct job *j)
{
	_cleanup_close_ int jfd = sfs_open_dir_path(j->dir, 0, NULL);
	int fd;

	if (jfd < 0)
		return jfd;
	fd = openat(jfd, "disk",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static const char *refusal(enum ovkeep_verdict v)
{
	switch (v) {
	case OVKEEP_NONE_ALLOWED:
		return "this node keeps none (overlay_keep_max = 0)";
	case OVKEEP_TOO_BIG:
		return "it is larger than one user may keep "
		       "(overlay_keep_max_mib)";
	case OVKEEP_NODE_FULL:
		return "the node's kept overlays of other users fill "
		       "overlay_keep_total_mib";
	case OVKEEP_KEEP:
		break;
	}
	return "";
}

static void limits_of(const struct vmmd_config *c, struct ovkeep_limits *l)
{
	l->max = c->overlay_keep_max;
	l->max_bytes = (uint64_t)c->overlay_keep_max_mib << 20;
	l->total_bytes = (uint64_t)c->overlay_keep_total_mib << 20;
}

/* Makes room by the limits: false (logged) when the overlay is not
 * kept. */
static bool make_room(struct job *j, int sfd, uint64_t bytes)
{
	struct vmmd *d = j->d;
	_cleanup_free_ struct ovkeep_rec *recs = NULL;
	_cleanup_free_ bool *evict = NULL;
	struct ovkeep_limits l;
	enum ovkeep_verdict v;
	char why[160];
	size_t n = 0;

	if (ovkeep_store_list(sfd, &recs, &n) < 0 ||
	    !(evict = calloc(n ? n : 1, sizeof(*evict)))) {
		log_err("job %u: overlay not kept: cannot list %s/%s", j->id,
			d->cfg.run_dir, OVKEEP_DIR);
		return false;
	}
	limits_of(&d->cfg, &l);
	v = ovkeep_plan(recs, n, (uint32_t)j->uid, j->id, bytes, &l, evict);
	if (v != OVKEEP_KEEP) {
		log_warn("job %u: overlay (%llu MiB) not kept: %s", j->id,
			 MIB(bytes), refusal(v));
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!evict[i])
			continue;
		if (recs[i].job == j->id)
			snprintf(why, sizeof(why), "job %u ran again", j->id);
		else
			snprintf(why, sizeof(why),
				 "the oldest of uid %u's, for job %u's "
				 "(overlay_keep_max %u, overlay_keep_max_mib "
				 "%u, overlay_keep_total_mib %u)",
				 recs[i].uid, j->id, d->cfg.overlay_keep_max,
				 d->cfg.overlay_keep_max_mib,
				 d->cfg.overlay_keep_total_mib);
		drop(d, sfd, &recs[i], why);
	}
	return true;
}

static int fill_rec(struct job *j, const char *hex, struct ovkeep_rec *r)
{
	const struct imgcache *c = cache_of(j->d);

	*r = (struct ovkeep_rec){.job = j->id,
				 .uid = (uint32_t)j->uid,
				 .created = (int64_t)time(NULL)};
	snprintf(r->node, sizeof(r->node), "%s", j->d->cfg.node_name);
	snprintf(r->image, sizeof(r->image), "%s", j->image);
	snprintf(r->base_hex, sizeof(r->base_hex), "%s", hex);
	return c ? imgcache_blob_path(c, hex, r->base, sizeof(r->base))
		 : -ENOENT;
}

/* Leases the base under the kept overlay's own name, then moves it in. */
static void keep(struct job *j, int sfd, int dfd, const char *hex)
{
	struct vmmd *d = j->d;
	struct ovkeep_rec r;
	char owner[160];
	int e;

	if ((e = fill_rec(j, hex, &r)) < 0 ||
	    (e = ovkeep_lease_owner(r.node, j->id, owner, sizeof(owner))) < 0 ||
	    (e = imgcache_lease(cache_of(d), hex, owner)) < 0) {
		log_err("job %u: overlay not kept: cannot lease its base %s: "
			"%s",
			j->id, hex, strerror(-e));
		return;
	}
	e = ovkeep_store_put(sfd, dfd, &r);
	if (e < 0) {
		imgcache_unlease(cache_of(d), hex, owner);
		log_err("job %u: overlay not kept: cannot move it into %s/%s: "
			"%s",
			j->id, d->cfg.run_dir, OVKEEP_DIR, strerror(-e));
		return;
	}
	log_notice("job %u: overlay kept for uid %u (%llu MiB, backed by "
		   "%s) for %u s: vmenvctl overlay get %u",
		   j->id, r.uid, MIB(r.bytes), r.base,
		   d->cfg.overlay_retention_s, j->id);
}

void ovkeep_job_ended(struct job *j)
{
	struct vmmd *d = j->d;
	const char *hex = jobimg_base(j);
	_cleanup_close_ int dfd = -1, sfd = -1;
	struct stat st;

	if (!j->spec.v.keep_overlay)
		return;
	dfd = open_disk(j);
	if (dfd < 0 ||
	    fstatat(dfd, "overlay.qcow2", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		/* Kept already (a failed job's end), a kernel + initrd
		 * guest, or moved into the job's checkpoint. */
		log_debug("job %u: no overlay to keep", j->id);
		return;
	}
	if (!hex) {
		log_notice("job %u: overlay not kept: the job's image is not "
			   "one of the node's image cache (a user's image "
			   "file)",
			   j->id);
		return;
	}
	sfd = ovkeep_store_open(d->cfg.run_dir, true);
	if (sfd < 0) {
		log_err("job %u: overlay not kept: %s/%s: %s", j->id,
			d->cfg.run_dir, OVKEEP_DIR, strerror(-sfd));
		return;
	}
	if (make_room(j, sfd, (uint64_t)st.st_size))
		keep(j, sfd, dfd, hex);
}

/* --- the sweep ----------------------------------------------------------- */

static void tidy(struct vmmd *d, int sfd)
{
	_cleanup_free_ struct ovkeep_rec *lost = NULL;
	size_t n = 0;
	int gone = ovkeep_store_tidy(sfd, &lost, &n);

	for (size_t i = 0; i < n; i++)
		unlease(d, &lost[i]);
	if (gone > 0)
		log_warn("overlays: removed %d name(s) of %s/%s that no "
			 "record accounts for",
			 gone, d->cfg.run_dir, OVKEEP_DIR);
}

void ovkeep_sweep(struct vmmd *d)
{
	_cleanup_close_ int sfd = ovkeep_store_open(d->cfg.run_dir, false);
	_cleanup_free_ struct ovkeep_rec *recs = NULL;
	int64_t now = (int64_t)time(NULL);
	char why[96];
	size_t n = 0;

	if (sfd == -ENOENT)
		return;
	if (sfd < 0) {
		log_warn("overlays: %s/%s not swept: %s", d->cfg.run_dir,
			 OVKEEP_DIR, strerror(-sfd));
		return;
	}
	tidy(d, sfd);
	if (ovkeep_store_list(sfd, &recs, &n) < 0)
		return;
	snprintf(why, sizeof(why), "older than overlay_retention_s (%u s)",
		 d->cfg.overlay_retention_s);
	for (size_t i = 0; i < n; i++)
		if (ovkeep_expired(&recs[i], now, d->cfg.overlay_retention_s))
			drop(d, sfd, &recs[i], why);
}

/* --- for clients --------------------------------------------------------- */

int ovkeep_list_for(struct vmmd *d, uid_t asker, struct ovkeep_rec **ret,
		    size_t *ret_n)
{
	_cleanup_close_ int sfd = ovkeep_store_open(d->cfg.run_dir, false);
	struct ovkeep_rec *recs = NULL;
	size_t n = 0, m = 0;
	int e;

	*ret = NULL;
	*ret_n = 0;
	if (sfd == -ENOENT)
		return 0;
	if (sfd < 0)
		return sfd;
	if ((e = ovkeep_store_list(sfd, &recs, &n)) < 0)
		return e;
	for (size_t i = 0; i < n; i++)
		if (asker == 0 || recs[i].uid == asker)
			recs[m++] = recs[i];
	*ret = recs;
	*ret_n = m;
	return 0;
}

/* The store and the check: the record's uid is asker's, or asker is
 * root. "None" and "not yours" read the same to the asker. */
static int open_checked(struct vmmd *d, uid_t asker, uint32_t job,
			struct ovkeep_rec *r, int *ret_sfd, char *err,
			size_t errlen)
{
	int sfd = ovkeep_store_open(d->cfg.run_dir, false);
	int fd = sfd < 0 ? sfd : ovkeep_store_open_for(sfd, job, asker, r);

	if (fd == -EACCES)
		log_warn("overlays: uid %u refused job %u's kept overlay of "
			 "uid %u",
			 (unsigned)asker, job, r->uid);
	else if (fd < 0 && fd != -ENOENT)
		log_warn("overlays: job %u: %s/%s/%u.*: %s", job,
			 d->cfg.run_dir, OVKEEP_DIR, job, strerror(-fd));
	if (fd < 0) {
		if (sfd >= 0)
			close(sfd);
		return err_set(err, errlen, fd,
			       "job %u has no kept overlay of yours on node %s",
			       job, d->cfg.node_name);
	}
	*ret_sfd = sfd;
	return fd;
}

int ovkeep_open_for(struct vmmd *d, uid_t asker, uint32_t job,
		    struct ovkeep_rec *ret, char *err, size_t errlen)
{
	int sfd = -1;
	int fd = open_checked(d, asker, job, ret, &sfd, err, errlen);

	if (fd >= 0) {
		close(sfd);
		log_info("overlays: job %u's kept overlay handed to uid %u",
			 job, (unsigned)asker);
	}
	return fd;
}

int ovkeep_remove_for(struct vmmd *d, uid_t asker, uint32_t job, char *err,
		      size_t errlen)
{
	struct ovkeep_rec r;
	_cleanup_close_ int sfd = -1;
	_cleanup_close_ int fd =
	    open_checked(d, asker, job, &r, &sfd, err, errlen);
	char why[64];

	if (fd < 0)
		return fd;
	snprintf(why, sizeof(why), "asked by uid %u", (unsigned)asker);
	drop(d, sfd, &r, why);
	return 0;
}
