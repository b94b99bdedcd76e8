// SPDX-License-Identifier: MIT
#include "relay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORTS_DIR "/sys/class/virtio-ports"

int relay_port_by_name(const char *name, char *dev, size_t size)
{
	char path[512], got[128];
	struct dirent *e;
	int r = -ENOENT;
	DIR *d = opendir(PORTS_DIR);

	if (!d)
		return -errno;
	while (r == -ENOENT && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PORTS_DIR "/%s/name", e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(got, sizeof(got), f)) {
			got[strcspn(got, "\n")] = '\0';
			if (strcmp(got, name) == 0) {
				snprintf(dev, size, "/dev/%s", e->d_name);
				r = 0;
			}
		}
		fclose(f);
	}
	closedir(d);
	return r;
}

static int fail(char *msg, size_t size, int err, const char *what,
		const char *arg)
{
	snprintf(msg, size, "%s '%s': %s", what, arg, strerror(err));
	return -err;
}

struct relay {
	int port, sock;
	bool host;   /* the host's end is open (no POLLHUP) */
	uint8_t *up; /* client -> host */
	size_t up_len;
	uint8_t *down; /* host -> client */
	size_t down_len;
};

/* Reads into buf[*len..RELAY_BUF) from fd until it would block (a port
 * gives one 4 KiB buffer per read: one read per wakeup would cost a poll
 * per page); -1 on EOF or error. */
static int fill(int fd, uint8_t *buf, size_t *len)
{
	while (*len < RELAY_BUF) {
		ssize_t n = read(fd, buf + *len, RELAY_BUF - *len);

		if (n > 0) {
			*len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
		if (errno == EAGAIN)
			break;
	}
	return 0;
}

/* Writes buf[0..*len) to fd until it would block. */
static void drain(int fd, uint8_t *buf, size_t *len)
{
	size_t off = 0;

	while (off < *len) {
		ssize_t n = write(fd, buf + off, *len - off);

		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		if (n > 0)
			off += (size_t)n;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
}

/* The host's end: present when the port polls without POLLHUP. */
static void check_host(struct relay *r)
{
	struct pollfd p = {.fd = r->port, .events = 0};

	r->host = poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP);
}

/* One turn: poll, then move what can move. Returns -1 once the client's
 * end closed (the share was unmounted). */
static int relay_turn(struct relay *r)
{
	struct pollfd fds[2] = {
	    {.fd = r->sock,
	     .events = (short)((r->host && r->up_len < RELAY_BUF ? POLLIN : 0) |
			       (r->down_len ? POLLOUT : 0))},
	    {.fd = r->port,
	     .events = (short)((r->down_len < RELAY_BUF ? POLLIN : 0) |
			       (r->up_len ? POLLOUT : 0))}};
	/* While the host is away the port would poll POLLHUP at once:
	 * look again every 100 ms instead. */
	nfds_t n = r->host ? 2 : 1;

	if (poll(fds, n, r->host ? -1 : 100) < 0 && errno != EINTR)
		return -1;
	/* A read of 0 from the port means the host is away, not an end. */
	if (n == 2 && (fds[1].revents & POLLIN))
		fill(r->port, r->down, &r->down_len);
	if ((fds[0].revents & (POLLIN | POLLHUP)) &&
	    fill(r->sock, r->up, &r->up_len) < 0)
		return -1;
	if (r->down_len)
		drain(r->sock, r->down, &r->down_len);
	check_host(r);
	if (r->host && r->up_len)
		drain(r->port, r->up, &r->up_len);
	return 0;
}

static _Noreturn void relay_main(int sock, int port)
{
	struct relay r = {.port = port, .sock = sock};
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	r.up = malloc(RELAY_BUF);
	r.down = malloc(RELAY_BUF);
	if (!r.up || !r.down || fcntl(sock, F_SETFL, O_NONBLOCK) < 0)
		_exit(1);
	check_host(&r);
	while (relay_turn(&r) == 0)
		;
	_exit(0);
}

pid_t relay_start(const char *port_name, const char *path, char *msg,
		  size_t size)
{
	char dev[300], opts[256];
	int sv[2], port, e;
	pid_t pid;

	if ((e = -relay_port_by_name(port_name, dev, sizeof(dev))) > 0)
		return fail(msg, size, e, "no virtio-serial port", port_name);
	port = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (port < 0)
		return fail(msg, size, errno, "open port", dev);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		e = errno;
		close(port);
		return fail(msg, size, e, "socketpair for", port_name);
	}
	pid = fork();
	if (pid == 0) {
		/* Only its two descriptors, as 3 and 4 (through higher
		 * numbers: either may be 3 or 4 already). Not the client's
		 * end, or an unmount would never reach the relay as EOF. */
		int s = fcntl(sv[0], F_DUPFD, 10), p = fcntl(port, F_DUPFD, 10);

		if (s < 0 || p < 0 || dup2(s, 3) < 0 || dup2(p, 4) < 0)
			_exit(1);
		close_range(5, ~0u, 0);
		relay_main(3, 4);
	}
	e = pid < 0 ? errno : 0;
	close(sv[0]);
	close(port);
	snprintf(opts, sizeof(opts),
		 "trans=fd,rfdno=%d,wfdno=%d," RELAY_MOUNT_OPTS, sv[1], sv[1]);
	if (!e && mount(port_name, path, "9p", 0, opts) < 0)
		e = errno;
	/* The client holds its own reference to sv[1] now. */
	close(sv[1]);
	if (e && pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return e ? fail(msg, size, e, "mount 9p over port", port_name) : pid;
}
