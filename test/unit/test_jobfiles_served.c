// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/files/jobfiles_served.c without a guest: the paths, the
 * domain fields, vmenv-9p's command line (ids, groups, restored state,
 * --read-only), a served job's mounts (a server, a port and a SETUP entry
 * each), freeze/thaw refusing cleanly when no server runs, which jobs get
 * the served kind, the after-save step, a restarted vmmd adopting a
 * running server, and the real vmenv-9p of this build serving a working
 * directory and two mounts (one read-only) through a freeze, the
 * checkpoint's store, a restore and the job's end. test/ninep/host-test
 * runs the real thing against a guest.
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
#include "jobmounts.h"
#include "ninep.h"
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
	assert_int_equal(s.nfiles_mounts, 0);
	assert_null(s.files_mounts);
	assert_int_equal(j.served->n, 1);
	assert_string_equal(j.served->srv[0].state,
			    "/run/vmenv/jobs/42/q/files.state");
	assert_string_equal(j.served->srv[0].name, "files");
	assert_string_equal(j.served->srv[0].root, "/home/a/w");
	jobfiles_served_stop(&j);
	assert_null(j.served);
}

/* Two mounts, the second ":ro". */
static void add_mounts(struct job *j)
{
	j->spec.v.mounts.n = 2;
	strcpy(j->spec.v.mounts.m[0].src, "/srv/a");
	strcpy(j->spec.v.mounts.m[0].dst, "/a");
	strcpy(j->spec.v.mounts.m[1].src, "/srv/b");
	strcpy(j->spec.v.mounts.m[1].dst, "/b");
	j->spec.v.mounts.m[1].ro = true;
}

/* A served job's mounts: a server each after the working directory's,
 * with its own socket, port, state, FIFO and pid file, named after the
 * mount's index (its state's name in the checkpoint); the domain gets a
 * port for each. More mounts than servers are refused, naming the job. */
static void test_prepare_mounts(void **state)
{
	struct dom_spec s = {0};
	const struct jobfiles_server *m;
	char err[256];
	struct job j;

	(void)state;
	job_init(&j);
	add_mounts(&j);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	assert_int_equal(j.served->n, 3);
	m = &j.served->srv[2];
	assert_string_equal(m->name, "files.m1");
	assert_string_equal(m->root, "/srv/b");
	assert_true(m->ro);
	assert_false(j.served->srv[1].ro);
	assert_string_equal(m->port, "org.vmenv.files.m1");
	assert_string_equal(m->sock, "/run/vmenv/jobs/42/q/files.m1.sock");
	assert_string_equal(m->state, "/run/vmenv/jobs/42/q/files.m1.state");
	assert_string_equal(m->ctl_path, "/run/vmenv/jobs/42/files.m1.ctl");
	assert_string_equal(m->pid_path, "/run/vmenv/jobs/42/files.m1.pid");
	assert_int_equal(jobfiles_served_domspec(&j, &s), 0);
	assert_int_equal(s.nfiles_mounts, 2);
	assert_string_equal(s.files_mounts[0].sock,
			    "/run/vmenv/jobs/42/q/files.m0.sock");
	assert_string_equal(s.files_mounts[0].name, "org.vmenv.files.m0");
	assert_string_equal(s.files_mounts[1].name, "org.vmenv.files.m1");
	jobfiles_served_stop(&j);

	j.spec.v.mounts.n = JOBFILES_MAX_MOUNTS + 1;
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), -E2BIG);
	assert_contains(err, "job 42: 17 mounts; served files take at most 16");
	assert_null(j.served);
}

/* What the domain and the agent's SETUP get for the mounts: virtio-9p
 * shares (tags vmenv.m<i>, ":ro" as <readonly/>) for a virtio-9p job;
 * for a served job no share, and SETUP names each mount's port with the
 * served transport, after the working directory. */
static void test_mounts_by_kind(void **state)
{
	char tags[VMSPEC_MAX_MOUNTS][JOBMOUNTS_TAG_LEN], wtag[] = "t";
	struct dom_mount dm[VMSPEC_MAX_MOUNTS];
	struct dom_spec s;
	struct aw_setup a;
	struct job j;

	(void)state;
	job_init(&j);
	add_mounts(&j);
	j.files_kind = JOBFILES_VIRTIO_9P;
	memset(&s, 0, sizeof(s));
	jobmounts_domspec(&j, dm, tags, &s);
	assert_int_equal(s.nmounts, 2);
	assert_string_equal(s.mounts[1].tag, "vmenv.m1");
	assert_string_equal(s.mounts[1].dir, "/srv/b");
	assert_true(s.mounts[1].ro);
	memset(&a, 0, sizeof(a));
	a.nmounts = 1;
	a.mounts[0] = (struct aw_mount){.tag = wtag, .path = j.work_dir};
	jobmounts_setup(&j, tags, &a);
	assert_int_equal(a.nmounts, 3);
	assert_string_equal(a.mounts[1].tag, "vmenv.m0");
	assert_int_equal(a.mounts[1].transport, AW_MOUNT_VIRTIO_9P);

	j.files_kind = JOBFILES_SERVED;
	memset(&s, 0, sizeof(s));
	jobmounts_domspec(&j, dm, tags, &s);
	assert_int_equal(s.nmounts, 0);
	assert_null(s.mounts);
	memset(&a, 0, sizeof(a));
	a.nmounts = 1;
	a.mounts[0] = (struct aw_mount){.tag = wtag, .path = j.work_dir};
	jobmounts_setup(&j, tags, &a);
	assert_int_equal(a.nmounts, 3);
	for (uint32_t i = 0; i < 2; i++) {
		char want[32];

		snprintf(want, sizeof(want), JOBFILES_MOUNT_PORT_FMT, i);
		assert_string_equal(a.mounts[1 + i].tag, want);
		assert_string_equal(a.mounts[1 + i].path,
				    j.spec.v.mounts.m[i].dst);
		assert_int_equal(a.mounts[1 + i].transport, AW_MOUNT_SERVED);
	}
}

static void test_argv(void **state)
{
	const char *argv[JOBFILES_SERVED_ARGV];
	char line[1024] = "", err[256];
	struct job j;

	(void)state;
	job_init(&j);
	add_mounts(&j);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	jobfiles_served_argv(&j, 0, "/ckpt/42/1/files", argv);
	for (size_t i = 1; argv[i]; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "%s ", argv[i]);
	assert_string_equal(
	    line, "--root /home/a/w --connect /run/vmenv/jobs/42/q/files.sock "
		  "--uid 2005 --gid 2005 --groups 2005,27 --state-out "
		  "/run/vmenv/jobs/42/q/files.state --ctl-fd 3 --state-in "
		  "/ckpt/42/1/files ");
	assert_true(strstr(argv[0], "/vmenv-9p") != NULL);
	/* The ":ro" mount's server refuses every write itself. */
	line[0] = '\0';
	jobfiles_served_argv(&j, 2, NULL, argv);
	for (size_t i = 1; argv[i]; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "%s ", argv[i]);
	assert_string_equal(
	    line,
	    "--root /srv/b --connect /run/vmenv/jobs/42/q/files.m1.sock "
	    "--uid 2005 --gid 2005 --groups 2005,27 --state-out "
	    "/run/vmenv/jobs/42/q/files.m1.state --ctl-fd 3 --read-only ");
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

/* After the save: the worker waits for every server and keeps what each
 * got after the freeze under the checkpoint, named after it (absent:
 * nothing, no error); the loop then forgets the servers. The 9p kind
 * plans nothing. */
static void test_after_save(void **state)
{
	struct job j;
	struct jobfiles_after_save p;
	char err[256], dir[] = "/tmp/vmenv-afterXXXXXX",
		       path[VMENV_MAX_PATH + 32];
	char *text = NULL;
	pid_t pid[2];

	(void)state;
	assert_non_null(mkdtemp(dir));
	job_init(&j);
	j.uid = getuid(); /* what the server keeps is the job user's */
	j.files_kind = JOBFILES_VIRTIO_9P;
	jobfiles_after_save_plan(&j, &p);
	assert_int_equal(p.n, 0);
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);

	snprintf(j.dir, sizeof(j.dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/q", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	j.files_kind = JOBFILES_SERVED;
	j.spec.v.mounts.n = 1;
	strcpy(j.spec.v.mounts.m[0].src, "/srv/a");
	strcpy(j.spec.v.mounts.m[0].dst, "/a");
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	/* Stand-in servers that leave at once, the mount's having kept some
	 * bytes. */
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0)
			_exit(0);
		j.served->srv[i].pid = pid[i];
		j.served->srv[i].child = true;
	}
	jobfiles_after_save_plan(&j, &p);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.srv[0].pid, pid[0]);
	assert_int_equal(p.srv[1].pid, pid[1]);
	assert_string_equal(p.srv[1].name, "files.m0");
	snprintf(path, sizeof(path), "%s/q", dir);
	assert_string_equal(p.qdir, path);
	snprintf(path, sizeof(path), "%s.pending", j.served->srv[1].state);
	assert_int_equal(write_file_atomic(path, "Tclunk\n", 7, 0600), 0);
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);
	/* Nothing pending for the working directory: no file. */
	snprintf(path, sizeof(path), "%s/" CKPT_FILES_PENDING, dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/files.m0.pending", dir);
	assert_int_equal(read_file_limited(path, 64, &text, NULL), 0);
	assert_string_equal(text, "Tclunk\n");
	free(text);
	assert_int_equal(unlink(path), 0); /* a new checkpoint */
	/* Something pending for it too: copied; the servers were reaped
	 * already (waitpid says ECHILD, no hang). */
	snprintf(path, sizeof(path), "%s.pending", j.served->srv[0].state);
	assert_int_equal(write_file_atomic(path, "Tversion\n", 9, 0600), 0);
	assert_int_equal(jobfiles_after_save_run(&p, dir, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/" CKPT_FILES_PENDING, dir);
	assert_int_equal(read_file_limited(path, 64, &text, NULL), 0);
	assert_string_equal(text, "Tversion\n");
	free(text);
	/* The loop forgets the reaped servers: stop kills nothing. */
	jobfiles_saved(&j);
	assert_int_equal(j.served->srv[0].pid, 0);
	assert_int_equal(j.served->srv[1].pid, 0);
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
	for (uint32_t i = 0; i < j->served->n; i++) {
		if (j->served->srv[i].ctl >= 0)
			close(j->served->srv[i].ctl);
		if (j->served->srv[i].pidfd >= 0)
			close(j->served->srv[i].pidfd);
	}
	free(j->served->srv);
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

/* A served job in dir (made) with its server running and connected to
 * "QEMU" (*lfd, *conn): the server's pid. */
static pid_t served_job(char *dir, struct job *j, int *lfd, int *conn)
{
	char err[1024], p[VMENV_MAX_PATH + 32];
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	jobfiles_server_path = TEST_BUILDDIR "/ninep/vmenv-9p";
	job_init(j);
	j->uid = 65534; /* vmenv-9p refuses to serve as root */
	j->gid = 65534;
	j->ngroups = 0;
	j->files_kind = JOBFILES_SERVED;
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	snprintf(j->work_dir, sizeof(j->work_dir), "%s", dir);
	assert_int_equal(chmod(dir, 0755), 0);
	/* The job directory's layout (job.h): q/ root's 0700. */
	snprintf(p, sizeof(p), "%s/q", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/ck", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(jobfiles_served_prepare(j, err, sizeof(err)), 0);
	/* QEMU's end of the port: the server connects to it. */
	*lfd = unix_listen(j->served->srv[0].sock, 0600, 1);
	assert_true(*lfd >= 0);
	assert_int_equal(jobfiles_served_attach(j, err, sizeof(err)), 0);
	pid = j->served->srv[0].pid;
	assert_int_equal(poll(&(struct pollfd){*lfd, POLLIN, 0}, 1, 10000), 1);
	*conn = accept(*lfd, NULL, NULL);
	assert_true(*conn >= 0);
	wait_signals_blocked(pid);
	assert_true(answers_9p(*conn, 5000));
	return pid;
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
	assert_non_null(mkdtemp(other));
	pid = served_job(dir, &j, &lfd, &conn);
	snprintf(p, sizeof(p), "%s/ck", dir);
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
	assert_int_equal(k.served->srv[0].pid, 0);
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
	assert_int_equal(j.served->srv[0].pid, pid);
	assert_false(j.served->srv[0].child);
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

/* A vmmd killed while it restored a served job: the new one finds no
 * guest and removes the job's directory, and first ends the vmenv-9p the
 * old one had started for it (found and checked as an adoption does: not
 * a process another directory's pid file names). */
static void test_reap_dir(void **state)
{
	char dir[] = "/tmp/vmenv-reapXXXXXX",
	     other[] = "/tmp/vmenv-reap2XXXXXX";
	char p[VMENV_MAX_PATH + 32];
	struct job j;
	int lfd, conn, status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip(); /* vmenv-9p starts as root and drops to the job's ids */
	assert_non_null(mkdtemp(other));
	pid = served_job(dir, &j, &lfd, &conn);
	vmmd_exits(&j);
	/* Another directory whose pid file names it: not its server. */
	snprintf(p, sizeof(p), "%s/files.ctl", other);
	assert_int_equal(mkfifo(p, 0600), 0);
	put_pid(other, pid);
	assert_int_equal(jobfiles_served_reap_dir(other), 0);
	assert_int_equal(kill(pid, 0), 0);
	assert_int_equal(jobfiles_served_reap_dir("/nonexistent"), 0);
	assert_int_equal(jobfiles_served_reap_dir(dir), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	close(conn);
	close(lfd);
	rm_rf(dir);
	rm_rf(other);
}

/* --- the real servers of a job with mounts ------------------------------ */

/* A 9P request (fmt as test_ninep_srv's: b w d q s, x for raw bytes) on
 * conn, not waiting for the answer. */
static void np_send(int conn, const char *fmt, ...)
{
	uint8_t m[8192];
	struct ninep_out o = {m, sizeof(m), 4, false};
	va_list ap;
	int n;

	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		if (*f == 'b')
			ninep_put_u8(&o, (uint8_t)va_arg(ap, unsigned));
		else if (*f == 'w')
			ninep_put_u16(&o, (uint16_t)va_arg(ap, unsigned));
		else if (*f == 'd')
			ninep_put_u32(&o, va_arg(ap, uint32_t));
		else if (*f == 'q')
			ninep_put_u64(&o, va_arg(ap, uint64_t));
		else if (*f == 'x') {
			const char *s = va_arg(ap, const char *);
			memcpy(o.buf + o.len, s, strlen(s));
			o.len += strlen(s);
		} else {
			const char *s = va_arg(ap, const char *);
			ninep_put_str(&o, s, strlen(s));
		}
	}
	va_end(ap);
	n = ninep_reply_end(&o);
	assert_true(n > 0);
	assert_int_equal(write(conn, m, (size_t)n), n);
}

/* The next reply on conn within ms into rep: 0, the errno of an
 * Rlerror, or -1 when none came. */
static int np_recv(int conn, uint8_t *rep, size_t len, int ms)
{
	size_t got = 0, want = 4;

	while (got < want) {
		ssize_t n;

		if (poll(&(struct pollfd){conn, POLLIN, 0}, 1, ms) != 1)
			return -1;
		n = read(conn, rep + got, want - got);
		assert_true(n > 0);
		got += (size_t)n;
		if (got == 4) {
			want = rep[0] | rep[1] << 8 | rep[2] << 16 |
			       (size_t)rep[3] << 24;
			assert_true(want >= 7 && want <= len);
		}
	}
	if (rep[4] == NINEP_RLERROR)
		return (int)(rep[7] | rep[8] << 8);
	return 0;
}

#define NP(conn, rep, ...) \
	(np_send(conn, __VA_ARGS__), np_recv(conn, rep, sizeof(rep), 5000))

/* Rread's data (count at 7, bytes from 11) is text. */
static void assert_read(const uint8_t *rep, const char *text)
{
	uint32_t n =
	    rep[7] | rep[8] << 8 | rep[9] << 16 | (uint32_t)rep[10] << 24;

	assert_int_equal(rep[4], NINEP_TREAD + 1);
	assert_int_equal(n, strlen(text));
	assert_memory_equal(rep + 11, text, n);
}

static bool cmdline_has(pid_t pid, const char *arg)
{
	char p[64], *cmd = NULL;
	size_t len = 0;
	bool found = false;

	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	if (read_file_limited(p, 1 << 16, &cmd, &len) < 0)
		return false;
	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
		found |= strcmp(cmd + i, arg) == 0;
	free(cmd);
	return found;
}

static bool has_text(const char *dir, const char *name, const char *text)
{
	char p[VMENV_MAX_PATH + 64], *t = NULL;
	bool r;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (read_file_limited(p, 1 << 20, &t, NULL) < 0)
		return false;
	r = strstr(t, text) != NULL;
	free(t);
	return r;
}

static bool exists_in(const char *dir, const char *name)
{
	char p[VMENV_MAX_PATH + 64];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* The restore's lookup (ckpt_job_restored_file): the verified fds. */
static struct ckpt_verified *restored_ver;

static int restored_from_ver(const struct job *j, const char *name,
			     uint64_t *size)
{
	(void)j;
	return ckpt_verified_fd(restored_ver, name, size);
}

/* The QEMU ends of the servers' ports: each server connects to its own. */
static void accept_all(struct job *j, const int *lfd, int *conn)
{
	for (uint32_t i = 0; i < j->served->n; i++) {
		assert_int_equal(
		    poll(&(struct pollfd){lfd[i], POLLIN, 0}, 1, 10000), 1);
		conn[i] = accept(lfd[i], NULL, NULL);
		assert_true(conn[i] >= 0);
		wait_signals_blocked(j->served->srv[i].pid);
	}
}

/* A served job with two mounts, the second ":ro", on the real vmenv-9p:
 * a server each, started as the job's user with the mount's source as its
 * root; the ":ro" one refuses every write (EROFS) and leaves its tree as
 * it was; one freeze writes every server's state into the checkpoint
 * under its own name (files, files.m0, files.m1), a request the guest
 * sends after the freeze is kept as files.m0.pending, the manifest lists
 * them and the restore finds each by the verified fd; the restored
 * servers answer that request first, on the file held open since before
 * the save, and the ":ro" one is read-only again. A restarted vmmd
 * adopts them (one it cannot adopt refuses the checkpoint, naming its
 * mount). A freeze whose save failed thaws every server; the job's end
 * stops them all and leaves no FIFO or pid file. */
static void test_mount_servers(void **state)
{
	char dir[] = "/tmp/vmenv-mntXXXXXX", frz[] = "/tmp/vmenv-frzXXXXXX";
	char p[VMENV_MAX_PATH + 64], err[1024], ck[VMENV_MAX_PATH];
	static const char *const sub[] = {"w", "rw", "ro", "store"};
	struct ckpt_store cs = CKPT_STORE_INIT;
	struct jobfiles_after_save as;
	struct ckpt_manifest m;
	struct ckpt_verified v;
	int lfd[3], conn[3], fd;
	pid_t old[3], pids[3];
	uint8_t rep[8192];
	uint32_t seq = 0;
	struct stat st;
	struct job j;

	(void)state;
	if (geteuid() != 0)
		skip(); /* vmenv-9p starts as root and drops to the job's ids */
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(p, sizeof(p), "%s/q", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
		assert_int_equal(mkdir(p, i == 3 ? 0700 : 0755), 0);
		if (i < 3)
			assert_int_equal(chown(p, 65534, 65534), 0);
	}
	snprintf(p, sizeof(p), "%s/ro/data", dir);
	assert_int_equal(write_file_atomic(p, "ro-data", 7, 0644), 0);
	snprintf(p, sizeof(p), "%s/store", dir);
	assert_int_equal(ckpt_store_open(p, 0, &cs, err, sizeof(err)), 0);

	jobfiles_server_path = TEST_BUILDDIR "/ninep/vmenv-9p";
	job_init(&j);
	j.uid = 65534; /* vmenv-9p refuses to serve as root */
	j.gid = 65534;
	j.ngroups = 0;
	j.files_kind = JOBFILES_SERVED;
	snprintf(j.dir, sizeof(j.dir), "%s", dir);
	snprintf(j.work_dir, sizeof(j.work_dir), "%s/w", dir);
	j.spec.v.mounts.n = 2;
	snprintf(j.spec.v.mounts.m[0].src, VMSPEC_MAX_MOUNT_PATH, "%s/rw", dir);
	strcpy(j.spec.v.mounts.m[0].dst, "/data");
	snprintf(j.spec.v.mounts.m[1].src, VMSPEC_MAX_MOUNT_PATH, "%s/ro", dir);
	strcpy(j.spec.v.mounts.m[1].dst, "/apps");
	j.spec.v.mounts.m[1].ro = true;

	assert_int_equal(jobfiles_prepare(&j, err, sizeof(err)), 0);
	assert_int_equal(j.served->n, 3);
	for (int i = 0; i < 3; i++) {
		lfd[i] = unix_listen(j.served->srv[i].sock, 0600, 1);
		assert_true(lfd[i] >= 0);
	}
	if (jobfiles_attach(&j, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	accept_all(&j, lfd, conn);
	for (int i = 0; i < 3; i++) {
		old[i] = j.served->srv[i].pid;
		assert_true(old[i] > 0);
		assert_int_equal(cmdline_has(old[i], "--read-only"), i == 2);
		assert_int_equal(NP(conn[i], rep, "bwds", NINEP_TVERSION,
				    0xffffu, 65536u, "9P2000.L"),
				 0);
		assert_int_equal(NP(conn[i], rep, "bwddssd", NINEP_TATTACH, 1u,
				    1u, NINEP_NOFID, "u", "", 65534u),
				 0);
	}

	/* The writable mount: a file made, written, and held open. */
	assert_int_equal(NP(conn[1], rep, "bwddw", NINEP_TWALK, 2u, 1u, 2u, 0u),
			 0);
	assert_int_equal(NP(conn[1], rep, "bwdsddd", NINEP_TLCREATE, 3u, 2u,
			    "held", 0102u, 0644u, 65534u),
			 0);
	assert_int_equal(NP(conn[1], rep, "bwdqdx", NINEP_TWRITE, 4u, 2u, 0ull,
			    6u, "before"),
			 0);
	snprintf(p, sizeof(p), "%s/rw", dir);
	assert_true(has_text(p, "held", "before"));
	snprintf(p, sizeof(p), "%s/rw/held", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 65534); /* the job's user's */

	/* The read-only mount: read, never written, whatever is asked. */
	assert_int_equal(
	    NP(conn[2], rep, "bwddws", NINEP_TWALK, 2u, 1u, 2u, 1u, "data"), 0);
	assert_int_equal(NP(conn[2], rep, "bwdd", NINEP_TLOPEN, 3u, 2u, 2u),
			 EROFS);
	assert_int_equal(NP(conn[2], rep, "bwdd", NINEP_TLOPEN, 3u, 2u, 0u), 0);
	assert_int_equal(
	    NP(conn[2], rep, "bwdqd", NINEP_TREAD, 4u, 2u, 0ull, 100u), 0);
	assert_read(rep, "ro-data");
	assert_int_equal(NP(conn[2], rep, "bwddw", NINEP_TWALK, 2u, 1u, 3u, 0u),
			 0);
	assert_int_equal(NP(conn[2], rep, "bwdsddd", NINEP_TLCREATE, 3u, 3u,
			    "new", 0102u, 0644u, 65534u),
			 EROFS);
	assert_int_equal(NP(conn[2], rep, "bwdsdd", NINEP_TMKDIR, 3u, 1u, "d",
			    0755u, 65534u),
			 EROFS);
	assert_int_equal(
	    NP(conn[2], rep, "bwdsd", NINEP_TUNLINKAT, 3u, 1u, "data", 0u),
	    EROFS);
	snprintf(p, sizeof(p), "%s/ro/new", dir);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/ro/d", dir);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/ro", dir);
	assert_true(has_text(p, "data", "ro-data"));

	/* A checkpoint: every server frozen, its state under its name. */
	fd = ckpt_store_begin(&cs, 42, &seq, ck, sizeof(ck), err, sizeof(err));
	assert_true(fd >= 0);
	if (jobfiles_freeze(&j, ck, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(has_text(ck, "files.m0", "68656c64")); /* "held" */
	assert_true(has_text(ck, "files.m1", "64617461")); /* "data" */
	assert_false(has_text(ck, CKPT_FILES, "68656c64"));
	assert_false(has_text(ck, "files.m1", "68656c64"));
	/* What the guest sends now waits: the server reads nothing. */
	np_send(conn[1], "bwdqd", NINEP_TREAD, 5u, 2u, 0ull, 100u);
	assert_int_equal(np_recv(conn[1], rep, sizeof(rep), 300), -1);
	/* The save ends QEMU: the servers leave, the rw one keeping the
	 * request. */
	jobfiles_after_save_plan(&j, &as);
	assert_int_equal(as.n, 3);
	for (int i = 0; i < 3; i++)
		close(conn[i]);
	if (jobfiles_after_save_run(&as, ck, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	jobfiles_saved(&j);
	for (int i = 0; i < 3; i++)
		assert_int_equal(j.served->srv[i].pid, 0);
	assert_true(exists_in(ck, "files.m0.pending"));
	assert_false(exists_in(ck, CKPT_FILES_PENDING));
	assert_false(exists_in(ck, "files.m1.pending"));
	snprintf(p, sizeof(p), "%s/" CKPT_MEMORY, ck);
	assert_int_equal(write_file_atomic(p, "RAM", 3, 0600), 0);
	memset(&m, 0, sizeof(m));
	m.job_id = 42;
	m.uid = 65534;
	m.seq = seq;
	snprintf(m.node, sizeof(m.node), "n1");
	snprintf(m.files_kind, sizeof(m.files_kind), "served");
	if (ckpt_store_commit(fd, ck, &m, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	close(fd);
	assert_int_equal(m.nfiles, 5);
	ckpt_manifest_clear(&m);

	/* The restore: the checkpoint verified, the servers' states read
	 * from the fds that were hashed. */
	fd =
	    ckpt_store_open_seq(&cs, 42, seq, ck, sizeof(ck), err, sizeof(err));
	assert_true(fd >= 0);
	if (ckpt_store_verify(fd, ck, 42, 65534, &v, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	close(fd);
	restored_ver = &v;
	if (jobfiles_thaw(&j, ck, restored_from_ver, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	ckpt_verified_clear(&v);
	accept_all(&j, lfd, conn);
	for (int i = 0; i < 3; i++) {
		pids[i] = j.served->srv[i].pid;
		assert_true(pids[i] > 0 && pids[i] != old[i]);
		assert_int_equal(cmdline_has(pids[i], "--read-only"), i == 2);
	}
	/* The request from before the save, answered first: the file held
	 * open across the checkpoint is open still. */
	assert_int_equal(np_recv(conn[1], rep, sizeof(rep), 5000), 0);
	assert_read(rep, "before");
	assert_int_equal(NP(conn[1], rep, "bwdqdx", NINEP_TWRITE, 4u, 2u, 6ull,
			    6u, "+after"),
			 0);
	snprintf(p, sizeof(p), "%s/rw", dir);
	assert_true(has_text(p, "held", "before+after"));
	/* The read-only mount's open file too, and still read-only. */
	assert_int_equal(
	    NP(conn[2], rep, "bwdqd", NINEP_TREAD, 4u, 2u, 0ull, 100u), 0);
	assert_read(rep, "ro-data");
	assert_int_equal(NP(conn[2], rep, "bwdsddd", NINEP_TLCREATE, 3u, 3u,
			    "new", 0102u, 0644u, 65534u),
			 EROFS);

	assert_non_null(mkdtemp(frz));
	/* vmmd restarts: one server whose pid file is gone is not adopted
	 * (left to serve), the others are; the job's checkpoint is refused
	 * naming that mount, and the others serve on. */
	vmmd_exits(&j);
	snprintf(p, sizeof(p), "%s/files.m1.pid", dir);
	snprintf(ck, sizeof(ck), "%s/files.m1.pid.keep", dir);
	assert_int_equal(rename(p, ck), 0);
	assert_int_equal(jobfiles_served_adopt(&j, err, sizeof(err)), -ENOENT);
	assert_contains(err, "job 42: the file server was not adopted");
	assert_contains(err, "/ro: ");
	assert_int_equal(j.served->srv[0].pid, pids[0]);
	assert_int_equal(j.served->srv[1].pid, pids[1]);
	assert_int_equal(j.served->srv[2].pid, 0);
	assert_int_equal(jobfiles_freeze(&j, frz, err, sizeof(err)), -ESRCH);
	assert_contains(err, "/ro did not freeze: no server");
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    NP(conn[i], rep, "bwdq", NINEP_TGETATTR, 6u, 1u, 0x7ffull),
		    0);
	vmmd_exits(&j);
	assert_int_equal(rename(ck, p), 0);
	if (jobfiles_served_adopt(&j, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(j.served->srv[i].pid, pids[i]);
		assert_false(j.served->srv[i].child);
	}

	/* A save that fails after the freeze: every server serves again. */
	if (jobfiles_freeze(&j, frz, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	for (int i = 0; i < 3; i++) {
		np_send(conn[i], "bwdq", NINEP_TGETATTR, 6u, 1u, 0x7ffull);
		assert_int_equal(np_recv(conn[i], rep, sizeof(rep), 200), -1);
	}
	if (jobfiles_thaw(&j, NULL, NULL, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	for (int i = 0; i < 3; i++)
		assert_int_equal(np_recv(conn[i], rep, sizeof(rep), 5000), 0);

	/* The job's end: all of them stopped (by the SIGTERM: exit 0; the
	 * adopted ones are still this test's children to reap), nothing of
	 * theirs left. */
	jobfiles_stop(&j);
	assert_null(j.served);
	for (int i = 0; i < 3; i++) {
		static const char *const left[] = {
		    "files.ctl",    "files.pid",    "files.m0.ctl",
		    "files.m0.pid", "files.m1.ctl", "files.m1.pid"};
		int status;

		assert_int_equal(waitpid(pids[i], &status, WNOHANG), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		for (size_t k = 0; k < ARRAY_SIZE(left); k++)
			assert_false(exists_in(dir, left[k]));
		close(conn[i]);
		close(lfd[i]);
	}
	assert_int_equal(ckpt_store_remove(&cs, 42, seq), 0);
	ckpt_store_close(&cs);
	rm_rf(frz);
	rm_rf(dir);
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
	    cmocka_unit_test(test_prepare_mounts),
	    cmocka_unit_test(test_mounts_by_kind),
	    cmocka_unit_test(test_argv),
	    cmocka_unit_test(test_no_server),
	    cmocka_unit_test(test_kind),
	    cmocka_unit_test(test_root_refused),
	    cmocka_unit_test(test_after_save),
	    cmocka_unit_test(test_adopt),
	    cmocka_unit_test(test_reap_dir),
	    cmocka_unit_test(test_mount_servers),
	    cmocka_unit_test(test_state_copy_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
