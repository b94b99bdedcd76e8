// SPDX-License-Identifier: MIT
/*
 * Tsetattr: mode, owner, size and times. Each change goes through the
 * fid's open file when it has one, else through its parent directory and
 * its last name with *at(AT_SYMLINK_NOFOLLOW) calls; chmod, which has no
 * working no-follow flag on Linux 6.1, is refused on a symlink (Linux
 * symlinks have no mode anyway).
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the changes go: an fd (open file, or the root opened for it) or
 * dir + name. */
struct target {
	int fd, dir;
	const char *name;
	bool own_fd;
};

static int target_get(struct srv *s, const struct fid *f, struct target *t)
{
	*t = (struct target){.fd = f->fd, .dir = -1};
	if (f->fd >= 0)
		return 0;
	if (!f->path[0]) {
		t->fd = res_open(s, "", O_RDONLY | O_DIRECTORY, 0);
		t->own_fd = true;
		return t->fd < 0 ? t->fd : 0;
	}
	t->dir = res_parent(s, f->path, &t->name);
	return t->dir < 0 ? t->dir : 0;
}

static void target_put(struct target *t)
{
	if (t->own_fd && t->fd >= 0)
		close(t->fd);
	if (t->dir >= 0)
		close(t->dir);
}

static int set_mode(struct srv *s, const struct fid *f, const struct target *t,
		    uint32_t mode)
{
	struct stat st;
	int r;

	if (t->fd >= 0)
		return fchmod(t->fd, mode & 07777) < 0 ? -errno : 0;
	if ((r = ops_stat(s, f, &st)) < 0)
		return r;
	if (S_ISLNK(st.st_mode))
		return -EOPNOTSUPP;
	return fchmodat(t->dir, t->name, mode & 07777, 0) < 0 ? -errno : 0;
}

static int set_owner(const struct target *t, uint32_t valid, uint32_t uid,
		     uint32_t gid)
{
	uid_t u = (valid & NINEP_SETATTR_UID) ? uid : (uid_t)-1;
	gid_t g = (valid & NINEP_SETATTR_GID) ? gid : (gid_t)-1;
	int r = t->fd >= 0
		    ? fchown(t->fd, u, g)
		    : fchownat(t->dir, t->name, u, g, AT_SYMLINK_NOFOLLOW);

	return r < 0 ? -errno : 0;
}

static int set_size(struct srv *s, const struct fid *f, uint64_t size)
{
	int fd, r = 0;

	if (size > INT64_MAX)
		return -EFBIG;
	if (f->fd >= 0 && f->kind == FID_FILE &&
	    (f->oflags & NINEP_O_ACCMODE) != 0)
		return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
	fd = res_open(s, f->path, O_WRONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0)
		r = -errno;
	close(fd);
	return r;
}

static struct timespec time_of(uint32_t valid, uint32_t bit, uint32_t set_bit,
			       uint64_t sec, uint64_t nsec)
{
	if (!(valid & bit))
		return (struct timespec){.tv_nsec = UTIME_OMIT};
	if (!(valid & set_bit))
		return (struct timespec){.tv_nsec = UTIME_NOW};
	return (struct timespec){.tv_sec = (time_t)sec,
				 .tv_nsec = (long)(nsec % 1000000000u)};
}

static int set_times(const struct target *t, const struct ninep_req *q)
{
	struct timespec ts[2] = {
	    time_of(q->valid, NINEP_SETATTR_ATIME, NINEP_SETATTR_ATIME_SET,
		    q->atime_sec, q->atime_nsec),
	    time_of(q->valid, NINEP_SETATTR_MTIME, NINEP_SETATTR_MTIME_SET,
		    q->mtime_sec, q->mtime_nsec)};
	int r = t->fd >= 0
		    ? futimens(t->fd, ts)
		    : utimensat(t->dir, t->name, ts, AT_SYMLINK_NOFOLLOW);

	return r < 0 ? -errno : 0;
}

int ops_setattr(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct target t;
	struct fid *f;
	int r;

	(void)o;
	if ((r = ops_fid(s, q->fid, &f)) < 0 || (r = target_get(s, f, &t)) < 0)
		return r;
	if (q->valid & NINEP_SETATTR_MODE)
		r = set_mode(s, f, &t, q->mode);
	if (!r && (q->valid & (NINEP_SETATTR_UID | NINEP_SETATTR_GID)))
		r = set_owner(&t, q->valid, q->uid, q->gid);
	if (!r && (q->valid & NINEP_SETATTR_SIZE))
		r = set_size(s, f, q->size);
	if (!r && (q->valid & (NINEP_SETATTR_ATIME | NINEP_SETATTR_MTIME)))
		r = set_times(&t, q);
	target_put(&t);
	return r;
}
