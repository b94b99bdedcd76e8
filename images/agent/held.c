// SPDX-License-Identifier: MIT
/*
 * agentwire v3: what a session sent and the host did not yet credit, kept
 * for a host that resumes the session after a vmmd restart (resume.c).
 * Pure buffer keeping, below both session.c and resume.c.
 */
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool agent_resumable(const struct agent *a)
{
	return a->version >= 3;
}

uint32_t held_rec_len(const uint8_t *r)
{
	return (uint32_t)r[1] << 24 | (uint32_t)r[2] << 16 |
	       (uint32_t)r[3] << 8 | r[4];
}

static void rec_set_len(uint8_t *r, uint32_t n)
{
	r[1] = (uint8_t)(n >> 24);
	r[2] = (uint8_t)(n >> 16);
	r[3] = (uint8_t)(n >> 8);
	r[4] = (uint8_t)n;
}

static int rec_put(struct aw_buf *b, enum stream k, const uint8_t *p, size_t n)
{
	uint8_t h[HELD_REC_HDR] = {(uint8_t)k};

	rec_set_len(h, (uint32_t)n);
	if (aw_put_bytes(b, h, sizeof(h)) < 0 || aw_put_bytes(b, p, n) < 0)
		return -ENOMEM;
	return 0;
}

void held_add(struct session *s, enum stream k, const uint8_t *p, size_t n)
{
	if (s->held_lost)
		return;
	if (rec_put(&s->held, k, p, n) < 0) {
		agent_log("session %u: cannot keep its output for a vmmd "
			  "restart: out of memory",
			  s->id);
		s->held_lost = true;
		return;
	}
	s->held_n[k] += (uint32_t)n;
}

/* The host wrote n more bytes where the task reads them: they are the
 * oldest kept, in the order they were sent. */
void held_credit(struct session *s, uint32_t n)
{
	while (n && s->held_off < s->held.len) {
		uint8_t *r = s->held.data + s->held_off;
		uint32_t len = held_rec_len(r), take = len < n ? len : n;

		s->held_n[r[0]] -= take;
		n -= take;
		if (take == len) {
			s->held_off += HELD_REC_HDR + len;
			continue;
		}
		/* Part of a record: what is left of it, and the records
		 * after it, move up behind its header. */
		memmove(r + HELD_REC_HDR, r + HELD_REC_HDR + take,
			s->held.len - s->held_off - HELD_REC_HDR - take);
		rec_set_len(r, len - take);
		s->held.len -= take;
	}
	if (s->held_off == s->held.len) {
		s->held.len = s->held_off = 0;
	} else if (s->held_off > s->held.len / 2) {
		memmove(s->held.data, s->held.data + s->held_off,
			s->held.len - s->held_off);
		s->held.len -= s->held_off;
		s->held_off = 0;
	}
}

/* Keeps only what follows off[] in each stream, in the order sent. */
int held_trim(struct session *s, const uint64_t off[STREAM_N])
{
	uint64_t pos[STREAM_N];
	struct aw_buf nb = {0};

	for (int k = 0; k < STREAM_N; k++)
		pos[k] = s->sent[k] - s->held_n[k];
	for (size_t o = s->held_off; o < s->held.len;) {
		const uint8_t *r = s->held.data + o;
		uint32_t len = held_rec_len(r);
		enum stream k = (enum stream)r[0];
		uint64_t skip = off[k] > pos[k] ? off[k] - pos[k] : 0;

		if (skip < len &&
		    rec_put(&nb, k, r + HELD_REC_HDR + skip, len - skip) < 0) {
			aw_buf_free(&nb);
			return -ENOMEM;
		}
		pos[k] += len;
		o += HELD_REC_HDR + len;
	}
	aw_buf_free(&s->held);
	s->held = nb;
	s->held_off = 0;
	for (int k = 0; k < STREAM_N; k++)
		s->held_n[k] = (uint32_t)(s->sent[k] - off[k]);
	return 0;
}
