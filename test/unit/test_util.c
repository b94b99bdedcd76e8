/* SPDX-License-Identifier: MIT */
/* common/util.c: number parsing (store directory names and job ids in
 * domain XML go through parse_u32, some from places a user may write). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util.h"

static void test_parse_u32(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint32_t v;
	} cases[] = {
	    {"0", 0, 0},
	    {"7", 0, 7},
	    {"4294967295", 0, 4294967295u},
	    {"4294967296", -EINVAL, 0},
	    {"-1", -EINVAL, 0},
	    {" -1", -EINVAL, 0},
	    {" 7", -EINVAL, 0},
	    {"+7", -EINVAL, 0},
	    {"7 ", -EINVAL, 0},
	    {"7x", -EINVAL, 0},
	    {"", -EINVAL, 0},
	    {"\t7", -EINVAL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = 12345;

		assert_int_equal(parse_u32(cases[i].in, &v), cases[i].r);
		assert_int_equal(v, cases[i].r == 0 ? cases[i].v : 12345);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_u32),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
