// SPDX-License-Identifier: MIT
/* Open, create, read, write, readdir, fsync and setattr. */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int srv_open_flags(uint32_t oflags)
{
	int flags = (int)(oflags & NINEP_O_ACCMODE);

	if (flags == 3)
		flags = O_RDWR;
	if (oflags & NINEP_O_TRUNC)
		flags |= O_TRUNC;
	if (oflags & NINEP_O_APPEND)
		flags |= O_APPEND;
	if ((oflags & NINEP_O_SYNC) == NINEP_O_SYNC)
		flags |= O_SYNC;
	else if (oflags & NINEP_O_DSYNC)
		flags |= O_DSYNC;
	if (oflags & NINEP_O_DIRECTORY)
		flags |= O_DIRECTORY;
	return flags;
}

/* Only regular files and directories are served: a FIFO or a device
 * would block or reach the host's hardware. O_NONBLOCK at open keeps a
 * FIFO from blocking the server before it is refused. */
static int adopt_fd(struct fid *f, int fd, uint32_t oflags)
{
	struct stat st;
	int r = 0;

	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		r = -EPERM;
	if (r < 0) {
		close(fd);
		return r;
	}
	if (S_ISREG(st.st_mode))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	f->fd = fd;
	f->kind = S_ISDIR(st.st_mode) ? FID_DIR : FID_FILE;
	/* What a re-open after a restore must not do again. */
	f->oflags = oflags & ~SRV_OPEN_ONCE;
	return 0;
}

int srv_open_fid(struct srv *s, struct fid *f, uint32_t oflags)
{
	int fd;

	if (s->read_only && ((srv_open_flags(oflags) & O_ACCMODE) != O_RDONLY ||
			     (oflags & NINEP_O_TRUNC)))
		return -EROFS;
	fd = res_open(s, f->path, srv_open_flags(oflags) | O_NONBLOCK, 0);

	return fd < 0 ? fd : adopt_fd(f, fd, oflags);
}

static void put_opened(struct srv *s, struct fid *f, struct ninep_out *o)
{
	struct ninep_qid qid = {0};
	struct stat st;

	if (fstat(f->fd, &st) == 0)
		res_qid(s, &st, &qid);
	ninep_put_qid(o, &qid);
	ninep_put_u32(o, 0); /* iounit: the client's msize rule */
}

int ops_lopen(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct fid *f;
	int r;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (f->kind != FID_PATH)
		return -EBUSY;
	if ((r = srv_open_fid(s, f, q->flags)) < 0)
		return r;
	put_opened(s, f, o);
	return 0;
}

int ops_lcreate(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char path[SRV_MAX_PATH];
	struct fid *f;
	int dfd, fd, r;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (f->kind != FID_PATH)
		return -EBUSY;
	if (!ninep_name_ok(&q->name))
		return -EINVAL;
	if ((r = res_join(path, sizeof(path), f->path, &q->name)) < 0)
		return r;
	if ((dfd = res_open(s, f->path, O_PATH | O_DIRECTORY, 0)) < 0)
		return dfd;
	/* One component, O_NOFOLLOW: an existing symlink there is ELOOP,
	 * never followed to create elsewhere. */
	fd =
	    openat(dfd, path + strlen(path) - q->name.len,
		   srv_open_flags(q->flags) | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		       O_NONBLOCK | ((q->flags & NINEP_O_EXCL) ? O_EXCL : 0),
		   q->mode & 07777);
	r = fd < 0 ? -errno : 0;
	close(dfd);
	if (r < 0)
		return r;
	if ((r = fid_set_path(f, path)) < 0) {
		close(fd);
		return r;
	}
	/* adopt_fd closes fd when it fails. */
	if ((r = adopt_fd(f, fd, q->flags)) < 0)
		return r;
	put_opened(s, f, o);
	return 0;
}

static int open_file(struct srv *s, uint32_t fid, struct fid **ret)
{
	int r = ops_fid(s, fid, ret);

	if (r == 0 && (*ret)->kind != FID_FILE)
		r = -EBADF;
	return r;
}

int ops_read(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct fid *f;
	size_t at = o->len + 4;
	ssize_t n;
	int r;

	if ((r = open_file(s, q->fid, &f)) < 0)
		return r;
	if (q->count > o->cap - at)
		return -EINVAL;
	n = pread(f->fd, o->buf + at, q->count, (off_t)q->offset);
	if (n < 0)
		return -errno;
	ninep_put_u32(o, (uint32_t)n);
	o->len += (size_t)n;
	return 0;
}

int ops_write(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct fid *f;
	ssize_t n;
	int r;

	if ((r = open_file(s, q->fid, &f)) < 0)
		return r;
	n = pwrite(f->fd, q->data, q->count, (off_t)q->offset);
	if (n < 0)
		return -errno;
	ninep_put_u32(o, (uint32_t)n);
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Entries from the directory's position at offset (a cookie the kernel
 * gave in an earlier entry's d_off, or 0) until count bytes are full. */
int ops_readdir(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	size_t count_at = o->len, base;
	struct fid *f;
	char *buf;
	long n;
	int r;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (f->kind != FID_DIR)
		return -ENOTDIR;
	if (lseek(f->fd, (off_t)q->offset, SEEK_SET) < 0)
		return -errno;
	if (!(buf = malloc(q->count + 512)))
		return -ENOMEM;
	n = syscall(SYS_getdents64, f->fd, buf, q->count + 512);
	r = n < 0 ? -errno : 0;
	ninep_put_u32(o, 0);
	base = o->len;
	for (long off = 0; off < n;) {
		struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
		struct ninep_qid qid = {d->d_type == DT_DIR   ? NINEP_QTDIR
					: d->d_type == DT_LNK ? NINEP_QTSYMLINK
							      : NINEP_QTFILE,
					0, d->d_ino};

		if (!ninep_put_dirent(o, base, q->count, &qid,
				      (uint64_t)d->d_off, d->d_type, d->d_name,
				      strlen(d->d_name)))
			break;
		off += d->d_reclen;
	}
	free(buf);
	/* The count in front of the entries. */
	for (int i = 0; i < 4; i++)
		o->buf[count_at + (size_t)i] =
		    (uint8_t)((o->len - base) >> (8 * i));
	return r;
}

int ops_fsync(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct fid *f;
	int r;

	(void)o;
	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (f->fd < 0)
		return 0;
	r = q->flags ? fdatasync(f->fd) : fsync(f->fd);
	return r < 0 ? -errno : 0;
}
