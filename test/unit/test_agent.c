// SPDX-License-Identifier: MIT
/*
 * vmmd's agent channel (vmmd/agent.c) alone: linked without job.c, ckpt.c,
 * exec.c or bulk.c, so the channel can only report through the handler
 * table it is given (agent.h). The test is the guest (fake_guest.h) and
 * the owner (the handlers below, which record what they are told).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testlog.h"
#include "testutil.h"

#include "fake_guest.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agentwire.h"
#include "jobrec.h"
#include "log.h"
#include "vmmd.h"

#define JOB_ID 7

/* What the owner was told. */
struct told {
	unsigned setups, hellos, setup_oks, sessions, ckpts, fails;
	uint32_t setup_version, hello_flags;
	struct aw_hdr session_h;
	uint8_t session_p[64];
	uint8_t ckpt_type;
	uint32_t ckpt_len;
	enum metrics_fail fail_reason;
	char fail_msg[PROTO_MAX_ERROR];
	/* What the owner answers. */
	bool hello_wants_setup;
	int session_r;
};

struct fx {
	char dir[64];
	char sock[128];
	struct vmmd d;
	struct job j;
	struct guest g;
	struct told t;
};

static struct fx *cur;

/* The SETUP the owner builds: fixed, so the test knows what must go out. */
static void test_setup(struct aw_setup *s)
{
	static char host[] = "n1", user[] = "alice", group[] = "users",
		    home[] = "/home/alice", tag[] = "vmenv.workdir",
		    path[] = "/work/alice";

	*s = (struct aw_setup){.hostname = host,
			       .user = user,
			       .uid = 1001,
			       .gid = 100,
			       .group = group,
			       .home = home,
			       .time_sec = 1700000000,
			       .nmounts = 1,
			       .mounts = {{.tag = tag, .path = path}},
			       .ngroups = 1,
			       .groups = {100}};
}

static int h_build_setup(struct job *j, uint32_t version, struct aw_buf *out)
{
	struct aw_setup s;

	assert_ptr_equal(j, &cur->j);
	cur->t.setups++;
	cur->t.setup_version = version;
	test_setup(&s);
	return aw_setup_encode(&s, version, out);
}

static bool h_on_hello(struct job *j, uint32_t flags)
{
	assert_ptr_equal(j, &cur->j);
	cur->t.hellos++;
	cur->t.hello_flags = flags;
	return cur->t.hello_wants_setup;
}

static void h_on_setup_ok(struct job *j)
{
	assert_ptr_equal(j, &cur->j);
	cur->t.setup_oks++;
}

static int h_on_session_frame(struct job *j, const struct aw_hdr *h,
			      const uint8_t *p)
{
	assert_ptr_equal(j, &cur->j);
	cur->t.sessions++;
	cur->t.session_h = *h;
	memcpy(cur->t.session_p, p,
	       h->len < sizeof(cur->t.session_p) ? h->len
						 : sizeof(cur->t.session_p));
	return cur->t.session_r;
}

static int h_on_ckpt_frame(struct job *j, uint8_t type, const uint8_t *p,
			   size_t n)
{
	assert_ptr_equal(j, &cur->j);
	(void)p;
	cur->t.ckpts++;
	cur->t.ckpt_type = type;
	cur->t.ckpt_len = (uint32_t)n;
	return 0;
}

/* As the owner must: the job ends, and the channel with it. */
static void h_on_fail(struct job *j, enum metrics_fail reason, const char *msg)
{
	assert_ptr_equal(j, &cur->j);
	cur->t.fails++;
	cur->t.fail_reason = reason;
	snprintf(cur->t.fail_msg, sizeof(cur->t.fail_msg), "%s", msg);
	agent_detach(j);
}

static const struct agent_handlers handlers = {
    .build_setup = h_build_setup,
    .on_hello = h_on_hello,
    .on_setup_ok = h_on_setup_ok,
    .on_session_frame = h_on_session_frame,
    .on_ckpt_frame = h_on_ckpt_frame,
    .on_fail = h_on_fail,
};

/* --- the fixture -------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	log_reset();
	strcpy(f->dir, "/tmp/vmenv-agent-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/agent.sock", f->dir);
	assert_int_equal(loop_new(&f->d.loop), 0);
	f->j.d = &f->d;
	f->j.id = JOB_ID;
	f->j.agent_h = &handlers;
	f->j.state = JOB_BOOTING;
	snprintf(f->j.agent_sock, sizeof(f->j.agent_sock), "%s", f->sock);
	f->t.hello_wants_setup = true;
	guest_listen(&f->g, f->d.loop, f->sock);
	cur = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	agent_detach(&f->j);
	guest_close(&f->g);
	loop_free(f->d.loop);
	unlink(f->sock);
	rmdir(f->dir);
	free(f);
	cur = NULL;
	return 0;
}

/* vmmd connects and says HELLO first. */
static void attach(struct fx *f)
{
	struct gframe fr;

	assert_int_equal(agent_attach(&f->j), 0);
	guest_accept(&f->g);
	guest_expect(&f->g, AW_HELLO, &fr);
	assert_int_equal(fr.h.session, 0);
	gframe_free(&fr);
}

/* HELLO, SETUP, SETUP_OK. */
static void handshake(struct fx *f)
{
	struct gframe fr;

	attach(f);
	guest_hello(&f->g, AW_VERSION, AW_HELLO_CKPT);
	guest_expect(&f->g, AW_SETUP, &fr);
	gframe_free(&fr);
	guest_send(&f->g, AW_SETUP_OK, 0, NULL, 0);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.setup_oks, 1);
}

static void assert_only_failed(const struct fx *f)
{
	assert_int_equal(f->t.fails, 1);
	assert_int_equal(f->t.fail_reason, METRICS_FAIL_AGENT);
	assert_contains(f->t.fail_msg, "job 7: ");
	assert_contains(f->t.fail_msg, "see vmenvctl console 7");
	assert_int_equal(f->t.sessions, 0);
	assert_int_equal(f->t.ckpts, 0);
	assert_null(f->j.agent); /* the owner detached it */
}

/* --- the tests ---------------------------------------------------------- */

/* The owner hears the HELLO's flags once; the SETUP that goes out is the
 * one its build_setup made, for the version the agent answered with. */
static void test_hello_and_setup(void **state)
{
	struct fx *f = *state;
	uint32_t flags = AW_HELLO_CKPT | AW_HELLO_BULK;
	struct aw_buf want = {0};
	struct aw_setup s;
	struct gframe fr;

	attach(f);
	guest_hello(&f->g, AW_VERSION, flags);
	guest_expect(&f->g, AW_SETUP, &fr);
	assert_int_equal(f->t.hellos, 1);
	assert_int_equal(f->t.hello_flags, flags);
	assert_true(f->j.agent_ckpt);
	assert_true(f->j.agent_bulk);
	assert_int_equal(f->t.setups, 1);
	assert_int_equal(f->t.setup_version, AW_VERSION);
	test_setup(&s);
	assert_int_equal(aw_setup_encode(&s, AW_VERSION, &want), 0);
	assert_int_equal(fr.h.session, 0);
	assert_int_equal(fr.h.len, want.len);
	assert_memory_equal(fr.p, want.data, want.len);
	aw_buf_free(&want);
	gframe_free(&fr);
	assert_int_equal(f->t.setup_oks, 0);
	guest_send(&f->g, AW_SETUP_OK, 0, NULL, 0);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.setup_oks, 1);
	/* A second SETUP_OK is dropped (stray), not reported again. */
	guest_send(&f->g, AW_SETUP_OK, 0, NULL, 0);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.setup_oks, 1);
	assert_int_equal(f->j.stray.frames, 1);
	assert_int_equal(f->t.fails, 0);
	assert_non_null(f->j.agent);
}

/* An older agent gets the SETUP of its own version. */
static void test_setup_follows_version(void **state)
{
	struct fx *f = *state;
	struct gframe fr;
	struct aw_setup s;

	attach(f);
	guest_hello(&f->g, AW_VERSION_MIN, 0);
	guest_expect(&f->g, AW_SETUP, &fr);
	assert_int_equal(f->t.setup_version, AW_VERSION_MIN);
	assert_int_equal(aw_setup_decode(fr.p, fr.h.len, AW_VERSION_MIN, &s),
			 0);
	assert_string_equal(s.user, "alice");
	aw_setup_clear(&s);
	gframe_free(&fr);
}

/* The owner took it from here (a guest held for a checkpoint, or one
 * already set up): no SETUP goes out, and a SETUP_OK is then out of
 * place. Repeated HELLO answers are the guest's and draw on the grace. */
static void test_hello_owner_keeps_it(void **state)
{
	struct fx *f = *state;

	f->t.hello_wants_setup = false;
	attach(f);
	guest_hello(&f->g, AW_VERSION, AW_HELLO_CKPT_HELD);
	assert_true(guest_quiet(&f->g, 50));
	assert_int_equal(f->t.hellos, 1);
	assert_int_equal(f->t.hello_flags, AW_HELLO_CKPT_HELD);
	assert_int_equal(f->t.setups, 0);
	/* More answers than HELLOs sent: stray, not a second on_hello. */
	for (int i = 0; i < 3; i++)
		guest_hello(&f->g, AW_VERSION, 0);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.hellos, 1);
	assert_int_equal(f->j.stray.frames, 3);
	assert_int_equal(f->t.fails, 0);
	guest_send(&f->g, AW_SETUP_OK, 0, NULL, 0);
	pump(f->d.loop, 20);
	assert_only_failed(f);
	assert_contains(f->t.fail_msg, "broke the protocol");
	assert_int_equal(f->t.setup_oks, 0);
}

/* A session frame goes to the owner as it came; one the owner refuses
 * fails the job, named. */
static void test_session_frame(void **state)
{
	struct fx *f = *state;

	handshake(f);
	guest_send(&f->g, AW_STDOUT, 5, "abc", 3);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.sessions, 1);
	assert_int_equal(f->t.session_h.type, AW_STDOUT);
	assert_int_equal(f->t.session_h.session, 5);
	assert_int_equal(f->t.session_h.len, 3);
	assert_memory_equal(f->t.session_p, "abc", 3);
	assert_int_equal(f->t.ckpts, 0);
	assert_int_equal(f->t.fails, 0);

	f->t.session_r = -EPROTO;
	guest_send(&f->g, AW_STDERR, 6, "x", 1);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.sessions, 2);
	assert_int_equal(f->t.fails, 1);
	assert_contains(f->t.fail_msg, "broke the protocol");
	assert_contains(f->t.fail_msg, "session 6");
	assert_null(f->j.agent);
}

/* Frames the guest must not send: each fails the job through on_fail
 * alone, and nothing of it reaches the other handlers. */
struct bad_case {
	const char *name;
	int kind; /* 0: raw header, 1: frame of type/session, 2: HELLO */
	uint32_t len;
	uint8_t type;
	uint32_t session;
	const char *says;
};

static const struct bad_case bad_cases[] = {
    {"oversized", 0, AW_MAX_AGENT_PAYLOAD + 1, AW_STDOUT, 3, "malformed"},
    {"unknown type", 1, 0, 0x7f, 0, "malformed"},
    {"host-only type", 1, 0, AW_EXEC, 0, "broke the protocol"},
    {"HELLO of another version", 2, 0, 0, 0, "another protocol version"},
};

static void run_bad(struct fx *f, const struct bad_case *c)
{
	uint8_t hdr[AW_HDR_LEN];

	switch (c->kind) {
	case 0:
		aw_hdr_encode(hdr, c->len, c->type, c->session);
		guest_write(&f->g, hdr, sizeof(hdr));
		break;
	case 1:
		guest_send(&f->g, c->type, c->session, NULL, 0);
		break;
	default:
		guest_hello(&f->g, AW_VERSION + 1, 0);
		break;
	}
	pump(f->d.loop, 20);
}

static void test_bad_frames(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		print_message("case: %s\n", c->name);
		memset(&f->t, 0, sizeof(f->t));
		f->t.hello_wants_setup = true;
		if (c->kind == 2)
			attach(f);
		else
			handshake(f);
		f->t.setup_oks = 0;
		run_bad(f, c);
		assert_only_failed(f);
		assert_contains(f->t.fail_msg, c->says);
		assert_int_equal(f->t.setup_oks, 0);
		/* The next attach connects afresh. */
		close(f->g.fd);
		f->g.fd = -1;
		memset(&f->j.stray, 0, sizeof(f->j.stray));
	}
}

/* Checkpoint answers reach the owner only when vmmd asked: an unasked one
 * is stray, each PREPARE/RESUME sent allows exactly one answer. */
static void test_ckpt_answers(void **state)
{
	struct fx *f = *state;
	uint32_t ok[] = {AW_CKPT_PREPARE, 0};
	struct aw_buf b = {0};
	struct gframe fr;

	handshake(f);
	guest_send_u32s(&f->g, AW_CKPT_OK, 0, ok, 2);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.ckpts, 0);
	assert_int_equal(f->j.stray.frames, 1);

	assert_int_equal(aw_put_u32(&b, 0), 0);
	assert_int_equal(agent_send(&f->j, AW_CKPT_PREPARE, 0, b.data, b.len),
			 0);
	aw_buf_free(&b);
	guest_expect(&f->g, AW_CKPT_PREPARE, &fr);
	gframe_free(&fr);
	guest_send_u32s(&f->g, AW_CKPT_OK, 0, ok, 2);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.ckpts, 1);
	assert_int_equal(f->t.ckpt_type, AW_CKPT_OK);
	assert_int_equal(f->t.ckpt_len, 8);
	/* The one answer was used: a second is stray again. */
	guest_send_u32s(&f->g, AW_CKPT_REFUSED, 0, ok, 2);
	pump(f->d.loop, 20);
	assert_int_equal(f->t.ckpts, 1);
	assert_int_equal(f->j.stray.frames, 2);
	assert_int_equal(f->t.fails, 0);
}

/* Unasked answers beyond the grace: the job fails, as a flood. */
static void test_stray_budget(void **state)
{
	struct fx *f = *state;
	uint8_t big[8192] = {0};
	unsigned n = 0;

	handshake(f);
	while (f->t.fails == 0 && n < 1000) {
		guest_send(&f->g, AW_CKPT_OK, 0, big, sizeof(big));
		pump(f->d.loop, 1);
		n++;
	}
	assert_only_failed(f);
	assert_contains(f->t.fail_msg, "flooded");
	/* Not before the grace was spent. */
	assert_true((uint64_t)n * (sizeof(big) + STRAY_FRAME_COST) >=
		    STRAY_GRACE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hello_and_setup, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_setup_follows_version, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hello_owner_keeps_it, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_session_frame, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_frames, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ckpt_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stray_budget, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_set_sink(log_sink);
	log_set_level(LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
