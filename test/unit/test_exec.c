// SPDX-License-Identifier: MIT
/*
 * vmmd's exec relay (vmmd/exec*.c) over its transports (bulk.c, agent.c),
 * linked without job.c and ckpt.c: the test is the owner (it fills the
 * agent's handlers as job.c would, routing session frames to
 * exec_on_frame), the guest (fake_guest.h, and QEMU's end of a bulk port)
 * and the task (the client connection and stdio pipes exec_begin takes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testlog.h"
#include "testutil.h"

#include "fake_guest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agentwire.h"
#include "bulk.h"
#include "domxml.h"
#include "exec.h"
#include "jobrec.h"
#include "log.h"
#include "proto.h"
#include "vmmd.h"

#define JOB_ID 9

struct task {
	int cfd;  /* the task's end of its connection to vmmd */
	int in_w; /* writes the session's stdin */
	int out_r, err_r;
};

struct fx {
	char dir[64];
	char sock[128];
	char bulk_sock[128];
	struct vmmd d;
	struct job j;
	struct guest g;
	int bulk_listen, bulk_fd; /* QEMU's end of bulk port 0 */
	unsigned fails;
};

static struct fx *cur;

/* --- the owner: job.c's routing, no lifecycle ------------------------- */

static int h_build_setup(struct job *j, uint32_t version, struct aw_buf *out)
{
	(void)j, (void)version, (void)out;
	fail_msg("no SETUP in these tests");
	return -EINVAL;
}

/* The guest is taken as set up: the test made the job ready. */
static bool h_on_hello(struct job *j, uint32_t flags)
{
	(void)j, (void)flags;
	return false;
}

static void h_on_setup_ok(struct job *j)
{
	(void)j;
}

static int h_on_ckpt_frame(struct job *j, uint8_t type, const uint8_t *p,
			   size_t n)
{
	(void)j, (void)type, (void)p, (void)n;
	return 0;
}

static void h_on_fail(struct job *j, enum metrics_fail reason, const char *msg)
{
	(void)reason;
	print_message("job failed: %s\n", msg);
	cur->fails++;
	agent_detach(j);
}

static const struct agent_handlers handlers = {
    .build_setup = h_build_setup,
    .on_hello = h_on_hello,
    .on_setup_ok = h_on_setup_ok,
    .on_session_frame = exec_on_frame,
    .on_ckpt_frame = h_on_ckpt_frame,
    .on_fail = h_on_fail,
};

/* --- the fixture -------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct gframe fr;

	assert_non_null(f);
	cur = f;
	log_reset();
	strcpy(f->dir, "/tmp/vmenv-exec-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/agent.sock", f->dir);
	snprintf(f->bulk_sock, sizeof(f->bulk_sock), "%s/bulk.0.sock", f->dir);
	f->bulk_listen = f->bulk_fd = -1;
	assert_int_equal(loop_new(&f->d.loop), 0);
	f->j.d = &f->d;
	f->j.id = JOB_ID;
	f->j.uid = getuid();
	f->j.gid = getgid();
	f->j.next_session = 1;
	f->j.agent_h = &handlers;
	snprintf(f->j.agent_sock, sizeof(f->j.agent_sock), "%s", f->sock);
	snprintf(f->j.bulk_prefix, sizeof(f->j.bulk_prefix), "%s/bulk.",
		 f->dir);
	guest_listen(&f->g, f->d.loop, f->sock);
	assert_int_equal(agent_attach(&f->j), 0);
	guest_accept(&f->g);
	guest_expect(&f->g, AW_HELLO, &fr);
	gframe_free(&fr);
	guest_hello(&f->g, AW_VERSION, 0);
	pump(f->d.loop, 10);
	f->j.state = JOB_READY;
	*state = f;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	exec_job_gone(&f->j, "the test is over");
	agent_detach(&f->j);
	bulk_detach(&f->j);
	guest_close(&f->g);
	close_fd(&f->bulk_fd);
	close_fd(&f->bulk_listen);
	loop_free(f->d.loop);
	unlink(f->sock);
	unlink(f->bulk_sock);
	rmdir(f->dir);
	assert_int_equal(f->fails, 0);
	free(f);
	cur = NULL;
	return 0;
}

static void task_close(struct task *t)
{
	close_fd(&t->cfd);
	close_fd(&t->in_w);
	close_fd(&t->out_r);
	close_fd(&t->err_r);
}

/* A task asks to run "echo hi": exec_begin takes its connection and
 * stdio; the guest gets the EXEC (decoded into e), whose session id is
 * returned. */
static uint32_t task_start(struct fx *f, struct task *t, bool want_stdin,
			   bool relay, struct aw_exec *e)
{
	static const char *const argv[] = {"echo", "hi", NULL};
	static const char *const envp[] = {NULL};
	struct proto_request req = {.op = PROTO_OP_EXEC, .job_id = JOB_ID};
	int sp[2], in[2], out[2], err[2], fds[3];
	struct gframe fr;
	uint32_t id;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
			 0);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	req.exec.job_id = JOB_ID;
	req.exec.want_stdin = want_stdin;
	req.exec.relay = relay;
	req.exec.cwd = strdup("/");
	req.exec.argv = xstrv(argv, &req.exec.argc);
	req.exec.envp = xstrv(envp, &req.exec.envc);
	fds[0] = in[0];
	fds[1] = out[1];
	fds[2] = err[1];
	exec_begin(&f->d, &f->j, sp[0], getuid(), &req, fds, 3, NULL);
	/* exec_begin took its ends; the task keeps its own. */
	*t = (struct task){
	    .cfd = sp[1], .in_w = in[1], .out_r = out[0], .err_r = err[0]};
	guest_expect(&f->g, AW_EXEC, &fr);
	id = fr.h.session;
	assert_true(id != 0);
	assert_int_equal(aw_exec_decode(fr.p, fr.h.len, e), 0);
	assert_string_equal(e->argv[0], "echo");
	gframe_free(&fr);
	return id;
}

static void task_expect_reply(struct fx *f, struct task *t,
			      enum proto_kind kind, struct proto_reply *rep)
{
	char err[256];

	pump(f->d.loop, 10);
	/* "session" (the re-attach token) may come first. */
	do {
		if (proto_recv_reply(t->cfd, 1000, rep, err, sizeof(err)) < 0)
			fail_msg("no reply for the task: %s", err);
	} while (rep->kind == PROTO_EV_SESSION && kind != PROTO_EV_SESSION);
	assert_int_equal(rep->kind, kind);
}

/* Exactly n bytes from a task's pipe, pumping vmmd until they come. */
static void task_read(struct fx *f, int fd, char *buf, size_t n)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t got = 0;
	uint64_t end = now_ms() + GUEST_WAIT_MS;

	while (got < n) {
		ssize_t r;

		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
		if (poll(&p, 1, 0) != 1) {
			if (now_ms() >= end)
				fail_msg("the task's output never came");
			continue;
		}
		r = read(fd, buf + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

static void task_signal(struct task *t, int signo)
{
	struct proto_request req = {.op = PROTO_OP_SIGNAL, .signo = signo};

	assert_int_equal(proto_send_request(t->cfd, &req, NULL, 0), 0);
}

static void guest_started(struct fx *f, uint32_t id, bool bulk_asked)
{
	uint32_t v[] = {4242, 0};

	guest_send_u32s(&f->g, AW_STARTED, id, v, bulk_asked ? 2 : 1);
}

static void guest_exit(struct fx *f, uint32_t id, uint32_t code)
{
	uint32_t v[] = {AW_EXIT_CODE, code};

	guest_send_u32s(&f->g, AW_EXIT, id, v, 2);
}

static uint32_t u32_of(const struct gframe *fr)
{
	struct aw_reader r;
	uint32_t v;

	aw_reader_init(&r, fr->p, fr->h.len);
	v = aw_get_u32(&r);
	assert_int_equal(aw_reader_done(&r), 0);
	return v;
}

/* --- the tests ---------------------------------------------------------- */

/* Relayed output reaches the task's stdout and stderr, the window comes
 * back to the guest, and the exit goes to the task. */
static void test_relay(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	struct aw_exec e = {0};
	struct task t;
	struct gframe fr;
	char buf[16];
	uint32_t id = task_start(f, &t, false, true, &e);

	assert_false(e.flags & AW_EXEC_BULK); /* the task asked for the relay */
	aw_exec_clear(&e);
	guest_started(f, id, false);
	task_expect_reply(f, &t, PROTO_EV_STARTED, &rep);
	guest_send(&f->g, AW_STDOUT, id, "hello\n", 6);
	task_read(f, t.out_r, buf, 6);
	assert_memory_equal(buf, "hello\n", 6);
	guest_expect(&f->g, AW_CREDIT, &fr);
	assert_int_equal(fr.h.session, id);
	assert_int_equal(u32_of(&fr), 6);
	gframe_free(&fr);
	guest_send(&f->g, AW_STDERR, id, "oops", 4);
	task_read(f, t.err_r, buf, 4);
	assert_memory_equal(buf, "oops", 4);
	guest_exit(f, id, 3);
	task_expect_reply(f, &t, PROTO_EV_EXIT, &rep);
	assert_int_equal(rep.exit_value, 3);
	assert_false(rep.exit_signaled);
	assert_int_equal(exec_count(&f->j), 0);
	task_close(&t);
}

/* A session's output through a bulk port: what lies between its markers
 * goes through the sink exec.c gave (bulk_claim) to the task's stdout. */
static void test_bulk_to_task(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	struct aw_exec e = {0};
	struct task t;
	char buf[16];
	uint32_t id;

	f->d.cfg.bulk_ports = 1;
	f->bulk_listen = unix_listen(f->bulk_sock, 0600, 2);
	assert_true(f->bulk_listen >= 0);
	f->j.agent_bulk = true;
	bulk_attach(&f->j, false);
	assert_non_null(f->j.bulk);
	f->bulk_fd = accept4(f->bulk_listen, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->bulk_fd >= 0);

	id = task_start(f, &t, false, false, &e);
	assert_true(e.flags & AW_EXEC_BULK);
	assert_int_equal(e.bulk_port, 0);
	guest_started(f, id, true);
	task_expect_reply(f, &t, PROTO_EV_STARTED, &rep);
	/* Before the start marker: not the session's (dropped). */
	assert_int_equal(write(f->bulk_fd, "junk", 4), 4);
	assert_int_equal(write(f->bulk_fd, e.bulk_start, AW_BULK_MARK_LEN),
			 AW_BULK_MARK_LEN);
	assert_int_equal(write(f->bulk_fd, "bulk bytes", 10), 10);
	task_read(f, t.out_r, buf, 10);
	assert_memory_equal(buf, "bulk bytes", 10);
	assert_int_equal(f->j.bulk_bytes, 10);
	/* The exit waits for the port's end marker. */
	guest_exit(f, id, 0);
	pump(f->d.loop, 20);
	assert_int_equal(exec_count(&f->j), 1);
	assert_int_equal(write(f->bulk_fd, e.bulk_end, AW_BULK_MARK_LEN),
			 AW_BULK_MARK_LEN);
	task_expect_reply(f, &t, PROTO_EV_EXIT, &rep);
	assert_int_equal(rep.exit_value, 0);
	assert_int_equal(exec_count(&f->j), 0);
	aw_exec_clear(&e);
	task_close(&t);
}

/* A guest restored from a checkpoint gets no ports (the owner says
 * restoring); neither does a job of a node without them. */
static void test_bulk_restoring(void **state)
{
	struct fx *f = *state;
	struct dom_spec s = {0};

	bulk_domspec(&f->j, &s, false);
	assert_int_equal(s.bulk_ports, 0); /* cfg.bulk_ports = 0 */
	f->d.cfg.bulk_ports = 2;
	bulk_domspec(&f->j, &s, true);
	assert_int_equal(s.bulk_ports, 0);
	bulk_attach(&f->j, true);
	assert_null(f->j.bulk);
	bulk_domspec(&f->j, &s, false);
	assert_int_equal(s.bulk_ports, 2);
	assert_string_equal(s.bulk_sock_prefix, f->j.bulk_prefix);
}

/* While held (a checkpoint), the task's signal is dropped and its stdin
 * waits; released, stdin flows again (exec_ckpt_resumed) and the next
 * signal reaches the guest. */
static void test_hold(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	struct aw_exec e = {0};
	struct task t;
	struct gframe fr;
	uint32_t id = task_start(f, &t, true, true, &e);

	assert_true(e.flags & AW_EXEC_STDIN);
	aw_exec_clear(&e);
	guest_started(f, id, false);
	task_expect_reply(f, &t, PROTO_EV_STARTED, &rep);

	exec_hold(&f->j, true);
	task_signal(&t, SIGTERM);
	assert_true(guest_quiet(&f->g, 50));
	assert_int_equal(write(t.in_w, "input", 5), 5);
	assert_true(guest_quiet(&f->g, 50));

	exec_hold(&f->j, false);
	exec_ckpt_resumed(&f->j);
	guest_expect(&f->g, AW_STDIN, &fr);
	assert_int_equal(fr.h.session, id);
	assert_int_equal(fr.h.len, 5);
	assert_memory_equal(fr.p, "input", 5);
	gframe_free(&fr);
	task_signal(&t, SIGINT);
	guest_expect(&f->g, AW_SIGNAL, &fr);
	assert_int_equal(fr.h.session, id);
	assert_int_equal(u32_of(&fr), SIGINT); /* not the held SIGTERM */
	gframe_free(&fr);
	task_close(&t);
}

/* Not held: the signal goes at once. */
static void test_signal_unheld(void **state)
{
	struct fx *f = *state;
	struct proto_reply rep;
	struct aw_exec e = {0};
	struct task t;
	struct gframe fr;
	uint32_t id = task_start(f, &t, false, true, &e);

	aw_exec_clear(&e);
	guest_started(f, id, false);
	task_expect_reply(f, &t, PROTO_EV_STARTED, &rep);
	task_signal(&t, SIGTERM);
	guest_expect(&f->g, AW_SIGNAL, &fr);
	assert_int_equal(u32_of(&fr), SIGTERM);
	gframe_free(&fr);
	task_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_relay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_to_task, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_restoring, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signal_unheld, setup,
					    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_set_sink(log_sink);
	log_set_level(LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
