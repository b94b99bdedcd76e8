/* SPDX-License-Identifier: MIT */
/*
 * vmmd's end of a job's agent channel: connects to the Unix socket QEMU
 * listens on, frames per agentwire, runs the HELLO/SETUP handshake and hands
 * what the frames mean to the job's owner through its handlers. Everything
 * from the guest is untrusted: a frame that is malformed, oversized, or out
 * of place fails that job only. Frames vmmd drops (an unasked HELLO or
 * checkpoint answer, a session it ended or never issued) are allowed within
 * a budget (stray.h) and then fail it too.
 *
 * A transport: the channel guards the wire (sizes, versions, which answers
 * were asked for) and decides nothing about the job's life; what SETUP
 * says, what a HELLO or SETUP_OK means for the job, and where session and
 * checkpoint frames go are the owner's (job.c fills the handlers).
 */
#ifndef VMMD_AGENT_H
#define VMMD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"
#include "metrics.h"

struct job;

struct agent_handlers {
	/* The payload of SETUP for an agent that speaks protocol version
	 * (the job's identity, mounts, files, network): encoded into out
	 * (aw_setup_encode). <0: SETUP cannot be built (the job fails). */
	int (*build_setup)(struct job *j, uint32_t version, struct aw_buf *out);
	/* The agent answered HELLO (the first answer only; j->agent_ckpt and
	 * j->agent_bulk are set from flags, AW_HELLO_*). Returns true when
	 * the guest gets its SETUP now, false when the owner took it from
	 * here (a guest holding a checkpoint, or one already set up). */
	bool (*on_hello)(struct job *j, uint32_t flags);
	/* SETUP_OK: the guest is set up. */
	void (*on_setup_ok)(struct job *j);
	/* A frame of session h->session (not 0), its payload p (h->len
	 * bytes, size-checked). <0: the guest broke the protocol (the job
	 * fails with the frame named; a stray frame's STRAY_OVER too). */
	int (*on_session_frame)(struct job *j, const struct aw_hdr *h,
				const uint8_t *p);
	/* CKPT_OK or CKPT_REFUSED answering a CKPT_PREPARE or CKPT_RESUME
	 * vmmd sent (unasked ones never get here). <0 as above. */
	int (*on_ckpt_frame)(struct job *j, uint8_t type, const uint8_t *p,
			     size_t n);
	/* The channel failed: msg names the job and why, for its tasks. The
	 * owner ends the job, and with it the channel (agent_detach) before
	 * it returns: the channel does nothing after. */
	void (*on_fail)(struct job *j, enum metrics_fail reason,
			const char *msg);
};

/* Starts connecting (retried until the boot timer ends the wait); what
 * comes is reported to j->agent_h, which must be set. */
int agent_attach(struct job *j);
void agent_detach(struct job *j);
/* The guest runs now (a restore returned): connect and say HELLO at once
 * rather than at the next retry (up to AGENT_HELLO_MS later). */
void agent_hello_now(struct job *j);
/* Sends SETUP now to a guest whose HELLO the owner took (on_hello false):
 * a warm-started guest, once its template's hold is resumed. -EALREADY
 * when there was no HELLO yet or SETUP went already. */
int agent_setup(struct job *j);
/* Queues a frame. -ENOTCONN when the channel is down, -ENOBUFS when the
 * queue is over its bound. */
int agent_send(struct job *j, uint8_t type, uint32_t session,
	       const void *payload, size_t len);

#endif
