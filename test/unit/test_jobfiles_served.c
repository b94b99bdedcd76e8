// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/files/jobfiles_served.c without a guest: the paths, the
 * domain fields, vmenv-9p's command line (ids, groups, restored state),
 * freeze/thaw refusing cleanly when no server runs, which jobs get the
 * served kind, the after-save step, and a restarted vmmd adopting a
 * running server (the real vmenv-9p of this build). test/ninep/
 * host-test runs the real thing against a guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "ckpt_store.h"
#include "cleanup.h"
#include "domxml.h"
#include "job.h"
#include "jobfiles.h"
#include "jobfiles_served.h"
#include "rmtree.h"
#include "testutil.h"
#include "vmmd.h"

static void job_init(struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = 42;
	j->uid = 2005;
	j->gid = 2005;
	j->ngroups = 2;
	j->groups[0] = 2005;
	j->groups[1] = 27;
	strcpy(j->dir, "/run/vmenv/jobs/42");
	strcpy(j->work_dir, "/home/a/w");
}

static void test_prepare_domspec(void **state)
{
	struct job j;
	struct dom_spec s = {.share_dir = "/x", .share_tag = "t"};
	char err[256];

	(void)state;
	job_init(&j);
	assert_int_equal(jobfiles_served_domspec(&j, &s), -EINVAL);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	assert_int_equal(jobfiles_served_domspec(&j, &s), 0);
	assert_null(s.share_dir);
	assert_string_equal(s.files_sock, "/run/vmenv/jobs/42/q/files.sock");
	assert_string_equal(s.files_port, "org.vmenv.files.0");
	assert_string_equal(j.served->state,
			    "/run/vmenv/jobs/42/q/files.state");
	jobfiles_served_stop(&j);
	assert_null(j.served);
}

static void test_argv(void **state)
{
	const char *argv[JOBFILES_SERVED_ARGV];
	char line[1024] = "", err[256];
	struct job j;

	(void)state;
	job_init(&j);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	jobfiles_served_argv(&j, "/ckpt/42/1/files", argv);
	for (size_t i = 1; argv[i]; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "%s ", argv[i]);
	assert_string_equal(
	    line, "--root /home/a/w --connect /run/vmenv/jobs/42/q/files.sock "
		  "--uid 2005 --gid 2005 --groups 2005,27 --state-out "
		  "/run/vmenv/jobs/42/q/files.state --ctl-fd 3 --state-in "
		  "/ckpt/42/1/files ");
	assert_true(strstr(argv[0], "/vmenv-9p") != NULL);
	jobfiles_served_stop(&j);
}

static void test_no_server(void **state)
{
	char err[256];
	struct job j;

	(void)state;
	job_init(&j);
	assert_int_equal(jobfiles_served_freeze(&j, "/tmp", err, sizeof(err)),
			 -ESRCH);
	assert_contains(err, "job 42");
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	assert_int_equal(jobfiles_served_thaw(&j, NULL, NULL, err, sizeof(err)),
			 -ESRCH);
	assert_contains(err, "job 42: no file server to resume");
	jobfiles_served_stop(&j);
}

/* A checkpointing job gets its files served (open files survive), unless
 * the job or the node says checkpoint_files = 9p; other jobs keep
 * virtio-9p. The
 * names round-trip (state file, manifest) and nothing else parses. */
static void test_kind(void **state)
{
	static struct vmmd d;
	struct job j;
	enum jobfiles_kind k = JOBFILES_SERVED;
	const struct {
		const char *cfg;
		bool checkpoint;
		uint32_t spec;
		enum jobfiles_kind want;
	} cases[] = {
	    {"served", true, VMSPEC_CF_NODE, JOBFILES_SERVED},
	    {"served", false, VMSPEC_CF_NODE, JOBFILES_VIRTIO_9P},
	    {"9p", true, VMSPEC_CF_NODE, JOBFILES_VIRTIO_9P},
	    {"9p", false, VMSPEC_CF_NODE, JOBFILES_VIRTIO_9P},
	    /* the job's own choice wins over the node's default */
	    {"served", true, VMSPEC_CF_9P, JOBFILES_VIRTIO_9P},
	    {"9p", true, VMSPEC_CF_SERVED, JOBFILES_SERVED},
	    /* ... and means nothing without checkpoints */
	    {"9p", false, VMSPEC_CF_SERVED, JOBFILES_VIRTIO_9P},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		job_init(&j);
		j.d = &d;
		snprintf(d.cfg.checkpoint_files, sizeof(d.cfg.checkpoint_files),
			 "%s", cases[i].cfg);
		j.spec.v.checkpoint = cases[i].checkpoint;
		j.spec.v.checkpoint_files = cases[i].spec;
		assert_int_equal(jobfiles_kind_for(&j), cases[i].want);
	}
	assert_int_equal(jobfiles_kind_parse("9p", &k), 0);
	assert_int_equal(k, JOBFILES_VIRTIO_9P);
	assert_int_equal(
	    jobfiles_kind_parse(jobfiles_kind_name(JOBFILES_SERVED), &k), 0);
	assert_int_equal(k, JOBFILES_SERVED);
	assert_int_equal(jobfiles_kind_parse("virtiofs", &k), -EINVAL);
	assert_int_equal(jobfiles_kind_parse("", &k), -EINVAL);
}

/* After the save: the worker waits for the server and keeps what it got
 * after the freeze under the checkpoint (absent: nothing, no error); the
 * loop then forgets the server. The 9p kind plans nothing. */
/* vmenv-9p never runs as root: a root job whose files would be served
 * is refused at prepare, naming the reason, and nothing is made. */
static void test_root_refused(void **state)
{
	struct job j;
	char err[512];

	(void)state;
	job_init(&j);
	j.id = 7;
	j.uid = 0;
	j.files_kind = JOBFILES_SERVED;
	assert_int_equal(jobfiles_prepare(&j, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "job 7: root's jobs cannot checkpoint "
				    "with served files"));
	assert_null(j.served);
	/* The same job with virtio-9p is not the server's business. */
	j.files_kind = JOBFILES_VIRTIO_9P;
	assert_int_equal(jobfiles_prepare(&j, err, sizeof(err)), 0);
}

static void test_after_save(void **state)
{
	struct job j;
	struct jobfiles_after_save p;
	char err[256], dir[] = "/tmp/vmenv-afterXXXXXX",
		       path[VMENV_MAX_PATH + 32];
	char *text = NULL;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	job_init(&j);
	j.uid = getuid(); /* what the server keeps is the job user's */
	j.files_kind = JOBFILES_VIRTIO_9P;
	jobfiles_after_save_plan(&j, &p);
	assert_int_equal(p.pid, 0);
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);

	snprintf(j.dir, sizeof(j.dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/q", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	j.files_kind = JOBFILES_SERVED;
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	/* A stand-in server that leaves at once, having kept some bytes. */
	snprintf(path, sizeof(path), "%s.pending", j.served->state);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	j.served->pid = pid;
	j.served->child = true;
	jobfiles_after_save_plan(&j, &p);
	assert_int_equal(p.pid, pid);
	assert_string_equal(p.pending, path);
	/* Nothing pending: fine. */
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/" CKPT_FILES_PENDING, dir);
	assert_int_equal(access(path, F_OK), -1);
	/* Something pending: copied. */
	assert_int_equal(write_file_atomic(p.pending, "Tversion\n", 9, 0600),
			 0);
	p.pid = 0;
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);
	p.pid = pid; /* reaped already: waitpid says ECHILD, no hang */
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);
	assert_int_equal(read_file_limited(path, 64, &text, NULL), 0);
	assert_string_equal(text, "Tversion\n");
	free(text);
	/* The loop forgets the reaped server: stop kills nothing. */
	jobfiles_saved(&j);
	assert_int_equal(j.served->pid, 0);
	jobfiles_served_stop(&j);
	rm_rf(dir);
}

/* Until pid blocks SIGUSR1 (vmenv-9p's signalfd is set up): a freeze sent
 * earlier would find the default action. */
static void wait_signals_blocked(pid_t pid)
{
	char p[64], *text = NULL, *blk;
	unsigned long long mask = 0;

	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	for (int i = 0; i < 500; i++) {
		if (read_file_limited(p, 1 << 16, &text, NULL) == 0 &&
		    (blk = strstr(text, "SigBlk:")) &&
		    sscanf(blk + 7, "%llx", &mask) == 1 &&
		    (mask & (1ull << (SIGUSR1 - 1))))
			i = 500;
		free(text);
		text = NULL;
		if (i < 500)
			usleep(10000);
	}
	assert_true(mask & (1ull << (SIGUSR1 - 1)));
}

/* What a vmmd that exits leaves: the server runs on, unowned. */
static void vmmd_exits(struct job *j)
{
	if (j->served->ctl >= 0)
		close(j->served->ctl);
	if (j->served->pidfd >= 0)
		close(j->served->pidfd);
	free(j->served);
	j->served = NULL;
}

static void put_pid(const char *dir, pid_t pid)
{
	char p[VMENV_MAX_PATH + 16], buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

	snprintf(p, sizeof(p), "%s/files.pid", dir);
	assert_int_equal(write_file_atomic(p, buf, (size_t)n, 0600), 0);
}

/* Whether the server answers a 9P Tversion on conn within ms (it reads
 * nothing while frozen). */
static bool answers_9p(int conn, int ms)
{
	static const unsigned char tversion[21] = {
	    21, 0, 0,	0,   100, 0xff, 0xff, 0,   0x20, 0,  0,
	    8,	0, '9', 'P', '2', '0',	'0',  '0', '.',	 'L'};
	unsigned char rep[64];

	assert_int_equal(write(conn, tversion, sizeof(tversion)),
			 sizeof(tversion));
	if (poll(&(struct pollfd){conn, POLLIN, 0}, 1, ms) != 1)
		return false;
	assert_true(read(conn, rep, sizeof(rep)) >= 7);
	assert_int_equal(rep[4], 101); /* Rversion */
	return true;
}

/* A vmmd restarted while a served job runs takes its vmenv-9p over: the
 * server is found by its pid file and checked, answers through the FIFO,
 * is resumed (a checkpoint the old vmmd began had frozen it), freezes and
 * thaws for the new vmmd, and is stopped at the job's end. A pid file
 * naming another process or another job's server, a process that does
 * not hold the job's FIFO, or no pid file: refused with the job named,
 * and the server left as it was. */
static void test_adopt(void **state)
{
	char dir[] = "/tmp/vmenv-adoptXXXXXX",
	     other[] = "/tmp/vmenv-adopt2XXXXXX";
	char err[1024], p[VMENV_MAX_PATH + 32], keep[VMENV_MAX_PATH + 32];
	struct job j, k;
	int lfd, conn, status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip(); /* vmenv-9p starts as root and drops to the job's ids */
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(other));
	jobfiles_server_path = TEST_BUILDDIR "/ninep/vmenv-9p";
	job_init(&j);
	j.uid = 65534; /* vmenv-9p refuses to serve as root */
	j.gid = 65534;
	j.ngroups = 0;
	j.files_kind = JOBFILES_SERVED;
	snprintf(j.dir, sizeof(j.dir), "%s", dir);
	snprintf(j.work_dir, sizeof(j.work_dir), "%s", dir);
	assert_int_equal(chmod(dir, 0755), 0);
	/* The job directory's layout (job.h): q/ root's 0700. */
	snprintf(p, sizeof(p), "%s/q", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/ck", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	/* QEMU's end of the port: the server connects to it. */
	lfd = unix_listen(j.served->sock, 0600, 1);
	assert_true(lfd >= 0);
	assert_int_equal(jobfiles_served_attach(&j, err, sizeof(err)), 0);
	pid = j.served->pid;
	assert_int_equal(poll(&(struct pollfd){lfd, POLLIN, 0}, 1, 10000), 1);
	conn = accept(lfd, NULL, NULL);
	assert_true(conn >= 0);
	wait_signals_blocked(pid);
	assert_true(answers_9p(conn, 5000));
	/* Frozen by the old vmmd, which then dies before the thaw; the
	 * user freezes their own server again: a stale line waits. */
	assert_int_equal(jobfiles_served_freeze(&j, p, err, sizeof(err)), 0);
	assert_int_equal(kill(pid, SIGUSR1), 0);
	vmmd_exits(&j);

	/* Not adopted: no pid file, another process, another job's server,
	 * a process without the job's FIFO. */
	memcpy(&k, &j, sizeof(k));
	snprintf(k.dir, sizeof(k.dir), "%s", other);
	snprintf(p, sizeof(p), "%s/files.ctl", other);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(jobfiles_served_adopt(&k, err, sizeof(err)), -ENOENT);
	assert_contains(err, "job 42: the file server was not adopted");
	put_pid(other, getpid());
	assert_int_equal(jobfiles_served_adopt(&k, err, sizeof(err)), -ESRCH);
	assert_contains(err, "is not the vmenv-9p vmmd started");
	put_pid(other, pid);
	assert_int_equal(jobfiles_served_adopt(&k, err, sizeof(err)), -ESRCH);
	assert_int_equal(k.served->pid, 0);
	jobfiles_served_stop(&k);
	snprintf(p, sizeof(p), "%s/files.ctl", dir);
	snprintf(keep, sizeof(keep), "%s/files.ctl.keep", dir);
	assert_int_equal(link(p, keep), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(jobfiles_served_adopt(&j, err, sizeof(err)), -ESRCH);
	assert_int_equal(rename(keep, p), 0);
	assert_int_equal(kill(pid, 0), 0);
	assert_false(answers_9p(conn, 300)); /* still frozen: untouched */

	/* Adopted: resumed at once (the Tversion sent while it was frozen
	 * is answered now), then frozen and thawed again. */
	assert_int_equal(jobfiles_served_adopt(&j, err, sizeof(err)), 0);
	assert_int_equal(j.served->pid, pid);
	assert_false(j.served->child);
	assert_int_equal(poll(&(struct pollfd){conn, POLLIN, 0}, 1, 5000), 1);
	assert_true(read(conn, err, sizeof(err)) >= 7);
	assert_int_equal((unsigned char)err[4], 101);
	snprintf(p, sizeof(p), "%s/ck/files", dir); /* a new checkpoint */
	assert_int_equal(unlink(p), 0);
	snprintf(p, sizeof(p), "%s/ck", dir);
	assert_int_equal(jobfiles_served_freeze(&j, p, err, sizeof(err)), 0);
	assert_int_equal(jobfiles_served_thaw(&j, NULL, NULL, err, sizeof(err)),
			 0);
	assert_true(answers_9p(conn, 5000));
	/* The job ends: the server is stopped, its files are gone. */
	jobfiles_served_stop(&j);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* Ended by the SIGTERM, as it should (exit 0), not by the SIGKILL
	 * after JOBFILES_STOP_MS: that would be a server that ignores it. */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(p, sizeof(p), "%s/files.pid", dir);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/files.ctl", dir);
	assert_int_equal(access(p, F_OK), -1);
	close(conn);
	close(lfd);
	rm_rf(dir);
	rm_rf(other);
}

/* The state the server keeps is copied as root: a
 * link or a FIFO put in its place, or another owner's file, is refused
 * without blocking, and the freeze fails with the reason. */
static void test_state_copy_refuses(void **state)
{
	char dir[] = "/tmp/vmenv-cpXXXXXX", src[128], dst[128];
	uint64_t t0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/state", dir);
	snprintf(dst, sizeof(dst), "%s/copy", dir);
	assert_int_equal(mkfifo(src, 0600), 0);
	t0 = now_ms();
	assert_int_equal(copy_user_file(src, dst, 0600, getuid()), -EINVAL);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(unlink(src), 0);
	assert_int_equal(symlink("/etc/passwd", src), 0);
	assert_int_equal(copy_user_file(src, dst, 0600, getuid()), -ELOOP);
	assert_int_equal(unlink(src), 0);
	assert_int_equal(write_file_atomic(src, "x", 1, 0600), 0);
	assert_int_equal(copy_user_file(src, dst, 0600, getuid() + 1), -EPERM);
	assert_int_equal(access(dst, F_OK), -1);
	assert_int_equal(copy_user_file(src, dst, 0600, getuid()), 0);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prepare_domspec),
	    cmocka_unit_test(test_argv),
	    cmocka_unit_test(test_no_server),
	    cmocka_unit_test(test_kind),
	    cmocka_unit_test(test_root_refused),
	    cmocka_unit_test(test_after_save),
	    cmocka_unit_test(test_adopt),
	    cmocka_unit_test(test_state_copy_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
