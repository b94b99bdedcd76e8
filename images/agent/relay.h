/* SPDX-License-Identifier: MIT */
/*
 * The job's files served outside QEMU (vmmd/files/jobfiles.h, JOBFILES_SERVED),
 * guest side. The kernel's 9p client cannot use a virtio-serial port as
 * its trans=fd descriptor (virtio_console has no write_iter, and the
 * kernel writes with kernel_write()), and it would take the port's close
 * (the host's server restarting across a checkpoint) as the end of the
 * mount. So the client gets one end of a socketpair, and a relay process
 * moves bytes between the other end and the port. The relay's buffers are
 * in guest memory and are saved with it; while the host's end is away (no
 * server: a save, a restore, a new server starting) the relay stops
 * forwarding the client's requests, which wait in the socket, and the
 * mount never notices.
 *
 * The relay is a process of its own, not a part of the agent's loop: a
 * process that splices a file of the share into a pipe the agent reads
 * (busybox cat does: sendfile to its stdout) holds that pipe's lock while
 * it waits for the server, and an agent blocked on the pipe could then
 * never relay the answer.
 *
 * Bytes are relayed as they come: no 9P parsing here (vmenv-9p checks
 * every message).
 */
#ifndef VMENV_AGENT_RELAY_H
#define VMENV_AGENT_RELAY_H

#include <stddef.h>
#include <sys/types.h>

/* Per direction; at least the msize the client asks for. */
#define RELAY_BUF   (512u * 1024u)
#define RELAY_MSIZE "262144"
/* The client's mount options, after rfdno/wfdno. */
#define RELAY_MOUNT_OPTS "version=9p2000.L,msize=" RELAY_MSIZE ",access=user"

/* The device (/dev/vportNpM) of the virtio-serial port named name. 0 or
 * -ENOENT (or the errno of reading sysfs). */
int relay_port_by_name(const char *name, char *dev, size_t size);

/* Finds the virtio-serial port named port_name, starts the relay process
 * and mounts a 9p client on path over it. Returns the relay's pid (it
 * runs until the share is unmounted), or -errno with the reason in msg. */
pid_t relay_start(const char *port_name, const char *path, char *msg,
		  size_t size);

#endif
