/* SPDX-License-Identifier: MIT */
#include "imgpull.h"

#include "blobsink.h"
#include "catalog.h"
#include "cleanup.h"
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct pull {
	const struct imgcache *c;
	const struct fetch_opts *o;
	const struct imgpull_req *req;
	struct imgpull_stats *st;
	char part[VMENV_MAX_PATH];
	char blob[VMENV_MAX_PATH];
	int fd;
	struct digest *dg;
	struct blobsink *sink; /* writes and hashes what transfer() gets */
	uint64_t have;	       /* bytes in the partial file, all hashed */
	char *err;
	size_t errlen;
};

static int pfail(struct pull *p, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pfail(struct pull *p, int r, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s: %s", p->req->what, msg);
	return r;
}

/* Back-off with jitter, so many nodes retrying one server spread out. */
static uint32_t next_delay(uint32_t delay, unsigned *seed)
{
	uint32_t d = delay > 15000 ? 30000 : delay * 2;

	return d + (uint32_t)(rand_r(seed) % (d / 4 + 1));
}

/* Opens (or reopens) the partial file and hashes what it already holds,
 * so a resumed download is verified as a whole. */
static int open_part(struct pull *p)
{
	struct stat st;
	int r;

	p->fd =
	    open(p->part,
		 O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (p->fd < 0 || fstat(p->fd, &st) < 0)
		return pfail(p, -errno, "cannot open %s: %m", p->part);
	/* Only ever made by a puller like us, in a directory of ours; not
	 * one to write into, nor to leave for the next pull. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_nlink != 1) {
		unlink(p->part);
		return pfail(p, -EPERM, "%s is not a partial download: refused",
			     p->part);
	}
	p->have = (uint64_t)st.st_size;
	if (p->have > p->req->size) {
		if (ftruncate(p->fd, 0) < 0)
			return pfail(p, -errno, "cannot truncate %s: %m",
				     p->part);
		p->have = 0;
	}
	if ((r = digest_fd(p->dg, p->fd, p->have, NULL, NULL)) < 0)
		return pfail(p, r, "cannot read %s: %s", p->part, strerror(-r));
	if (p->have)
		p->st->resumed = true;
	return 0;
}

static ssize_t sink_fill(void *sink, int fd, size_t max)
{
	return blobsink_fill(sink, fd, max);
}

static int sink_restart(void *sink)
{
	return blobsink_restart(sink);
}

static int no_space(struct pull *p)
{
	return pfail(p, -ENOSPC,
		     "no space left in the image cache %s while downloading %s",
		     p->c->dir, p->req->url);
}

/* After an attempt: what it got is in the file and hashed. A failed write
 * (or hash) ends the pull at once: the disk, not the transfer, failed, and
 * retrying the transfer would not help. */
static int settle(struct pull *p)
{
	int r = blobsink_flush(p->sink);

	if (r == -ENOSPC)
		return no_space(p);
	if (r < 0)
		return pfail(p, r, "cannot write or hash %s: %s", p->part,
			     strerror(-r));
	p->have = blobsink_offset(p->sink);
	return 0;
}

static int transfer(struct pull *p)
{
	const struct imgpull_req *q = p->req;
	uint32_t delay = p->o->retry_delay_ms;
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	char why[640] = "";
	bool restart_free = true;
	int r = 0, w;

	for (uint32_t attempt = 0; p->have < q->size; attempt++) {
		struct fetch_xfer x = {
		    .url = q->url,
		    .offset = p->have,
		    .max_size = q->size,
		    .fill = sink_fill,
		    .restart = sink_restart,
		    .sink = p->sink,
		    .opts = p->o,
		    .progress = q->progress,
		    .progress_data = q->progress_data,
		    .cancel = q->cancel,
		};
		uint64_t before = p->have;

		if (p->have)
			p->st->resumed = true;
		p->st->attempts++;
		r = fetch_once(&x, why, sizeof(why));
		if ((w = settle(p)) < 0)
			return w;
		p->st->bytes += x.restarted ? p->have : p->have - before;
		if (r == 0 && p->have < q->size)
			return pfail(p, -EIO,
				     "%s ended after %llu of %llu bytes",
				     q->url, (unsigned long long)p->have,
				     (unsigned long long)q->size);
		if (r == 0)
			break;
		/* The server cannot continue a partial file: starting over at
		 * once is not a failed attempt (once). */
		if (r == -EAGAIN && x.restarted && restart_free) {
			restart_free = false;
			attempt--;
			continue;
		}
		if (!fetch_retryable(r) || attempt >= p->o->retries)
			return pfail(p, r, "%s%s", why,
				     attempt ? " (after retries)" : "");
		if (fetch_sleep(delay, q->cancel) < 0)
			return pfail(p, -ECANCELED, "cancelled");
		delay = next_delay(delay, &seed);
	}
	return 0;
}

static int verify(struct pull *p)
{
	char hex[DIGEST_HEX_LEN + 1];
	int r = digest_final_hex(p->dg, hex);

	if (r < 0)
		return pfail(p, r, "cannot compute sha256");
	if (strcmp(hex, p->req->sha256) == 0)
		return 0;
	return pfail(p, -EBADMSG,
		     "sha256 mismatch for %s: the catalog says %s, the "
		     "file has %s; refused, not cached",
		     p->req->url, p->req->sha256, hex);
}

static int fsync_dir_of(const char *path)
{
	char dir[VMENV_MAX_PATH];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/* The name about to get its final name is the file this process wrote
 * and hashed through p->fd (the directory is root's: this makes sure). */
static int same_file(struct pull *p)
{
	struct stat a, b;

	if (fstat(p->fd, &a) < 0 || lstat(p->part, &b) < 0)
		return pfail(p, -errno, "cannot check %s: %m", p->part);
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino ||
	    !S_ISREG(b.st_mode) || b.st_nlink != 1)
		return pfail(p, -EPERM,
			     "%s is not the file downloaded: refused", p->part);
	return 0;
}

/* The blob appears under its final name complete and durable, or not at
 * all: data synced before the rename, the directory after. */
static int install(struct pull *p)
{
	int r;

	if (fsync(p->fd) < 0 || fchmod(p->fd, 0644) < 0)
		return pfail(p, -errno, "cannot sync %s: %m", p->part);
	if ((r = same_file(p)) < 0)
		return r;
	if (rename(p->part, p->blob) < 0)
		return pfail(p, -errno, "cannot install %s: %m", p->blob);
	fsync_dir_of(p->blob);
	return 0;
}

/* One transfer with its hashing thread; then the hash is complete. */
static int transfer_hashed(struct pull *p)
{
	int r = blobsink_new(p->fd, p->dg, p->have, p->req->size, &p->sink);

	if (r == -ENOSPC)
		return no_space(p);
	if (r < 0)
		return pfail(p, r, "cannot start hashing: %s", strerror(-r));
	r = transfer(p);
	blobsink_free(p->sink);
	p->sink = NULL;
	return r;
}

/* With the blob's lock held: fetch unless another puller just did. */
static int pull_locked(struct pull *p)
{
	char why[512] = "";
	int r;

	if (imgcache_stat(p->c, p->req->sha256, NULL) == 0) {
		p->st->cached = true;
		return 0;
	}
	if ((r = imgcache_make_room(p->c, p->req->size, why, sizeof(why))) < 0)
		return pfail(p, r, "%s", why);
	if ((r = digest_new(&p->dg)) < 0 || (r = open_part(p)) < 0)
		return r;
	r = transfer_hashed(p);
	if (r == 0 && (r = verify(p)) < 0 && p->st->resumed) {
		/* A partial file from an earlier, different download: one
		 * clean attempt before giving up. */
		p->st->resumed = false;
		if (ftruncate(p->fd, 0) == 0) {
			p->have = 0;
			digest_reset(p->dg);
			r = transfer_hashed(p);
			if (r == 0)
				r = verify(p);
		}
	}
	if (r == 0)
		r = install(p);
	if (r < 0)
		unlink(p->part);
	return r;
}

static int lease(struct pull *p)
{
	int r;

	if (!p->req->lease_owner)
		return imgcache_touch(p->c, p->req->sha256);
	r = imgcache_lease(p->c, p->req->sha256, p->req->lease_owner);
	if (r < 0 && r != -ENOENT)
		return pfail(p, r, "cannot lease the cached file: %s",
			     strerror(-r));
	return r;
}

int imgpull(const struct imgcache *c, const struct fetch_opts *o,
	    const struct imgpull_req *req, struct imgpull_stats *st, char *err,
	    size_t errlen)
{
	struct imgpull_stats dummy;
	struct pull p = {
	    .c = c, .o = o, .req = req, .fd = -1, .err = err, .errlen = errlen};
	int lock = -1, r;

	p.st = st ? st : &dummy;
	memset(p.st, 0, sizeof(*p.st));
	if (!catalog_valid_sha256(req->sha256) ||
	    imgcache_blob_path(c, req->sha256, p.blob, sizeof(p.blob)) < 0 ||
	    imgcache_part_path(c, req->sha256, p.part, sizeof(p.part)) < 0)
		return pfail(&p, -EINVAL, "bad sha256 or cache path");
	/* Fast path: present already; the lease (under the cache lock)
	 * fails with -ENOENT if it was evicted meanwhile. */
	if (imgcache_stat(c, req->sha256, NULL) == 0 && (r = lease(&p)) == 0) {
		p.st->cached = true;
		return 0;
	}
	if ((r = imgcache_lock(c, req->sha256, true, req->cancel, &lock)) < 0)
		return pfail(&p, r, "%s",
			     r == -ECANCELED ? "cancelled"
					     : "cannot lock the image cache");
	r = pull_locked(&p);
	if (r == 0 && (r = lease(&p)) == -ENOENT)
		r = pfail(&p, r, "evicted from the cache while in use");
	if (p.fd >= 0)
		close(p.fd);
	digest_free(p.dg);
	imgcache_unlock(lock);
	return r;
}
