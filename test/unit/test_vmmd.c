// SPDX-License-Identifier: MIT
/*
 * vmmd's core driven in-process: the real server, job, agent and exec code
 * with a fake hypervisor (fake_hv.c) and a fake Slurm (fake_slurmjob.c).
 * The test is at once vmmd's client (over the real Unix socket) and the
 * guest agent (over the agent channel socket the fake hypervisor listens
 * on, as QEMU would). Nothing blocks: every wait pumps vmmd's loop with
 * loop_run_once().
 *
 * Only the current user is used (getuid()/getgid()). The one test that
 * needs a second identity forks a child that drops to another uid when run
 * as root; otherwise it uses a restored job record of another uid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testlog.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentwire.h"
#include "ckpt.h"
#include "ckpt_coord.h"
#include "ckpt_keep.h"
/* A job's checkpoint state: a multi-node wait's bound (a minute) is moved
 * back rather than waited for. */
#include "ckpt_priv.h"
#include "ckpt_store.h"
#include "cleanup.h"
#include "console.h"
#include "digest.h"
#include "domxml.h"
#include "evacuate.h"
#include "exec.h"
#include "fakes.h"
#include "job.h"
#include "jobimage.h"
#include "jobplace.h"
#include "log.h"
#include "ovkeep.h"
#include "proto.h"
#include "rmtree.h"
#include "spec.h"
#include "vmmd.h"

#define JOB	  42
#define NODE	  "n1"
#define DOMAIN	  "vmenv-" NODE "-42"
#define WAIT_MS	  5000
#define OTHER_UID 65534 /* nobody: the second identity when run as root */

/* What the fake agent's HELLO says it knows (the bulk tests set it). */
static uint32_t agent_flags;

struct fx {
	char dir[64];
	char work[128];
	int fds_before;
	struct vmmd d;
};

/* --- small helpers ------------------------------------------------------ */

static int count_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void write_text(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644), 0);
}

/* Users are told the command that reads the console, never the root-only
 * file's path. */
static void assert_not_contains_path(const char *msg)
{
	if (strstr(msg, "/job-"))
		fail_msg("a console log's path in '%s'", msg);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* --- the fixture -------------------------------------------------------- */

static void fixture_path(const struct fx *f, char *buf, size_t len,
			 const char *sub)
{
	assert_int_equal(str_printf(buf, len, "%s/%s", f->dir, sub), 0);
}

static void write_catalog(struct fx *f)
{
	char text[2048], path[256];

	snprintf(text, sizeof(text),
		 "{\"images\":[{\"name\":\"tiny\",\"version\":\"1\","
		 "\"boot\":\"kernel\",\"kernel\":\"%s/img/vmlinuz\","
		 "\"initrd\":\"%s/img/initrd.img\","
		 "\"cmdline\":\"console=ttyS0\"},"
		 "{\"name\":\"debian12\",\"version\":\"1\",\"boot\":\"kernel\","
		 "\"kernel\":\"%s/img/vmlinuz\","
		 "\"initrd\":\"%s/img/initrd.img\",\"min_mem_mib\":4096}]}",
		 f->dir, f->dir, f->dir, f->dir);
	fixture_path(f, path, sizeof(path), "catalog.json");
	write_text(path, text);
}

static void slurm_job(const struct fx *f, uint32_t id, uint32_t uid)
{
	struct slurmjob_info si = {
	    .job_id = id,
	    .uid = uid,
	    .gid = (uint32_t)getgid(),
	    .active = true,
	    .on_node = true,
	    .cpus = 2,
	    .mem_mib = 1024,
	    .cpu_ids = "0-1",
	    .node_cores = 2,
	};

	snprintf(si.work_dir, sizeof(si.work_dir), "%s", f->work);
	fake_slurm_set(&si);
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vmmd_config *c;
	struct passwd *pw;
	char path[256];

	assert_non_null(f);
	f->fds_before = count_fds();
	log_reset();
	agent_flags = 0;
	strcpy(f->dir, "/tmp/vmenv-vmmd-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	fixture_path(f, f->work, sizeof(f->work), "work");
	assert_int_equal(mkdir(f->work, 0755), 0);
	fixture_path(f, path, sizeof(path), "img");
	assert_int_equal(mkdir(path, 0755), 0);
	fixture_path(f, path, sizeof(path), "img/vmlinuz");
	write_text(path, "KERNEL\n");
	fixture_path(f, path, sizeof(path), "img/initrd.img");
	write_text(path, "INITRD\n");
	write_catalog(f);

	c = &f->d.cfg;
	config_defaults(c, NODE);
	fixture_path(f, c->run_dir, sizeof(c->run_dir), "run");
	fixture_path(f, c->console_dir, sizeof(c->console_dir), "console");
	/* Never the node's real store; no 128 MiB probe per test. */
	fixture_path(f, c->checkpoint_dir, sizeof(c->checkpoint_dir), "ckpt");
	/* Never the node's real image cache either (kept overlays lease). */
	fixture_path(f, c->image_cache, sizeof(c->image_cache), "cache");
	c->checkpoint_probe_mib = 0;
	/* These tests drive the virtio-9p kind (no vmenv-9p here); the
	 * served kind: test_jobfiles_served and t_80_checkpoint. */
	snprintf(c->checkpoint_files, sizeof(c->checkpoint_files), "9p");
	fixture_path(f, c->socket_path, sizeof(c->socket_path),
		     "run/vmmd.sock");
	fixture_path(f, c->catalog, sizeof(c->catalog), "catalog.json");
	/* Absent until a test writes policies: no site policies. */
	fixture_path(f, c->policy_dir, sizeof(c->policy_dir), "policies");
	/* A node shaped like this development machine (2 CPUs, one NUMA
	 * node, no GPUs, no InfiniBand): test/data/sysfs/plain. */
	snprintf(c->sysfs_root, sizeof(c->sysfs_root), "%s",
		 TEST_DATADIR "/sysfs/plain/sys");
	snprintf(c->proc_root, sizeof(c->proc_root), "%s",
		 TEST_DATADIR "/sysfs/plain/proc");
	fixture_path(f, c->gres_conf, sizeof(c->gres_conf), "gres.conf");
	snprintf(c->mem_limit, sizeof(c->mem_limit), "domain");
	/* Whoever runs the test may start and stop guests, as root or the
	 * Slurm user may. */
	pw = getpwuid(getuid());
	assert_non_null(pw);
	snprintf(c->slurm_user, sizeof(c->slurm_user), "%s", pw->pw_name);
	f->d.hv = &fake_hv_ops;
	f->d.net = &fake_net_ops;
	f->d.slurm_lookup = fake_slurm_lookup;
	fake_hv_reset();
	fake_net_reset();
	fake_slurm_reset();
	slurm_job(f, JOB, (uint32_t)getuid());
	assert_int_equal(vmmd_init(&f->d), 0);
	assert_true(fake_hv.open);
	return f;
}

static void fx_free(struct fx *f)
{
	vmmd_fini(&f->d);
	fake_hv_reset();
	assert_int_equal(rm_rf(f->dir), 0);
	/* Every fd vmmd took (clients, sessions' stdio, agent channels,
	 * epoll) is closed again. */
	assert_int_equal(count_fds(), f->fds_before);
	free(f);
}

/* A fresh fixture for the next case of a table-driven test; teardown
 * frees whichever is current. */
static struct fx *fx_renew(void **state)
{
	fx_free(*state);
	*state = fx_new();
	return *state;
}

static int setup(void **state)
{
	*state = fx_new();
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

/* --- pumping vmmd's loop ------------------------------------------------ */

static void pump(struct fx *f, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

static bool pump_until_readable(struct fx *f, int fd, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	while (!readable(fd)) {
		if (now_ms() >= end)
			return false;
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	return true;
}

static struct job *job(struct fx *f)
{
	return job_find(&f->d, JOB);
}

static void pump_until_job_state(struct fx *f, uint32_t id, enum job_state st)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (!job_find(&f->d, id) || job_find(&f->d, id)->state != st) {
		if (now_ms() >= end)
			fail_msg("job %u never became %s", id,
				 job_state_name(st));
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
}

static void pump_until_state(struct fx *f, enum job_state st)
{
	pump_until_job_state(f, JOB, st);
}

/* --- the client side ---------------------------------------------------- */

static int client_send(struct fx *f, const struct proto_request *req,
		       const int *fds, size_t nfds)
{
	int fd = unix_connect(f->d.cfg.socket_path, 1000);

	assert_true(fd >= 0);
	assert_int_equal(proto_send_request(fd, req, fds, nfds), 0);
	return fd;
}

/* The last "session" event: what a task would re-attach with. */
static struct proto_reply last_session;

static void client_reply(struct fx *f, int fd, struct proto_reply *rep)
{
	char err[PROTO_MAX_ERROR] = "";

	do {
		if (!pump_until_readable(f, fd, WAIT_MS))
			fail_msg("no reply from vmmd");
		if (proto_recv_reply(fd, 1000, rep, err, sizeof(err)) != 0)
			fail_msg("bad reply: %s", err);
		if (rep->kind == PROTO_EV_SESSION)
			last_session = *rep;
	} while (rep->kind == PROTO_EV_SESSION);
}

static void call(struct fx *f, const struct proto_request *req,
		 struct proto_reply *rep)
{
	int fd = client_send(f, req, NULL, 0);

	client_reply(f, fd, rep);
	close(fd);
}

static void start_job(struct fx *f, uint32_t id, const char *image,
		      struct proto_reply *rep)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = id,
	    .start = {.job_id = id,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid()},
	};

	snprintf(req.start.image, sizeof(req.start.image), "%s", image);
	call(f, &req, rep);
}

static void start_ok(struct fx *f)
{
	struct proto_reply rep;

	start_job(f, JOB, "tiny", &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
}

static void stop_ok(struct fx *f, uint32_t id)
{
	struct proto_request req = {.op = PROTO_OP_STOP, .job_id = id};
	struct proto_reply rep;

	call(f, &req, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
}

static void status_ok(struct fx *f, uint32_t want_jobs)
{
	struct proto_request req = {.op = PROTO_OP_STATUS};
	struct proto_reply rep;

	call(f, &req, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_true(rep.has_status);
	assert_string_equal(rep.status.node, NODE);
	assert_string_equal(rep.status.domain_type, "qemu");
	assert_int_equal(rep.status.jobs, want_jobs);
}

struct exec_opts {
	const char *const *argv;
	const char *const *env;
	const char *cwd;
	bool want_stdin;
	bool merge_stderr;
	const char *script; /* sent as a 4th fd with script=true */
	int stdin_fd;	    /* used instead of a pipe when >= 0 */
	bool fill_stdout;   /* stdout pipe shrunk and full already */
	size_t nfds;	    /* send only this many fds (0: all) */
	bool relay;	    /* ask for the agent's relay, no bulk port */
};

struct exec_client {
	int fd;	 /* the connection */
	int in;	 /* write end of stdin (-1: none) */
	int out; /* read end of stdout */
	int err; /* read end of stderr */
};

static const char *const default_argv[] = {"/bin/true", NULL};
static const char *const default_env[] = {"PATH=/bin", NULL};

/* A task that reads nothing: its stdout pipe full at the size vmmd would
 * widen it to (vmmd/exec.c widens smaller ones). */
#define FILL_BYTES (1 << 20)
static void fill_pipe(int wfd)
{
	char buf[4096];

	assert_int_equal(fcntl(wfd, F_SETPIPE_SZ, FILL_BYTES), FILL_BYTES);
	assert_int_equal(fd_set_nonblock(wfd, true), 0);
	memset(buf, 'f', sizeof(buf));
	while (write(wfd, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(errno, EAGAIN);
}

/* A script fd holding text (a pipe, already closed for writing). */
/* As vmenv-exec sends it: a regular file open for reading. */
static int script_fd(const char *text)
{
	char path[64];
	int fd = memfd_create("script", MFD_CLOEXEC), rfd;

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, text, strlen(text)), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	close(fd);
	return rfd;
}

static void exec_start(struct fx *f, uint32_t id, const struct exec_opts *o,
		       struct exec_client *c)
{
	struct proto_request req = {.op = PROTO_OP_EXEC, .job_id = id};
	struct proto_exec *e = &req.exec;
	int in[2] = {-1, -1}, out[2], err[2], fds[5];
	size_t nfds = 3;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	if (o->stdin_fd >= 0)
		in[0] = dup(o->stdin_fd);
	else if (o->want_stdin)
		assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	else
		in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(in[0] >= 0);
	if (o->fill_stdout)
		fill_pipe(out[1]);
	e->job_id = id;
	e->argv = xstrv(o->argv ? o->argv : default_argv, &e->argc);
	e->envp = xstrv(o->env ? o->env : default_env, &e->envc);
	e->cwd = strdup(o->cwd ? o->cwd : f->work);
	e->want_stdin = o->want_stdin;
	e->merge_stderr = o->merge_stderr;
	e->script = o->script != NULL;
	e->relay = o->relay;
	fds[0] = in[0];
	fds[1] = out[1];
	fds[2] = err[1];
	if (o->script) {
		fds[nfds++] = script_fd(o->script);
		fds[nfds++] = dup(out[1]); /* the task's own stdout */
	}
	c->fd = client_send(f, &req, fds, o->nfds ? o->nfds : nfds);
	proto_request_clear(&req);
	/* vmmd holds its own copies now. */
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	c->in = in[1];
	c->out = out[0];
	c->err = err[0];
	assert_int_equal(fd_set_nonblock(c->out, true), 0);
	assert_int_equal(fd_set_nonblock(c->err, true), 0);
}

static void exec_close(struct exec_client *c)
{
	int *fds[] = {&c->fd, &c->in, &c->out, &c->err};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Reads fd until EOF (the writer, vmmd, closed it), pumping meanwhile. */
static size_t read_to_eof(struct fx *f, int fd, char *buf, size_t len)
{
	size_t got = 0;
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		ssize_t n = read(fd, buf + got, len - got - 1);

		if (n == 0)
			break;
		if (n > 0) {
			got += (size_t)n;
			assert_true(got < len - 1);
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (now_ms() >= end)
			fail_msg("vmmd never closed the task's output");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	buf[got] = '\0';
	return got;
}

/* --- the guest agent side ----------------------------------------------- */

struct frame {
	struct aw_hdr h;
	uint8_t *p; /* malloc'ed payload */
};

static int agent_connect(struct fx *f)
{
	struct fake_domain *dom = fake_hv_domain(DOMAIN);
	int fd;

	assert_non_null(dom);
	fd = fake_hv_accept_agent(dom, WAIT_MS);
	if (fd < 0)
		fail_msg("vmmd never connected to the agent channel: %s",
			 strerror(-fd));
	return fd;
}

static void agent_write(struct fx *f, int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t end = now_ms() + WAIT_MS;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (now_ms() >= end)
			fail_msg("vmmd stopped reading the agent channel");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
}

static void agent_send(struct fx *f, int fd, uint8_t type, uint32_t session,
		       const void *payload, size_t len)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_frame(&b, type, session, payload, len), 0);
	agent_write(f, fd, b.data, b.len);
	aw_buf_free(&b);
}

static void agent_send_u32(struct fx *f, int fd, uint8_t type, uint32_t session,
			   uint32_t a, uint32_t b, int n)
{
	struct aw_buf p = {0};

	assert_int_equal(aw_put_u32(&p, a), 0);
	if (n > 1)
		assert_int_equal(aw_put_u32(&p, b), 0);
	agent_send(f, fd, type, session, p.data, p.len);
	aw_buf_free(&p);
}

/* Exactly len bytes; false at EOF. */
static bool agent_read(struct fx *f, int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t end = now_ms() + WAIT_MS;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n == 0)
			return false;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (now_ms() >= end)
			fail_msg("no frame from vmmd");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	return true;
}

static void agent_recv(struct fx *f, int fd, struct frame *fr)
{
	uint8_t hdr[AW_HDR_LEN];

	if (!agent_read(f, fd, hdr, sizeof(hdr)))
		fail_msg("vmmd closed the agent channel");
	assert_int_equal(aw_hdr_decode(hdr, AW_MAX_HOST_PAYLOAD, &fr->h), 0);
	fr->p = malloc(fr->h.len ? fr->h.len : 1);
	assert_non_null(fr->p);
	if (!agent_read(f, fd, fr->p, fr->h.len))
		fail_msg("vmmd closed the agent channel mid-frame");
}

/* The next frame of that type; repeated HELLOs, CREDITs and RELEASEs in
 * between are skipped (vmmd repeats HELLO until answered, returns window
 * at its own pace, and lets the agent forget an ended session), anything
 * else is a failure. */
static void agent_expect(struct fx *f, int fd, uint8_t type, struct frame *fr)
{
	for (;;) {
		agent_recv(f, fd, fr);
		if (fr->h.type == type)
			return;
		if (fr->h.type != AW_HELLO && fr->h.type != AW_CREDIT &&
		    fr->h.type != AW_RELEASE)
			fail_msg("expected %s from vmmd, got %s",
				 aw_type_name(type), aw_type_name(fr->h.type));
		free(fr->p);
	}
}

/* Everything vmmd sent so far is HELLO (nothing else before the handshake). */
static void agent_only_hellos(struct fx *f, int fd)
{
	struct frame fr;

	while (readable(fd)) {
		agent_recv(f, fd, &fr);
		assert_string_equal(aw_type_name(fr.h.type), "HELLO");
		free(fr.p);
	}
}

static void agent_hello(struct fx *f, int fd, uint32_t version)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_u32(&b, version), 0);
	assert_int_equal(aw_put_u32(&b, agent_flags), 0);
	assert_int_equal(aw_put_str(&b, "fake agent"), 0);
	agent_send(f, fd, AW_HELLO, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* HELLO/HELLO, SETUP/SETUP_OK, checking what vmmd says in between; the
 * agent answers HELLO with version. */
static void agent_handshake_v(struct fx *f, int fd, uint32_t version)
{
	struct frame fr;
	struct aw_setup s;
	struct aw_reader r;

	agent_expect(f, fd, AW_HELLO, &fr);
	assert_int_equal(fr.h.session, 0);
	aw_reader_init(&r, fr.p, fr.h.len);
	assert_int_equal(aw_get_u32(&r), AW_VERSION);
	assert_int_equal(aw_reader_done(&r), 0);
	free(fr.p);
	agent_hello(f, fd, version);

	agent_expect(f, fd, AW_SETUP, &fr);
	/* Only the agreed version's layout decodes. */
	if (version == 1)
		assert_int_equal(aw_setup_decode(fr.p, fr.h.len, 2, &s),
				 -EPROTO);
	else
		assert_int_equal(aw_setup_decode(fr.p, fr.h.len, 1, &s),
				 -EPROTO);
	assert_int_equal(aw_setup_decode(fr.p, fr.h.len, version, &s), 0);
	free(fr.p);
	assert_string_equal(s.net_addr, "");
	assert_string_equal(s.job_token, "");
	assert_int_equal(s.npeers, 0);
	assert_int_equal(s.uid, getuid());
	assert_int_equal(s.gid, getgid());
	assert_string_equal(s.hostname, NODE);
	assert_int_equal(s.nmounts, 1);
	assert_string_equal(s.mounts[0].tag, JOB_SHARE_TAG);
	assert_string_equal(s.mounts[0].path, f->work);
	aw_setup_clear(&s);
	agent_send(f, fd, AW_SETUP_OK, 0, NULL, 0);
	pump_until_state(f, JOB_READY);
}

static void agent_handshake(struct fx *f, int fd)
{
	agent_handshake_v(f, fd, AW_VERSION);
}

static uint32_t agent_expect_exec(struct fx *f, int fd, struct aw_exec *e)
{
	struct frame fr;

	agent_expect(f, fd, AW_EXEC, &fr);
	assert_int_not_equal(fr.h.session, 0);
	assert_int_equal(aw_exec_decode(fr.p, fr.h.len, e), 0);
	free(fr.p);
	return fr.h.session;
}

/* Job started, agent connected and ready, one session launched. */
static uint32_t running_session(struct fx *f, int *afd,
				const struct exec_opts *o,
				struct exec_client *c)
{
	struct aw_exec e;
	uint32_t sid;

	start_ok(f);
	*afd = agent_connect(f);
	agent_handshake(f, *afd);
	exec_start(f, JOB, o, c);
	sid = agent_expect_exec(f, *afd, &e);
	aw_exec_clear(&e);
	return sid;
}

/* ======================================================================= */
/* start                                                                    */
/* ======================================================================= */

static void test_start(void **state)
{
	struct fx *f = *state;
	char path[512];
	_cleanup_free_ char *text = NULL;
	struct frame fr;
	int afd;

	start_ok(f);
	assert_int_equal(fake_hv.ncreate, 1);
	assert_string_equal(fake_hv.created[0], DOMAIN);
	assert_int_equal(fake_hv.ndestroy, 0);
	/* The job directory, its state file and its own boot files. */
	snprintf(path, sizeof(path), "%s/run/jobs/%u/state", f->dir, JOB);
	assert_true(exists(path));
	assert_int_equal(read_file_limited(path, 4096, &text, NULL), 0);
	assert_contains(text, "job=42\n");
	assert_contains(text, "image=tiny\n");
	snprintf(path, sizeof(path), "uid=%u\n", (unsigned)getuid());
	assert_contains(text, path);
	free(text);
	text = NULL;
	snprintf(path, sizeof(path), "%s/run/jobs/%u/boot/vmlinuz", f->dir,
		 JOB);
	assert_int_equal(read_file_limited(path, 4096, &text, NULL), 0);
	assert_string_equal(text, "KERNEL\n");
	/* The domain boots from those copies, with the agent socket in the
	 * job directory and the job's working directory shared. */
	assert_contains(fake_hv.last_xml, "/run/jobs/42/boot/vmlinuz</kernel>");
	assert_contains(fake_hv.last_xml, "/run/jobs/42/q/agent.sock'/>");
	assert_contains(fake_hv.last_xml, f->work);
	assert_contains(fake_hv.last_xml, "<vcpu placement='static'>2</vcpu>");
	/* 1024 MiB allocated by Slurm, less the 128 MiB headroom. */
	assert_contains(fake_hv.last_xml, "<memory unit='MiB'>896</memory>");
	/* vmmd connected to the agent channel at once and says HELLO. */
	assert_int_equal(job(f)->state, JOB_BOOTING);
	afd = agent_connect(f);
	agent_expect(f, afd, AW_HELLO, &fr);
	free(fr.p);
	status_ok(f, 1);
}

/* Every step of a job asks for the guest: the same request finds it, a
 * different image is refused. */
static void test_start_twice(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;

	start_ok(f);
	start_ok(f);
	assert_int_equal(fake_hv.ncreate, 1);
	start_job(f, JOB, "other", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: already has a guest on node n1 "
				   "(image 'tiny')");
	assert_int_equal(fake_hv.ncreate, 1);
}

static void step_end(struct fx *f, uint32_t id)
{
	struct proto_request req = {.op = PROTO_OP_STEP_END, .job_id = id};
	struct proto_reply rep;

	call(f, &req, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
}

/* After a step ends, the guest stays while Slurm runs the job (salloc) and
 * goes as soon as Slurm says the job is ending (an srun-made job). */
static void test_step_end(void **state)
{
	struct fx *f = *state;
	struct slurmjob_info si;
	char err[128];
	uint64_t end;

	start_ok(f);
	step_end(f, JOB);
	pump(f, 800); /* first check at 500 ms: still running */
	assert_non_null(job_find(&f->d, JOB));
	assert_int_equal(fake_slurm_lookup(JOB, "n1", &si, err, sizeof(err)),
			 0);
	si.ending = true;
	fake_slurm_set(&si);
	end = now_ms() + 3000;
	while (job_find(&f->d, JOB) && now_ms() < end)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_null(job_find(&f->d, JOB));
	assert_int_equal(fake_hv.ndestroy, 1);
}

static void assert_no_guest(struct fx *f)
{
	char path[512];

	assert_int_equal(fake_hv.ncreate, 0);
	snprintf(path, sizeof(path), "%s/run/jobs/%u", f->dir, JOB);
	assert_false(exists(path));
}

static void test_start_unknown_image(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;

	start_job(f, JOB, "zepto", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error,
			"job 42: image 'zepto' is not in the catalog");
	assert_contains(rep.error, "known images: tiny, debian12");
	assert_no_guest(f);
	/* The record stays, failed, so the job's tasks learn why. */
	assert_int_equal(job(f)->state, JOB_FAILED);
	assert_contains(job(f)->error, "'zepto'");
}

static void slurm_other_uid(struct slurmjob_info *si)
{
	si->uid = (uint32_t)getuid() + 1;
}

static void slurm_unknown(struct slurmjob_info *si)
{
	si->job_id = JOB + 1;
}

static void slurm_elsewhere(struct slurmjob_info *si)
{
	si->on_node = false;
}

static void slurm_finished(struct slurmjob_info *si)
{
	si->active = false;
}

static void slurm_down(struct slurmjob_info *si)
{
	fake_slurm_fail = -EHOSTUNREACH;
}

static void slurm_bad_work_dir(struct slurmjob_info *si)
{
	snprintf(si->work_dir, sizeof(si->work_dir), "relative/dir");
}

/* Every refusal of a start: an error naming the job and the reason, no
 * guest, no job directory. */
static void test_start_refusals(void **state)
{
	static const struct {
		const char *what;
		const char *image;
		void (*slurm)(struct slurmjob_info *si); /* NULL: as is */
		bool record; /* a failed job record is kept for its tasks */
		const char *want;
	} cases[] = {
	    {"invalid image name", "../../etc/passwd", NULL, false,
	     "job 42: invalid image name '../../etc/passwd'"},
	    {"uid mismatch", "tiny", slurm_other_uid, true,
	     "job 42: belongs to uid"},
	    {"unknown to Slurm", "tiny", slurm_unknown, true,
	     "job 42: Slurm does not know it"},
	    {"not on this node", "tiny", slurm_elsewhere, true,
	     "job 42: not running on node n1"},
	    {"no longer active", "tiny", slurm_finished, true,
	     "job 42: not running on node n1"},
	    {"slurmctld down", "tiny", slurm_down, true,
	     "job 42: fake: cannot ask slurmctld"},
	    {"bad work dir", "tiny", slurm_bad_work_dir, true,
	     "job 42: working directory is not a clean absolute path"},
	    {"too little memory", "debian12", NULL, true,
	     "image 'debian12' needs 4096 MiB"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx *f = i ? fx_renew(state) : *state;
		struct slurmjob_info si;
		struct proto_reply rep;
		char why[64];

		print_message("case: %s\n", cases[i].what);
		assert_int_equal(
		    fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)), 0);
		if (cases[i].slurm) {
			fake_slurm_reset();
			cases[i].slurm(&si);
			fake_slurm_set(&si);
		}
		start_job(f, JOB, cases[i].image, &rep);
		assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
		assert_contains(rep.error, cases[i].want);
		assert_no_guest(f);
		status_ok(f, cases[i].record ? 1 : 0);
	}
}

/* The hypervisor refuses the domain: the requester learns why and where
 * the console log is, and the job's files go with the guest. */
static void test_start_create_fails(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char path[512];

	fake_hv.fail_create = -EIO;
	snprintf(fake_hv.fail_message, sizeof(fake_hv.fail_message),
		 "fake: no emulator for arch");
	start_job(f, JOB, "tiny", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: fake: no emulator for arch");
	assert_contains(rep.error, "see vmenvctl console 42");
	assert_not_contains_path(rep.error);
	assert_int_equal(fake_hv.ncreate, 1);
	assert_int_equal(job(f)->state, JOB_FAILED);
	/* job.c: "Keep the record with the reason for the job's tasks; the
	 * guest and its files go now." */
	snprintf(path, sizeof(path), "%s/run/jobs/%u", f->dir, JOB);
	if (exists(path))
		fail_msg("a job whose start failed keeps its directory %s",
			 path);
}

/* ======================================================================= */
/* placement and devices                                                   */
/* ======================================================================= */

/* A start whose request asks for IB VFs and hugepages ("" / 0: not). */
static void start_devices(struct fx *f, uint32_t id, uint32_t ib_vfs,
			  const char *hugepages, struct proto_reply *rep)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = id,
	    .start = {.job_id = id,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid(),
		      .image = "tiny"},
	};
	char n[16];

	snprintf(n, sizeof(n), "%u", ib_vfs);
	if (ib_vfs)
		req.start.opts[VMSPEC_OPT_IB] = strdup(n);
	if (hugepages && *hugepages)
		req.start.opts[VMSPEC_OPT_HUGEPAGES] = strdup(hugepages);
	call(f, &req, rep);
	proto_request_clear(&req);
}

static size_t count_leases(const struct fx *f)
{
	char dir[512];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/run/devices", f->dir);
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Slurm's CPUs 0-1 of this 2-CPU node: one vCPU each, pinned, the guest's
 * NUMA cell on the host's node 0, the hard limit at Slurm's 1024 MiB. */
static void test_start_placement(void **state)
{
	struct fx *f = *state;

	start_ok(f);
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='0' cpuset='0'/>");
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='1' cpuset='1'/>");
	assert_contains(fake_hv.last_xml, "<emulatorpin cpuset='0-1'/>");
	assert_contains(fake_hv.last_xml,
			"<hard_limit unit='MiB'>1024</hard_limit>");
	assert_contains(fake_hv.last_xml,
			"<memnode cellid='0' mode='strict' nodeset='0'/>");
	assert_contains(fake_hv.last_xml,
			"<cell id='0' cpus='0-1' memory='896' unit='MiB'/>");
	assert_int_equal(fake_hv.last_limit_kib, 0);
	assert_int_equal(job(f)->vcpus, 2);
	assert_int_equal(job(f)->mem_mib, 896);
}

/* A second job on the other CPU: disjoint pinning, as Slurm's cores. */
static void test_start_two_jobs_disjoint(void **state)
{
	struct fx *f = *state;
	struct slurmjob_info si;
	struct proto_reply rep;
	char why[64];

	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	snprintf(si.cpu_ids, sizeof(si.cpu_ids), "1");
	si.cpus = 1;
	fake_slurm_set(&si);
	si.job_id = JOB + 1;
	snprintf(si.cpu_ids, sizeof(si.cpu_ids), "0");
	fake_slurm_set(&si);
	start_ok(f);
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='0' cpuset='1'/>");
	assert_contains(fake_hv.last_xml, "<vcpu placement='static'>1</vcpu>");
	start_job(f, JOB + 1, "tiny", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='0' cpuset='0'/>");
	assert_contains(fake_hv.last_xml, "<emulatorpin cpuset='0'/>");
	stop_ok(f, JOB + 1);
}

/* mem_limit = live: the limit is set on the paused domain, not in the
 * XML (libvirt would raise RLIMIT_MEMLOCK to it). */
static void test_start_live_limit(void **state)
{
	struct fx *f = *state;

	f->d.mem_limit_live = true;
	start_ok(f);
	assert_int_equal(fake_hv.last_limit_kib, 1024 * 1024);
	assert_false(strstr(fake_hv.last_xml, "<memtune>"));
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='1' cpuset='1'/>");
}

static void slurm_no_cpu_ids(struct slurmjob_info *si)
{
	si->cpu_ids[0] = '\0';
}

static void slurm_wrong_cores(struct slurmjob_info *si)
{
	si->node_cores = 4;
}

static void slurm_gpu(struct slurmjob_info *si)
{
	snprintf(si->gres, sizeof(si->gres), "gpu:1(IDX:0)");
}

static void slurm_tiny_mem(struct slurmjob_info *si)
{
	si->mem_mib = 100;
}

/* What this node cannot give fails the start with the reason, and leaves
 * nothing: no domain, no job directory, no device lease. */
static void test_start_cannot_give(void **state)
{
	static const struct {
		const char *what;
		uint32_t ib_vfs;
		const char *hugepages;
		void (*slurm)(struct slurmjob_info *si);
		const char *want;
	} cases[] = {
	    {"IB VFs on a node without", 1, NULL, NULL,
	     "job 42: asked for 1 InfiniBand VFs but node n1 has none"},
	    {"more hugepages than free", 0, "2M", NULL,
	     "job 42: the guest needs 448 hugepages of 2048 KiB on NUMA node "
	     "0 but node n1 has 0 free there"},
	    {"GPUs on a GPU-less node", 0, NULL, slurm_gpu,
	     "job 42: Slurm allocated GPUs 0 on node n1 but"},
	    {"no CPU ids from Slurm", 0, NULL, slurm_no_cpu_ids,
	     "job 42: Slurm did not say which CPUs of node n1"},
	    {"slurm.conf and host disagree", 0, NULL, slurm_wrong_cores,
	     "job 42: node n1: Slurm describes this node with 4 cores but the "
	     "host has 2"},
	    {"less memory than QEMU needs", 0, NULL, slurm_tiny_mem,
	     "job 42: a memory headroom of 0% / 128 MiB leaves nothing of the "
	     "job's 100 MiB"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx *f = i ? fx_renew(state) : *state;
		struct proto_reply rep;

		print_message("case: %s\n", cases[i].what);
		if (cases[i].slurm) {
			struct slurmjob_info si;
			char why[64];

			assert_int_equal(
			    fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			    0);
			cases[i].slurm(&si);
			fake_slurm_set(&si);
		}
		start_devices(f, JOB, cases[i].ib_vfs, cases[i].hugepages,
			      &rep);
		assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
		assert_contains(rep.error, cases[i].want);
		assert_no_guest(f);
		assert_int_equal(count_leases(f), 0);
		assert_int_equal(job(f)->state, JOB_FAILED);
	}
}

/* vmmd stops (its guests keep running) and starts again, as after a
 * crash: the adopted job keeps its VFs, which no new job can get. */
static void restart_vmmd(struct fx *f)
{
	struct vmmd_config c = f->d.cfg;

	vmmd_fini(&f->d);
	memset(&f->d, 0, sizeof(f->d));
	f->d.cfg = c;
	f->d.hv = &fake_hv_ops;
	f->d.slurm_lookup = fake_slurm_lookup;
	assert_int_equal(vmmd_init(&f->d), 0);
}

static void on_node2s(struct fx *f)
{
	struct vmmd_config *c = &f->d.cfg;
	struct slurmjob_info si;
	char why[64];

	snprintf(c->sysfs_root, sizeof(c->sysfs_root), "%s",
		 TEST_DATADIR "/sysfs/node2s/sys");
	snprintf(c->proc_root, sizeof(c->proc_root), "%s",
		 TEST_DATADIR "/sysfs/node2s/proc");
	snprintf(c->ib_pfs, sizeof(c->ib_pfs), "mlx5_0");
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	si.node_cores = 8;
	snprintf(si.cpu_ids, sizeof(si.cpu_ids), "0");
	fake_slurm_set(&si);
	si.job_id = JOB + 1;
	snprintf(si.cpu_ids, sizeof(si.cpu_ids), "4");
	fake_slurm_set(&si);
}

static void test_vfs_across_restart(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	const char *p;
	int n = 0;

	on_node2s(f);
	restart_vmmd(f);
	start_devices(f, JOB, 6, NULL, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("%s", rep.error);
	for (p = fake_hv.last_xml; (p = strstr(p, "<hostdev ")); p++)
		n++;
	assert_int_equal(n, 6);
	assert_contains(fake_hv.last_xml,
			"<source><address domain='0x0000' bus='0x3b' "
			"slot='0x00' function='0x1'/></source>");
	/* core 0 of node2s: CPUs 0 and 8 */
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='1' cpuset='8'/>");
	assert_int_equal(count_leases(f), 6);
	restart_vmmd(f);
	assert_non_null(job(f)); /* adopted */
	assert_int_equal(count_leases(f), 6);
	start_devices(f, JOB + 1, 3, NULL, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 43: asked for 3 InfiniBand VFs but "
				   "only 2 of the 8 on node n1 are free");
	assert_int_equal(count_leases(f), 6);
	stop_ok(f, JOB + 1);
	/* The end of job 42 gives its six back. */
	stop_ok(f, JOB);
	assert_int_equal(count_leases(f), 0);
	start_devices(f, JOB + 1, 8, NULL, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_int_equal(count_leases(f), 8);
}

/* Reconcile: the guest of a job vmmd does not know is destroyed at
 * start, and its devices go with it. */
static void test_reconcile_frees_devices(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char path[512];

	on_node2s(f);
	restart_vmmd(f);
	start_devices(f, JOB, 2, NULL, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	/* vmmd dies and the job's state with it: nothing to adopt. */
	snprintf(path, sizeof(path), "%s/run/jobs/%u/state", f->dir, JOB);
	assert_int_equal(unlink(path), 0);
	restart_vmmd(f);
	assert_null(job(f));
	assert_int_equal(count_leases(f), 0);
}

/* A start of job id with one request option. */
static void start_opt(struct fx *f, uint32_t id, enum vmspec_opt o,
		      const char *value, struct proto_reply *rep)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = id,
	    .start = {.job_id = id,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid(),
		      .image = "tiny"},
	};

	req.start.opts[o] = strdup(value);
	call(f, &req, rep);
	proto_request_clear(&req);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The spec decides what the guest gets beyond Slurm's allocation:
 * hugepages, whether Slurm's GPUs go in, where QEMU's threads run. */
static void test_spec_drives_placement(void **state)
{
	struct fx *f = *state;
	struct slurmjob_info si;
	struct proto_reply rep;
	char why[64], gres[PATH_MAX];

	on_node2s(f);
	snprintf(gres, sizeof(gres), "%s/gres.conf", f->dir);
	write_text(gres, "Name=gpu File=/dev/nvidia[0-3]\n");
	snprintf(f->d.cfg.gres_conf, sizeof(f->d.cfg.gres_conf), "%s", gres);
	restart_vmmd(f);
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	snprintf(si.gres, sizeof(si.gres), "gpu:1(IDX:0)");
	fake_slurm_set(&si);
	/* Default spec: Slurm's GPU goes in, QEMU's threads on the job's
	 * CPUs (core 0: CPUs 0 and 8). */
	start_opt(f, JOB, VMSPEC_OPT_HUGEPAGES, "2M", &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("%s", rep.error);
	assert_contains(fake_hv.last_xml, "<page size='2048' unit='KiB'/>");
	assert_contains(fake_hv.last_xml, "bus='0x18' slot='0x00' "
					  "function='0x0'/></source>");
	assert_contains(fake_hv.last_xml, "<emulatorpin cpuset='0,8'/>");
	stop_ok(f, JOB);
	/* gpus = no: the guest goes without. */
	start_opt(f, JOB, VMSPEC_OPT_GPUS, "no", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_int_equal(count(fake_hv.last_xml, "<hostdev "), 0);
	assert_int_equal(count_leases(f), 0);
	stop_ok(f, JOB);
	/* Housekeeping CPUs the node does not have: refused with why. */
	start_opt(f, JOB, VMSPEC_OPT_EMULATOR_THREADS, "housekeeping", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: its spec puts QEMU's threads on "
				   "housekeeping CPUs but node n1 has none");
	assert_int_equal(count_leases(f), 0);
	stop_ok(f, JOB);
	snprintf(f->d.cfg.housekeeping_cpus, sizeof(f->d.cfg.housekeeping_cpus),
		 "15");
	start_opt(f, JOB, VMSPEC_OPT_EMULATOR_THREADS, "housekeeping", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_contains(fake_hv.last_xml, "<emulatorpin cpuset='15'/>");
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='0' cpuset='0'/>");
}

/* Devices stay leased while their guest runs, even when vmmd has lost the
 * job's record (a guest libvirt failed to destroy); they go once the guest
 * is gone. */
static void test_devices_follow_the_guest(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char why[128];

	on_node2s(f);
	restart_vmmd(f);
	start_devices(f, JOB, 2, NULL, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	job_stop_all_records(&f->d); /* the record goes, the guest runs */
	assert_null(job(f));
	job_sweep_devices(&f->d);
	assert_int_equal(count_leases(f), 2);
	assert_int_equal(
	    fake_hv_ops.destroy(&fake_hv, DOMAIN, why, sizeof(why)), 0);
	job_sweep_devices(&f->d);
	assert_int_equal(count_leases(f), 0);
}

/* ======================================================================= */
/* exec                                                                     */
/* ======================================================================= */

static const char *const tricky_argv[] = {
    "/bin/sh",	  "-c",		  "printf '%s\\n' \"$1\" 'single quoted'", "",
    "with space", "line1\nline2", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac",	   NULL,
};
static const char *const tricky_env[] = {
    "PATH=/usr/bin:/bin", "EMPTY=", "QUOTES=\"'\"", "NL=a\nb", NULL,
};

static void test_exec_waits_then_runs(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {
	    .argv = tricky_argv, .env = tricky_env, .stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char out[64], err[64];
	uint32_t sid;
	int afd;

	start_ok(f);
	afd = agent_connect(f);
	exec_start(f, JOB, &o, &c);
	/* The guest is not ready: the command waits, nothing is sent. */
	pump(f, 300);
	assert_false(readable(c.fd));
	agent_only_hellos(f, afd);
	assert_int_equal(exec_count(job(f)), 1);
	/* The task's stdout pipe is widened: the guest writes faster than a
	 * 64 KiB pipe wakes its reader. */
	assert_true(fcntl(c.out, F_GETPIPE_SZ) >= 1 << 20);

	agent_handshake(f, afd);
	sid = agent_expect_exec(f, afd, &e);
	assert_int_equal(e.argc, ARRAY_SIZE(tricky_argv) - 1);
	for (size_t i = 0; i < e.argc; i++)
		assert_string_equal(e.argv[i], tricky_argv[i]);
	assert_null(e.argv[e.argc]);
	assert_int_equal(e.envc, ARRAY_SIZE(tricky_env) - 1);
	for (size_t i = 0; i < e.envc; i++)
		assert_string_equal(e.envp[i], tricky_env[i]);
	assert_string_equal(e.cwd, f->work);
	assert_int_equal(e.uid, getuid());
	assert_int_equal(e.gid, getgid());
	assert_int_equal(e.flags, 0); /* no stdin, stderr separate */
	aw_exec_clear(&e);
	/* The token to re-attach with comes before anything else. */
	assert_true(readable(c.fd));
	{
		char err2[PROTO_MAX_ERROR];

		assert_int_equal(
		    proto_recv_reply(c.fd, 1000, &rep, err2, sizeof(err2)), 0);
		assert_int_equal(rep.kind, PROTO_EV_SESSION);
		assert_int_equal(rep.session, sid);
		assert_int_equal(strlen(rep.token), PROTO_TOKEN_HEX);
	}
	assert_false(readable(c.fd));

	agent_send_u32(f, afd, AW_STARTED, sid, 1234, 0, 1);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	agent_send(f, afd, AW_STDOUT, sid, "hello\n", 6);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send(f, afd, AW_STDERR, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_CODE, 7, 2);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_false(rep.exit_signaled);
	assert_int_equal(rep.exit_value, 7);
	/* The bytes arrive on the task's stdout, and the session lets go of
	 * the task's fds (EOF on both pipes). */
	assert_int_equal(read_to_eof(f, c.out, out, sizeof(out)), 6);
	assert_string_equal(out, "hello\n");
	assert_int_equal(read_to_eof(f, c.err, err, sizeof(err)), 0);
	assert_int_equal(exec_count(job(f)), 0);
	/* vmmd closes the exec connection after the exit event. */
	assert_true(pump_until_readable(f, c.fd, WAIT_MS));
	assert_int_equal(read(c.fd, out, 1), 0);
	exec_close(&c);
	assert_int_equal(job(f)->state, JOB_READY);
}

/* An image with a version 1 agent: vmmd speaks version 1 to it (a SETUP
 * without the multi-node fields) and the job becomes ready. */
static void test_agent_v1(void **state)
{
	struct fx *f = *state;
	int afd;

	start_ok(f);
	afd = agent_connect(f);
	agent_handshake_v(f, afd, 1);
	assert_int_equal(job(f)->state, JOB_READY);
}

/* The guest's own words (HELLO's description) reach vmmd's log as one
 * escaped line: no forged line with a priority of the guest's choosing,
 * no terminal control. */
static void test_agent_hello_text_escaped(void **state)
{
	struct fx *f = *state;
	struct aw_buf b = {0};
	struct frame fr;
	int afd;

	start_ok(f);
	afd = agent_connect(f);
	agent_expect(f, afd, AW_HELLO, &fr);
	free(fr.p);
	assert_int_equal(aw_put_u32(&b, AW_VERSION), 0);
	assert_int_equal(aw_put_u32(&b, 0), 0);
	assert_int_equal(aw_put_str(&b, "fake\n<0>forged\r\x1b[2J"), 0);
	agent_send(f, afd, AW_HELLO, 0, b.data, b.len);
	aw_buf_free(&b);
	agent_expect(f, afd, AW_SETUP, &fr);
	free(fr.p);
	agent_send(f, afd, AW_SETUP_OK, 0, NULL, 0);
	pump_until_state(f, JOB_READY);
	assert_int_equal(
	    log_count("job 42: agent up (fake\\n<0>forged\\r\\x1b[2J)\n"), 1);
	assert_null(strstr(logbuf, "\n<0>"));
	assert_null(strchr(logbuf, '\x1b'));
	assert_null(strchr(logbuf, '\r'));
}

/* A job on 3 nodes, this one the second: its SETUP carries the network
 * jobnet planned; an agent of protocol 1 cannot take it and fails the job. */
static void multinode_job(struct fx *f)
{
	struct slurmjob_info si;
	char why[256], key[256];

	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	snprintf(si.nodes, sizeof(si.nodes), "n0,%s,n2", NODE);
	si.node_index = 1;
	si.nnodes = 3;
	si.start_time = 1700000000;
	fake_slurm_set(&si);
	fixture_path(f, key, sizeof(key), "job.key");
	write_text(key, "0123456789abcdef-site-key");
	assert_int_equal(chmod(key, 0600), 0);
	snprintf(f->d.cfg.job_key_file, sizeof(f->d.cfg.job_key_file), "%s",
		 key);
}

static void test_agent_multinode(void **state)
{
	struct fx *f = *state;
	struct aw_setup s;
	struct frame fr;
	int afd;

	multinode_job(f);
	start_ok(f);
	afd = agent_connect(f);
	agent_expect(f, afd, AW_HELLO, &fr);
	free(fr.p);
	agent_hello(f, afd, 2);
	agent_expect(f, afd, AW_SETUP, &fr);
	assert_int_equal(aw_setup_decode(fr.p, fr.h.len, 2, &s), 0);
	free(fr.p);
	assert_int_equal(s.node_index, 1);
	assert_int_equal(s.npeers, 3);
	assert_string_equal(s.peers[0].name, "n0");
	assert_string_equal(s.peers[1].name, NODE);
	assert_string_equal(s.peers[2].name, "n2");
	assert_string_equal(s.net_addr, job(f)->net.addr);
	assert_string_equal(s.peers[1].addr, job(f)->net.peer_addrs[1]);
	assert_string_equal(s.job_token, job(f)->net.token);
	assert_true(aw_token_ok(s.job_token));
	assert_int_equal(s.ngroups, job(f)->ngroups);
	aw_setup_clear(&s);
	agent_send(f, afd, AW_SETUP_OK, 0, NULL, 0);
	pump_until_state(f, JOB_READY);
	/* The guest's NIC: a tap of vmmd's name on the job's bridge, which
	 * existed (behind the guard) before the domain. */
	assert_int_equal(fake_net.nup, 1);
	assert_int_equal(fake_net.nguard, 1);
	assert_string_equal(fake_net.last.bridge, "vmj0000002a");
	assert_string_equal(fake_net.last.tunnel, "");
	assert_contains(fake_hv.last_xml, "<interface type='bridge'>");
	assert_contains(fake_hv.last_xml, "<source bridge='vmj0000002a'/>");
	assert_contains(fake_hv.last_xml, "<target dev='vmj0000002a0001'/>");
	assert_contains(fake_hv.last_xml, "<mtu size='1500'/>");
	assert_null(strstr(fake_hv.last_xml, "mcast"));
	/* Its end: the guest, then the bridge. */
	stop_ok(f, JOB);
	assert_null(fake_net_bridge("vmj0000002a"));
	assert_int_equal(log_count("job 42: network removed"), 1);

	f = fx_renew(state);
	multinode_job(f);
	start_ok(f);
	afd = agent_connect(f);
	agent_expect(f, afd, AW_HELLO, &fr);
	free(fr.p);
	agent_hello(f, afd, 1);
	pump_until_state(f, JOB_FAILED);
	assert_contains(job(f)->error, "too old for a multi-node job");
}

/* Another vmmd of this host still has a guest of the job on the bridge:
 * this one's end leaves it. A network that cannot be made fails the job
 * before any domain exists. */
static void test_net_shared_and_refused(void **state)
{
	struct fx *f = *state;
	struct hostnet_bridge *b;
	struct proto_reply rep;

	multinode_job(f);
	start_ok(f);
	b = fake_net_bridge("vmj0000002a");
	assert_non_null(b);
	b->guests = 1;
	stop_ok(f, JOB);
	assert_non_null(fake_net_bridge("vmj0000002a"));
	assert_int_equal(log_count("job 42: network kept for the job's other "
				   "guests on this host"),
			 1);

	f = fx_renew(state);
	multinode_job(f);
	fake_net.fail_up = -EPERM;
	start_job(f, JOB, "tiny", &rep);
	assert_int_not_equal(rep.kind, PROTO_REPLY_OK);
	assert_contains(rep.error,
			"job 42: private network on node " NODE ": fake: "
			"bridge vmj0000002a refused");
	assert_int_equal(fake_hv.ncreate, 0);

	/* A tunnel port any user could bind first. */
	f = fx_renew(state);
	multinode_job(f);
	snprintf(f->d.cfg.net_tunnel, sizeof(f->d.cfg.net_tunnel), "vxlan");
	f->d.cfg.net_vxlan_port = 65000;
	start_job(f, JOB, "tiny", &rep);
	assert_int_not_equal(rep.kind, PROTO_REPLY_OK);
	assert_contains(rep.error, "net_vxlan_port 65000 is not below "
				   "net.ipv4.ip_unprivileged_port_start");
	assert_int_equal(fake_net.nup, 0);

	/* Without a host network at all (d->net NULL), refused too. */
	f = fx_renew(state);
	multinode_job(f);
	f->d.net = NULL;
	start_job(f, JOB, "tiny", &rep);
	assert_int_not_equal(rep.kind, PROTO_REPLY_OK);
	assert_contains(rep.error, "this vmmd has no host network");
	assert_int_equal(fake_hv.ncreate, 0);
}

/* Reconcile: a bridge without guests of a job Slurm does not know (a vmmd
 * crashed between the guest's end and the bridge's) goes; one of a job
 * Slurm runs (another node of this host is starting its guest) and one
 * with a guest stay; the guard is installed again. */
static void test_net_sweep(void **state)
{
	struct fx *f = *state;
	struct hostnet_spec s = {.mtu = 1500};
	struct slurmjob_info si;
	char why[128];
	unsigned guards;

	for (uint32_t id = 77; id <= 79; id++) {
		snprintf(s.bridge, sizeof(s.bridge), "vmj%08x", id);
		assert_int_equal(fake_net_ops.up(NULL, &s, why, sizeof(why)),
				 0);
	}
	fake_net_bridge("vmj0000004f")->guests = 2; /* job 79 */
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	si.job_id = 78;
	si.active = true;
	si.ending = false;
	fake_slurm_set(&si);
	guards = fake_net.nguard;
	job_reconcile(&f->d, false);
	assert_null(fake_net_bridge("vmj0000004d"));
	assert_non_null(fake_net_bridge("vmj0000004e"));
	assert_non_null(fake_net_bridge("vmj0000004f"));
	assert_int_equal(fake_net.nguard, guards + 1);
	assert_int_equal(log_count("reconcile: removed network vmj0000004d of "
				   "job 77, which runs no more"),
			 1);
	/* Job 78 ends: its bridge goes at the next sweep. */
	si.ending = true;
	fake_slurm_set(&si);
	job_reconcile(&f->d, false);
	assert_null(fake_net_bridge("vmj0000004e"));
}

/* stdin relayed, stderr merged into stdout, a signal exit. */
static void test_exec_stdin_merge_signal(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {
	    .want_stdin = true, .merge_stderr = true, .stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	struct frame fr;
	char out[64];
	uint32_t sid;
	int afd;

	start_ok(f);
	afd = agent_connect(f);
	agent_handshake(f, afd);
	exec_start(f, JOB, &o, &c);
	sid = agent_expect_exec(f, afd, &e);
	assert_int_equal(e.flags, AW_EXEC_STDIN | AW_EXEC_MERGE_STDERR);
	aw_exec_clear(&e);
	agent_send_u32(f, afd, AW_STARTED, sid, 1, 0, 1);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);

	assert_int_equal(write_full(c.in, "input", 5), 0);
	close(c.in);
	c.in = -1;
	agent_expect(f, afd, AW_STDIN, &fr);
	assert_int_equal(fr.h.session, sid);
	assert_int_equal(fr.h.len, 5);
	assert_memory_equal(fr.p, "input", 5);
	free(fr.p);
	agent_expect(f, afd, AW_STDIN, &fr); /* EOF */
	assert_int_equal(fr.h.len, 0);
	free(fr.p);

	agent_send(f, afd, AW_STDOUT, sid, "out ", 4);
	agent_send(f, afd, AW_STDERR, sid, "err", 3);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_SIGNAL, 9, 2);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_true(rep.exit_signaled);
	assert_int_equal(rep.exit_value, 9);
	read_to_eof(f, c.out, out, sizeof(out));
	assert_string_equal(out, "out err");
	exec_close(&c);
}

/* A batch script travels in the EXEC frame. */
static void test_exec_script(void **state)
{
	struct fx *f = *state;
	const char *script = "#!/bin/sh\n#SBATCH -N1\necho \"$@\"\n";
	struct exec_opts o = {.script = script, .stdin_fd = -1};
	struct exec_client c;
	struct aw_exec e;
	int afd;

	start_ok(f);
	afd = agent_connect(f);
	agent_handshake(f, afd);
	exec_start(f, JOB, &o, &c);
	agent_expect_exec(f, afd, &e);
	assert_int_equal(e.flags, AW_EXEC_SCRIPT);
	assert_non_null(e.script);
	assert_string_equal(e.script, script);
	assert_int_equal(e.script_len, strlen(script));
	aw_exec_clear(&e);
	exec_close(&c);
}

static void on_script_alarm(int sig)
{
	static const char m[] = "vmmd's loop blocked reading the script fd\n";

	(void)sig;
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(98);
	_exit(99);
}

/* A script fd that never reaches EOF (a pipe the client keeps open) was
 * read on vmmd's loop and stalled every job on the node (review of issue
 * 14): refused at once, naming the job, and the loop goes on. */
static void test_exec_script_not_a_file(void **state)
{
	struct fx *f = *state;
	struct proto_request req = {.op = PROTO_OP_EXEC, .job_id = JOB};
	struct proto_exec *e = &req.exec;
	struct proto_reply rep;
	int in, out[2], err[2], sp[2], fds[5], afd, cfd;

	start_ok(f);
	afd = agent_connect(f);
	agent_handshake(f, afd);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	assert_int_equal(pipe2(sp, O_CLOEXEC), 0);
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	e->job_id = JOB;
	e->argv = xstrv(default_argv, &e->argc);
	e->envp = xstrv(default_env, &e->envc);
	e->cwd = strdup(f->work);
	e->script = true;
	fds[0] = in, fds[1] = out[1], fds[2] = err[1], fds[3] = sp[0];
	fds[4] = out[1];
	signal(SIGALRM, on_script_alarm);
	alarm(5);
	cfd = client_send(f, &req, fds, 5);
	proto_request_clear(&req);
	client_reply(f, cfd, &rep);
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error, "job 42: exec needs");
	assert_int_equal(exec_count(job(f)), 0);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	close(sp[1]), close(out[0]), close(err[0]), close(cfd), close(afd);
	proto_reply_clear(&rep);
}

/* The task's signal reaches the guest; its death kills the command. */
static void test_exec_signal_and_client_gone(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct proto_request req = {.op = PROTO_OP_SIGNAL, .signo = SIGTERM};
	struct exec_client c;
	struct aw_reader r;
	struct frame fr;
	uint32_t sid;
	int afd;

	sid = running_session(f, &afd, &o, &c);
	assert_int_equal(proto_send_request(c.fd, &req, NULL, 0), 0);
	agent_expect(f, afd, AW_SIGNAL, &fr);
	assert_int_equal(fr.h.session, sid);
	aw_reader_init(&r, fr.p, fr.h.len);
	assert_int_equal(aw_get_u32(&r), SIGTERM);
	assert_int_equal(aw_reader_done(&r), 0);
	free(fr.p);

	close(c.fd);
	c.fd = -1;
	agent_expect(f, afd, AW_SIGNAL, &fr);
	assert_int_equal(fr.h.session, sid);
	aw_reader_init(&r, fr.p, fr.h.len);
	assert_int_equal(aw_get_u32(&r), SIGKILL);
	free(fr.p);
	assert_int_equal(exec_count(job(f)), 0);
	/* Late frames of the gone session are dropped, not fatal. */
	agent_send(f, afd, AW_STDOUT, sid, "late", 4);
	pump(f, 100);
	assert_int_equal(job(f)->state, JOB_READY);
	exec_close(&c);
}

static void test_exec_refusals(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;

	/* No such job. */
	exec_start(f, 7, &o, &c);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 7 has no guest on node n1");
	exec_close(&c);
	/* Too few fds. */
	start_ok(f);
	o.nfds = 2;
	exec_start(f, JOB, &o, &c);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error, "needs the task's stdin, stdout and stderr");
	exec_close(&c);
	assert_int_equal(exec_count(job(f)), 0);
}

/* ======================================================================= */
/* failures                                                                 */
/* ======================================================================= */

static void test_boot_timeout(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c, c2;
	struct proto_reply rep;
	uint64_t t0;

	f->d.cfg.boot_timeout_s = 1;
	t0 = now_ms();
	start_ok(f);
	exec_start(f, JOB, &o, &c);
	client_reply(f, c.fd, &rep);
	assert_true(now_ms() - t0 >= 900);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error, "job 42: guest did not become ready within "
				   "1 s on node n1");
	assert_contains(rep.error, "see vmenvctl console 42");
	assert_not_contains_path(rep.error);
	assert_int_equal(job(f)->state, JOB_FAILED);
	assert_int_equal(fake_hv.ndestroy, 1);
	assert_string_equal(fake_hv.destroyed[0], DOMAIN);
	exec_close(&c);
	/* A later task learns the same reason at once. */
	exec_start(f, JOB, &o, &c2);
	client_reply(f, c2.fd, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "did not become ready");
	exec_close(&c2);
}

/* A running session's guest has event ev: its task gets the error in
 * *rep. */
static void session_hv_event(struct fx *f, enum hv_event ev,
			     struct exec_client *c, struct proto_reply *rep)
{
	struct exec_opts o = {.stdin_fd = -1};
	int afd;

	running_session(f, &afd, &o, c);
	fake_hv_emit(DOMAIN, ev);
	client_reply(f, c->fd, rep);
	assert_int_equal(rep->kind, PROTO_EV_ERROR);
}

static void test_guest_crash(void **state)
{
	struct fx *f = *state;
	struct exec_client c;
	struct proto_reply rep;

	session_hv_event(f, HV_EV_CRASHED, &c, &rep);
	assert_contains(rep.error, "job 42: guest crashed on node n1");
	assert_contains(rep.error, "see vmenvctl console 42");
	assert_int_equal(job(f)->state, JOB_FAILED);
	exec_close(&c);
	/* Events for other domains are ignored. */
	fake_hv_emit("vmenv-n1-43", HV_EV_CRASHED);
	fake_hv_emit("someone-else", HV_EV_STOPPED);
	pump(f, 50);
	status_ok(f, 1);
}

/* QEMU paused the guest on a disk write error (the overlay's file system
 * full): the job fails naming it, and the paused domain is destroyed (it
 * would hold its CPUs and memory until the time limit). */
static void test_guest_io_error(void **state)
{
	struct fx *f = *state;
	struct exec_client c;
	struct proto_reply rep;

	session_hv_event(f, HV_EV_IOERROR, &c, &rep);
	assert_contains(
	    rep.error, "job 42: the guest's disk hit a write error on node n1");
	assert_int_equal(job(f)->state, JOB_FAILED);
	assert_int_equal(fake_hv.ndestroy, 1);
	assert_string_equal(fake_hv.destroyed[0], DOMAIN);
	exec_close(&c);
	status_ok(f, 1);
}

/* --- malformed frames from the guest ------------------------------------ */

enum bad_when { BEFORE_HELLO, AFTER_SETUP, IN_SESSION };

static void raw_hdr(struct fx *f, int fd, uint32_t len, uint8_t type,
		    uint8_t flags, uint8_t reserved, uint32_t session)
{
	uint8_t h[AW_HDR_LEN];

	aw_hdr_encode(h, len, type, session);
	h[5] = flags;
	h[7] = reserved;
	agent_write(f, fd, h, sizeof(h));
}

static void bad_flags(struct fx *f, int fd, uint32_t sid)
{
	raw_hdr(f, fd, 0, AW_HELLO, 0x01, 0, 0);
}

static void bad_reserved(struct fx *f, int fd, uint32_t sid)
{
	raw_hdr(f, fd, 0, AW_HELLO, 0, 0x80, 0);
}

static void bad_type0(struct fx *f, int fd, uint32_t sid)
{
	raw_hdr(f, fd, 0, 0, 0, 0, 0);
}

static void bad_type_end(struct fx *f, int fd, uint32_t sid)
{
	raw_hdr(f, fd, 0, AW_TYPE_END, 0, 0, 0);
}

static void bad_oversized(struct fx *f, int fd, uint32_t sid)
{
	raw_hdr(f, fd, AW_MAX_AGENT_PAYLOAD + 1, AW_STDOUT, 0, 0, sid);
}

static void bad_setup_ok_early(struct fx *f, int fd, uint32_t sid)
{
	agent_send(f, fd, AW_SETUP_OK, 0, NULL, 0);
}

static void bad_host_frame(struct fx *f, int fd, uint32_t sid)
{
	agent_send(f, fd, AW_SHUTDOWN, 0, NULL, 0);
}

static void bad_hello_trailing(struct fx *f, int fd, uint32_t sid)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_u32(&b, AW_VERSION), 0);
	assert_int_equal(aw_put_u32(&b, 0), 0);
	assert_int_equal(aw_put_str(&b, "x"), 0);
	assert_int_equal(aw_put_bytes(&b, "!", 1), 0);
	agent_send(f, fd, AW_HELLO, 0, b.data, b.len);
	aw_buf_free(&b);
}

static void bad_hello_version(struct fx *f, int fd, uint32_t sid)
{
	agent_hello(f, fd, AW_VERSION + 1);
}

static void bad_hello_version0(struct fx *f, int fd, uint32_t sid)
{
	agent_hello(f, fd, 0);
}

static void bad_error_frame(struct fx *f, int fd, uint32_t sid)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_str(&b, "what was that"), 0);
	agent_send(f, fd, AW_ERROR, 0, b.data, b.len);
	aw_buf_free(&b);
}

static void bad_setup_fail(struct fx *f, int fd, uint32_t sid)
{
	struct aw_buf b = {0};

	agent_hello(f, fd, AW_VERSION);
	assert_int_equal(aw_put_u32(&b, ENOSPC), 0);
	assert_int_equal(aw_put_str(&b, "no space\nleft"), 0);
	agent_send(f, fd, AW_SETUP_FAIL, 0, b.data, b.len);
	aw_buf_free(&b);
}

static void bad_channel_closed(struct fx *f, int fd, uint32_t sid)
{
	assert_int_equal(shutdown(fd, SHUT_RDWR), 0);
}

/* The stdout pipe is full (fill_stdout), so every byte stays in flight:
 * exactly AW_WINDOW is allowed, one more byte is not. */
static void bad_window(struct fx *f, int fd, uint32_t sid)
{
	static uint8_t chunk[AW_MAX_AGENT_PAYLOAD];

	memset(chunk, 'w', sizeof(chunk));
	for (uint32_t sent = 0; sent < AW_WINDOW; sent += sizeof(chunk))
		agent_send(f, fd, AW_STDOUT, sid, chunk, sizeof(chunk));
	pump(f, 100);
	assert_int_equal(job(f)->state, JOB_READY);
	agent_send(f, fd, AW_STDOUT, sid, "!", 1);
}

static void bad_exit_garbage(struct fx *f, int fd, uint32_t sid)
{
	agent_send(f, fd, AW_EXIT, sid, "\x01\x02\x03", 3);
}

static void bad_exit_kind(struct fx *f, int fd, uint32_t sid)
{
	agent_send_u32(f, fd, AW_STARTED, sid, 1, 0, 1);
	agent_send_u32(f, fd, AW_EXIT, sid, 9, 0, 2);
}

static void bad_credit(struct fx *f, int fd, uint32_t sid)
{
	/* Nothing was sent on stdin: no window to return. */
	agent_send_u32(f, fd, AW_CREDIT, sid, 1, 0, 1);
}

static void bad_frame_after_exit(struct fx *f, int fd, uint32_t sid)
{
	/* Stdout held back (full pipe) keeps the session after EXIT. */
	agent_send(f, fd, AW_STDOUT, sid, "x", 1);
	agent_send_u32(f, fd, AW_EXIT, sid, AW_EXIT_CODE, 0, 2);
	agent_send(f, fd, AW_STDOUT, sid, "y", 1);
}

static void bad_waiting_session(struct fx *f, int fd, uint32_t sid)
{
	uint64_t end = now_ms() + WAIT_MS;

	/* Session 1 exists but was never launched (no SETUP_OK yet). */
	while (exec_count(job(f)) != 1 && now_ms() < end)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_int_equal(exec_count(job(f)), 1);
	agent_send(f, fd, AW_STDOUT, 1, "x", 1);
}

static const struct {
	const char *what;
	enum bad_when when;
	void (*send)(struct fx *f, int fd, uint32_t sid);
	const char *want; /* in the job's error */
} bad_frames[] = {
    {"flags != 0", BEFORE_HELLO, bad_flags, "sent a malformed frame"},
    {"reserved != 0", AFTER_SETUP, bad_reserved, "sent a malformed frame"},
    {"type 0", BEFORE_HELLO, bad_type0, "sent a malformed frame"},
    {"type past the end", AFTER_SETUP, bad_type_end, "sent a malformed frame"},
    {"length over AW_MAX_AGENT_PAYLOAD", IN_SESSION, bad_oversized,
     "sent a malformed frame"},
    {"SETUP_OK before SETUP", BEFORE_HELLO, bad_setup_ok_early,
     "broke the protocol"},
    {"a host-only frame", AFTER_SETUP, bad_host_frame, "broke the protocol"},
    {"HELLO with trailing bytes", BEFORE_HELLO, bad_hello_trailing,
     "broke the protocol"},
    {"HELLO of another version", BEFORE_HELLO, bad_hello_version,
     "another protocol version"},
    {"HELLO of version 0", BEFORE_HELLO, bad_hello_version0,
     "another protocol version"},
    {"ERROR from the agent", AFTER_SETUP, bad_error_frame,
     "reported a protocol error"},
    {"SETUP_FAIL", BEFORE_HELLO, bad_setup_fail,
     "guest setup failed: no space?left"},
    {"channel closed", AFTER_SETUP, bad_channel_closed, "agent channel closed"},
    {"STDOUT beyond the window", IN_SESSION, bad_window, "broke the protocol"},
    {"EXIT before STARTED, garbage payload", IN_SESSION, bad_exit_garbage,
     "broke the protocol"},
    {"EXIT of an unknown kind", IN_SESSION, bad_exit_kind,
     "broke the protocol"},
    {"CREDIT beyond the window", IN_SESSION, bad_credit, "broke the protocol"},
    {"a frame after EXIT", IN_SESSION, bad_frame_after_exit,
     "broke the protocol"},
    {"output for a session not launched", BEFORE_HELLO, bad_waiting_session,
     "broke the protocol"},
};

/* Each case: the job fails with a reason naming the console log, its
 * guest is destroyed, its task learns why, and vmmd carries on. */
static void test_malformed_frames(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_frames); i++) {
		struct fx *f = i ? fx_renew(state) : *state;
		struct exec_opts o = {.stdin_fd = -1, .fill_stdout = true};
		struct exec_client c = {
		    .fd = -1, .in = -1, .out = -1, .err = -1};
		struct proto_reply rep;
		uint32_t sid = 0;
		int afd;

		print_message("case: %s\n", bad_frames[i].what);
		if (bad_frames[i].when == IN_SESSION) {
			sid = running_session(f, &afd, &o, &c);
		} else {
			start_ok(f);
			afd = agent_connect(f);
			if (bad_frames[i].when == AFTER_SETUP)
				agent_handshake(f, afd);
			else if (bad_frames[i].send == bad_waiting_session)
				exec_start(f, JOB, &o, &c);
		}
		bad_frames[i].send(f, afd, sid);
		pump_until_state(f, JOB_FAILED);
		assert_contains(job(f)->error, bad_frames[i].want);
		assert_contains(job(f)->error, "see vmenvctl console 42");
		assert_int_equal(fake_hv.ndestroy, 1);
		assert_string_equal(fake_hv.destroyed[0], DOMAIN);
		assert_null(job(f)->agent);
		if (c.fd >= 0) {
			client_reply(f, c.fd, &rep);
			if (rep.kind == PROTO_EV_STARTED)
				client_reply(f, c.fd, &rep);
			assert_int_equal(rep.kind, PROTO_EV_ERROR);
			assert_string_equal(rep.error, job(f)->error);
		}
		exec_close(&c);
		status_ok(f, 1);
	}
}

/* --- frames vmmd has no use for (vmmd/stray.h) ------------------------- */

enum flood_when { FL_READY, FL_SESSION, FL_ENDED };

static const struct {
	const char *what;
	enum flood_when when;
	uint8_t type;
	uint32_t session; /* 0 with FL_SESSION/FL_ENDED: the session's */
	uint32_t len;	  /* STDOUT's payload */
	size_t budget;	  /* what vmmd may take before it closes */
} floods[] = {
    {"STDOUT for a session never issued", FL_READY, AW_STDOUT, 999,
     AW_MAX_AGENT_PAYLOAD, STRAY_GRACE},
    {"EXIT for a session never issued", FL_READY, AW_EXIT, 7, 0, STRAY_GRACE},
    {"output of an ended session past its window", FL_ENDED, AW_STDOUT, 0,
     AW_MAX_AGENT_PAYLOAD, AW_WINDOW + STRAY_GRACE},
    {"EOF again and again", FL_SESSION, AW_STDOUT, 0, 0, STRAY_GRACE},
    {"STARTED again", FL_SESSION, AW_STARTED, 0, 0, STRAY_GRACE},
    {"CREDIT of nothing", FL_SESSION, AW_CREDIT, 0, 0, STRAY_GRACE},
    {"HELLO answers vmmd never asked for", FL_READY, AW_HELLO, 0, 0,
     STRAY_GRACE + 4096},
    {"SETUP_OK again", FL_READY, AW_SETUP_OK, 0, 0, STRAY_GRACE},
    {"CKPT_OK vmmd never asked for", FL_READY, AW_CKPT_OK, 0, 0, STRAY_GRACE},
};

/* One frame of the flood, well formed for its type. */
static void flood_frame(uint8_t type, uint32_t session, uint32_t len,
			struct aw_buf *b)
{
	struct aw_buf p = {0};
	uint8_t *data = calloc(1, len + 1);

	assert_non_null(data);
	if (type == AW_HELLO) {
		assert_int_equal(aw_put_u32(&p, AW_VERSION), 0);
		assert_int_equal(aw_put_u32(&p, 0), 0);
		assert_int_equal(aw_put_str(&p, "fake agent"), 0);
	} else if (type == AW_CKPT_OK) {
		assert_int_equal(aw_put_u32(&p, AW_CKPT_PREPARE), 0);
	} else if (type == AW_STARTED) {
		assert_int_equal(aw_put_u32(&p, 1), 0);
	} else if (type == AW_CREDIT) {
		assert_int_equal(aw_put_u32(&p, 0), 0);
	} else if (type == AW_EXIT) {
		assert_int_equal(aw_put_u32(&p, AW_EXIT_CODE), 0);
		assert_int_equal(aw_put_u32(&p, 0), 0);
	} else {
		assert_int_equal(aw_put_bytes(&p, data, len), 0);
	}
	assert_int_equal(aw_put_frame(b, type, session, p.data, p.len), 0);
	aw_buf_free(&p);
	free(data);
}

/* Sends the frame over and over until vmmd closes the channel (the fake
 * hypervisor then closes this end with the guest); returns the bytes
 * sent. With a small send buffer, what vmmd never read is at most that
 * buffer. */
static size_t flood(struct fx *f, int fd, const struct aw_buf *fr, size_t max)
{
	size_t total = 0, off = 0;

	for (;;) {
		ssize_t n = send(fd, fr->data + off, fr->len - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			total += (size_t)n;
			off = (off + (size_t)n) % fr->len;
			if (total > max)
				fail_msg("vmmd took %zu bytes and goes on",
					 total);
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return total;
		assert_int_equal(errno, EAGAIN);
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
		if (!job(f)->agent)
			return total;
	}
}

static uint32_t flood_setup(struct fx *f, enum flood_when when, int *afd,
			    struct exec_client *c)
{
	struct exec_opts o = {.stdin_fd = -1};
	struct proto_reply rep;
	struct frame fr;
	uint32_t sid;

	if (when == FL_READY) {
		start_ok(f);
		*afd = agent_connect(f);
		agent_handshake(f, *afd);
		return 0;
	}
	sid = running_session(f, afd, &o, c);
	agent_send_u32(f, *afd, AW_STARTED, sid, 1, 0, 1);
	client_reply(f, c->fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	if (when == FL_ENDED) {
		exec_close(c); /* the task goes: vmmd kills the command */
		agent_expect(f, *afd, AW_SIGNAL, &fr);
		free(fr.p);
		assert_int_equal(exec_count(job(f)), 0);
	}
	return sid;
}

/* Each case: vmmd takes what its budget allows and no more, the job fails
 * naming the frame, its task learns why, and vmmd serves on. */
static void test_flood_cut_off(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(floods); i++) {
		struct fx *f = i ? fx_renew(state) : *state;
		struct exec_client c = {
		    .fd = -1, .in = -1, .out = -1, .err = -1};
		struct aw_buf fr = {0};
		struct proto_reply rep;
		char want[64];
		int afd, sndbuf = 4096;
		socklen_t sl = sizeof(sndbuf);
		uint32_t sid;
		size_t took, bound;

		print_message("case: %s\n", floods[i].what);
		sid = flood_setup(f, floods[i].when, &afd, &c);
		assert_int_equal(setsockopt(afd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
					    sizeof(sndbuf)),
				 0);
		assert_int_equal(
		    getsockopt(afd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl), 0);
		flood_frame(floods[i].type,
			    floods[i].session ? floods[i].session : sid,
			    floods[i].len, &fr);
		bound = floods[i].budget + (size_t)sndbuf + fr.len;
		took = flood(f, afd, &fr, 64 * bound);
		print_message("  vmmd took %zu bytes (bound %zu)\n", took,
			      bound);
		assert_true(took <= bound);
		aw_buf_free(&fr);
		pump_until_state(f, JOB_FAILED);
		assert_contains(job(f)->error, "job 42: ");
		assert_contains(job(f)->error, "flooded vmmd");
		snprintf(want, sizeof(want), "the last: %s for session",
			 aw_type_name(floods[i].type));
		assert_contains(job(f)->error, want);
		assert_null(job(f)->agent);
		if (c.fd >= 0) {
			client_reply(f, c.fd, &rep);
			assert_int_equal(rep.kind, PROTO_EV_ERROR);
			assert_string_equal(rep.error, job(f)->error);
		}
		exec_close(&c);
		status_ok(f, 1);
	}
}

/* The honest races cost no grace: a command that goes on writing after
 * its task went away (its whole window, its EOFs, its EXIT), stdin
 * credited back after that, and several answers to vmmd's repeated
 * HELLOs. */
static void test_stray_races_allowed(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.want_stdin = true, .stdin_fd = -1};
	static uint8_t chunk[AW_MAX_AGENT_PAYLOAD];
	struct exec_client c;
	struct aw_exec e;
	struct frame fr;
	unsigned hellos = 0;
	uint32_t sid;
	int afd;

	start_ok(f);
	afd = agent_connect(f);
	/* vmmd says HELLO again every second until it hears one back. */
	while (hellos < 3) {
		agent_expect(f, afd, AW_HELLO, &fr);
		free(fr.p);
		hellos++;
	}
	for (unsigned i = 0; i < hellos; i++)
		agent_hello(f, afd, AW_VERSION);
	agent_expect(f, afd, AW_SETUP, &fr);
	free(fr.p);
	agent_send(f, afd, AW_SETUP_OK, 0, NULL, 0);
	pump_until_state(f, JOB_READY);

	exec_start(f, JOB, &o, &c);
	sid = agent_expect_exec(f, afd, &e);
	aw_exec_clear(&e);
	agent_send_u32(f, afd, AW_STARTED, sid, 1, 0, 1);
	assert_int_equal(write_full(c.in, "input", 5), 0);
	agent_expect(f, afd, AW_STDIN, &fr);
	free(fr.p);
	close(c.fd); /* the task goes, its stdin still open */
	c.fd = -1;
	agent_expect(f, afd, AW_SIGNAL, &fr);
	free(fr.p);
	assert_int_equal(exec_count(job(f)), 0);
	exec_close(&c);

	memset(chunk, 'x', sizeof(chunk));
	for (uint32_t sent = 0; sent < AW_WINDOW; sent += sizeof(chunk))
		agent_send(f, afd, AW_STDOUT, sid, chunk, sizeof(chunk));
	agent_send_u32(f, afd, AW_CREDIT, sid, 5, 0, 1);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send(f, afd, AW_STDERR, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_SIGNAL, 9, 2);
	pump(f, 100);
	assert_int_equal(job(f)->state, JOB_READY);
	assert_int_equal(job(f)->stray.grace_used, 0);
	assert_int_equal(job(f)->stray.bytes, AW_WINDOW + 4 + 8);
}

/* ======================================================================= */
/* clients                                                                  */
/* ======================================================================= */

static void test_oversized_client_message(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[4] = {(uint8_t)((PROTO_MAX_MSG + 1) >> 24),
			  (uint8_t)((PROTO_MAX_MSG + 1) >> 16),
			  (uint8_t)((PROTO_MAX_MSG + 1) >> 8),
			  (uint8_t)(PROTO_MAX_MSG + 1)};
	int fd = unix_connect(f->d.cfg.socket_path, 1000);
	char c;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, hdr, sizeof(hdr)), 4);
	/* Closed without a reply. */
	assert_true(pump_until_readable(f, fd, WAIT_MS));
	assert_int_equal(read(fd, &c, 1), 0);
	close(fd);
	assert_int_equal(f->d.climit.total, 0);
	assert_contains(logbuf, "oversized message; closing");
	status_ok(f, 0);
}

static void test_bad_client_requests(void **state)
{
	struct fx *f = *state;
	struct proto_request st = {.op = PROTO_OP_STATUS};
	struct proto_request sig = {.op = PROTO_OP_SIGNAL, .signo = 9};
	struct proto_reply rep;
	int fd, devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char c;

	/* Not JSON: an error reply, then the connection closes. */
	fd = unix_connect(f->d.cfg.socket_path, 1000);
	assert_true(fd >= 0);
	assert_int_equal(proto_send(fd, "{nope", 5, NULL, 0), 0);
	client_reply(f, fd, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "bad request: not valid JSON");
	assert_true(pump_until_readable(f, fd, WAIT_MS));
	assert_int_equal(read(fd, &c, 1), 0);
	close(fd);
	/* fds on a request that takes none. */
	fd = client_send(f, &st, &devnull, 1);
	client_reply(f, fd, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "unexpected file descriptors");
	close(fd);
	/* A signal outside an exec session. */
	call(f, &sig, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "'signal' outside an exec session");
	close(devnull);
	assert_int_equal(f->d.climit.total, 0);
	status_ok(f, 0);
}

/* The child below must never return into cmocka: it uses no asserting
 * helper, and reports a failed step by its exit code. */
#define CHILD_STEP 10

/* cmocka catches SIGSEGV & co. and longjmps back into its runner: in a
 * child that would run the rest of the tests. A crash must kill it. */
static void child_default_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
}

/* Pumps vmmd until fd is readable; false on timeout or loop error. */
static bool child_pump_until_readable(struct fx *f, int fd)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (!readable(fd))
		if (now_ms() >= end || loop_run_once(f->d.loop, 10) < 0)
			return false;
	return true;
}

static int garbage_on_exec_child(struct fx *f, int cfd)
{
	struct proto_request st = {.op = PROTO_OP_STATUS};
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];
	int fd;

	if (proto_send(cfd, "{garbage", 8, NULL, 0) < 0)
		return CHILD_STEP + 1;
	/* The session is gone. (No EOF check: after fork() the parent still
	 * holds a copy of vmmd's end of this connection.) */
	for (uint64_t end = now_ms() + WAIT_MS; exec_count(job(f)) != 0;)
		if (now_ms() >= end || loop_run_once(f->d.loop, 10) < 0)
			return CHILD_STEP + 2;
	fd = unix_connect(f->d.cfg.socket_path, 1000);
	if (fd < 0 || proto_send_request(fd, &st, NULL, 0) < 0 ||
	    !child_pump_until_readable(f, fd) ||
	    proto_recv_reply(fd, 1000, &rep, err, sizeof(err)) < 0)
		return CHILD_STEP + 5;
	return rep.kind == PROTO_REPLY_OK ? 0 : CHILD_STEP + 6;
}

/* A malformed message on an exec connection must end that session only.
 * Run in a child: if vmmd crashes there, the test reports it instead of
 * dying with it. */
static void test_garbage_on_exec_connection(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	int status, code;
	pid_t pid;

	start_ok(f);
	exec_start(f, JOB, &o, &c);
	while (exec_count(job(f)) != 1)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		_exit(garbage_on_exec_child(f, c.fd));
	}
	exec_close(&c);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (code > CHILD_STEP && code < CHILD_STEP + 10)
		fail_msg("child failed at step %d", code - CHILD_STEP);
	/* Anything else than 0 is vmmd dying: a signal, or the sanitizer's
	 * exit code. */
	if (code != 0)
		fail_msg("vmmd died (%s %d) on a malformed message on an exec "
			 "connection",
			 WIFSIGNALED(status) ? "signal" : "exit code",
			 WIFSIGNALED(status) ? WTERMSIG(status) : code);
}

/* A task sends only SIGNAL after its EXEC: a long message is not buffered
 * (a user would make root's vmmd hold 4 MiB per command) but ends the
 * session, as if the task went away. */
static void test_exec_connection_long_message(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	uint8_t hdr[4] = {0, 0x10, 0, 0}; /* 1 MiB follows */
	struct exec_client c;
	struct aw_reader r;
	struct frame fr;
	uint32_t sid;
	int afd;

	sid = running_session(f, &afd, &o, &c);
	assert_int_equal(write(c.fd, hdr, sizeof(hdr)), 4);
	agent_expect(f, afd, AW_SIGNAL, &fr);
	assert_int_equal(fr.h.session, sid);
	aw_reader_init(&r, fr.p, fr.h.len);
	assert_int_equal(aw_get_u32(&r), SIGKILL);
	free(fr.p);
	/* The agent forgets it (it would keep its EXIT for a RELEASE). */
	agent_recv(f, afd, &fr);
	assert_int_equal(fr.h.type, AW_RELEASE);
	assert_int_equal(fr.h.session, sid);
	free(fr.p);
	assert_int_equal(exec_count(job(f)), 0);
	exec_close(&c);
}

/* loop.h: fds that cannot be polled (regular files) are for the caller to
 * handle synchronously; a task's stdin redirected from a file must reach
 * the command. */
static void test_exec_stdin_from_file(void **state)
{
	struct fx *f = *state;
	char path[256];
	int file, afd;
	struct exec_opts o = {.want_stdin = true};
	struct exec_client c;
	struct frame fr;
	uint32_t sid;
	bool relayed;

	fixture_path(f, path, sizeof(path), "stdin.txt");
	write_text(path, "data from a file");
	file = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(file >= 0);
	o.stdin_fd = file;
	sid = running_session(f, &afd, &o, &c);
	close(file);
	agent_expect(f, afd, AW_STDIN, &fr);
	assert_int_equal(fr.h.session, sid);
	relayed = fr.h.len == 16 && memcmp(fr.p, "data from a file", 16) == 0;
	free(fr.p);
	if (!relayed)
		fail_msg("stdin from a regular file: %u bytes instead of the "
			 "file's 16",
			 (unsigned)fr.h.len);
	/* Then the end of the file, as an empty STDIN frame. */
	agent_expect(f, afd, AW_STDIN, &fr);
	assert_int_equal(fr.h.len, 0);
	free(fr.p);
	exec_close(&c);
}

/* ======================================================================= */
/* stop                                                                     */
/* ======================================================================= */

static void pump_until_destroyed(struct fx *f, unsigned n)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (fake_hv.ndestroy < n) {
		if (now_ms() >= end)
			fail_msg("the guest was never destroyed");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
}

/* Slurm's end of the job (STOP from its extern or batch step) while a
 * step still runs in the guest: Slurm signalled that step too and gives
 * it KillWait, so its last words (a TERM trap's output) reach the task
 * before the guest goes. */
static void test_stop(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	char dir[512], out[64];
	uint32_t sid;
	int afd;

	sid = running_session(f, &afd, &o, &c);
	snprintf(dir, sizeof(dir), "%s/run/jobs/%u", f->dir, JOB);
	assert_true(exists(dir));
	stop_ok(f, JOB);
	pump(f, 300);
	assert_int_equal(fake_hv.ndestroy, 0);
	assert_true(exists(dir));
	agent_send_u32(f, afd, AW_STARTED, sid, 1234, 0, 1);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	agent_send(f, afd, AW_STDOUT, sid, "got-TERM\n", 9);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send(f, afd, AW_STDERR, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_CODE, 143, 2);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(rep.exit_value, 143);
	assert_int_equal(read_to_eof(f, c.out, out, sizeof(out)), 9);
	assert_string_equal(out, "got-TERM\n");
	/* The last step is done: now the guest goes. */
	pump_until_destroyed(f, 1);
	assert_string_equal(fake_hv.destroyed[0], DOMAIN);
	assert_false(exists(dir));
	assert_null(job(f));
	exec_close(&c);
	close(afd);
	/* Stopping again (a repeated epilog) is fine and touches nothing. */
	stop_ok(f, JOB);
	assert_int_equal(fake_hv.ndestroy, 1);
	status_ok(f, 0);
	/* And the job id can be used again. */
	start_ok(f);
	assert_int_equal(fake_hv.ncreate, 2);
}

/* A step that does not end within the grace (a shim Slurm failed to
 * kill): the guest goes anyway, and the task learns its job ended. */
static void test_stop_grace_bounded(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	uint64_t saved = job_stop_grace_ms, t0;
	int afd;

	job_stop_grace_ms = 300;
	running_session(f, &afd, &o, &c);
	t0 = now_ms();
	stop_ok(f, JOB);
	pump_until_destroyed(f, 1);
	assert_true(now_ms() - t0 >= 300);
	assert_null(job(f));
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error, "job ended");
	exec_close(&c);
	close(afd);
	job_stop_grace_ms = saved;
}

/* Without a running step the guest goes at once. */
static void test_stop_idle_at_once(void **state)
{
	struct fx *f = *state;

	start_ok(f);
	stop_ok(f, JOB);
	assert_int_equal(fake_hv.ndestroy, 1);
	assert_null(job(f));
}

/* keep_console_logs: none, failed (the default) or all. */
static void test_stop_console_logs(void **state)
{
	static const struct {
		const char *keep;
		bool failed;
		bool kept;
	} cases[] = {
	    {"failed", false, false},
	    {"failed", true, true},
	    {"none", true, false},
	    {"all", false, true},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx *f = i ? fx_renew(state) : *state;
		char console[VMENV_MAX_PATH];

		print_message("keep=%s failed=%d\n", cases[i].keep,
			      cases[i].failed);
		snprintf(f->d.cfg.keep_console_logs,
			 sizeof(f->d.cfg.keep_console_logs), "%s",
			 cases[i].keep);
		/* At the job's end, not console_linger_s later. */
		f->d.cfg.console_linger_s = 0;
		start_ok(f);
		snprintf(console, sizeof(console), "%s", job(f)->console);
		write_text(console, "guest console\n");
		if (cases[i].failed)
			fake_hv_emit(DOMAIN, HV_EV_STOPPED);
		pump(f, 50);
		assert_int_equal(job(f)->state,
				 cases[i].failed ? JOB_FAILED : JOB_BOOTING);
		stop_ok(f, JOB);
		assert_int_equal(exists(console), cases[i].kept);
	}
}

/* ======================================================================= */
/* identity                                                                 */
/* ======================================================================= */

/* In a child running as OTHER_UID: start must be refused, exec into the
 * job refused, and the job invisible in the list. */
static int other_user_child(struct fx *f)
{
	struct proto_request start = {.op = PROTO_OP_START,
				      .job_id = 99,
				      .start = {.job_id = 99, .image = "tiny"}};
	struct proto_request exec = {.op = PROTO_OP_EXEC, .job_id = JOB};
	struct proto_request list = {.op = PROTO_OP_LIST};
	const char *argv[] = {"/bin/true", NULL};
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];
	int fd, fds[3];

	if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
	    setuid(OTHER_UID) < 0 || getuid() != OTHER_UID)
		return 20;
	fd = unix_connect(f->d.cfg.socket_path, 1000);
	if (fd < 0 || proto_send_request(fd, &start, NULL, 0) < 0 ||
	    proto_recv_reply(fd, WAIT_MS, &rep, err, sizeof(err)) < 0)
		return 21;
	close(fd);
	if (rep.kind != PROTO_REPLY_ERROR ||
	    !strstr(rep.error, "permission denied"))
		return 22;

	exec.exec.argv = (char **)(uintptr_t)argv;
	exec.exec.argc = 1;
	exec.exec.envp = (char **)(uintptr_t)(argv + 1);
	exec.exec.cwd = (char *)(uintptr_t) "/";
	for (int i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
	fd = unix_connect(f->d.cfg.socket_path, 1000);
	if (fd < 0 || proto_send_request(fd, &exec, fds, 3) < 0 ||
	    proto_recv_reply(fd, WAIT_MS, &rep, err, sizeof(err)) < 0)
		return 23;
	close(fd);
	if (rep.kind != PROTO_REPLY_ERROR ||
	    !strstr(rep.error, "job 42: permission denied"))
		return 24;

	fd = unix_connect(f->d.cfg.socket_path, 1000);
	if (fd < 0 || proto_send_request(fd, &list, NULL, 0) < 0 ||
	    proto_recv_reply(fd, WAIT_MS, &rep, err, sizeof(err)) < 0)
		return 25;
	return rep.kind == PROTO_REPLY_OK && rep.has_jobs && rep.njobs == 0
		   ? 0
		   : 26;
}

/* Root: a child with another uid is a real second peer (SO_PEERCRED). */
static void other_user_as_root(struct fx *f)
{
	int status;
	pid_t pid;

	/* The child must reach the socket under the fixture dir. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		_exit(other_user_child(f));
	}
	while (waitpid(pid, &status, WNOHANG) == 0)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("other user's child failed at step %d (see "
			 "other_user_child)",
			 WEXITSTATUS(status));
}

/* Not root: a job record of root's (restored from a state file, as after a
 * vmmd restart) and ourselves as the other user. */
static void other_user_as_user(struct fx *f)
{
	const struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	char path[512], text[512];

	snprintf(path, sizeof(path), "%s/run/jobs/77", f->dir);
	assert_int_equal(mkdir_p(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/run/jobs/77/state", f->dir);
	snprintf(text, sizeof(text),
		 "job=77\nuid=0\ngid=0\nimage=tiny\nvcpus=1\nmem_mib=128\n"
		 "work_dir=%s\n",
		 f->work);
	write_text(path, text);
	assert_int_equal(job_restore(&f->d, 77), 0);
	assert_int_equal(job_find(&f->d, 77)->uid, 0);
	exec_start(f, 77, &o, &c);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 77: permission denied");
	exec_close(&c);
}

/* --- per-uid client limits (vmmd/clientlimit.h) ------------------------ */

#define UID_A 65534
#define UID_B 65533
#define UID_C 65532

static int drop_to(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0 ||
	    getuid() != uid)
		return -1;
	return 0;
}

/* In a child as uid: n connections to vmmd, sending nothing, each passed
 * to the parent over sock. */
static int connect_child(const char *path, uid_t uid, int sock, size_t n)
{
	if (drop_to(uid) < 0)
		return 20;
	for (size_t i = 0; i < n; i++) {
		int fd = unix_connect(path, 1000);

		if (fd < 0 || proto_send(sock, "f", 1, &fd, 1) < 0)
			return 21;
		close(fd);
	}
	return 0;
}

/* fds[0..n): connections of uid (SO_PEERCRED), held by this process.
 * vmmd has not accepted them yet: they wait in its listen backlog. */
static void connect_as(struct fx *f, uid_t uid, int *fds, size_t n)
{
	struct proto_rx rx;
	int sv[2], status;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		close(sv[0]);
		_exit(connect_child(f->d.cfg.socket_path, uid, sv[1], n));
	}
	close(sv[1]);
	proto_rx_init(&rx);
	for (size_t i = 0; i < n; i++) {
		int r;

		while ((r = proto_rx_feed(&rx, sv[0])) == 0)
			;
		if (r < 0 || rx.nfds != 1)
			fail_msg("connection %zu of uid %u not passed (%d)", i,
				 (unsigned)uid, r);
		fds[i] = rx.fds[0];
		rx.nfds = 0;
		proto_rx_reset(&rx);
	}
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* In a child as uid: one status request. 0: served; 1: refused with
 * want in the reason. */
static int status_child(const char *path, uid_t uid, const char *want)
{
	struct proto_request req = {.op = PROTO_OP_STATUS};
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];
	int fd;

	if (drop_to(uid) < 0)
		return 20;
	fd = unix_connect(path, 1000);
	if (fd < 0)
		return 21;
	/* A refused connection may be closed before the request is out:
	 * the reply is read all the same. */
	(void)proto_send_request(fd, &req, NULL, 0);
	if (proto_recv_reply(fd, WAIT_MS, &rep, err, sizeof(err)) < 0)
		return 22;
	if (rep.kind == PROTO_REPLY_OK && rep.has_status)
		return 0;
	return want && strstr(rep.error, want) ? 1 : 23;
}

static int status_as(struct fx *f, uid_t uid, const char *want)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		_exit(status_child(f->d.cfg.socket_path, uid, want));
	}
	while (waitpid(pid, &status, WNOHANG) == 0)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) > 1)
		fail_msg("uid %u's status request failed at step %d",
			 (unsigned)uid, WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

/* Of the n connections, how many vmmd refused with want in the reply
 * (each then closed); the others are open and waiting. */
static size_t refused(struct fx *f, const int *fds, size_t n, const char *want)
{
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];
	size_t no = 0;

	pump(f, 300);
	for (size_t i = 0; i < n; i++) {
		if (!readable(fds[i]))
			continue;
		if (proto_recv_reply(fds[i], 1000, &rep, err, sizeof(err)) < 0)
			fail_msg("connection %zu: %s", i, err);
		assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
		assert_contains(rep.error, want);
		no++;
	}
	return no;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* One user's idle connections stop at max_clients_per_uid; another user
 * is still served; when users hold max_clients, a third is refused but
 * root still gets through (the reserve); idle connections go after
 * client_request_timeout_s; a user's request bytes are bounded. */
static void test_client_limits(void **state)
{
	struct fx *f = *state;
	int a[5], b[1], r[1], big[3];
	uint8_t hdr[4] = {0, 0, 0x75, 0x30}; /* 30000 bytes follow */
	uint64_t end;

	if (getuid() != 0)
		skip(); /* other uids need root; test_clientlimit covers the
			   rules */
	assert_int_equal(chmod(f->dir, 0755), 0);
	f->d.cfg.max_clients = 4;
	f->d.cfg.max_clients_per_uid = 3;
	f->d.cfg.max_request_kib_per_uid = 64;
	f->d.cfg.client_request_timeout_s = 2;
	clientlimit_configure(&f->d.climit, 4, 3, 2, 64 * 1024, f->d.slurm_uid);

	connect_as(f, UID_A, a, ARRAY_SIZE(a));
	assert_int_equal(refused(f, a, ARRAY_SIZE(a),
				 "uid 65534 holds too many connections "
				 "(max_clients_per_uid = 3)"),
			 2);
	assert_int_equal(f->d.climit.total, 3);
	/* Another user is served, and holds the last shared slot. */
	assert_int_equal(status_as(f, UID_B, NULL), 0);
	connect_as(f, UID_B, b, ARRAY_SIZE(b));
	assert_int_equal(refused(f, b, ARRAY_SIZE(b), "-"), 0);
	assert_int_equal(f->d.climit.total, 4);
	assert_int_equal(
	    status_as(f, UID_C, "too many connections (max_clients = 4)"), 1);
	/* Root is served even so, with one more connection open: both
	 * slots of the reserve. */
	for (size_t i = 0; i < ARRAY_SIZE(r); i++)
		r[i] = unix_connect(f->d.cfg.socket_path, 1000);
	status_ok(f, 0);
	close_all(r, ARRAY_SIZE(r));
	assert_contains(logbuf, "refused a connection of uid 65534");

	/* Idle connections go: every slot comes back. */
	end = now_ms() + WAIT_MS;
	while (f->d.climit.total && now_ms() < end)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_int_equal(f->d.climit.total, 0);
	assert_contains(logbuf, "client uid 65533 pid ");
	assert_contains(logbuf, "sent no whole request in 2 s; closing");
	close_all(a, ARRAY_SIZE(a));
	close_all(b, ARRAY_SIZE(b));

	/* Three requests of 30000 bytes announced: two fit in 64 KiB. */
	connect_as(f, UID_A, big, ARRAY_SIZE(big));
	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		assert_int_equal(write(big[i], hdr, sizeof(hdr)), 4);
	assert_int_equal(refused(f, big, ARRAY_SIZE(big),
				 "too many request bytes of uid 65534"),
			 1);
	assert_int_equal(clientlimit_bytes_left(&f->d.climit, UID_A),
			 64 * 1024 - 2 * 30001);
	close_all(big, ARRAY_SIZE(big));
	pump(f, 100);
	assert_int_equal(f->d.climit.total, 0);
	assert_int_equal(clientlimit_bytes_left(&f->d.climit, UID_A),
			 64 * 1024);
}

/* A job runs at most AW_MAX_SESSIONS commands at once: each can hold a
 * window of output in vmmd. The next one is refused with the reason. */
static void test_exec_session_limit(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c[AW_MAX_SESSIONS + 1];
	struct proto_reply rep;

	start_ok(f);
	for (size_t i = 0; i < AW_MAX_SESSIONS; i++)
		exec_start(f, JOB, &o, &c[i]);
	while (exec_count(job(f)) != AW_MAX_SESSIONS)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	exec_start(f, JOB, &o, &c[AW_MAX_SESSIONS]);
	client_reply(f, c[AW_MAX_SESSIONS].fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error,
			"job 42: too many commands running in the guest "
			"(limit 64)");
	assert_int_equal(exec_count(job(f)), AW_MAX_SESSIONS);
	for (size_t i = 0; i <= AW_MAX_SESSIONS; i++)
		exec_close(&c[i]);
}

static void test_exec_other_user(void **state)
{
	struct fx *f = *state;

	start_ok(f);
	if (getuid() == 0)
		other_user_as_root(f);
	else
		other_user_as_user(f);
	/* Nothing was started or launched for them. */
	assert_int_equal(fake_hv.ncreate, 1);
	assert_int_equal(exec_count(job(f)), 0);
}

/* ======================================================================= */
/* site policies                                                            */
/* ======================================================================= */

static void write_policy(struct fx *f, const char *name, const char *text)
{
	char path[512];

	fixture_path(f, path, sizeof(path), "policies");
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/policies/%s", f->dir, name);
	write_text(path, text);
}

/* vmmd judges the request itself: a value the policy refuses fails the
 * job with the reason before any guest exists. */
static void test_policy_refuses_start(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;

	write_policy(f, "10-hp.json", "{\"hugepages\": {\"enforce\": \"2M\"}}");
	assert_int_equal(spec_policies_load(&f->d), 0);
	start_opt(f, JOB, VMSPEC_OPT_HUGEPAGES, "none", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_string_equal(rep.error,
			    "job 42: refused by site policy on node n1: "
			    "hugepages: 'none' contradicts '2M' enforced by "
			    "policy '10-hp' (10-hp.json)");
	assert_no_guest(f);
	assert_int_equal(job(f)->state, JOB_FAILED);
	assert_string_equal(job(f)->error, rep.error);

	/* A malformed value smuggled past the submit side fails the same
	 * way. */
	f = fx_renew(state);
	start_opt(f, JOB, VMSPEC_OPT_HUGEPAGES, "3M", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: --vm-hugepages: '3M' is not one "
				   "of: none, 2M, 1G");
	assert_no_guest(f);
	assert_int_equal(job(f)->state, JOB_FAILED);
}

/* A job with one --vm-mount whose source is SRC below the fixture's
 * directory (which the policy allows), with share/ a directory there and
 * link a symbolic link to /etc. */
static void start_mount(void **state, const char *src, const char *dst,
			struct proto_reply *rep)
{
	struct fx *f = fx_renew(state);
	char path[512], policy[256], mount[512];

	fixture_path(f, path, sizeof(path), "share");
	assert_int_equal(mkdir(path, 0755), 0);
	fixture_path(f, path, sizeof(path), "link");
	assert_int_equal(symlink("/etc", path), 0);
	snprintf(policy, sizeof(policy), "{\"mounts\": {\"allow\": [\"%s\"]}}",
		 f->dir);
	write_policy(f, "10-mounts.json", policy);
	assert_int_equal(spec_policies_load(&f->d), 0);
	snprintf(mount, sizeof(mount), "%s/%s:%s", f->dir, src, dst);
	start_opt(f, JOB, VMSPEC_OPT_MOUNT, mount, rep);
}

/* --vm-mount reaches the domain (QEMU's 9p, read-only when asked), and a
 * source that is missing, or leads elsewhere through a link, or a
 * destination over the working directory fails the job before any guest
 * exists, naming the job, the mount and why. */
static void test_mounts_checked(void **state)
{
	struct proto_reply rep;
	char want[512];

	start_mount(state, "share", "/mnt/s:ro", &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
	snprintf(want, sizeof(want),
		 "<source dir='%s/share'/>\n      <target dir='vmenv.m0'/>\n"
		 "      <readonly/>\n",
		 ((struct fx *)*state)->dir);
	assert_contains(fake_hv.last_xml, want);
	proto_reply_clear(&rep);

	start_mount(state, "missing", "/mnt/m", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	snprintf(want, sizeof(want),
		 "job 42: mount '%s/missing:/mnt/m': no "
		 "such directory",
		 ((struct fx *)*state)->dir);
	assert_string_equal(rep.error, want);
	assert_no_guest(*state);
	assert_int_equal(job(*state)->state, JOB_FAILED);
	proto_reply_clear(&rep);

	start_mount(state, "link", "/mnt/l", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "the source leads to /etc through a "
				   "symbolic link");
	assert_no_guest(*state);
	proto_reply_clear(&rep);

	start_mount(state, "share", "/tmp", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "/tmp would cover the job's working "
				   "directory");
	assert_no_guest(*state);
	proto_reply_clear(&rep);
}

/* The merged spec is the job's, sizes the guest, and survives a vmmd
 * restart in the job's directory. */
static void test_policy_spec_applied(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	_cleanup_free_ char *before = NULL, *after = NULL;
	char path[512];

	write_policy(f, "10-mem.json",
		     "{\"mem_headroom_pct\": {\"enforce\": 50},"
		     " \"mounts\": {\"enforce\": [\"/usr/share:/apps:ro\"]}}");
	assert_int_equal(spec_policies_load(&f->d), 0);
	start_opt(f, JOB, VMSPEC_OPT_GPUS, "no", &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
	/* 1024 MiB allocated, half of it left to QEMU. */
	assert_contains(fake_hv.last_xml, "<memory unit='MiB'>512</memory>");
	assert_int_equal(job(f)->spec.v.mem_headroom_pct, 50);
	assert_int_equal(job(f)->spec.src[VMSPEC_MEM_HEADROOM_PCT].origin,
			 VMSPEC_ENFORCED);
	assert_false(job(f)->spec.v.gpus);
	assert_int_equal(job(f)->spec.src[VMSPEC_GPUS].origin, VMSPEC_USER);
	assert_string_equal(job(f)->spec.v.image, "tiny");
	snprintf(path, sizeof(path), "%s/run/jobs/%u/spec", f->dir, JOB);
	assert_true(exists(path));
	assert_int_equal(vmspec_explain(&job(f)->spec, &before), 0);
	memset(&job(f)->spec, 0, sizeof(job(f)->spec));
	assert_int_equal(spec_load(job(f)), 0);
	assert_int_equal(vmspec_explain(&job(f)->spec, &after), 0);
	assert_string_equal(before, after);
	assert_contains(after, "/usr/share:/apps:ro      enforced by policy "
			       "'10-mem' (10-mem.json)");
}

/* What policies match comes from Slurm: the partition, account and QOS
 * slurmctld reports for the job. */
static void test_policy_matches_slurm(void **state)
{
	static const struct {
		const char *partition, *account, *qos;
		bool refused;
	} cases[] = {
	    {"prod", "phys", "high", true},
	    {"debug", "phys", "high", false},
	    {"prod", "chem", "high", false},
	    {"prod", "phys", "normal", false},
	    {"", "", "", false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx *f = i ? fx_renew(state) : *state;
		struct slurmjob_info si;
		struct proto_reply rep;
		char why[64];

		print_message("case: %s/%s/%s\n", cases[i].partition,
			      cases[i].account, cases[i].qos);
		write_policy(f, "10-p.json",
			     "{\"match\": {\"partition\": \"prod\", "
			     "\"account\": \"ph*\", \"qos\": \"high\"},"
			     " \"gpus\": {\"enforce\": true}}");
		assert_int_equal(spec_policies_load(&f->d), 0);
		assert_int_equal(
		    fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)), 0);
		snprintf(si.partition, sizeof(si.partition), "%s",
			 cases[i].partition);
		snprintf(si.account, sizeof(si.account), "%s",
			 cases[i].account);
		snprintf(si.qos, sizeof(si.qos), "%s", cases[i].qos);
		fake_slurm_set(&si);
		start_opt(f, JOB, VMSPEC_OPT_GPUS, "no", &rep);
		if (cases[i].refused) {
			assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
			assert_contains(rep.error,
					"gpus: 'no' contradicts 'yes'");
			assert_no_guest(f);
		} else if (rep.kind != PROTO_REPLY_OK) {
			fail_msg("start refused: %s", rep.error);
		}
	}
}

static void status_policies(struct fx *f, bool loaded, uint32_t n,
			    const char *error)
{
	struct proto_request req = {.op = PROTO_OP_STATUS};
	struct proto_reply rep;

	call(f, &req, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_int_equal(rep.status.policy_loaded, loaded);
	assert_int_equal(rep.status.policies, n);
	assert_contains(rep.status.policy_error, error);
	assert_contains(rep.status.policy_dir, "/policies");
}

/* A bad file never loosens anything: the last good set stays in force,
 * and with none at all every VM job is refused. */
static void test_policy_bad_file(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;

	status_policies(f, true, 0, "");
	write_policy(f, "10-hp.json", "{\"hugepages\": {\"enforce\": \"2M\"}}");
	assert_int_equal(spec_policies_load(&f->d), 0);
	status_policies(f, true, 1, "");
	write_policy(f, "20-bad.json", "{\"hugepages\": {\"enforce\": 2}}");
	assert_int_equal(spec_policies_load(&f->d), -EINVAL);
	assert_contains(logbuf, "policy: ");
	assert_contains(logbuf, "20-bad.json: hugepages.enforce: must be a "
				"string");
	assert_contains(logbuf, "keeping the last good set (1 policies)");
	status_policies(f, true, 1, "20-bad.json: hugepages.enforce");
	start_opt(f, JOB, VMSPEC_OPT_HUGEPAGES, "none", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "contradicts '2M' enforced");
	assert_no_guest(f);

	/* As if vmmd started with the bad file: nothing is in force. */
	f = fx_renew(state);
	write_policy(f, "20-bad.json", "{\"hugepages\": {\"enforce\": 2}}");
	spec_policies_free(&f->d);
	assert_int_equal(spec_policies_load(&f->d), -EINVAL);
	status_policies(f, false, 0, "20-bad.json");
	start_job(f, JOB, "tiny", &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: the site policies on node n1 do "
				   "not load (");
	assert_no_guest(f);
	/* Fixed: jobs run again. */
	write_policy(f, "20-bad.json",
		     "{\"hugepages\": {\"enforce\": \"2M\"}}");
	assert_int_equal(spec_policies_load(&f->d), 0);
	status_policies(f, true, 1, "");
}

/* ======================================================================= */
/* checkpoints (ckpt.c)                                                     */
/* ======================================================================= */

/* A start with --vm-checkpoint, --vm-requeue when asked, and one more
 * option (VMSPEC_NOPTS: none). */
static void start_ckpt_with(struct fx *f, bool requeue, const char *lead,
			    enum vmspec_opt o, const char *v)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = JOB,
	    .start = {.job_id = JOB,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid(),
		      .image = "tiny"},
	};
	struct proto_reply rep;

	req.start.opts[VMSPEC_OPT_CHECKPOINT] = strdup("yes");
	if (requeue)
		req.start.opts[VMSPEC_OPT_REQUEUE] = strdup("yes");
	if (lead)
		req.start.opts[VMSPEC_OPT_CHECKPOINT_LEAD] = strdup(lead);
	if (o < VMSPEC_NOPTS)
		req.start.opts[o] = strdup(v);
	call(f, &req, &rep);
	proto_request_clear(&req);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
}

static void start_ckpt(struct fx *f, bool requeue, const char *lead)
{
	start_ckpt_with(f, requeue, lead, VMSPEC_NOPTS, NULL);
}

static void start_ckpt_opt(struct fx *f, enum vmspec_opt o, const char *v)
{
	start_ckpt_with(f, false, NULL, o, v);
}

static void agent_hello_flags(struct fx *f, int fd, uint32_t flags)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_u32(&b, AW_VERSION), 0);
	assert_int_equal(aw_put_u32(&b, flags), 0);
	assert_int_equal(aw_put_str(&b, "fake agent"), 0);
	agent_send(f, fd, AW_HELLO, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* The handshake of an agent that knows checkpoints, until the job is in
 * state st (ready; saving on a node being evacuated). */
static int ckpt_agent_until(struct fx *f, enum job_state st)
{
	struct frame fr;
	int fd = agent_connect(f);

	agent_expect(f, fd, AW_HELLO, &fr);
	free(fr.p);
	agent_hello_flags(f, fd, AW_HELLO_CKPT);
	agent_expect(f, fd, AW_SETUP, &fr);
	free(fr.p);
	agent_send(f, fd, AW_SETUP_OK, 0, NULL, 0);
	pump_until_state(f, st);
	return fd;
}

static int ckpt_agent(struct fx *f)
{
	int fd = ckpt_agent_until(f, JOB_READY);

	assert_true(job(f)->agent_ckpt);
	return fd;
}

/* The agent's side of a prepare: CKPT_PREPARE arrives with the flags;
 * answered OK. */
static void agent_prepare_ok(struct fx *f, int fd)
{
	struct frame fr;
	struct aw_reader r;

	agent_expect(f, fd, AW_CKPT_PREPARE, &fr);
	aw_reader_init(&r, fr.p, fr.h.len);
	/* virtio-9p: the agent must release the share. */
	assert_int_equal(aw_get_u32(&r), AW_CKPT_MOUNTS);
	assert_int_equal(aw_reader_done(&r), 0);
	free(fr.p);
	agent_send_u32(f, fd, AW_CKPT_OK, 0, AW_CKPT_PREPARE, 0, 1);
}

/* A restored guest: QEMU listens again, vmmd connects, the agent says it
 * holds the checkpoint (its processes frozen). */
static int agent_held(struct fx *f, unsigned nrestore)
{
	uint64_t end = now_ms() + WAIT_MS;
	struct fake_domain *dom;
	struct frame fr;
	int fd;

	/* The restore runs in vmmd's worker thread. */
	while (fake_hv.nrestore < nrestore || !(dom = fake_hv_domain(DOMAIN)) ||
	       !dom->running || dom->agent_fd >= 0) {
		if (now_ms() >= end)
			fail_msg("the guest was never restored");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	/* vmmd connects from its loop (retrying every 200 ms): pump until
	 * the connection waits on QEMU's socket. */
	if (!pump_until_readable(f, dom->listen_fd, WAIT_MS))
		fail_msg("vmmd never connected to the restored guest");
	fd = agent_connect(f);
	agent_expect(f, fd, AW_HELLO, &fr);
	free(fr.p);
	agent_hello_flags(
	    f, fd, AW_HELLO_SETUP_DONE | AW_HELLO_CKPT | AW_HELLO_CKPT_HELD);
	return fd;
}

/* vmmd resumes the held guest with the clock and the mounts. */
static void agent_resumed(struct fx *f, int fd, uint32_t id)
{
	struct frame fr;
	struct aw_reader r;
	int64_t t;

	agent_expect(f, fd, AW_CKPT_RESUME, &fr);
	aw_reader_init(&r, fr.p, fr.h.len);
	t = aw_get_i64(&r);
	assert_true(t >= (int64_t)time(NULL) - 5);
	assert_int_equal(aw_get_u32(&r), AW_CKPT_MOUNTS);
	assert_int_equal(aw_reader_done(&r), 0);
	free(fr.p);
	agent_send_u32(f, fd, AW_CKPT_OK, 0, AW_CKPT_RESUME, 0, 1);
	pump_until_job_state(f, id, JOB_READY);
}

static int agent_resume_as(struct fx *f, unsigned nrestore, uint32_t id)
{
	int fd = agent_held(f, nrestore);

	agent_resumed(f, fd, id);
	return fd;
}

static int agent_resume(struct fx *f, unsigned nrestore)
{
	return agent_resume_as(f, nrestore, JOB);
}

/* The save failed with the guest held (libvirt let it run on): its agent
 * answers again, holding, and vmmd thaws it; returns the agent. */
static int agent_rejoins(struct fx *f, unsigned nrestore)
{
	struct fake_domain *dom = fake_hv_domain(DOMAIN);

	close(dom->agent_fd);
	dom->agent_fd = -1;
	return agent_resume(f, nrestore);
}

static void ckpt_path(struct fx *f, char *buf, size_t len, uint32_t seq,
		      const char *file)
{
	if (seq)
		assert_int_equal(str_printf(buf, len, "%s/ckpt/%u/%u/%s",
					    f->dir, JOB, seq, file),
				 0);
	else
		assert_int_equal(
		    str_printf(buf, len, "%s/ckpt/%u", f->dir, JOB), 0);
}

/* The node's store of the fixture, opened as vmmd opens it. */
static void node_store(struct fx *f, struct ckpt_store *cs)
{
	char root[512], err[1024] = "";

	fixture_path(f, root, sizeof(root), "ckpt");
	if (ckpt_store_open(root, CKPT_STORE_NODE | CKPT_STORE_CREATE, cs, err,
			    sizeof(err)) < 0)
		fail_msg("%s", err);
}

/* The latest complete checkpoint of job id in the node's store. */
static int latest_ckpt(struct fx *f, uint32_t id, uint32_t *seq)
{
	struct ckpt_store cs = CKPT_STORE_INIT;
	int r;

	node_store(f, &cs);
	r = ckpt_store_latest(&cs, id, seq, NULL, 0);
	ckpt_store_close(&cs);
	return r;
}

/* Verifies job id's checkpoint seq in the node's store for uid. */
static int verify_ckpt(struct fx *f, uint32_t id, uint32_t seq, uint32_t uid,
		       struct ckpt_verified *v, char *err, size_t errlen)
{
	struct ckpt_store cs = CKPT_STORE_INIT;
	char dir[VMENV_MAX_PATH];
	int r, fd;

	node_store(f, &cs);
	fd = ckpt_store_open_seq(&cs, id, seq, dir, sizeof(dir), err, errlen);
	ckpt_store_close(&cs);
	if (fd < 0)
		return fd;
	r = ckpt_store_verify(fd, dir, id, uid, v, err, errlen);
	close(fd);
	return r;
}

static int checkpoint_request(struct fx *f)
{
	struct proto_request req = {.op = PROTO_OP_CHECKPOINT, .job_id = JOB};

	return client_send(f, &req, NULL, 0);
}

/* vmenvctl checkpoint, refused at once: its reply in rep. */
static void checkpoint_refused(struct fx *f, struct proto_reply *rep)
{
	int cfd = checkpoint_request(f);

	client_reply(f, cfd, rep);
	close(cfd);
	assert_int_equal(rep->kind, PROTO_REPLY_ERROR);
}

/* vmenvctl checkpoint: save, restore at once, the session goes on, the
 * checkpoint stays. */
static void test_ckpt_on_demand(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char path[512], buf[64];
	uint32_t sid;
	int afd, cfd;

	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	exec_start(f, JOB, &o, &c);
	sid = agent_expect_exec(f, afd, &e);
	aw_exec_clear(&e);
	agent_send(f, afd, AW_STARTED, sid, "\0\0\0\1", 4);
	agent_send(f, afd, AW_STDOUT, sid, "one\n", 4);
	cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	/* Saved, then restored with the XML it was created with. */
	afd = agent_resume(f, 1);
	client_reply(f, cfd, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("checkpoint: %s", rep.error);
	close(cfd);
	assert_int_equal(fake_hv.nsave, 1);
	assert_int_equal(fake_hv.nrestore, 1);
	assert_string_equal(fake_hv.restore_xml, fake_hv.last_xml);
	ckpt_path(f, path, sizeof(path), 1, "manifest.json");
	assert_true(exists(path));
	/* The same session goes on. */
	agent_send(f, afd, AW_STDOUT, sid, "two\n", 4);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send(f, afd, AW_STDERR, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_CODE, 3, 2);
	client_reply(f, c.fd, &rep); /* started */
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(rep.exit_value, 3);
	read_to_eof(f, c.out, buf, sizeof(buf));
	assert_string_equal(buf, "one\ntwo\n");
	exec_close(&c);
	assert_int_equal(log_count("checkpoint 1 saved in"), 1);
}

/* The batch script's task with its stdout and stderr in one file, as
 * Slurm's default slurm-%j.out. */
static void batch_start_as(struct fx *f, uint32_t id, const char *out,
			   struct exec_client *c)
{
	static const char *const argv[] = {"/tmp/job.sh", NULL};
	struct proto_request req = {.op = PROTO_OP_EXEC, .job_id = id};
	struct proto_exec *e = &req.exec;
	int fds[5];

	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	fds[2] = dup(fds[1]);
	fds[3] = script_fd("#!/bin/sh\ncount\n");
	fds[4] = dup(fds[1]);
	assert_true(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
	e->job_id = id;
	e->argv = xstrv(argv, &e->argc);
	e->envp = xstrv(default_env, &e->envc);
	e->cwd = strdup(f->work);
	e->merge_stderr = true;
	e->script = true;
	c->fd = client_send(f, &req, fds, 5);
	proto_request_clear(&req);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	c->in = c->out = c->err = -1;
}

static void batch_start(struct fx *f, const char *out, struct exec_client *c)
{
	batch_start_as(f, JOB, out, c);
}

static void file_is(struct fx *f, const char *path, const char *want)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		_cleanup_free_ char *text = NULL;

		if (read_file_limited(path, 4096, &text, NULL) == 0 &&
		    strcmp(text, want) == 0)
			return;
		if (now_ms() >= end)
			fail_msg("%s holds '%s', not '%s'", path,
				 text ? text : "(nothing)", want);
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
}

static void restart_slurm(struct fx *f, uint32_t restarts, uint32_t cpus)
{
	struct slurmjob_info si;
	char why[128];

	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	si.restart_count = restarts;
	si.cpus = cpus;
	fake_slurm_set(&si);
}

/* Saved before the time limit, requeued; the restarted job restores
 * instead of booting, the restarted batch step re-attaches to the running
 * script, and its output file (truncated by Slurm) holds every byte once. */
static void requeued_job(struct fx *f, const char *out, int *afd, uint32_t *sid)
{
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char err[256];

	f->d.slurm_requeue = fake_slurm_requeue;
	start_ckpt(f, true, NULL);
	*afd = ckpt_agent(f);
	batch_start(f, out, &c);
	*sid = agent_expect_exec(f, *afd, &e);
	aw_exec_clear(&e);
	agent_send(f, *afd, AW_STARTED, *sid, "\0\0\0\1", 4);
	agent_send(f, *afd, AW_STDOUT, *sid, "1\n2\n", 4);
	file_is(f, out, "1\n2\n");
	assert_int_equal(ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, *afd);
	client_reply(f, c.fd, &rep); /* started */
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_CHECKPOINTED);
	assert_string_equal(rep.error,
			    "job 42: checkpointed on node n1, requeued");
	assert_int_equal(rep.exit_value, 0);
	exec_close(&c);
	close(*afd);
	assert_int_equal(fake_slurm_requeues, 1);
	assert_int_equal(job(f)->state, JOB_SAVED);
	/* The epilog of this run. */
	stop_ok(f, JOB);
}

static void test_ckpt_requeue_restore(void **state)
{
	struct fx *f = *state;
	struct exec_client c;
	struct proto_reply rep;
	struct ckpt_verified v;
	char out[256], path[512], err[512];
	uint32_t sid;
	int afd;

	assert_int_equal(
	    str_printf(out, sizeof(out), "%s/slurm-42.out", f->work), 0);
	requeued_job(f, out, &afd, &sid);
	if (verify_ckpt(f, JOB, 1, (uint32_t)getuid(), &v, err, sizeof(err)) <
	    0)
		fail_msg("%s", err);
	assert_int_equal(v.man.nsessions, 1);
	assert_int_equal(v.man.sessions[0].id, sid);
	assert_true(v.man.sessions[0].batch);
	assert_int_equal(v.man.sessions[0].out_bytes[0], 4);
	assert_int_equal(v.man.vcpus, 2);
	ckpt_verified_clear(&v);
	/* Slurm starts the job again and truncates its output file. */
	assert_int_equal(truncate(out, 0), 0);
	restart_slurm(f, 1, 2);
	start_ckpt(f, true, NULL);
	afd = agent_resume(f, 1);
	assert_int_equal(fake_hv.nrestore, 1);
	assert_int_equal(fake_hv.ncreate, 1); /* restored, not booted */
	batch_start(f, out, &c);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	file_is(f, out, "1\n2\n");
	/* The script goes on in the same session. */
	agent_send(f, afd, AW_STDOUT, sid, "3\n", 2);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_CODE, 7, 2);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(rep.exit_value, 7);
	file_is(f, out, "1\n2\n3\n");
	exec_close(&c);
	/* Used once: gone from the store. */
	ckpt_path(f, path, sizeof(path), 0, "");
	assert_false(exists(path));
}

/* An output file opened for append (--open-mode=append) already holds
 * everything: nothing is written twice. And the restored guest's agent
 * says it holds before vmmd's loop heard that the restore ended: its
 * RESUME (with the share to mount again) waits for the restore's end. */
static void test_ckpt_restore_append_mode(void **state)
{
	struct fx *f = *state;
	struct exec_client c;
	struct proto_reply rep;
	char out[256];
	uint32_t sid;
	int afd;

	assert_int_equal(
	    str_printf(out, sizeof(out), "%s/slurm-42.out", f->work), 0);
	requeued_job(f, out, &afd, &sid);
	restart_slurm(f, 1, 2);
	fake_hv.restore_delay_ms = 600;
	start_ckpt(f, true, NULL);
	afd = agent_resume(f, 1);
	batch_start(f, out, &c);
	client_reply(f, c.fd, &rep);
	agent_send(f, afd, AW_STDOUT, sid, "3\n", 2);
	file_is(f, out, "1\n2\n3\n");
	exec_close(&c);
}

static void test_ckpt_restore_refused(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char out[256], path[512];
	uint32_t sid;
	int afd;

	assert_int_equal(str_printf(out, sizeof(out), "%s/o", f->work), 0);
	requeued_job(f, out, &afd, &sid);
	/* A smaller allocation cannot take the guest. */
	restart_slurm(f, 1, 1);
	{
		struct proto_request req = {
		    .op = PROTO_OP_START,
		    .job_id = JOB,
		    .start = {.job_id = JOB,
			      .uid = (uint32_t)getuid(),
			      .gid = (uint32_t)getgid(),
			      .image = "tiny"},
		};
		req.start.opts[VMSPEC_OPT_CHECKPOINT] = strdup("yes");
		call(f, &req, &rep);
		proto_request_clear(&req);
	}
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "holds a guest of 2 vCPUs");
	assert_contains(rep.error, "this allocation gives 1 vCPUs");
	stop_ok(f, JOB);
	/* This node cannot give the guest's CPU: the refusal names the node
	 * it was saved on, this one and why. */
	restart_slurm(f, 1, 2);
	{
		struct proto_request req = {
		    .op = PROTO_OP_START,
		    .job_id = JOB,
		    .start = {.job_id = JOB,
			      .uid = (uint32_t)getuid(),
			      .gid = (uint32_t)getgid(),
			      .image = "tiny"},
		};

		snprintf(fake_hv.cpu_refuse, sizeof(fake_hv.cpu_refuse), "*");
		req.start.opts[VMSPEC_OPT_CHECKPOINT] = strdup("yes");
		call(f, &req, &rep);
		proto_request_clear(&req);
		fake_hv.cpu_refuse[0] = '\0';
	}
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "(saved on node n1) on node n1");
	assert_contains(rep.error, "this node cannot give the guest CPU model");
	assert_int_equal(fake_hv.nrestore, 0);
	stop_ok(f, JOB);
	/* A corrupted memory image is refused by its checksum. */
	restart_slurm(f, 1, 2);
	ckpt_path(f, path, sizeof(path), 1, CKPT_MEMORY);
	write_text(path, "SAVED vmenv-n1-43\n"); /* same size */
	start_ckpt(f, true, NULL);
	pump_until_state(f, JOB_FAILED);
	assert_contains(job(f)->error, "file 'memory' is corrupted (sha256");
	assert_int_equal(fake_hv.nrestore, 0);
}

/* The guest refuses (a busy share, a failing prepare hook): no save, the
 * job goes on, the asker learns why. */
/* The agent refuses the prepare vmmd sent: errno e, the hook's reason. */
static void agent_refuse(struct fx *f, int fd, uint32_t e, const char *why)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_u32(&b, AW_CKPT_PREPARE), 0);
	assert_int_equal(aw_put_u32(&b, e), 0);
	assert_int_equal(aw_put_str(&b, why), 0);
	agent_send(f, fd, AW_CKPT_REFUSED, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* The guest refuses to prepare (files open in a share): the client that
 * asked on cfd hears why. */
static void agent_refuses_busy(struct fx *f, int afd, int cfd)
{
	struct proto_reply rep;

	agent_refuse(f, afd, EBUSY,
		     "checkpoint refused: files open in /home/u");
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_string_equal(rep.error, "job 42: checkpoint refused: files "
				       "open in /home/u");
}

static void test_ckpt_guest_refuses(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	struct frame fr;
	int afd, cfd;

	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	cfd = checkpoint_request(f);
	agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
	free(fr.p);
	agent_refuses_busy(f, afd, cfd);
	assert_int_equal(fake_hv.nsave, 0);
	assert_int_equal(job(f)->state, JOB_READY);
	assert_false(ckpt_busy(job(f)));
	/* A scheduled one that is refused is tried again in a minute, not
	 * at once over and over. */
	{
		char err[256];
		int64_t due;
		uint32_t lead;

		assert_int_equal(
		    ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
		agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
		free(fr.p);
		agent_refuse(f, afd, ECANCELED, "checkpoint refused: mpi busy");
		pump(f, 200);
		assert_int_equal(job(f)->state, JOB_READY);
		ckpt_job_due(job(f), &due, &lead);
		assert_true(due >= (int64_t)time(NULL) + 55);
		assert_false(readable(afd));
	}
	/* An agent without checkpoints is refused before anything. */
	job(f)->agent_ckpt = false;
	cfd = checkpoint_request(f);
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_contains(rep.error, "does not know checkpoints");
}

/* Disk full during the save: the previous checkpoint stays complete, the
 * half one is gone, the job ends with the reason. */
static void test_ckpt_disk_full(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char path[512], err[256];
	uint32_t seq = 0;
	int afd, cfd;

	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	afd = agent_resume(f, 1);
	client_reply(f, cfd, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	close(cfd);
	fake_hv.fail_save = -ENOSPC;
	assert_int_equal(ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	pump_until_state(f, JOB_FAILED);
	assert_string_equal(job(f)->error,
			    "job 42: checkpoint failed on node n1: fake: "
			    "cannot save: No space left on device");
	assert_int_equal(latest_ckpt(f, JOB, &seq), 0);
	assert_int_equal(seq, 1);
	ckpt_path(f, path, sizeof(path), 2, "");
	assert_false(exists(path));
}

/* The checkpoint time follows the end time Slurm reports, re-read while
 * the job runs (scontrol update TimeLimit=), and fires. */
static void test_ckpt_schedule(void **state)
{
	struct fx *f = *state;
	struct slurmjob_info si;
	char why[128];
	int64_t due;
	uint32_t lead;
	time_t now = time(NULL);
	int afd;

	f->d.cfg.checkpoint_requery_s = 1;
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	si.end_time = now + 3600;
	fake_slurm_set(&si);
	start_ckpt(f, false, "60");
	afd = ckpt_agent(f);
	ckpt_job_due(job(f), &due, &lead);
	/* 896 MiB at the default 100 MiB/s: 14 s x1.5 ... + 15 < 60. */
	assert_int_equal(lead, 60);
	assert_true(due >= now + 3540 - 2 && due <= now + 3540 + 2);
	/* The admin gives the job another hour. */
	si.end_time = now + 7200;
	fake_slurm_set(&si);
	pump(f, 1500);
	ckpt_job_due(job(f), &due, &lead);
	assert_true(due >= now + 7140 - 2 && due <= now + 7140 + 2);
	/* And takes it back: the checkpoint is due at once. */
	si.end_time = time(NULL) + 61;
	fake_slurm_set(&si);
	pump(f, 1500);
	agent_prepare_ok(f, afd);
	(void)afd;
}

/* An on-demand checkpoint that goes through: saved, restored, answered. */
static void on_demand_ok(struct fx *f, int afd)
{
	struct proto_reply rep;
	int cfd = checkpoint_request(f);

	agent_prepare_ok(f, afd);
	(void)agent_resume(f, 1);
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
}

/* Passed-through devices cannot be saved: unplugged before, this
 * allocation's plugged after; the saved guest never had them. */
static void test_ckpt_devices(void **state)
{
	struct fx *f = *state;

	on_node2s(f);
	restart_vmmd(f);
	start_ckpt_opt(f, VMSPEC_OPT_IB, "2");
	assert_int_equal(count(fake_hv.last_xml, "<hostdev "), 2);
	/* On the root bus: no expander to rebuild at the restore. */
	assert_int_equal(count(fake_hv.last_xml, "pci-expander-bus"), 0);
	on_demand_ok(f, ckpt_agent(f));
	assert_int_equal(fake_hv.ndetach, 2);
	assert_int_equal(fake_hv.nattach, 2);
	assert_contains(fake_hv.detached[0], "<driver name='vfio'/>");
	assert_string_equal(fake_hv.detached[0], fake_hv.attached[0]);
	assert_int_equal(count(fake_hv.restore_xml, "<hostdev "), 0);
}

/* The stand-in device of the live tests (checkpoint_standin_device): in
 * the created guest, out of the saved one, unplugged and plugged like a
 * VF. */
static void test_ckpt_standin(void **state)
{
	struct fx *f = *state;

	snprintf(f->d.cfg.checkpoint_standin_device,
		 sizeof(f->d.cfg.checkpoint_standin_device), "yes");
	start_ckpt(f, false, NULL);
	assert_int_equal(count(fake_hv.last_xml, DOMXML_STANDIN_GONE), 1);
	on_demand_ok(f, ckpt_agent(f));
	assert_int_equal(fake_hv.ndetach, 1);
	assert_int_equal(fake_hv.nattach, 1);
	assert_string_equal(fake_hv.detached[0], DOMXML_STANDIN_XML);
	assert_string_equal(fake_hv.attached[0], DOMXML_STANDIN_XML);
	assert_int_equal(count(fake_hv.restore_xml, DOMXML_STANDIN_GONE), 0);
}

/* --- retention and --vm-restore (ckpt_keep.c, ckpt_source.c) ------------- */

/* Slurm's word on a job: over (it will not run again) or still to run. */
static void slurm_state(uint32_t id, bool finished)
{
	struct slurmjob_info si;
	char why[128];

	assert_int_equal(fake_slurm_lookup(id, NODE, &si, why, sizeof(why)), 0);
	si.finished = finished;
	si.active = !finished;
	si.ending = finished;
	fake_slurm_set(&si);
}

/* A start with options given as name, value, ..., NULL. */
static void start_with(struct fx *f, uint32_t id, uint32_t uid,
		       const char *const *kv, struct proto_reply *rep)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = id,
	    .start = {.job_id = id,
		      .uid = uid,
		      .gid = (uint32_t)getgid(),
		      .image = "tiny"},
	};

	for (; kv && kv[0]; kv += 2) {
		int o = vmspec_option_by_name(kv[0]);

		assert_true(o >= 0);
		req.start.opts[o] = strdup(kv[1]);
	}
	call(f, &req, rep);
	proto_request_clear(&req);
}

/* Job 42's batch script wrote "1\n2\n", the guest was saved at its time
 * limit and the job ends (not requeued); Slurm then says it is over. The
 * record stays until the caller stops it. Returns the script's session. */
static uint32_t ended_after_save(struct fx *f, const char *const *opts,
				 const char *out, const char *fate)
{
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char err[256];
	uint32_t sid;
	int afd;

	slurm_state(JOB, false);
	start_with(f, JOB, (uint32_t)getuid(), opts, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
	afd = ckpt_agent(f);
	batch_start(f, out, &c);
	sid = agent_expect_exec(f, afd, &e);
	aw_exec_clear(&e);
	agent_send(f, afd, AW_STARTED, sid, "\0\0\0\1", 4);
	agent_send(f, afd, AW_STDOUT, sid, "1\n2\n", 4);
	file_is(f, out, "1\n2\n");
	assert_int_equal(ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	client_reply(f, c.fd, &rep); /* started */
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_CHECKPOINTED);
	assert_contains(rep.error, "job 42: checkpointed on node n1");
	assert_contains(rep.error, " (checkpoint ");
	/* A checkpointing guest has no bulk ports (bulk.h). */
	assert_int_equal(count(fake_hv.last_xml, "org.vmenv.bulk."), 0);
	assert_contains(rep.error, fate);
	assert_int_equal(rep.exit_value, 125);
	exec_close(&c);
	slurm_state(JOB, true);
	return sid;
}

static uint32_t ended_with_checkpoint(struct fx *f, bool keep, const char *out)
{
	const char *const opts[] = {"vm-checkpoint", "yes",
				    "vm-checkpoint-keep", keep ? "yes" : "no",
				    NULL};

	return ended_after_save(f, opts, out,
				keep ? "kept for --vm-restore"
				     : "removed at the job's end: not kept");
}

static bool has_ckpt(struct fx *f, uint32_t id)
{
	uint32_t seq;

	return latest_ckpt(f, id, &seq) == 0;
}

/* --vm-requeue, and Slurm does not requeue the job (slurmctld down,
 * sbatch --no-requeue): it ends, and the checkpoint it was saved to go on
 * from is kept for --vm-restore instead of going with it; over the
 * user's kept limit it goes, the message saying why. */
static void test_ckpt_requeue_refused_keeps(void **state)
{
	const char *const opts[] = {"vm-checkpoint", "yes", "vm-requeue", "yes",
				    NULL};
	struct fx *f = *state;
	char out[256];

	f->d.slurm_requeue = fake_slurm_requeue;
	fake_slurm_requeue_fail = -EPERM;
	assert_int_equal(
	    str_printf(out, sizeof(out), "%s/slurm-42.out", f->work), 0);
	ended_after_save(f, opts, out,
			 "fake: Slurm refused to requeue job 42 (checkpoint ");
	assert_int_equal(log_count("kept for --vm-restore, as Slurm did not "
				   "requeue the job"),
			 1);
	stop_ok(f, JOB);
	assert_true(has_ckpt(f, JOB));

	f = fx_renew(state);
	f->d.slurm_requeue = fake_slurm_requeue;
	fake_slurm_requeue_fail = -EPERM;
	f->d.cfg.checkpoint_keep_max = 0;
	assert_int_equal(
	    str_printf(out, sizeof(out), "%s/slurm-42.out", f->work), 0);
	ended_after_save(f, opts, out,
			 "removed at the job's end: not kept (uid ");
	stop_ok(f, JOB);
	assert_false(has_ckpt(f, JOB));
}

/* A start with --vm-restore that fails before anything of a guest exists;
 * the record (with the reason) is then stopped. */
static void restore_refused(struct fx *f, uint32_t id, uint32_t uid,
			    const char *from, const char *want)
{
	const char *const opts[] = {"vm-restore", from, NULL};
	unsigned nrestore = fake_hv.nrestore, ncreate = fake_hv.ncreate;
	struct proto_reply rep;
	char path[512];

	print_message("--vm-restore=%s: %s\n", from, want);
	start_with(f, id, uid, opts, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, want);
	assert_int_equal(fake_hv.nrestore, nrestore);
	assert_int_equal(fake_hv.ncreate, ncreate);
	snprintf(path, sizeof(path), "%s/run/jobs/%u", f->dir, id);
	assert_false(exists(path));
	stop_ok(f, id);
}

/* Job 43 goes on from job 42's kept checkpoint: the guest (under the name
 * libvirt insists on, owned by job 43 in its metadata) is restored, the
 * batch step of job 43 takes over the script's session, its output file
 * gets only what the script prints from now on; reconcile, a vmmd restart
 * and the guest's events treat the guest as job 43's. */
static void test_ckpt_restore_other_job(void **state)
{
	struct fx *f = *state;
	const char *const opts[] = {"vm-restore", "42", NULL};
	struct exec_client c;
	struct proto_reply rep;
	char out42[256], out43[256];
	uint32_t sid;
	int afd;

	assert_int_equal(
	    str_printf(out42, sizeof(out42), "%s/slurm-42.out", f->work), 0);
	assert_int_equal(
	    str_printf(out43, sizeof(out43), "%s/slurm-43.out", f->work), 0);
	sid = ended_with_checkpoint(f, true, out42);
	/* Job 42's epilog has not come yet: its record (checkpointed) stays
	 * while job 43 starts. */
	slurm_job(f, 43, (uint32_t)getuid());
	start_with(f, 43, (uint32_t)getuid(), opts, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
	afd = agent_resume_as(f, 1, 43);
	assert_int_equal(fake_hv.ncreate, 1); /* job 42's boot only */
	assert_contains(fake_hv.restore_xml, "<name>" DOMAIN "</name>");
	assert_contains(fake_hv.restore_xml, "id='43' node='n1'");
	/* A restored guest has the saved one's devices: no bulk ports. */
	assert_int_equal(count(fake_hv.restore_xml, "org.vmenv.bulk."), 0);
	assert_string_equal(job_find(&f->d, 43)->domain, DOMAIN);
	assert_int_equal(log_count("job 43: restores job 42's checkpoint 1"),
			 1);
	batch_start_as(f, 43, out43, &c);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	agent_send(f, afd, AW_STDOUT, sid, "3\n", 2);
	file_is(f, out43, "3\n");
	file_is(f, out42, "1\n2\n");
	/* Job 42's epilog: the guest of its name is job 43's now. */
	stop_ok(f, JOB);
	assert_true(fake_hv_domain(DOMAIN)->running);
	assert_int_equal(log_count("job 42: guest " DOMAIN " now belongs to "
				   "another job; left alone"),
			 1);
	/* Kept: neither the restore nor the old job's end removes it. */
	assert_true(has_ckpt(f, JOB));
	/* Another job cannot restore it while this guest runs under the
	 * saved name. */
	slurm_job(f, 44, (uint32_t)getuid());
	restore_refused(f, 44, (uint32_t)getuid(), "42",
			"job 44: --vm-restore=42: the guest of checkpoint ");
	assert_int_equal(log_count("(" DOMAIN ") already runs on node n1"), 1);
	/* ... and its failure left that guest alone. */
	assert_true(fake_hv_domain(DOMAIN)->running);
	/* Reconcile knows the guest is job 43's. */
	job_reconcile(&f->d, false);
	assert_true(fake_hv_domain(DOMAIN)->running);
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_CODE, 0, 2);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	exec_close(&c);
	/* A restarted vmmd adopts it as job 43's. */
	restart_vmmd(f);
	assert_true(fake_hv_domain(DOMAIN)->running);
	assert_non_null(job_find(&f->d, 43));
	assert_string_equal(job_find(&f->d, 43)->domain, DOMAIN);
	assert_null(job_find(&f->d, JOB));
	/* Its events are job 43's. */
	fake_hv_emit(DOMAIN, HV_EV_CRASHED);
	pump_until_job_state(f, 43, JOB_FAILED);
	assert_contains(job_find(&f->d, 43)->error,
			"job 43: guest crashed on node n1");
	stop_ok(f, 43);
	assert_true(has_ckpt(f, JOB));
}

/* What cannot be restored fails the new job at its start with the reason,
 * before anything of a guest exists. */
static void test_ckpt_restore_refused_other(void **state)
{
	struct fx *f = *state;
	uint32_t me = (uint32_t)getuid();
	char out[256], path[512];

	assert_int_equal(str_printf(out, sizeof(out), "%s/o", f->work), 0);
	slurm_job(f, 43, me);
	restore_refused(f, 43, me, "42",
			"job 43: --vm-restore=42: job 42 has not ended "
			"(pending or running)");
	restore_refused(f, 43, me, "43",
			"job 43: --vm-restore=43 names the job itself");
	slurm_state(JOB, true);
	fixture_path(f, path, sizeof(path), "ckpt");
	{
		char want[1024];

		snprintf(want, sizeof(want),
			 "job 43: --vm-restore=42: no checkpoint of job 42 in "
			 "%s (none taken, not kept with --vm-checkpoint-keep, "
			 "already restored, or past the retention time)",
			 path);
		restore_refused(f, 43, me, "42", want);
	}
	/* What an interrupted save leaves. */
	fixture_path(f, path, sizeof(path), "ckpt/42/5");
	assert_int_equal(mkdir_p(path, 0700), 0);
	restore_refused(f, 43, me, "42",
			"ckpt/42 holds no complete checkpoint "
			"of job 42 (an interrupted save)");
	fixture_path(f, path, sizeof(path), "ckpt/42");
	assert_int_equal(rm_rf(path), 0);
	/* Not kept: removed at the job's end. */
	ended_with_checkpoint(f, false, out);
	stop_ok(f, JOB);
	assert_false(has_ckpt(f, JOB));
	assert_int_equal(log_count("job 42 has ended and did not ask to keep "
				   "its checkpoints"),
			 1);
	restore_refused(f, 43, me, "42", "no checkpoint of job 42 in ");
	/* Kept, but another user's. */
	ended_with_checkpoint(f, true, out);
	stop_ok(f, JOB);
	assert_true(has_ckpt(f, JOB));
	/* The checks of a requeue restore, naming both jobs and the value. */
	{
		struct slurmjob_info si;
		char why[128], want[1024];

		assert_int_equal(
		    fake_slurm_lookup(43, NODE, &si, why, sizeof(why)), 0);
		si.cpus = 1;
		fake_slurm_set(&si);
		fixture_path(f, path, sizeof(path), "ckpt/42/1");
		snprintf(want, sizeof(want),
			 "job 43: job 42's checkpoint %s holds a guest of 2 "
			 "vCPUs and 896 MiB, but this allocation gives 1 vCPUs "
			 "and 896 MiB on node n1",
			 path);
		restore_refused(f, 43, me, "42", want);
		si.cpus = 2;
		/* Another working directory: the guest has the old one
		 * mounted, its processes' cwd and open files in it. */
		snprintf(si.work_dir, sizeof(si.work_dir), "/tmp");
		fake_slurm_set(&si);
		snprintf(want, sizeof(want),
			 "job 43: job 42's checkpoint %s was taken with the "
			 "working directory %s; this job's is /tmp (submit it "
			 "from there)",
			 path, f->work);
		restore_refused(f, 43, me, "42", want);
		snprintf(si.work_dir, sizeof(si.work_dir), "%s", f->work);
		fake_slurm_set(&si);
	}
	slurm_job(f, 44, OTHER_UID);
	restore_refused(f, 44, OTHER_UID, "42",
			"job 44: --vm-restore=42: job 42 is another user's");
	/* Slurm has forgotten job 42: the manifest's owner decides. */
	fake_slurm_reset();
	slurm_job(f, 44, OTHER_UID);
	restore_refused(f, 44, OTHER_UID, "42", "/ckpt/42/1 is not yours");
	/* A site policy may forbid restores. */
	slurm_job(f, 43, me);
	write_policy(f, "10-no.json", "{\"restore_from\": {\"enforce\": 0}}");
	assert_int_equal(spec_policies_load(&f->d), 0);
	restore_refused(f, 43, me, "42",
			"restore_from: 42 contradicts 0 enforced by policy");
	assert_true(has_ckpt(f, JOB));
	assert_int_equal(fake_hv.nrestore, 0);
}

/* A checkpoint that is not kept but survived its job's end (slurmctld
 * away at the time) is consumed by the restore that uses it. */
static void test_ckpt_restore_consumes(void **state)
{
	struct fx *f = *state;
	const char *const opts[] = {"vm-restore", "42", NULL};
	struct proto_reply rep;
	char out[256];

	assert_int_equal(str_printf(out, sizeof(out), "%s/o", f->work), 0);
	ended_with_checkpoint(f, false, out);
	fake_slurm_fail = -EHOSTUNREACH;
	stop_ok(f, JOB);
	fake_slurm_fail = 0;
	assert_true(has_ckpt(f, JOB));
	slurm_job(f, 43, (uint32_t)getuid());
	start_with(f, 43, (uint32_t)getuid(), opts, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
	agent_resume_as(f, 1, 43);
	assert_false(has_ckpt(f, JOB));
	slurm_job(f, 44, (uint32_t)getuid());
	restore_refused(f, 44, (uint32_t)getuid(), "42",
			"no checkpoint of job 42 in ");
}

static void test_ckpt_fate(void **state)
{
	static const struct {
		struct ckpt_fate_in in;
		enum ckpt_fate want;
	} cases[] = {
	    /* slurmctld away: nothing goes */
	    {{-EHOSTUNREACH, false, true, false, 0}, CKPT_STAYS},
	    {{-EHOSTUNREACH, false, false, false, 0}, CKPT_STAYS},
	    /* the job may still run (pending, requeued, running) */
	    {{0, false, true, false, 0}, CKPT_STAYS},
	    {{0, false, true, true, 0}, CKPT_STAYS},
	    /* over: not kept */
	    {{0, true, true, false, 1000}, CKPT_GOES_ENDED},
	    {{-ENOENT, false, true, false, 1000}, CKPT_GOES_ENDED},
	    {{-ENOENT, false, false, true, 1000}, CKPT_GOES_ENDED},
	    /* over, kept: until the retention time from its save */
	    {{0, true, true, true, 1000}, CKPT_STAYS},
	    {{-ENOENT, false, true, true, 1000 - 99}, CKPT_STAYS},
	    {{-ENOENT, false, true, true, 1000 - 100}, CKPT_GOES_EXPIRED},
	    {{0, true, true, true, 0}, CKPT_GOES_EXPIRED},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		print_message("case %zu\n", i);
		assert_int_equal(ckpt_fate(&cases[i].in, 1000, 100),
				 cases[i].want);
	}
}

/* A complete checkpoint of job id in the node's store. */
static void put_ckpt(struct fx *f, uint32_t id, bool keep, int64_t created)
{
	struct ckpt_store cs = CKPT_STORE_INIT;
	struct ckpt_manifest m = {0};
	char dir[512], p[600], err[512] = "";
	uint32_t seq;
	int fd;

	node_store(f, &cs);
	fd =
	    ckpt_store_begin(&cs, id, &seq, dir, sizeof(dir), err, sizeof(err));
	ckpt_store_close(&cs);
	if (fd < 0)
		fail_msg("%s", err);
	snprintf(p, sizeof(p), "%s/%s", dir, CKPT_MEMORY);
	write_text(p, "SAVED x\n");
	m.job_id = id;
	m.uid = (uint32_t)getuid();
	m.seq = seq;
	m.keep = keep;
	m.created = created;
	m.spec = strdup("");
	m.domain_xml = strdup("");
	if (ckpt_store_commit(fd, dir, &m, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	ckpt_manifest_clear(&m);
	close(fd);
}

/* The store's sweep (vmmd start, hourly): ended jobs' checkpoints go
 * unless kept; kept ones go after the retention time; nothing goes while
 * Slurm may run the job or cannot be asked. */
static void test_ckpt_retention(void **state)
{
	struct fx *f = *state;
	int64_t now = (int64_t)time(NULL);
	int64_t old = now - f->d.cfg.checkpoint_retention_s - 1;

	assert_int_equal(f->d.cfg.checkpoint_retention_s, 7 * 86400);
	put_ckpt(f, 50, false, now); /* unknown to Slurm */
	put_ckpt(f, 51, true, now);
	put_ckpt(f, 52, true, old);
	put_ckpt(f, 53, false, now); /* over */
	put_ckpt(f, 54, false, old); /* running */
	put_ckpt(f, 55, true, old);  /* pending */
	slurm_job(f, 53, (uint32_t)getuid());
	slurm_state(53, true);
	slurm_job(f, 54, (uint32_t)getuid());
	slurm_job(f, 55, (uint32_t)getuid());
	slurm_state(55, false);
	fake_slurm_fail = -EHOSTUNREACH;
	ckpt_sweep(&f->d);
	fake_slurm_fail = 0;
	for (uint32_t id = 50; id <= 55; id++)
		assert_true(has_ckpt(f, id));
	ckpt_sweep(&f->d);
	assert_false(has_ckpt(f, 50));
	assert_true(has_ckpt(f, 51));
	assert_false(has_ckpt(f, 52));
	assert_false(has_ckpt(f, 53));
	assert_true(has_ckpt(f, 54));
	assert_true(has_ckpt(f, 55));
	assert_int_equal(log_count("checkpoints: job 50 is unknown to Slurm "
				   "and did not ask to keep"),
			 1);
	assert_int_equal(log_count("checkpoints: job 52 has ended and its "
				   "kept checkpoint is older than 604800 s"),
			 1);
	assert_int_equal(log_count("checkpoints: job 53 has ended and did "
				   "not ask"),
			 1);
	/* A vmmd start sweeps too. */
	put_ckpt(f, 56, false, now);
	restart_vmmd(f);
	assert_false(has_ckpt(f, 56));
	assert_true(has_ckpt(f, 51));
}

/* An on-demand checkpoint of a job that does not keep its checkpoints
 * stays while the job may still run (a requeue after a node failure
 * restores it) and goes at the job's end; kept, it outlives the job. */
static void test_ckpt_job_end(void **state)
{
	static const struct {
		bool keep, finished, stays;
	} cases[] = {
	    {false, false, true}, /* requeued: Slurm says pending */
	    {false, true, false},
	    {true, true, true},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *const opts[] = {"vm-checkpoint", "yes",
					    "vm-checkpoint-keep",
					    cases[i].keep ? "yes" : "no", NULL};
		struct proto_reply rep;
		int afd, cfd;

		if (i)
			f = fx_renew(state);
		start_with(f, JOB, (uint32_t)getuid(), opts, &rep);
		assert_int_equal(rep.kind, PROTO_REPLY_OK);
		afd = ckpt_agent(f);
		cfd = checkpoint_request(f);
		agent_prepare_ok(f, afd);
		agent_resume(f, 1);
		client_reply(f, cfd, &rep);
		assert_int_equal(rep.kind, PROTO_REPLY_OK);
		close(cfd);
		/* Not consumed by the job's own going on. */
		assert_true(has_ckpt(f, JOB));
		slurm_state(JOB, cases[i].finished);
		stop_ok(f, JOB);
		assert_int_equal(has_ckpt(f, JOB), cases[i].stays);
	}
}

/* ======================================================================= */
/* multi-node checkpoints (ckpt.c, ckpt_coord.c)                           */
/* ======================================================================= */

/* This vmmd runs node index (0 or 1) of a 3-node job; the test plays the
 * other two nodes' vmmds, through the coordination files they share in the
 * store (docs/checkpoint.md, "Multi-node jobs"). */
static void mn_job(struct fx *f, uint32_t index)
{
	struct slurmjob_info si;
	char why[256];

	multinode_job(f);
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	snprintf(si.nodes, sizeof(si.nodes), "%s",
		 index == 0 ? NODE ",n2,n3" : "n0," NODE ",n2");
	si.node_index = index;
	/* Its checkpoint is due in about 2 h: never during a test. */
	si.end_time = time(NULL) + 7200;
	fake_slurm_set(&si);
}

/* The job's coordination directory, as another node's vmmd opens it. */
static void mn_coord(struct fx *f, struct ckpt_coord *co)
{
	char root[512], err[1024] = "";

	fixture_path(f, root, sizeof(root), "ckpt");
	if (ckpt_coord_open(root, JOB, true, co, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void mn_path(struct fx *f, char *buf, size_t len, const char *name)
{
	assert_int_equal(
	    str_printf(buf, len, "%s/ckpt/coord/%u/%s", f->dir, JOB, name), 0);
}

/* The coordination file name holds want (waiting for it while vmmd's
 * loop runs). */
static void mn_file_is(struct fx *f, const char *name, const char *want)
{
	char path[512];

	mn_path(f, path, sizeof(path), name);
	file_is(f, path, want);
}

static bool mn_exists(struct fx *f, const char *name)
{
	char path[512];

	mn_path(f, path, sizeof(path), name);
	return exists(path);
}

/* Another node's mark. */
static void mn_mark(struct ckpt_coord *co, uint32_t g, const char *what,
		    uint32_t node, const char *text)
{
	assert_int_equal(ckpt_coord_mark(co, g, what, node, text), 0);
}

/* vmmd's loop runs for ms; then true when it sent the agent nothing but
 * HELLOs, CREDITs and RELEASEs (read and dropped). */
static bool agent_quiet(struct fx *f, int fd, int ms)
{
	struct frame fr;
	bool quiet = true;

	pump(f, ms);
	while (readable(fd)) {
		agent_recv(f, fd, &fr);
		if (fr.h.type != AW_HELLO && fr.h.type != AW_CREDIT &&
		    fr.h.type != AW_RELEASE) {
			print_message("vmmd sent the agent %s\n",
				      aw_type_name(fr.h.type));
			quiet = false;
		}
		free(fr.p);
	}
	return quiet;
}

/* A file or directory of node 1's part of the store. */
static void mn_node1_path(struct fx *f, char *buf, size_t len, const char *sub)
{
	assert_int_equal(
	    str_printf(buf, len, "%s/ckpt/n1/%u%s", f->dir, JOB, sub), 0);
}

/* A checkpoint of the job in a part of the store (sub: "" for node 0's,
 * "n1/" for node 1's) that is none: its manifest is not one. Found by
 * whatever looks for the store's newest checkpoint. */
static void mn_decoy(struct fx *f, const char *sub, uint32_t seq)
{
	char path[512];

	assert_int_equal(
	    str_printf(path, sizeof(path), "%s/ckpt/%s", f->dir, sub), 0);
	if (!exists(path))
		assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(
	    str_printf(path, sizeof(path), "%s/ckpt/%s%u", f->dir, sub, JOB),
	    0);
	if (!exists(path))
		assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(str_printf(path, sizeof(path), "%s/ckpt/%s%u/%u",
				    f->dir, sub, JOB, seq),
			 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(str_printf(path, sizeof(path),
				    "%s/ckpt/%s%u/%u/" CKPT_MANIFEST, f->dir,
				    sub, JOB, seq),
			 0);
	assert_int_equal(write_file_atomic(path, "{}\n", 3, 0600), 0);
}

/* This vmmd runs node index of the 3-node job, its guest up; returns its
 * agent (co, unless NULL: the coordination directory, opened). */
static int mn_started(struct fx *f, uint32_t index, bool requeue,
		      struct ckpt_coord *co)
{
	int afd;

	mn_job(f, index);
	start_ckpt(f, requeue, NULL);
	afd = ckpt_agent(f);
	if (co)
		mn_coord(f, co);
	return afd;
}

/* Node 0, vmenvctl checkpoint (its connection in *cfd): its guest holds
 * for group 1; returns the agent. */
static int mn_first_holds(struct fx *f, struct ckpt_coord *co, int *cfd)
{
	int afd = mn_started(f, 0, false, NULL);

	*cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.frozen.0", NODE);
	mn_coord(f, co);
	return afd;
}

/* Node X's guest cannot hold: its vmmd abandons group 1, and vmmd asks
 * this node's guest to go on. */
static void mn_nodex_abandons(struct fx *f, struct ckpt_coord *co, int afd)
{
	struct frame fr;

	assert_int_equal(ckpt_coord_decide(co, 1,
					   "abort nodeX its prepare hook "
					   "failed\n"),
			 1);
	agent_expect(f, afd, AW_CKPT_RESUME, &fr);
	free(fr.p);
}

/* The other two nodes' marks what of group g, each with its node's name
 * (this node is self, of mn_job's node list). */
static void mn_peers(struct ckpt_coord *co, uint32_t g, const char *what,
		     uint32_t self)
{
	static const char *const names[2][3] = {{NODE, "n2", "n3"},
						{"n0", NODE, "n2"}};

	for (uint32_t i = 0; i < 3; i++)
		if (i != self)
			mn_mark(co, g, what, i, names[self][i]);
}

/* Nodes 0 and 2 saved their guests of group g (checkpoints 3 and 5), as
 * node 1 sees it. */
static void mn_peers_saved(struct ckpt_coord *co, uint32_t g)
{
	mn_mark(co, g, "saved", 0, "3\n");
	mn_mark(co, g, "saved", 2, "5\n");
}

/* The first node's verdict on group g after its requeue (why: goon's
 * reason). */
static void mn_verdict(struct ckpt_coord *co, uint32_t g, enum ckpt_verdict v,
		       const char *why)
{
	assert_int_equal(ckpt_coord_verdict(co, g, v, why), 0);
}

/* Node 1's job ends and Slurm requeues it (a node failed): its guest is
 * restored from group 1 (the nrestore-th restore of the test) and resumes
 * once the other nodes' are back. */
static void mn_requeued_restores(struct fx *f, struct ckpt_coord *co,
				 unsigned nrestore)
{
	int afd;

	stop_ok(f, JOB);
	restart_slurm(f, 1, 2);
	start_ckpt(f, true, NULL);
	afd = agent_held(f, nrestore);
	assert_int_equal(log_count("restores node 1's guest of checkpoint "
				   "group 1"),
			 1);
	mn_peers(co, 1, "back1", 1);
	agent_resumed(f, afd, JOB);
}

/* This node decided group g complete: the first node then requeues the
 * job and says so. */
static void mn_first_requeued(struct fx *f, struct ckpt_coord *co, uint32_t g)
{
	uint64_t end = now_ms() + WAIT_MS;
	char name[32];

	snprintf(name, sizeof(name), "g%u.outcome", g);
	while (!mn_exists(f, name)) {
		if (now_ms() >= end)
			fail_msg("no outcome of group %u", g);
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	mn_verdict(co, g, CKPT_VERDICT_REQUEUED, NULL);
}

/* A group the first node planned and decided (its outcome text): an
 * earlier run's; returns it. */
static uint32_t mn_decided(struct ckpt_coord *co, const char *text)
{
	uint32_t g;

	assert_int_equal(ckpt_coord_plan(co, 3, false, &g), 0);
	assert_int_equal(ckpt_coord_decide(co, g, text), 1);
	return g;
}

/* Node 0 of a 3-node job, vmenvctl checkpoint: it plans group 1 (the job
 * goes on after it); its guest holds, and is saved only once the other
 * nodes' guests hold too; the outcome is decided only once every node's
 * is saved; the restored guest goes on only once every node's is back;
 * then the client hears that it is done. */
static void test_ckpt_multinode_first(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct proto_reply rep;
	char path[512];
	int64_t due;
	uint32_t lead;
	int afd, cfd;

	afd = mn_started(f, 0, false, NULL);
	/* The first node schedules the job's checkpoints. */
	ckpt_job_due(job(f), &due, &lead);
	assert_true(due > (int64_t)time(NULL));
	mn_coord(f, &co);
	assert_int_equal(ckpt_coord_last_plan(&co), 0);
	cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.plan", "3 1\n");
	/* Its guest holds: marked, and not saved while the others' run. */
	mn_file_is(f, "g1.frozen.0", NODE);
	assert_true(agent_quiet(f, afd, 500));
	assert_int_equal(fake_hv.nsave, 0);
	mn_mark(&co, 1, "frozen", 1, "n2");
	assert_true(agent_quiet(f, afd, 500));
	assert_int_equal(fake_hv.nsave, 0);
	assert_int_equal(job(f)->state, JOB_SAVING);
	assert_false(readable(cfd));
	/* Every node's holds: saved, into the store itself (node 0). */
	mn_mark(&co, 1, "frozen", 2, "n3");
	mn_file_is(f, "g1.saved.0", "1\n");
	assert_int_equal(fake_hv.nsave, 1);
	assert_int_equal(log_count("every node's guest holds"), 1);
	ckpt_path(f, path, sizeof(path), 1, CKPT_MANIFEST);
	assert_true(exists(path));
	/* No outcome, no restore, while the others' saves run. */
	pump(f, 500);
	assert_false(mn_exists(f, "g1.outcome"));
	assert_int_equal(fake_hv.nrestore, 0);
	mn_mark(&co, 1, "saved", 1, "4\n");
	pump(f, 300);
	assert_false(mn_exists(f, "g1.outcome"));
	mn_mark(&co, 1, "saved", 2, "9\n");
	mn_file_is(f, "g1.outcome", "complete 3 1 4 9");
	/* Restored from what it saved; the guest holds until every node's
	 * is back. */
	afd = agent_held(f, 1);
	mn_file_is(f, "g1.back0.0", NODE);
	assert_true(agent_quiet(f, afd, 500));
	mn_mark(&co, 1, "back0", 1, "n2");
	assert_true(agent_quiet(f, afd, 500));
	assert_false(readable(cfd));
	assert_int_equal(job(f)->state, JOB_RESTORING);
	mn_mark(&co, 1, "back0", 2, "n3");
	agent_resumed(f, afd, JOB);
	client_reply(f, cfd, &rep);
	close(cfd);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("checkpoint: %s", rep.error);
	assert_int_equal(fake_hv.nsave, 1);
	assert_int_equal(fake_hv.nrestore, 1);
	assert_false(ckpt_busy(job(f)));
	/* On demand: the checkpoint stays. */
	assert_true(exists(path));
	ckpt_coord_close(&co);
	/* The first node's end keeps the coordination files while Slurm
	 * still has the job (an admin's requeue: its restart restores from
	 * them), and removes them once Slurm is done with it (then a later
	 * start of the job boots on every node). */
	slurm_state(JOB, false);
	stop_ok(f, JOB);
	mn_path(f, path, sizeof(path), "");
	assert_true(exists(path));
	slurm_state(JOB, true);
	ckpt_sweep(&f->d);
	assert_false(exists(path));
}

/* Another node abandons the group while this node's guest holds: nothing
 * is saved, the guest is thawed, the job goes on, and the client hears
 * why and from which node. A guest that refuses abandons the next group
 * for every node. */
static void test_ckpt_multinode_abandoned(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct proto_reply rep;
	struct frame fr;
	int afd, cfd;

	afd = mn_first_holds(f, &co, &cfd);
	mn_mark(&co, 1, "frozen", 1, "n2");
	/* Node 3's guest cannot hold: its vmmd decides. */
	mn_nodex_abandons(f, &co, afd);
	agent_send_u32(f, afd, AW_CKPT_OK, 0, AW_CKPT_RESUME, 0, 1);
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: checkpoint group 1 abandoned");
	assert_contains(rep.error, "nodeX");
	assert_contains(rep.error, "its prepare hook failed");
	/* Too late: nothing is saved. */
	mn_mark(&co, 1, "frozen", 2, "n3");
	assert_true(agent_quiet(f, afd, 500));
	assert_int_equal(fake_hv.nsave, 0);
	assert_int_equal(job(f)->state, JOB_READY);
	assert_false(ckpt_busy(job(f)));
	/* The first decision stands. */
	mn_file_is(f, "g1.outcome", "abort nodeX its prepare hook failed\n");
	/* The next checkpoint is group 2; this guest refuses it, and this
	 * node abandons it for every node. */
	cfd = checkpoint_request(f);
	agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
	free(fr.p);
	mn_file_is(f, "g2.plan", "3 1\n");
	agent_refuses_busy(f, afd, cfd);
	mn_file_is(f, "g2.outcome",
		   "abort " NODE " job 42: checkpoint refused: files open in "
		   "/home/u\n");
	assert_int_equal(fake_hv.nsave, 0);
	assert_int_equal(job(f)->state, JOB_READY);
	ckpt_coord_close(&co);
}

/* This node's own save fails (its store is full): it abandons the group
 * for every node, naming itself; the guest (libvirt let it run on) is
 * thawed and the job goes on, on demand as before its time limit (where
 * a one-node job's save failure ends it: here the other nodes' guests go
 * on too). */
static void test_ckpt_multinode_save_fails(void **state)
{
	static const char why[] = "job 42: checkpoint failed on node " NODE
				  ": fake: cannot save: No space left on "
				  "device";
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct proto_reply rep;
	char err[256], want[512];
	uint32_t seq;
	int afd, cfd;

	afd = mn_started(f, 0, true, &co);
	fake_hv.fail_save = -ENOSPC;
	cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.frozen.0", NODE);
	mn_peers(&co, 1, "frozen", 0);
	assert_int_equal(
	    str_printf(want, sizeof(want), "abort %s %s\n", NODE, why), 0);
	mn_file_is(f, "g1.outcome", want);
	assert_false(mn_exists(f, "g1.saved.0"));
	/* The guest's agent answers again, holding: thawed. */
	assert_non_null(fake_hv_domain(DOMAIN));
	afd = agent_rejoins(f, 0);
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_string_equal(rep.error, why);
	assert_int_equal(fake_hv.nsave, 1);
	assert_int_equal(fake_hv.nrestore, 0);
	assert_int_equal(latest_ckpt(f, JOB, &seq), -ENOENT);

	/* Its own, before the time limit: the same, then again in 60 s. */
	assert_int_equal(ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g2.plan", "3 0\n");
	mn_peers(&co, 2, "frozen", 0);
	mn_file_is(f, "g2.outcome", want);
	afd = agent_rejoins(f, 0);
	assert_int_equal(job(f)->state, JOB_READY);
	assert_false(ckpt_busy(job(f)));
	assert_int_equal(fake_slurm_requeues, 0);
	ckpt_coord_close(&co);
}

/* The first node (the test) plans group want_g, after which the job ends;
 * this node (1) sees the plan within its second, its guest prepares and
 * holds, and is saved (checkpoint seq of its part of the store) only once
 * the other two nodes' guests hold. */
static void mn_follower_saves(struct fx *f, struct ckpt_coord *co, int afd,
			      uint32_t want_g, uint32_t seq)
{
	unsigned nsave = fake_hv.nsave;
	char name[32], text[16];
	uint64_t t0;
	uint32_t g;

	assert_int_equal(ckpt_coord_plan(co, 3, false, &g), 0);
	assert_int_equal(g, want_g);
	t0 = now_ms();
	agent_prepare_ok(f, afd);
	/* It looks once a second. */
	assert_true(now_ms() - t0 < 1800);
	snprintf(name, sizeof(name), "g%u.frozen.1", g);
	mn_file_is(f, name, NODE);
	assert_true(agent_quiet(f, afd, 500));
	assert_int_equal(fake_hv.nsave, nsave);
	mn_mark(co, g, "frozen", 0, "n0");
	assert_true(agent_quiet(f, afd, 300));
	assert_int_equal(fake_hv.nsave, nsave);
	mn_mark(co, g, "frozen", 2, "n2");
	snprintf(name, sizeof(name), "g%u.saved.1", g);
	snprintf(text, sizeof(text), "%u\n", seq);
	mn_file_is(f, name, text);
	assert_int_equal(fake_hv.nsave, nsave + 1);
}

/* The restart's start request, its reply in rep (not asserted). */
static void mn_start_reply(struct fx *f, struct proto_reply *rep)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = JOB,
	    .start = {.job_id = JOB,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid(),
		      .image = "tiny"},
	};

	req.start.opts[VMSPEC_OPT_CHECKPOINT] = strdup("yes");
	req.start.opts[VMSPEC_OPT_REQUEUE] = strdup("yes");
	call(f, &req, rep);
	proto_request_clear(&req);
}

/* Node 1 in an on-demand group (go_on): saved, restored, held, and its
 * back mark written; returns the restored guest's agent. */
static int mn_follower_on_demand(struct fx *f, struct ckpt_coord *co, int afd,
				 uint32_t want_g, uint32_t seq,
				 unsigned nrestore)
{
	char name[32], text[16];
	uint32_t g;

	assert_int_equal(ckpt_coord_plan(co, 3, true, &g), 0);
	assert_int_equal(g, want_g);
	agent_prepare_ok(f, afd);
	snprintf(name, sizeof(name), "g%u.frozen.1", g);
	mn_file_is(f, name, NODE);
	mn_peers(co, g, "frozen", 1);
	snprintf(name, sizeof(name), "g%u.saved.1", g);
	snprintf(text, sizeof(text), "%u\n", seq);
	mn_file_is(f, name, text);
	mn_peers_saved(co, g);
	afd = agent_held(f, nrestore);
	snprintf(name, sizeof(name), "g%u.back%u.1", g,
		 job(f)->slurm.restart_count);
	mn_file_is(f, name, NODE);
	return afd;
}

/* Fix A: the first node went on and planned the next group before this
 * node saw its peers back: this node goes on, then takes the next plan. */
static void test_ckpt_multinode_next_plan(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct frame fr;
	uint32_t g;
	int afd;

	afd = mn_started(f, 1, true, &co);
	afd = mn_follower_on_demand(f, &co, afd, 1, 1, 1);
	assert_int_equal(ckpt_coord_plan(&co, 3, true, &g), 0);
	pump(f, 1100); /* this node's watch sees group 2's plan */
	mn_peers(&co, 1, "back0", 1);
	agent_resumed(f, afd, JOB);
	agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
	free(fr.p);
	assert_false(mn_exists(f, "g2.outcome"));
	ckpt_coord_close(&co);
}

/* Fix B: restored once (the checkpoints used), then requeued by Slurm
 * again before another complete group: every node boots, as a one-node
 * job does. */
static void test_ckpt_multinode_used_boots(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct proto_reply rep;
	int afd;

	afd = mn_started(f, 1, true, &co);
	mn_follower_saves(f, &co, afd, 1, 1);
	mn_peers_saved(&co, 1);
	mn_first_requeued(f, &co, 1);
	pump_until_state(f, JOB_SAVED);
	stop_ok(f, JOB);
	restart_slurm(f, 1, 2);
	start_ckpt(f, true, NULL);
	afd = agent_held(f, 1);
	mn_peers(&co, 1, "back1", 1);
	agent_resumed(f, afd, JOB);
	stop_ok(f, JOB);
	restart_slurm(f, 2, 2);
	mn_start_reply(f, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("restart 2: %s", rep.error);
	afd = ckpt_agent(f);
	assert_int_equal(fake_hv.ncreate, 2);
	assert_int_equal(fake_hv.nrestore, 1);
	ckpt_coord_close(&co);
}

/* Fix C: a group abandoned after this node's save leaves the checkpoint
 * the last complete group names; the abandoned save goes; a requeue
 * restores the complete group. */
static void test_ckpt_multinode_abandoned_keeps(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	char path[512];
	int afd;

	afd = mn_started(f, 1, true, &co);
	afd = mn_follower_on_demand(f, &co, afd, 1, 1, 1);
	mn_peers(&co, 1, "back0", 1);
	agent_resumed(f, afd, JOB);
	/* Group 2: this node saves, node 2 cannot. */
	mn_follower_saves(f, &co, afd, 2, 2);
	assert_int_equal(ckpt_coord_decide(&co, 2, "abort n2 disk full\n"), 1);
	afd = agent_resume(f, 2);
	mn_node1_path(f, path, sizeof(path), "/1/" CKPT_MANIFEST);
	assert_true(exists(path));
	mn_node1_path(f, path, sizeof(path), "/2");
	assert_false(exists(path));
	/* Slurm requeues the job (a node failed). */
	mn_requeued_restores(f, &co, 3);
	ckpt_coord_close(&co);
}

/* Fix D: another node's reason, as the client reads it. */
static void test_ckpt_multinode_abort_text(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct proto_reply rep;
	int afd, cfd;

	afd = mn_first_holds(f, &co, &cfd);
	mn_nodex_abandons(f, &co, afd);
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_string_equal(rep.error, "job 42: checkpoint group 1 abandoned: "
				       "node nodeX: its prepare hook failed");
	ckpt_coord_close(&co);
}

/* Fix E: the first node's own save, at its time (due at once), fails:
 * the guest goes on and the save is tried again in a minute, not at
 * once. */
static void test_ckpt_multinode_retry(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct slurmjob_info si;
	char why[256];
	int64_t due;
	uint32_t lead;
	int afd;

	mn_job(f, 0);
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	si.end_time = time(NULL) + 3; /* within the lead: due at once */
	fake_slurm_set(&si);
	start_ckpt(f, true, NULL);
	afd = ckpt_agent_until(f, JOB_SAVING);
	mn_coord(f, &co);
	fake_hv.fail_save = -ENOSPC;
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.plan", "3 0\n");
	mn_peers(&co, 1, "frozen", 0);
	pump_until_readable(f, fake_hv_domain(DOMAIN)->listen_fd, WAIT_MS);
	assert_true(mn_exists(f, "g1.outcome"));
	afd = agent_rejoins(f, 0);
	assert_true(agent_quiet(f, afd, 1500));
	assert_false(mn_exists(f, "g2.plan"));
	ckpt_job_due(job(f), &due, &lead);
	assert_true(due >= (int64_t)time(NULL) + 55);
	ckpt_coord_close(&co);
}

/* Node 1 of a 3-node job: no checkpoint of its own, vmenvctl checkpoint
 * refused; it follows the first node's plan, into its own part of the
 * store, and once the group is complete its sessions end (the first node
 * requeues the job, not this one). */
static void test_ckpt_multinode_follower(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char path[512];
	int64_t due;
	uint32_t lead, sid;
	int afd;

	f->d.slurm_requeue = fake_slurm_requeue;
	afd = mn_started(f, 1, true, NULL);
	exec_start(f, JOB, &o, &c);
	sid = agent_expect_exec(f, afd, &e);
	aw_exec_clear(&e);
	agent_send(f, afd, AW_STARTED, sid, "\0\0\0\1", 4);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	ckpt_job_due(job(f), &due, &lead);
	assert_int_equal(due, 0);
	checkpoint_refused(f, &rep);
	assert_contains(rep.error, "job 42: checkpoint refused: node " NODE
				   " is node 1 of the job's 3; its first "
				   "node's vmmd checkpoints the job");
	/* Nothing happens without a plan. */
	assert_true(agent_quiet(f, afd, 1200));
	mn_coord(f, &co);
	assert_int_equal(ckpt_coord_last_plan(&co), 0);
	mn_follower_saves(f, &co, afd, 1, 1);
	/* Into node 1's part of the store, not node 0's. */
	mn_node1_path(f, path, sizeof(path), "/1/" CKPT_MANIFEST);
	assert_true(exists(path));
	ckpt_path(f, path, sizeof(path), 0, "");
	assert_false(exists(path));
	/* Saved: waits for the group's outcome. */
	assert_false(readable(c.fd));
	assert_false(mn_exists(f, "g1.outcome"));
	mn_peers_saved(&co, 1);
	assert_int_equal(ckpt_coord_decide(&co, 1, "complete 3 3 1 5\n"), 1);
	/* Complete: its part ends only once the first node said what
	 * Slurm did with the job. */
	pump(f, 1200);
	assert_false(readable(c.fd));
	assert_int_not_equal(job(f)->state, JOB_SAVED);
	mn_verdict(&co, 1, CKPT_VERDICT_REQUEUED, NULL);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_CHECKPOINTED);
	assert_string_equal(rep.error,
			    "job 42: checkpointed on node " NODE
			    " (node 1 of 3, checkpoint group 1); the job's "
			    "first node requeued it");
	assert_int_equal(rep.exit_value, 0);
	exec_close(&c);
	assert_int_equal(job(f)->state, JOB_SAVED);
	assert_int_equal(fake_slurm_requeues, 0);
	assert_int_equal(fake_hv.nrestore, 0);
	ckpt_coord_close(&co);
	/* This node's end leaves the coordination files (the first node's
	 * decides) and its checkpoint (Slurm still runs the job). */
	stop_ok(f, JOB);
	assert_true(mn_exists(f, "g1.outcome"));
	mn_node1_path(f, path, sizeof(path), "/1/" CKPT_MANIFEST);
	assert_true(exists(path));

	/* The first node planned before this node's guest was up: a plan
	 * not decided yet is this run's (an earlier run's are decided). */
	f = fx_renew(state);
	mn_job(f, 1);
	mn_coord(f, &co);
	assert_int_equal(ckpt_coord_plan(&co, 3, false, &lead), 0);
	assert_int_equal(ckpt_coord_decide(&co, 1, "abort n0 no room\n"), 1);
	assert_int_equal(ckpt_coord_plan(&co, 3, false, &lead), 0);
	assert_int_equal(lead, 2);
	start_ckpt(f, true, NULL);
	/* Asked as soon as its guest is up. */
	afd = ckpt_agent_until(f, JOB_SAVING);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g2.frozen.1", NODE);
	assert_false(mn_exists(f, "g1.frozen.1"));
	ckpt_coord_close(&co);
}

/* Node 1 of a 3-node job, its node evacuated: its guest is saved for the
 * group the first node plans, and while it waits for the outcome another
 * node decides the group complete and the first node requeues the job at
 * once: Slurm ends the job here before this node's next look. The
 * evacuation moved it all the same (vmenvctl evacuate --wait lists it). */
static void test_ckpt_multinode_follower_ends_before_outcome(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	_cleanup_free_ char *report = NULL;
	char err[256];
	int afd;

	afd = mn_started(f, 1, true, &co);
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	assert_contains(report, "job 42: saving");
	/* It asks the first node to save the job's nodes. */
	mn_file_is(f, "g0.evacuate.1", NODE " psu");
	assert_int_equal(f->d.evacuate_nmoved, 0);
	mn_follower_saves(f, &co, afd, 1, 1);
	assert_int_not_equal(job(f)->state, JOB_SAVED);
	/* The others save, node 2 decides, node 0 requeues the job: Slurm
	 * ends it here, with no turn of this node's loop in between. */
	mn_peers_saved(&co, 1);
	assert_int_equal(ckpt_coord_decide(&co, 1, "complete 3 3 1 5\n"), 1);
	ckpt_coord_close(&co);
	assert_int_equal(job_stop(&f->d, JOB), 0);
	assert_int_equal(f->d.evacuate_nmoved, 1);
	assert_int_equal(f->d.evacuate_moved[0], JOB);
	assert_int_equal(log_count("job 42: checkpoint group 1 complete; the "
				   "job ended on node " NODE
				   " before this node read it"),
			 1);
}

/* Node 1's guest is saved last: this node decides the group complete and
 * acts on it in the same turn (the first node requeues at once, and Slurm
 * then ends the job here), not at its next look: it waits for the first
 * node's verdict, and ends with it. */
static void test_ckpt_multinode_follower_decides(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	uint64_t end;
	uint32_t g;
	int afd;

	afd = mn_started(f, 1, true, &co);
	assert_int_equal(ckpt_coord_plan(&co, 3, false, &g), 0);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.frozen.1", NODE);
	/* The others' guests hold and are saved before this node's is. */
	mn_mark(&co, 1, "frozen", 0, "n0");
	mn_mark(&co, 1, "frozen", 2, "n2");
	mn_peers_saved(&co, 1);
	end = now_ms() + WAIT_MS;
	while (!mn_exists(f, "g1.outcome")) {
		if (now_ms() >= end)
			fail_msg("node 1 never decided the group");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	/* In the turn that decided: waiting for the verdict. */
	assert_int_equal(job(f)->ckpt->wait, CW_VERDICT);
	assert_int_not_equal(job(f)->state, JOB_SAVED);
	mn_verdict(&co, 1, CKPT_VERDICT_REQUEUED, NULL);
	pump_until_state(f, JOB_SAVED);
	ckpt_coord_close(&co);
	assert_int_equal(log_count("job 42: checkpointed on node " NODE
				   " (node 1 of 3, checkpoint group 1)"),
			 1);
	mn_file_is(f, "g1.outcome", "complete 3 3 1 5");
	mn_file_is(f, "g1.saved.1", "1\n");
}

/* Node 0 of a 3-node job, its node evacuated, and Slurm will not requeue
 * the job (sbatch --no-requeue): every node's guest is saved, the group is
 * complete, and the job goes on here as a one-node job's would. Node 0
 * tells the other nodes so (the group's verdict), so that they go on too,
 * and its guest goes on only once every node's is back. */
static void test_ckpt_multinode_first_not_requeued(void **state)
{
	struct fx *f = *state;
	struct proto_request req = {.op = PROTO_OP_LIST};
	struct ckpt_coord co = CKPT_COORD_INIT;
	_cleanup_free_ char *report = NULL;
	struct proto_reply rep;
	char err[256];
	int afd;

	f->d.slurm_requeue = fake_slurm_requeue;
	fake_slurm_requeue_fail = -EPERM;
	afd = mn_started(f, 0, true, &co);
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.plan", "3 0\n");
	mn_file_is(f, "g1.frozen.0", NODE);
	mn_peers(&co, 1, "frozen", 0);
	mn_file_is(f, "g1.saved.0", "1\n");
	mn_mark(&co, 1, "saved", 1, "4\n");
	mn_mark(&co, 1, "saved", 2, "9\n");
	mn_file_is(f, "g1.outcome", "complete 3 1 4 9");
	mn_file_is(f, "g1.verdict",
		   "goon fake: Slurm refused to requeue job 42\n");
	assert_int_equal(fake_slurm_requeues, 0);
	/* Back from what it wrote, and held until every node's guest is. */
	afd = agent_held(f, 1);
	mn_file_is(f, "g1.back0.0", NODE);
	assert_true(agent_quiet(f, afd, 500));
	mn_peers(&co, 1, "back0", 0);
	agent_resumed(f, afd, JOB);
	pump_until_state(f, JOB_READY);
	assert_int_equal(fake_hv.nrestore, 1);
	assert_int_equal(f->d.evacuate_nmoved, 0);
	call(f, &req, &rep);
	assert_int_equal(rep.njobs, 1);
	assert_string_equal(rep.jobs[0].error,
			    "not evacuated: job 42: saved, but not requeued "
			    "(fake: Slurm refused to requeue job 42): it goes "
			    "on here from the checkpoint");
	proto_reply_clear(&rep);
	ckpt_coord_close(&co);
}

/* Node 1 of a 3-node job, its node evacuated, its guest saved for the
 * first node's group (c, unless NULL: a task's session started before):
 * the group is complete, and this node waits for the first node's verdict
 * before its part ends. */
static void mn_follower_complete(struct fx *f, struct ckpt_coord *co,
				 struct exec_client *c)
{
	struct exec_opts o = {.stdin_fd = -1};
	_cleanup_free_ char *report = NULL;
	struct proto_reply rep;
	struct aw_exec e;
	char err[256];
	uint32_t sid;
	int afd;

	afd = mn_started(f, 1, true, co);
	if (c) {
		exec_start(f, JOB, &o, c);
		sid = agent_expect_exec(f, afd, &e);
		aw_exec_clear(&e);
		agent_send(f, afd, AW_STARTED, sid, "\0\0\0\1", 4);
		client_reply(f, c->fd, &rep);
		assert_int_equal(rep.kind, PROTO_EV_STARTED);
	}
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	mn_file_is(f, "g0.evacuate.1", NODE " psu");
	mn_follower_saves(f, co, afd, 1, 1);
	mn_peers_saved(co, 1);
	assert_int_equal(ckpt_coord_decide(co, 1, "complete 3 3 1 5\n"), 1);
	pump(f, 1200);
	assert_int_equal(job(f)->ckpt->wait, CW_VERDICT);
	assert_int_not_equal(job(f)->state, JOB_SAVED);
	assert_int_equal(fake_hv.nrestore, 0);
	assert_int_equal(f->d.evacuate_nmoved, 0);
	assert_true(!c || !readable(c->fd));
}

/* Node 1, its node evacuated: the group is complete, but Slurm would not
 * requeue the job (the first node's verdict): its session goes on, its
 * guest comes back from what it just wrote and goes on once every node's
 * is back, and its evacuation's failure names why; a later requeue
 * restores the group, as an on-demand one's. Requeued instead: its
 * part ends, moved by its evacuation; so it is when Slurm ends the job
 * here before this node read the verdict. */
static void test_ckpt_multinode_follower_verdict(void **state)
{
	static const char why[] = "Slurm refused to requeue job 42: Job is "
				  "not requeueable";
	struct fx *f = *state;
	struct proto_request req = {.op = PROTO_OP_LIST};
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct exec_client c;
	struct proto_reply rep;
	int afd;

	mn_follower_complete(f, &co, &c);
	mn_verdict(&co, 1, CKPT_VERDICT_GOON, why);
	afd = agent_held(f, 1);
	mn_file_is(f, "g1.back0.1", NODE);
	assert_true(agent_quiet(f, afd, 500));
	mn_peers(&co, 1, "back0", 1);
	agent_resumed(f, afd, JOB);
	pump_until_state(f, JOB_READY);
	assert_int_equal(f->d.evacuate_nmoved, 0);
	/* Its task's session goes on. */
	assert_false(readable(c.fd));
	exec_close(&c);
	assert_int_equal(log_count("checkpointed on node " NODE), 0);
	call(f, &req, &rep);
	assert_int_equal(rep.njobs, 1);
	assert_string_equal(rep.jobs[0].error,
			    "not evacuated: job 42: saved, but not requeued "
			    "(Slurm refused to requeue job 42: Job is not "
			    "requeueable): it goes on here from the "
			    "checkpoint");
	proto_reply_clear(&rep);
	/* The job went on from the group, as from an on-demand one: Slurm
	 * requeues it later (a node failed), and it restores the group. */
	mn_requeued_restores(f, &co, 2);
	ckpt_coord_close(&co);

	f = fx_renew(state);
	mn_follower_complete(f, &co, NULL);
	mn_verdict(&co, 1, CKPT_VERDICT_REQUEUED, NULL);
	pump_until_state(f, JOB_SAVED);
	assert_int_equal(f->d.evacuate_nmoved, 1);
	assert_int_equal(f->d.evacuate_moved[0], JOB);
	assert_int_equal(log_count("job 42: checkpointed on node " NODE
				   " (node 1 of 3, checkpoint group 1, the "
				   "node is evacuated); the job's first node "
				   "requeued it"),
			 1);
	ckpt_coord_close(&co);

	/* Slurm ends the job here right after the first node's requeue. */
	f = fx_renew(state);
	mn_follower_complete(f, &co, NULL);
	mn_verdict(&co, 1, CKPT_VERDICT_REQUEUED, NULL);
	ckpt_coord_close(&co);
	assert_int_equal(job_stop(&f->d, JOB), 0);
	assert_int_equal(f->d.evacuate_nmoved, 1);
	assert_int_equal(log_count("job 42: checkpoint group 1 complete; the "
				   "job ended on node " NODE
				   " before this node read the first node's "
				   "verdict"),
			 1);
}

/* Node 1's group is complete and the first node never says what Slurm
 * did (its vmmd died, or is older): its part ends at the bound, as before
 * verdicts, and the log says why. */
static void test_ckpt_multinode_follower_no_verdict(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;

	mn_follower_complete(f, &co, NULL);
	ckpt_coord_close(&co);
	/* A minute is long for a test: the wait's start moves back. */
	job(f)->ckpt->wait_t0 -= COORD_VERDICT_MS;
	pump_until_state(f, JOB_SAVED);
	assert_int_equal(log_count("job 42: checkpoint group 1: no verdict "
				   "from the job's first node on its requeue "
				   "within 60 s; this node's part ends"),
			 1);
	assert_int_equal(log_count("job 42: checkpointed on node " NODE
				   " (node 1 of 3, checkpoint group 1, the "
				   "node is evacuated); the job's first node "
				   "did not say whether Slurm requeued it"),
			 1);
	/* Counted as moved, as before verdicts. */
	assert_int_equal(f->d.evacuate_nmoved, 1);
}

/* The requeued job (restart 1): node 1 restores its guest of the newest
 * complete group, from the checkpoint that group's outcome names for it
 * (not an older group's, not an abandoned newer one's, not the newest in
 * its store); the guest goes on once every node's is back, and the used
 * checkpoint goes. Without a complete group every node boots. */
static void test_ckpt_multinode_restart(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	char path[512];
	int afd;

	mn_job(f, 1);
	/* A group of an earlier run: decided, its checkpoint gone. */
	mn_coord(f, &co);
	mn_decided(&co, "complete 3 5 7 6\n");
	start_ckpt(f, true, NULL);
	afd = ckpt_agent(f);
	mn_follower_saves(f, &co, afd, 2, 1);
	mn_mark(&co, 2, "saved", 0, "6\n");
	mn_mark(&co, 2, "saved", 2, "8\n");
	assert_int_equal(ckpt_coord_decide(&co, 2, "complete 3 6 1 8\n"), 1);
	mn_verdict(&co, 2, CKPT_VERDICT_REQUEUED, NULL);
	pump_until_state(f, JOB_SAVED);
	stop_ok(f, JOB);
	/* A later group, abandoned; and a newer checkpoint in node 1's part
	 * of the store that no complete group names. */
	assert_int_equal(mn_decided(&co, "abort n0 no room\n"), 3);
	mn_decoy(f, "n1/", 2);
	restart_slurm(f, 1, 2);
	start_ckpt(f, true, NULL);
	afd = agent_held(f, 1);
	assert_int_equal(fake_hv.ncreate, 1); /* the first run's boot */
	mn_node1_path(f, path, sizeof(path), "/1");
	{
		char line[640];

		assert_int_equal(str_printf(line, sizeof(line),
					    "job 42: restart 1 restores node "
					    "1's guest of checkpoint group 2 "
					    "from %s\n",
					    path),
				 0);
		assert_int_equal(log_count(line), 1);
	}
	/* Back, and held until every node's is. */
	mn_file_is(f, "g2.back1.1", NODE);
	assert_true(agent_quiet(f, afd, 500));
	mn_mark(&co, 2, "back1", 0, "n0");
	assert_true(agent_quiet(f, afd, 500));
	assert_int_equal(job(f)->state, JOB_RESTORING);
	mn_mark(&co, 2, "back1", 2, "n2");
	agent_resumed(f, afd, JOB);
	assert_int_equal(fake_hv.nrestore, 1);
	/* Used once: gone; the other stays. */
	assert_false(exists(path));
	mn_node1_path(f, path, sizeof(path), "/2");
	assert_true(exists(path));
	ckpt_coord_close(&co);

	/* No complete group: a boot, whatever node 1's store holds. */
	f = fx_renew(state);
	mn_job(f, 1);
	restart_slurm(f, 1, 2);
	mn_coord(f, &co);
	mn_decided(&co, "abort n0 no room\n");
	ckpt_coord_close(&co);
	mn_decoy(f, "n1/", 1);
	start_ckpt(f, true, NULL);
	afd = ckpt_agent(f);
	assert_int_equal(fake_hv.ncreate, 1);
	assert_int_equal(fake_hv.nrestore, 0);
	assert_int_equal(log_count("job 42: restart 1 without a checkpoint "
				   "of its 3 nodes"),
			 1);

	/* No coordination files at all (the first node's end removed them):
	 * node 0 boots too, whatever its store holds. */
	f = fx_renew(state);
	mn_job(f, 0);
	restart_slurm(f, 1, 2);
	mn_decoy(f, "", 1);
	start_ckpt(f, true, NULL);
	afd = ckpt_agent(f);
	(void)afd;
	assert_int_equal(fake_hv.ncreate, 1);
	assert_int_equal(fake_hv.nrestore, 0);
	assert_int_equal(log_count("job 42: restart 1 without a checkpoint "
				   "of its 3 nodes"),
			 1);
}

/* A plan that an earlier run of the job left undecided (its first node's
 * vmmd or host died in it) is never taken by a node of the next run:
 * node 1 of the requeued job (restart 1) does not prepare for group 1
 * (run 0), nor decide it (the first node does), and takes group 2, its
 * run's plan. */
static void test_ckpt_multinode_earlier_plan(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	uint32_t g;
	int afd;

	mn_job(f, 1);
	restart_slurm(f, 1, 2);
	mn_coord(f, &co);
	assert_int_equal(ckpt_coord_plan(&co, 3, false, &g), 0);
	assert_int_equal(g, 1);
	mn_file_is(f, "g1.plan", "3 0\n");
	mn_mark(&co, 1, "frozen", 0, "n0");
	start_ckpt(f, true, NULL);
	/* No complete group: it boots; its guest comes up and stays so. */
	afd = ckpt_agent(f);
	assert_int_equal(fake_hv.ncreate, 1);
	assert_int_equal(fake_hv.nrestore, 0);
	assert_true(agent_quiet(f, afd, 1500));
	assert_int_equal(job(f)->state, JOB_READY);
	assert_false(ckpt_busy(job(f)));
	assert_false(mn_exists(f, "g1.frozen.1"));
	assert_false(mn_exists(f, "g1.outcome"));
	/* This run's plan, written after the earlier one was seen. */
	assert_int_equal(ckpt_coord_plan_run(&co, 3, true, 1, &g), 0);
	assert_int_equal(g, 2);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g2.frozen.1", NODE);
	assert_false(mn_exists(f, "g1.frozen.1"));
	assert_false(mn_exists(f, "g2.outcome"));
	ckpt_coord_close(&co);
}

/* The first node, whose guest comes up while the last plan in the
 * coordination directory is undecided (an earlier run's, or its own
 * vmmd's that restarted in it): it abandons that group for every node,
 * not an older one decided already; its next plan carries its run. */
static void test_ckpt_multinode_earlier_plan_first(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	char err[256];
	uint32_t g;
	int afd;

	mn_job(f, 0);
	restart_slurm(f, 1, 2);
	mn_coord(f, &co);
	mn_decided(&co, "abort n2 no room\n");
	assert_int_equal(ckpt_coord_plan(&co, 3, false, &g), 0);
	assert_int_equal(g, 2);
	mn_mark(&co, 2, "frozen", 0, NODE);
	mn_mark(&co, 2, "frozen", 1, "n2");
	start_ckpt(f, true, NULL);
	assert_false(mn_exists(f, "g2.outcome"));
	afd = ckpt_agent(f);
	assert_int_equal(fake_hv.ncreate, 1);
	assert_int_equal(fake_hv.nrestore, 0);
	mn_file_is(f, "g2.outcome",
		   "abort " NODE " an earlier run's checkpoint, never "
		   "completed\n");
	mn_file_is(f, "g1.outcome", "abort n2 no room\n");
	assert_int_equal(log_count("job 42: checkpoint group 2 abandoned by "
				   "node " NODE),
			 1);
	/* Nothing else of it: the guest goes on. */
	assert_true(agent_quiet(f, afd, 300));
	assert_int_equal(job(f)->state, JOB_READY);
	assert_false(ckpt_busy(job(f)));
	/* The next group is 3, for run 1. */
	assert_int_equal(ckpt_job_save(job(f), true, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g3.plan", "3 1 1\n");
	mn_file_is(f, "g3.frozen.0", NODE);
	assert_false(mn_exists(f, "g3.outcome"));
	ckpt_coord_close(&co);
}

/* vmmd restarts (its guests run on) with the fixture's fakes, the job
 * network's among them. */
static void restart_vmmd_net(struct fx *f)
{
	struct vmmd_config c = f->d.cfg;

	vmmd_fini(&f->d);
	memset(&f->d, 0, sizeof(f->d));
	f->d.cfg = c;
	f->d.hv = &fake_hv_ops;
	f->d.net = &fake_net_ops;
	f->d.slurm_lookup = fake_slurm_lookup;
	assert_int_equal(vmmd_init(&f->d), 0);
}

/* vmmd restarts while the job's guest runs on (the old vmmd's channel to
 * its agent, afd, gone): the job is back. */
static void restart_vmmd_guest_runs(struct fx *f, int afd)
{
	restart_vmmd_net(f);
	close(afd);
	fake_hv_domain(DOMAIN)->agent_fd = -1; /* the old vmmd's channel */
	assert_non_null(job(f));
}

/* The running guest's agent connects to the restarted vmmd: its guest
 * adopted, ready, and able to checkpoint; returns the agent. */
static int agent_adopted(struct fx *f)
{
	struct frame fr;
	int afd = agent_connect(f);

	agent_expect(f, afd, AW_HELLO, &fr);
	free(fr.p);
	agent_hello_flags(f, afd, AW_HELLO_SETUP_DONE | AW_HELLO_CKPT);
	pump_until_state(f, JOB_READY);
	assert_true(job(f)->agent_ckpt);
	assert_int_equal(log_count("job 42: adopted running guest"), 1);
	return afd;
}

/* The job's state file holds text. */
static void state_holds(struct fx *f, const char *text)
{
	char path[512];
	_cleanup_free_ char *st = NULL;

	assert_int_equal(
	    str_printf(path, sizeof(path), "%s/run/jobs/%u/state", f->dir, JOB),
	    0);
	assert_int_equal(read_file_limited(path, 64 * 1024, &st, NULL), 0);
	if (!strstr(st, text))
		fail_msg("'%s' not in the state file:\n%s", text, st);
}

/* A multi-node job's guest adopted after a vmmd restart keeps Slurm's
 * view its checkpoints follow (its state file: node count, node index,
 * run): an adopted follower schedules no checkpoint of its own (Slurm's
 * end time, re-read, is near), refuses vmenvctl checkpoint, and takes
 * its run's plan. A state file whose node is not one of the job's is not
 * adopted. */
static void test_ckpt_multinode_adopted(void **state)
{
	struct fx *f = *state;
	struct ckpt_coord co = CKPT_COORD_INIT;
	struct slurmjob_info si;
	struct proto_reply rep;
	char why[256], path[512];
	int64_t due;
	uint32_t lead, g;
	int afd;

	mn_job(f, 1);
	restart_slurm(f, 1, 2);
	start_ckpt(f, true, NULL);
	afd = ckpt_agent(f);
	state_holds(f, "\nnnodes=3\nnode_index=1\nrestart=1\n");
	/* Slurm's end time comes within the checkpoint's lead: were this
	 * node the first, its checkpoint would be due at once. */
	f->d.cfg.checkpoint_requery_s = 1;
	assert_int_equal(fake_slurm_lookup(JOB, NODE, &si, why, sizeof(why)),
			 0);
	si.end_time = time(NULL) + 5;
	fake_slurm_set(&si);
	restart_vmmd_guest_runs(f, afd);
	assert_int_equal(job(f)->slurm.nnodes, 3);
	assert_int_equal(job(f)->slurm.node_index, 1);
	assert_int_equal(job(f)->slurm.restart_count, 1);
	afd = agent_adopted(f);
	/* No checkpoint of its own, after the end time was re-read. */
	assert_true(agent_quiet(f, afd, 1500));
	ckpt_job_due(job(f), &due, &lead);
	assert_int_equal(due, 0);
	assert_int_equal(job(f)->state, JOB_READY);
	checkpoint_refused(f, &rep);
	assert_contains(rep.error, "job 42: checkpoint refused: node " NODE
				   " is node 1 of the job's 3");
	/* The first node's plan of this run: this node's part follows. */
	mn_coord(f, &co);
	assert_int_equal(ckpt_coord_plan_run(&co, 3, false, 1, &g), 0);
	assert_int_equal(g, 1);
	agent_prepare_ok(f, afd);
	mn_file_is(f, "g1.frozen.1", NODE);
	ckpt_coord_close(&co);
	close(afd);

	/* A state file naming a node beyond the job's: not adopted. */
	f = fx_renew(state);
	afd = mn_started(f, 1, true, NULL);
	(void)afd;
	state_holds(f, "\nnnodes=3\nnode_index=1\nrestart=0\n");
	assert_int_equal(
	    str_printf(path, sizeof(path), "%s/run/jobs/%u/state", f->dir, JOB),
	    0);
	{
		_cleanup_free_ char *st = NULL;
		char *p;

		assert_int_equal(read_file_limited(path, 64 * 1024, &st, NULL),
				 0);
		p = strstr(st, "node_index=1\n");
		assert_non_null(p);
		p[strlen("node_index=")] = '3';
		assert_int_equal(write_file_atomic(path, st, strlen(st), 0600),
				 0);
	}
	restart_vmmd_net(f);
	assert_null(job(f));
}

/* vmenvctl checkpoint of a one-node guest adopted by a restarted vmmd:
 * refused with why (the domain as built is not known, and going on would
 * restore from it), nothing saved, the guest still ready. */
static void test_ckpt_on_demand_adopted(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	unsigned nsave;
	int afd, cfd;

	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	restart_vmmd_guest_runs(f, afd);
	afd = agent_adopted(f);
	nsave = fake_hv.nsave;
	cfd = checkpoint_request(f);
	/* The guest is not asked to prepare. */
	assert_true(agent_quiet(f, afd, 500));
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: checkpoint refused: its guest was "
				   "adopted by a restarted vmmd on node " NODE);
	assert_int_equal(fake_hv.nsave, nsave);
	assert_int_equal(job(f)->state, JOB_READY);
	assert_true(agent_quiet(f, afd, 200));
	close(afd);
}

/* The save's stream goes through the page cache, charged to the
 * domain's memory cgroup: the domain's hard limit grows by the guest's
 * RAM before the save, and a failed save sets it back (once its partial
 * file is gone) for the guest that goes on; whether the limit is set on
 * the running domain (live) or in its XML (domain, a real node's). */
static void check_save_limit(void **state, bool live)
{
	const uint64_t limit = 1024 * 1024, ram = 896 * 1024;
	struct fx *f = *state;
	struct fake_domain *dom;
	struct proto_reply rep;
	int afd, cfd;

	f->d.mem_limit_live = live;
	start_ckpt(f, false, NULL);
	assert_int_equal(fake_hv.last_limit_kib, live ? limit : 0);
	afd = ckpt_agent(f);
	assert_int_equal(job(f)->mem_mib, 896);
	assert_int_equal(fake_hv.nset_limit, 0);
	/* Saved: raised before the save; QEMU ends with it, and the
	 * restored guest has the job's limit. */
	cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	afd = agent_resume(f, 1);
	client_reply(f, cfd, &rep);
	close(cfd);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("checkpoint: %s", rep.error);
	assert_int_equal(fake_hv.nsave, 1);
	assert_int_equal(fake_hv.nset_limit, 1);
	assert_string_equal(fake_hv.set_limit[0].name, DOMAIN);
	assert_int_equal(fake_hv.set_limit[0].kib, limit + ram);
	assert_int_equal(fake_hv.set_limit[0].nsave, 0);
	assert_int_equal(fake_hv.restore_limit_kib, live ? limit : 0);
	/* The save fails (the store is full): raised before it, the job's
	 * limit again after it, once the partial file is gone. */
	fake_hv.fail_save = -ENOSPC;
	cfd = checkpoint_request(f);
	agent_prepare_ok(f, afd);
	dom = fake_hv_domain(DOMAIN);
	assert_non_null(dom);
	/* vmmd reconnects to the guest that goes on. */
	assert_true(pump_until_readable(f, dom->listen_fd, WAIT_MS));
	afd = agent_rejoins(f, 1);
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_string_equal(rep.error, "job 42: checkpoint failed on node " NODE
				       ": fake: cannot save: No space left on "
				       "device");
	assert_int_equal(fake_hv.nsave, 2);
	assert_int_equal(fake_hv.nset_limit, 3);
	assert_int_equal(fake_hv.set_limit[1].kib, limit + ram);
	assert_int_equal(fake_hv.set_limit[1].nsave, 1);
	assert_string_equal(fake_hv.set_limit[2].name, DOMAIN);
	assert_int_equal(fake_hv.set_limit[2].kib, limit);
	assert_int_equal(fake_hv.set_limit[2].nsave, 2);
	assert_false(fake_hv.set_limit[2].save_file);
	assert_false(exists(fake_hv.saved_path));
	assert_int_equal(fake_hv.nrestore, 1);
	assert_int_equal(job(f)->state, JOB_READY);
}

static void test_ckpt_save_limit(void **state)
{
	check_save_limit(state, true);
}

static void test_ckpt_save_limit_domain(void **state)
{
	check_save_limit(state, false);
}

/* ======================================================================= */
/* checkpoint stores a user can write (docs/security.md)                   */
/* ======================================================================= */

/* The user's store: <dir>/scratch (root's, what a policy allows) holds
 * u/ (the user's) and u/ck (the user's, named with
 * --vm-checkpoint-dir). The user plays the attacker in a child with the
 * user's uid (attack). */
static void user_store(struct fx *f, char *store, size_t len)
{
	char p[512], pol[1024];

	/* The user is another uid: root only. */
	if (geteuid() != 0)
		skip();
	/* The user reaches their directories below the fixture. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	fixture_path(f, p, sizeof(p), "scratch");
	assert_int_equal(mkdir(p, 0755), 0);
	fixture_path(f, p, sizeof(p), "scratch/u");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(chown(p, OTHER_UID, OTHER_UID), 0);
	fixture_path(f, store, len, "scratch/u/ck");
	assert_int_equal(mkdir(store, 0755), 0);
	assert_int_equal(chown(store, OTHER_UID, OTHER_UID), 0);
	fixture_path(f, p, sizeof(p), "scratch");
	snprintf(pol, sizeof(pol),
		 "{\"checkpoint_dir\": {\"allow\": [\"%s\"]}}", p);
	write_policy(f, "00-scratch.json", pol);
	assert_int_equal(spec_policies_load(&f->d), 0);
}

/* Runs fn as the user (OTHER_UID) in a child: what the user can do. */
static void attack(struct fx *f, int (*fn)(struct fx *f))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
		    setuid(OTHER_UID) < 0 || getuid() != OTHER_UID)
			_exit(100);
		_exit(fn(f));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the attacker's step failed (%d)", status);
}

/* A root-only file the attack aims at (/etc/shadow, /etc/cron.d/x). */
static void victim(struct fx *f, const char *sub, const char *text)
{
	char p[512];

	fixture_path(f, p, sizeof(p), sub);
	write_text(p, text);
	assert_int_equal(chmod(p, 0600), 0);
}

static void file_holds(struct fx *f, const char *sub, const char *want)
{
	_cleanup_free_ char *text = NULL;
	char p[512];

	fixture_path(f, p, sizeof(p), sub);
	assert_int_equal(read_file_limited(p, 1 << 20, &text, NULL), 0);
	assert_string_equal(text, want);
}

/* A multi-node job that names its own store is refused at its start,
 * with the reason, before anything of its guest exists (its nodes agree
 * only through the node's store). */
static void test_ckpt_multinode_userdir(void **state)
{
	struct fx *f = *state;
	char store[512];
	const char *const opts[] = {"vm-checkpoint", "yes", "vm-checkpoint-dir",
				    store, NULL};
	struct proto_reply rep;

	user_store(f, store, sizeof(store));
	mn_job(f, 0);
	start_with(f, JOB, (uint32_t)getuid(), opts, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: --vm-checkpoint-dir=");
	assert_contains(rep.error, store);
	assert_contains(rep.error, "a job of 3 nodes is checkpointed into "
				   "the nodes' shared store");
	assert_int_equal(fake_hv.ncreate, 0);
	assert_int_equal(job(f)->state, JOB_FAILED);
	stop_ok(f, JOB);
}

/* Job 42 of the user with checkpoints into store, ready. */
static int user_job(struct fx *f, const char *store, bool keep)
{
	const char *const opts[] = {"vm-checkpoint",
				    "yes",
				    "vm-checkpoint-dir",
				    store,
				    "vm-checkpoint-keep",
				    keep ? "yes" : "no",
				    NULL};
	struct proto_reply rep;

	slurm_job(f, JOB, OTHER_UID);
	start_with(f, JOB, OTHER_UID, opts, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
	return ckpt_agent(f);
}

/* vmenvctl checkpoint for a guest that prepares: the answer. */
static void on_demand(struct fx *f, int afd, bool resumes,
		      struct proto_reply *rep)
{
	int cfd = checkpoint_request(f);

	agent_prepare_ok(f, afd);
	if (resumes)
		agent_resume(f, fake_hv.nrestore + 1);
	client_reply(f, cfd, rep);
	close(cfd);
}

static int link_ck_to_outside(struct fx *f)
{
	char p[512], t[512];

	fixture_path(f, p, sizeof(p), "scratch/u/ck");
	fixture_path(f, t, sizeof(t), "outside");
	return rmdir(p) == 0 && symlink(t, p) == 0 ? 0 : 1;
}

/* (#6) A policy allows /scratch as a string prefix: the user's
 * scratch/u/ck is a symlink to a root-only place outside it. Nothing may
 * be created or saved there. */
static void test_ckpt_userstore_symlink(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char store[512], p[512];
	int afd;

	user_store(f, store, sizeof(store));
	fixture_path(f, p, sizeof(p), "outside");
	assert_int_equal(mkdir(p, 0700), 0);
	attack(f, link_ck_to_outside);
	afd = user_job(f, store, false);
	on_demand(f, afd, false, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: checkpoint failed on node n1: ");
	assert_contains(rep.error, "(a symlink on the way)");
	assert_int_equal(fake_hv.nsave, 0);
	fixture_path(f, p, sizeof(p), "outside/42");
	assert_false(exists(p));
}

static struct fx *hook_fx;

/* While libvirt saves: the user renames the job's directory in their
 * store away and puts one of their own in its place whose output is a
 * link to a root-only file (/etc/cron.d/...). */
static int swap_job_dir(struct fx *f)
{
	char a[512], b[512], t[512];

	fixture_path(f, a, sizeof(a), "scratch/u/ck/42");
	fixture_path(f, b, sizeof(b), "scratch/u/ck/42.moved");
	if (rename(a, b) < 0 || mkdir(a, 0755) < 0)
		return 1;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1");
	if (mkdir(a, 0755) < 0)
		return 2;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1/output");
	fixture_path(f, t, sizeof(t), "cron.d/vmenv");
	if (symlink(t, a) < 0)
		return 3;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1/memory");
	fixture_path(f, t, sizeof(t), "cron.d/memory");
	return symlink(t, a) < 0 ? 4 : 0;
}

static void swap_during_save(const char *path)
{
	(void)path;
	attack(hook_fx, swap_job_dir);
}

/* (#6) Root writes the batch output (bytes the user chose) into the
 * checkpoint: with the job's directory swapped for the user's during the
 * save, a link there must not lead root's write (or libvirt's) anywhere. */
static void test_ckpt_userstore_swap_during_save(void **state)
{
	struct fx *f = *state;
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char store[512], out[512], p[512];
	uint32_t sid;
	int afd;

	user_store(f, store, sizeof(store));
	fixture_path(f, p, sizeof(p), "cron.d");
	assert_int_equal(mkdir(p, 0755), 0);
	victim(f, "cron.d/vmenv", "# nothing\n");
	fixture_path(f, out, sizeof(out), "work/slurm-42.out");
	afd = user_job(f, store, false);
	batch_start(f, out, &c);
	sid = agent_expect_exec(f, afd, &e);
	aw_exec_clear(&e);
	agent_send(f, afd, AW_STARTED, sid, "\0\0\0\1", 4);
	agent_send(f, afd, AW_STDOUT, sid, "* * * * * root evil\n", 20);
	file_is(f, out, "* * * * * root evil\n");
	hook_fx = f;
	fake_hv.on_save = swap_during_save;
	on_demand(f, afd, true, &rep);
	fake_hv.on_save = NULL;
	/* Saved into the directory vmmd made, restored from it. */
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("checkpoint: %s", rep.error);
	file_holds(f, "cron.d/vmenv", "# nothing\n");
	fixture_path(f, p, sizeof(p), "cron.d/memory");
	assert_false(exists(p));
	fixture_path(f, p, sizeof(p), "scratch/u/ck/42.moved/1/output");
	assert_true(exists(p));
	exec_close(&c);
}

/* (#14) What the user put in their own store in the place of a job's
 * checkpoint: a manifest saying what root wants to see (job 42, the
 * user's uid, the memory's sha256), and files it does not list: output a
 * link to /etc/shadow, or a FIFO that would block the restore worker. */
struct forged {
	char manifest[65536];
	bool fifo;
};
static struct forged forged;

static int plant_forged(struct fx *f)
{
	static const char mem[] = "SAVED vmenv-n1-42\n";
	char a[512], t[512];

	fixture_path(f, a, sizeof(a), "scratch/u/ck/42");
	fixture_path(f, t, sizeof(t), "scratch/u/ck/42.real");
	if (rename(a, t) < 0 || mkdir(a, 0755) < 0)
		return 1;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1");
	if (mkdir(a, 0755) < 0)
		return 2;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1/memory");
	if (write_file_atomic(a, mem, strlen(mem), 0644) < 0)
		return 3;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1/manifest.json");
	if (write_file_atomic(a, forged.manifest, strlen(forged.manifest),
			      0644) < 0)
		return 4;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1/output");
	fixture_path(f, t, sizeof(t), "shadow");
	if (symlink(t, a) < 0)
		return 5;
	fixture_path(f, a, sizeof(a), "scratch/u/ck/42/1/disk.qcow2");
	return forged.fifo && mkfifo(a, 0644) < 0 ? 6 : 0;
}

/* The job's real manifest with only a memory of the user's listed: what
 * the user can write knowing the job (its uid, size, image). */
static void forge_manifest(struct fx *f)
{
	static const char mem[] = "SAVED vmenv-n1-42\n";
	_cleanup_free_ char *text = NULL, *out = NULL;
	struct ckpt_manifest m;
	struct digest *d = NULL;
	char p[512], err[256];
	size_t len = 0;

	fixture_path(f, p, sizeof(p), "scratch/u/ck/42/1/manifest.json");
	assert_int_equal(read_file_limited(p, 1 << 22, &text, &len), 0);
	assert_int_equal(ckpt_manifest_decode(text, len, &m, err, sizeof(err)),
			 0);
	m.nfiles = 1;
	snprintf(m.files[0].name, sizeof(m.files[0].name), "%s", CKPT_MEMORY);
	m.files[0].size = strlen(mem);
	assert_int_equal(digest_new(&d), 0);
	assert_int_equal(digest_update(d, mem, strlen(mem)), 0);
	assert_int_equal(digest_final_hex(d, m.files[0].sha256), 0);
	digest_free(d);
	assert_int_equal(ckpt_manifest_encode(&m, &out), 0);
	ckpt_manifest_clear(&m);
	snprintf(forged.manifest, sizeof(forged.manifest), "%s", out);
}

static void alarm_blocked(int sig)
{
	static const char msg[] = "vmmd's restore blocked on a FIFO\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

static void test_ckpt_userstore_forged(void **state)
{
	static const bool fifo[] = {false, true};
	struct fx *f = *state;

	signal(SIGALRM, alarm_blocked);
	for (size_t i = 0; i < ARRAY_SIZE(fifo); i++) {
		struct proto_reply rep;
		char store[512], p[512], err[256];
		int afd;

		print_message("case %zu: %s\n", i,
			      fifo[i] ? "a FIFO too" : "a link to a secret");
		if (i)
			f = fx_renew(state);
		f->d.slurm_requeue = fake_slurm_requeue;
		user_store(f, store, sizeof(store));
		victim(f, "shadow", "root:SECRET:19000::::::\n");
		afd = user_job(f, store, false);
		/* A real checkpoint first (its manifest shows the job). */
		assert_int_equal(
		    ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
		agent_prepare_ok(f, afd);
		pump_until_state(f, JOB_SAVED);
		stop_ok(f, JOB);
		forge_manifest(f);
		forged.fifo = fifo[i];
		attack(f, plant_forged);
		/* The restarted job looks for its checkpoint. */
		restart_slurm(f, 1, 2);
		alarm(20);
		{
			const char *const opts[] = {"vm-checkpoint", "yes",
						    "vm-checkpoint-dir", store,
						    NULL};
			start_with(f, JOB, OTHER_UID, opts, &rep);
		}
		if (rep.kind == PROTO_REPLY_OK)
			pump_until_state(f, JOB_FAILED);
		alarm(0);
		assert_contains(rep.kind == PROTO_REPLY_OK ? job(f)->error
							   : rep.error,
				"/scratch/u/ck/42 is owned by uid 65534");
		assert_int_equal(fake_hv.nrestore, 0);
		fixture_path(f, p, sizeof(p), "run/jobs/42/ckpt-output");
		assert_false(exists(p));
		stop_ok(f, JOB);
	}
	signal(SIGALRM, SIG_DFL);
}

/* (#14) Even in a checkpoint of root's, files its manifest does not list
 * are never read: a link to a secret where the batch output would be,
 * or a FIFO. (Only root could put them there now; the restore must not
 * depend on that.) */
static void test_ckpt_restore_unlisted(void **state)
{
	static const bool fifo[] = {false, true};
	struct fx *f = *state;

	signal(SIGALRM, alarm_blocked);
	for (size_t i = 0; i < ARRAY_SIZE(fifo); i++) {
		char p[512], t[512], err[256];
		int afd;

		print_message("case %zu: %s\n", i,
			      fifo[i] ? "a FIFO" : "a link to a secret");
		if (i)
			f = fx_renew(state);
		f->d.slurm_requeue = fake_slurm_requeue;
		victim(f, "shadow", "root:SECRET:19000::::::\n");
		/* Saved without a batch session: no output listed. */
		start_ckpt(f, true, NULL);
		afd = ckpt_agent(f);
		assert_int_equal(
		    ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
		agent_prepare_ok(f, afd);
		pump_until_state(f, JOB_SAVED);
		close(afd);
		stop_ok(f, JOB);
		ckpt_path(f, p, sizeof(p), 1, CKPT_OUTPUT);
		fixture_path(f, t, sizeof(t), "shadow");
		if (fifo[i])
			assert_int_equal(mkfifo(p, 0600), 0);
		else
			assert_int_equal(symlink(t, p), 0);
		restart_slurm(f, 1, 2);
		alarm(20);
		start_ckpt(f, true, NULL);
		agent_resume(f, 1);
		alarm(0);
		fixture_path(f, p, sizeof(p), "run/jobs/42/ckpt-output");
		assert_false(exists(p));
	}
	signal(SIGALRM, SIG_DFL);
}

static int link_job_dir_to_victim(struct fx *f)
{
	char a[512], b[512], t[512];

	fixture_path(f, a, sizeof(a), "scratch/u/ck/42");
	fixture_path(f, b, sizeof(b), "scratch/u/ck/42.moved");
	fixture_path(f, t, sizeof(t), "victim");
	return rename(a, b) == 0 && symlink(t, a) == 0 ? 0 : 1;
}

/* (#6) At the job's end its checkpoints in the user's store are removed:
 * the user makes the job's directory a link to root's files with
 * checkpoint-like names. Nothing of them may go. */
static void test_ckpt_userstore_remove(void **state)
{
	struct fx *f = *state;
	char store[512], p[512], err[256];
	int afd;

	user_store(f, store, sizeof(store));
	fixture_path(f, p, sizeof(p), "victim/1");
	assert_int_equal(mkdir_p(p, 0700), 0);
	victim(f, "victim/1/manifest.json", "{}");
	victim(f, "victim/1/precious", "keep me\n");
	afd = user_job(f, store, false);
	assert_int_equal(ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	pump_until_state(f, JOB_SAVED);
	attack(f, link_job_dir_to_victim);
	slurm_state(JOB, true);
	stop_ok(f, JOB);
	file_holds(f, "victim/1/precious", "keep me\n");
	file_holds(f, "victim/1/manifest.json", "{}");
}

/* (#12) Kept checkpoints outlive their jobs: per user, at most
 * checkpoint_keep_max of them and checkpoint_keep_max_mib in a store. A
 * save to keep beyond either is refused with the reason; the guest goes
 * on; a job that keeps nothing is not limited. */
static void test_ckpt_keep_limits(void **state)
{
	static const struct {
		uint32_t max, max_mib;
		bool keep;
		const char *want; /* NULL: saved */
	} cases[] = {
	    {1, 65536, true, " already keeps 1 checkpoint(s) in "},
	    {4, 512, true,
	     "this node allows 512 MiB per user (checkpoint_keep_max_mib)"},
	    {1, 512, false, NULL},
	    {2, 65536, true, NULL},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proto_reply rep;
		int afd;

		print_message("case %zu\n", i);
		if (i)
			f = fx_renew(state);
		f->d.cfg.checkpoint_keep_max = cases[i].max;
		f->d.cfg.checkpoint_keep_max_mib = cases[i].max_mib;
		/* Another job's, kept, of the same user. */
		put_ckpt(f, 50, true, (int64_t)time(NULL));
		start_ckpt_opt(f, VMSPEC_OPT_CHECKPOINT_KEEP,
			       cases[i].keep ? "yes" : "no");
		afd = ckpt_agent(f);
		on_demand(f, afd, !cases[i].want, &rep);
		if (!cases[i].want) {
			if (rep.kind != PROTO_REPLY_OK)
				fail_msg("checkpoint: %s", rep.error);
			assert_true(has_ckpt(f, JOB));
			continue;
		}
		assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
		assert_contains(rep.error,
				"job 42: checkpoint refused on node n1: uid ");
		assert_contains(rep.error, cases[i].want);
		assert_int_equal(fake_hv.nsave, 0);
		assert_false(has_ckpt(f, JOB));
		assert_int_equal(job(f)->state, JOB_READY);
	}
}

/* Its own mount namespace for the test process, so that a tmpfs it
 * mounts is nobody else's; false when not root. */
static bool private_mounts(void)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0)
		return false;
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* (#12) No room for the save on the store's file system (a 1 MiB tmpfs):
 * refused before anything is written, naming the job and the figures;
 * on demand the guest goes on, a scheduled one ends the job with the
 * reason. */
static void test_ckpt_no_space(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	struct frame fr;
	char p[512], err[256];
	int afd;

	if (!private_mounts())
		skip();
	fixture_path(f, p, sizeof(p), "ckpt");
	assert_int_equal(mount("tmpfs", p, "tmpfs", 0, "size=1m,mode=0700"), 0);
	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	on_demand(f, afd, false, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 42: checkpoint refused on node n1: ");
	assert_contains(rep.error, " has 1 MiB free, the save needs about ");
	assert_contains(rep.error, "(guest memory 896 MiB, overlay 0 MiB");
	assert_int_equal(fake_hv.nsave, 0);
	assert_int_equal(job(f)->state, JOB_READY);
	/* The guest was thawed. */
	agent_expect(f, afd, AW_CKPT_RESUME, &fr);
	free(fr.p);
	/* Scheduled: the job's time is up. */
	assert_int_equal(ckpt_job_save(job(f), false, -1, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	pump_until_state(f, JOB_FAILED);
	assert_contains(job(f)->error, "checkpoint refused on node n1: ");
	assert_int_equal(fake_hv.nsave, 0);
	stop_ok(f, JOB);
	assert_int_equal(umount(p), 0);
}

/* (#6) The node's store must be root's: one a user owns (or may write)
 * is refused, never written. */
static void test_ckpt_node_store_not_roots(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char p[512];
	int afd;

	if (geteuid() != 0)
		skip();
	fixture_path(f, p, sizeof(p), "ckpt");
	assert_int_equal(chown(p, OTHER_UID, OTHER_UID), 0);
	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	on_demand(f, afd, false, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "the node's store must be root's all the "
				   "way");
	assert_int_equal(fake_hv.nsave, 0);
	fixture_path(f, p, sizeof(p), "ckpt/42");
	assert_false(exists(p));
}

/* (#9) vmenvctl checkpoint follows the spec: a job whose checkpoints are
 * off (a policy's enforce: false above all) is never saved on demand; the
 * guest is not even asked to prepare. */
static void test_ckpt_on_demand_policy(void **state)
{
	static const struct {
		const char *policy; /* 10-debug.json's text, or NULL */
		const char *want;
	} cases[] = {
	    {"{\"name\": \"debug\", \"checkpoint\": {\"enforce\": false}}",
	     "job 42: checkpoint refused: policy 'debug' (10-debug.json) "
	     "enforces checkpoint: no for this job"},
	    {"{\"name\": \"debug\", \"checkpoint\": {\"allow\": [false]}}",
	     "job 42: checkpoint refused: checkpoints are off for this job; "
	     "submit it with --vm-checkpoint where the policies allow it"},
	    {"{\"name\": \"debug\", \"checkpoint\": {\"default\": false}}",
	     "checkpoints are off for this job (the default of policy "
	     "'debug' (10-debug.json))"},
	    {NULL, "job 42: checkpoint refused: checkpoints are off for this "
		   "job"},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proto_reply rep;
		struct pollfd pfd = {.events = POLLIN};

		print_message("case %zu\n", i);
		if (i)
			f = fx_renew(state);
		if (cases[i].policy) {
			write_policy(f, "10-debug.json", cases[i].policy);
			assert_int_equal(spec_policies_load(&f->d), 0);
		}
		start_ok(f);
		pfd.fd = ckpt_agent(f);
		checkpoint_refused(f, &rep);
		assert_contains(rep.error, cases[i].want);
		assert_int_equal(poll(&pfd, 1, 100), 0);
		assert_int_equal(fake_hv.nsave, 0);
	}
}

/* --- evacuating the node (evacuate.h) ------------------------------------ */

/* vmenvctl evacuate's request as uid; 0: answered ok, 1: refused with
 * want, > 1: the step that went wrong. */
static int evacuate_child(const char *path, uid_t uid, const char *reason,
			  const char *want)
{
	struct proto_request req = {.op = PROTO_OP_EVACUATE};
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];
	int fd;

	snprintf(req.reason, sizeof(req.reason), "%s", reason);
	if (uid != getuid() && drop_to(uid) < 0)
		return 20;
	fd = unix_connect(path, 1000);
	if (fd < 0)
		return 21;
	if (proto_send_request(fd, &req, NULL, 0) < 0 ||
	    proto_recv_reply(fd, WAIT_MS, &rep, err, sizeof(err)) < 0)
		return 22;
	if (rep.kind == PROTO_REPLY_OK)
		return want ? 24 : 0;
	return want && strstr(rep.error, want) ? 1 : 23;
}

static int evacuate_as(struct fx *f, uid_t uid, const char *reason,
		       const char *want)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		_exit(evacuate_child(f->d.cfg.socket_path, uid, reason, want));
	}
	while (waitpid(pid, &status, WNOHANG) == 0)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* A running batch job that asked --vm-requeue=no: the evacuation drains
 * the node, saves the guest and requeues the job all the same (it goes on
 * elsewhere); the batch step hears why. */
static void test_evacuate(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *report = NULL;
	struct exec_client c;
	struct proto_reply rep;
	struct aw_exec e;
	char out[256], err[256];
	uint32_t sid;
	int afd;

	f->d.slurm_requeue = fake_slurm_requeue;
	f->d.slurm_node = &fake_slurm_node;
	assert_int_equal(
	    str_printf(out, sizeof(out), "%s/slurm-42.out", f->work), 0);
	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	batch_start(f, out, &c);
	sid = agent_expect_exec(f, afd, &e);
	aw_exec_clear(&e);
	agent_send(f, afd, AW_STARTED, sid, "\0\0\0\1", 4);
	/* A bad reason (it goes to Slurm) changes nothing. */
	assert_int_equal(
	    evacuate_node(&f->d, "fan\n3", false, &report, err, sizeof(err)),
	    -EBADMSG);
	assert_contains(err, "printable ASCII only");
	assert_false(f->d.evacuating);
	assert_int_equal(fake_node_drains, 0);
	/* Slurm refuses the drain: nothing is saved (a requeued job could
	 * come back). */
	fake_node_drain_fail = -EPERM;
	assert_int_equal(evacuate_node(&f->d, "fan 3 failing", false, &report,
				       err, sizeof(err)),
			 -EPERM);
	assert_string_equal(err, "Slurm refused to drain node n1: fake");
	assert_false(f->d.evacuating);
	assert_int_equal(job(f)->state, JOB_READY);
	fake_node_drain_fail = 0;
	/* Root's request (the Slurm user may not: test_evacuate_root). */
	assert_int_equal(
	    evacuate_as(f, getuid(), "fan 3 failing",
			getuid() ? "only root may evacuate" : NULL),
	    getuid() ? 1 : 0);
	if (getuid())
		assert_int_equal(evacuate_node(&f->d, "fan 3 failing", false,
					       &report, err, sizeof(err)),
				 0);
	assert_int_equal(fake_node_drains, 1);
	assert_true(fake_node.drain);
	assert_string_equal(fake_node.reason, "vmenv evacuate: fan 3 failing");
	assert_true(f->d.evacuating);
	agent_prepare_ok(f, afd);
	client_reply(f, c.fd, &rep); /* started */
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_CHECKPOINTED);
	assert_string_equal(rep.error, "job 42: node n1 is evacuated (fan 3 "
				       "failing): checkpointed, requeued");
	assert_int_equal(rep.exit_value, 0);
	assert_int_equal(fake_slurm_requeues, 1);
	assert_int_equal(job(f)->state, JOB_SAVED);
	exec_close(&c);
	close(afd);
	stop_ok(f, JOB);
	/* Root's list names it as moved (vmenvctl evacuate --wait). */
	if (getuid() == 0) {
		struct proto_request lr = {.op = PROTO_OP_LIST};

		call(f, &lr, &rep);
		assert_int_equal(rep.nmoved, 1);
		assert_int_equal(rep.moved[0], JOB);
		proto_reply_clear(&rep);
	}
	/* Slurm resumed the node and places a job on it before the next
	 * reconcile: the evacuation is over, the job is not evacuated. */
	fake_node.drain = false;
	start_job(f, 43, "tiny", &rep);
	assert_false(f->d.evacuating);
}

/* Only root evacuates: not a user, not even the Slurm user (it moves
 * every user's jobs and drains the node). */
static void test_evacuate_root(void **state)
{
	struct fx *f = *state;

	if (getuid() != 0)
		skip(); /* other uids need root */
	f->d.slurm_node = &fake_slurm_node;
	f->d.slurm_uid = UID_B;
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(evacuate_as(f, UID_A, "x",
				     "permission denied: only root may "
				     "evacuate node n1"),
			 1);
	assert_int_equal(evacuate_as(f, UID_B, "x", "only root may evacuate"),
			 1);
	assert_int_equal(fake_node_drains, 0);
	assert_false(f->d.evacuating);
}

/* The report of a node with the jobs it cannot move: one without
 * checkpoints stays (and says why); one whose guest refuses the save goes
 * on here, and vmenvctl list says why. */
static void test_evacuate_stays(void **state)
{
	struct fx *f = *state;
	int cfd;
	struct proto_request req = {.op = PROTO_OP_LIST};
	_cleanup_free_ char *report = NULL;
	struct proto_reply rep;
	struct frame fr;
	char err[256];
	int afd;

	f->d.slurm_requeue = fake_slurm_requeue;
	f->d.slurm_node = &fake_slurm_node;
	start_ok(f);
	afd = ckpt_agent(f);
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	assert_contains(report, "node n1: evacuating (psu): 0 job(s) saving, "
				"0 saved once up, 1 cannot be saved\n");
	assert_contains(report, "job 42: stays: job 42: checkpoint refused: "
				"checkpoints are off for this job");
	assert_false(readable(afd));
	assert_int_equal(job(f)->state, JOB_READY);
	close(afd);

	f = fx_renew(state);
	f->d.slurm_requeue = fake_slurm_requeue;
	f->d.slurm_node = &fake_slurm_node;
	start_ckpt(f, true, NULL);
	afd = ckpt_agent(f);
	free(report);
	report = NULL;
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	assert_contains(report, "job 42: saving: ");
	agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
	free(fr.p);
	agent_refuse(f, afd, ECANCELED, "checkpoint refused: mpi busy");
	pump(f, 200);
	assert_int_equal(job(f)->state, JOB_READY);
	assert_int_equal(fake_slurm_requeues, 0);
	call(f, &req, &rep);
	assert_int_equal(rep.njobs, 1);
	assert_string_equal(rep.jobs[0].error,
			    "not evacuated: job 42: checkpoint refused: mpi "
			    "busy");
	proto_reply_clear(&rep);
	/* The node resumed: a vmenvctl checkpoint the guest refuses is
	 * answered (the old evacuation's reason is not this save's). */
	fake_node.drain = false;
	evacuate_watch_drain(&f->d, false);
	cfd = checkpoint_request(f);
	agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
	free(fr.p);
	agent_refuse(f, afd, EBUSY, "checkpoint refused: still busy");
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "checkpoint refused: still busy");
	close(afd);
}

/* An evacuation meets a vmenvctl checkpoint under way (the guest then
 * refuses it): the job is "waiting", and is saved and requeued once the
 * on-demand save ended, its client answered first. */
static void test_evacuate_after_on_demand(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *report = NULL;
	struct proto_reply rep;
	struct frame fr;
	char err[256];
	int afd, cfd;

	f->d.slurm_requeue = fake_slurm_requeue;
	f->d.slurm_node = &fake_slurm_node;
	start_ckpt(f, false, NULL);
	afd = ckpt_agent(f);
	cfd = checkpoint_request(f);
	agent_expect(f, afd, AW_CKPT_PREPARE, &fr);
	free(fr.p);
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	assert_contains(report, "job 42: waiting: job 42: its guest is "
				"checkpointing: saved once it is up");
	agent_refuse(f, afd, EBUSY, "checkpoint refused: busy");
	client_reply(f, cfd, &rep);
	close(cfd);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "checkpoint refused: busy");
	/* The evacuation's own save follows. */
	agent_prepare_ok(f, afd);
	pump_until_state(f, JOB_SAVED);
	assert_int_equal(fake_slurm_requeues, 1);
	close(afd);
}

/* Slurm will not requeue the saved job (--no-requeue, slurmctld down):
 * the evacuation does not end it, it goes on here from the checkpoint
 * just written, and vmenvctl list says why while the node is evacuated. */
static void test_evacuate_not_requeued(void **state)
{
	struct fx *f = *state;
	struct proto_request req = {.op = PROTO_OP_LIST};
	_cleanup_free_ char *report = NULL;
	struct proto_reply rep;
	char err[256];
	int afd;

	f->d.slurm_requeue = fake_slurm_requeue;
	f->d.slurm_node = &fake_slurm_node;
	fake_slurm_requeue_fail = -EPERM;
	start_ckpt(f, true, NULL);
	afd = ckpt_agent(f);
	assert_int_equal(
	    evacuate_node(&f->d, "psu", false, &report, err, sizeof(err)), 0);
	agent_prepare_ok(f, afd);
	afd = agent_resume(f, 1);
	pump_until_state(f, JOB_READY);
	assert_int_equal(fake_hv.nrestore, 1);
	call(f, &req, &rep);
	assert_int_equal(rep.njobs, 1);
	assert_contains(rep.jobs[0].error,
			"not evacuated: job 42: saved, but not requeued (");
	assert_contains(rep.jobs[0].error,
			"it goes on here from the checkpoint");
	proto_reply_clear(&rep);
	/* The node resumed: the reason is not shown any more. */
	fake_node.drain = false;
	evacuate_watch_drain(&f->d, false);
	call(f, &req, &rep);
	assert_string_equal(rep.jobs[0].error, "");
	proto_reply_clear(&rep);
	close(afd);
}

/* An admin drains the node with the site's reason: vmmd evacuates it at
 * its next reconcile (without draining it again); a guest still booting
 * is saved once it is up; another reason is not the site's. */
static void test_evacuate_drain(void **state)
{
	struct fx *f = *state;
	int afd;

	f->d.slurm_requeue = fake_slurm_requeue;
	f->d.slurm_node = &fake_slurm_node;
	snprintf(f->d.cfg.evacuate_drain_reason,
		 sizeof(f->d.cfg.evacuate_drain_reason), "evacuate");
	fake_node.drain = true;
	snprintf(fake_node.reason, sizeof(fake_node.reason), "evacuated soon");
	evacuate_watch_drain(&f->d, false);
	assert_false(f->d.evacuating);
	snprintf(fake_node.reason, sizeof(fake_node.reason),
		 "EVACUATE: ECC count");
	start_ckpt(f, false, NULL); /* booting */
	evacuate_watch_drain(&f->d, false);
	assert_true(f->d.evacuating);
	assert_string_equal(f->d.evacuate_reason, "EVACUATE: ECC count");
	assert_int_equal(fake_node_drains, 0);
	/* Ready is at once saving. */
	afd = ckpt_agent_until(f, JOB_SAVING);
	agent_prepare_ok(f, afd);
	pump_until_state(f, JOB_SAVED);
	assert_int_equal(fake_slurm_requeues, 1);
	close(afd);
	stop_ok(f, JOB);
	fake_node.drain = false;
	evacuate_watch_drain(&f->d, false);
	assert_false(f->d.evacuating);
	/* A vmmd started while vmenvctl evacuate's drain holds (it was
	 * restarted during the evacuation) evacuates again, whatever the
	 * site's word; a reconcile alone does not ask Slurm without one. */
	f->d.cfg.evacuate_drain_reason[0] = '\0';
	fake_node.drain = true;
	snprintf(fake_node.reason, sizeof(fake_node.reason),
		 "vmenv evacuate: fan 3");
	evacuate_watch_drain(&f->d, false);
	assert_false(f->d.evacuating);
	evacuate_watch_drain(&f->d, true);
	assert_true(f->d.evacuating);
	assert_string_equal(f->d.evacuate_reason, "fan 3");
}

/* A guest vmmd did not start: a name, maybe vmenv metadata (id, node). */
static void stray_guest(struct fx *f, const char *name, uint32_t id,
			const char *node)
{
	char xml[1024], meta[256] = "", err[256];

	if (id)
		snprintf(meta, sizeof(meta),
			 "<metadata><vmenv:job xmlns:vmenv='" DOMXML_NS
			 "' id='%u' node='%s'/></metadata>",
			 id, node);
	snprintf(xml, sizeof(xml),
		 "<domain><name>%s</name>%s<devices><channel type='unix'>"
		 "<source mode='bind' path='%s/%s.sock'/></channel></devices>"
		 "</domain>",
		 name, meta, f->dir, name);
	if (fake_hv_ops.create(&fake_hv, xml, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

/* Reconcile judges a guest by the owner in its metadata (a restored guest
 * keeps another job's or node's name), by its name only without one, and
 * not at all while libvirt does not answer. */
static void test_reconcile_owner(void **state)
{
	static const struct {
		const char *name;
		uint32_t id;
		const char *node;
		bool stays;
	} cases[] = {
	    {"vmenv-n1-77", 77, "n1", false}, /* no such job here */
	    {"vmenv-n2-5", 5, "n2", true},    /* another node's */
	    {"vmenv-n1-78", 79, "n1", false}, /* job 79's, which is gone */
	    {"vmenv-n2-6", JOB, "n1", true},  /* job 42's, restored */
	    {"vmenv-n1-80", 0, NULL, false},  /* no metadata: by name */
	    {"vmenv-n2-81", 0, NULL, true},   /* ... another node's name */
	};
	struct fx *f = *state;

	start_ok(f);
	/* Job 42's own guest has another name now (as after a restore). */
	snprintf(job(f)->domain, sizeof(job(f)->domain), "vmenv-n2-6");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		stray_guest(f, cases[i].name, cases[i].id, cases[i].node);
	fake_hv.fail_owner = -EIO;
	job_reconcile(&f->d, false);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (cases[i].id)
			assert_true(fake_hv_domain(cases[i].name)->running);
	fake_hv.fail_owner = 0;
	job_reconcile(&f->d, false);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		print_message("%s\n", cases[i].name);
		assert_int_equal(fake_hv_domain(cases[i].name)->running,
				 cases[i].stays);
	}
	assert_true(fake_hv_domain(DOMAIN)->running);
	assert_int_equal(log_count("destroying guest vmenv-n1-"), 3);
	/* Job 42 ends: its guest is the one of its recorded name. */
	stop_ok(f, JOB);
	assert_false(fake_hv_domain("vmenv-n2-6")->running);
}

/* ======================================================================= */
/* bulk ports                                                               */
/* ======================================================================= */

/* A session of a guest whose agent knows bulk ports: its EXEC names a
 * port and markers; bfd is the port's QEMU end. */
struct bulk_sess {
	int afd, bfd;
	uint32_t sid, port;
	uint8_t start[AW_BULK_MARK_LEN], end[AW_BULK_MARK_LEN];
	struct exec_client c;
};

static int bulk_accept(uint32_t port)
{
	int fd = fake_hv_accept_bulk(fake_hv_domain(DOMAIN), port, WAIT_MS);

	if (fd < 0)
		fail_msg("vmmd never connected to bulk port %u: %s", port,
			 strerror(-fd));
	return fd;
}

/* The next EXEC, which must name a bulk port. */
static void bulk_exec(struct fx *f, struct bulk_sess *b,
		      const struct exec_opts *o)
{
	struct aw_exec e;

	exec_start(f, JOB, o, &b->c);
	b->sid = agent_expect_exec(f, b->afd, &e);
	assert_true(e.flags & AW_EXEC_BULK);
	assert_true(e.bulk_port < 4);
	assert_memory_not_equal(e.bulk_start, e.bulk_end, AW_BULK_MARK_LEN);
	b->port = e.bulk_port;
	memcpy(b->start, e.bulk_start, AW_BULK_MARK_LEN);
	memcpy(b->end, e.bulk_end, AW_BULK_MARK_LEN);
	aw_exec_clear(&e);
	b->bfd = bulk_accept(b->port);
}

static void bulk_running(struct fx *f, struct bulk_sess *b,
			 const struct exec_opts *o)
{
	agent_flags = AW_HELLO_BULK;
	/* Bulk ports are for steps that need not survive a vmmd restart. */
	snprintf(f->d.cfg.session_restarts, sizeof(f->d.cfg.session_restarts),
		 "no");
	start_ok(f);
	b->afd = agent_connect(f);
	agent_handshake(f, b->afd);
	assert_true(job(f)->agent_bulk);
	bulk_exec(f, b, o);
}

static void bulk_started(struct fx *f, struct bulk_sess *b, uint32_t err)
{
	struct proto_reply rep;

	agent_send_u32(f, b->afd, AW_STARTED, b->sid, 77, err, 2);
	client_reply(f, b->c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
}

/* The guest's command writes into its port (vmmd reads meanwhile). */
static void bulk_write(struct fx *f, int fd, const void *p, size_t n)
{
	agent_write(f, fd, p, n);
	pump(f, 20);
}

/* Stderr's EOF and EXIT on the agent channel, as the agent sends them
 * once the end marker is in the port. */
static void bulk_agent_exit(struct fx *f, struct bulk_sess *b, uint32_t code)
{
	agent_send(f, b->afd, AW_STDERR, b->sid, NULL, 0);
	agent_send_u32(f, b->afd, AW_EXIT, b->sid, AW_EXIT_CODE, code, 2);
}

static size_t read_some(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* --- steps across a vmmd restart (exec_reattach.c) ---------------------- */

static void reattach_send(struct fx *f, uint32_t sid, const char *token,
			  uint64_t out_bytes, struct exec_client *c)
{
	struct proto_request req = {.op = PROTO_OP_REATTACH, .job_id = JOB};
	int out[2], err[2], fds[3];

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = out[1];
	fds[2] = err[1];
	req.re.session = sid;
	snprintf(req.re.token, sizeof(req.re.token), "%s", token);
	req.re.out_bytes = out_bytes;
	c->fd = client_send(f, &req, fds, 3);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	c->in = -1;
	c->out = out[0];
	c->err = err[0];
}

/* The adopted guest's agent: HELLO with its setup done, no SETUP. */
static int agent_back(struct fx *f)
{
	int afd = agent_connect(f);
	struct frame fr;

	agent_expect(f, afd, AW_HELLO, &fr);
	free(fr.p);
	agent_flags = AW_HELLO_SETUP_DONE;
	agent_hello(f, afd, AW_VERSION);
	pump_until_state(f, JOB_READY);
	return afd;
}

/* A step's task comes back after vmmd dies: only with the session's
 * token (its owner's uid is checked the same way: t_85 tries another
 * user), and the agent is told exactly what the task already holds; the
 * record is root's and has no token in it. */
static void test_exec_reattach_after_restart(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct exec_client c, c2, c3;
	struct proto_reply rep;
	char token[PROTO_TOKEN_HEX + 1], path[PATH_MAX + 32], *rec = NULL;
	char buf[64];
	struct aw_reader r;
	struct frame fr;
	struct stat st;
	size_t len;
	uint32_t sid;
	int afd;

	sid = running_session(f, &afd, &o, &c);
	agent_send_u32(f, afd, AW_STARTED, sid, 1234, 0, 1);
	client_reply(f, c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	assert_int_equal(last_session.session, sid);
	snprintf(token, sizeof(token), "%s", last_session.token);
	agent_send(f, afd, AW_STDOUT, sid, "hello\n", 6);
	assert_true(pump_until_readable(f, c.out, WAIT_MS));
	assert_int_equal(read_some(c.out, buf, sizeof(buf)), 6);

	snprintf(path, sizeof(path), "%s/sessions/%u", job(f)->dir, sid);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(read_file_limited(path, 4096, &rec, &len), 0);
	assert_null(strstr(rec, token));
	free(rec);

	/* vmmd goes (as at SIGTERM: the guest and the record stay); its
	 * task sees the connection close, with no error. */
	restart_vmmd(f);
	close(afd);
	fake_hv_domain(DOMAIN)->agent_fd = -1; /* the old vmmd's channel */
	assert_int_equal(read(c.fd, buf, sizeof(buf)), 0);
	assert_non_null(job(f));
	afd = agent_back(f);

	/* A wrong token: refused, and the session still waits. */
	reattach_send(f, sid,
		      "00000000000000000000000000000000"
		      "00000000000000000000000000000000",
		      6, &c2);
	client_reply(f, c2.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error, "permission denied");
	close(c2.fd), close(c2.out), close(c2.err);
	/* The right one: the agent hears where the task's output stands. */
	reattach_send(f, sid, token, 6, &c3);
	agent_expect(f, afd, AW_RESUME, &fr);
	assert_int_equal(fr.h.session, sid);
	aw_reader_init(&r, fr.p, fr.h.len);
	assert_int_equal(aw_get_i64(&r), 6);
	assert_int_equal(aw_get_i64(&r), 0);
	assert_int_equal(aw_reader_done(&r), 0);
	free(fr.p);
	/* Only once. */
	reattach_send(f, sid, token, 6, &c2);
	client_reply(f, c2.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_ERROR);
	assert_contains(rep.error, "re-attached already");
	{
		struct aw_buf b = {0};

		assert_int_equal(aw_put_u32(&b, 0), 0);
		assert_int_equal(aw_put_i64(&b, 0), 0);
		assert_int_equal(aw_put_u32(&b, 1), 0);
		assert_int_equal(aw_put_u32(&b, AW_WINDOW), 0);
		agent_send(f, afd, AW_RESUMED, sid, b.data, b.len);
		aw_buf_free(&b);
	}
	client_reply(f, c3.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_STARTED);
	assert_true(rep.reattached);
	agent_send(f, afd, AW_STDOUT, sid, "world\n", 6);
	assert_true(pump_until_readable(f, c3.out, WAIT_MS));
	assert_int_equal(read_some(c3.out, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "world\n");
	agent_send(f, afd, AW_STDOUT, sid, NULL, 0);
	agent_send(f, afd, AW_STDERR, sid, NULL, 0);
	agent_send_u32(f, afd, AW_EXIT, sid, AW_EXIT_CODE, 5, 2);
	client_reply(f, c3.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(rep.exit_value, 5);
	/* The agent forgets it; the record goes with it. */
	agent_recv(f, afd, &fr);
	while (fr.h.type == AW_CREDIT) {
		free(fr.p);
		agent_recv(f, afd, &fr);
	}
	assert_int_equal(fr.h.type, AW_RELEASE);
	assert_int_equal(fr.h.session, sid);
	free(fr.p);
	assert_int_equal(stat(path, &st), -1);
	close(c.fd), close(c.out), close(c.err);
	close(c2.fd), close(c2.out), close(c2.err);
	close(c3.fd), close(c3.out), close(c3.err);
	close(afd);
}

/* Bytes before the start marker are dropped, the output shows as it
 * comes (nothing held back that cannot be a marker), and the exit waits
 * for the end marker even when the agent's EXIT came first. */
static void test_bulk_output_then_exit(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct bulk_sess b, b2;
	struct proto_reply rep;
	char out[128];

	bulk_running(f, &b, &o);
	assert_int_equal(count(fake_hv.last_xml, "org.vmenv.bulk."), 4);
	bulk_started(f, &b, 0);
	bulk_write(f, b.bfd, "lingering", 9);
	bulk_write(f, b.bfd, b.start, 5);
	bulk_write(f, b.bfd, b.start + 5, AW_BULK_MARK_LEN - 5);
	bulk_write(f, b.bfd, "hello ", 6);
	assert_true(pump_until_readable(f, b.c.out, WAIT_MS));
	assert_int_equal(read_some(b.c.out, out, sizeof(out)), 6);
	assert_string_equal(out, "hello ");
	bulk_write(f, b.bfd, "world\n", 6);
	bulk_agent_exit(f, &b, 3);
	pump(f, 200);
	assert_false(readable(b.c.fd)); /* the exit waits for the marker */
	assert_int_equal(exec_count(job(f)), 1);
	bulk_write(f, b.bfd, b.end, AW_BULK_MARK_LEN);
	bulk_write(f, b.bfd, "after the end", 13);
	client_reply(f, b.c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(rep.exit_value, 3);
	assert_int_equal(read_to_eof(f, b.c.out, out, sizeof(out)), 6);
	assert_string_equal(out, "world\n");
	assert_int_equal(read_to_eof(f, b.c.err, out, sizeof(out)), 0);
	assert_int_equal(job(f)->bulk_bytes, 12);
	exec_close(&b.c);
	/* The next session gets another port and other markers. */
	b2.afd = b.afd;
	bulk_exec(f, &b2, &o);
	assert_int_not_equal(b2.port, b.port);
	assert_memory_not_equal(b2.start, b.start, AW_BULK_MARK_LEN);
	exec_close(&b2.c);
	assert_int_equal(job(f)->state, JOB_READY);
}

/* A command that ends at once: the port is another channel than the
 * agent's, and its whole output with the end marker can be read before
 * the agent's STARTED (which then still carries the port's errno, 0).
 * That STARTED is no protocol error; the session ends with its status.
 * (Seen on the cluster: 1 job in 24, "the guest's agent broke the
 * protocol".) */
static void test_bulk_ends_before_started(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct bulk_sess b;
	struct proto_reply rep;
	char out[128];

	bulk_running(f, &b, &o);
	bulk_write(f, b.bfd, b.start, AW_BULK_MARK_LEN);
	bulk_write(f, b.bfd, "out1\n", 5);
	bulk_write(f, b.bfd, b.end, AW_BULK_MARK_LEN);
	pump(f, 100);
	bulk_started(f, &b, 0);
	bulk_agent_exit(f, &b, 7);
	client_reply(f, b.c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(rep.exit_value, 7);
	assert_int_equal(read_to_eof(f, b.c.out, out, sizeof(out)), 5);
	assert_string_equal(out, "out1\n");
	exec_close(&b.c);
	assert_int_equal(job(f)->state, JOB_READY);
}

/* The guest writes what it likes where it likes: a session's markers on
 * another port, another session's marker inside the output. */
static void test_bulk_foreign_bytes(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1, .merge_stderr = true};
	uint8_t fake[AW_BULK_MARK_LEN];
	struct bulk_sess b;
	struct proto_reply rep;
	char out[128], want[64];
	int other;

	bulk_running(f, &b, &o);
	other = bulk_accept((b.port + 1) % 4);
	bulk_started(f, &b, 0);
	bulk_write(f, other, b.start, AW_BULK_MARK_LEN);
	bulk_write(f, other, "wrong port", 10);
	bulk_write(f, other, b.end, AW_BULK_MARK_LEN);
	memset(fake, 0xff, sizeof(fake));
	bulk_write(f, b.bfd, b.start, AW_BULK_MARK_LEN);
	bulk_write(f, b.bfd, "a", 1);
	bulk_write(f, b.bfd, fake, sizeof(fake));
	bulk_write(f, b.bfd, "b", 1);
	bulk_write(f, b.bfd, b.end, AW_BULK_MARK_LEN);
	agent_send_u32(f, b.afd, AW_EXIT, b.sid, AW_EXIT_CODE, 0, 2);
	client_reply(f, b.c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(read_to_eof(f, b.c.out, out, sizeof(out)),
			 2 + sizeof(fake));
	want[0] = 'a';
	memcpy(want + 1, fake, sizeof(fake));
	want[1 + sizeof(fake)] = 'b';
	assert_memory_equal(out, want, 2 + sizeof(fake));
	exec_close(&b.c);
}

/* Bytes a socket holds before its writer would block. */
static size_t write_until_full(struct fx *f, int fd, size_t max)
{
	static const char buf[65536];
	size_t total = 0;
	int idle = 0;

	while (total < max && idle < 30) {
		ssize_t n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);

		if (n > 0) {
			total += (size_t)n;
			idle = 0;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
		idle++;
	}
	return total;
}

/* A task that does not read: vmmd stops reading the port after a bounded
 * queue (the guest's writer then blocks in QEMU), and serves the other
 * sessions meanwhile; once the task reads, everything arrives. */
static void test_bulk_backpressure(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1, .fill_stdout = true};
	struct exec_opts o2 = {.stdin_fd = -1};
	struct bulk_sess b, b2;
	struct proto_reply rep;
	static char buf[1 << 16];
	size_t sent, got = 0;
	uint64_t end;
	ssize_t n;

	bulk_running(f, &b, &o);
	bulk_started(f, &b, 0);
	bulk_write(f, b.bfd, b.start, AW_BULK_MARK_LEN);
	sent = write_until_full(f, b.bfd, 64u << 20);
	print_message("the port took %zu bytes before it blocked\n", sent);
	assert_true(sent >= 1u << 20);
	assert_true(sent < 3u << 20);
	/* Another session's output flows all the same. */
	b2.afd = b.afd;
	bulk_exec(f, &b2, &o2);
	bulk_started(f, &b2, 0);
	bulk_write(f, b2.bfd, b2.start, AW_BULK_MARK_LEN);
	bulk_write(f, b2.bfd, "ok\n", 3);
	bulk_write(f, b2.bfd, b2.end, AW_BULK_MARK_LEN);
	bulk_agent_exit(f, &b2, 0);
	client_reply(f, b2.c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(read_to_eof(f, b2.c.out, buf, sizeof(buf)), 3);
	exec_close(&b2.c);
	/* The task reads: the rest comes (after the filler). */
	bulk_agent_exit(f, &b, 0);
	end = now_ms() + WAIT_MS;
	while (got < sent + FILL_BYTES && now_ms() < end) {
		n = read(b.c.out, buf, sizeof(buf));
		if (n > 0)
			got += (size_t)n;
		if (got >= sent && b.end[0]) {
			bulk_write(f, b.bfd, b.end, AW_BULK_MARK_LEN);
			b.end[0] = 0; /* sent */
		}
		assert_int_equal(loop_run_once(f->d.loop, 1), 0);
	}
	assert_int_equal(got, sent + FILL_BYTES);
	client_reply(f, b.c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	exec_close(&b.c);
}

/* The guest could not open the port (an earlier session's process holds
 * it): the output comes through the agent, and the port rests. */
static void test_bulk_busy_falls_back(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1, .merge_stderr = true};
	struct bulk_sess b, n;
	struct proto_reply rep;
	char out[64];

	bulk_running(f, &b, &o);
	bulk_started(f, &b, EBUSY);
	agent_send(f, b.afd, AW_STDOUT, b.sid, "relayed\n", 8);
	agent_send(f, b.afd, AW_STDOUT, b.sid, NULL, 0);
	agent_send_u32(f, b.afd, AW_EXIT, b.sid, AW_EXIT_CODE, 0, 2);
	client_reply(f, b.c.fd, &rep);
	assert_int_equal(rep.kind, PROTO_EV_EXIT);
	assert_int_equal(read_to_eof(f, b.c.out, out, sizeof(out)), 8);
	assert_string_equal(out, "relayed\n");
	exec_close(&b.c);
	assert_int_equal(log_count("still held by an earlier session"), 1);
	n.afd = b.afd;
	for (int i = 0; i < 6; i++) {
		bulk_exec(f, &n, &o);
		assert_int_not_equal(n.port, b.port);
		agent_send(f, n.afd, AW_EXEC_FAIL, n.sid, "\0\0\0\2\0\0\0\0",
			   8);
		client_reply(f, n.c.fd, &rep);
		assert_int_equal(rep.kind, PROTO_EV_ERROR);
		exec_close(&n.c);
	}
}

/* After a bulk EXEC, STARTED must say whether the port is used. */
static void test_bulk_started_without_status(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1};
	struct bulk_sess b;

	bulk_running(f, &b, &o);
	agent_send_u32(f, b.afd, AW_STARTED, b.sid, 77, 0, 1);
	pump_until_state(f, JOB_FAILED);
	exec_close(&b.c);
}

/* No port for a task that asks for the relay, nor for an agent that does
 * not know them (every other test), nor for a checkpointing job. */
static void test_bulk_not_asked(void **state)
{
	struct fx *f = *state;
	struct exec_opts o = {.stdin_fd = -1, .relay = true};
	struct exec_client c;
	struct aw_exec e;
	int afd;

	agent_flags = AW_HELLO_BULK;
	start_ok(f);
	afd = agent_connect(f);
	agent_handshake(f, afd);
	exec_start(f, JOB, &o, &c);
	agent_expect_exec(f, afd, &e);
	assert_false(e.flags & AW_EXEC_BULK);
	aw_exec_clear(&e);
	exec_close(&c);
}

/* ======================================================================= */
/* vmenvctl console and vmenvctl metrics                                    */
/* ======================================================================= */

/* Asks for job id's console log: the reply, and with ok what follows up to
 * vmmd's close (follow: after pumping until more says to stop). */
static int console_open(struct fx *f, uint32_t id, bool follow,
			struct proto_reply *rep)
{
	struct proto_request req = {
	    .op = PROTO_OP_CONSOLE, .job_id = id, .follow = follow};
	int fd = client_send(f, &req, NULL, 0);

	client_reply(f, fd, rep);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void console_dump(struct fx *f, uint32_t id, char *buf, size_t len)
{
	struct proto_reply rep;
	int fd = console_open(f, id, false, &rep);

	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("console refused: %s", rep.error);
	read_to_eof(f, fd, buf, len);
	close(fd);
}

static size_t console_dump_len(struct fx *f, char *buf, size_t len)
{
	struct proto_reply rep;
	int fd = console_open(f, JOB, false, &rep);
	size_t n;

	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	n = read_to_eof(f, fd, buf, len);
	close(fd);
	return n;
}

static void console_refused(struct fx *f, uint32_t id, const char *want)
{
	struct proto_reply rep;
	int fd = console_open(f, id, false, &rep);

	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, want);
	close(fd);
}

/* The log's bytes as they are (escaping is the client's, for a tty). */
static void test_console_dump(void **state)
{
	static const char text[] = "[    0.000000] Linux version\r\n"
				   "\x1b]0;title\x07\x1b[2J guest\n";
	struct fx *f = *state;
	char buf[256];

	start_ok(f);
	write_text(job(f)->console, text);
	console_dump(f, JOB, buf, sizeof(buf));
	assert_string_equal(buf, text);
	/* Unknown: no record, no log. */
	console_refused(f, 77, "job 77");
	console_refused(f, 77, "no console log on node n1");
}

/* Only the last CONSOLE_TAIL_BYTES of a long log. */
static void test_console_tail_bounded(void **state)
{
	struct fx *f = *state;
	size_t big = CONSOLE_TAIL_BYTES + 4096;
	_cleanup_free_ char *text = malloc(big + 1);
	_cleanup_free_ char *buf = malloc(big + 2);

	assert_non_null(text);
	assert_non_null(buf);
	memset(text, 'a', big);
	memcpy(text + big - 4, "END\n", 4);
	text[big] = '\0';
	start_ok(f);
	write_text(job(f)->console, text);
	assert_int_equal(console_dump_len(f, buf, big + 2), CONSOLE_TAIL_BYTES);
	assert_contains(buf, "END\n");
}

/* --follow: what the guest writes later comes too; the stream ends once
 * the guest is gone. */
static void test_console_follow(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char buf[256], path[VMENV_MAX_PATH];
	FILE *log;
	int fd;

	start_ok(f);
	snprintf(path, sizeof(path), "%s", job(f)->console);
	write_text(path, "first\n");
	fd = console_open(f, JOB, true, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_true(pump_until_readable(f, fd, WAIT_MS));
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	log = fopen(path, "a");
	assert_non_null(log);
	fputs("second\n", log);
	fclose(log);
	assert_true(pump_until_readable(f, fd, WAIT_MS));
	assert_int_equal(read(fd, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "second\n", 7);
	/* Still open while the guest runs. */
	pump(f, 3 * CONSOLE_POLL_MS);
	assert_int_equal(read(fd, buf, sizeof(buf)), -1);
	fake_hv_emit(DOMAIN, HV_EV_STOPPED);
	assert_int_equal(read_to_eof(f, fd, buf, sizeof(buf)), 0);
	close(fd);
	assert_null(f->d.consoles);
}

/* After the job's end: readable for console_linger_s (also after a vmmd
 * restart), then removed when keep_console_logs does not keep it. */
static void test_console_after_end(void **state)
{
	struct fx *f = *state;
	char buf[256], path[VMENV_MAX_PATH];

	start_ok(f);
	snprintf(path, sizeof(path), "%s", job(f)->console);
	write_text(path, "bye\n");
	stop_ok(f, JOB);
	assert_true(exists(path));
	console_dump(f, JOB, buf, sizeof(buf));
	assert_string_equal(buf, "bye\n");
	restart_vmmd(f);
	console_dump(f, JOB, buf, sizeof(buf));
	assert_string_equal(buf, "bye\n");
	/* The time is up. */
	assert_int_equal(f->d.console_ended.n, 1);
	f->d.console_ended.e[0].until = 1;
	console_keep_sweep(&f->d.console_ended, &f->d.cfg, false);
	assert_false(exists(path));
	assert_int_equal(f->d.console_ended.n, 0);
	console_refused(f, JOB, "no console log");
}

/* In a child as OTHER_UID: another user's job's console is refused by
 * name, running or ended. */
static int console_other_child(struct fx *f)
{
	struct proto_request req = {.op = PROTO_OP_CONSOLE, .job_id = JOB};
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
	    setuid(OTHER_UID) < 0)
		return 20;
	fd = unix_connect(f->d.cfg.socket_path, 1000);
	if (fd < 0 || proto_send_request(fd, &req, NULL, 0) < 0 ||
	    proto_recv_reply(fd, WAIT_MS, &rep, err, sizeof(err)) < 0)
		return 21;
	close(fd);
	if (rep.kind != PROTO_REPLY_ERROR ||
	    !strstr(rep.error, "job 42: permission denied"))
		return 22;
	return 0;
}

static void console_as_other(struct fx *f)
{
	int status;
	pid_t pid;

	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		_exit(console_other_child(f));
	}
	while (waitpid(pid, &status, WNOHANG) == 0)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_console_other_user(void **state)
{
	struct fx *f = *state;

	if (getuid() != 0) {
		skip();
		return;
	}
	start_ok(f);
	write_text(job(f)->console, "secret\n");
	console_as_other(f);
	stop_ok(f, JOB);
	console_as_other(f);
}

/* --- kept overlays (--vm-keep-overlay, vmmd/ovkeep.h) ------------------ */

#define SHA_K "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define OVL   "QFI\xfb the guest's disk with a marker"

/* A running job whose disk is an overlay on a cached base (the fixture's
 * images boot kernels: the overlay and the base's lease are made here as
 * jobimage.c would). */
static void start_with_overlay(struct fx *f, bool keep)
{
	char p[2 * VMENV_MAX_PATH];
	const char *cache = f->d.cfg.image_cache;
	struct job *j;

	start_ok(f);
	j = job(f);
	j->spec.v.keep_overlay = keep;
	snprintf(p, sizeof(p), "%s/disk", j->dir);
	assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
	snprintf(p, sizeof(p), "%s/disk/overlay.qcow2", j->dir);
	write_text(p, OVL);
	for (size_t i = 0; i < 3; i++) {
		static const char *const sub[] = {"sha256", "leases", "locks"};
		snprintf(p, sizeof(p), "%s/%s", cache, sub[i]);
		assert_int_equal(mkdir_p(p, 0755), 0);
	}
	snprintf(p, sizeof(p), "%s/sha256/%s", cache, SHA_K);
	if (!exists(p))
		write_text(p, "BASE\n");
	assert_int_equal(jobimg_restore(j, SHA_K), 0);
}

static bool kept_lease(struct fx *f)
{
	char p[VMENV_MAX_PATH + 160];

	snprintf(p, sizeof(p), "%s/leases/%s/" NODE ".42" OVKEEP_LEASE_SUFFIX,
		 f->d.cfg.image_cache, SHA_K);
	return exists(p);
}

static bool kept_file(struct fx *f)
{
	char p[VMENV_MAX_PATH + 32];

	snprintf(p, sizeof(p), "%s/" OVKEEP_DIR "/42.qcow2", f->d.cfg.run_dir);
	return exists(p);
}

static void overlay_list(struct fx *f, struct proto_reply *rep)
{
	struct proto_request req = {.op = PROTO_OP_OVERLAY_LIST};

	call(f, &req, rep);
	assert_int_equal(rep->kind, PROTO_REPLY_OK);
	assert_true(rep->has_overlays);
}

/* overlay_get as this process: the reply and the fd it carries. */
static int overlay_get(struct fx *f, uint32_t id, struct proto_reply *rep)
{
	struct proto_request req = {.op = PROTO_OP_OVERLAY_GET, .job_id = id};
	int fd = client_send(f, &req, NULL, 0), xfd = -1;
	char err[PROTO_MAX_ERROR] = "";

	if (!pump_until_readable(f, fd, WAIT_MS))
		fail_msg("no reply from vmmd");
	if (proto_recv_reply_fd(fd, 1000, rep, &xfd, err, sizeof(err)) != 0)
		fail_msg("bad reply: %s", err);
	close(fd);
	return xfd;
}

static void test_overlay_kept(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	char buf[128] = "";
	int fd;

	start_with_overlay(f, true);
	stop_ok(f, JOB);
	pump(f, 50);
	assert_null(job(f));
	assert_true(kept_file(f));
	assert_true(kept_lease(f));
	assert_true(log_count("job 42: overlay kept for uid") > 0);

	overlay_list(f, &rep);
	assert_int_equal(rep.noverlays, 1);
	assert_int_equal(rep.overlays[0].job_id, JOB);
	assert_int_equal(rep.overlays[0].uid, getuid());
	assert_int_equal(rep.overlays[0].bytes, strlen(OVL));
	assert_contains(rep.overlays[0].base, SHA_K);
	assert_int_equal(rep.overlays[0].expires,
			 rep.overlays[0].created + 7 * 86400);
	proto_reply_clear(&rep);

	fd = overlay_get(f, JOB, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(OVL));
	assert_string_equal(buf, OVL);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);
	proto_reply_clear(&rep);

	fd = overlay_get(f, 43, &rep);
	assert_int_equal(fd, -1);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "job 43 has no kept overlay of yours");
	proto_reply_clear(&rep);
}

/* In a child as OTHER_UID: another user's kept overlay is not listed,
 * not handed over, not removed. */
static int overlay_other_child(struct fx *f)
{
	static const enum proto_op ops[] = {
	    PROTO_OP_OVERLAY_LIST, PROTO_OP_OVERLAY_GET, PROTO_OP_OVERLAY_RM};
	char err[PROTO_MAX_ERROR];

	if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
	    setuid(OTHER_UID) < 0)
		return 20;
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		struct proto_request req = {.op = ops[i], .job_id = JOB};
		struct proto_reply rep;
		int xfd = -1, fd = unix_connect(f->d.cfg.socket_path, 1000);

		if (fd < 0 || proto_send_request(fd, &req, NULL, 0) < 0 ||
		    proto_recv_reply_fd(fd, WAIT_MS, &rep, &xfd, err,
					sizeof(err)) < 0)
			return 21;
		close(fd);
		if (xfd >= 0)
			return 22;
		if (ops[i] == PROTO_OP_OVERLAY_LIST &&
		    (rep.kind != PROTO_REPLY_OK || rep.noverlays != 0))
			return 23;
		if (ops[i] != PROTO_OP_OVERLAY_LIST &&
		    (rep.kind != PROTO_REPLY_ERROR ||
		     !strstr(rep.error, "job 42 has no kept overlay of yours")))
			return 24;
		proto_reply_clear(&rep);
	}
	return 0;
}

static void test_overlay_other_user(void **state)
{
	struct fx *f = *state;
	struct proto_request rm = {.op = PROTO_OP_OVERLAY_RM, .job_id = JOB};
	struct proto_reply rep;
	int status;
	pid_t pid;

	if (getuid() != 0) {
		skip();
		return;
	}
	start_with_overlay(f, true);
	stop_ok(f, JOB);
	pump(f, 50);
	assert_true(kept_file(f));
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		_exit(overlay_other_child(f));
	}
	while (waitpid(pid, &status, WNOHANG) == 0)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(log_count("uid 65534 refused job 42's kept overlay") > 0);
	assert_true(kept_file(f));

	/* Its owner (here root) removes it; the lease goes with it. */
	call(f, &rm, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_false(kept_file(f));
	assert_false(kept_lease(f));
}

/* Debugging a failed job is the main use: kept when it fails. */
static void test_overlay_kept_failed(void **state)
{
	struct fx *f = *state;

	start_with_overlay(f, true);
	job_fail(job(f), "job 42: it broke");
	pump(f, 50);
	assert_true(kept_file(f));
	assert_true(kept_lease(f));
	/* The end that follows finds nothing more to keep. */
	stop_ok(f, JOB);
	pump(f, 50);
	assert_true(kept_file(f));
}

static void test_overlay_not_asked(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;

	start_with_overlay(f, false);
	stop_ok(f, JOB);
	pump(f, 50);
	assert_false(kept_file(f));
	assert_false(kept_lease(f));
	overlay_list(f, &rep);
	assert_int_equal(rep.noverlays, 0);
	proto_reply_clear(&rep);
}

/* Past overlay_retention_s the sweep removes it and its lease;
 * overlay_keep_max 0 keeps none. */
static void test_overlay_swept(void **state)
{
	struct fx *f = *state;

	start_with_overlay(f, true);
	stop_ok(f, JOB);
	pump(f, 50);
	assert_true(kept_file(f));
	ovkeep_sweep(&f->d);
	assert_true(kept_file(f));
	f->d.cfg.overlay_retention_s = 0;
	ovkeep_sweep(&f->d);
	assert_false(kept_file(f));
	assert_false(kept_lease(f));
	assert_true(log_count("older than overlay_retention_s (0 s)") > 0);

	f->d.cfg.overlay_keep_max = 0;
	start_with_overlay(f, true);
	stop_ok(f, JOB);
	pump(f, 50);
	assert_false(kept_file(f));
	assert_false(kept_lease(f));
	assert_true(log_count("job 42: overlay (1 MiB) not kept: this node "
			      "keeps none (overlay_keep_max = 0)") > 0);
}

static void metrics_text(struct fx *f, char *buf, size_t len)
{
	struct proto_request req = {.op = PROTO_OP_METRICS};
	struct proto_reply rep;

	call(f, &req, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_OK);
	assert_non_null(rep.text);
	snprintf(buf, len, "%s", rep.text);
	proto_reply_clear(&rep);
}

/* The counters follow the jobs: a start, the guest running, a failure
 * under its reason, and nothing running after the stop. */
static void test_metrics_counts(void **state)
{
	struct fx *f = *state;
	char text[16384];

	metrics_text(f, text, sizeof(text));
	assert_contains(text, "vmenv_job_starts_total{node=\"n1\"} 0\n");
	start_ok(f);
	metrics_text(f, text, sizeof(text));
	assert_contains(text, "vmenv_job_starts_total{node=\"n1\"} 1\n");
	assert_contains(text, "vmenv_guests_running{node=\"n1\"} 1\n");
	fake_hv_emit(DOMAIN, HV_EV_CRASHED);
	pump_until_state(f, JOB_FAILED);
	metrics_text(f, text, sizeof(text));
	assert_contains(text, "vmenv_job_failures_total{node=\"n1\",reason="
			      "\"guest_stopped\"} 1\n");
	assert_contains(text, "vmenv_job_failures_total{node=\"n1\",reason="
			      "\"boot_timeout\"} 0\n");
	assert_contains(text, "vmenv_guests_running{node=\"n1\"} 0\n");
	stop_ok(f, JOB);
	/* A refused start counts as started and as refused. */
	start_job(f, 43, "no-such-image", &(struct proto_reply){0});
	metrics_text(f, text, sizeof(text));
	assert_contains(text, "vmenv_job_starts_total{node=\"n1\"} 2\n");
	assert_contains(text, "vmenv_job_failures_total{node=\"n1\",reason="
			      "\"refused\"} 1\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_start),
	    T(test_console_dump),
	    T(test_console_tail_bounded),
	    T(test_console_follow),
	    T(test_console_after_end),
	    T(test_console_other_user),
	    T(test_overlay_kept),
	    T(test_overlay_other_user),
	    T(test_overlay_kept_failed),
	    T(test_overlay_not_asked),
	    T(test_overlay_swept),
	    T(test_metrics_counts),
	    T(test_start_twice),
	    T(test_step_end),
	    T(test_exec_session_limit),
	    T(test_start_unknown_image),
	    T(test_start_refusals),
	    T(test_start_create_fails),
	    T(test_start_placement),
	    T(test_start_two_jobs_disjoint),
	    T(test_start_live_limit),
	    T(test_start_cannot_give),
	    T(test_vfs_across_restart),
	    T(test_reconcile_frees_devices),
	    T(test_devices_follow_the_guest),
	    T(test_spec_drives_placement),
	    T(test_exec_waits_then_runs),
	    T(test_exec_reattach_after_restart),
	    T(test_agent_v1),
	    T(test_agent_hello_text_escaped),
	    T(test_agent_multinode),
	    T(test_net_shared_and_refused),
	    T(test_net_sweep),
	    T(test_exec_stdin_merge_signal),
	    T(test_exec_script),
	    T(test_exec_script_not_a_file),
	    T(test_exec_signal_and_client_gone),
	    T(test_exec_refusals),
	    T(test_boot_timeout),
	    T(test_guest_crash),
	    T(test_guest_io_error),
	    T(test_malformed_frames),
	    T(test_flood_cut_off),
	    T(test_stray_races_allowed),
	    T(test_oversized_client_message),
	    T(test_bad_client_requests),
	    T(test_garbage_on_exec_connection),
	    T(test_exec_connection_long_message),
	    T(test_exec_stdin_from_file),
	    T(test_stop),
	    T(test_stop_grace_bounded),
	    T(test_stop_idle_at_once),
	    T(test_stop_console_logs),
	    T(test_exec_other_user),
	    T(test_client_limits),
	    T(test_policy_refuses_start),
	    T(test_policy_spec_applied),
	    T(test_mounts_checked),
	    T(test_policy_matches_slurm),
	    T(test_policy_bad_file),
	    T(test_ckpt_on_demand),
	    T(test_ckpt_requeue_restore),
	    T(test_ckpt_restore_append_mode),
	    T(test_ckpt_restore_refused),
	    T(test_ckpt_guest_refuses),
	    T(test_ckpt_disk_full),
	    T(test_ckpt_schedule),
	    T(test_ckpt_devices),
	    T(test_ckpt_standin),
	    T(test_ckpt_restore_other_job),
	    T(test_ckpt_restore_refused_other),
	    T(test_ckpt_restore_consumes),
	    T(test_ckpt_fate),
	    T(test_ckpt_retention),
	    T(test_ckpt_job_end),
	    T(test_ckpt_userstore_symlink),
	    T(test_ckpt_userstore_swap_during_save),
	    T(test_ckpt_userstore_forged),
	    T(test_ckpt_restore_unlisted),
	    T(test_ckpt_userstore_remove),
	    T(test_ckpt_keep_limits),
	    T(test_ckpt_no_space),
	    T(test_ckpt_node_store_not_roots),
	    T(test_ckpt_on_demand_policy),
	    T(test_ckpt_requeue_refused_keeps),
	    T(test_ckpt_multinode_first),
	    T(test_ckpt_multinode_abandoned),
	    T(test_ckpt_multinode_save_fails),
	    T(test_ckpt_multinode_follower),
	    T(test_ckpt_multinode_follower_ends_before_outcome),
	    T(test_ckpt_multinode_follower_decides),
	    T(test_ckpt_multinode_first_not_requeued),
	    T(test_ckpt_multinode_follower_verdict),
	    T(test_ckpt_multinode_follower_no_verdict),
	    T(test_ckpt_multinode_restart),
	    T(test_ckpt_multinode_earlier_plan),
	    T(test_ckpt_multinode_earlier_plan_first),
	    T(test_ckpt_multinode_adopted),
	    T(test_ckpt_on_demand_adopted),
	    T(test_ckpt_save_limit),
	    T(test_ckpt_save_limit_domain),
	    T(test_ckpt_multinode_userdir),
	    T(test_ckpt_multinode_next_plan),
	    T(test_ckpt_multinode_used_boots),
	    T(test_ckpt_multinode_abandoned_keeps),
	    T(test_ckpt_multinode_abort_text),
	    T(test_ckpt_multinode_retry),
	    T(test_evacuate),
	    T(test_evacuate_root),
	    T(test_evacuate_stays),
	    T(test_evacuate_drain),
	    T(test_evacuate_after_on_demand),
	    T(test_evacuate_not_requeued),
	    T(test_reconcile_owner),
	    T(test_bulk_output_then_exit),
	    T(test_bulk_ends_before_started),
	    T(test_bulk_foreign_bytes),
	    T(test_bulk_backpressure),
	    T(test_bulk_busy_falls_back),
	    T(test_bulk_started_without_status),
	    T(test_bulk_not_asked),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	log_set_sink(log_sink);
	log_set_level(LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
