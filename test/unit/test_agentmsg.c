// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/agentmsg.c, the host's decoder of every frame the
 * agent sends: each type's good payload decodes to its fields and encodes
 * back to the same bytes; trailing or missing bytes, the wrong session,
 * the host's own types, long or NUL-carrying strings, out-of-range numbers
 * and a string length of 4 GiB are refused (the last without allocating).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agentmsg.h"
#include "agentwire.h"
#include "cleanup.h"

/* A payload built from u32s and strs, as the agent puts them. */
struct payload {
	uint8_t b[2048];
	size_t n;
};

static void u32(struct payload *p, uint32_t v)
{
	p->b[p->n++] = (uint8_t)(v >> 24);
	p->b[p->n++] = (uint8_t)(v >> 16);
	p->b[p->n++] = (uint8_t)(v >> 8);
	p->b[p->n++] = (uint8_t)v;
}

static void str(struct payload *p, const char *s, size_t len)
{
	u32(p, (uint32_t)len);
	memcpy(p->b + p->n, s, len);
	p->n += len;
}

static int decode(uint8_t type, uint32_t session, const struct payload *p,
		  bool bulk, struct aw_agent_msg *m)
{
	struct aw_hdr h = {
	    .len = (uint32_t)p->n, .type = type, .session = session};

	return aw_agent_msg_decode(&h, p->b, bulk, m);
}

/* Decodes, checks the numbers and text, encodes back to the same bytes. */
static void good(uint8_t type, uint32_t session, const struct payload *p,
		 bool bulk, uint32_t a, uint32_t b, const char *text)
{
	struct aw_agent_msg m;
	struct aw_buf out = {0};

	assert_int_equal(decode(type, session, p, bulk, &m), 0);
	assert_int_equal(m.type, type);
	assert_int_equal(m.session, session);
	assert_int_equal(m.a, a);
	assert_int_equal(m.b, b);
	if (text)
		assert_string_equal(m.text, text);
	else
		assert_null(m.text);
	assert_int_equal(aw_agent_msg_encode(&m, bulk, &out), 0);
	assert_int_equal(out.len, p->n);
	assert_memory_equal(out.data, p->b, p->n);
	aw_buf_free(&out);
	aw_agent_msg_clear(&m);
}

static void test_good(void **state)
{
	struct payload p;

	(void)state;
	p = (struct payload){0};
	u32(&p, 2);
	u32(&p, AW_HELLO_CKPT | AW_HELLO_BULK);
	str(&p, "vmenv-agent", 11);
	good(AW_HELLO, 0, &p, false, 2, AW_HELLO_CKPT | AW_HELLO_BULK,
	     "vmenv-agent");
	p = (struct payload){0};
	good(AW_SETUP_OK, 0, &p, false, 0, 0, NULL);
	p = (struct payload){0};
	u32(&p, 13);
	str(&p, "no home", 7);
	good(AW_SETUP_FAIL, 0, &p, false, 13, 0, "no home");
	p = (struct payload){0};
	u32(&p, 4242);
	good(AW_STARTED, 7, &p, false, 4242, 0, NULL);
	u32(&p, 16);
	good(AW_STARTED, 7, &p, true, 4242, 16, NULL);
	p = (struct payload){0};
	u32(&p, 2);
	str(&p, "", 0);
	good(AW_EXEC_FAIL, 7, &p, false, 2, 0, "");
	p = (struct payload){0};
	u32(&p, AW_WINDOW);
	good(AW_CREDIT, 7, &p, false, AW_WINDOW, 0, NULL);
	p = (struct payload){0};
	u32(&p, AW_EXIT_SIGNAL);
	u32(&p, 9);
	good(AW_EXIT, 7, &p, false, AW_EXIT_SIGNAL, 9, NULL);
	p = (struct payload){0};
	str(&p, "bad frame", 9);
	good(AW_ERROR, 0, &p, false, 0, 0, "bad frame");
	p = (struct payload){0};
	u32(&p, AW_CKPT_RESUME);
	good(AW_CKPT_OK, 0, &p, false, AW_CKPT_RESUME, 0, NULL);
	p = (struct payload){0};
	u32(&p, AW_CKPT_PREPARE);
	u32(&p, 16);
	str(&p, "busy", 4);
	good(AW_CKPT_REFUSED, 0, &p, false, AW_CKPT_PREPARE, 16, "busy");
}

/* Output: the payload itself, in place (EOF when empty). */
static void test_output(void **state)
{
	struct payload p = {.b = "hello\0world", .n = 11};
	struct aw_agent_msg m;

	(void)state;
	assert_int_equal(decode(AW_STDERR, 3, &p, false, &m), 0);
	assert_ptr_equal(m.data, p.b);
	assert_int_equal(m.len, 11);
	aw_agent_msg_clear(&m);
	p.n = 0;
	assert_int_equal(decode(AW_STDOUT, 3, &p, true, &m), 0);
	assert_int_equal(m.len, 0);
}

static void test_bad(void **state)
{
	static const uint8_t host_types[] = {
	    0,		 AW_SETUP,    AW_EXEC,	       AW_STDIN,
	    AW_SIGNAL,	 AW_SHUTDOWN, AW_CKPT_PREPARE, AW_CKPT_RESUME,
	    AW_TYPE_END, 255};
	char long_info[AW_MAX_AGENT_INFO + 1];
	struct aw_agent_msg m;
	struct payload p;

	(void)state;
	memset(long_info, 'i', sizeof(long_info));
	for (size_t i = 0; i < ARRAY_SIZE(host_types); i++) {
		p = (struct payload){.n = 4};
		assert_int_equal(decode(host_types[i], 0, &p, false, &m),
				 -EPROTO);
		assert_int_equal(decode(host_types[i], 1, &p, false, &m),
				 -EPROTO);
	}
	/* The wrong session: the channel's frames in a command's, and the
	 * other way round. */
	p = (struct payload){0};
	assert_int_equal(decode(AW_SETUP_OK, 1, &p, false, &m), -EPROTO);
	assert_int_equal(decode(AW_STDOUT, 0, &p, false, &m), -EPROTO);
	/* Trailing and missing bytes. */
	u32(&p, 1);
	u32(&p, 2);
	assert_int_equal(decode(AW_STARTED, 1, &p, false, &m), -EPROTO);
	p.n = 4;
	assert_int_equal(decode(AW_STARTED, 1, &p, true, &m), -EPROTO);
	p.n = 3;
	assert_int_equal(decode(AW_CREDIT, 1, &p, false, &m), -EPROTO);
	p = (struct payload){.n = 1};
	assert_int_equal(decode(AW_SETUP_OK, 0, &p, false, &m), -EPROTO);
	/* Strings: too long, a NUL inside, a length of 4 GiB. */
	p = (struct payload){0};
	u32(&p, 2);
	u32(&p, 0);
	str(&p, long_info, sizeof(long_info));
	assert_int_equal(decode(AW_HELLO, 0, &p, false, &m), -EPROTO);
	p = (struct payload){0};
	u32(&p, 1);
	str(&p, "a\0b", 3);
	assert_int_equal(decode(AW_EXEC_FAIL, 1, &p, false, &m), -EPROTO);
	p = (struct payload){0};
	u32(&p, 0xffffffffu);
	assert_int_equal(decode(AW_ERROR, 0, &p, false, &m), -EPROTO);
	/* Numbers out of their ranges. */
	p = (struct payload){0};
	u32(&p, AW_WINDOW + 1);
	assert_int_equal(decode(AW_CREDIT, 1, &p, false, &m), -EPROTO);
	p = (struct payload){0};
	u32(&p, 2);
	u32(&p, 0);
	assert_int_equal(decode(AW_EXIT, 1, &p, false, &m), -EPROTO);
	p = (struct payload){0};
	u32(&p, AW_EXIT_CODE);
	u32(&p, 256);
	assert_int_equal(decode(AW_EXIT, 1, &p, false, &m), -EPROTO);
	p = (struct payload){0};
	u32(&p, AW_EXEC);
	assert_int_equal(decode(AW_CKPT_OK, 0, &p, false, &m), -EPROTO);
	/* A refused decode leaves nothing to free. */
	assert_null(m.text);
	assert_int_equal(m.type, 0);
}

static void test_encode_refuses(void **state)
{
	char long_msg[AW_MAX_AGENT_MSG + 2];
	struct aw_agent_msg m = {.type = AW_ERROR, .text = long_msg};
	struct aw_buf b = {0};

	(void)state;
	memset(long_msg, 'm', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	assert_int_equal(aw_agent_msg_encode(&m, false, &b), -EINVAL);
	m = (struct aw_agent_msg){.type = AW_EXIT, .session = 1, .b = 300};
	assert_int_equal(aw_agent_msg_encode(&m, false, &b), -EINVAL);
	m = (struct aw_agent_msg){.type = AW_EXEC, .session = 1};
	assert_int_equal(aw_agent_msg_encode(&m, false, &b), -EINVAL);
	m = (struct aw_agent_msg){.type = AW_HELLO, .session = 1};
	assert_int_equal(aw_agent_msg_encode(&m, false, &b), -EINVAL);
	aw_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_output),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_encode_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
