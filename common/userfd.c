/* SPDX-License-Identifier: MIT */
#include "userfd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

int userfd_check(int fd, int accmode)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if (fl & O_PATH)
		return -EBADF;
	if ((fl & O_ACCMODE) != O_RDWR && (fl & O_ACCMODE) != accmode)
		return -EBADF;
	return 0;
}

/* The thread's file system identity. Raw system calls: glibc's wrappers
 * would change every thread of vmmd (its checkpoint workers too). */
struct fs_creds {
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[NGROUPS_MAX];
};

static int fs_save(struct fs_creds *c)
{
	c->fsuid = (uid_t)syscall(SYS_setfsuid, -1);
	c->fsgid = (gid_t)syscall(SYS_setfsgid, -1);
	c->ngroups = (int)syscall(SYS_getgroups, NGROUPS_MAX, c->groups);
	return c->ngroups < 0 ? -errno : 0;
}

/* setfsuid reports no error: success is the value read back. */
static bool fs_set(uid_t uid, gid_t gid, int ngroups, const gid_t *groups)
{
	if (syscall(SYS_setgroups, (size_t)ngroups, groups) < 0)
		return false;
	syscall(SYS_setfsgid, gid);
	syscall(SYS_setfsuid, uid);
	return (uid_t)syscall(SYS_setfsuid, -1) == uid &&
	       (gid_t)syscall(SYS_setfsgid, -1) == gid;
}

static void fs_restore(const struct fs_creds *c)
{
	/* The fsuid first: it brings back the capabilities setgroups and
	 * the rest may need. Running on with a user's identity (or half of
	 * it) is worse than stopping. */
	syscall(SYS_setfsuid, c->fsuid);
	if (!fs_set(c->fsuid, c->fsgid, c->ngroups, c->groups))
		abort();
}

int userfd_as_user(const struct userfd_ids *ids, int (*fn)(void *arg),
		   void *arg)
{
	struct fs_creds saved;
	int r;

	if (ids->ngroups > NGROUPS_MAX)
		return -E2BIG;
	if ((r = fs_save(&saved)) < 0)
		return r;
	if (!fs_set(ids->uid, ids->gid, (int)ids->ngroups, ids->groups)) {
		r = errno ? -errno : -EPERM;
		fs_restore(&saved);
		return r;
	}
	r = fn(arg);
	fs_restore(&saved);
	return r;
}

struct reopen {
	int fd;
	int flags;
};

static int reopen_fn(void *arg)
{
	const struct reopen *ro = arg;
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro->fd);
	fd = open(path, ro->flags);
	return fd < 0 ? -errno : fd;
}

static int reopen_as(const struct userfd_ids *ids, int fd, int flags)
{
	struct reopen ro = {.fd = fd, .flags = flags};

	return userfd_as_user(ids, reopen_fn, &ro);
}

static bool needs_reopen(int fd, int *r)
{
	struct stat st;

	*r = fstat(fd, &st) < 0 ? -errno : 0;
	return *r == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
}

/* Sockets, and what the user could not open again, are made
 * non-blocking in place; regular files never block. */
static void nonblock_in_place(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		fd_set_nonblock(fd, true);
}

int userfd_own_nonblock(const struct userfd_ids *ids, int *fds,
			const int *accmodes, size_t n)
{
	int news[USERFD_MAX], r;

	if (n > USERFD_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		news[i] = -1;
		if ((r = userfd_check(fds[i], accmodes[i])) < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (!needs_reopen(fds[i], &r)) {
			if (r < 0)
				goto fail;
			continue;
		}
		news[i] =
		    reopen_as(ids, fds[i],
			      accmodes[i] | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	}
	for (size_t i = 0; i < n; i++) {
		if (news[i] >= 0) {
			close(fds[i]);
			fds[i] = news[i];
		}
		nonblock_in_place(fds[i]);
	}
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		if (news[i] >= 0)
			close(news[i]);
	return r;
}

int userfd_reopen_read(const struct userfd_ids *ids, int fd)
{
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((r = userfd_check(fd, O_WRONLY)) < 0)
		return r;
	return reopen_as(ids, fd, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}
