/* SPDX-License-Identifier: MIT */
/* userfd: a client's descriptor is opened again with the client's rights,
 * never root's (issue 14 finding 3: /dev/kmsg and root 0600 FIFOs through
 * O_PATH fds). Needs root to play both sides; skipped otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "userfd.h"

#define NOBODY 65534

static const struct userfd_ids nobody = {.uid = NOBODY, .gid = NOBODY};

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test-userfd.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	chmod(f->dir, 0755);
	snprintf(f->path, sizeof(f->path), "%s/obj", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void need_root(void)
{
	if (geteuid() != 0) {
		print_message("needs root to open as another user\n");
		skip();
	}
}

/* An O_PATH fd carries no permission: refused before any open. */
static void test_opath_refused(void **state)
{
	struct fx *f = *state;
	int modes[] = {O_RDONLY, O_WRONLY};
	int fds[2];

	need_root();
	assert_int_equal(mkfifo(f->path, 0600), 0);
	fds[0] = open(f->path, O_PATH | O_CLOEXEC);
	fds[1] = open("/dev/null", O_PATH | O_CLOEXEC);
	assert_true(fds[0] >= 0 && fds[1] >= 0);
	assert_int_equal(userfd_own_nonblock(&nobody, fds, modes, 1), -EBADF);
	assert_int_equal(userfd_own_nonblock(&nobody, fds + 1, modes + 1, 1),
			 -EBADF);
	close(fds[0]);
	close(fds[1]);
}

/* A read-only fd offered as stdout: refused. */
static void test_wrong_access_refused(void **state)
{
	int mode = O_WRONLY;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	need_root();
	assert_int_equal(userfd_own_nonblock(&nobody, &fd, &mode, 1), -EBADF);
	close(fd);
}

/* Root's 0600 FIFO, held O_RDWR (as if the user had been given it): the
 * user may not open it again, so the fd stays the one sent, and no new
 * description of it exists (the FIFO's writers are still one). */
static void test_root_fifo_not_reopened(void **state)
{
	struct fx *f = *state;
	int mode = O_WRONLY, fd, orig;

	need_root();
	assert_int_equal(mkfifo(f->path, 0600), 0);
	fd = orig = open(f->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(userfd_own_nonblock(&nobody, &fd, &mode, 1), 0);
	assert_int_equal(fd, orig);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

/* The user's own FIFO: a private description, the shared one untouched. */
static void test_user_fifo_reopened(void **state)
{
	struct fx *f = *state;
	int mode = O_WRONLY, fd, keep;

	need_root();
	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(chown(f->path, NOBODY, NOBODY), 0);
	keep = open(f->path, O_RDWR | O_CLOEXEC);
	fd = dup(keep);
	assert_true(keep >= 0 && fd >= 0);
	assert_int_equal(userfd_own_nonblock(&nobody, &fd, &mode, 1), 0);
	assert_int_not_equal(fd, keep);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
	assert_false(fcntl(keep, F_GETFL) & O_NONBLOCK);
	close(fd);
	close(keep);
}

/* The batch output read for a checkpoint: a file the user may write but
 * not read (root's, 0602) is not read; the user's own file is. */
static void test_reopen_read(void **state)
{
	struct fx *f = *state;
	int fd, r;

	need_root();
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0602);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0602), 0);
	assert_int_equal(userfd_reopen_read(&nobody, fd), -EACCES);
	assert_int_equal(fchown(fd, NOBODY, NOBODY), 0);
	assert_int_equal(fchmod(fd, 0600), 0);
	assert_int_equal(write(fd, "out", 3), 3);
	r = userfd_reopen_read(&nobody, fd);
	assert_true(r >= 0);
	assert_int_equal(fcntl(r, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(r);
	close(fd);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_int_equal(userfd_reopen_read(&nobody, fd), -EINVAL);
	close(fd);
}

/* After every call the thread is root again, all of it (the fs ids and
 * the groups), and no process was made (a child that became the user held
 * vmmd's fds and memory: the review of issue 14). */
static void test_creds_restored_no_child(void **state)
{
	struct fx *f = *state;
	int mode = O_WRONLY, fd, orig;
	gid_t g[64];
	int ng_before, ng_after;

	need_root();
	ng_before = getgroups(64, g);
	assert_int_equal(mkfifo(f->path, 0600), 0);
	fd = orig = open(f->path, O_RDWR | O_CLOEXEC);
	assert_int_equal(userfd_own_nonblock(&nobody, &fd, &mode, 1), 0);
	assert_int_equal(fd, orig);
	assert_int_equal(syscall(SYS_setfsuid, -1), 0);
	assert_int_equal(syscall(SYS_setfsgid, -1), 0);
	ng_after = getgroups(64, g);
	assert_int_equal(ng_before, ng_after);
	/* No child to reap: waitpid finds none. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	/* Root's rights are back: root's 0600 FIFO opens again. */
	close(fd);
	fd = open(f->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
}

struct probe {
	const char *path;
};

static int probe_fn(void *arg)
{
	const struct probe *p = arg;
	int fd = open(p->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* userfd_as_user: a path the user may not read is not read, one they may
 * is. */
static void test_as_user(void **state)
{
	struct fx *f = *state;
	struct probe p = {.path = f->path};
	int fd;

	need_root();
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(userfd_as_user(&nobody, probe_fn, &p), -EACCES);
	assert_int_equal(chown(f->path, NOBODY, NOBODY), 0);
	assert_int_equal(userfd_as_user(&nobody, probe_fn, &p), 0);
	assert_int_equal(syscall(SYS_setfsuid, -1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_opath_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_access_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_root_fifo_not_reopened, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_user_fifo_reopened, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_restored_no_child, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_as_user, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
