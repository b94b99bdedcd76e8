// SPDX-License-Identifier: MIT
/*
 * Claims on making a template (warmclaim.h).
 */
#include "warmclaim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#define PREFIX ".claim-"

static int claim_path(const char *dir, const char *key, char *buf, size_t len)
{
	return str_printf(buf, len, "%s/" PREFIX "%s", dir, key);
}

/* The node a claim names ("" if unreadable). */
static void holder_of(int dfd, const char *name, char *buf, size_t len)
{
	_cleanup_close_ int fd =
	    openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

static int create(const char *p, const char *node)
{
	_cleanup_close_ int fd =
	    open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%s\n", node) < 0) {
		unlink(p);
		return -EIO;
	}
	return 0;
}

int warm_claim(const char *dir, const char *key, const char *node,
	       unsigned stale_s, char *holder, size_t holderlen)
{
	char p[4400];
	struct stat st;
	int r;

	holder[0] = '\0';
	if ((r = claim_path(dir, key, p, sizeof(p))) < 0)
		return r;
	if ((r = create(p, node)) != -EEXIST)
		return r;
	holder_of(AT_FDCWD, p, holder, holderlen);
	if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
	    time(NULL) - st.st_mtime <= (time_t)stale_s)
		return -EBUSY;
	/* Stale: its maker is gone. */
	unlink(p);
	holder[0] = '\0';
	r = create(p, node);
	if (r == -EEXIST)
		holder_of(AT_FDCWD, p, holder, holderlen);
	return r == -EEXIST ? -EBUSY : r;
}

int warm_claim_holder(const char *dir, const char *key, char *holder,
		      size_t holderlen)
{
	char p[4400];
	struct stat st;
	int r;

	holder[0] = '\0';
	if ((r = claim_path(dir, key, p, sizeof(p))) < 0)
		return r;
	if (lstat(p, &st) < 0)
		return -errno;
	holder_of(AT_FDCWD, p, holder, holderlen);
	return 0;
}

void warm_unclaim(const char *dir, const char *key)
{
	char p[4400];

	if (claim_path(dir, key, p, sizeof(p)) == 0)
		unlink(p);
}

void warm_claims_clean(const char *dir, const char *node)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char who[128];

		if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0)
			continue;
		holder_of(dirfd(d), e->d_name, who, sizeof(who));
		if (strcmp(who, node) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d)
		closedir(d);
}
