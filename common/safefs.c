/* SPDX-License-Identifier: MIT */
/* fd-based file system operations for root in user-writable places
 * (safefs.h). Does not log. */
#include "safefs.h"

#include "cleanup.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One path component: no "/", not "." or "..", not empty. */
static bool one_name(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

/* The kernel resolves name below dirfd and refuses a symlink or a ".."
 * on the way, whatever the string holds. */
static int open_beneath(int dirfd, const char *name, uint64_t flags)
{
	struct open_how how = {
	    .flags = flags | O_CLOEXEC | O_NOCTTY,
	    .resolve =
		RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* Only root (or the owner of this process) can rename or replace what
 * is below a directory like this. */
static bool dir_trusted(const struct stat *st)
{
	bool owner = st->st_uid == 0 || st->st_uid == geteuid();

	return owner && (!(st->st_mode & (S_IWGRP | S_IWOTH)) ||
			 (st->st_mode & S_ISVTX));
}

/* The next directory of a walk: opened, or made and opened. */
static int walk_step(int dirfd, const char *name, unsigned flags)
{
	int fd = open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY);

	if (fd != -ENOENT || !(flags & SFS_CREATE))
		return fd;
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	return open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY);
}

int sfs_open_dir_path(const char *abs, unsigned flags, bool *ret_trusted)
{
	char buf[VMENV_MAX_PATH];
	char *save = NULL, *name;
	bool trusted = true;
	struct stat st;
	int fd;

	if (!valid_abs_path(abs) || str_printf(buf, sizeof(buf), "%s", abs) < 0)
		return -EINVAL;
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (name = strtok_r(buf, "/", &save); fd >= 0;
	     name = strtok_r(NULL, "/", &save)) {
		if (fstat(fd, &st) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		trusted = trusted && dir_trusted(&st);
		if (!name)
			break;
		int next =
		    one_name(name) ? walk_step(fd, name, flags) : -EINVAL;
		close(fd);
		fd = next;
	}
	if (fd >= 0 && ret_trusted)
		*ret_trusted = trusted;
	return fd;
}

int sfs_open_private_dir(int dirfd, const char *name, bool create, mode_t mode,
			 struct stat *st)
{
	struct stat tmp, parent;
	struct stat *s = st ? st : &tmp;

	if (!one_name(name))
		return -EINVAL;
	if (create && mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	_cleanup_close_ int fd =
	    open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		/* Say what is there instead (a link, a file). */
		if (fstatat(dirfd, name, s, AT_SYMLINK_NOFOLLOW) < 0)
			memset(s, 0, sizeof(*s));
		return fd;
	}
	if (fstat(fd, s) < 0 || fstat(dirfd, &parent) < 0)
		return -errno;
	if (s->st_uid != geteuid() || (s->st_mode & 077))
		return -EPERM;
	/* A mount point (a user's FUSE mount can claim any owner). */
	if (s->st_dev != parent.st_dev)
		return -EXDEV;
	return TAKE_FD(fd);
}

DIR *sfs_opendir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp;

	if (fd < 0)
		return NULL;
	if (!(dp = fdopendir(fd)))
		close(fd);
	return dp;
}

int sfs_open_file(int dirfd, const char *name, uid_t owner)
{
	struct stat st;

	if (!one_name(name))
		return -EINVAL;
	_cleanup_close_ int fd =
	    open_beneath(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_uid != owner)
		return -EPERM;
	if (st.st_nlink != 1)
		return -EMLINK;
	if (fd_set_nonblock(fd, false) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int sfs_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n =
		    pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* shrunk meanwhile: what is there */
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int sfs_write_atomic(int dirfd, const char *name, const void *data, size_t len,
		     mode_t mode)
{
	char tmp[256];
	int r;

	if (!one_name(name) ||
	    str_printf(tmp, sizeof(tmp), ".%s.tmp.%d", name, (int)getpid()) < 0)
		return -EINVAL;
	(void)unlinkat(dirfd, tmp, 0);
	_cleanup_close_ int fd =
	    openat(dirfd, tmp,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	r = write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fsync(dirfd) < 0 ? -errno : 0;
}

/* pread/write from where copy_file_range stopped (it refuses files on
 * different file systems, and some file systems altogether). */
static int copy_rest(int in, int out, off_t off, off_t size)
{
	char buf[64 * 1024];

	while (off < size) {
		ssize_t n = pread(in, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		if (write_full(out, buf, (size_t)n) < 0)
			return -errno;
		off += n;
	}
	return 0;
}

static int copy_data(int in, int out, off_t size)
{
	off_t off = 0;

	while (off < size) {
		loff_t from = off;
		ssize_t n = copy_file_range(in, &from, out, NULL,
					    (size_t)(size - off), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP ||
			      errno == ENOSYS || errno == EINVAL))
			return copy_rest(in, out, off, size);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
	}
	return 0;
}

int sfs_copy_fd(int in, uint64_t len, int dirfd, const char *name, mode_t mode)
{
	int r;

	if (!one_name(name) || len > (uint64_t)INT64_MAX)
		return -EINVAL;
	_cleanup_close_ int out =
	    openat(dirfd, name,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0)
		return -errno;
	r = copy_data(in, out, (off_t)len);
	if (r < 0)
		unlinkat(dirfd, name, 0);
	return r;
}

int sfs_fd_path(int dirfd, const char *name, char *buf, size_t len)
{
	if (name[0] && !one_name(name))
		return -EINVAL;
	return str_printf(buf, len, "/proc/%d/fd/%d%s%s", (int)getpid(), dirfd,
			  name[0] ? "/" : "", name);
}
