// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/log.c: what a guest or a user puts in a message
 * cannot become a line of its own, choose its syslog priority or reach a
 * terminal as a control; ordinary text stays as it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

/* --- log_escape, byte by byte ------------------------------------------- */

static const struct {
	const char *what;
	const char *in;
	const char *want;
} escapes[] = {
    {"plain text", "job 42: agent up (vmenv-agent 0.1.0 6.1.0-18-amd64)",
     "job 42: agent up (vmenv-agent 0.1.0 6.1.0-18-amd64)"},
    {"empty", "", ""},
    {"newline and a forged priority", "up\n<0>forged", "up\\n<0>forged"},
    {"carriage return", "a\rb", "a\\rb"},
    {"CRLF", "a\r\n<3>b", "a\\r\\n<3>b"},
    {"tab", "a\tb", "a\\tb"},
    {"backslash (so the escapes are unambiguous)", "C:\\n", "C:\\\\n"},
    {"leading priority", "<0>forged", "\\x3c0>forged"},
    {"'<' inside stays", "a <b> c", "a <b> c"},
    {"ESC: a terminal title and a colour", "\x1b]0;pwned\x07\x1b[31mred",
     "\\x1b]0;pwned\\x07\\x1b[31mred"},
    {"DEL", "a\x7f", "a\\x7f"},
    {"other C0 bytes", "\x01\x08\x0b\x0c\x1f", "\\x01\\x08\\x0b\\x0c\\x1f"},
    {"raw C1 byte: CSI",
     "a\x9b"
     "31mb",
     "a\\x9b31mb"},
    {"raw C1 bytes 0x80 and 0x9f", "\x80\x9f", "\\x80\\x9f"},
    {"C1 as UTF-8: U+009B",
     "a\xc2\x9b"
     "b",
     "a\\u009bb"},
    {"C1 as UTF-8: U+0085 (NEL)",
     "a\xc2\x85"
     "b",
     "a\\u0085b"},
    {"UTF-8 text stays", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
    {"U+00A0 (after C1) stays", "\xc2\xa0", "\xc2\xa0"},
    {"line separator U+2028",
     "a\xe2\x80\xa8"
     "b",
     "a\\u2028b"},
    {"paragraph separator U+2029", "\xe2\x80\xa9", "\\u2029"},
    {"bidi override U+202E",
     "\xe2\x80\xae"
     "gnp.exe",
     "\\u202egnp.exe"},
    {"bidi isolate U+2066", "\xe2\x81\xa6", "\\u2066"},
    {"overlong '/'", "\xc0\xaf", "\\xc0\\xaf"},
    {"overlong NUL", "\xc0\x80", "\\xc0\\x80"},
    {"overlong 3-byte", "\xe0\x80\xaf", "\\xe0\\x80\\xaf"},
    {"surrogate", "\xed\xa0\x80", "\\xed\\xa0\\x80"},
    {"above U+10FFFF", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},
    {"truncated sequence at the end", "ab\xe2\x82", "ab\\xe2\\x82"},
    {"lone continuation bytes", "\xbf\xbf", "\\xbf\\xbf"},
    {"0xff", "\xff", "\\xff"},
};

static void test_escape_table(void **state)
{
	char out[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(escapes); i++) {
		size_t n = log_escape(escapes[i].in, out, sizeof(out));

		if (strcmp(out, escapes[i].want) != 0)
			fail_msg("%s: got '%s', want '%s'", escapes[i].what,
				 out, escapes[i].want);
		assert_int_equal(n, strlen(out));
	}
}

/* Every byte value, at every position: nothing below 0x20, no DEL, and
 * no byte 0x80-0x9f that is not inside a multi-byte character. */
static void test_escape_every_byte(void **state)
{
	char in[4], out[64];

	(void)state;
	for (int c = 1; c < 256; c++) {
		snprintf(in, sizeof(in), "x%c", c);
		log_escape(in, out, sizeof(out));
		for (const unsigned char *p = (const unsigned char *)out; *p;
		     p++) {
			assert_true(*p >= 0x20 && *p != 0x7f);
			assert_false(*p >= 0x80);
		}
	}
}

/* A small buffer cuts at a whole escape, never in the middle of one. */
static void test_escape_truncates_whole(void **state)
{
	static const struct {
		size_t len;
		const char *want;
	} cuts[] = {
	    {1, ""},
	    {2, "a"},
	    {3, "a"},
	    {4, "a"},
	    {5, "a"},
	    {6, "a\\x1b"},
	    {7, "a\\x1bb"},
	    {8, "a\\x1bb"},
	    {9, "a\\x1bb"},
	    {10, "a\\x1bb"},
	    {11, "a\\x1bb"},
	    {12, "a\\x1bb"},
	    {13, "a\\x1bb\\u2028"},
	};
	char out[32];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		log_escape("a\x1b"
			   "b\xe2\x80\xa8",
			   out, cuts[i].len);
		if (strcmp(out, cuts[i].want) != 0)
			fail_msg("len %zu: got '%s', want '%s'", cuts[i].len,
				 out, cuts[i].want);
	}
	assert_int_equal(log_escape("abc", out, 0), 0);
}

/* --- the logger: what reaches a sink ------------------------------------ */

static char sunk[16384];
static int sunk_prio;
static unsigned sunk_count;

static void sink(int prio, const char *msg)
{
	snprintf(sunk, sizeof(sunk), "%s", msg);
	sunk_prio = prio;
	sunk_count++;
}

static void test_sink_gets_escaped(void **state)
{
	(void)state;
	log_set_sink(sink);
	sunk_count = 0;
	log_info("job %u: agent up (%s)", 42u,
		 "x\n<0>forged root login\r\x1b[2K");
	assert_int_equal(sunk_count, 1);
	assert_int_equal(sunk_prio, LOG_INFO);
	assert_string_equal(sunk, "job 42: agent up (x\\n<0>forged root "
				  "login\\r\\x1b[2K)");
	/* The format itself is no exception. */
	log_warn("<1>from a format\n");
	assert_string_equal(sunk, "\\x3c1>from a format\\n");
	log_set_sink(NULL);
}

/* The longest message still comes whole, escaped, when every byte of it
 * needs the longest escape. */
static void test_sink_long_hostile(void **state)
{
	char big[LOG_MAX_MSG];

	(void)state;
	memset(big, '\x1b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_set_sink(sink);
	log_err("%s", big);
	assert_int_equal(strlen(sunk), 4 * (sizeof(big) - 1));
	assert_null(strchr(sunk, '\x1b'));
	log_set_sink(NULL);
}

/* --- the logger: what reaches stderr (journald) ------------------------- */

/* Runs one log call with stderr on a file; returns what was written. */
static char *stderr_of(int prefix, int prio, const char *text)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	char *buf = calloc(1, 16384);

	assert_non_null(tmp);
	assert_non_null(buf);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	log_set_prefix_prio(prefix);
	log_msg(prio, "agent up (%s)", text);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	assert_true(fread(buf, 1, 16383, tmp) > 0);
	fclose(tmp);
	log_set_prefix_prio(0);
	return buf;
}

static const struct {
	const char *what;
	int prefix, prio;
	const char *text;
	const char *want;
} lines[] = {
    {"forged line, journald", 1, LOG_INFO, "x\n<0>forged",
     "<6>agent up (x\\n<0>forged)\n"},
    {"forged line, terminal", 0, LOG_INFO, "x\n<0>forged",
     "agent up (x\\n<0>forged)\n"},
    {"terminal escapes", 0, LOG_WARNING, "\x1b[2J\x1b]0;t\x07",
     "agent up (\\x1b[2J\\x1b]0;t\\x07)\n"},
    {"CR hides the line", 1, LOG_ERR, "ok\r<0>", "<3>agent up (ok\\r<0>)\n"},
    {"ordinary text", 1, LOG_NOTICE, "vmenv-agent 0.1.0",
     "<5>agent up (vmenv-agent 0.1.0)\n"},
};

/* Exactly one line, the logger's priority first. */
static void test_stderr_one_line(void **state)
{
	(void)state;
	log_set_level(LOG_DEBUG);
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		char *got =
		    stderr_of(lines[i].prefix, lines[i].prio, lines[i].text);

		if (strcmp(got, lines[i].want) != 0)
			fail_msg("%s: got '%s'", lines[i].what, got);
		assert_ptr_equal(strchr(got, '\n'), got + strlen(got) - 1);
		free(got);
	}
	log_set_level(LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_table),
	    cmocka_unit_test(test_escape_every_byte),
	    cmocka_unit_test(test_escape_truncates_whole),
	    cmocka_unit_test(test_sink_gets_escaped),
	    cmocka_unit_test(test_sink_long_hostile),
	    cmocka_unit_test(test_stderr_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
