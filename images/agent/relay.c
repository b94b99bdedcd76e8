// SPDX-License-Identifier: MIT
#include "relay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORTS_DIR "/sys/class/virtio-ports"

static int port_by_name(const char *name, char *dev, size_t size)
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

static void check_host(struct relay *r);
static int mount_relaying(struct relay *r, const char *port_name,
			  const char *path, const char *opts);

static int fail(char *msg, size_t size, int err, const char *what,
		const char *arg)
{
	snprintf(msg, size, "%s '%s': %s", what, arg, strerror(err));
	return -err;
}

int relay_mount(struct relay *r, const char *port_name, const char *path,
		char *msg, size_t size)
{
	char dev[300], opts[256];
	int sv[2], e;

	*r = (struct relay){.port = -1, .sock = -1};
	if ((e = -port_by_name(port_name, dev, sizeof(dev))) > 0)
		return fail(msg, size, e, "no virtio-serial port", port_name);
	r->up = malloc(RELAY_BUF);
	r->down = malloc(RELAY_BUF);
	if (!r->up || !r->down) {
		e = ENOMEM;
		goto err;
	}
	r->port = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (r->port < 0) {
		e = errno;
		goto err;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		e = errno;
		goto err;
	}
	snprintf(opts, sizeof(opts),
		 "trans=fd,rfdno=%d,wfdno=%d," RELAY_MOUNT_OPTS, sv[1], sv[1]);
	r->sock = sv[0];
	if (fcntl(r->sock, F_SETFL, O_NONBLOCK) < 0) {
		e = errno;
		close(sv[1]);
		goto err;
	}
	check_host(r);
	e = mount_relaying(r, port_name, path, opts);
	/* The client holds its own reference to sv[1] now. */
	close(sv[1]);
	if (e)
		goto err;
	return 0;
err:
	if (r->sock >= 0)
		close(r->sock);
	if (r->port >= 0)
		close(r->port);
	free(r->up);
	free(r->down);
	*r = (struct relay){.port = -1, .sock = -1};
	return fail(msg, size, e, "mount 9p over port", port_name);
}

size_t relay_poll(struct relay *r, struct pollfd *fds)
{
	size_t n = 0;

	if (r->port < 0)
		return 0;
	fds[n++] = (struct pollfd){
	    .fd = r->sock,
	    .events = (short)((r->host && r->up_len < RELAY_BUF ? POLLIN : 0) |
			      (r->down_len ? POLLOUT : 0))};
	if (r->host)
		fds[n++] = (struct pollfd){
		    .fd = r->port,
		    .events = (short)((r->down_len < RELAY_BUF ? POLLIN : 0) |
				      (r->up_len ? POLLOUT : 0))};
	return n;
}

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

/* The client's end closed (the share was unmounted): the relay ends. */
static void relay_close(struct relay *r)
{
	close(r->sock);
	close(r->port);
	free(r->up);
	free(r->down);
	*r = (struct relay){.port = -1, .sock = -1};
}

void relay_events(struct relay *r, const struct pollfd *fds, size_t n)
{
	if (r->port < 0)
		return;
	/* A read of 0 from the port means the host is away, not an end. */
	if (n >= 2 && (fds[1].revents & POLLIN))
		fill(r->port, r->down, &r->down_len);
	if (n >= 1 && (fds[0].revents & (POLLIN | POLLHUP)) &&
	    fill(r->sock, r->up, &r->up_len) < 0) {
		relay_close(r);
		return;
	}
	if (r->down_len)
		drain(r->sock, r->down, &r->down_len);
	check_host(r);
	if (r->host && r->up_len)
		drain(r->port, r->up, &r->up_len);
}

/* mount() waits for the server's answer to Tversion, which only the relay
 * can bring: a child mounts (same mount namespace) while this process
 * relays. 0 or the errno of mount. */
static int mount_relaying(struct relay *r, const char *port_name,
			  const char *path, const char *opts)
{
	struct pollfd fds[2];
	int status, waited;
	pid_t pid = fork();

	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(mount(port_name, path, "9p", 0, opts) < 0 ? errno : 0);
	for (waited = 0; waited < RELAY_MOUNT_TIMEOUT_MS; waited += 50) {
		size_t n = relay_poll(r, fds);

		poll(fds, n, 50);
		relay_events(r, fds, n);
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
	}
	/* No server answered: the child stays in mount() until the port
	 * goes away; the caller reports the timeout. */
	kill(pid, SIGKILL);
	return ETIMEDOUT;
}
