// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/blobsink.c, the receiving end of a download: the
 * bytes handed over in pieces of any size end up in the file, in order
 * (written by one thread, O_DIRECT where aligned), and in the digest
 * (hashed by another), from 0 or from a resumed, unaligned offset; a
 * restart empties both; the space is reserved up front; a write error is
 * returned and stays (/dev/full also takes the path without O_DIRECT).
 * Run under ASan and TSan too, for leaks and races on every path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobsink.h"
#include "cleanup.h"
#include "digest.h"

#define MIB (1u << 20)

struct fx {
	char path[64];
	int fd;
	struct digest *dg;
	unsigned char *data; /* DATA_LEN bytes of noise */
};

#define DATA_LEN (5 * MIB + 123)

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint32_t x = 2463534242u;

	assert_non_null(f);
	strcpy(f->path, "/tmp/vmenv-blobsink-XXXXXX");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	assert_int_equal(digest_new(&f->dg), 0);
	f->data = malloc(DATA_LEN);
	assert_non_null(f->data);
	for (size_t i = 0; i < DATA_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		f->data[i] = (unsigned char)x;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close(f->fd);
	unlink(f->path);
	digest_free(f->dg);
	free(f->data);
	free(f);
	return 0;
}

static void sha_of(const void *p, size_t n, char *hex)
{
	struct digest *d;

	assert_int_equal(digest_new(&d), 0);
	assert_int_equal(digest_update(d, p, n), 0);
	assert_int_equal(digest_final_hex(d, hex), 0);
	digest_free(d);
}

/* The file holds exactly data[0, n) and the digest has seen exactly that. */
static void check_result(struct fx *f, size_t n)
{
	char want[DIGEST_HEX_LEN + 1], got[DIGEST_HEX_LEN + 1];
	unsigned char *back = malloc(n + 1);
	struct stat st;

	assert_non_null(back);
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, n);
	assert_int_equal(pread(f->fd, back, n + 1, 0), n);
	assert_memory_equal(back, f->data, n);
	free(back);
	sha_of(f->data, n, want);
	assert_int_equal(digest_final_hex(f->dg, got), 0);
	assert_string_equal(got, want);
}

/* Hands data[from, to) over in pieces of `piece` bytes. */
static void feed(struct blobsink *s, const struct fx *f, size_t from, size_t to,
		 size_t piece)
{
	uint64_t base = blobsink_offset(s) - from;

	while (from < to) {
		size_t k = to - from < piece ? to - from : piece;

		assert_int_equal(blobsink_write(s, f->data + from, k), 0);
		from += k;
		assert_int_equal(blobsink_offset(s), base + from);
	}
}

static const struct {
	const char *what;
	size_t len;
	size_t piece;
} pieces[] = {
    {"nothing", 0, 1},
    {"one byte", 1, 1},
    {"curl's 16 KiB pieces, buffers wrap around the ring", DATA_LEN, 16384},
    {"odd pieces across buffer ends", DATA_LEN, 65537},
    {"one piece larger than all buffers together", DATA_LEN, DATA_LEN},
    {"exactly one buffer", MIB, MIB},
    {"exactly the ring (four buffers)", 4 * MIB, 4096},
    {"one byte pieces", 70000, 1},
};

static void test_pieces(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(pieces); i++) {
		struct blobsink *s;

		print_message("%s\n", pieces[i].what);
		assert_int_equal(ftruncate(f->fd, 0), 0);
		assert_int_equal(
		    blobsink_new(f->fd, f->dg, 0, pieces[i].len, &s), 0);
		feed(s, f, 0, pieces[i].len, pieces[i].piece);
		assert_int_equal(blobsink_flush(s), 0);
		assert_int_equal(blobsink_offset(s), pieces[i].len);
		blobsink_free(s);
		/* Handed back as it came (the writer used O_DIRECT). */
		assert_false(fcntl(f->fd, F_GETFL) & O_DIRECT);
		check_result(f, pieces[i].len);
	}
}

/* Several attempts on one sink (a flush after each, as imgpull does),
 * then a sink for a resumed file whose first part the digest saw. */
static void test_resume(void **state)
{
	struct fx *f = *state;
	const size_t cut = 2 * MIB + 7;
	struct blobsink *s;

	assert_int_equal(blobsink_new(f->fd, f->dg, 0, DATA_LEN, &s), 0);
	feed(s, f, 0, 1000, 300);
	assert_int_equal(blobsink_flush(s), 0);
	feed(s, f, 1000, cut, 16384);
	assert_int_equal(blobsink_flush(s), 0);
	blobsink_free(s);
	assert_int_equal(blobsink_new(f->fd, f->dg, cut, DATA_LEN, &s), 0);
	feed(s, f, cut, DATA_LEN, 16384);
	assert_int_equal(blobsink_flush(s), 0);
	blobsink_free(s);
	check_result(f, DATA_LEN);
}

/* The server ignored the range: everything so far goes, hashed or not. */
static void test_restart(void **state)
{
	struct fx *f = *state;
	struct blobsink *s;

	/* A file longer than what follows: it must be emptied. */
	assert_int_equal(pwrite(f->fd, f->data, 3 * MIB, 0), 3 * MIB);
	assert_int_equal(digest_update(f->dg, "stale", 5), 0);
	assert_int_equal(blobsink_new(f->fd, f->dg, 3 * MIB, DATA_LEN, &s), 0);
	feed(s, f, 0, 2 * MIB + 5, 16384); /* wrong bytes at 3 MiB */
	assert_int_equal(blobsink_restart(s), 0);
	assert_int_equal(blobsink_offset(s), 0);
	feed(s, f, 0, MIB + 1, 16384);
	assert_int_equal(blobsink_flush(s), 0);
	assert_int_equal(blobsink_restart(s), 0);
	feed(s, f, 0, DATA_LEN, 16384);
	assert_int_equal(blobsink_flush(s), 0);
	blobsink_free(s);
	check_result(f, DATA_LEN);
}

/* The expected size is reserved (a full disk fails before the transfer),
 * without changing the size (which says how much is there). */
static void test_reserve(void **state)
{
	struct fx *f = *state;
	struct blobsink *s;
	struct stat st;

	if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, 0, 4096) < 0) {
		print_message("no fallocate on /tmp: %s\n", strerror(errno));
		skip();
	}
	assert_int_equal(blobsink_new(f->fd, f->dg, 0, 8 * MIB, &s), 0);
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_true((uint64_t)st.st_blocks * 512 >= 8 * MIB);
	blobsink_free(s);
}

/* A write error is returned by the next call once the writing thread met
 * it, at the latest by the flush, then by every call; freeing still stops
 * the threads and frees all. */
static void test_write_error(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *path;
		int flags;
		int err;
	} cases[] = {
	    {"/dev/full", O_WRONLY, -ENOSPC},
	    {NULL, O_RDONLY, -EBADF}, /* the fixture's file, read-only */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *path = cases[i].path ? cases[i].path : f->path;
		int fd = open(path, cases[i].flags | O_CLOEXEC);
		struct blobsink *s;

		print_message("%s\n", path);
		assert_true(fd >= 0);
		assert_int_equal(blobsink_new(fd, f->dg, 0, DATA_LEN, &s), 0);
		/* Less than a buffer: only taken. */
		assert_int_equal(blobsink_write(s, f->data, 1000), 0);
		/* The writing thread fails on the first full buffer: this
		 * call or the flush says so, and every call after. */
		int r = blobsink_write(s, f->data, 2 * MIB);
		assert_true(r == 0 || r == cases[i].err);
		assert_int_equal(blobsink_flush(s), cases[i].err);
		assert_int_equal(blobsink_write(s, f->data, 1), cases[i].err);
		assert_int_equal(blobsink_flush(s), cases[i].err);
		assert_int_equal(blobsink_restart(s), cases[i].err);
		blobsink_free(s);
		close(fd);
	}
	/* Nothing buffered but an error at the flush. */
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	struct blobsink *s;

	assert_true(fd >= 0);
	assert_int_equal(blobsink_new(fd, f->dg, 0, 0, &s), 0);
	assert_int_equal(blobsink_write(s, f->data, 10), 0);
	assert_int_equal(blobsink_flush(s), -ENOSPC);
	blobsink_free(s);
	close(fd);
	blobsink_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pieces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
