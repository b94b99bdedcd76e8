/* SPDX-License-Identifier: MIT */
/*
 * vmmd's end of a job's agent channel: connects to the Unix socket QEMU
 * listens on, frames per agentwire, runs the HELLO/SETUP handshake and hands
 * session frames to exec.c. Everything from the guest is untrusted: a frame
 * that is malformed, oversized, or out of place fails that job only. Frames
 * vmmd drops (an unasked HELLO or checkpoint answer, a session it ended or
 * never issued) are allowed within a budget (stray.h) and then fail it too.
 */
#ifndef VMMD_AGENT_H
#define VMMD_AGENT_H

#include <stddef.h>
#include <stdint.h>

struct job;

/* Starts connecting (retried until the boot timer ends the wait). */
int agent_attach(struct job *j);
void agent_detach(struct job *j);
/* Queues a frame. -ENOTCONN when the channel is down, -ENOBUFS when the
 * queue is over its bound. */
int agent_send(struct job *j, uint8_t type, uint32_t session,
	       const void *payload, size_t len);

#endif
