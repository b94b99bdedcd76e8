/* SPDX-License-Identifier: MIT */
#include "stray.h"

#include "agentwire.h"

#include <stdbool.h>
#include <stddef.h>

static struct stray_ended *ended_find(struct stray *s, uint32_t id)
{
	for (size_t i = 0; i < STRAY_MAX_ENDED; i++)
		if (s->ended[i].id == id)
			return &s->ended[i];
	return NULL;
}

void stray_session_ended(struct stray *s, uint32_t id, uint32_t out_left,
			 uint32_t credit_left)
{
	struct stray_ended *e = id ? ended_find(s, id) : NULL;

	if (id == 0)
		return;
	if (!e) {
		e = &s->ended[s->next];
		s->next = (s->next + 1) % STRAY_MAX_ENDED;
	}
	*e = (struct stray_ended){.id = id,
				  .out_left = out_left,
				  .credit_left = credit_left,
				  .frames_left = STRAY_ENDED_FRAMES};
}

int stray_frame(struct stray *s, uint32_t len, uint64_t now_ms)
{
	uint64_t back = 0;

	/* The grace comes back at a steady rate: a long job's rare races
	 * never add up to a failure, a flood spends it at once. */
	if (now_ms > s->grace_ms)
		back = (now_ms - s->grace_ms) * STRAY_REFILL_PER_S / 1000;
	s->grace_used = back >= s->grace_used ? 0 : s->grace_used - back;
	s->grace_ms = now_ms;
	s->frames++;
	s->bytes += len;
	s->grace_used += STRAY_FRAME_COST + (uint64_t)len;
	return s->grace_used > STRAY_GRACE ? STRAY_OVER : 0;
}

/* The CREDIT's amount, 0 when malformed. */
static uint32_t credit_of(const uint8_t *p, uint32_t len)
{
	struct aw_reader r;
	uint32_t c;

	aw_reader_init(&r, p, len);
	c = aw_get_u32(&r);
	return aw_reader_done(&r) < 0 ? 0 : c;
}

/* Whether the frame is within what the ended session e may still send. */
static bool ended_allows(struct stray_ended *e, uint8_t type, const uint8_t *p,
			 uint32_t len)
{
	uint32_t c;

	switch (type) {
	case AW_STDOUT:
	case AW_STDERR:
		if (len == 0)
			break; /* an EOF: a frame without data */
		if (len > e->out_left)
			return false;
		e->out_left -= len;
		return true;
	case AW_CREDIT:
		c = credit_of(p, len);
		if (c == 0 || c > e->credit_left)
			return false;
		e->credit_left -= c;
		return true;
	case AW_EXIT:
	case AW_EXEC_FAIL:
		/* The guest is done with it: nothing more may come. */
		e->id = 0;
		return true;
	default:
		break;
	}
	if (e->frames_left == 0)
		return false;
	e->frames_left--;
	return true;
}

int stray_session_frame(struct stray *s, uint32_t id, uint8_t type,
			const uint8_t *p, uint32_t len, uint64_t now_ms)
{
	struct stray_ended *e = id ? ended_find(s, id) : NULL;

	if (e && ended_allows(e, type, p, len)) {
		s->frames++;
		s->bytes += len;
		return 0;
	}
	return stray_frame(s, len, now_ms);
}
