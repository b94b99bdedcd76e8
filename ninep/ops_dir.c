// SPDX-License-Identifier: MIT
/*
 * Directory changes: mkdir, symlink, link, unlink, remove, rename and
 * readlink. Each names one checked component in a directory opened with
 * res_open(), so the *at() call resolves nothing but that name, and
 * never follows it.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory fid's directory (O_PATH) and the request's name as a C
 * string (name must be a valid component). */
static int dir_and_name(struct srv *s, uint32_t fid,
			const struct ninep_str *name, int *ret_dir,
			char ret_name[256])
{
	struct fid *f;
	int r;

	if ((r = ops_fid(s, fid, &f)) < 0)
		return r;
	if (!ninep_name_ok(name) || name->len > 255)
		return name->len > 255 ? -ENAMETOOLONG : -EINVAL;
	memcpy(ret_name, name->p, name->len);
	ret_name[name->len] = '\0';
	*ret_dir = res_open(s, f->path, O_PATH | O_DIRECTORY, 0);
	return *ret_dir < 0 ? *ret_dir : 0;
}

/* Answers the qid of dir/name (after it was made). */
static int put_child_qid(struct srv *s, int dir, const char *name,
			 struct ninep_out *o)
{
	struct ninep_qid qid;
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	res_qid(s, &st, &qid);
	ninep_put_qid(o, &qid);
	return 0;
}

int ops_mkdir(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char name[256];
	int dir, r;

	if ((r = dir_and_name(s, q->fid, &q->name, &dir, name)) < 0)
		return r;
	r = mkdirat(dir, name, q->mode & 07777) < 0 ? -errno : 0;
	if (r == 0)
		r = put_child_qid(s, dir, name, o);
	close(dir);
	return r;
}

int ops_symlink(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char name[256], target[NINEP_MAX_STR + 1];
	int dir, r;

	if ((r = dir_and_name(s, q->fid, &q->name, &dir, name)) < 0)
		return r;
	/* The target is only text here: nothing on this side follows it. */
	memcpy(target, q->name2.p, q->name2.len);
	target[q->name2.len] = '\0';
	r = symlinkat(target, dir, name) < 0 ? -errno : 0;
	if (r == 0)
		r = put_child_qid(s, dir, name, o);
	close(dir);
	return r;
}

int ops_readlink(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char target[NINEP_MAX_STR];
	struct fid *f;
	ssize_t n;
	int fd, r;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if ((fd = res_open(s, f->path, O_PATH, 0)) < 0)
		return fd;
	n = readlinkat(fd, "", target, sizeof(target));
	r = n < 0 ? -errno : n >= (ssize_t)sizeof(target) ? -ENAMETOOLONG : 0;
	close(fd);
	if (r == 0)
		ninep_put_str(o, target, (size_t)n);
	return r;
}

int ops_link(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char name[256];
	const char *base;
	struct fid *f;
	int dir, from, r;

	(void)o;
	/* link: fid = the directory, newfid = the existing file. */
	if ((r = ops_fid(s, q->newfid, &f)) < 0)
		return r;
	if ((r = dir_and_name(s, q->fid, &q->name, &dir, name)) < 0)
		return r;
	from = res_parent(s, f->path, &base);
	r = from < 0 ? from : linkat(from, base, dir, name, 0) < 0 ? -errno : 0;
	if (from >= 0)
		close(from);
	close(dir);
	return r;
}

int ops_unlinkat(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char name[256];
	int dir, r;

	(void)o;
	if ((r = dir_and_name(s, q->fid, &q->name, &dir, name)) < 0)
		return r;
	r = unlinkat(dir, name,
		     (q->flags & NINEP_AT_REMOVEDIR) ? AT_REMOVEDIR : 0);
	r = r < 0 ? -errno : 0;
	close(dir);
	return r;
}

/* Tremove: unlink the fid's object; the fid goes whatever happens. */
int ops_remove(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct stat st;
	const char *base;
	struct fid *f;
	int dir, r;

	(void)o;
	if ((r = ops_fid(s, q->fid, &f)) == 0 &&
	    (r = res_stat(s, f->path, &st)) == 0 &&
	    (r = dir = res_parent(s, f->path, &base)) >= 0) {
		r = unlinkat(dir, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
		r = r < 0 ? -errno : 0;
		close(dir);
	}
	fid_del(s, q->fid);
	return r;
}

static int rename_paths(struct srv *s, const char *from, const char *to)
{
	const char *fbase, *tbase;
	int fdir, tdir, r;

	if ((fdir = res_parent(s, from, &fbase)) < 0)
		return fdir;
	if ((tdir = res_parent(s, to, &tbase)) < 0) {
		close(fdir);
		return tdir;
	}
	r = renameat(fdir, fbase, tdir, tbase) < 0 ? -errno : 0;
	close(fdir);
	close(tdir);
	return r ? r : fid_renamed(s, from, to);
}

int ops_renameat(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char from[SRV_MAX_PATH], to[SRV_MAX_PATH];
	struct fid *fd, *td;
	int r;

	(void)o;
	if ((r = ops_fid(s, q->fid, &fd)) < 0 ||
	    (r = ops_fid(s, q->newfid, &td)) < 0)
		return r;
	if (!ninep_name_ok(&q->name) || !ninep_name_ok(&q->name2))
		return -EINVAL;
	if ((r = res_join(from, sizeof(from), fd->path, &q->name)) < 0 ||
	    (r = res_join(to, sizeof(to), td->path, &q->name2)) < 0)
		return r;
	return rename_paths(s, from, to);
}

/* Trename: fid's object to dfid/name. */
int ops_rename(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	char from[SRV_MAX_PATH], to[SRV_MAX_PATH];
	struct fid *f, *d;
	int r;

	(void)o;
	if ((r = ops_fid(s, q->fid, &f)) < 0 ||
	    (r = ops_fid(s, q->newfid, &d)) < 0)
		return r;
	if (!f->path[0])
		return -EBUSY;
	if (!ninep_name_ok(&q->name))
		return -EINVAL;
	snprintf(from, sizeof(from), "%s", f->path);
	if ((r = res_join(to, sizeof(to), d->path, &q->name)) < 0)
		return r;
	return rename_paths(s, from, to);
}
