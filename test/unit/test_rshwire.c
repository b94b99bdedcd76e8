// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/rshwire.c and common/hmac256.c: frame headers, the
 * HELLO/CHALLENGE and ACCEPT codecs, the REQUEST codec against truncation,
 * trailing bytes, bad counts and refused environment names, the environment
 * filter; the challenge-response (what a MAC covers, that a recorded one
 * answers no other challenge, that the token is nowhere on the wire);
 * SHA-256 and HMAC against RFC 4231 and OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "hmac256.h"
#include "rshwire.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TOKEN	      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char argv0[] = "/bin/sh", argv1[] = "-c",
	    argv2[] = "printf '%s\\n' \"a b\" '' `x`", argv3[] = "";
static char *req_argv[] = {argv0, argv1, argv2, argv3, NULL};
static char env0[] = "PATH=/usr/bin:/bin", env1[] = "LC_ALL=C.UTF-8",
	    env2[] = "TZ=";
static char *req_env[] = {env0, env1, env2, NULL};
static char cwd[] = "/home/o'brien/with space";

static struct rsh_request sample(void)
{
	return (struct rsh_request){.version = RSH_VERSION,
				    .mac = {0xa5, 1, 2, 3},
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
	assert_int_equal(b.len > RSH_REQUEST_HEAD, 1);
	assert_int_equal(rsh_request_decode(b.data, b.len, &out), 0);
	assert_memory_equal(out.mac, in.mac, RSH_MAC_LEN);
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
		assert_null(out.cwd);
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
	B_SHORT_MAC,
	B_CWD_REL,
	B_NUL
};

/* A REQUEST built by hand, one thing wrong. */
static void raw_request(struct aw_buf *b, enum bad bad)
{
	uint32_t i, envc = bad == B_ENVC_OVER ? RSH_MAX_ENV + 1 : 1;

	static const uint8_t mac[RSH_MAC_LEN] = {7};

	aw_put_u32(b, bad == B_VERSION ? RSH_VERSION + 1 : RSH_VERSION);
	aw_put_bytes(b, mac,
		     bad == B_SHORT_MAC ? RSH_MAC_LEN - 4 : RSH_MAC_LEN);
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
	    {"other version", B_VERSION, -EPROTONOSUPPORT},
	    {"no argv", B_ARGC0, -EPROTO},
	    {"argc huge", B_ARGC_HUGE, -EPROTO},
	    {"too many env entries", B_ENVC_OVER, -EPROTO},
	    {"env name not allowed", B_ENV_NAME, -EPROTO},
	    {"MAC cut short", B_SHORT_MAC, -EPROTO},
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

/* A version 1 REQUEST (token in clear first) is told apart, not misread. */
static void test_request_v1(void **state)
{
	struct rsh_request out;
	struct aw_buf b = {0};
	uint32_t v;

	(void)state;
	aw_put_u32(&b, 1);
	aw_put_str(&b, TOKEN);
	aw_put_str(&b, "/tmp");
	aw_put_u32(&b, 1);
	aw_put_str(&b, "true");
	aw_put_u32(&b, 0);
	assert_int_equal(rsh_request_version(b.data, b.len, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(rsh_request_decode(b.data, b.len, &out),
			 -EPROTONOSUPPORT);
	assert_null(out.argv);
	assert_int_equal(rsh_request_version(b.data, 3, &v), -EPROTO);
	aw_buf_free(&b);
}

static void test_hello(void **state)
{
	uint8_t nonce[RSH_NONCE_LEN], got[RSH_NONCE_LEN];
	struct aw_buf b = {0};
	uint32_t v;

	(void)state;
	for (unsigned i = 0; i < RSH_NONCE_LEN; i++)
		nonce[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(rsh_hello_encode(RSH_VERSION, nonce, &b), 0);
	assert_int_equal(b.len, RSH_HELLO_LEN);
	assert_int_equal(rsh_hello_decode(b.data, b.len, &v, got), 0);
	assert_int_equal(v, RSH_VERSION);
	assert_memory_equal(got, nonce, RSH_NONCE_LEN);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(rsh_hello_decode(b.data, n, &v, got), -EPROTO);
	aw_put_bytes(&b, "x", 1);
	assert_int_equal(rsh_hello_decode(b.data, b.len, &v, got), -EPROTO);
	b.len = 0;
	assert_int_equal(rsh_hello_encode(3, nonce, &b), 0);
	assert_int_equal(rsh_hello_decode(b.data, b.len, &v, got),
			 -EPROTONOSUPPORT);
	assert_int_equal(v, 3);
	aw_buf_free(&b);
}

static void test_accept_codec(void **state)
{
	uint8_t mac[RSH_MAC_LEN] = {9, 8, 7}, got[RSH_MAC_LEN];
	struct aw_buf b = {0};
	uint32_t pid;

	(void)state;
	assert_int_equal(rsh_accept_encode(4242, mac, &b), 0);
	assert_int_equal(b.len, 4 + RSH_MAC_LEN);
	assert_int_equal(rsh_accept_decode(b.data, b.len, &pid, got), 0);
	assert_int_equal(pid, 4242);
	assert_memory_equal(got, mac, RSH_MAC_LEN);
	/* A version 1 ACCEPT (the pid alone) does not pass. */
	assert_int_equal(rsh_accept_decode(b.data, 4, &pid, got), -EPROTO);
	aw_put_bytes(&b, "x", 1);
	assert_int_equal(rsh_accept_decode(b.data, b.len, &pid, got), -EPROTO);
	aw_buf_free(&b);
}

static void nonces(struct rsh_nonces *nn, uint8_t seed)
{
	for (unsigned i = 0; i < RSH_NONCE_LEN; i++) {
		nn->server[i] = (uint8_t)(seed + i);
		nn->client[i] = (uint8_t)(seed * 3 + i);
	}
}

static void signed_request(struct aw_buf *b, const struct rsh_nonces *nn)
{
	struct rsh_request q = sample();

	b->len = 0;
	assert_int_equal(rsh_request_encode(&q, b), 0);
	assert_int_equal(rsh_request_sign(TOKEN, nn, b, 0), 0);
}

/* The MAC answers exactly one challenge, for exactly one body, under
 * exactly one token; and the token is not in what is sent. */
static void test_request_mac(void **state)
{
	struct rsh_nonces nn, other;
	struct aw_buf b = {0};
	char other_token[] = TOKEN;
	struct rsh_request out;

	(void)state;
	nonces(&nn, 1);
	signed_request(&b, &nn);
	assert_true(rsh_request_verify(TOKEN, &nn, b.data, b.len));
	assert_null(memmem(b.data, b.len, TOKEN, 16));
	assert_int_equal(rsh_request_decode(b.data, b.len, &out), 0);
	rsh_request_clear(&out);
	/* A recorded request against a new server nonce (a replay). */
	other = nn;
	other.server[5] ^= 1;
	assert_false(rsh_request_verify(TOKEN, &other, b.data, b.len));
	other = nn;
	other.client[0] ^= 0x80;
	assert_false(rsh_request_verify(TOKEN, &other, b.data, b.len));
	other_token[10] = other_token[10] == 'a' ? 'b' : 'a';
	assert_false(rsh_request_verify(other_token, &nn, b.data, b.len));
	/* Every bit of the payload counts: version, MAC and body. */
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x10;
		if (rsh_request_verify(TOKEN, &nn, b.data, b.len))
			fail_msg("byte %zu of %zu is not covered", i, b.len);
		b.data[i] ^= 0x10;
	}
	assert_false(rsh_request_verify(TOKEN, &nn, b.data, b.len - 1));
	assert_false(rsh_request_verify(TOKEN, &nn, b.data, 3));
	assert_false(rsh_request_verify(TOKEN, &nn, b.data, 0));
	aw_buf_free(&b);
}

/* The server's answer is bound to the request's MAC and the pid, and the
 * two directions' MACs differ (neither reflects the other). */
static void test_accept_mac(void **state)
{
	struct rsh_nonces nn, other;
	uint8_t a[RSH_MAC_LEN], c[RSH_MAC_LEN], req[RSH_MAC_LEN];
	struct aw_buf b = {0};

	(void)state;
	nonces(&nn, 9);
	signed_request(&b, &nn);
	memcpy(req, b.data + 4, RSH_MAC_LEN);
	rsh_accept_mac(TOKEN, &nn, req, 100, a);
	rsh_accept_mac(TOKEN, &nn, req, 100, c);
	assert_true(hmac256_equal(a, c));
	assert_false(hmac256_equal(a, req));
	rsh_accept_mac(TOKEN, &nn, req, 101, c);
	assert_false(hmac256_equal(a, c));
	other = nn;
	other.server[0] ^= 1;
	rsh_accept_mac(TOKEN, &other, req, 100, c);
	assert_false(hmac256_equal(a, c));
	req[31] ^= 1;
	rsh_accept_mac(TOKEN, &nn, req, 100, c);
	assert_false(hmac256_equal(a, c));
	aw_buf_free(&b);
}

static void test_nonce(void **state)
{
	uint8_t a[RSH_NONCE_LEN], b[RSH_NONCE_LEN];

	(void)state;
	assert_int_equal(rsh_nonce(a, 0), 0);
	assert_int_equal(rsh_nonce(b, 0), 0);
	assert_memory_not_equal(a, b, RSH_NONCE_LEN);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_sha256(void **state)
{
	static const struct {
		const char *msg;
		const char *hex;
	} cases[] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852"
		 "b855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
		    "0015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06"
	     "c1"},
	};
	struct sha256 s;
	uint8_t d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sha256_init(&s);
		/* Byte by byte, across block boundaries. */
		for (const char *p = cases[i].msg; *p; p++)
			sha256_update(&s, p, 1);
		sha256_final(&s, d);
		hex(d, sizeof(d), h);
		assert_string_equal(h, cases[i].hex);
	}
}

/* RFC 4231 test cases 1, 2 and 6 (a key longer than a block). */
static void test_hmac_rfc4231(void **state)
{
	static const uint8_t key1[20] = {
	    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
	    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
	uint8_t key6[131], d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	struct hmac256 m;

	(void)state;
	hmac256_init(&m, key1, sizeof(key1));
	hmac256_update(&m, "Hi There", 8);
	hmac256_final(&m, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833d"
			       "a726e9376c2e32cff7");
	hmac256_init(&m, "Jefe", 4);
	hmac256_update(&m, "what do ya want for nothing?", 28);
	hmac256_final(&m, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739"
			       "839dec58b964ec3843");
	memset(key6, 0xaa, sizeof(key6));
	hmac256_init(&m, key6, sizeof(key6));
	hmac256_update(
	    &m, "Test Using Larger Than Block-Size Key - Hash Key First", 54);
	hmac256_final(&m, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5"
			       "140546040f0ee37f54");
}

/* The same as OpenSSL's (vmmd's digest.h) for keys and messages of every
 * length around the block size. */
static void test_hmac_openssl(void **state)
{
	uint8_t key[150], msg[300], d[SHA256_LEN];
	char mine[2 * SHA256_LEN + 1], theirs[DIGEST_HEX_LEN + 1];
	struct hmac256 m;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 31 + 7);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 17 + 3);
	for (size_t kl = 0; kl < sizeof(key); kl += 7) {
		for (size_t ml = 0; ml < sizeof(msg); ml += 13) {
			hmac256_init(&m, key, kl);
			hmac256_update(&m, msg, ml / 2);
			hmac256_update(&m, msg + ml / 2, ml - ml / 2);
			hmac256_final(&m, d);
			hex(d, sizeof(d), mine);
			assert_int_equal(
			    digest_hmac_hex(key, kl, msg, ml, theirs), 0);
			if (strcmp(mine, theirs) != 0)
				fail_msg("key %zu msg %zu: %s != %s", kl, ml,
					 mine, theirs);
		}
	}
}

static void test_mac_equal(void **state)
{
	uint8_t a[SHA256_LEN] = {1}, b[SHA256_LEN] = {1};

	(void)state;
	assert_true(hmac256_equal(a, b));
	b[31] = 1;
	assert_false(hmac256_equal(a, b));
	b[31] = 0;
	b[0] = 0;
	assert_false(hmac256_equal(a, b));
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
	    cmocka_unit_test(test_request_v1),
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_accept_codec),
	    cmocka_unit_test(test_request_mac),
	    cmocka_unit_test(test_accept_mac),
	    cmocka_unit_test(test_nonce),
	    cmocka_unit_test(test_sha256),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_hmac_openssl),
	    cmocka_unit_test(test_mac_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
