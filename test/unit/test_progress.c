/* SPDX-License-Identifier: MIT */
/* common/progress.c: the gate that bounds how many progress lines a job's
 * output gets, and the lines and bar themselves (clamped whatever the
 * numbers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "progress.h"

#define MIB (1024ull * 1024ull)

static void test_percent(void **state)
{
	static const struct {
		uint64_t done, total;
		unsigned pct;
	} cases[] = {
	    {0, 0, 0},
	    {5, 0, 0},
	    {0, 100, 0},
	    {35, 100, 35},
	    {100, 100, 100},
	    {500, 100, 100}, /* more than the size: clamped */
	    {UINT64_MAX, UINT64_MAX, 100},
	    {UINT64_MAX / 2, UINT64_MAX, 50},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
		    progress_percent(cases[i].done, cases[i].total),
		    cases[i].pct);
}

/* Steps of (time, done of 100): whether a line is due. */
static void test_gate(void **state)
{
	static const struct {
		uint64_t ms, done;
		bool due;
	} steps[] = {
	    {1000, 0, true},	 /* the first at once */
	    {1500, 30, false},	 /* 30% more, but within 2 s */
	    {3000, 30, true},	 /* 2 s later, another tenth */
	    {6000, 35, false},	 /* 3 s, but the same tenth */
	    {20000, 39, false},	 /* 17 s, the same tenth */
	    {33000, 39, true},	 /* 30 s: the heartbeat */
	    {35000, 40, true},	 /* the next tenth, 2 s later */
	    {36000, 90, false},	 /* within 2 s */
	    {38000, 100, false}, /* done: the ready line says it */
	    {40000, 95, true},	 {39000, 99, false}, /* the clock went back */
	};
	struct progress_gate g = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		bool due =
		    progress_gate_due(&g, steps[i].ms, steps[i].done, 100);
		if (due != steps[i].due)
			fail_msg("step %zu (%llu ms, %llu%%): due %d", i,
				 (unsigned long long)steps[i].ms,
				 (unsigned long long)steps[i].done, due);
	}
}

/* However fast or slow the download, the lines stay few: a 1-hour
 * download sampled every 100 ms gets at most 10 + 2 per minute. */
static void test_gate_bounded(void **state)
{
	const uint64_t total = 1000000, hour_ms = 3600 * 1000;
	struct progress_gate g = {0};
	unsigned lines = 0;

	(void)state;
	for (uint64_t t = 0; t < hour_ms; t += 100)
		lines += progress_gate_due(&g, t, t * total / hour_ms, total);
	assert_true(lines >= 10);
	assert_true(lines <= 11 + 2 * 60);
	/* A fast one (10 s): at most one per 2 s. */
	memset(&g, 0, sizeof(g));
	lines = 0;
	for (uint64_t t = 0; t < 10000; t += 100)
		lines += progress_gate_due(&g, t, t * total / 10000, total);
	assert_true(lines <= 5);
}

static void test_size(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} cases[] = {
	    {0, "0 KiB"},
	    {1, "1 KiB"},
	    {1536 * 1024, "1.5 MiB"},
	    {312 * MIB, "312 MiB"},
	    {15ull * 1024 * MIB, "15.0 GiB"},
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		progress_size(buf, sizeof(buf), cases[i].bytes);
		assert_string_equal(buf, cases[i].text);
	}
}

static void test_lines(void **state)
{
	char buf[256];

	(void)state;
	progress_fetch_line(buf, sizeof(buf), 42, "debian12:2025.1", 109 * MIB,
			    312 * MIB, 8 * MIB);
	assert_string_equal(buf, "job 42: fetching image 'debian12:2025.1' "
				 "(312 MiB): 34% (109 MiB, 8.0 MiB/s)");
	/* No rate known yet; more than the size is shown as all of it. */
	progress_fetch_line(buf, sizeof(buf), 7, "tiny", 900 * MIB, 312 * MIB,
			    0);
	assert_string_equal(buf, "job 7: fetching image 'tiny' (312 MiB): 100% "
				 "(312 MiB)");
	progress_ready_line(buf, sizeof(buf), 42, "debian12:2025.1", 312 * MIB,
			    14400);
	assert_string_equal(buf, "job 42: image 'debian12:2025.1' ready (312 "
				 "MiB in 14 s)");
	/* Truncated, never overflowing. */
	progress_ready_line(buf, 10, 42, "debian12", 1, 1);
	assert_string_equal(buf, "job 42: i");
}

static void test_bar(void **state)
{
	char buf[200];

	(void)state;
	progress_bar(buf, sizeof(buf), "image 'big:1' disk", 20 * MIB, 40 * MIB,
		     2 * MIB);
	assert_string_equal(buf, "image 'big:1' disk            50% "
				 "[###############...............]     "
				 "20.0/40.0 MiB     2.0 MiB/s ETA 0:10");
	/* No rate: no ETA; done past the size: a full bar, no wrap. */
	progress_bar(buf, sizeof(buf), "x", 80 * MIB, 40 * MIB, 0);
	assert_non_null(strstr(buf, "100% [##############################]"));
	assert_non_null(strstr(buf, "40.0/40.0 MiB"));
	assert_non_null(strstr(buf, "ETA --:--"));
	/* Nothing known about the size. */
	progress_bar(buf, sizeof(buf), "x", 5, 0, 0);
	assert_non_null(strstr(buf, "  0% [....."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_percent),	 cmocka_unit_test(test_gate),
	    cmocka_unit_test(test_gate_bounded), cmocka_unit_test(test_size),
	    cmocka_unit_test(test_lines),	 cmocka_unit_test(test_bar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
