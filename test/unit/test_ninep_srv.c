// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmenv-9p's requests (ninep/): a real directory as the
 * root, requests built as the guest would send them. Above all the
 * confinement: "..", absolute and relative symlinks, symlink loops, a
 * directory or file replaced by a symlink between walk and open, names
 * with '/'; then I/O, rename following fids, the state round trip
 * (an unlinked open file comes back lost: ESTALE), and a read-only server
 * (--read-only) refusing every change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmtree.h"
#include "srv.h"
#include "util.h"

#define MSIZE 65536u

struct t {
	char dir[64];
	struct srv s;
	uint8_t reply[MSIZE];
	size_t reply_len;
};

static struct srv *new_srv(struct t *t)
{
	struct srv *s = &t->s;

	*s = (struct srv){.msize = MSIZE, .max_msize = MSIZE, .max_fids = 64};
	s->out = malloc(MSIZE);
	assert_non_null(s->out);
	s->root = open(t->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(s->root >= 0);
	return s;
}

static void free_srv(struct srv *s)
{
	fid_del_all(s);
	close(s->root);
	free(s->out);
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	char p[512];

	assert_non_null(t);
	strcpy(t->dir, "/tmp/vmenv-9p-test.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
#define HOST(...)                                    \
	do {                                         \
		snprintf(p, sizeof(p), __VA_ARGS__); \
		assert_int_equal(system(p), 0);      \
	} while (0)
	HOST("cd %s && mkdir -p d/e && echo hello >a && echo inner >d/f && "
	     "ln -s /etc abs && ln -s ../../etc d/rel && ln -s loop loop && "
	     "ln -s a inside && echo g >g",
	     t->dir);
	new_srv(t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	free_srv(&t->s);
	rm_rf(t->dir);
	free(t);
	return 0;
}

/* Sends one request (fmt as in test_ninep: b w d q s, and x for raw
 * bytes); returns 0 for a
 * reply of the right type, or the errno of an Rlerror. */
static int rpc(struct t *t, const char *fmt, ...)
{
	uint8_t m[8192];
	struct ninep_out o = {m, sizeof(m), 4, false};
	struct ninep_req q;
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
		else if (*f == 'x') { /* raw bytes, no length */
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
	assert_int_equal(ninep_decode(m, (size_t)n, t->s.msize, &q), 0);
	t->reply_len = srv_handle(&t->s, &q);
	memcpy(t->reply, t->s.out, t->reply_len);
	if (t->reply[4] == NINEP_RLERROR)
		return (int)(t->reply[7] | t->reply[8] << 8);
	assert_int_equal(t->reply[4], q.type + 1);
	return 0;
}

static void attach(struct t *t, uint32_t fid)
{
	assert_int_equal(rpc(t, "bwddssd", NINEP_TATTACH, 1u, fid, NINEP_NOFID,
			     "u", "", 1000u),
			 0);
}

/* Twalk with up to 3 names ("" = fewer); returns errno or 0, nwqid in
 * *nq. */
static int walk(struct t *t, uint32_t fid, uint32_t nfid, uint16_t *nq,
		const char *a, const char *b, const char *c)
{
	int r;

	if (!*b)
		r = rpc(t, "bwddws", NINEP_TWALK, 2u, fid, nfid, 1u, a);
	else if (!*c)
		r = rpc(t, "bwddwss", NINEP_TWALK, 2u, fid, nfid, 2u, a, b);
	else
		r = rpc(t, "bwddwsss", NINEP_TWALK, 2u, fid, nfid, 3u, a, b, c);
	if (r == 0 && nq)
		*nq = (uint16_t)(t->reply[7] | t->reply[8] << 8);
	return r;
}

static int lopen(struct t *t, uint32_t fid, uint32_t flags)
{
	return rpc(t, "bwdd", NINEP_TLOPEN, 3u, fid, flags);
}

/* --- confinement -------------------------------------------------------- */

static void test_dotdot_stays_inside(void **state)
{
	struct t *t = *state;
	uint16_t nq = 0;

	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "..", "..", ".."), 0);
	assert_int_equal(nq, 3);
	assert_string_equal(fid_get(&t->s, 2)->path, "");
	assert_int_equal(walk(t, 1, 3, &nq, "d", "e", ".."), 0);
	assert_string_equal(fid_get(&t->s, 3)->path, "d");
	assert_int_equal(walk(t, 3, 4, &nq, "..", "..", "a"), 0);
	assert_string_equal(fid_get(&t->s, 4)->path, "a");
	/* A name with '/' or an empty one is refused outright. */
	assert_int_equal(walk(t, 1, 5, &nq, "d/e", "", ""), EINVAL);
	assert_int_equal(walk(t, 1, 5, &nq, "", "", ""), EINVAL);
	assert_null(fid_get(&t->s, 5));
}

static void test_symlinks_never_followed(void **state)
{
	static const char *const through[] = {"abs", "d", "loop", "inside"};
	static const char *const next[] = {"passwd", "rel", "x", "x"};
	struct t *t = *state;
	uint16_t nq = 0;

	attach(t, 1);
	/* Walking onto a symlink gives the link itself (the guest reads it
	 * and resolves it in its own tree); walking through one stops. */
	assert_int_equal(walk(t, 1, 2, &nq, "abs", "", ""), 0);
	assert_int_equal(t->reply[9], NINEP_QTSYMLINK);
	assert_int_equal(rpc(t, "bwd", NINEP_TREADLINK, 1u, 2u), 0);
	assert_memory_equal(t->reply + 9, "/etc", 4);
	assert_int_equal(lopen(t, 2, 0), ELOOP);
	for (size_t i = 0; i < 4; i++) {
		int r = walk(t, 1, 9, &nq, through[i], next[i], "passwd");

		/* Partial: only what lies before the symlink, no newfid. */
		assert_int_equal(r, 0);
		assert_true(nq < 3);
		assert_null(fid_get(&t->s, 9));
	}
}

static void test_replaced_between_walk_and_open(void **state)
{
	struct t *t = *state;
	char p[512];
	uint16_t nq = 0;

	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "d", "f", ""), 0);
	assert_int_equal(walk(t, 1, 3, &nq, "g", "", ""), 0);
	/* The host swaps a directory and a file for symlinks outside. */
	HOST("cd %s && mv d d.old && ln -s /etc d && rm g && "
	     "ln -s /etc/passwd g",
	     t->dir);
	assert_int_equal(lopen(t, 2, 0), ELOOP);
	assert_int_equal(lopen(t, 3, 0), ELOOP);
	assert_int_equal(rpc(t, "bwdq", NINEP_TGETATTR, 4u, 2u, 0x7ffull),
			 ELOOP);
	/* Nor can a create go through the new symlink. */
	assert_int_equal(
	    rpc(t, "bwdsddd", NINEP_TLCREATE, 5u, 1u, "d", 0u, 0644u, 0u),
	    ELOOP);
}

static void test_names_in_dir_ops(void **state)
{
	static const char *const bad[] = {"..", ".", "a/b", ""};
	struct t *t = *state;
	uint16_t nq;

	attach(t, 1);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(walk(t, 1, 2, &nq, "d", "", ""), 0);
		assert_int_equal(rpc(t, "bwdsddd", NINEP_TLCREATE, 5u, 2u,
				     bad[i], 0102u, 0644u, 0u),
				 EINVAL);
		assert_int_equal(
		    rpc(t, "bwdsdd", NINEP_TMKDIR, 5u, 2u, bad[i], 0755u, 0u),
		    EINVAL);
		assert_int_equal(
		    rpc(t, "bwdsds", NINEP_TRENAMEAT, 5u, 1u, "a", 2u, bad[i]),
		    EINVAL);
		assert_int_equal(
		    rpc(t, "bwdsd", NINEP_TUNLINKAT, 5u, 2u, bad[i], 0u),
		    EINVAL);
		assert_int_equal(rpc(t, "bwd", NINEP_TCLUNK, 6u, 2u), 0);
	}
	/* lcreate over an existing symlink does not follow it. */
	assert_int_equal(
	    rpc(t, "bwdsddd", NINEP_TLCREATE, 5u, 1u, "abs", 0102u, 0644u, 0u),
	    ELOOP);
	assert_int_equal(rpc(t, "bwdsdddd", NINEP_TMKNOD, 5u, 1u, "fifo",
			     010644u, 0u, 0u, 0u),
			 EPERM);
}

/* --- I/O, rename, limits ---------------------------------------------- */

static void test_read_write_create(void **state)
{
	struct t *t = *state;
	char p[512], buf[64];
	uint16_t nq;

	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "d", "", ""), 0);
	assert_int_equal(rpc(t, "bwdsddd", NINEP_TLCREATE, 5u, 2u, "new",
			     0102u /* O_RDWR|O_CREAT */, 0600u, 0u),
			 0);
	assert_string_equal(fid_get(&t->s, 2)->path, "d/new");
	assert_int_equal(
	    rpc(t, "bwdqdx", NINEP_TWRITE, 5u, 2u, 0ull, 7u, "__hello"), 0);
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREAD, 5u, 2u, 2ull, 100u), 0);
	assert_int_equal(t->reply[7], 5);
	assert_memory_equal(t->reply + 11, "hello", 5);
	snprintf(p, sizeof(p), "%s/d/new", t->dir);
	assert_int_equal(read(open(p, O_RDONLY | O_CLOEXEC), buf, 7), 7);
	/* Renaming the directory moves the fids below it along. */
	assert_int_equal(
	    rpc(t, "bwdsds", NINEP_TRENAMEAT, 5u, 1u, "d", 1u, "dd"), 0);
	assert_string_equal(fid_get(&t->s, 2)->path, "dd/new");
	assert_int_equal(rpc(t, "bwdq", NINEP_TGETATTR, 4u, 2u, 0x7ffull), 0);
}

static void test_readdir(void **state)
{
	struct t *t = *state;
	uint16_t nq;
	uint32_t count;

	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "d", "", ""), 0);
	assert_int_equal(lopen(t, 2, 0200000u), 0);
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREADDIR, 5u, 2u, 0ull, 4096u),
			 0);
	count = (uint32_t)(t->reply[7] | t->reply[8] << 8);
	/* ".", "..", "e", "f", "rel": 5 entries of 24 + name bytes. */
	assert_int_equal(count, 5 * 24 + 1 + 2 + 1 + 1 + 3);
	/* Too small for one entry: an empty answer, not an error. */
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREADDIR, 5u, 2u, 0ull, 10u), 0);
	assert_int_equal(t->reply[7], 0);
}

static void test_fid_limit(void **state)
{
	struct t *t = *state;
	uint16_t nq;

	t->s.max_fids = 3;
	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "a", "", ""), 0);
	assert_int_equal(walk(t, 1, 3, &nq, "a", "", ""), 0);
	assert_int_equal(walk(t, 1, 4, &nq, "a", "", ""), EMFILE);
	assert_int_equal(walk(t, 1, 3, &nq, "a", "", ""), EEXIST);
	assert_int_equal(rpc(t, "bwd", NINEP_TCLUNK, 6u, 3u), 0);
	assert_int_equal(walk(t, 1, 4, &nq, "a", "", ""), 0);
}

/* --- read-only ------------------------------------------------------------ */

/* What a ":ro" mount's server (--read-only) answers, whatever the guest
 * mounted it as: reads work; every open for writing or truncating and
 * every request that would change the tree is EROFS, the tree is as it
 * was; Tremove still clunks its fid; a restored state's fid that was open
 * for writing comes back lost. */
static void test_read_only(void **state)
{
	struct t *t = *state;
	char p[512], list[512], err[256], *before = NULL, *after = NULL,
					  *text = NULL;
	uint16_t nq;

	HOST("cd %s && find . -printf '%%p %%m %%s %%T@\n' | sort >../ro-%s",
	     t->dir, strrchr(t->dir, '/') + 1);
	snprintf(list, sizeof(list), "/tmp/ro-%s", strrchr(t->dir, '/') + 1);
	assert_int_equal(read_file_limited(list, 1 << 20, &before, NULL), 0);
	t->s.read_only = true;
	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "a", "", ""), 0);
	assert_int_equal(lopen(t, 2, 1u /* O_WRONLY */), EROFS);
	assert_int_equal(lopen(t, 2, 2u /* O_RDWR */), EROFS);
	assert_int_equal(lopen(t, 2, 3u), EROFS);
	assert_int_equal(lopen(t, 2, 01000u /* O_RDONLY|O_TRUNC */), EROFS);
	assert_int_equal(fid_get(&t->s, 2)->kind, FID_PATH);
	assert_int_equal(lopen(t, 2, 0u), 0);
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREAD, 5u, 2u, 0ull, 100u), 0);
	assert_memory_equal(t->reply + 11, "hello\n", 6);
	assert_int_equal(rpc(t, "bwdqdx", NINEP_TWRITE, 5u, 2u, 0ull, 2u, "no"),
			 EROFS);
	/* Every request that changes the tree, on the root's fid. */
	assert_int_equal(
	    rpc(t, "bwdsddd", NINEP_TLCREATE, 5u, 1u, "new", 0102u, 0644u, 0u),
	    EROFS);
	assert_int_equal(
	    rpc(t, "bwdsdd", NINEP_TMKDIR, 5u, 1u, "nd", 0755u, 0u), EROFS);
	assert_int_equal(
	    rpc(t, "bwdssd", NINEP_TSYMLINK, 5u, 1u, "sl", "/etc", 0u), EROFS);
	assert_int_equal(rpc(t, "bwdds", NINEP_TLINK, 5u, 1u, 2u, "hl"), EROFS);
	assert_int_equal(rpc(t, "bwdsd", NINEP_TUNLINKAT, 5u, 1u, "g", 0u),
			 EROFS);
	assert_int_equal(
	    rpc(t, "bwdsds", NINEP_TRENAMEAT, 5u, 1u, "a", 1u, "b"), EROFS);
	assert_int_equal(walk(t, 1, 3, &nq, "g", "", ""), 0);
	assert_int_equal(rpc(t, "bwdds", NINEP_TRENAME, 5u, 3u, 1u, "h"),
			 EROFS);
	assert_int_equal(rpc(t, "bwdddddqqqqq", NINEP_TSETATTR, 5u, 3u,
			     0x8u /* size */, 0u, 0u, 0u, 0ull, 0ull, 0ull,
			     0ull, 0ull),
			 EROFS);
	assert_int_equal(rpc(t, "bwdsdddd", NINEP_TMKNOD, 5u, 1u, "fifo",
			     010644u, 0u, 0u, 0u),
			 EROFS);
	assert_int_equal(rpc(t, "bwd", NINEP_TREMOVE, 5u, 3u), EROFS);
	assert_null(fid_get(&t->s, 3));
	/* Still served: getattr, readdir, statfs. */
	assert_int_equal(rpc(t, "bwdq", NINEP_TGETATTR, 4u, 1u, 0x7ffull), 0);
	assert_int_equal(rpc(t, "bwd", NINEP_TSTATFS, 5u, 1u), 0);
	HOST("cd %s && find . -printf '%%p %%m %%s %%T@\n' | sort >../ro-%s",
	     t->dir, strrchr(t->dir, '/') + 1);
	assert_int_equal(read_file_limited(list, 1 << 20, &after, NULL), 0);
	assert_string_equal(before, after);
	unlink(list);
	free(before);
	free(after);

	/* A state written by a read-write server: the fid open for writing
	 * is not re-opened by a read-only one. */
	t->s.read_only = false;
	assert_int_equal(walk(t, 1, 4, &nq, "g", "", ""), 0);
	assert_int_equal(lopen(t, 4, 2u), 0);
	snprintf(p, sizeof(p), "%s.state", t->dir);
	assert_int_equal(state_dump(&t->s, p, err, sizeof(err)), 0);
	free_srv(&t->s);
	new_srv(t);
	t->s.read_only = true;
	assert_int_equal(read_file_limited(p, 1 << 20, &text, NULL), 0);
	assert_int_equal(state_parse(&t->s, text, err, sizeof(err)), 0);
	free(text);
	unlink(p);
	assert_int_equal(fid_get(&t->s, 2)->kind, FID_FILE);
	assert_int_equal(fid_get(&t->s, 4)->kind, FID_LOST);
	assert_int_equal(rpc(t, "bwdqdx", NINEP_TWRITE, 5u, 4u, 0ull, 2u, "no"),
			 EROFS);
}

/* --- state -------------------------------------------------------------- */

static void test_state_round_trip(void **state)
{
	struct t *t = *state;
	char path[128], err[256], p[512], *text = NULL;
	uint16_t nq;

	attach(t, 1);
	assert_int_equal(walk(t, 1, 2, &nq, "a", "", ""), 0);
	assert_int_equal(lopen(t, 2, 02002u /* O_RDWR|O_APPEND */), 0);
	assert_int_equal(walk(t, 1, 3, &nq, "g", "", ""), 0);
	assert_int_equal(lopen(t, 3, 0u), 0);
	assert_int_equal(walk(t, 1, 4, &nq, "d", "e", ""), 0);
	/* g is unlinked while open: still readable now... */
	HOST("rm %s/g", t->dir);
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREAD, 5u, 3u, 0ull, 10u), 0);
	snprintf(path, sizeof(path), "%s.state", t->dir);
	assert_int_equal(state_dump(&t->s, path, err, sizeof(err)), 0);
	free_srv(&t->s);

	/* ...a new server re-opens every fid by its path. */
	new_srv(t);
	assert_int_equal(read_file_limited(path, 1 << 20, &text, NULL), 0);
	assert_int_equal(state_parse(&t->s, text, err, sizeof(err)), 0);
	free(text);
	unlink(path);
	assert_int_equal(t->s.nfids, 4);
	assert_int_equal(fid_get(&t->s, 2)->kind, FID_FILE);
	assert_string_equal(fid_get(&t->s, 4)->path, "d/e");
	/* O_APPEND came back with the fid. */
	assert_int_equal(rpc(t, "bwdqdx", NINEP_TWRITE, 5u, 2u, 0ull, 2u, "ok"),
			 0);
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREAD, 5u, 2u, 0ull, 100u), 0);
	assert_int_equal(t->reply[7], 8);
	assert_memory_equal(t->reply + 11, "hello\nok", 8);
	/* ...but the unlinked one is lost: ESTALE, and clunk still works. */
	assert_int_equal(fid_get(&t->s, 3)->kind, FID_LOST);
	assert_int_equal(rpc(t, "bwdqd", NINEP_TREAD, 5u, 3u, 0ull, 10u),
			 ESTALE);
	assert_int_equal(rpc(t, "bwd", NINEP_TCLUNK, 6u, 3u), 0);
}

static void test_state_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 n 0 -\n",	    /* no end */
	    "vmenv-9p-state 1\nmsize 100\nend\n",		    /* msize */
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 x 0 -\nend\n",    /* kind */
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 n 0 2e2e\nend\n", /* .. */
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 n 0 2f61\nend\n", /* /a */
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 n 0 61002f\nend\n",
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 n 0 612f2f62\nend\n",
	    "vmenv-9p-state 1\nmsize 65536\nfid 1 n 0 -\nfid 1 n 0 -\nend\n",
	    "vmenv-9p-state 1\nmsize 65536\nend\nmore\n",
	    /* Found by fuzz_ninepstate: O_TRUNC (01000) at the re-open
	     * emptied a; a server never records it, nor O_CREAT, O_EXCL. */
	    "vmenv-9p-state 1\nmsize 65536\nfid 2 f 514 61\nend\n",
	    "vmenv-9p-state 1\nmsize 65536\nfid 2 d 512 61\nend\n",
	    "vmenv-9p-state 1\nmsize 65536\nfid 2 f 66 61\nend\n",
	    "vmenv-9p-state 1\nmsize 65536\nfid 2 f 130 61\nend\n",
	};
	struct t *t = *state;
	char err[256], text[256];
	struct stat st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s", bad[i]);
		assert_true(state_parse(&t->s, text, err, sizeof(err)) < 0);
		assert_int_equal(t->s.nfids, 0);
	}
	snprintf(text, sizeof(text), "%s/a", t->dir);
	assert_int_equal(stat(text, &st), 0);
	assert_int_equal(st.st_size, 6); /* "hello\n" */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dotdot_stays_inside, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_symlinks_never_followed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_replaced_between_walk_and_open,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_names_in_dir_ops, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_read_write_create, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fid_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_round_trip, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_state_refused, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
