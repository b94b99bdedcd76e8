/* SPDX-License-Identifier: MIT */
/*
 * The job's files served outside QEMU (vmmd/jobfiles.h, JOBFILES_SERVED),
 * guest side. The kernel's 9p client cannot use a virtio-serial port as
 * its trans=fd descriptor (virtio_console has no write_iter, and the
 * kernel writes with kernel_write()), and it would take the port's close
 * (the host's server restarting across a checkpoint) as the end of the
 * mount. So the client gets one end of a socketpair, and the agent relays
 * bytes between the other end and the port. The relay's buffers are in
 * guest memory and are saved with it; while the host's end is away (no
 * server: a save, a restore, a new server starting) the relay stops
 * forwarding the client's requests, which wait in the socket, and the
 * mount never notices.
 *
 * Bytes are relayed as they come: no 9P parsing here (vmenv-9p checks
 * every message).
 */
#ifndef VMENV_AGENT_RELAY_H
#define VMENV_AGENT_RELAY_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per direction; at least the msize the client asks for. */
#define RELAY_BUF	       (512u * 1024u)
#define RELAY_MSIZE	       "262144"
#define RELAY_MAX	       8
#define RELAY_MOUNT_TIMEOUT_MS 30000
/* The client's mount options, after rfdno/wfdno. */
#define RELAY_MOUNT_OPTS "version=9p2000.L,msize=" RELAY_MSIZE ",access=user"

struct relay {
	int port;    /* the virtio-serial port, or -1 (slot free) */
	int sock;    /* our end of the client's socketpair */
	bool host;   /* the host's end is open (no POLLHUP) */
	uint8_t *up; /* client -> host */
	size_t up_len;
	uint8_t *down; /* host -> client */
	size_t down_len;
};

/* Finds the port named port_name, mounts a 9p client on path over a
 * socketpair, and fills r. 0, or -errno with the reason in msg. */
int relay_mount(struct relay *r, const char *port_name, const char *path,
		char *msg, size_t size);
/* This loop's poll entries: at most 2, into fds; returns how many. The
 * port is left out while the host is away (POLLHUP would spin): the
 * caller then polls with a timeout and calls relay_events() with no
 * revents to look again. */
size_t relay_poll(struct relay *r, struct pollfd *fds);
/* Moves bytes after poll(); fds as filled by relay_poll(). */
void relay_events(struct relay *r, const struct pollfd *fds, size_t n);

#endif
