/* SPDX-License-Identifier: MIT */
/*
 * Frames from a guest that vmmd has no use for: output of a session vmmd
 * already ended, a session id it never issued, a HELLO or a checkpoint
 * answer it never asked for, a second EOF. No window applies to them, so a
 * guest that sends them without end costs root's vmmd a core for nothing
 * (issue 14, finding 13). Some are honest races, and each has an allowance:
 *
 *  - a session vmmd ended while its command ran (the task went away, or a
 *    restored guest's session nobody re-attached to) may still send what
 *    its window allows: the output bytes not yet credited, CREDIT for the
 *    stdin vmmd sent, and a few frames without data (STARTED, two EOFs);
 *    EXIT or EXEC_FAIL ends the allowance (the guest says it is over);
 *  - everything else draws on a small grace per job (a few frames: a late
 *    answer to a vmmd that restarted, an ended session whose record the
 *    ring already reused), refilled slowly over time.
 *
 * Past both, the caller fails the job: the guest is flooding.
 * Pure: no I/O, no logging; the caller passes the clock. A zeroed struct
 * stray is a valid empty one.
 */
#ifndef VMMD_STRAY_H
#define VMMD_STRAY_H

#include <errno.h>
#include <stdint.h>

/* Ended sessions remembered per job: twice as many as can run at once. */
#define STRAY_MAX_ENDED 128u
/* Frames without data an ended session may still send. */
#define STRAY_ENDED_FRAMES 8u
/* The grace: bytes (payload plus STRAY_FRAME_COST per frame, so that
 * empty frames count too), and how fast it comes back. */
#define STRAY_GRACE	   (256u * 1024u)
#define STRAY_FRAME_COST   256u
#define STRAY_REFILL_PER_S 4096u
/* What stray_*() return when the budget is spent. */
#define STRAY_OVER (-EDQUOT)

struct stray_ended {
	uint32_t id; /* 0: free */
	uint32_t out_left;
	uint32_t credit_left;
	uint32_t frames_left;
};

struct stray {
	struct stray_ended ended[STRAY_MAX_ENDED];
	uint32_t next; /* the ring's next slot */
	uint64_t grace_used;
	uint64_t grace_ms; /* when grace_used was last brought up to date */
	/* Dropped so far (for the job's failure message). */
	uint64_t frames, bytes;
};

/* vmmd ended session id while the guest may still send for it: out_left
 * output bytes (the window not yet credited back), credit_left bytes of
 * stdin the agent may still return. Replaces an earlier record of id; the
 * oldest record goes when all are in use. */
void stray_session_ended(struct stray *s, uint32_t id, uint32_t out_left,
			 uint32_t credit_left);
/* A frame for session id, which vmmd does not have. 0: drop it;
 * STRAY_OVER: the budget is spent. */
int stray_session_frame(struct stray *s, uint32_t id, uint8_t type,
			const uint8_t *p, uint32_t len, uint64_t now_ms);
/* Any other frame vmmd drops (out of phase): charged to the grace. */
int stray_frame(struct stray *s, uint32_t len, uint64_t now_ms);

#endif
