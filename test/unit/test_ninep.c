// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/ninep.c: every request type decoded from bytes
 * built here, each truncated at every length and with a trailing byte,
 * the limits (strings, names per walk, counts against msize, the message
 * size), and the replies' exact bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "ninep.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MSIZE	      65536u

/* Builds a message: fmt chars b u8, w u16, d u32, q u64, s string (a
 * C string), S (length, bytes) for strings with odd content. The size
 * field is filled in. Returns the length. */
static size_t mk(uint8_t *buf, size_t cap, const char *fmt, ...)
{
	struct ninep_out o = {buf, cap, 4, false};
	va_list ap;

	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		switch (*f) {
		case 'b':
			ninep_put_u8(&o, (uint8_t)va_arg(ap, unsigned));
			break;
		case 'w':
			ninep_put_u16(&o, (uint16_t)va_arg(ap, unsigned));
			break;
		case 'd':
			ninep_put_u32(&o, va_arg(ap, uint32_t));
			break;
		case 'q':
			ninep_put_u64(&o, va_arg(ap, uint64_t));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			ninep_put_str(&o, s, strlen(s));
			break;
		}
		case 'S': {
			size_t n = va_arg(ap, size_t);
			const char *s = va_arg(ap, const char *);
			ninep_put_str(&o, s, n);
			break;
		}
		default:
			fail_msg("bad format %c", *f);
		}
	}
	va_end(ap);
	assert_false(o.err);
	return (size_t)ninep_reply_end(&o);
}

static bool str_is(const struct ninep_str *s, const char *want)
{
	return s->len == strlen(want) && memcmp(s->p, want, s->len) == 0;
}

/* Every proper prefix (with its size field fixed up) and the message plus
 * one byte must be refused as malformed; the message itself must decode. */
static void check_framing(const uint8_t *msg, size_t n)
{
	uint8_t buf[8192];
	struct ninep_req q;

	assert_true(n + 1 <= sizeof(buf));
	memcpy(buf, msg, n);
	assert_int_equal(ninep_decode(buf, n, MSIZE, &q), 0);
	for (size_t cut = NINEP_HDR_LEN; cut < n; cut++) {
		buf[0] = (uint8_t)cut;
		buf[1] = (uint8_t)(cut >> 8);
		buf[2] = buf[3] = 0;
		assert_int_equal(ninep_decode(buf, cut, MSIZE, &q), -EPROTO);
		assert_int_equal(q.tag, 0x1234);
	}
	buf[n] = 0;
	buf[0] = (uint8_t)(n + 1);
	buf[1] = (uint8_t)((n + 1) >> 8);
	assert_int_equal(ninep_decode(buf, n + 1, MSIZE, &q), -EPROTO);
}

/* --- decoding, one case per type --------------------------------------- */

static void test_version_attach(void **state)
{
	uint8_t m[256];
	struct ninep_req q;
	size_t n;

	(void)state;
	n = mk(m, sizeof(m), "bwds", NINEP_TVERSION, 0x1234, 131072u,
	       "9P2000.L");
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.type, NINEP_TVERSION);
	assert_int_equal(q.msize, 131072);
	assert_true(str_is(&q.name, "9P2000.L"));
	check_framing(m, n);

	n = mk(m, sizeof(m), "bwddssd", NINEP_TATTACH, 0x1234, 1u, NINEP_NOFID,
	       "alice", "", 1000u);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.fid, 1);
	assert_int_equal(q.newfid, NINEP_NOFID);
	assert_true(str_is(&q.name, "alice"));
	assert_true(str_is(&q.name2, ""));
	assert_int_equal(q.n_uname, 1000);
	check_framing(m, n);
}

static void test_walk(void **state)
{
	uint8_t m[512];
	struct ninep_req q;
	size_t n;

	(void)state;
	n = mk(m, sizeof(m), "bwddwsss", NINEP_TWALK, 0x1234, 1u, 2u, 3u, "a",
	       "..", "ccc");
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.fid, 1);
	assert_int_equal(q.newfid, 2);
	assert_int_equal(q.nwname, 3);
	assert_true(str_is(&q.wname[0], "a"));
	assert_true(str_is(&q.wname[1], ".."));
	assert_true(str_is(&q.wname[2], "ccc"));
	check_framing(m, n);

	/* A clone: no names. */
	n = mk(m, sizeof(m), "bwddw", NINEP_TWALK, 0x1234, 1u, 2u, 0u);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.nwname, 0);
}

static void test_walk_too_many_names(void **state)
{
	uint8_t m[512];
	struct ninep_req q;
	struct ninep_out o;
	int n;

	(void)state;
	ninep_reply_begin(&o, m, sizeof(m), NINEP_TWALK, 7);
	ninep_put_u32(&o, 1);
	ninep_put_u32(&o, 2);
	ninep_put_u16(&o, NINEP_MAX_WELEM + 1);
	for (unsigned i = 0; i < NINEP_MAX_WELEM + 1; i++)
		ninep_put_str(&o, "x", 1);
	n = ninep_reply_end(&o);
	assert_true(n > 0);
	assert_int_equal(ninep_decode(m, (size_t)n, MSIZE, &q), -EPROTO);
	assert_int_equal(q.tag, 7);
	assert_int_equal(q.nwname, 0);
}

static void test_io(void **state)
{
	uint8_t m[256];
	struct ninep_req q;
	size_t n;

	(void)state;
	n = mk(m, sizeof(m), "bwdqd", NINEP_TREAD, 0x1234, 5u,
	       (uint64_t)1 << 40, MSIZE - NINEP_IOHDR_LEN);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.fid, 5);
	assert_true(q.offset == (uint64_t)1 << 40);
	assert_int_equal(q.count, MSIZE - NINEP_IOHDR_LEN);
	check_framing(m, n);
	/* One byte more than a reply of msize can carry. */
	n = mk(m, sizeof(m), "bwdqd", NINEP_TREADDIR, 0x1234, 5u, 0ull,
	       MSIZE - NINEP_IOHDR_LEN + 1);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EPROTO);

	n = mk(m, sizeof(m), "bwdqdbbb", NINEP_TWRITE, 0x1234, 5u, 9ull, 3u,
	       'a', 0u, 'c');
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.count, 3);
	assert_memory_equal(q.data, "a\0c", 3);
	check_framing(m, n);
	/* A count beyond the message. */
	n = mk(m, sizeof(m), "bwdqdbb", NINEP_TWRITE, 0x1234, 5u, 9ull, 3u, 'a',
	       'b');
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EPROTO);
	n = mk(m, sizeof(m), "bwdqd", NINEP_TWRITE, 0x1234, 5u, 9ull,
	       0xffffffffu);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EPROTO);
}

struct layout_case {
	const char *what;
	const char *fmt;
	uint8_t type;
};

/* Every other request with distinct values in each field: decodes, and
 * refuses every truncation and a trailing byte. */
static void test_layouts(void **state)
{
	static const struct layout_case cases[] = {
	    {"statfs", "bwd", NINEP_TSTATFS},
	    {"lopen", "bwdd", NINEP_TLOPEN},
	    {"lcreate", "bwdsddd", NINEP_TLCREATE},
	    {"symlink", "bwdssd", NINEP_TSYMLINK},
	    {"mknod", "bwdsdddd", NINEP_TMKNOD},
	    {"rename", "bwdds", NINEP_TRENAME},
	    {"readlink", "bwd", NINEP_TREADLINK},
	    {"getattr", "bwdq", NINEP_TGETATTR},
	    {"setattr", "bwdddddqqqqq", NINEP_TSETATTR},
	    {"xattrwalk", "bwdds", NINEP_TXATTRWALK},
	    {"xattrcreate", "bwdsqd", NINEP_TXATTRCREATE},
	    {"fsync", "bwdd", NINEP_TFSYNC},
	    {"lock", "bwdbdqqds", NINEP_TLOCK},
	    {"getlock", "bwdbqqds", NINEP_TGETLOCK},
	    {"link", "bwdds", NINEP_TLINK},
	    {"mkdir", "bwdsdd", NINEP_TMKDIR},
	    {"renameat", "bwdsds", NINEP_TRENAMEAT},
	    {"unlinkat", "bwdsd", NINEP_TUNLINKAT},
	    {"auth", "bwdssd", NINEP_TAUTH},
	    {"flush", "bww", NINEP_TFLUSH},
	    {"clunk", "bwd", NINEP_TCLUNK},
	    {"remove", "bwd", NINEP_TREMOVE},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct layout_case *c = &cases[i];
		uint8_t m[512];
		struct ninep_out o;
		struct ninep_req q;
		unsigned v = 1;
		int n;

		print_message("%s\n", c->what);
		ninep_reply_begin(&o, m, sizeof(m), c->type, 0x1234);
		for (const char *f = c->fmt + 2; *f; f++, v++) {
			if (*f == 'b')
				ninep_put_u8(&o, (uint8_t)v);
			else if (*f == 'w')
				ninep_put_u16(&o, (uint16_t)v);
			else if (*f == 'd')
				ninep_put_u32(&o, 0x100u + v);
			else if (*f == 'q')
				ninep_put_u64(&o, ((uint64_t)v << 32) | v);
			else
				ninep_put_str(&o, "name", 4);
		}
		n = ninep_reply_end(&o);
		assert_true(n > 0);
		assert_int_equal(ninep_decode(m, (size_t)n, MSIZE, &q), 0);
		assert_int_equal(q.type, c->type);
		assert_int_equal(q.tag, 0x1234);
		if (c->fmt[2] == 'd' && c->type != NINEP_TAUTH)
			assert_int_equal(q.fid, 0x101);
		check_framing(m, (size_t)n);
	}
}

static void test_setattr_fields(void **state)
{
	uint8_t m[256];
	struct ninep_req q;
	size_t n;

	(void)state;
	n = mk(m, sizeof(m), "bwdddddqqqqq", NINEP_TSETATTR, 1u, 9u,
	       NINEP_SETATTR_MODE | NINEP_SETATTR_SIZE, 0640u, 1000u, 100u,
	       4096ull, 11ull, 12ull, 13ull, 14ull);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.fid, 9);
	assert_int_equal(q.valid, NINEP_SETATTR_MODE | NINEP_SETATTR_SIZE);
	assert_int_equal(q.mode, 0640);
	assert_int_equal(q.uid, 1000);
	assert_int_equal(q.gid, 100);
	assert_int_equal(q.size, 4096);
	assert_int_equal(q.atime_sec, 11);
	assert_int_equal(q.atime_nsec, 12);
	assert_int_equal(q.mtime_sec, 13);
	assert_int_equal(q.mtime_nsec, 14);

	n = mk(m, sizeof(m), "bwdsds", NINEP_TRENAMEAT, 1u, 3u, "old", 4u,
	       "new");
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.fid, 3);
	assert_int_equal(q.newfid, 4);
	assert_true(str_is(&q.name, "old"));
	assert_true(str_is(&q.name2, "new"));
}

/* --- limits -------------------------------------------------------------- */

static void test_strings(void **state)
{
	static char big[NINEP_MAX_STR + 2];
	uint8_t m[NINEP_MAX_STR + 64];
	struct ninep_req q;
	size_t n;

	(void)state;
	n = mk(m, sizeof(m), "bwdsdS", NINEP_TUNLINKAT, 3u, 1u, "x", 0u,
	       (size_t)3, "a\0b");
	/* (the S above is in the wrong place on purpose: bytes left over) */
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EPROTO);
	n = mk(m, sizeof(m), "bwdSd", NINEP_TUNLINKAT, 3u, 1u, (size_t)3,
	       "a\0b", 0u);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EPROTO);
	assert_int_equal(q.tag, 3);

	memset(big, 'x', sizeof(big) - 1);
	n = mk(m, sizeof(m), "bwdSd", NINEP_TUNLINKAT, 3u, 1u,
	       (size_t)NINEP_MAX_STR, big, 0u);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), 0);
	assert_int_equal(q.name.len, NINEP_MAX_STR);
	n = mk(m, sizeof(m), "bwdSd", NINEP_TUNLINKAT, 3u, 1u,
	       (size_t)NINEP_MAX_STR + 1, big, 0u);
	assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EPROTO);
}

static void test_unknown_types(void **state)
{
	static const uint8_t bad[] = {0,   1,	NINEP_RLERROR, 9,   13, 101,
				      105, 107, 111,	       117, 255};
	uint8_t m[64];
	struct ninep_req q;
	size_t n;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		n = mk(m, sizeof(m), "bwd", bad[i], 0x4242u, 1u);
		assert_int_equal(ninep_decode(m, n, MSIZE, &q), -EOPNOTSUPP);
		assert_int_equal(q.tag, 0x4242);
		assert_int_equal(q.type, bad[i]);
	}
}

static void test_sizes(void **state)
{
	uint8_t m[16] = {0};
	struct ninep_req q;
	uint32_t size = 0;

	(void)state;
	/* Below a header, above msize, exactly msize. */
	m[0] = 6;
	assert_int_equal(ninep_msg_size(m, 4, MSIZE, &size), -EMSGSIZE);
	m[0] = 1, m[2] = 1; /* 65537 */
	assert_int_equal(ninep_msg_size(m, 4, MSIZE, &size), -EMSGSIZE);
	m[0] = 0;
	assert_int_equal(ninep_msg_size(m, 4, MSIZE, &size), 0);
	assert_int_equal(size, MSIZE);
	assert_int_equal(ninep_msg_size(m, 3, MSIZE, &size), -EMSGSIZE);
	/* decode insists on n == size and a sane msize. */
	m[0] = 11, m[2] = 0, m[4] = NINEP_TCLUNK;
	assert_int_equal(ninep_decode(m, 11, MSIZE, &q), 0);
	assert_int_equal(ninep_decode(m, 12, MSIZE, &q), -EPROTO);
	assert_int_equal(ninep_decode(m, 11, 100, &q), -EPROTO);
	assert_int_equal(ninep_decode(m, 11, NINEP_MAX_MSIZE + 1, &q), -EPROTO);
}

static void test_names(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {{"a", true},  {"..a", true}, {"...", true},  {"", false},
		     {".", false}, {"..", false}, {"a/b", false}, {"/", false}};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ninep_str s = {cases[i].s, (uint16_t)strlen(cases[i].s)};
		assert_int_equal(ninep_name_ok(&s), cases[i].ok);
	}
}

/* --- replies ------------------------------------------------------------- */

static void test_rlerror_bytes(void **state)
{
	static const uint8_t want[] = {11, 0, 0, 0, NINEP_RLERROR, 0x34, 0x12,
				       2,  0, 0, 0};
	uint8_t m[11];

	(void)state;
	assert_int_equal(ninep_rlerror(m, 0x1234, 2), 11);
	assert_memory_equal(m, want, sizeof(want));
}

static void test_reply_getattr(void **state)
{
	uint8_t m[256];
	struct ninep_out o;
	struct ninep_stat st = {.valid = NINEP_GETATTR_BASIC,
				.qid = {NINEP_QTDIR, 7, 0x1122334455667788ull},
				.mode = 040755,
				.size = 4096};

	(void)state;
	ninep_reply_begin(&o, m, sizeof(m), NINEP_TGETATTR + 1, 1);
	ninep_put_stat(&o, &st);
	/* size type tag valid qid mode uid gid + 15 u64 */
	assert_int_equal(ninep_reply_end(&o), 7 + 8 + 13 + 12 + 15 * 8);
	assert_int_equal(m[15], NINEP_QTDIR);
	assert_int_equal(m[20], 0x88);
	assert_int_equal(m[27], 0x11);
	/* Too small a buffer fails instead of writing past it. */
	ninep_reply_begin(&o, m, 100, NINEP_TGETATTR + 1, 1);
	ninep_put_stat(&o, &st);
	assert_int_equal(ninep_reply_end(&o), -EMSGSIZE);
}

static void test_dirents(void **state)
{
	uint8_t m[128];
	struct ninep_out o;
	struct ninep_qid qid = {0, 0, 1};
	size_t base;

	(void)state;
	ninep_reply_begin(&o, m, sizeof(m), NINEP_TREADDIR + 1, 1);
	ninep_put_u32(&o, 0);
	base = o.len;
	/* Each entry of a 3-byte name takes 13+8+1+2+3 = 27 bytes. */
	assert_true(ninep_put_dirent(&o, base, 60, &qid, 1, 4, "abc", 3));
	assert_true(ninep_put_dirent(&o, base, 60, &qid, 2, 4, "def", 3));
	assert_false(ninep_put_dirent(&o, base, 60, &qid, 3, 4, "ghi", 3));
	assert_int_equal(o.len - base, 54);
	assert_false(o.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version_attach),
	    cmocka_unit_test(test_walk),
	    cmocka_unit_test(test_walk_too_many_names),
	    cmocka_unit_test(test_io),
	    cmocka_unit_test(test_layouts),
	    cmocka_unit_test(test_setattr_fields),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_unknown_types),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_rlerror_bytes),
	    cmocka_unit_test(test_reply_getattr),
	    cmocka_unit_test(test_dirents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
