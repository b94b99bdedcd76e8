// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/agentwire.c: header checks, the buffer and reader
 * primitives, SETUP and EXEC round trips, and the decoders against every
 * truncation, huge counts, embedded NULs and trailing bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentwire.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ALLOC_HOOKS 1
#endif
#endif

#ifdef HAVE_ALLOC_HOOKS
/* The ASan runtime's allocator hooks (GCC ships no header declaring them):
 * they let a test see the largest allocation a decoder made. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));

static size_t largest_alloc;

static void note_malloc(const volatile void *p, size_t n)
{
	(void)p;
	if (n > largest_alloc)
		largest_alloc = n;
}

static void note_free(const volatile void *p)
{
	(void)p;
}
#endif

/* --- helpers ------------------------------------------------------------ */

static void assert_mem_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(b[i], 0);
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

/* A heap copy of a NULL-terminated list, as the decoder would return it. */
static char **xstrv(const char *const *v, uint32_t *ret_n)
{
	uint32_t n = 0, i;
	char **p;

	while (v[n])
		n++;
	p = calloc(n + 1, sizeof(*p));
	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = xstrdup(v[i]);
	*ret_n = n;
	return p;
}

/* Hand-built payloads for the malformed cases the encoders refuse to make. */
static void raw_u32(struct aw_buf *b, uint32_t v)
{
	assert_int_equal(aw_put_u32(b, v), 0);
}

static void raw_str(struct aw_buf *b, const void *p, uint32_t n)
{
	raw_u32(b, n);
	assert_int_equal(aw_put_bytes(b, p, n), 0);
}

static void raw_cstr(struct aw_buf *b, const char *s)
{
	raw_str(b, s, (uint32_t)strlen(s));
}

/* --- header ------------------------------------------------------------- */

static void test_hdr_roundtrip(void **state)
{
	uint8_t h[AW_HDR_LEN];
	struct aw_hdr d;
	const uint8_t want[AW_HDR_LEN] = {0x00, 0x01, 0x02, 0x03, AW_EXEC, 0, 0,
					  0,	0xde, 0xad, 0xbe, 0xef};

	(void)state;
	aw_hdr_encode(h, 0x010203, AW_EXEC, 0xdeadbeef);
	assert_memory_equal(h, want, sizeof(want));
	assert_int_equal(aw_hdr_decode(h, 0x010203, &d), 0);
	assert_int_equal(d.len, 0x010203);
	assert_int_equal(d.type, AW_EXEC);
	assert_int_equal(d.session, 0xdeadbeef);
}

static void test_hdr_every_type(void **state)
{
	uint8_t h[AW_HDR_LEN];
	struct aw_hdr d;
	unsigned t;

	(void)state;
	for (t = AW_HELLO; t < AW_TYPE_END; t++) {
		aw_hdr_encode(h, 0, (uint8_t)t, 0);
		assert_int_equal(aw_hdr_decode(h, 0, &d), 0);
		assert_int_equal(d.type, t);
	}
}

static void test_hdr_bad(void **state)
{
	static const struct {
		const char *what;
		int offset; /* byte to overwrite, -1 for none */
		uint8_t value;
		uint32_t len;
		size_t max;
		int want;
	} cases[] = {
	    {"flags", 5, 0x01, 0, 100, -EPROTO},
	    {"flags high bit", 5, 0x80, 0, 100, -EPROTO},
	    {"reserved hi", 6, 0x01, 0, 100, -EPROTO},
	    {"reserved lo", 7, 0x01, 0, 100, -EPROTO},
	    {"type 0", 4, 0, 0, 100, -EPROTO},
	    {"type end", 4, AW_TYPE_END, 0, 100, -EPROTO},
	    {"type 255", 4, 255, 0, 100, -EPROTO},
	    {"len over max", -1, 0, 101, 100, -EMSGSIZE},
	    {"len 4G", -1, 0, UINT32_MAX, AW_MAX_AGENT_PAYLOAD, -EMSGSIZE},
	    {"len over 0", -1, 0, 1, 0, -EMSGSIZE},
	    {"len at max", -1, 0, 100, 100, 0},
	    {"len 0 max 0", -1, 0, 0, 0, 0},
	};
	uint8_t h[AW_HDR_LEN];
	struct aw_hdr d;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		aw_hdr_encode(h, cases[i].len, AW_HELLO, 7);
		if (cases[i].offset >= 0)
			h[cases[i].offset] = cases[i].value;
		memset(&d, 0, sizeof(d));
		if (aw_hdr_decode(h, cases[i].max, &d) != cases[i].want)
			fail_msg("header case '%s'", cases[i].what);
	}
}

/* --- buffer and reader -------------------------------------------------- */

static void test_put_layout(void **state)
{
	struct aw_buf b = {0};
	const uint8_t want[] = {
	    0x01, 0x02, 0x03, 0x04,			    /* u32 */
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* i64 -2 */
	    0x00, 0x00, 0x00, 0x02, 'h',  'i',		    /* str */
	    0x00, 0x00, 0x00, 0x00,			    /* empty */
	};

	(void)state;
	assert_int_equal(aw_put_u32(&b, 0x01020304), 0);
	assert_int_equal(aw_put_i64(&b, -2), 0);
	assert_int_equal(aw_put_str(&b, "hi"), 0);
	assert_int_equal(aw_put_str(&b, ""), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	assert_int_equal(aw_put_str(&b, NULL), -EINVAL);
	assert_int_equal(b.len, sizeof(want));
	aw_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	aw_buf_free(&b); /* twice is fine */
}

static void test_put_frame(void **state)
{
	struct aw_buf b = {0};
	struct aw_hdr d;

	(void)state;
	assert_int_equal(aw_put_frame(&b, AW_STDOUT, 9, "abc", 3), 0);
	assert_int_equal(aw_put_frame(&b, AW_STDOUT, 9, NULL, 0), 0);
	assert_int_equal(b.len, 2 * AW_HDR_LEN + 3);
	assert_int_equal(aw_hdr_decode(b.data, 3, &d), 0);
	assert_int_equal(d.len, 3);
	assert_int_equal(d.type, AW_STDOUT);
	assert_int_equal(d.session, 9);
	assert_memory_equal(b.data + AW_HDR_LEN, "abc", 3);
	assert_int_equal(aw_hdr_decode(b.data + AW_HDR_LEN + 3, 0, &d), 0);
	assert_int_equal(d.len, 0);
	aw_buf_free(&b);
}

static void test_put_grows(void **state)
{
	struct aw_buf b = {0};
	uint32_t i;

	(void)state;
	for (i = 0; i < 100000; i++)
		assert_int_equal(aw_put_u32(&b, i), 0);
	assert_int_equal(b.len, 400000);
	assert_true(b.cap >= b.len);
	for (i = 0; i < 100000; i += 9999) {
		struct aw_reader r;

		aw_reader_init(&r, b.data + 4 * i, 4);
		assert_int_equal(aw_get_u32(&r), i);
	}
	aw_buf_free(&b);
}

static void test_reader_overrun(void **state)
{
	const uint8_t p[] = {0, 0, 0, 5, 1, 2, 3, 4, 5, 6};
	struct aw_reader r;

	(void)state;
	aw_reader_init(&r, p, sizeof(p));
	assert_int_equal(aw_get_u32(&r), 5);
	assert_int_equal(aw_get_i64(&r), 0); /* 6 bytes left: overrun */
	assert_int_not_equal(r.err, 0);
	/* Later reads return zero even though 6 bytes would fit a u32. */
	assert_int_equal(aw_get_u32(&r), 0);
	assert_null(aw_get_str(&r, 10));
	assert_int_equal(aw_reader_done(&r), -EPROTO);
}

static void test_reader_i64(void **state)
{
	static const int64_t vals[] = {0,	  1,	     -1,
				       INT64_MAX, INT64_MIN, 1700000000};
	struct aw_buf b = {0};
	struct aw_reader r;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(vals); i++)
		assert_int_equal(aw_put_i64(&b, vals[i]), 0);
	aw_reader_init(&r, b.data, b.len);
	for (i = 0; i < ARRAY_SIZE(vals); i++)
		assert_true(aw_get_i64(&r) == vals[i]);
	assert_int_equal(aw_reader_done(&r), 0);
	aw_buf_free(&b);
}

static void test_reader_str(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		uint32_t wire_len; /* length prefix */
		uint32_t have;	   /* bytes actually present */
		size_t max;
		const char *want; /* NULL: must fail */
	} cases[] = {
	    {"plain", "abc", 3, 3, 10, "abc"},
	    {"empty", "", 0, 0, 0, ""},
	    {"at max", "abcd", 4, 4, 4, "abcd"},
	    {"over max", "abcde", 5, 5, 4, NULL},
	    {"embedded NUL", "a\0b", 3, 3, 10, NULL},
	    {"trailing NUL", "ab\0", 3, 3, 10, NULL},
	    {"leading NUL", "\0ab", 3, 3, 10, NULL},
	    {"short", "abc", 4, 3, 10, NULL},
	    {"huge length", "abc", UINT32_MAX, 3, SIZE_MAX, NULL},
	    {"utf-8", "h\xc3\xa9llo \xe2\x9c\x93", 10, 10, 10,
	     "h\xc3\xa9llo \xe2\x9c\x93"},
	};
	struct aw_reader r;
	struct aw_buf b;
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		b = (struct aw_buf){0};
		raw_u32(&b, cases[i].wire_len);
		assert_int_equal(
		    aw_put_bytes(&b, cases[i].bytes, cases[i].have), 0);
		aw_reader_init(&r, b.data, b.len);
		s = aw_get_str(&r, cases[i].max);
		if (cases[i].want) {
			if (!s || strcmp(s, cases[i].want) != 0 ||
			    aw_reader_done(&r) != 0)
				fail_msg("str case '%s' failed", cases[i].what);
		} else if (s || r.err == 0 || aw_reader_done(&r) == 0) {
			fail_msg("str case '%s' accepted", cases[i].what);
		}
		free(s);
		aw_buf_free(&b);
	}
}

static void test_reader_done_trailing(void **state)
{
	const uint8_t p[] = {0, 0, 0, 1, 0xff};
	struct aw_reader r;

	(void)state;
	aw_reader_init(&r, p, sizeof(p));
	assert_int_equal(aw_get_u32(&r), 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(aw_reader_done(&r), -EPROTO);
	aw_reader_init(&r, p, 4);
	aw_get_u32(&r);
	assert_int_equal(aw_reader_done(&r), 0);
}

/* --- SETUP -------------------------------------------------------------- */

/* Strings that must survive the trip unchanged. */
static const char *const odd_strings[] = {
    "",
    "plain",
    "with spaces  and\ttabs",
    "quotes ' \" ` and $(dollar) \\ backslash",
    "new\nline",
    "gr\xc3\xbc\xc3\x9f \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
    "/a/path/with/many/../components/",
    "\x7f\x01\xff",
};

/* A SETUP whose strings are heap copies: free with aw_setup_clear(). */
static struct aw_setup make_setup(size_t k, uint32_t nmounts)
{
	size_t n = ARRAY_SIZE(odd_strings);
	struct aw_setup s = {
	    .hostname = xstrdup(odd_strings[k % n]),
	    .user = xstrdup(odd_strings[(k + 1) % n]),
	    .uid = 2001 + (uint32_t)k,
	    .gid = UINT32_MAX - (uint32_t)k,
	    .group = xstrdup(odd_strings[(k + 2) % n]),
	    .home = xstrdup(odd_strings[(k + 3) % n]),
	    .time_sec = k % 2 ? -(int64_t)k : INT64_MAX - (int64_t)k,
	    .nmounts = nmounts,
	};
	uint32_t i;

	for (i = 0; i < nmounts; i++) {
		s.mounts[i].tag = xstrdup(odd_strings[(k + i + 4) % n]);
		s.mounts[i].path = xstrdup(odd_strings[(k + i + 5) % n]);
	}
	s.net_addr = xstrdup("");
	s.job_token = xstrdup("");
	return s;
}

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Adds a k-node network to a SETUP; this guest is node `index`. */
static void add_net(struct aw_setup *s, uint32_t k, uint32_t index)
{
	char name[32], addr[32];
	uint32_t i;

	s->npeers = k;
	s->node_index = index;
	s->peers = calloc(k ? k : 1, sizeof(*s->peers));
	assert_non_null(s->peers);
	for (i = 0; i < k; i++) {
		snprintf(name, sizeof(name), "node-%u.cluster", i);
		snprintf(addr, sizeof(addr), "10.77.%u.%u", (i + 2) / 256,
			 (i + 2) % 256);
		s->peers[i].name = xstrdup(name);
		s->peers[i].addr = xstrdup(addr);
	}
	free(s->net_addr);
	free(s->job_token);
	snprintf(addr, sizeof(addr), "%s/16", k ? s->peers[index].addr : "");
	s->net_addr = xstrdup(k ? addr : "");
	s->job_token = xstrdup(k ? TOKEN : "");
	s->ngroups = 3;
	s->groups[0] = 100;
	s->groups[1] = 0;
	s->groups[2] = UINT32_MAX;
}

static void assert_setup_equal(const struct aw_setup *a,
			       const struct aw_setup *b)
{
	uint32_t i;

	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->user, b->user);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_string_equal(a->group, b->group);
	assert_string_equal(a->home, b->home);
	assert_true(a->time_sec == b->time_sec);
	assert_int_equal(a->nmounts, b->nmounts);
	for (i = 0; i < a->nmounts; i++) {
		assert_string_equal(a->mounts[i].tag, b->mounts[i].tag);
		assert_string_equal(a->mounts[i].path, b->mounts[i].path);
		assert_int_equal(a->mounts[i].transport,
				 b->mounts[i].transport);
	}
	assert_int_equal(a->node_index, b->node_index);
	assert_string_equal(a->net_addr, b->net_addr);
	assert_string_equal(a->job_token, b->job_token);
	assert_int_equal(a->ngroups, b->ngroups);
	for (i = 0; i < a->ngroups; i++)
		assert_int_equal(a->groups[i], b->groups[i]);
	assert_int_equal(a->npeers, b->npeers);
	for (i = 0; i < a->npeers; i++) {
		assert_string_equal(a->peers[i].name, b->peers[i].name);
		assert_string_equal(a->peers[i].addr, b->peers[i].addr);
	}
}

/* The served transport travels last, only when used: a SETUP of virtio-9p
 * mounts is the same bytes as before it existed, in either version. */
static void test_setup_transports(void **state)
{
	(void)state;
	for (uint32_t v = 1; v <= AW_VERSION; v++) {
		struct aw_setup in = make_setup(2, 3), out;
		struct aw_buf b = {0};
		size_t v1_len;

		assert_int_equal(aw_setup_encode(&in, v, &b), 0);
		v1_len = b.len;
		aw_buf_free(&b);
		in.mounts[1].transport = AW_MOUNT_SERVED;
		assert_int_equal(aw_setup_encode(&in, v, &b), 0);
		assert_int_equal(b.len, v1_len + 3 * 4);
		assert_int_equal(aw_setup_decode(b.data, b.len, v, &out), 0);
		assert_setup_equal(&in, &out);
		aw_setup_clear(&out);
		/* Cut inside the transports, an unknown one, or all of them
		 * virtio-9p (which must be left out): refused. */
		for (size_t n = v1_len + 1; n < b.len; n++)
			assert_int_equal(aw_setup_decode(b.data, n, v, &out),
					 -EPROTO);
		b.data[b.len - 1] = AW_MOUNT_TRANSPORT_END;
		assert_int_equal(aw_setup_decode(b.data, b.len, v, &out),
				 -EPROTO);
		memset(b.data + v1_len, 0, 12);
		assert_int_equal(aw_setup_decode(b.data, b.len, v, &out),
				 -EPROTO);
		aw_setup_clear(&in);
		aw_buf_free(&b);
	}
}

static void test_setup_roundtrip(void **state)
{
	struct aw_setup in, out;
	struct aw_buf b;
	size_t k;

	(void)state;
	for (k = 0; k < ARRAY_SIZE(odd_strings); k++) {
		in = make_setup(k, (uint32_t)(k % (AW_MAX_MOUNTS + 1)));
		add_net(&in, (uint32_t)k, k ? (uint32_t)k - 1 : 0);
		b = (struct aw_buf){0};
		assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), 0);
		assert_int_equal(
		    aw_setup_decode(b.data, b.len, AW_VERSION, &out), 0);
		assert_setup_equal(&in, &out);
		aw_setup_clear(&out);
		assert_null(out.hostname);
		aw_setup_clear(&in);
		aw_buf_free(&b);
	}
	in = make_setup(3, AW_MAX_MOUNTS);
	b = (struct aw_buf){0};
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), 0);
	assert_int_equal(aw_setup_decode(b.data, b.len, AW_VERSION, &out), 0);
	assert_setup_equal(&in, &out);
	aw_setup_clear(&out);
	aw_setup_clear(&in);
	aw_buf_free(&b);
}

/* Every strict prefix of a valid payload must fail and leave *ret empty. */
static void test_setup_truncated(void **state)
{
	struct aw_setup in = make_setup(2, 3), out;
	struct aw_buf b = {0};
	size_t n;

	(void)state;
	add_net(&in, 3, 1);
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), 0);
	for (n = 0; n < b.len; n++) {
		memset(&out, 0xa5, sizeof(out));
		if (aw_setup_decode(b.data, n, AW_VERSION, &out) != -EPROTO)
			fail_msg("setup prefix of %zu/%zu bytes accepted", n,
				 b.len);
		assert_mem_zero(&out, sizeof(out));
	}
	aw_setup_clear(&in);
	aw_buf_free(&b);
}

static void test_setup_trailing(void **state)
{
	struct aw_setup in = make_setup(1, 1), out;
	struct aw_buf b = {0};

	(void)state;
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), 0);
	assert_int_equal(aw_put_bytes(&b, "x", 1), 0);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(aw_setup_decode(b.data, b.len, AW_VERSION, &out),
			 -EPROTO);
	assert_mem_zero(&out, sizeof(out));
	aw_setup_clear(&in);
	aw_buf_free(&b);
}

/* Builds a SETUP payload by hand; bad_field picks a str to poison with a
 * NUL, and nmounts/extra control the mount list. */
static void raw_setup(struct aw_buf *b, int bad_field, uint32_t nmounts,
		      uint32_t present)
{
	static const char nul[] = "a\0b";
	int f = 0;
	uint32_t i;

#define STR(s) \
	(f++ == bad_field ? raw_str(b, nul, sizeof(nul) - 1) : raw_cstr(b, s))
	STR("host");
	STR("user");
	raw_u32(b, 1);
	raw_u32(b, 2);
	STR("group");
	STR("/home");
	raw_u32(b, 0);
	raw_u32(b, 0);
	raw_u32(b, nmounts);
	for (i = 0; i < present; i++) {
		STR("tag");
		STR("/path");
	}
#undef STR
}

static void test_setup_bad(void **state)
{
	static const struct {
		const char *what;
		int bad_field;
		uint32_t nmounts, present;
		int want;
	} cases[] = {
	    {"valid", -1, 2, 2, 0},
	    {"NUL in hostname", 0, 0, 0, -EPROTO},
	    {"NUL in user", 1, 0, 0, -EPROTO},
	    {"NUL in group", 2, 0, 0, -EPROTO},
	    {"NUL in home", 3, 0, 0, -EPROTO},
	    {"NUL in tag", 4, 1, 1, -EPROTO},
	    {"NUL in path", 5, 1, 1, -EPROTO},
	    {"NUL in 2nd path", 7, 2, 2, -EPROTO},
	    {"nmounts max", -1, AW_MAX_MOUNTS, AW_MAX_MOUNTS, 0},
	    {"nmounts over max", -1, AW_MAX_MOUNTS + 1, AW_MAX_MOUNTS + 1,
	     -EPROTO},
	    {"nmounts huge", -1, UINT32_MAX, 1, -EPROTO},
	    {"nmounts > present", -1, 3, 2, -EPROTO},
	    {"nmounts < present", -1, 1, 2, -EPROTO},
	};
	struct aw_setup out;
	struct aw_buf b;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		b = (struct aw_buf){0};
		raw_setup(&b, cases[i].bad_field, cases[i].nmounts,
			  cases[i].present);
		memset(&out, 0xa5, sizeof(out));
		r = aw_setup_decode(b.data, b.len, 1, &out);
		if (r != cases[i].want)
			fail_msg("setup case '%s': %d", cases[i].what, r);
		if (r == 0) {
			assert_int_equal(out.nmounts, cases[i].nmounts);
			assert_string_equal(out.hostname, "host");
			aw_setup_clear(&out);
		} else {
			assert_mem_zero(&out, sizeof(out));
		}
		aw_buf_free(&b);
	}
}

static void test_setup_encode_refuses(void **state)
{
	struct aw_setup in = make_setup(0, AW_MAX_MOUNTS);
	struct aw_buf b = {0};
	char *home = in.home;

	(void)state;
	assert_int_equal(aw_put_u32(&b, 42), 0);
	in.nmounts = AW_MAX_MOUNTS + 1;
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), -EINVAL);
	assert_int_equal(b.len, 4);
	in.nmounts = AW_MAX_MOUNTS;
	in.home = NULL;
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), -EINVAL);
	assert_int_equal(b.len, 4); /* nothing half-written is left */
	in.home = malloc(AW_MAX_STR + 2);
	assert_non_null(in.home);
	memset(in.home, 'x', AW_MAX_STR + 1);
	in.home[AW_MAX_STR + 1] = '\0';
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), -EMSGSIZE);
	assert_int_equal(b.len, 4);
	in.home[AW_MAX_STR] = '\0';
	assert_int_equal(aw_setup_encode(&in, AW_VERSION, &b), 0);
	assert_true(b.len > 4 + AW_MAX_STR);
	free(home);
	aw_setup_clear(&in);
	aw_buf_free(&b);
}

/* --- SETUP v2 ----------------------------------------------------------- */

/* A version 1 SETUP is the v2 one without the trailing fields, decodes with
 * them empty, and neither layout decodes as the other version. */
static void test_setup_versions(void **state)
{
	struct aw_setup in = make_setup(1, 2), out;
	struct aw_buf v1 = {0}, v2 = {0};

	(void)state;
	add_net(&in, 4, 2);
	assert_int_equal(aw_setup_encode(&in, 1, &v1), 0);
	assert_int_equal(aw_setup_encode(&in, 2, &v2), 0);
	assert_true(v2.len > v1.len);
	assert_memory_equal(v1.data, v2.data, v1.len);
	assert_int_equal(aw_setup_decode(v1.data, v1.len, 1, &out), 0);
	assert_string_equal(out.hostname, in.hostname);
	assert_int_equal(out.nmounts, 2);
	assert_string_equal(out.net_addr, "");
	assert_string_equal(out.job_token, "");
	assert_int_equal(out.npeers, 0);
	assert_int_equal(out.ngroups, 0);
	aw_setup_clear(&out);
	assert_int_equal(aw_setup_decode(v1.data, v1.len, 2, &out), -EPROTO);
	assert_int_equal(aw_setup_decode(v2.data, v2.len, 1, &out), -EPROTO);
	assert_int_equal(aw_setup_decode(v2.data, v2.len, 2, &out), 0);
	assert_setup_equal(&in, &out);
	aw_setup_clear(&out);
	/* Versions nobody speaks. */
	assert_int_equal(aw_setup_decode(v2.data, v2.len, 0, &out), -EINVAL);
	assert_int_equal(aw_setup_decode(v2.data, v2.len, AW_VERSION + 1, &out),
			 -EINVAL);
	assert_int_equal(aw_setup_encode(&in, 0, &v1), -EINVAL);
	assert_int_equal(aw_setup_encode(&in, AW_VERSION + 1, &v1), -EINVAL);
	aw_setup_clear(&in);
	aw_buf_free(&v1);
	aw_buf_free(&v2);
}

/* NULL v2 strings (a caller that does not know them) encode as empty. */
static void test_setup_v2_null_strings(void **state)
{
	struct aw_setup in = make_setup(0, 0), out;
	struct aw_buf b = {0};

	(void)state;
	free(in.net_addr);
	free(in.job_token);
	in.net_addr = in.job_token = NULL;
	assert_int_equal(aw_setup_encode(&in, 2, &b), 0);
	assert_int_equal(aw_setup_decode(b.data, b.len, 2, &out), 0);
	assert_string_equal(out.net_addr, "");
	assert_string_equal(out.job_token, "");
	aw_setup_clear(&out);
	aw_setup_clear(&in);
	aw_buf_free(&b);
}

static void test_validators(void **state)
{
	static const struct {
		const char *s;
		bool host, ipv4, token;
	} cases[] = {
	    {"node1", true, false, false},
	    {"n-1.cluster.example", true, false, false},
	    {"A", true, false, false},
	    {"-node", false, false, false},
	    {".node", false, false, false},
	    {"no de", false, false, false},
	    {"node_1", false, false, false},
	    {"n\node", false, false, false},
	    {"x'y", false, false, false},
	    {"", false, false, false},
	    {"0123456789012345678901234567890123456789012345678901234567890123",
	     true, false, true},
	    {"0123456789012345678901234567890123456789012345678901234567890123"
	     "4",
	     false, false, false},
	    {"10.77.0.2", true, true, false},
	    {"255.255.255.255", true, true, false},
	    {"10.77.0", true, false, false},
	    {"10.77.0.256", true, false, false},
	    {"010.77.0.2", true, false, false},
	    {" 10.77.0.2", false, false, false},
	    {TOKEN, true, false, true},
	    {"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	     true, false, false},
	    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
	     true, false, false},
	    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
	     true, false, false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (aw_hostname_ok(cases[i].s) != cases[i].host)
			fail_msg("aw_hostname_ok('%s')", cases[i].s);
		if (aw_ipv4_ok(cases[i].s) != cases[i].ipv4)
			fail_msg("aw_ipv4_ok('%s')", cases[i].s);
		if (aw_token_ok(cases[i].s) != cases[i].token)
			fail_msg("aw_token_ok('%s')", cases[i].s);
	}
	assert_false(aw_hostname_ok(NULL));
	assert_false(aw_ipv4_ok(NULL));
	assert_false(aw_token_ok(NULL));
}

static void test_cidr_parse(void **state)
{
	static const struct {
		const char *s;
		int want;
		uint32_t addr_host;
		unsigned prefix;
	} cases[] = {
	    {"10.77.0.2/16", 0, 0x0a4d0002, 16},
	    {"192.168.1.1/32", 0, 0xc0a80101, 32},
	    {"1.2.3.4/1", 0, 0x01020304, 1},
	    {"1.2.3.4/0", -EINVAL, 0, 0},
	    {"1.2.3.4/33", -EINVAL, 0, 0},
	    {"1.2.3.4/016", -EINVAL, 0, 0},
	    {"1.2.3.4/08", -EINVAL, 0, 0},
	    {"1.2.3.4/+8", -EINVAL, 0, 0},
	    {"1.2.3.4/", -EINVAL, 0, 0},
	    {"1.2.3.4", -EINVAL, 0, 0},
	    {"1.2.3/8", -EINVAL, 0, 0},
	    {"/8", -EINVAL, 0, 0},
	    {"1.2.3.4/8 ", -EINVAL, 0, 0},
	    {"1111.2.3.4/8", -EINVAL, 0, 0},
	    {"255.255.255.255.1/8", -EINVAL, 0, 0},
	    {"", -EINVAL, 0, 0},
	};
	uint32_t addr;
	unsigned prefix;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		addr = 0;
		prefix = 0;
		if (aw_cidr_parse(cases[i].s, &addr, &prefix) != cases[i].want)
			fail_msg("aw_cidr_parse('%s')", cases[i].s);
		if (cases[i].want == 0) {
			assert_int_equal(ntohl(addr), cases[i].addr_host);
			assert_int_equal(prefix, cases[i].prefix);
		}
	}
	assert_int_equal(aw_cidr_parse(NULL, &addr, &prefix), -EINVAL);
}

enum net_field { NF_NONE, NF_INDEX, NF_NET, NF_TOKEN, NF_NAME, NF_ADDR };

/* Every rule of aw_setup_check_net, at the encoder (-EINVAL) and at the
 * decoder (-EPROTO, on a payload built by hand). */
static void test_setup_v2_bad(void **state)
{
	static const struct {
		const char *what;
		uint32_t npeers, index;
		enum net_field field;
		const char *value;
	} cases[] = {
	    {"valid", 3, 1, NF_NONE, NULL},
	    {"valid, no network", 0, 0, NF_NET, ""},
	    {"index past the peers", 3, 3, NF_NONE, NULL},
	    {"index without peers", 0, 1, NF_NONE, NULL},
	    {"address not this node's", 3, 1, NF_NET, "10.77.0.2/16"},
	    {"address without prefix", 3, 1, NF_NET, "10.77.0.3"},
	    {"address with a bad prefix", 3, 1, NF_NET, "10.77.0.3/40"},
	    {"address, no peers", 0, 0, NF_NET, "10.77.0.2/16"},
	    {"token without network", 0, 0, NF_TOKEN, TOKEN},
	    {"token too short", 3, 1, NF_TOKEN, "abcdef"},
	    {"token upper case", 3, 1, NF_TOKEN,
	     "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcde"
	     "f"},
	    {"token not hex", 3, 1, NF_TOKEN,
	     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
	     "X"},
	    {"peer name with a space", 3, 1, NF_NAME, "node 1"},
	    {"peer name with a newline", 3, 1, NF_NAME, "node\n10.0.0.1 evil"},
	    {"peer name empty", 3, 1, NF_NAME, ""},
	    {"peer address not IPv4", 3, 1, NF_ADDR, "::1"},
	    {"peer address with a name", 3, 1, NF_ADDR, "10.0.0.x"},
	};
	struct aw_setup in, out;
	struct aw_buf b;
	size_t i;
	int want_enc, r;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		in = make_setup(1, 1);
		add_net(&in, cases[i].npeers, 0);
		in.node_index = cases[i].index;
		if (cases[i].npeers && cases[i].index < cases[i].npeers) {
			free(in.net_addr);
			in.net_addr = malloc(32);
			assert_non_null(in.net_addr);
			snprintf(in.net_addr, 32, "%s/16",
				 in.peers[cases[i].index].addr);
		}
		switch (cases[i].field) {
		case NF_NET:
			free(in.net_addr);
			in.net_addr = xstrdup(cases[i].value);
			if (!cases[i].value[0]) {
				free(in.job_token);
				in.job_token = xstrdup("");
			}
			break;
		case NF_TOKEN:
			free(in.job_token);
			in.job_token = xstrdup(cases[i].value);
			break;
		case NF_NAME:
			free(in.peers[2].name);
			in.peers[2].name = xstrdup(cases[i].value);
			break;
		case NF_ADDR:
			free(in.peers[0].addr);
			in.peers[0].addr = xstrdup(cases[i].value);
			break;
		case NF_INDEX:
		case NF_NONE:
			break;
		}
		want_enc = i < 2 ? 0 : -EINVAL;
		b = (struct aw_buf){0};
		r = aw_setup_encode(&in, 2, &b);
		if (r != want_enc)
			fail_msg("encode '%s': %d", cases[i].what, r);
		/* The decoder sees the same values through a v1 encoding
		 * followed by hand-written v2 fields. */
		b.len = 0;
		assert_int_equal(aw_setup_encode(&in, 1, &b), 0);
		raw_u32(&b, in.node_index);
		raw_cstr(&b, in.net_addr);
		raw_cstr(&b, in.job_token);
		raw_u32(&b, 0);
		raw_u32(&b, in.npeers);
		for (uint32_t k = 0; k < in.npeers; k++) {
			raw_cstr(&b, in.peers[k].name);
			raw_cstr(&b, in.peers[k].addr);
		}
		memset(&out, 0xa5, sizeof(out));
		r = aw_setup_decode(b.data, b.len, 2, &out);
		if (r != (i < 2 ? 0 : -EPROTO))
			fail_msg("decode '%s': %d", cases[i].what, r);
		if (r == 0)
			aw_setup_clear(&out);
		else
			assert_mem_zero(&out, sizeof(out));
		aw_setup_clear(&in);
		aw_buf_free(&b);
	}
}

/* Hand-made v2 tails after a valid v1 SETUP. */
static void v2_tail(struct aw_buf *b, uint32_t ngroups, uint32_t npeers,
		    uint32_t present)
{
	struct aw_setup s = make_setup(0, 0);

	assert_int_equal(aw_setup_encode(&s, 1, b), 0);
	aw_setup_clear(&s);
	raw_u32(b, 0);
	raw_cstr(b, "");
	raw_cstr(b, "");
	raw_u32(b, ngroups);
	for (uint32_t i = 0; i < ngroups && i < 100; i++)
		raw_u32(b, i);
	raw_u32(b, npeers);
	for (uint32_t i = 0; i < present; i++) {
		raw_cstr(b, "n");
		raw_cstr(b, "1.2.3.4");
	}
}

static void test_setup_v2_counts(void **state)
{
	static const struct {
		const char *what;
		uint32_t ngroups, npeers, present;
		int want;
	} cases[] = {
	    {"empty", 0, 0, 0, 0},
	    {"groups max", AW_MAX_GROUPS, 0, 0, 0},
	    {"groups over max", AW_MAX_GROUPS + 1, 0, 0, -EPROTO},
	    {"peers as counted", 0, 5, 5, 0},
	    {"peers fewer than counted", 0, 5, 4, -EPROTO},
	    {"peers more than counted", 0, 4, 5, -EPROTO},
	    {"peers huge count", 0, UINT32_MAX, 2, -EPROTO},
	    {"peers over AW_MAX_PEERS", 0, AW_MAX_PEERS + 1, 0, -EPROTO},
	};
	struct aw_setup out;
	struct aw_buf b;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		b = (struct aw_buf){0};
		v2_tail(&b, cases[i].ngroups, cases[i].npeers,
			cases[i].present);
		r = aw_setup_decode(b.data, b.len, 2, &out);
		if (r != cases[i].want)
			fail_msg("'%s': %d", cases[i].what, r);
		if (r == 0) {
			assert_int_equal(out.npeers, cases[i].npeers);
			assert_int_equal(out.ngroups, cases[i].ngroups);
			aw_setup_clear(&out);
		}
		aw_buf_free(&b);
	}
}

/* AW_MAX_PEERS peers with the longest names fit in one host frame, and
 * every one of them comes back. */
static void test_setup_max_peers(void **state)
{
	struct aw_setup in = make_setup(0, 0), out;
	struct aw_buf b = {0};
	char name[AW_MAX_HOSTNAME + 1];
	uint32_t i;

	(void)state;
	add_net(&in, AW_MAX_PEERS, AW_MAX_PEERS - 1);
	for (i = 0; i < AW_MAX_PEERS; i++) {
		snprintf(name, sizeof(name), "%060u-%03u", i, i % 1000);
		free(in.peers[i].name);
		in.peers[i].name = xstrdup(name);
		assert_int_equal(strlen(name), AW_MAX_HOSTNAME);
		free(in.peers[i].addr);
		in.peers[i].addr = xstrdup("255.255.255.255");
	}
	free(in.net_addr);
	in.net_addr = xstrdup("255.255.255.255/32");
	assert_int_equal(aw_setup_encode(&in, 2, &b), 0);
	assert_true(b.len <= AW_MAX_HOST_PAYLOAD);
	assert_int_equal(aw_setup_decode(b.data, b.len, 2, &out), 0);
	assert_setup_equal(&in, &out);
	aw_setup_clear(&out);
	in.npeers = AW_MAX_PEERS + 1; /* the encoder refuses one more */
	assert_int_equal(aw_setup_encode(&in, 2, &b), -EINVAL);
	in.npeers = AW_MAX_PEERS;
	aw_setup_clear(&in);
	aw_buf_free(&b);
}

/* --- EXEC --------------------------------------------------------------- */

static const char *const argv_odd[] = {
    "sh", "-c",		 "echo \"$1\" 'single' `tick`",
    "",	  " lead space", "\xe2\x9c\x93 utf-8",
    NULL,
};
static const char *const envp_odd[] = {"PATH=/usr/bin:/bin",
				       "EMPTY=", "Q=\"'\"", "U=\xc3\xa9", NULL};

/* An EXEC made of heap copies: free with aw_exec_clear(). */
static struct aw_exec make_exec(uint32_t flags, const char *script)
{
	struct aw_exec e = {
	    .uid = 2001,
	    .gid = 2002,
	    .ngroups = 3,
	    .groups = {2002, 100, UINT32_MAX},
	    .flags = flags,
	    .cwd = xstrdup("/home/o'brien/with space"),
	};

	e.argv = xstrv(argv_odd, &e.argc);
	e.envp = xstrv(envp_odd, &e.envc);
	if (script) {
		e.script = xstrdup(script);
		e.script_len = (uint32_t)strlen(script);
	}
	if (flags & AW_EXEC_BULK) {
		e.bulk_port = AW_MAX_BULK_PORTS - 1;
		for (uint32_t i = 0; i < AW_BULK_MARK_LEN; i++) {
			e.bulk_start[i] = (uint8_t)(0xf0 + i);
			e.bulk_end[i] = (uint8_t)(0x10 * i);
		}
	}
	return e;
}

static void assert_strv_equal(char **a, char **b, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		assert_string_equal(a[i], b[i]);
	assert_null(b[n]);
}

static void assert_exec_equal(const struct aw_exec *a, const struct aw_exec *b)
{
	uint32_t i;

	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->ngroups, b->ngroups);
	for (i = 0; i < a->ngroups; i++)
		assert_int_equal(a->groups[i], b->groups[i]);
	assert_int_equal(a->flags, b->flags);
	assert_string_equal(a->cwd, b->cwd);
	assert_int_equal(a->argc, b->argc);
	assert_strv_equal(a->argv, b->argv, a->argc);
	assert_int_equal(a->envc, b->envc);
	assert_strv_equal(a->envp, b->envp, a->envc);
	if (a->flags & AW_EXEC_SCRIPT) {
		assert_non_null(b->script);
		assert_int_equal(a->script_len, b->script_len);
		assert_memory_equal(a->script, b->script, a->script_len);
		assert_int_equal(b->script[b->script_len], '\0');
	} else {
		assert_null(b->script);
		assert_int_equal(b->script_len, 0);
	}
	assert_int_equal(a->bulk_port, b->bulk_port);
	assert_memory_equal(a->bulk_start, b->bulk_start, AW_BULK_MARK_LEN);
	assert_memory_equal(a->bulk_end, b->bulk_end, AW_BULK_MARK_LEN);
}

static const struct {
	const char *what;
	uint32_t flags;
	const char *script;
} exec_variants[] = {
    {"plain", 0, NULL},
    {"merge", AW_EXEC_MERGE_STDERR, NULL},
    {"stdin", AW_EXEC_STDIN, NULL},
    {"script", AW_EXEC_SCRIPT,
     "#!/bin/bash\necho \"hi $1\" '\xc3\xa9'\nexit 3\n"},
    {"empty script", AW_EXEC_SCRIPT, ""},
    {"all flags", AW_EXEC_SCRIPT | AW_EXEC_STDIN | AW_EXEC_MERGE_STDERR,
     "#!/bin/sh\ncat\n"},
    {"bulk", AW_EXEC_BULK, NULL},
    {"bulk, script, merged",
     AW_EXEC_BULK | AW_EXEC_SCRIPT | AW_EXEC_MERGE_STDERR, "#!/bin/sh\n"},
};

static void test_exec_roundtrip(void **state)
{
	struct aw_exec in, out;
	struct aw_buf b;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(exec_variants); i++) {
		in = make_exec(exec_variants[i].flags, exec_variants[i].script);
		b = (struct aw_buf){0};
		assert_int_equal(aw_exec_encode(&in, &b), 0);
		if (aw_exec_decode(b.data, b.len, &out) != 0)
			fail_msg("exec variant '%s'", exec_variants[i].what);
		assert_exec_equal(&in, &out);
		aw_exec_clear(&out);
		assert_null(out.argv);
		aw_exec_clear(&in);
		aw_buf_free(&b);
	}
}

static void test_exec_limits_roundtrip(void **state)
{
	static const char *const argv[] = {"true", NULL};
	static const char *const envp[] = {NULL};
	struct aw_exec in = {.ngroups = AW_MAX_GROUPS}, out;
	struct aw_buf b = {0};
	uint32_t i;

	(void)state;
	in.cwd = xstrdup("/");
	in.argv = xstrv(argv, &in.argc);
	in.envp = xstrv(envp, &in.envc);
	for (i = 0; i < AW_MAX_GROUPS; i++)
		in.groups[i] = i * 7;
	assert_int_equal(aw_exec_encode(&in, &b), 0);
	assert_int_equal(aw_exec_decode(b.data, b.len, &out), 0);
	assert_int_equal(out.envc, 0);
	assert_non_null(out.envp);
	assert_null(out.envp[0]);
	assert_exec_equal(&in, &out);
	aw_exec_clear(&out);
	aw_exec_clear(&in);
	aw_buf_free(&b);
}

static void test_exec_truncated(void **state)
{
	struct aw_exec in, out;
	struct aw_buf b;
	size_t i, n;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(exec_variants); i++) {
		in = make_exec(exec_variants[i].flags, exec_variants[i].script);
		b = (struct aw_buf){0};
		assert_int_equal(aw_exec_encode(&in, &b), 0);
		for (n = 0; n < b.len; n++) {
			memset(&out, 0xa5, sizeof(out));
			if (aw_exec_decode(b.data, n, &out) != -EPROTO)
				fail_msg("exec '%s': prefix %zu/%zu accepted",
					 exec_variants[i].what, n, b.len);
			assert_mem_zero(&out, sizeof(out));
		}
		aw_exec_clear(&in);
		aw_buf_free(&b);
	}
}

/* What the agent would refuse, the host cannot send. */
static void test_exec_bulk_encode_refused(void **state)
{
	struct aw_exec e = make_exec(AW_EXEC_BULK, NULL);
	struct aw_buf b = {0};

	(void)state;
	e.bulk_port = AW_MAX_BULK_PORTS;
	assert_int_equal(aw_exec_encode(&e, &b), -EINVAL);
	e.bulk_port = 0;
	memcpy(e.bulk_end, e.bulk_start, AW_BULK_MARK_LEN);
	assert_int_equal(aw_exec_encode(&e, &b), -EINVAL);
	assert_int_equal(b.len, 0);
	aw_exec_clear(&e);
	aw_buf_free(&b);
}

static void test_exec_trailing(void **state)
{
	struct aw_exec in = make_exec(AW_EXEC_SCRIPT, "#!/bin/sh\n"), out;
	struct aw_buf b = {0};

	(void)state;
	assert_int_equal(aw_exec_encode(&in, &b), 0);
	assert_int_equal(aw_put_u32(&b, 0), 0);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(aw_exec_decode(b.data, b.len, &out), -EPROTO);
	assert_mem_zero(&out, sizeof(out));
	aw_exec_clear(&in);
	aw_buf_free(&b);
}

/* Hand-built EXEC payloads for what the encoder refuses to produce. */
struct raw_exec {
	uint32_t ngroups, groups_present;
	uint32_t flags;
	const char *cwd;
	size_t cwd_len;
	uint32_t argc, argv_present;
	const char *arg;
	size_t arg_len;
	uint32_t envc, envp_present;
	bool script_present;
	const char *script;
	size_t script_len;
	uint32_t bulk_port;
	size_t bulk_len; /* marker bytes present: 0, or up to 32 */
	bool bulk_same;	 /* the end marker repeats the start marker */
};

static void raw_exec(struct aw_buf *b, const struct raw_exec *x)
{
	uint32_t i;

	raw_u32(b, 2001);
	raw_u32(b, 2001);
	raw_u32(b, x->ngroups);
	for (i = 0; i < x->groups_present; i++)
		raw_u32(b, i);
	raw_u32(b, x->flags);
	raw_str(b, x->cwd, (uint32_t)x->cwd_len);
	raw_u32(b, x->argc);
	for (i = 0; i < x->argv_present; i++)
		raw_str(b, x->arg, (uint32_t)x->arg_len);
	raw_u32(b, x->envc);
	for (i = 0; i < x->envp_present; i++)
		raw_cstr(b, "A=b");
	if (x->script_present)
		raw_str(b, x->script, (uint32_t)x->script_len);
	if (x->bulk_len)
		raw_u32(b, x->bulk_port);
	for (i = 0; i < x->bulk_len; i++) {
		uint8_t c = (uint8_t)(i % AW_BULK_MARK_LEN);

		c += (i >= AW_BULK_MARK_LEN && !x->bulk_same) ? 0x40 : 0;
		assert_int_equal(aw_put_bytes(b, &c, 1), 0);
	}
}

#define RAW_OK                                                               \
	.cwd = "/", .cwd_len = 1, .argc = 1, .argv_present = 1, .arg = "ls", \
	.arg_len = 2, .envc = 1, .envp_present = 1

/* Each case overrides fields of RAW_OK: that is the point of the table. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static void test_exec_bad(void **state)
{
	static const struct {
		const char *what;
		struct raw_exec x;
		int want;
	} cases[] = {
	    {"valid", {RAW_OK}, 0},
	    {"valid script",
	     {RAW_OK, .flags = AW_EXEC_SCRIPT, .script_present = true,
	      .script = "#!/bin/sh\n", .script_len = 10},
	     0},
	    {"argc 0", {RAW_OK, .argc = 0, .argv_present = 0}, -EPROTO},
	    {"ngroups max",
	     {RAW_OK, .ngroups = AW_MAX_GROUPS,
	      .groups_present = AW_MAX_GROUPS},
	     0},
	    {"ngroups over max",
	     {RAW_OK, .ngroups = AW_MAX_GROUPS + 1,
	      .groups_present = AW_MAX_GROUPS + 1},
	     -EPROTO},
	    {"ngroups huge", {RAW_OK, .ngroups = UINT32_MAX}, -EPROTO},
	    {"unknown flag", {RAW_OK, .flags = 0x10}, -EPROTO},
	    {"bulk", {RAW_OK, .flags = AW_EXEC_BULK, .bulk_len = 32}, 0},
	    {"bulk, last port",
	     {RAW_OK, .flags = AW_EXEC_BULK, .bulk_len = 32,
	      .bulk_port = AW_MAX_BULK_PORTS - 1},
	     0},
	    {"bulk, port over max",
	     {RAW_OK, .flags = AW_EXEC_BULK, .bulk_len = 32,
	      .bulk_port = AW_MAX_BULK_PORTS},
	     -EPROTO},
	    {"bulk, same markers",
	     {RAW_OK, .flags = AW_EXEC_BULK, .bulk_len = 32, .bulk_same = true},
	     -EPROTO},
	    {"bulk, short markers",
	     {RAW_OK, .flags = AW_EXEC_BULK, .bulk_len = 31},
	     -EPROTO},
	    {"bulk flag, no fields", {RAW_OK, .flags = AW_EXEC_BULK}, -EPROTO},
	    {"bulk fields, no flag", {RAW_OK, .bulk_len = 32}, -EPROTO},
	    {"high flag", {RAW_OK, .flags = 0x80000000u}, -EPROTO},
	    {"script flag, no script",
	     {RAW_OK, .flags = AW_EXEC_SCRIPT},
	     -EPROTO},
	    {"script without flag",
	     {RAW_OK, .script_present = true, .script = "x", .script_len = 1},
	     -EPROTO},
	    {"NUL in script",
	     {RAW_OK, .flags = AW_EXEC_SCRIPT, .script_present = true,
	      .script = "#!/bin/sh\n\0rm", .script_len = 13},
	     -EPROTO},
	    {"NUL in cwd", {RAW_OK, .cwd = "/\0x", .cwd_len = 3}, -EPROTO},
	    {"NUL in argv", {RAW_OK, .arg = "l\0s", .arg_len = 3}, -EPROTO},
	    {"argc 60000, 10 bytes", {RAW_OK, .argc = 60000}, -EPROTO},
	    {"argc over max",
	     {RAW_OK, .argc = AW_MAX_ARGS + 1, .argv_present = 1},
	     -EPROTO},
	    {"argc huge", {RAW_OK, .argc = UINT32_MAX}, -EPROTO},
	    {"envc 60000", {RAW_OK, .envc = 60000}, -EPROTO},
	    {"envc huge", {RAW_OK, .envc = UINT32_MAX}, -EPROTO},
	    {"argc > present", {RAW_OK, .argc = 2}, -EPROTO},
	    {"envc < present", {RAW_OK, .envc = 0}, -EPROTO},
	    {"envc 0", {RAW_OK, .envc = 0, .envp_present = 0}, 0},
	};
	struct aw_exec out;
	struct aw_buf b;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		b = (struct aw_buf){0};
		raw_exec(&b, &cases[i].x);
		memset(&out, 0xa5, sizeof(out));
		r = aw_exec_decode(b.data, b.len, &out);
		if (r != cases[i].want)
			fail_msg("exec case '%s': %d", cases[i].what, r);
		if (r == 0) {
			assert_string_equal(out.argv[0], "ls");
			aw_exec_clear(&out);
		} else {
			assert_mem_zero(&out, sizeof(out));
		}
		aw_buf_free(&b);
	}
}
#pragma GCC diagnostic pop

/*
 * A count is refused against the bytes left before anything is allocated:
 * N empty strings take exactly 4*N bytes, so N fits and N+1 does not.
 */
static void test_exec_count_bound_is_tight(void **state)
{
	const uint32_t n = 1000;
	struct aw_exec out;
	struct aw_buf b;
	uint32_t argc, i;

	(void)state;
	for (argc = n; argc <= n + 1; argc++) {
		b = (struct aw_buf){0};
		raw_u32(&b, 0);
		raw_u32(&b, 0);
		raw_u32(&b, 0); /* ngroups */
		raw_u32(&b, 0); /* flags */
		raw_cstr(&b, "/");
		raw_u32(&b, argc);
		for (i = 0; i < n; i++)
			raw_cstr(&b, "");
		raw_u32(&b, 0); /* envc */
		assert_int_equal(aw_exec_decode(b.data, b.len, &out),
				 argc == n ? 0 : -EPROTO);
		if (argc == n) {
			assert_int_equal(out.argc, n);
			assert_string_equal(out.argv[n - 1], "");
			assert_null(out.argv[n]);
		}
		aw_exec_clear(&out);
		aw_buf_free(&b);
	}
}

/* A count of 60000 strings in a few bytes must fail before the decoder
 * allocates an array for them (measurable under ASan only). */
static void test_exec_huge_count_allocates_nothing_big(void **state)
{
	(void)state;
#ifdef HAVE_ALLOC_HOOKS
	static const uint32_t counts[] = {60000, AW_MAX_ARGS, UINT32_MAX};
	static bool hooked;
	struct aw_exec out;
	struct aw_buf b;
	size_t i;

	if (!hooked) {
		assert_int_not_equal(__sanitizer_install_malloc_and_free_hooks(
					 note_malloc, note_free),
				     0);
		hooked = true;
	}
	for (i = 0; i < ARRAY_SIZE(counts); i++) {
		b = (struct aw_buf){0};
		raw_u32(&b, 0);
		raw_u32(&b, 0);
		raw_u32(&b, 0); /* ngroups */
		raw_u32(&b, 0); /* flags */
		raw_cstr(&b, "/");
		raw_u32(&b, counts[i]);
		raw_cstr(&b, "ls");
		raw_u32(&b, 0); /* envc */
		largest_alloc = 0;
		assert_int_equal(aw_exec_decode(b.data, b.len, &out), -EPROTO);
		if (largest_alloc > 64)
			fail_msg("argc %u: allocated %zu bytes", counts[i],
				 largest_alloc);
		aw_buf_free(&b);
	}
#else
	skip();
#endif
}

/* AW_MAX_ARGS holds even when the payload really carries that many. */
static void test_exec_argc_limit(void **state)
{
	struct aw_exec out;
	struct aw_buf b;
	uint32_t argc, i;

	(void)state;
	for (argc = AW_MAX_ARGS; argc <= AW_MAX_ARGS + 1; argc++) {
		b = (struct aw_buf){0};
		raw_u32(&b, 0);
		raw_u32(&b, 0);
		raw_u32(&b, 0); /* ngroups */
		raw_u32(&b, 0); /* flags */
		raw_cstr(&b, "/");
		raw_u32(&b, argc);
		for (i = 0; i < argc; i++)
			raw_cstr(&b, "");
		raw_u32(&b, 0); /* envc */
		assert_int_equal(aw_exec_decode(b.data, b.len, &out),
				 argc == AW_MAX_ARGS ? 0 : -EPROTO);
		aw_exec_clear(&out);
		aw_buf_free(&b);
	}
}

static void test_exec_encode_refuses(void **state)
{
	static const struct {
		const char *what;
		uint32_t ngroups, flags, argc;
		bool null_cwd, null_script;
	} cases[] = {
	    {"ngroups over max", AW_MAX_GROUPS + 1, 0, 1, false, false},
	    {"unknown flag", 0, 0x10, 1, false, false},
	    {"argc 0", 0, 0, 0, false, false},
	    {"argc over max", 0, 0, AW_MAX_ARGS + 1, false, false},
	    {"NULL cwd", 0, 0, 1, true, false},
	    {"script flag, NULL script", 0, AW_EXEC_SCRIPT, 1, false, true},
	};
	struct aw_exec e;
	struct aw_buf b = {0};
	size_t i;

	(void)state;
	assert_int_equal(aw_put_u32(&b, 7), 0);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		e = make_exec(cases[i].flags,
			      cases[i].null_script ? NULL : "x");
		e.ngroups = cases[i].ngroups;
		/* argv holds fewer entries than an oversized argc: the
		 * encoder must refuse the count before reading them. */
		e.argc = cases[i].argc;
		if (cases[i].null_cwd) {
			free(e.cwd);
			e.cwd = NULL;
		}
		if (aw_exec_encode(&e, &b) >= 0 || b.len != 4)
			fail_msg("exec encode case '%s' accepted",
				 cases[i].what);
		aw_exec_clear(&e);
	}
	aw_buf_free(&b);
}

/* --- names -------------------------------------------------------------- */

static void test_type_names(void **state)
{
	static const struct {
		unsigned type;
		const char *name;
	} cases[] = {
	    {0, "unknown"},
	    {AW_HELLO, "HELLO"},
	    {AW_SETUP, "SETUP"},
	    {AW_SETUP_OK, "SETUP_OK"},
	    {AW_SETUP_FAIL, "SETUP_FAIL"},
	    {AW_EXEC, "EXEC"},
	    {AW_STARTED, "STARTED"},
	    {AW_EXEC_FAIL, "EXEC_FAIL"},
	    {AW_STDIN, "STDIN"},
	    {AW_STDOUT, "STDOUT"},
	    {AW_STDERR, "STDERR"},
	    {AW_CREDIT, "CREDIT"},
	    {AW_SIGNAL, "SIGNAL"},
	    {AW_EXIT, "EXIT"},
	    {AW_SHUTDOWN, "SHUTDOWN"},
	    {AW_ERROR, "ERROR"},
	    {AW_TYPE_END, "unknown"},
	    {200, "unknown"},
	    {255, "unknown"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		assert_string_equal(aw_type_name((uint8_t)cases[i].type),
				    cases[i].name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hdr_roundtrip),
	    cmocka_unit_test(test_hdr_every_type),
	    cmocka_unit_test(test_hdr_bad),
	    cmocka_unit_test(test_put_layout),
	    cmocka_unit_test(test_put_frame),
	    cmocka_unit_test(test_put_grows),
	    cmocka_unit_test(test_reader_overrun),
	    cmocka_unit_test(test_reader_i64),
	    cmocka_unit_test(test_reader_str),
	    cmocka_unit_test(test_reader_done_trailing),
	    cmocka_unit_test(test_setup_roundtrip),
	    cmocka_unit_test(test_setup_transports),
	    cmocka_unit_test(test_setup_truncated),
	    cmocka_unit_test(test_setup_trailing),
	    cmocka_unit_test(test_setup_bad),
	    cmocka_unit_test(test_setup_encode_refuses),
	    cmocka_unit_test(test_setup_versions),
	    cmocka_unit_test(test_setup_v2_null_strings),
	    cmocka_unit_test(test_validators),
	    cmocka_unit_test(test_cidr_parse),
	    cmocka_unit_test(test_setup_v2_bad),
	    cmocka_unit_test(test_setup_v2_counts),
	    cmocka_unit_test(test_setup_max_peers),
	    cmocka_unit_test(test_exec_roundtrip),
	    cmocka_unit_test(test_exec_limits_roundtrip),
	    cmocka_unit_test(test_exec_truncated),
	    cmocka_unit_test(test_exec_trailing),
	    cmocka_unit_test(test_exec_bulk_encode_refused),
	    cmocka_unit_test(test_exec_bad),
	    cmocka_unit_test(test_exec_count_bound_is_tight),
	    cmocka_unit_test(test_exec_huge_count_allocates_nothing_big),
	    cmocka_unit_test(test_exec_argc_limit),
	    cmocka_unit_test(test_exec_encode_refuses),
	    cmocka_unit_test(test_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
