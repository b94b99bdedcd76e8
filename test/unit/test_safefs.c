// SPDX-License-Identifier: MIT
/*
 * The fd-based helpers for root in user-writable places (common/safefs.h),
 * each refusal tried for real: a symlink on the way or in the last
 * place, a FIFO that would block, a file of another owner or with another
 * name, a directory renamed away and replaced by a link, a mount point
 * where a private directory is expected. Cases that need another owner
 * (chown) or a mount run as root only (skipped otherwise). Removal by fd
 * is common/rmtree.c's (test_rmtree).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "rmtree.h"
#include "safefs.h"
#include "util.h"

/* Another user, as the tests play one (no account needed). */
#define OTHER_UID 12345

struct fx {
	char dir[64];
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/vmenv-sfs-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	rm_rf(f->dir);
	free(f);
	return 0;
}

static void path(const struct fx *f, char *buf, size_t len, const char *sub)
{
	assert_int_equal(str_printf(buf, len, "%s/%s", f->dir, sub), 0);
}

static void mkdir_in(const struct fx *f, const char *sub, mode_t mode)
{
	char p[256];

	path(f, p, sizeof(p), sub);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static void write_in(const struct fx *f, const char *sub, const char *text)
{
	char p[256];

	path(f, p, sizeof(p), sub);
	assert_int_equal(write_file_atomic(p, text, strlen(text), 0600), 0);
}

static void link_in(const struct fx *f, const char *sub, const char *target)
{
	char p[256];

	path(f, p, sizeof(p), sub);
	assert_int_equal(symlink(target, p), 0);
}

static void chown_in(const struct fx *f, const char *sub, uid_t uid)
{
	char p[256];

	path(f, p, sizeof(p), sub);
	assert_int_equal(lchown(p, uid, (gid_t)-1), 0);
}

static char *read_in(const struct fx *f, const char *sub)
{
	char p[256], *text = NULL;

	path(f, p, sizeof(p), sub);
	if (read_file_limited(p, 1 << 20, &text, NULL) < 0)
		return NULL;
	return text;
}

static bool exists_in(const struct fx *f, const char *sub)
{
	char p[256];
	struct stat st;

	path(f, p, sizeof(p), sub);
	return lstat(p, &st) == 0;
}

static int dir_fd(const struct fx *f)
{
	int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* --- sfs_open_dir_path ---------------------------------------------------- */

static void test_open_dir_path(void **state)
{
	static const struct {
		const char *what;
		const char *sub; /* below the fixture */
		unsigned flags;
		int want; /* 0: an fd */
		bool trusted;
		bool root; /* needs root (chown) */
	} cases[] = {
	    {"root's directories", "a/b", 0, 0, true, false},
	    {"a symlink on the way (a policy prefix escaped)", "ln/b", 0,
	     -ELOOP, false, false},
	    {"a symlink as the last component", "lnb", 0, -ELOOP, false, false},
	    {"a file on the way", "file/b", 0, -ENOTDIR, false, false},
	    {"missing", "a/new", 0, -ENOENT, false, false},
	    {"missing, created", "a/new2/c", SFS_CREATE, 0, true, false},
	    {"a user's directory on the way", "user/b", 0, 0, false, true},
	    {"writable by others", "open/b", 0, 0, false, false},
	    {"writable by others, sticky (/tmp)", "sticky/b", 0, 0, true,
	     false},
	};
	struct fx *f = *state;
	char p[256], target[256];

	mkdir_in(f, "a", 0700);
	mkdir_in(f, "a/b", 0700);
	path(f, target, sizeof(target), "a");
	link_in(f, "ln", target);
	path(f, target, sizeof(target), "a/b");
	link_in(f, "lnb", target);
	write_in(f, "file", "x");
	mkdir_in(f, "user", 0755);
	mkdir_in(f, "user/b", 0700);
	mkdir_in(f, "open", 0777);
	mkdir_in(f, "open/b", 0700);
	mkdir_in(f, "sticky", 01777);
	mkdir_in(f, "sticky/b", 0700);
	if (geteuid() == 0)
		chown_in(f, "user", OTHER_UID);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool trusted = !cases[i].trusted;
		int fd;

		if (cases[i].root && geteuid() != 0)
			continue;
		print_message("case %zu: %s\n", i, cases[i].what);
		path(f, p, sizeof(p), cases[i].sub);
		fd = sfs_open_dir_path(p, cases[i].flags, &trusted);
		if (cases[i].want) {
			assert_int_equal(fd, cases[i].want);
			continue;
		}
		assert_true(fd >= 0);
		assert_int_equal(trusted, cases[i].trusted);
		close(fd);
	}
	/* Not a clean absolute path. */
	assert_int_equal(sfs_open_dir_path("tmp", 0, NULL), -EINVAL);
	assert_int_equal(sfs_open_dir_path("/tmp/../etc", 0, NULL), -EINVAL);
}

/* Its own mount namespace for the test process (root only), so a tmpfs
 * it mounts is nobody else's. */
static bool private_mounts(void)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0)
		return false;
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* --- sfs_open_private_dir ------------------------------------------------ */

static void test_open_private_dir(void **state)
{
	struct fx *f = *state;
	_cleanup_close_ int dfd = dir_fd(f);
	struct stat st;
	int fd;

	mkdir_in(f, "mine", 0700);
	mkdir_in(f, "wide", 0755);
	link_in(f, "link", f->dir);
	fd = sfs_open_private_dir(dfd, "mine", false, 0700, &st);
	assert_true(fd >= 0);
	close(fd);
	fd = sfs_open_private_dir(dfd, "new", true, 0700, &st);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(sfs_open_private_dir(dfd, "wide", false, 0700, &st),
			 -EPERM);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(sfs_open_private_dir(dfd, "link", false, 0700, &st),
			 -ELOOP);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(sfs_open_private_dir(dfd, "..", false, 0700, &st),
			 -EINVAL);
	if (geteuid() != 0)
		return;
	mkdir_in(f, "theirs", 0700);
	chown_in(f, "theirs", OTHER_UID);
	assert_int_equal(sfs_open_private_dir(dfd, "theirs", false, 0700, &st),
			 -EPERM);
	assert_int_equal(st.st_uid, OTHER_UID);
	/* A mount point root's and 0700 (what a user's FUSE mount with
	 * allow_other may claim to be). */
	if (!private_mounts())
		return;
	close(dfd);
	dfd = dir_fd(f);
	mkdir_in(f, "mnt", 0700);
	{
		char p[256];

		path(f, p, sizeof(p), "mnt");
		assert_int_equal(
		    mount("tmpfs", p, "tmpfs", 0, "size=64k,mode=0700"), 0);
		assert_int_equal(
		    sfs_open_private_dir(dfd, "mnt", false, 0700, &st), -EXDEV);
		assert_int_equal(umount(p), 0);
	}
}

/* --- sfs_open_file ------------------------------------------------------- */

static void alarm_fail(int sig)
{
	(void)sig;
	/* A blocked open is the failure: say so and end the test. */
	static const char msg[] = "sfs_open_file blocked on a FIFO\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

static void test_open_file(void **state)
{
	static const struct {
		const char *name;
		int want;
		bool root;
	} cases[] = {
	    {"plain", 0, false},
	    {"link", -ELOOP, false},  /* to a plain file of root's */
	    {"fifo", -EINVAL, false}, /* without blocking */
	    {"dir", -EINVAL, false},
	    {"two", -EMLINK, false}, /* a hard link to plain */
	    {"theirs", -EPERM, true},
	    {"absent", -ENOENT, false},
	    {"../plain", -EINVAL, false},
	};
	struct fx *f = *state;
	_cleanup_close_ int dfd = dir_fd(f);
	char p[256], q[256];

	write_in(f, "plain", "data");
	write_in(f, "target", "secret");
	path(f, p, sizeof(p), "target");
	link_in(f, "link", p);
	path(f, p, sizeof(p), "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	mkdir_in(f, "dir", 0700);
	write_in(f, "one", "x");
	path(f, p, sizeof(p), "one");
	path(f, q, sizeof(q), "two");
	assert_int_equal(link(p, q), 0);
	write_in(f, "theirs", "x");
	if (geteuid() == 0)
		chown_in(f, "theirs", OTHER_UID);
	signal(SIGALRM, alarm_fail);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int fd;

		if (cases[i].root && geteuid() != 0)
			continue;
		print_message("case %zu: %s\n", i, cases[i].name);
		alarm(5);
		fd = sfs_open_file(dfd, cases[i].name, geteuid());
		alarm(0);
		if (cases[i].want) {
			assert_int_equal(fd, cases[i].want);
			continue;
		}
		assert_true(fd >= 0);
		/* Blocking again, as a plain fd. */
		assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
		close(fd);
	}
	signal(SIGALRM, SIG_DFL);
}

/* --- sfs_copy_fd, sfs_write_atomic ---------------------------------------- */

static void test_copy_fd(void **state)
{
	struct fx *f = *state;
	_cleanup_close_ int dfd = dir_fd(f);
	_cleanup_close_ int in = -1;
	_cleanup_free_ char *got = NULL, *victim = NULL;
	char p[256];

	write_in(f, "src", "0123456789");
	write_in(f, "victim", "precious");
	path(f, p, sizeof(p), "victim");
	link_in(f, "trap", p);
	path(f, p, sizeof(p), "src");
	in = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	/* From offset 0 whatever the fd's own offset, exactly len bytes. */
	assert_int_equal(lseek(in, 7, SEEK_SET), 7);
	assert_int_equal(sfs_copy_fd(in, 4, dfd, "dst", 0600), 0);
	got = read_in(f, "dst");
	assert_string_equal(got, "0123");
	/* An existing name, a link above all, is never written through. */
	assert_int_equal(sfs_copy_fd(in, 4, dfd, "dst", 0600), -EEXIST);
	assert_int_equal(sfs_copy_fd(in, 4, dfd, "trap", 0600), -EEXIST);
	victim = read_in(f, "victim");
	assert_string_equal(victim, "precious");
	/* A shorter source: nothing is left. */
	assert_int_equal(sfs_copy_fd(in, 11, dfd, "short", 0600), -EIO);
	assert_false(exists_in(f, "short"));
	/* The atomic write replaces a link (never follows it). */
	assert_int_equal(sfs_write_atomic(dfd, "trap", "new", 3, 0600), 0);
	free(victim);
	victim = read_in(f, "victim");
	assert_string_equal(victim, "precious");
	free(got);
	got = read_in(f, "trap");
	assert_string_equal(got, "new");
}

/* --- sfs_fd_path ---------------------------------------------------------- */

/* A path pinned to an open directory reaches that directory after it was
 * renamed away and a link put in its place. */
static void test_fd_path(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *got = NULL;
	_cleanup_close_ int fd = -1;
	char p[256], q[256], pinned[256];

	mkdir_in(f, "ckpt", 0700);
	write_in(f, "ckpt/memory", "the real one");
	mkdir_in(f, "evil", 0700);
	write_in(f, "evil/memory", "the attacker's");
	path(f, p, sizeof(p), "ckpt");
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(sfs_fd_path(fd, "memory", pinned, sizeof(pinned)), 0);
	path(f, q, sizeof(q), "moved");
	assert_int_equal(rename(p, q), 0);
	path(f, q, sizeof(q), "evil");
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(read_file_limited(pinned, 4096, &got, NULL), 0);
	assert_string_equal(got, "the real one");
	assert_int_equal(sfs_fd_path(fd, "../x", pinned, sizeof(pinned)),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_dir_path, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_private_dir, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_file, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_copy_fd, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_fd_path, fx_setup,
					    fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
