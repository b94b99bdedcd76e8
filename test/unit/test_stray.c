// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/stray.c: what a guest may still send for sessions
 * vmmd ended (their windows), what else it gets (a small grace, refilled
 * slowly), and that a flood of either is cut off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <string.h>

#include "agentwire.h"
#include "cleanup.h"
#include "stray.h"

enum op {
	STOP,	/* the end of a case's steps */
	END,	/* stray_session_ended(id, len = out_left, credit) */
	FRAME,	/* stray_session_frame(id, type, len or CREDIT(credit)) */
	OTHER,	/* stray_frame(len) */
	GRACE0, /* no grace spent so far */
	GRACE,	/* some grace spent */
};

struct step {
	enum op op;
	uint32_t id;
	uint8_t type;
	uint32_t len;
	uint32_t credit;
	unsigned times; /* 0: once */
	int want;	/* of each time */
	uint64_t at_ms; /* the clock (0: as the step before) */
};

#define MAXF AW_MAX_AGENT_PAYLOAD
/* Frames of the largest size that fit in the grace. */
#define GRACE_MAXF (STRAY_GRACE / (MAXF + STRAY_FRAME_COST))

static const struct {
	const char *what;
	struct step steps[8];
} cases[] = {
    {"a session never issued: the grace, then over",
     {{FRAME, 99, AW_STDOUT, MAXF, 0, GRACE_MAXF, 0, 1000},
      {FRAME, 99, AW_STDOUT, MAXF, 0, 1, STRAY_OVER, 0}}},
    {"empty frames cost too",
     {{FRAME, 99, AW_STDOUT, 0, 0, STRAY_GRACE / STRAY_FRAME_COST, 0, 1000},
      {FRAME, 99, AW_STDOUT, 0, 0, 1, STRAY_OVER, 0}}},
    {"out-of-phase frames share the grace",
     {{OTHER, 0, 0, 0, 0, STRAY_GRACE / STRAY_FRAME_COST, 0, 1000},
      {FRAME, 7, AW_HELLO, 0, 0, 1, STRAY_OVER, 0}}},
    {"an ended session's window is no grace",
     {{END, 5, 0, AW_WINDOW, 0, 0, 0, 1000},
      {FRAME, 5, AW_STDOUT, MAXF, 0, AW_WINDOW / MAXF, 0, 0},
      {GRACE0},
      {FRAME, 5, AW_STDERR, 1, 0, 1, 0, 0},
      {GRACE}}},
    {"an ended session: past its window, the grace, then over",
     {{END, 5, 0, MAXF, 0, 0, 0, 1000},
      {FRAME, 5, AW_STDOUT, MAXF, 0, 1 + GRACE_MAXF, 0, 0},
      {FRAME, 5, AW_STDOUT, MAXF, 0, 1, STRAY_OVER, 0}}},
    {"an ended session: its last frames without data",
     {{END, 5, 0, 0, 0, 0, 0, 1000},
      {FRAME, 5, AW_STARTED, 4, 0, 1, 0, 0},
      {FRAME, 5, AW_STDOUT, 0, 0, 1, 0, 0},
      {FRAME, 5, AW_STDERR, 0, 0, STRAY_ENDED_FRAMES - 2, 0, 0},
      {GRACE0},
      {FRAME, 5, AW_STDERR, 0, 0, 1, 0, 0},
      {GRACE}}},
    {"EXIT ends an ended session's allowance",
     {{END, 5, 0, AW_WINDOW, 0, 0, 0, 1000},
      {FRAME, 5, AW_EXIT, 8, 0, 1, 0, 0},
      {GRACE0},
      {FRAME, 5, AW_STDOUT, 1, 0, 1, 0, 0},
      {GRACE}}},
    {"EXEC_FAIL too",
     {{END, 5, 0, AW_WINDOW, 0, 0, 0, 1000},
      {FRAME, 5, AW_EXEC_FAIL, 8, 0, 1, 0, 0},
      {FRAME, 5, AW_STDOUT, 1, 0, 1, 0, 0},
      {GRACE}}},
    {"an ended session returns the stdin it was sent, no more",
     {{END, 5, 0, 0, 100, 0, 0, 1000},
      {FRAME, 5, AW_CREDIT, 4, 60, 1, 0, 0},
      {FRAME, 5, AW_CREDIT, 4, 40, 1, 0, 0},
      {GRACE0},
      {FRAME, 5, AW_CREDIT, 4, 1, 1, 0, 0},
      {GRACE}}},
    {"a CREDIT of 0 is no credit",
     {{END, 5, 0, 0, 100, 0, 0, 1000},
      {FRAME, 5, AW_CREDIT, 4, 0, 1, 0, 0},
      {GRACE}}},
    {"the grace comes back with time",
     {{OTHER, 0, 0, MAXF, 0, GRACE_MAXF, 0, 1000},
      {OTHER, 0, 0, MAXF, 0, 1, STRAY_OVER, 0},
      {OTHER, 0, 0, 0, 0, 1, 0,
       1000 + 1000ull * STRAY_GRACE / STRAY_REFILL_PER_S},
      {OTHER, 0, 0, MAXF, 0, GRACE_MAXF, 0, 0},
      {OTHER, 0, 0, MAXF, 0, 1, STRAY_OVER, 0}}},
    {"but not faster than its rate",
     {{OTHER, 0, 0, MAXF, 0, GRACE_MAXF, 0, 1000},
      {OTHER, 0, 0, MAXF, 0, 1, STRAY_OVER, 0},
      {OTHER, 0, 0, MAXF, 0, 1, STRAY_OVER, 2000}}},
    {"session 0 is never an ended session",
     {{END, 0, 0, AW_WINDOW, 0, 0, 0, 1000},
      {FRAME, 0, AW_STDOUT, 1, 0, 1, 0, 0},
      {GRACE}}},
};

static void run_step(struct stray *s, const struct step *st, uint64_t now,
		     const char *what, size_t i)
{
	uint8_t credit[4] = {(uint8_t)(st->credit >> 24),
			     (uint8_t)(st->credit >> 16),
			     (uint8_t)(st->credit >> 8), (uint8_t)st->credit};

	for (unsigned t = 0; t < (st->times ? st->times : 1); t++) {
		int r = 0;

		switch (st->op) {
		case STOP:
			return;
		case END:
			stray_session_ended(s, st->id, st->len, st->credit);
			continue;
		case FRAME:
			r = stray_session_frame(
			    s, st->id, st->type,
			    st->type == AW_CREDIT ? credit : NULL,
			    st->type == AW_CREDIT ? 4 : st->len, now);
			break;
		case OTHER:
			r = stray_frame(s, st->len, now);
			break;
		case GRACE0:
			if (s->grace_used)
				fail_msg("%s, step %zu: grace spent", what, i);
			continue;
		case GRACE:
			if (!s->grace_used)
				fail_msg("%s, step %zu: no grace spent", what,
					 i);
			continue;
		}
		if (r != st->want)
			fail_msg("%s, step %zu, time %u: %d, want %d", what, i,
				 t, r, st->want);
	}
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct stray s;
		uint64_t now = 0;

		memset(&s, 0, sizeof(s));
		for (size_t i = 0; i < ARRAY_SIZE(cases[c].steps); i++) {
			const struct step *st = &cases[c].steps[i];

			if (st->op == STOP)
				break;
			if (st->at_ms)
				now = st->at_ms;
			run_step(&s, st, now, cases[c].what, i);
		}
	}
}

/* The ring keeps the last STRAY_MAX_ENDED sessions; the oldest goes. */
static void test_ring(void **state)
{
	struct stray s;

	(void)state;
	memset(&s, 0, sizeof(s));
	for (uint32_t id = 1; id <= STRAY_MAX_ENDED + 1; id++)
		stray_session_ended(&s, id, 10, 0);
	assert_int_equal(stray_session_frame(&s, 2, AW_STDOUT, NULL, 10, 1), 0);
	assert_int_equal(s.grace_used, 0);
	assert_int_equal(stray_session_frame(&s, 1, AW_STDOUT, NULL, 10, 1), 0);
	assert_int_not_equal(s.grace_used, 0);
	/* The same session twice keeps one record, with the new window. */
	memset(&s, 0, sizeof(s));
	stray_session_ended(&s, 5, 10, 0);
	stray_session_ended(&s, 5, 20, 0);
	assert_int_equal(s.next, 1);
	assert_int_equal(stray_session_frame(&s, 5, AW_STDOUT, NULL, 20, 1), 0);
	assert_int_equal(s.grace_used, 0);
	assert_int_equal(s.frames, 1);
	assert_int_equal(s.bytes, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
