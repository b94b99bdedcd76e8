// SPDX-License-Identifier: MIT
/*
 * The coordination directory of a multi-node job's checkpoints
 * (vmmd/ckpt/ckpt_coord.h) on a temporary store: what open makes and
 * refuses, the node sub-stores, plans, marks and their counts, the one
 * outcome per group and its parsing, the newest complete group, the first
 * node's verdict and its parsing, and the directory's removal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_coord.h"
#include "cleanup.h"
#include "rmtree.h"
#include "util.h"

#define JOB 42u

struct st {
	char root[64];
	char dir[VMENV_MAX_PATH]; /* <root>/coord/<JOB> */
	struct ckpt_coord c;	  /* opened (made) there */
};

static int st_setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	char err[512] = "";

	assert_non_null(s);
	strcpy(s->root, "/tmp/vmenv-coord-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	assert_int_equal(
	    str_printf(s->dir, sizeof(s->dir), "%s/coord/%u", s->root, JOB), 0);
	s->c.fd = -1;
	if (ckpt_coord_open(s->root, JOB, true, &s->c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	*state = s;
	return 0;
}

static int st_teardown(void **state)
{
	struct st *s = *state;

	ckpt_coord_close(&s->c);
	rm_rf(s->root);
	free(s);
	return 0;
}

/* Writes dir/name by hand (root's, 0600, one link: as the module does). */
static void put(const char *dir, const char *name, const char *text)
{
	char p[VMENV_MAX_PATH];

	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", dir, name), 0);
	assert_int_equal(write_file_atomic(p, text, strlen(text), 0600), 0);
}

/* dir/name holds exactly want. */
static void file_holds(const struct st *s, const char *name, const char *want)
{
	char p[VMENV_MAX_PATH];
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", s->dir, name), 0);
	assert_int_equal(read_file_limited(p, 4096, &text, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(text, want);
}

static bool exists(const char *dir, const char *name)
{
	char p[VMENV_MAX_PATH];
	struct stat st;

	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", dir, name), 0);
	return lstat(p, &st) == 0;
}

/* How many entries of dir hold sub in their name. */
static int count_names(const char *dir, const char *sub)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(dp);
	while ((e = readdir(dp)))
		if (strstr(e->d_name, sub))
			n++;
	closedir(dp);
	return n;
}

/* --- open --------------------------------------------------------------- */

static void test_open_makes(void **state)
{
	struct st *s = *state;
	struct ckpt_coord c = CKPT_COORD_INIT;
	struct stat st;
	char err[512] = "";

	/* Made by the setup: root's, 0700, coord/ too. */
	assert_true(s->c.fd >= 0);
	assert_int_equal(s->c.job_id, JOB);
	assert_int_equal(lstat(s->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	{
		char p[VMENV_MAX_PATH];

		assert_int_equal(str_printf(p, sizeof(p), "%s/coord", s->root),
				 0);
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_uid, 0);
		assert_int_equal(st.st_mode & 07777, 0700);
	}
	/* Opened again without create: the same directory. */
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), 0);
	assert_true(c.fd >= 0);
	{
		struct stat a, b;

		assert_int_equal(fstat(c.fd, &a), 0);
		assert_int_equal(fstat(s->c.fd, &b), 0);
		assert_int_equal(a.st_ino, b.st_ino);
		assert_int_equal(a.st_dev, b.st_dev);
	}
	ckpt_coord_close(&c);
	assert_int_equal(c.fd, -1);
	ckpt_coord_close(&c); /* twice: nothing */
}

static void test_open_missing(void **state)
{
	struct st *s = *state;
	struct ckpt_coord c = CKPT_COORD_INIT;
	char err[512] = "", other[64];

	/* Another job's directory is not there. */
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB + 1, false, &c, err, sizeof(err)),
	    -ENOENT);
	assert_int_equal(c.fd, -1);
	assert_contains(err, "43");
	assert_false(exists(s->root, "coord/43"));
	/* A store with no coord/ at all. */
	strcpy(other, "/tmp/vmenv-coord-XXXXXX");
	assert_non_null(mkdtemp(other));
	err[0] = '\0';
	assert_int_equal(
	    ckpt_coord_open(other, JOB, false, &c, err, sizeof(err)), -ENOENT);
	assert_int_equal(c.fd, -1);
	assert_false(exists(other, "coord"));
	assert_true(err[0] != '\0');
	rm_rf(other);
}

static void test_open_refused(void **state)
{
	struct st *s = *state;
	struct ckpt_coord c = CKPT_COORD_INIT;
	char err[512] = "", coord[VMENV_MAX_PATH];

	/* The job's directory open to others. */
	assert_int_equal(chmod(s->dir, 0755), 0);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), -EPERM);
	assert_int_equal(c.fd, -1);
	/* Not with create either. */
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, true, &c, err, sizeof(err)), -EPERM);
	assert_int_equal(c.fd, -1);
	assert_int_equal(chmod(s->dir, 0700), 0);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), 0);
	ckpt_coord_close(&c);
	/* Another owner's. */
	assert_int_equal(chown(s->dir, 65534, 65534), 0);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), -EPERM);
	assert_int_equal(c.fd, -1);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, true, &c, err, sizeof(err)), -EPERM);
	assert_int_equal(chown(s->dir, 0, 0), 0);
	/* coord/ itself open to others, or another's. */
	assert_int_equal(str_printf(coord, sizeof(coord), "%s/coord", s->root),
			 0);
	assert_int_equal(chmod(coord, 0755), 0);
	err[0] = '\0';
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), -EPERM);
	assert_contains(err, "coord/");
	assert_int_equal(chmod(coord, 0700), 0);
	assert_int_equal(chown(coord, 65534, 65534), 0);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, true, &c, err, sizeof(err)), -EPERM);
	assert_int_equal(c.fd, -1);
	assert_int_equal(chown(coord, 0, 0), 0);
	/* A store others may write is not the node's. */
	assert_int_equal(chmod(s->root, 0777), 0);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), -EPERM);
	assert_int_equal(c.fd, -1);
	assert_int_equal(chmod(s->root, 0700), 0);
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)), 0);
	ckpt_coord_close(&c);
}

static void test_node_root(void **state)
{
	char buf[128], tiny[8];

	(void)state;
	assert_int_equal(ckpt_coord_node_root("/var/ckpt", 0, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "/var/ckpt");
	assert_int_equal(ckpt_coord_node_root("/var/ckpt", 2, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "/var/ckpt/n2");
	assert_int_equal(
	    ckpt_coord_node_root("/var/ckpt", 1023, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/var/ckpt/n1023");
	/* Too long for the buffer: an error, not a cut path. */
	assert_true(ckpt_coord_node_root("/var/ckpt", 2, tiny, sizeof(tiny)) <
		    0);
}

/* --- plans ---------------------------------------------------------------- */

static void test_plan(void **state)
{
	struct st *s = *state;
	uint32_t g = 0, n = 0;
	bool go = false;

	assert_int_equal(ckpt_coord_last_plan(&s->c), 0);
	assert_int_equal(ckpt_coord_read_plan(&s->c, 1, &n, &go), -ENOENT);
	assert_int_equal(ckpt_coord_plan(&s->c, 3, true, &g), 0);
	assert_int_equal(g, 1);
	assert_int_equal(ckpt_coord_last_plan(&s->c), 1);
	assert_true(exists(s->dir, "g1.plan"));
	assert_int_equal(ckpt_coord_plan(&s->c, 2, false, &g), 0);
	assert_int_equal(g, 2);
	assert_int_equal(ckpt_coord_last_plan(&s->c), 2);
	assert_int_equal(ckpt_coord_read_plan(&s->c, 1, &n, &go), 0);
	assert_int_equal(n, 3);
	assert_true(go);
	assert_int_equal(ckpt_coord_read_plan(&s->c, 2, &n, &go), 0);
	assert_int_equal(n, 2);
	assert_false(go);
	/* Files of other kinds or names do not count as plans. */
	put(s->dir, "g9.saved.0", "1");
	put(s->dir, "g7.planx", "2 1\n");
	put(s->dir, "gx.plan", "2 1\n");
	put(s->dir, "h8.plan", "2 1\n");
	assert_int_equal(ckpt_coord_last_plan(&s->c), 2);
	/* The next group follows the highest even with a gap. */
	put(s->dir, "g5.plan", "2 1\n");
	assert_int_equal(ckpt_coord_last_plan(&s->c), 5);
	assert_int_equal(ckpt_coord_plan(&s->c, 4, true, &g), 0);
	assert_int_equal(g, 6);
	assert_int_equal(ckpt_coord_read_plan(&s->c, 6, &n, &go), 0);
	assert_int_equal(n, 4);
	assert_true(go);
}

static void test_plan_refused(void **state)
{
	struct st *s = *state;
	static const char *const bad[] = {
	    "garbage\n", "",	  "2 1",   "2 2\n",    "2\n",
	    "x 1\n",	 "1 1\n", "0 0\n", "1025 1\n", "2 1 \n",
	};
	uint32_t n = 77;
	bool go = true;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		put(s->dir, "g1.plan", bad[i]);
		if (ckpt_coord_read_plan(&s->c, 1, &n, &go) != -EBADMSG)
			fail_msg("plan '%s' accepted", bad[i]);
		assert_int_equal(n, 77);
		assert_true(go);
	}
	/* "1 1\n" above: a plan of one node is refused on reading. The
	 * largest job is fine. */
	put(s->dir, "g1.plan", "1024 0\n");
	assert_int_equal(ckpt_coord_read_plan(&s->c, 1, &n, &go), 0);
	assert_int_equal(n, 1024);
	assert_false(go);
	/* A plan that is a symlink is not followed. */
	{
		char p[VMENV_MAX_PATH];

		assert_int_equal(str_printf(p, sizeof(p), "%s/g3.plan", s->dir),
				 0);
		assert_int_equal(symlink("g1.plan", p), 0);
		assert_int_equal(ckpt_coord_read_plan(&s->c, 3, &n, &go),
				 -ELOOP);
	}
}

/* A plan no reader accepts is not written (its group number would be
 * taken and every other node fail on it); a plan is read whole. */
static void test_plan_strict(void **state)
{
	struct st *s = *state;
	static const char *const lax[] = {"2 1\nextra", " 2 1\n", "+2 1\n",
					  "2\n1\n"};
	uint32_t g = 0, n = 0;
	unsigned bad = 0;
	bool go = false;

	for (size_t i = 0; i < ARRAY_SIZE(lax); i++) {
		int r;

		put(s->dir, "g1.plan", lax[i]);
		r = ckpt_coord_read_plan(&s->c, 1, &n, &go);
		if (r != 0 && r != -EBADMSG)
			fail_msg("'%s': %d", lax[i], r);
		if (r == 0) {
			print_message("read_plan accepts '%s'\n", lax[i]);
			bad++;
		}
	}
	if (ckpt_coord_plan(&s->c, 1, true, &g) != -EINVAL) {
		print_message("plan writes a plan of 1 node\n");
		bad++;
	}
	if (ckpt_coord_plan(&s->c, CKPT_COORD_MAX_NODES + 1, true, &g) !=
	    -EINVAL) {
		print_message("plan writes a plan of %u nodes\n",
			      CKPT_COORD_MAX_NODES + 1);
		bad++;
	}
	assert_int_equal(bad, 0);
	/* Nothing written: group 1 is still the last. */
	assert_int_equal(ckpt_coord_last_plan(&s->c), 1);
}

/* A plan carries the run (Slurm's restart count) it is for: not written
 * for the first (0), so that a plan reads as before; "nnodes go_on run"
 * otherwise, run > 0 and written as plainly as the other numbers. */
static void test_plan_run(void **state)
{
	struct st *s = *state;
	static const char *const bad[] = {
	    "3 1 0\n",		"3 1 x\n",   "3 1 2 \n", "3 1 02\n", "3 1 \n",
	    "3 1 2 3\n",	"3 1 -2\n",  "3 1 +2\n", "3 1  2\n", "3 1 2",
	    "3 1 4294967296\n", "3 1 2\n\n", "3 2 2\n",	 "1 1 2\n",  "3 1 2x\n",
	};
	uint32_t g = 0, n = 77, run = 77;
	bool go = false;

	/* Run 0: what ckpt_coord_plan writes. */
	assert_int_equal(ckpt_coord_plan_run(&s->c, 3, true, 0, &g), 0);
	assert_int_equal(g, 1);
	file_holds(s, "g1.plan", "3 1\n");
	assert_int_equal(ckpt_coord_read_plan_run(&s->c, 1, &n, &go, &run), 0);
	assert_int_equal(n, 3);
	assert_true(go);
	assert_int_equal(run, 0);
	/* Run 2: written, and read back. */
	assert_int_equal(ckpt_coord_plan_run(&s->c, 3, true, 2, &g), 0);
	assert_int_equal(g, 2);
	file_holds(s, "g2.plan", "3 1 2\n");
	n = run = 77;
	go = false;
	assert_int_equal(ckpt_coord_read_plan_run(&s->c, 2, &n, &go, &run), 0);
	assert_int_equal(n, 3);
	assert_true(go);
	assert_int_equal(run, 2);
	/* ckpt_coord_read_plan reads it too (the run left out). */
	n = 77;
	go = false;
	assert_int_equal(ckpt_coord_read_plan(&s->c, 2, &n, &go), 0);
	assert_int_equal(n, 3);
	assert_true(go);
	/* The largest run; a job that does not go on. */
	assert_int_equal(ckpt_coord_plan_run(&s->c, 2, false, UINT32_MAX, &g),
			 0);
	assert_int_equal(g, 3);
	file_holds(s, "g3.plan", "2 0 4294967295\n");
	assert_int_equal(ckpt_coord_read_plan_run(&s->c, 3, &n, &go, &run), 0);
	assert_int_equal(n, 2);
	assert_false(go);
	assert_int_equal(run, UINT32_MAX);
	/* A run written as "0" (0 is never written), or not plainly. */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		n = run = 77;
		go = true;
		put(s->dir, "g1.plan", bad[i]);
		if (ckpt_coord_read_plan_run(&s->c, 1, &n, &go, &run) !=
		    -EBADMSG)
			fail_msg("plan '%s' accepted", bad[i]);
		assert_int_equal(n, 77);
		assert_true(go);
		assert_int_equal(run, 77);
		if (ckpt_coord_read_plan(&s->c, 1, &n, &go) != -EBADMSG)
			fail_msg("plan '%s' accepted by read_plan", bad[i]);
		assert_int_equal(n, 77);
	}
	/* A plan of no group is none. */
	assert_int_equal(ckpt_coord_read_plan_run(&s->c, 9, &n, &go, &run),
			 -ENOENT);
	/* A node count no reader takes is not written, whatever the run. */
	assert_int_equal(ckpt_coord_plan_run(&s->c, 1, true, 2, &g), -EINVAL);
	assert_int_equal(ckpt_coord_last_plan(&s->c), 3);
}

/* --- marks ---------------------------------------------------------------- */

static void test_marks(void **state)
{
	struct st *s = *state;
	char buf[64];

	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 3), 0);
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "frozen", 0, ""), 0);
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "frozen", 2, ""), 0);
	assert_true(exists(s->dir, "g1.frozen.0"));
	assert_true(exists(s->dir, "g1.frozen.2"));
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 3), 2);
	/* Only nodes below nnodes. */
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 2), 1);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 0), 0);
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "frozen", 5, ""), 0);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 3), 2);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 6), 3);
	/* Only that group's. */
	assert_int_equal(ckpt_coord_mark(&s->c, 2, "frozen", 1, ""), 0);
	assert_int_equal(ckpt_coord_mark(&s->c, 12, "frozen", 1, ""), 0);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 3), 2);
	assert_int_equal(ckpt_coord_count(&s->c, 2, "frozen", 3), 1);
	assert_int_equal(ckpt_coord_count(&s->c, 3, "frozen", 3), 0);
	/* Only that what's. */
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "saved", 1, "17"), 0);
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "back1", 1, ""), 0);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "frozen", 3), 2);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "saved", 3), 1);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "back1", 3), 1);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "back2", 3), 0);
	assert_int_equal(ckpt_coord_count(&s->c, 1, "back", 3), 0);
	/* Something else under a mark's name does not count. */
	{
		char p[VMENV_MAX_PATH];

		assert_int_equal(
		    str_printf(p, sizeof(p), "%s/g1.saved.0", s->dir), 0);
		assert_int_equal(mkdir(p, 0700), 0);
		assert_int_equal(ckpt_coord_count(&s->c, 1, "saved", 3), 1);
	}
	/* The text back. */
	assert_int_equal(
	    ckpt_coord_read_mark(&s->c, 1, "saved", 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "17");
	assert_int_equal(
	    ckpt_coord_read_mark(&s->c, 1, "frozen", 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(
	    ckpt_coord_read_mark(&s->c, 1, "saved", 2, buf, sizeof(buf)),
	    -ENOENT);
	/* Marked again: the new text. */
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "saved", 1, "18 more"), 0);
	assert_int_equal(
	    ckpt_coord_read_mark(&s->c, 1, "saved", 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "18 more");
	/* Too long for the buffer: refused, not cut. */
	assert_int_equal(ckpt_coord_read_mark(&s->c, 1, "saved", 1, buf, 7),
			 -EFBIG);
	assert_int_equal(ckpt_coord_read_mark(&s->c, 1, "saved", 1, buf, 8), 0);
	assert_string_equal(buf, "18 more");
	/* No temporary files left by the writes. */
	assert_int_equal(count_names(s->dir, "tmp"), 0);
}

static void test_marks_bad_what(void **state)
{
	struct st *s = *state;
	static const char *const bad[] = {"fro.zen", "a/b", "..",
					  "/",	     ".",   "saved/../../x"};
	char buf[64];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (ckpt_coord_mark(&s->c, 1, bad[i], 0, "x") != -EINVAL)
			fail_msg("what '%s' marked", bad[i]);
		assert_int_equal(
		    ckpt_coord_read_mark(&s->c, 1, bad[i], 0, buf, sizeof(buf)),
		    -EINVAL);
		assert_int_equal(ckpt_coord_count(&s->c, 1, bad[i], 3), 0);
	}
	/* Nothing was written anywhere. */
	assert_int_equal(count_names(s->dir, "g1"), 0);
	assert_false(exists(s->root, "coord/x"));
	assert_false(exists(s->root, "x"));
}

/* --- outcomes ------------------------------------------------------------- */

static void test_decide(void **state)
{
	struct st *s = *state;
	char buf[128];

	assert_int_equal(ckpt_coord_outcome(&s->c, 1, buf, sizeof(buf)),
			 -ENOENT);
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "complete 2 4 9\n"), 1);
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "abort 1 disk full\n"), 0);
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "complete 2 5 5\n"), 0);
	assert_int_equal(ckpt_coord_outcome(&s->c, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "complete 2 4 9\n");
	/* Each group has its own. */
	assert_int_equal(ckpt_coord_outcome(&s->c, 2, buf, sizeof(buf)),
			 -ENOENT);
	assert_int_equal(ckpt_coord_decide(&s->c, 2, "abort 1 disk full\n"), 1);
	assert_int_equal(ckpt_coord_outcome(&s->c, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "abort 1 disk full\n");
	assert_int_equal(ckpt_coord_outcome(&s->c, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "complete 2 4 9\n");
	/* No temporary name is left, and the outcome has one name only. */
	assert_int_equal(count_names(s->dir, "decide-"), 0);
	assert_int_equal(count_names(s->dir, "tmp"), 0);
	{
		char p[VMENV_MAX_PATH];
		struct stat st;

		assert_int_equal(
		    str_printf(p, sizeof(p), "%s/g1.outcome", s->dir), 0);
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_nlink, 1);
		assert_int_equal(st.st_uid, 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
}

/* The outcome while it still has its temporary name too (just linked, the
 * decider not yet past its unlink, or dead there): decided all the same,
 * no one else wins, never read as -EMLINK. */
static void test_outcome_two_names(void **state)
{
	struct st *s = *state;
	char a[VMENV_MAX_PATH], b[VMENV_MAX_PATH], buf[64];
	int r;

	put(s->dir, "g1.decide-0123456789abcdef", "complete 2 1 1\n");
	assert_int_equal(
	    str_printf(a, sizeof(a), "%s/g1.decide-0123456789abcdef", s->dir),
	    0);
	assert_int_equal(str_printf(b, sizeof(b), "%s/g1.outcome", s->dir), 0);
	assert_int_equal(link(a, b), 0);
	r = ckpt_coord_outcome(&s->c, 1, buf, sizeof(buf));
	if (r != 0 && r != -ENOENT)
		fail_msg("outcome with two names: %d", r);
	if (r == 0)
		assert_string_equal(buf, "complete 2 1 1\n");
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "abort 0 x\n"), 0);
	unlink(a);
	assert_int_equal(ckpt_coord_outcome(&s->c, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "complete 2 1 1\n");
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &(uint32_t){0}), 0);
}

/* A decider that died between its link and its unlink leaves the
 * outcome with two names for good: it must not read as undecided
 * forever (every node waits for an outcome it cannot read while decide
 * says one is there). */
static void test_outcome_stale_link(void **state)
{
	struct st *s = *state;
	char a[VMENV_MAX_PATH], b[VMENV_MAX_PATH], buf[64];
	uint32_t g = 0;
	int r;

	put(s->dir, "g1.decide-00000000deadbeef", "complete 2 1 1\n");
	assert_int_equal(
	    str_printf(a, sizeof(a), "%s/g1.decide-00000000deadbeef", s->dir),
	    0);
	assert_int_equal(str_printf(b, sizeof(b), "%s/g1.outcome", s->dir), 0);
	assert_int_equal(link(a, b), 0);
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "abort 0 x\n"), 0);
	r = ckpt_coord_outcome(&s->c, 1, buf, sizeof(buf));
	if (r != 0 && r != -ENOENT)
		fail_msg("outcome with two names: %d", r);
	/* A decider that died before unlinking its temporary name does
	 * not leave the outcome undecided forever. */
	assert_int_equal(r, 0);
	assert_string_equal(buf, "complete 2 1 1\n");
	assert_false(exists(s->dir, "g1.decide-00000000deadbeef"));
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), 0);
	assert_int_equal(g, 1);
}

static void test_parse_complete(void **state)
{
	uint32_t n = 0, seq = 0;

	(void)state;
	assert_int_equal(
	    ckpt_coord_parse_complete("complete 3 5 6 7\n", 0, &n, &seq), 0);
	assert_int_equal(n, 3);
	assert_int_equal(seq, 5);
	assert_int_equal(
	    ckpt_coord_parse_complete("complete 3 5 6 7\n", 1, &n, &seq), 0);
	assert_int_equal(n, 3);
	assert_int_equal(seq, 6);
	assert_int_equal(
	    ckpt_coord_parse_complete("complete 3 5 6 7\n", 2, &n, &seq), 0);
	assert_int_equal(n, 3);
	assert_int_equal(seq, 7);
	assert_int_equal(
	    ckpt_coord_parse_complete("complete 2 4294967295 1", 0, &n, &seq),
	    0);
	assert_int_equal(seq, UINT32_MAX);

	n = seq = 99;
	assert_int_equal(
	    ckpt_coord_parse_complete("complete 3 5 6 7\n", 3, &n, &seq),
	    -ERANGE);
	assert_int_equal(ckpt_coord_parse_complete("complete 3 5 6 7\n",
						   UINT32_MAX, &n, &seq),
			 -ERANGE);
	{
		static const struct {
			const char *text;
			uint32_t node;
		} bad[] = {
		    {"abort 1 why", 0},
		    {"abort 1 why", 1},
		    {"complete 3 5 x 7", 2},
		    {"complete 3 5 x 7", 1},
		    {"complete 1 5", 0},
		    {"complete 0", 0},
		    {"complete 1025 1", 0},
		    {"complete x 1 2", 0},
		    {"complete", 0},
		    {"complete ", 0},
		    {"", 0},
		    {"completed 2 1 2", 0},
		    {"Complete 2 1 2", 0},
		    {" complete 2 1 2", 0},
		    {"complete 2 1", 1}, /* a seq short */
		    {"complete 2 1\n", 1},
		    {"complete 2 0 1", 0}, /* seq 0 is none */
		    {"complete 2 1 0", 1},
		    {"complete 2 1x2", 1}, /* not a space between */
		    {"complete 2 1\n2", 1},
		    {"complete 2 1 4294967296", 1},
		    {"complete 2 1 -1", 1},
		    {"complete 99999999999999999999 1 2", 0},
		};

		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			if (ckpt_coord_parse_complete(bad[i].text, bad[i].node,
						      &n, &seq) != -EBADMSG)
				fail_msg("'%s' node %u accepted", bad[i].text,
					 bad[i].node);
			assert_int_equal(n, 99);
			assert_int_equal(seq, 99);
		}
	}
}

/* What parse_complete must refuse as well: the whole line is the outcome,
 * not the part up to the node's seq. */
static void test_parse_complete_whole_line(void **state)
{
	struct st *s = *state;
	static const struct {
		const char *text;
		uint32_t node;
	} bad[] = {
	    {"complete 3 5\n", 0},	      /* seqs short of 3 */
	    {"complete 2 5 6 7\n", 0},	      /* one seq too many */
	    {"complete 2 5 6 junk\n", 1},     /* junk after them */
	    {"complete 2 5 6\nabort 1 x", 0}, /* a second line */
	    {"complete 2 1,2", 0},
	    {"complete  2 5 6", 0}, /* white space or signs strtoul takes */
	    {"complete +2 5 6", 0},
	    {"complete 2 +5 6", 0},
	    {"complete 2 1  2", 1},
	};
	uint32_t n = 99, seq = 99, g = 77;
	unsigned lax = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = ckpt_coord_parse_complete(bad[i].text, bad[i].node, &n,
						  &seq);

		if (r != 0 && r != -EBADMSG)
			fail_msg("'%s': %d", bad[i].text, r);
		if (r == 0) {
			print_message("parse_complete accepts '%s' for node "
				      "%u\n",
				      bad[i].text, bad[i].node);
			lax++;
		}
	}
	/* Such an outcome is not a complete group the newest of which every
	 * node restores from. */
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "complete 3 5\n"), 1);
	if (ckpt_coord_latest_complete(&s->c, &g) == 0) {
		print_message("latest_complete counts 'complete 3 5' (g%u)\n",
			      g);
		lax++;
	}
	assert_int_equal(lax, 0);
}

static void test_latest_complete(void **state)
{
	struct st *s = *state;
	uint32_t g = 77, pg = 0;

	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), -ENOENT);
	assert_int_equal(g, 77);
	/* An abort alone is no complete group. */
	assert_int_equal(ckpt_coord_plan(&s->c, 2, true, &pg), 0);
	assert_int_equal(ckpt_coord_decide(&s->c, pg, "abort 1 no space\n"), 1);
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), -ENOENT);
	assert_int_equal(g, 77);

	rmtree_at(s->c.fd, "g1.outcome");
	rmtree_at(s->c.fd, "g1.plan");
	/* g1 complete, g2 abort, g3 planned but undecided. */
	assert_int_equal(ckpt_coord_plan(&s->c, 2, true, &pg), 0);
	assert_int_equal(pg, 1);
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "complete 2 3 4\n"), 1);
	assert_int_equal(ckpt_coord_plan(&s->c, 2, true, &pg), 0);
	assert_int_equal(ckpt_coord_decide(&s->c, 2, "abort 0 guest died\n"),
			 1);
	assert_int_equal(ckpt_coord_plan(&s->c, 2, true, &pg), 0);
	assert_int_equal(pg, 3);
	assert_int_equal(ckpt_coord_mark(&s->c, 3, "saved", 0, "5"), 0);
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), 0);
	assert_int_equal(g, 1);
	/* An outcome with garbage is not complete either. */
	put(s->dir, "g4.outcome", "complete garbage\n");
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), 0);
	assert_int_equal(g, 1);
	/* g3 completes: the newest. */
	assert_int_equal(ckpt_coord_decide(&s->c, 3, "complete 2 5 6\n"), 1);
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), 0);
	assert_int_equal(g, 3);
	/* The highest number wins, not the order of the listing or of the
	 * decisions: g10 over g9. */
	assert_int_equal(ckpt_coord_decide(&s->c, 10, "complete 2 8 8\n"), 1);
	assert_int_equal(ckpt_coord_decide(&s->c, 9, "complete 2 7 7\n"), 1);
	assert_int_equal(ckpt_coord_latest_complete(&s->c, &g), 0);
	assert_int_equal(g, 10);
}

/* --- the first node's verdict ------------------------------------------- */

/* Written as one line per word, read back with goon's reason; none is
 * -ENOENT; the writer takes a reason with goon only, and only one of
 * printable text. */
static void test_verdict(void **state)
{
	struct st *s = *state;
	enum ckpt_verdict v = CKPT_VERDICT_ENDED;
	char why[64] = "x";

	assert_int_equal(
	    ckpt_coord_read_verdict(&s->c, 1, &v, why, sizeof(why)), -ENOENT);
	assert_int_equal(
	    ckpt_coord_verdict(&s->c, 1, CKPT_VERDICT_REQUEUED, NULL), 0);
	file_holds(s, "g1.verdict", "requeued\n");
	assert_int_equal(
	    ckpt_coord_read_verdict(&s->c, 1, &v, why, sizeof(why)), 0);
	assert_int_equal(v, CKPT_VERDICT_REQUEUED);
	assert_string_equal(why, "");
	assert_int_equal(ckpt_coord_verdict(&s->c, 2, CKPT_VERDICT_ENDED, NULL),
			 0);
	file_holds(s, "g2.verdict", "ended\n");
	assert_int_equal(
	    ckpt_coord_read_verdict(&s->c, 2, &v, why, sizeof(why)), 0);
	assert_int_equal(v, CKPT_VERDICT_ENDED);
	assert_int_equal(ckpt_coord_verdict(&s->c, 3, CKPT_VERDICT_GOON,
					    "Slurm refused: Job is not "
					    "requeueable"),
			 0);
	file_holds(s, "g3.verdict",
		   "goon Slurm refused: Job is not requeueable\n");
	assert_int_equal(
	    ckpt_coord_read_verdict(&s->c, 3, &v, why, sizeof(why)), 0);
	assert_int_equal(v, CKPT_VERDICT_GOON);
	assert_string_equal(why, "Slurm refused: Job is not requeueable");
	/* A reason longer than the caller's buffer is cut, not refused. */
	assert_int_equal(ckpt_coord_read_verdict(&s->c, 3, &v, why, 6), 0);
	assert_string_equal(why, "Slurm");
	assert_int_equal(ckpt_coord_read_verdict(&s->c, 3, &v, NULL, 0), 0);

	/* The writer: a reason with goon only, one printable line. */
	assert_int_equal(ckpt_coord_verdict(&s->c, 4, CKPT_VERDICT_GOON, NULL),
			 -EINVAL);
	assert_int_equal(ckpt_coord_verdict(&s->c, 4, CKPT_VERDICT_GOON, ""),
			 -EINVAL);
	assert_int_equal(
	    ckpt_coord_verdict(&s->c, 4, CKPT_VERDICT_GOON, "two\nlines"),
	    -EINVAL);
	assert_int_equal(
	    ckpt_coord_verdict(&s->c, 4, CKPT_VERDICT_GOON, " padded"),
	    -EINVAL);
	assert_int_equal(
	    ckpt_coord_verdict(&s->c, 4, CKPT_VERDICT_REQUEUED, "why"),
	    -EINVAL);
	assert_int_equal(
	    ckpt_coord_verdict(&s->c, 4, (enum ckpt_verdict)3, NULL), -EINVAL);
	assert_false(exists(s->dir, "g4.verdict"));
}

/* Anything but the three lines is refused: truncated (no newline, a word
 * cut), padded, another word or case, a second line, goon without a
 * reason or with one of control characters. */
static void test_verdict_strict(void **state)
{
	struct st *s = *state;
	static const char *const bad[] = {
	    "requeued",
	    "requeue\n",
	    "ended",
	    "",
	    "\n",
	    " requeued\n",
	    "requeued \n",
	    "requeued\n\n",
	    "requeued\nended\n",
	    "Requeued\n",
	    "REQUEUED\n",
	    "requeuedx\n",
	    "ended\r\n",
	    "end\n",
	    "goon\n",
	    "goon \n",
	    "goon  why\n",
	    "goon why \n",
	    "goon why",
	    "goonwhy\n",
	    "goon\twhy\n",
	    "goon why\x01\n",
	    "goon why\nmore\n",
	    "go on why\n",
	    "abort n0 why\n",
	    "complete 2 1 2\n",
	};
	enum ckpt_verdict v = CKPT_VERDICT_ENDED;
	char why[64] = "kept";
	unsigned lax = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (ckpt_coord_parse_verdict(bad[i], &v, why, sizeof(why)) !=
		    -EBADMSG) {
			print_message("parse_verdict accepts '%s'\n", bad[i]);
			lax++;
		}
	}
	assert_int_equal(lax, 0);
	assert_int_equal(v, CKPT_VERDICT_ENDED);
	assert_string_equal(why, "kept");
	/* Read from the file alike. */
	put(s->dir, "g1.verdict", "requeued");
	assert_int_equal(
	    ckpt_coord_read_verdict(&s->c, 1, &v, why, sizeof(why)), -EBADMSG);
	put(s->dir, "g1.verdict", "goon \n");
	assert_int_equal(
	    ckpt_coord_read_verdict(&s->c, 1, &v, why, sizeof(why)), -EBADMSG);
	assert_int_equal(v, CKPT_VERDICT_ENDED);
}

/* --- removal -------------------------------------------------------------- */

static void test_remove(void **state)
{
	struct st *s = *state;
	struct ckpt_coord c = CKPT_COORD_INIT;
	char err[512] = "";
	uint32_t g = 0;

	assert_int_equal(ckpt_coord_plan(&s->c, 2, true, &g), 0);
	assert_int_equal(ckpt_coord_mark(&s->c, 1, "frozen", 1, ""), 0);
	assert_int_equal(ckpt_coord_decide(&s->c, 1, "complete 2 1 1\n"), 1);
	/* Another job's directory stays. */
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB + 1, true, &c, err, sizeof(err)), 0);
	assert_int_equal(ckpt_coord_mark(&c, 1, "frozen", 0, ""), 0);
	ckpt_coord_close(&c);

	assert_true(exists(s->dir, "."));
	assert_int_equal(ckpt_coord_remove(s->root, JOB), 0);
	assert_false(exists(s->dir, "."));
	assert_true(exists(s->root, "coord/43/g1.frozen.0"));
	assert_true(exists(s->root, "coord"));
	/* Gone: not opened without create; removing again is fine. */
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, false, &c, err, sizeof(err)),
	    -ENOENT);
	assert_int_equal(ckpt_coord_remove(s->root, JOB), 0);
	/* Made anew, empty. */
	assert_int_equal(
	    ckpt_coord_open(s->root, JOB, true, &c, err, sizeof(err)), 0);
	assert_int_equal(ckpt_coord_last_plan(&c), 0);
	ckpt_coord_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_makes, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_open_missing, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_open_refused, st_setup,
					    st_teardown),
	    cmocka_unit_test(test_node_root),
	    cmocka_unit_test_setup_teardown(test_plan, st_setup, st_teardown),
	    cmocka_unit_test_setup_teardown(test_plan_refused, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_plan_strict, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_plan_run, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_marks, st_setup, st_teardown),
	    cmocka_unit_test_setup_teardown(test_marks_bad_what, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_decide, st_setup, st_teardown),
	    cmocka_unit_test_setup_teardown(test_outcome_two_names, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_outcome_stale_link, st_setup,
					    st_teardown),
	    cmocka_unit_test(test_parse_complete),
	    cmocka_unit_test_setup_teardown(test_parse_complete_whole_line,
					    st_setup, st_teardown),
	    cmocka_unit_test_setup_teardown(test_latest_complete, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_verdict, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_verdict_strict, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_remove, st_setup, st_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
