/* SPDX-License-Identifier: MIT */
#include "sysfs.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sysfs_path(const char *root, const char *rel, char *buf, size_t len)
{
	return str_printf(buf, len, "%s/%s", root, rel);
}

int sysfs_read_text(const char *root, const char *rel, size_t max, char **ret)
{
	char path[VMENV_MAX_PATH];
	int r = sysfs_path(root, rel, path, sizeof(path));

	return r < 0 ? r : read_file_limited(path, max, ret, NULL);
}

int sysfs_read_line(const char *root, const char *rel, char *buf, size_t len)
{
	_cleanup_free_ char *text = NULL;
	size_t n;
	int r = sysfs_read_text(root, rel, 4096, &text);

	if (r < 0)
		return r;
	n = strcspn(text, "\n");
	if (n >= len)
		return -ENOSPC;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return 0;
}

int sysfs_read_u64(const char *root, const char *rel, uint64_t *ret)
{
	char line[64], *end;
	unsigned long long v;
	int r = sysfs_read_line(root, rel, line, sizeof(line));

	if (r < 0)
		return r;
	if (line[0] < '0' || line[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(line, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int sysfs_read_i64(const char *root, const char *rel, int64_t *ret)
{
	char line[64];
	int r = sysfs_read_line(root, rel, line, sizeof(line));

	return r < 0 ? r : parse_i64(line, ret);
}

int sysfs_read_cpuset(const char *root, const char *rel, struct cpuset *ret)
{
	char line[4096];
	int r = sysfs_read_line(root, rel, line, sizeof(line));

	return r < 0 ? r : cpuset_parse(line, ret);
}

int sysfs_link_name(const char *root, const char *rel, char *buf, size_t len)
{
	char path[VMENV_MAX_PATH], real[PATH_MAX];
	const char *base;
	struct stat st;
	int r = sysfs_path(root, rel, path, sizeof(path));

	if (r < 0)
		return r;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISLNK(st.st_mode))
		return -EINVAL;
	/* Resolved, not the link's text: "../../../0000:3b:00.0" on a real
	 * node, maybe "../.." in a tree made with ln -r. */
	if (!realpath(path, real))
		return -errno;
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	return str_printf(buf, len, "%s", base);
}

int sysfs_write(const char *root, const char *rel, const char *text)
{
	char path[VMENV_MAX_PATH];
	_cleanup_close_ int fd = -1;
	int r = sysfs_path(root, rel, path, sizeof(path));

	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	return write_full(fd, text, strlen(text));
}
