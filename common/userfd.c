/* SPDX-License-Identifier: MIT */
#include "userfd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
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

/* In the child: the raw system calls, not glibc's wrappers, which in a
 * process forked from a threaded one would try to reach threads that are
 * not there. Checked: no way back to root afterwards. */
static int become(const struct userfd_ids *ids)
{
	uid_t r, e, s;

	if (syscall(SYS_setgroups, ids->ngroups, ids->groups) < 0 ||
	    syscall(SYS_setresgid, ids->gid, ids->gid, ids->gid) < 0 ||
	    syscall(SYS_setresuid, ids->uid, ids->uid, ids->uid) < 0)
		return -1;
	if (getresuid(&r, &e, &s) < 0 || r != ids->uid || e != ids->uid ||
	    s != ids->uid || syscall(SYS_setresuid, 0, 0, 0) == 0)
		return -1;
	/* /proc/self/fd of a process that changed its ids is root's unless
	 * it is made dumpable again; it is the user's own process now. */
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

struct job_in {
	const int *fds;
	const int *flags;
	size_t n;
};

/* The child: open each /proc/self/fd/N as the user, send the results
 * (one message: an errno per fd, the fds that opened). */
static void child(int sock, const struct userfd_ids *ids,
		  const struct job_in *in, char (*paths)[32])
{
	int err[USERFD_MAX], out[USERFD_MAX];
	size_t nout = 0;
	char cbuf[CMSG_SPACE(sizeof(int) * USERFD_MAX)];
	struct iovec iov = {.iov_base = err, .iov_len = sizeof(int) * in->n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (become(ids) < 0)
		_exit(1);
	for (size_t i = 0; i < in->n; i++) {
		int fd = open(paths[i], in->flags[i]);

		err[i] = fd < 0 ? errno : 0;
		if (fd >= 0)
			out[nout++] = fd;
	}
	if (nout) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nout);
		if (!(c = CMSG_FIRSTHDR(&mh)))
			_exit(1);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nout);
		memcpy(CMSG_DATA(c), out, sizeof(int) * nout);
	}
	_exit(sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? 1 : 0);
}

static int recv_result(int sock, size_t n, int *err, int *got, size_t *ngot)
{
	char cbuf[CMSG_SPACE(sizeof(int) * USERFD_MAX)];
	struct iovec iov = {.iov_base = err, .iov_len = sizeof(int) * n};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct pollfd p = {.fd = sock, .events = POLLIN};
	ssize_t len;

	*ngot = 0;
	if (poll(&p, 1, USERFD_TIMEOUT_MS) <= 0)
		return -ETIMEDOUT;
	len = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (len < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			memcpy(got, CMSG_DATA(c), sizeof(int) * k);
			*ngot = k;
		}
	if ((size_t)len != sizeof(int) * n || (mh.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	return 0;
}

/* Opens in->fds as ids in a child; ret[i] = the new fd or -errno. */
static int open_as(const struct userfd_ids *ids, const struct job_in *in,
		   int *ret)
{
	char paths[USERFD_MAX][32];
	int sv[2], err[USERFD_MAX], got[USERFD_MAX], r, status;
	size_t ngot = 0, k = 0;
	pid_t pid;

	if (in->n > USERFD_MAX)
		return -E2BIG;
	for (size_t i = 0; i < in->n; i++)
		snprintf(paths[i], sizeof(paths[i]), "/proc/self/fd/%d",
			 in->fds[i]);
	/* Root's own job: opening as root is acting for root. */
	if (ids->uid == 0) {
		for (size_t i = 0; i < in->n; i++) {
			ret[i] = open(paths[i], in->flags[i]);
			ret[i] = ret[i] < 0 ? -errno : ret[i];
		}
		return 0;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		child(sv[1], ids, in, paths);
	}
	close(sv[1]);
	r = pid < 0 ? -errno : recv_result(sv[0], in->n, err, got, &ngot);
	close(sv[0]);
	if (pid > 0) {
		if (r < 0)
			kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	for (size_t i = 0; i < in->n; i++) {
		if (r < 0)
			ret[i] = r;
		else if (err[i])
			ret[i] = -err[i];
		else
			ret[i] = k < ngot ? got[k++] : -EPROTO;
	}
	for (; k < ngot; k++)
		close(got[k]);
	return r;
}

static bool needs_reopen(int fd, int *r)
{
	struct stat st;

	*r = fstat(fd, &st) < 0 ? -errno : 0;
	return *r == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
}

int userfd_own_nonblock(const struct userfd_ids *ids, int *fds,
			const int *accmodes, size_t n)
{
	int which[USERFD_MAX], flags[USERFD_MAX], olds[USERFD_MAX],
	    news[USERFD_MAX], r;
	struct job_in in = {.fds = olds, .flags = flags};

	if (n > USERFD_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if ((r = userfd_check(fds[i], accmodes[i])) < 0)
			return r;
		if (!needs_reopen(fds[i], &r)) {
			if (r < 0)
				return r;
			continue;
		}
		which[in.n] = (int)i;
		olds[in.n] = fds[i];
		flags[in.n++] = accmodes[i] | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
	}
	if (in.n && (r = open_as(ids, &in, news)) < 0)
		return r;
	for (size_t k = 0; k < in.n; k++) {
		int *fd = &fds[which[k]];

		if (news[k] < 0)
			continue;
		close(*fd);
		*fd = news[k];
	}
	/* Sockets, and what the user could not open again. Regular files
	 * never block. */
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (fstat(fds[i], &st) == 0 && !S_ISREG(st.st_mode) &&
		    !S_ISBLK(st.st_mode))
			fd_set_nonblock(fds[i], true);
	}
	return 0;
}

int userfd_reopen_read(const struct userfd_ids *ids, int fd)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY, ret, r;
	struct job_in in = {.fds = &fd, .flags = &flags, .n = 1};
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((r = userfd_check(fd, O_WRONLY)) < 0)
		return r;
	r = open_as(ids, &in, &ret);
	return r < 0 ? r : ret;
}
