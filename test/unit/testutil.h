/* SPDX-License-Identifier: MIT */
/* Helpers shared by the cmocka unit tests. Include after <cmocka.h>. */
#ifndef VMENV_TESTUTIL_H
#define VMENV_TESTUTIL_H

#include <stdlib.h>
#include <string.h>

/* A check that documents a bug in the code under test: reported as skipped
 * while the bug is there (as failed with VMENV_STRICT_BUGS=1), a plain
 * check once it is fixed. */
#define KNOWN_BUG(cond, ...)                                      \
	do {                                                      \
		if (!(cond)) {                                    \
			print_message("KNOWN BUG: " __VA_ARGS__); \
			if (getenv("VMENV_STRICT_BUGS"))          \
				fail();                           \
			skip();                                   \
		}                                                 \
	} while (0)

static inline void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* A malloc'ed, NULL-terminated copy of a NULL-terminated string list. */
static inline char **xstrv(const char *const *v, size_t *ret_n)
{
	size_t n = 0;
	char **p;

	while (v[n])
		n++;
	p = calloc(n + 1, sizeof(*p));
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		p[i] = strdup(v[i]);
		assert_non_null(p[i]);
	}
	*ret_n = n;
	return p;
}

#endif
