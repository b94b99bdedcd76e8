/* SPDX-License-Identifier: MIT */
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

static int rm_at(int dfd, const char *name, dev_t dev, int depth);

/* The first error wins; a later success does not hide it. */
static void keep_err(int *r, int e)
{
	if (e < 0 && *r == 0)
		*r = e;
}

static int unlink_entry(int dfd, const char *name, int flags)
{
	if (unlinkat(dfd, name, flags) == 0 || errno == ENOENT)
		return 0;
	return -errno;
}

/* Empties the directory open as fd. closedir() closes fd. */
static int empty_dir(int fd, dev_t dev, int depth)
{
	DIR *dir = fdopendir(fd);
	struct dirent *e;
	int r = 0;

	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((errno = 0, e = readdir(dir))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		keep_err(&r, rm_at(dirfd(dir), e->d_name, dev, depth + 1));
	}
	keep_err(&r, errno ? -errno : 0);
	closedir(dir);
	return r;
}

static int rm_dir(int dfd, const char *name, dev_t dev, int depth)
{
	int fd, r;
	struct stat st;

	if (depth >= RMTREE_MAX_DEPTH)
		return -ELOOP;
	fd = openat(dfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
			O_NONBLOCK);
	if (fd < 0) {
		/* Swapped for a symlink or a file since the fstatat: remove
		 * what is there now, as an entry. */
		if (errno == ELOOP || errno == ENOTDIR)
			return unlink_entry(dfd, name, 0);
		return errno == ENOENT ? 0 : -errno;
	}
	r = fstat(fd, &st) < 0 ? -errno : st.st_dev != dev ? -EXDEV : 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	r = empty_dir(fd, dev, depth);
	keep_err(&r, unlink_entry(dfd, name, AT_REMOVEDIR));
	return r;
}

static int rm_at(int dfd, const char *name, dev_t dev, int depth)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink_entry(dfd, name, 0);
	return rm_dir(dfd, name, dev, depth);
}

int rmtree_at(int dfd, const char *name)
{
	struct stat st;

	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EINVAL;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink_entry(dfd, name, 0);
	return rm_dir(dfd, name, st.st_dev, 0);
}

int rm_rf(const char *path)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	_cleanup_close_ int dfd = -1;

	if (!slash)
		return rmtree_at(AT_FDCWD, path);
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(parent) || !slash[1])
		return -EINVAL;
	memcpy(parent, path, n);
	parent[n] = '\0';
	dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	return rmtree_at(dfd, slash + 1);
}
