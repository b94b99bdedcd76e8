/* SPDX-License-Identifier: MIT */
/* rmtree: removes what is below, never what a link or a swap points at. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rmtree.h"

struct fx {
	char top[64];	  /* the tree's parent */
	char outside[96]; /* what links point at; must survive */
	char tree[96];	  /* removed */
};

static void put(const char *dir, const char *name)
{
	char p[1024];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static bool exists(const char *dir, const char *name)
{
	char p[1024];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->top, "/tmp/test-rmtree.XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->top);
	snprintf(f->tree, sizeof(f->tree), "%s/tree", f->top);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	assert_int_equal(mkdir(f->tree, 0755), 0);
	put(f->outside, "precious");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rm_rf(f->top);
	free(f);
	return 0;
}

static void sub(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < len);
}

/* Files, nested directories, a FIFO, and links to the outside (a file, a
 * directory, the parent): the tree goes, the outside stays whole. */
static void test_links_are_not_followed(void **state)
{
	struct fx *f = *state;
	char d[512], dd[512], l[512];

	sub(d, sizeof(d), f->tree, "d");
	assert_int_equal(mkdir(d, 0755), 0);
	sub(dd, sizeof(dd), d, "e");
	assert_int_equal(mkdir(dd, 0755), 0);
	put(dd, "f");
	put(f->tree, "g");
	sub(l, sizeof(l), f->tree, "fifo");
	assert_int_equal(mkfifo(l, 0600), 0);
	sub(l, sizeof(l), d, "to-dir");
	assert_int_equal(symlink(f->outside, l), 0);
	sub(l, sizeof(l), dd, "to-file");
	assert_int_equal(symlink("../../../outside/precious", l), 0);
	sub(l, sizeof(l), f->tree, "to-top");
	assert_int_equal(symlink("..", l), 0);

	assert_int_equal(rm_rf(f->tree), 0);
	assert_false(exists(f->top, "tree"));
	assert_true(exists(f->outside, "precious"));
}

/* The tree itself a symlink: the link goes, not its target's content. */
static void test_top_symlink(void **state)
{
	struct fx *f = *state;
	char l[512];

	sub(l, sizeof(l), f->top, "link");
	assert_int_equal(symlink(f->outside, l), 0);
	assert_int_equal(rm_rf(l), 0);
	assert_false(exists(f->top, "link"));
	assert_true(exists(f->outside, "precious"));
}

static void test_missing_and_bad_names(void **state)
{
	struct fx *f = *state;
	char p[512];

	sub(p, sizeof(p), f->top, "nothing-here");
	assert_int_equal(rm_rf(p), 0);
	assert_int_equal(rmtree_at(AT_FDCWD, ".."), -EINVAL);
	assert_int_equal(rmtree_at(AT_FDCWD, "a/b"), -EINVAL);
	assert_int_equal(rmtree_at(AT_FDCWD, ""), -EINVAL);
}

static void test_depth_is_bounded(void **state)
{
	struct fx *f = *state;
	char p[8192];
	size_t n = (size_t)snprintf(p, sizeof(p), "%s", f->tree);

	for (int i = 0; i < RMTREE_MAX_DEPTH + 4; i++) {
		n += (size_t)snprintf(p + n, sizeof(p) - n, "/d");
		assert_int_equal(mkdir(p, 0755), 0);
	}
	assert_int_equal(rm_rf(f->tree), -ELOOP);
	assert_true(exists(f->outside, "precious"));
}

/* The attack of issue 14 (2): while root walks, the tree's owner renames a
 * directory away and puts a symlink to the outside in its place, over and
 * over. A path walk (nftw) deleted the outside's files this way. */
struct racer {
	const char *tree, *outside;
	volatile int stop;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char d[512], moved[512];

	snprintf(d, sizeof(d), "%s/d", r->tree);
	snprintf(moved, sizeof(moved), "%s/../moved", r->tree);
	while (!r->stop) {
		if (rename(d, moved) == 0) {
			if (symlink(r->outside, d) == 0) {
				usleep(50);
				(void)unlink(d);
			}
			(void)rename(moved, d);
		}
	}
	return NULL;
}

static void fill(const char *dir, int n)
{
	char name[32];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		put(dir, name);
	}
}

static void test_swap_race(void **state)
{
	struct fx *f = *state;
	char d[512], name[32];
	struct racer r = {.tree = f->tree, .outside = f->outside};
	pthread_t t;

	fill(f->outside, 200);
	for (int round = 0; round < 30; round++) {
		if (mkdir(f->tree, 0755) < 0)
			assert_int_equal(errno, EEXIST);
		sub(d, sizeof(d), f->tree, "d");
		assert_int_equal(mkdir(d, 0755), 0);
		fill(d, 300);
		r.stop = 0;
		assert_int_equal(pthread_create(&t, NULL, race, &r), 0);
		(void)rm_rf(f->tree);
		r.stop = 1;
		pthread_join(t, NULL);
		for (int i = 0; i < 200; i++) {
			snprintf(name, sizeof(name), "f%d", i);
			assert_true(exists(f->outside, name));
		}
		assert_true(exists(f->outside, "precious"));
		rm_rf(f->tree);
		snprintf(d, sizeof(d), "%s/moved", f->top);
		rm_rf(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_links_are_not_followed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_top_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_and_bad_names, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_depth_is_bounded, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_swap_race, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
