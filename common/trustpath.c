/* SPDX-License-Identifier: MIT */
#include "trustpath.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int note(char *bad, size_t badlen, const char *what, int r)
{
	if (bad && badlen)
		snprintf(bad, badlen, "%s", what);
	return r;
}

static bool root_only(const struct stat *st)
{
	return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

int trustpath_check(const char *path, char *bad, size_t badlen)
{
	char real[PATH_MAX], part[PATH_MAX];
	size_t n = strlen(path), have = 1;
	struct stat st;

	if (path[0] != '/' || n >= sizeof(part))
		return note(bad, badlen, path, -EINVAL);
	/* Each component as given: a symlink (/var/run -> /run) must be
	 * root's; its target is checked below, after resolving. */
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(part, path, i);
		part[i] = '\0';
		if (lstat(part, &st) < 0) {
			if (errno == ENOENT)
				break;
			return note(bad, badlen, part, -errno);
		}
		if (st.st_uid != 0)
			return note(bad, badlen, part, -EPERM);
		if (!S_ISLNK(st.st_mode) && !root_only(&st))
			return note(bad, badlen, part, -EPERM);
		have = i;
	}
	/* The part that exists, resolved: its real path must pass too. */
	memcpy(part, path, have);
	part[have] = '\0';
	if (!realpath(part, real))
		return note(bad, badlen, part, -errno);
	if (strcmp(real, part) == 0)
		return 0;
	return trustpath_check(real, bad, badlen);
}
