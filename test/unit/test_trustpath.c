/* SPDX-License-Identifier: MIT */
/* trustpath: a path root resolves for good must be root's all the way. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rmtree.h"
#include "testutil.h"
#include "trustpath.h"

static char top[64];

static void mk(const char *name, mode_t mode, uid_t uid)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", top, name);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	assert_int_equal(chown(p, uid, 0), 0);
}

static void test_paths(void **state)
{
	static const struct {
		const char *sub; /* below top; NULL: absolute as given */
		const char *abs;
		int want;
		const char *bad; /* the component named, below top */
	} cases[] = {
	    {NULL, "/", 0, NULL},
	    {NULL, "/etc", 0, NULL},
	    {NULL, "/tmp/anything", -EPERM, "/tmp"},
	    {"good", NULL, 0, NULL},
	    {"good/missing/deeper", NULL, 0, NULL},
	    {"open/x", NULL, -EPERM, "open"},
	    {"users/x", NULL, -EPERM, "users"},
	    {"good/group", NULL, -EPERM, "good/group"},
	    {"totmp/x", NULL, -EPERM, "/tmp"},
	    {"togood/x", NULL, 0, NULL},
	};
	char p[256], bad[256], want_bad[256];

	(void)state;
	if (geteuid() != 0)
		skip();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].sub)
			snprintf(p, sizeof(p), "%s/%s", top, cases[i].sub);
		else
			snprintf(p, sizeof(p), "%s", cases[i].abs);
		bad[0] = '\0';
		assert_int_equal(trustpath_check(p, bad, sizeof(bad)),
				 cases[i].want);
		if (!cases[i].bad)
			continue;
		if (cases[i].bad[0] == '/')
			snprintf(want_bad, sizeof(want_bad), "%s",
				 cases[i].bad);
		else
			snprintf(want_bad, sizeof(want_bad), "%s/%s", top,
				 cases[i].bad);
		assert_string_equal(bad, want_bad);
	}
}

static int setup(void **state)
{
	char p[256];

	(void)state;
	if (geteuid() != 0)
		return 0;
	/* /run is root's 0755 (/tmp, sticky and open to all, would fail). */
	strcpy(top, "/run/test-trustpath.XXXXXX");
	if (!mkdtemp(top))
		return -1;
	chmod(top, 0755);
	mk("good", 0755, 0);
	mk("good/group", 0775, 0);
	mk("open", 01777, 0);
	mk("users", 0755, 65534);
	snprintf(p, sizeof(p), "%s/totmp", top);
	if (symlink("/tmp", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/togood", top);
	return symlink("good", p);
}

static int teardown(void **state)
{
	(void)state;
	if (top[0])
		rm_rf(top);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
