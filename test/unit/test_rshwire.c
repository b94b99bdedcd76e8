// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/rshwire.c: frame headers, the REQUEST codec against
 * truncation, trailing bytes, bad counts and refused environment names, the
 * environment filter and the token comparison.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rshwire.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TOKEN	      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char argv0[] = "/bin/sh", argv1[] = "-c",
	    argv2[] = "printf '%s\\n' \"a b\" '' `x`", argv3[] = "";
static char *req_argv[] = {argv0, argv1, argv2, argv3, NULL};
static char env0[] = "PATH=/usr/bin:/bin", env1[] = "LC_ALL=C.UTF-8",
	    env2[] = "TZ=";
static char *req_env[] = {env0, env1, env2, NULL};
static char tok[] = TOKEN, cwd[] = "/home/o'brien/with space";

static struct rsh_request sample(void)
{
	return (struct rsh_request){.version = RSH_VERSION,
				    .token = tok,
				    .cwd = cwd,
				    .argc = 4,
				    .argv = req_argv,
				    .envc = 3,
				    .envp = req_env};
}

static void test_hdr(void **state)
{
	uint8_t h[RSH_HDR_LEN];
	struct rsh_hdr d;

	(void)state;
	rsh_hdr_encode(h, 0x01020304, RSH_STDOUT);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[3], 4);
	assert_int_equal(h[4], RSH_STDOUT);
	assert_int_equal(rsh_hdr_decode(h, 0x01020304, &d), 0);
	assert_int_equal(d.len, 0x01020304);
	assert_int_equal(d.type, RSH_STDOUT);
	assert_int_equal(rsh_hdr_decode(h, 0x01020303, &d), -EMSGSIZE);
	h[4] = 0;
	assert_int_equal(rsh_hdr_decode(h, UINT32_MAX, &d), -EPROTO);
	h[4] = RSH_TYPE_END;
	assert_int_equal(rsh_hdr_decode(h, UINT32_MAX, &d), -EPROTO);
	for (int i = 5; i < 8; i++) {
		rsh_hdr_encode(h, 1, RSH_STDIN);
		h[i] = 1;
		assert_int_equal(rsh_hdr_decode(h, 10, &d), -EPROTO);
	}
	for (uint8_t t = 1; t < RSH_TYPE_END; t++) {
		rsh_hdr_encode(h, 0, t);
		assert_int_equal(rsh_hdr_decode(h, 0, &d), 0);
		assert_string_not_equal(rsh_type_name(t), "unknown");
	}
	assert_string_equal(rsh_type_name(0), "unknown");
	assert_string_equal(rsh_type_name(RSH_TYPE_END), "unknown");
}

static void test_request_roundtrip(void **state)
{
	struct rsh_request in = sample(), out;
	struct aw_buf b = {0};
	uint32_t i;

	(void)state;
	assert_int_equal(rsh_request_encode(&in, &b), 0);
	assert_int_equal(rsh_request_decode(b.data, b.len, &out), 0);
	assert_string_equal(out.token, TOKEN);
	assert_string_equal(out.cwd, cwd);
	assert_int_equal(out.argc, 4);
	for (i = 0; i < 4; i++)
		assert_string_equal(out.argv[i], req_argv[i]);
	assert_null(out.argv[4]);
	assert_int_equal(out.envc, 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(out.envp[i], req_env[i]);
	assert_null(out.envp[3]);
	rsh_request_clear(&out);
	aw_buf_free(&b);
}

static void test_request_truncated_trailing(void **state)
{
	struct rsh_request in = sample(), out;
	struct aw_buf b = {0};
	size_t n;

	(void)state;
	assert_int_equal(rsh_request_encode(&in, &b), 0);
	for (n = 0; n < b.len; n++) {
		memset(&out, 0xa5, sizeof(out));
		if (rsh_request_decode(b.data, n, &out) != -EPROTO)
			fail_msg("prefix %zu/%zu accepted", n, b.len);
		assert_null(out.token);
		assert_null(out.argv);
	}
	assert_int_equal(aw_put_bytes(&b, "x", 1), 0);
	assert_int_equal(rsh_request_decode(b.data, b.len, &out), -EPROTO);
	aw_buf_free(&b);
}

enum bad {
	B_NONE,
	B_VERSION,
	B_ARGC0,
	B_ARGC_HUGE,
	B_ENVC_OVER,
	B_ENV_NAME,
	B_TOKEN_LONG,
	B_CWD_REL,
	B_NUL
};

/* A REQUEST built by hand, one thing wrong. */
static void raw_request(struct aw_buf *b, enum bad bad)
{
	uint32_t i, envc = bad == B_ENVC_OVER ? RSH_MAX_ENV + 1 : 1;

	aw_put_u32(b, bad == B_VERSION ? RSH_VERSION + 1 : RSH_VERSION);
	aw_put_str(b, bad == B_TOKEN_LONG ? TOKEN "0" : TOKEN);
	aw_put_str(b, bad == B_CWD_REL ? "rel/dir" : "/tmp");
	if (bad == B_ARGC0) {
		aw_put_u32(b, 0);
	} else if (bad == B_ARGC_HUGE) {
		aw_put_u32(b, UINT32_MAX);
		aw_put_str(b, "x");
	} else if (bad == B_NUL) {
		aw_put_u32(b, 1);
		aw_put_u32(b, 3);
		aw_put_bytes(b, "a\0b", 3);
	} else {
		aw_put_u32(b, 1);
		aw_put_str(b, "true");
	}
	aw_put_u32(b, envc);
	for (i = 0; i < envc; i++)
		aw_put_str(b, bad == B_ENV_NAME ? "LD_PRELOAD=/tmp/x.so"
						: "PATH=/bin");
}

static void test_request_bad(void **state)
{
	static const struct {
		const char *what;
		enum bad bad;
		int want;
	} cases[] = {
	    {"valid", B_NONE, 0},
	    {"other version", B_VERSION, -EPROTO},
	    {"no argv", B_ARGC0, -EPROTO},
	    {"argc huge", B_ARGC_HUGE, -EPROTO},
	    {"too many env entries", B_ENVC_OVER, -EPROTO},
	    {"env name not allowed", B_ENV_NAME, -EPROTO},
	    {"token too long", B_TOKEN_LONG, -EPROTO},
	    {"relative cwd", B_CWD_REL, -EPROTO},
	    {"NUL in an argument", B_NUL, -EPROTO},
	};
	struct rsh_request out;
	struct aw_buf b;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		b = (struct aw_buf){0};
		raw_request(&b, cases[i].bad);
		r = rsh_request_decode(b.data, b.len, &out);
		if (r != cases[i].want)
			fail_msg("'%s': %d", cases[i].what, r);
		if (r == 0)
			rsh_request_clear(&out);
		aw_buf_free(&b);
	}
}

static void test_request_encode_refuses(void **state)
{
	struct rsh_request q = sample();
	struct aw_buf b = {0};
	char bad_env[] = "LD_PRELOAD=x";
	char *env[] = {bad_env, NULL};
	char *big;

	(void)state;
	assert_int_equal(aw_put_u32(&b, 7), 0);
	q.argc = 0;
	assert_int_equal(rsh_request_encode(&q, &b), -EINVAL);
	q = sample();
	q.envp = env;
	q.envc = 1;
	assert_int_equal(rsh_request_encode(&q, &b), -EINVAL);
	q = sample();
	q.version = 9;
	assert_int_equal(rsh_request_encode(&q, &b), -EINVAL);
	q = sample();
	big = malloc(RSH_MAX_REQUEST + 1);
	assert_non_null(big);
	memset(big, 'x', RSH_MAX_REQUEST);
	big[RSH_MAX_REQUEST] = '\0';
	q.argv[3] = big;
	assert_int_equal(rsh_request_encode(&q, &b), -EMSGSIZE);
	q.argv[3] = argv3;
	free(big);
	assert_int_equal(b.len, 4); /* nothing half-written is left */
	aw_buf_free(&b);
}

static void test_env_names(void **state)
{
	static const struct {
		const char *e;
		bool ok;
	} cases[] = {
	    {"PATH=/bin", true},
	    {"LD_LIBRARY_PATH=/opt/lib", true},
	    {"LANG=C.UTF-8", true},
	    {"LC_ALL=C", true},
	    {"LC_MESSAGES=de_DE", true},
	    {"TZ=", true},
	    {"TERM=xterm", true},
	    {"TMPDIR=/tmp", true},
	    {"PATH", false},
	    {"PATHX=/bin", false},
	    {"path=/bin", false},
	    {"LC_=x", false},
	    {"LC_all=x", false},
	    {"LC_X1=x", false},
	    {"LD_PRELOAD=/x.so", false},
	    {"HOME=/root", false},
	    {"VMENV_NODEID=0", false},
	    {"=x", false},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (rsh_env_name_ok(cases[i].e) != cases[i].ok)
			fail_msg("rsh_env_name_ok('%s')", cases[i].e);
}

static void test_token_equal(void **state)
{
	char other[] = TOKEN;

	(void)state;
	assert_true(rsh_token_equal(TOKEN, TOKEN));
	other[0] = '1';
	assert_false(rsh_token_equal(TOKEN, other));
	other[0] = '0';
	other[63] = '0';
	assert_false(rsh_token_equal(TOKEN, other));
	assert_false(rsh_token_equal(TOKEN, ""));
	assert_false(rsh_token_equal("", ""));
	assert_false(rsh_token_equal(TOKEN, TOKEN "0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hdr),
	    cmocka_unit_test(test_request_roundtrip),
	    cmocka_unit_test(test_request_truncated_trailing),
	    cmocka_unit_test(test_request_bad),
	    cmocka_unit_test(test_request_encode_refuses),
	    cmocka_unit_test(test_env_names),
	    cmocka_unit_test(test_token_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
