// SPDX-License-Identifier: MIT
/*
 * Unit tests for client/ctlesc.c: a guest's console bytes on the user's
 * terminal. No escape sequence, C1 control or bidi override gets through
 * as such; lines stay lines; "\r\n" is a newline even when it is split
 * between two reads; text is unchanged.
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

#include "ctlesc.h"

/* The output of feeding the pieces one after another, then a flush. */
static char *run(const char *const *pieces, const size_t *lens, size_t n)
{
	struct ctlesc e = {.len = 0};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		ctlesc_feed(&e, pieces[i], lens[i], f);
	ctlesc_flush(&e, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static char *run1(const char *s, size_t len)
{
	return run(&s, &len, 1);
}

static void check(const char *in, size_t len, const char *want)
{
	char *out = run1(in, len);

	assert_string_equal(out, want);
	free(out);
}

static void test_text_unchanged(void **state)
{
	static const char s[] = "Linux version 6.1\nnaïve 日本 ok <6>\n";

	(void)state;
	check(s, strlen(s), s);
}

static void test_controls_escaped(void **state)
{
	(void)state;
	check("\x1b[2J\x1b]0;owned\x07x\n", 16,
	      "\\x1b[2J\\x1b]0;owned\\x07x\n");
	check("a\r\nb\rc\n", 7, "a\nb\\rc\n");
	check("nul\0here\n", 9, "nul\\x00here\n");
	/* CSI as a C1 byte, raw and as UTF-8; a bidi override. */
	check("\x9b"
	      "1m\n",
	      4, "\\x9b1m\n");
	check("\xc2\x9b"
	      "1m\n",
	      5, "\\u009b1m\n");
	check("\xe2\x80\xae"
	      "txt\n",
	      7, "\\u202etxt\n");
}

/* "\r" at the end of one read and "\n" at the start of the next. */
static void test_crlf_split(void **state)
{
	const char *pieces[] = {"boot\r", "\nnext\n"};
	const size_t lens[] = {5, 6};
	char *out;

	(void)state;
	out = run(pieces, lens, 2);
	assert_string_equal(out, "boot\nnext\n");
	free(out);
}

/* A line longer than the buffer is cut, never overflows, loses nothing. */
static void test_long_line(void **state)
{
	size_t n = 3 * CTLESC_LINE + 17;
	char *in = malloc(n + 1), *out;

	(void)state;
	assert_non_null(in);
	memset(in, 'x', n);
	in[n - 1] = '\n';
	out = run1(in, n);
	assert_int_equal(strlen(out), n);
	assert_int_equal(strspn(out, "x"), n - 1);
	free(in);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_unchanged),
	    cmocka_unit_test(test_controls_escaped),
	    cmocka_unit_test(test_crlf_split),
	    cmocka_unit_test(test_long_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
