// SPDX-License-Identifier: MIT
/*
 * Every lookup below the share's root. The kernel does the confinement:
 * openat2() with RESOLVE_BENEATH refuses ".." above the root and absolute
 * paths, RESOLVE_NO_SYMLINKS refuses every symlink on the way (the guest's
 * 9p client follows symlinks itself, in the guest, so the server never has
 * to), and O_NOFOLLOW keeps a final symlink from being followed. A path
 * that changed on the host between two requests (a directory replaced by
 * a symlink) therefore fails with ELOOP instead of leading outside.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int res_open(const struct srv *s, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve =
		RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	do {
		fd = syscall(SYS_openat2, s->root, path[0] ? path : ".", &how,
			     sizeof(how));
	} while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

int res_parent(const struct srv *s, const char *path, const char **ret_base)
{
	char dir[SRV_MAX_PATH];
	const char *slash = strrchr(path, '/');

	if (!path[0])
		return -EINVAL;
	res_dirname(dir, sizeof(dir), path);
	*ret_base = slash ? slash + 1 : path;
	return res_open(s, dir, O_PATH | O_DIRECTORY, 0);
}

int res_join(char *buf, size_t len, const char *path,
	     const struct ninep_str *name)
{
	int n = snprintf(buf, len, "%s%s%.*s", path, path[0] ? "/" : "",
			 (int)name->len, name->p);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void res_dirname(char *buf, size_t len, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= len)
		n = len - 1;
	memcpy(buf, path, n);
	buf[n] = '\0';
}

int res_stat(const struct srv *s, const char *path, struct stat *st)
{
	int fd = res_open(s, path, O_PATH, 0);
	int r = 0;

	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0)
		r = -errno;
	close(fd);
	return r;
}

void res_qid(const struct srv *s, const struct stat *st, struct ninep_qid *q)
{
	q->type = S_ISDIR(st->st_mode)	 ? NINEP_QTDIR
		  : S_ISLNK(st->st_mode) ? NINEP_QTSYMLINK
					 : NINEP_QTFILE;
	q->version = 0;
	/* Inode numbers of another file system mounted below the root could
	 * collide with the root's: set them apart. */
	q->path = (uint64_t)st->st_ino;
	if (st->st_dev != s->dev)
		q->path ^= (uint64_t)st->st_dev << 48;
}
