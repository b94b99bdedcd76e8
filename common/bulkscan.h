/* SPDX-License-Identifier: MIT */
/*
 * bulkscan: one session's output in the byte stream of a bulk port
 * (agentwire.h, docs/design.md §9). The port carries no framing: the agent
 * writes the session's start marker before the command's first byte and
 * its end marker after the command ended. Bytes before the start marker
 * and after the end marker (an earlier session's lingering processes, a
 * hostile guest) are dropped; the ones in between are the session's.
 *
 * Pure: no I/O, no allocation, no logging. What it holds back across reads
 * is at most AW_BULK_MARK_LEN - 1 bytes, and only a suffix that could still
 * become a marker: output that cannot be part of one is released at once,
 * so a command that prints a line and waits is seen at once.
 */
#ifndef VMENV_BULKSCAN_H
#define VMENV_BULKSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"

/* Writable bytes the caller leaves before each piece it feeds. */
#define BULKSCAN_HEADROOM (AW_BULK_MARK_LEN - 1)

enum bulkscan_state {
	BULKSCAN_IDLE,	     /* no session: everything is dropped */
	BULKSCAN_WAIT_START, /* dropping until the start marker */
	BULKSCAN_FORWARD     /* the session's bytes, until the end marker */
};

struct bulkscan {
	enum bulkscan_state st;
	uint8_t start[AW_BULK_MARK_LEN];
	uint8_t end[AW_BULK_MARK_LEN];
	uint8_t held[BULKSCAN_HEADROOM];
	size_t nheld;
};

/* No session on the port (also the initial state of a zeroed struct). */
void bulkscan_idle(struct bulkscan *s);
/* A session was given the port with these markers. */
void bulkscan_arm(struct bulkscan *s, const uint8_t start[AW_BULK_MARK_LEN],
		  const uint8_t end[AW_BULK_MARK_LEN]);

/*
 * Feeds n bytes read from the port at in; in[-BULKSCAN_HEADROOM..-1] must
 * be writable (the held-back bytes are put there). The session's bytes in
 * this piece are one contiguous range, *ret_p and *ret_n (inside the caller's
 * buffer; it may be empty). *ret_ended: the end marker was seen; the
 * scanner is idle, and what followed the marker was dropped.
 */
void bulkscan_feed(struct bulkscan *s, uint8_t *in, size_t n,
		   const uint8_t **ret_p, size_t *ret_n, bool *ret_ended);

/* Draws a pair of markers (getrandom). 0 or -errno. */
int bulkscan_new_marks(uint8_t start[AW_BULK_MARK_LEN],
		       uint8_t end[AW_BULK_MARK_LEN]);

#endif
