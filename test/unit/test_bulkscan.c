// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/bulkscan.c: a session's bytes between its markers
 * in a bulk port's stream, whatever the read boundaries are. Each case is
 * one stream, fed whole and in pieces of every size from 1 to 40 bytes,
 * which puts every read boundary inside every marker.
 *
 * In the templates: '{' '}' are the session's start and end markers, '['
 * ']' another session's, '<' the first 8 bytes of the start marker, '>'
 * the first 15 of the end marker, '~' the byte markers begin with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bulkscan.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MARK	      AW_BULK_MARK_LEN

static uint8_t mark_s[MARK], mark_e[MARK], other_s[MARK], other_e[MARK];

static void marks_init(void)
{
	for (size_t i = 0; i < MARK; i++) {
		mark_s[i] = (uint8_t)(0x80 + i);
		mark_e[i] = (uint8_t)(0xa0 + i);
		other_s[i] = (uint8_t)(0xc0 + i);
		other_e[i] = (uint8_t)(0xe0 + i);
	}
	mark_s[0] = mark_e[0] = other_s[0] = other_e[0] = 0xff;
}

struct bytes {
	uint8_t p[1024];
	size_t n;
};

static void put(struct bytes *b, const uint8_t *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->p));
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void expand(const char *t, struct bytes *b)
{
	static const uint8_t ff = 0xff;

	b->n = 0;
	for (; *t; t++) {
		switch (*t) {
		case '{':
			put(b, mark_s, MARK);
			break;
		case '}':
			put(b, mark_e, MARK);
			break;
		case '[':
			put(b, other_s, MARK);
			break;
		case ']':
			put(b, other_e, MARK);
			break;
		case '<':
			put(b, mark_s, 8);
			break;
		case '>':
			put(b, mark_e, MARK - 1);
			break;
		case '~':
			put(b, &ff, 1);
			break;
		default:
			put(b, (const uint8_t *)t, 1);
			break;
		}
	}
}

/* Feeds the stream in pieces of `piece` bytes (0: whole); collects what
 * is forwarded, and the offset in the stream right after which the end
 * was reported (or -1). */
static long run(const struct bytes *in, size_t piece, bool armed,
		struct bytes *out)
{
	uint8_t buf[BULKSCAN_HEADROOM + sizeof(in->p)];
	struct bulkscan s;
	long ended_at = -1;
	size_t off = 0;

	bulkscan_idle(&s);
	if (armed)
		bulkscan_arm(&s, mark_s, mark_e);
	out->n = 0;
	while (off < in->n) {
		size_t n = piece && piece < in->n - off ? piece : in->n - off;
		const uint8_t *p;
		size_t got;
		bool ended;

		memset(buf, 0x5a, sizeof(buf));
		memcpy(buf + BULKSCAN_HEADROOM, in->p + off, n);
		bulkscan_feed(&s, buf + BULKSCAN_HEADROOM, n, &p, &got, &ended);
		assert_true(got == 0 ||
			    (p >= buf && p + got <= buf + sizeof(buf)));
		put(out, p, got);
		off += n;
		if (ended) {
			assert_int_equal(ended_at, -1);
			ended_at = (long)off;
			assert_int_equal(s.st, BULKSCAN_IDLE);
		}
		assert_true(s.nheld <= BULKSCAN_HEADROOM);
	}
	return ended_at;
}

static const struct {
	const char *what, *in, *want;
	bool ends;
} cases[] = {
    {"plain", "{hello}", "hello", true},
    {"empty", "{}", "", true},
    {"data before start", "junk{hello}", "hello", true},
    {"bytes after end", "{hello}after[x]more", "hello", true},
    {"start-marker prefix in data", "{a<b<}", "a<b<", true},
    {"end-marker prefix in data", "{a>b>>c}", "a>b>>c", true},
    {"start-marker prefix before start", "x<y<{data}", "data", true},
    {"end marker before start", "}{x}", "x", true},
    {"another session's markers before", "[other]{mine}", "mine", true},
    {"another session's markers inside", "{a[b]c}", "a[b]c", true},
    {"own start marker inside", "{{x{}", "{x{", true},
    {"marker bytes", "~~{~a~~}~", "~a~~", true},
    {"no end yet", "{abc", "abc", false},
    {"second session on an idle scanner", "{a}{b}", "a", true},
    {"never started", "abc>}", "", false},
};

static void test_cases(void **state)
{
	struct bytes in, want, out;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		expand(cases[i].in, &in);
		expand(cases[i].want, &want);
		for (size_t piece = 0; piece <= 40; piece++) {
			long end = run(&in, piece, true, &out);

			if (out.n != want.n || memcmp(out.p, want.p, want.n))
				fail_msg("case '%s', pieces of %zu: wrong "
					 "output (%zu bytes, want %zu)",
					 cases[i].what, piece, out.n, want.n);
			if ((end >= 0) != cases[i].ends)
				fail_msg("case '%s', pieces of %zu: end %ld",
					 cases[i].what, piece, end);
		}
	}
}

/* The end is reported with the piece that completes the end marker, not
 * later (the exit waits for it) and not before. */
static void test_end_reported_on_time(void **state)
{
	struct bytes in, out;
	size_t mark_end;

	(void)state;
	expand("x{abc}tail", &in);
	mark_end = 1 + MARK + 3 + MARK;
	for (size_t piece = 1; piece <= 40; piece++) {
		long end = run(&in, piece, true, &out);
		size_t want = (mark_end + piece - 1) / piece * piece;

		if (want > in.n)
			want = in.n;
		assert_int_equal(end, (long)want);
	}
}

/* Output that cannot begin a marker leaves at once: an interactive
 * command's prompt must not wait for more output. */
static void test_nothing_held_without_cause(void **state)
{
	uint8_t buf[BULKSCAN_HEADROOM + 64];
	struct bulkscan s;
	const uint8_t *p;
	size_t n;
	bool ended;

	(void)state;
	bulkscan_arm(&s, mark_s, mark_e);
	memcpy(buf + BULKSCAN_HEADROOM, mark_s, MARK);
	memcpy(buf + BULKSCAN_HEADROOM + MARK, "$ ", 2);
	bulkscan_feed(&s, buf + BULKSCAN_HEADROOM, MARK + 2, &p, &n, &ended);
	assert_int_equal(n, 2);
	assert_memory_equal(p, "$ ", 2);
	assert_int_equal(s.nheld, 0);
	/* A possible start of the end marker waits, and only that. */
	buf[BULKSCAN_HEADROOM] = 'y';
	buf[BULKSCAN_HEADROOM + 1] = 0xff;
	bulkscan_feed(&s, buf + BULKSCAN_HEADROOM, 2, &p, &n, &ended);
	assert_int_equal(n, 1);
	assert_int_equal(p[0], 'y');
	assert_int_equal(s.nheld, 1);
	/* ... and turns out to be data. */
	buf[BULKSCAN_HEADROOM] = 'z';
	bulkscan_feed(&s, buf + BULKSCAN_HEADROOM, 1, &p, &n, &ended);
	assert_int_equal(n, 2);
	assert_memory_equal(p, "\xffz", 2);
	assert_false(ended);
}

static void test_idle_drops_everything(void **state)
{
	struct bytes in, out;

	(void)state;
	expand("{abc}", &in);
	for (size_t piece = 0; piece <= 20; piece++) {
		assert_int_equal(run(&in, piece, false, &out), -1);
		assert_int_equal(out.n, 0);
	}
}

/* A hostile guest's stream of near-markers: never more than the
 * headroom is held, whatever comes. */
static void test_hold_is_bounded(void **state)
{
	uint8_t buf[BULKSCAN_HEADROOM + 4096];
	struct bulkscan s;
	const uint8_t *p;
	size_t n;
	bool ended;

	(void)state;
	srand(7);
	for (int armed = 0; armed < 2; armed++) {
		bulkscan_arm(&s, mark_s, mark_e);
		for (int round = 0; round < 2000; round++) {
			size_t len = 1 + (size_t)rand() % 64;

			for (size_t i = 0; i < len; i++)
				buf[BULKSCAN_HEADROOM + i] =
				    (rand() & 1) ? mark_e[rand() % MARK]
						 : mark_s[rand() % MARK];
			bulkscan_feed(&s, buf + BULKSCAN_HEADROOM, len, &p, &n,
				      &ended);
			assert_true(s.nheld <= BULKSCAN_HEADROOM);
			if (ended || (!armed && s.st == BULKSCAN_FORWARD))
				bulkscan_arm(&s, mark_s, mark_e);
		}
	}
}

static void test_new_marks(void **state)
{
	uint8_t s1[MARK], e1[MARK], s2[MARK], e2[MARK];

	(void)state;
	assert_int_equal(bulkscan_new_marks(s1, e1), 0);
	assert_int_equal(bulkscan_new_marks(s2, e2), 0);
	assert_int_equal(s1[0], 0xff);
	assert_int_equal(e1[0], 0xff);
	assert_memory_not_equal(s1, e1, MARK);
	assert_memory_not_equal(s1, s2, MARK);
	assert_memory_not_equal(e1, e2, MARK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_end_reported_on_time),
	    cmocka_unit_test(test_nothing_held_without_cause),
	    cmocka_unit_test(test_idle_drops_everything),
	    cmocka_unit_test(test_hold_is_bounded),
	    cmocka_unit_test(test_new_marks),
	};

	marks_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
