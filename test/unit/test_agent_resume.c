/* SPDX-License-Identifier: MIT */
/*
 * The guest agent's side of a vmmd restart (images/agent/resume.c): what
 * it keeps of a session's output until the host credits it, and what it
 * sends again to a new host that says how much the task holds. The rest
 * of the agent is stubbed at its seams: frames sent are recorded here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../images/agent/agent.h"

/* --- stubs: what resume.c calls in the rest of the agent ---------------- */

struct sent {
	uint8_t type;
	uint32_t session;
	char data[256];
	size_t len;
};
static struct sent sent[64];
static size_t nsent;
static int exits_sent, checks_done, freed, killed;

void agent_log(const char *fmt, ...)
{
	(void)fmt;
}

int agent_proto_error(struct agent *a, const char *fmt, ...)
{
	(void)a;
	(void)fmt;
	return -EPROTO;
}

void agent_send(struct agent *a, uint8_t type, uint32_t session, const void *p,
		size_t n)
{
	(void)a;
	assert_true(nsent < 64 && n <= sizeof(sent[0].data));
	sent[nsent] = (struct sent){.type = type, .session = session, .len = n};
	if (n)
		memcpy(sent[nsent].data, p, n);
	nsent++;
}

void agent_send_buf(struct agent *a, uint8_t type, uint32_t session,
		    struct aw_buf *b, int r)
{
	assert_int_equal(r, 0);
	agent_send(a, type, session, b->data, b->len);
	aw_buf_free(b);
}

struct session *session_find(struct agent *a, uint32_t id)
{
	for (int i = 0; i < AGENT_MAX_SESSIONS; i++)
		if (a->sessions[i].active && a->sessions[i].id == id)
			return &a->sessions[i];
	return NULL;
}

void session_send_exit(struct agent *a, struct session *s)
{
	agent_send(a, AW_EXIT, s->id, NULL, 0);
	exits_sent++;
}

void session_check_done(struct agent *a, struct session *s)
{
	(void)a;
	(void)s;
	checks_done++;
}

void session_free(struct session *s)
{
	aw_buf_free(&s->held);
	memset(s, 0, sizeof(*s));
	freed++;
}

void session_kill(const struct session *s, int sig)
{
	(void)s;
	(void)sig;
	killed++;
}

/* --- helpers ---------------------------------------------------------- */

static struct agent ag;

static int setup(void **state)
{
	(void)state;
	memset(&ag, 0, sizeof(ag));
	ag.version = 3;
	ag.sessions[0] = (struct session){.active = true, .id = 7};
	nsent = 0;
	exits_sent = checks_done = freed = killed = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	aw_buf_free(&ag.sessions[0].held);
	return 0;
}

/* What the session's command wrote, as sent: stream k, text. */
static void out(enum stream k, const char *text)
{
	struct session *s = &ag.sessions[0];

	s->sent[k] += strlen(text);
	held_add(s, k, (const uint8_t *)text, strlen(text));
}

static int resume(uint64_t o, uint64_t e)
{
	struct aw_buf b = {0};
	struct aw_hdr h = {.type = AW_RESUME, .session = 7};
	int r;

	assert_int_equal(aw_put_i64(&b, (int64_t)o), 0);
	assert_int_equal(aw_put_i64(&b, (int64_t)e), 0);
	h.len = (uint32_t)b.len;
	r = session_resume(&ag, &h, b.data);
	aw_buf_free(&b);
	return r;
}

static uint32_t resumed_errno(void)
{
	struct aw_reader r;

	assert_true(nsent >= 1);
	assert_int_equal(sent[0].type, AW_RESUMED);
	aw_reader_init(&r, sent[0].data, sent[0].len);
	return aw_get_u32(&r);
}

static void expect_frame(size_t i, uint8_t type, const char *text)
{
	assert_true(i < nsent);
	assert_int_equal(sent[i].type, type);
	assert_int_equal(sent[i].len, strlen(text));
	assert_memory_equal(sent[i].data, text, strlen(text));
}

/* --- tests -------------------------------------------------------------- */

/* Credit drops the oldest bytes across streams, in the order sent; the
 * task's counts pick what goes again in each stream. */
static void test_credit_then_resume(void **state)
{
	struct session *s = &ag.sessions[0];

	(void)state;
	out(STREAM_OUT, "abc");
	out(STREAM_ERR, "de");
	out(STREAM_OUT, "fgh");
	held_credit(s, 4); /* "abc" and "d" are in the task's pipes */
	assert_int_equal(s->held_n[STREAM_OUT], 3);
	assert_int_equal(s->held_n[STREAM_ERR], 1);
	sessions_detach(&ag);
	assert_true(s->detached);
	/* The task holds "abc" + "f" of stdout, all of stderr. */
	assert_int_equal(resume(4, 2), 0);
	assert_int_equal(resumed_errno(), 0);
	assert_int_equal(nsent, 2);
	expect_frame(1, AW_STDOUT, "gh");
	assert_false(s->detached);
	assert_int_equal(s->window, AW_WINDOW - 2);
	assert_int_equal(checks_done, 1);
	/* What went again is kept again until credited. */
	assert_int_equal(s->held_n[STREAM_OUT], 2);
	held_credit(s, 2);
	assert_int_equal(s->held.len - s->held_off, 0);
}

/* Offsets outside what was kept: the task claims more than was sent, or
 * less than what was already credited (those bytes are gone). */
static void test_resume_out_of_range(void **state)
{
	struct session *s = &ag.sessions[0];

	(void)state;
	out(STREAM_OUT, "abcdef");
	held_credit(s, 3);
	sessions_detach(&ag);
	assert_int_equal(resume(2, 0), 0);
	assert_int_equal(resumed_errno(), ERANGE);
	assert_true(s->detached);
	nsent = 0;
	assert_int_equal(resume(7, 0), 0);
	assert_int_equal(resumed_errno(), ERANGE);
	nsent = 0;
	assert_int_equal(resume(6, 0), 0);
	assert_int_equal(resumed_errno(), 0);
	assert_int_equal(nsent, 1); /* nothing to send again */
}

/* A session never detached, or not there: ENOENT, nothing else. */
static void test_resume_unknown(void **state)
{
	struct aw_buf b = {0};
	struct aw_hdr h = {.type = AW_RESUME, .session = 8};

	(void)state;
	assert_int_equal(aw_put_i64(&b, 0), 0);
	assert_int_equal(aw_put_i64(&b, 0), 0);
	h.len = (uint32_t)b.len;
	assert_int_equal(session_resume(&ag, &h, b.data), 0);
	aw_buf_free(&b);
	assert_int_equal(resumed_errno(), ENOENT);
	nsent = 0;
	assert_int_equal(resume(0, 0), 0); /* 7 exists, not detached */
	assert_int_equal(resumed_errno(), ENOENT);
}

/* EOFs and the EXIT that went to the old host go again. */
static void test_resume_after_exit(void **state)
{
	struct session *s = &ag.sessions[0];

	(void)state;
	out(STREAM_OUT, "bye");
	s->eof_sent[STREAM_OUT] = s->eof_sent[STREAM_ERR] = true;
	s->exited = s->exit_sent = true;
	sessions_detach(&ag);
	assert_int_equal(resume(0, 0), 0);
	assert_int_equal(resumed_errno(), 0);
	expect_frame(1, AW_STDOUT, "bye");
	expect_frame(2, AW_STDOUT, "");
	expect_frame(3, AW_STDERR, "");
	expect_frame(4, AW_EXIT, "");
	assert_int_equal(exits_sent, 1);
}

/* RELEASE forgets the session; one still running is killed first. */
static void test_release(void **state)
{
	struct aw_hdr h = {.type = AW_RELEASE, .session = 7};

	(void)state;
	assert_int_equal(session_release(&ag, &h, NULL), 0);
	assert_int_equal(killed, 1);
	assert_int_equal(freed, 1);
	assert_null(session_find(&ag, 7));
	h.len = 1;
	assert_int_equal(session_release(&ag, &h, (const uint8_t *)"x"),
			 -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_credit_then_resume, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_out_of_range, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_unknown, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_after_exit, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_release, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
