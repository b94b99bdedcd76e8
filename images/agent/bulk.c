// SPDX-License-Identifier: MIT
/*
 * Bulk ports, guest side (agentwire.h, docs/design.md §9): a session's
 * stdout is a virtio-serial port of its own, and the command writes to it
 * directly. The agent only opens the port, lets the child write the start
 * marker before exec (spawn.c), and writes the end marker once the
 * command's process group is gone.
 *
 * The port is never made non-blocking: O_NONBLOCK belongs to the open file
 * description, which the command shares as its stdout, and a command that
 * gets EAGAIN on its stdout fails. The agent's own blocking write (the end
 * marker, while the host is not reading) is done by a short-lived child,
 * so the agent's loop never waits on the port.
 */
#include "agent.h"
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* The ports' devices, found once: a port's name never changes while the
 * guest runs, and looking it up in sysfs takes a dozen system calls, each
 * slow under emulation, at every EXEC. */
static char port_dev[AW_MAX_BULK_PORTS][300];

static int port_path(uint32_t port, bool fresh)
{
	char name[64];

	if (port >= AW_MAX_BULK_PORTS)
		return -EINVAL;
	if (port_dev[port][0] && !fresh)
		return 0;
	snprintf(name, sizeof(name), AW_BULK_PORT_FMT, port);
	return relay_port_by_name(name, port_dev[port], sizeof(port_dev[0]));
}

int bulk_open(uint32_t port, int *ret_fd)
{
	int fd = -1, r;

	for (int fresh = 0; fresh < 2 && fd < 0; fresh++) {
		r = port_path(port, fresh);
		if (r < 0)
			return r;
		/* EBUSY: a process of an earlier session still has it. */
		fd = open(port_dev[port], O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno != ENOENT && errno != ENXIO)
			return -errno;
	}
	if (fd < 0)
		return -ENOENT;
	*ret_fd = fd;
	return 0;
}

bool bulk_group_gone(pid_t pgid)
{
	return kill(-pgid, 0) < 0 && errno == ESRCH;
}

pid_t bulk_write_end(int fd, const uint8_t mark[AW_BULK_MARK_LEN])
{
	pid_t pid = fork();

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	/* A port write of at most 32 KiB goes in whole, in order after
	 * every write of the command that already returned. */
	_exit(agent_write_all(fd, mark, AW_BULK_MARK_LEN) < 0 ? 1 : 0);
}
