// SPDX-License-Identifier: MIT
/*
 * Small helpers at the bottom of the agent (they call no other file of
 * it): the log, the clock, the poll set, error messages and the protocol
 * error's reason, 9p mounts and whole-file writes.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void agent_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	/* One write per line, so lines from the agent and the jobs' own
	 * console output do not interleave mid-line. */
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	dprintf(STDERR_FILENO, "vmenv-agent: %.*s", n, line);
}

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pollset_add(struct pollset *ps, int fd, short events, enum poll_kind kind,
		 int slot, uint32_t session)
{
	ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = events};
	ps->own[ps->n] = (struct poll_owner){kind, slot, session};
	ps->n++;
}

int agent_fail(char *msg, size_t size, int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
	n = strlen(msg);
	snprintf(msg + n, size - n, ": %s", strerror(err));
	return -err;
}

int agent_mount_9p(const char *tag, const char *path)
{
	return mount(tag, path, "9p", 0, AGENT_9P_MOUNT_OPTS) < 0 ? -errno : 0;
}

int agent_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int agent_write_file(const char *path, const void *p, size_t n, mode_t mode,
		     uid_t uid, gid_t gid)
{
	char tmp[PATH_MAX];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.vmenv-agent.tmp", path) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return -errno;
	r = agent_write_all(fd, p, n);
	if (!r && fchown(fd, uid, gid) < 0)
		r = -errno;
	if (!r && fchmod(fd, mode) < 0)
		r = -errno;
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* The reason for a protocol error, kept for the host (protocol_error in
 * main.c sends it); the caller returns -EPROTO up to the loop. */
int agent_proto_error(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->errmsg, sizeof(a->errmsg), fmt, ap);
	va_end(ap);
	return -EPROTO;
}
