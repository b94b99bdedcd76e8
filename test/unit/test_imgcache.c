// SPDX-License-Identifier: MIT
/*
 * Unit tests for the image cache (common/imgcache.c), SHA-256 (digest.c)
 * and pulls (imgpull.c) over file:// URLs, in a temp directory:
 * least-recently-used choice as a table, eviction that never touches a
 * leased or partial file, leases, removal, and pulls that resume a good
 * partial file, restart a bad one and leave nothing behind on failure.
 * The faults that need a real HTTP server are in test/images/run.
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

#include "cleanup.h"
#include "digest.h"
#include "imgcache.h"
#include "imgpull.h"
#include "rmtree.h"

#define HEX(c) c c c c c c c c c c c c c c c c
#define H_A    HEX("aaaa")
#define H_B    HEX("bbbb")
#define H_C    HEX("cccc")
#define H_D    HEX("dddd")

struct fx {
	char dir[64];
	struct imgcache c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char cache[128];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/vmenv-imgcache-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* The download helper (nobody, when root runs this) reads file://
	 * sources in here. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(cache, sizeof(cache), "%s/cache", f->dir);
	assert_int_equal(imgcache_init(&f->c, cache, 1000, true), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(rm_rf(f->dir), 0);
	free(f);
	return 0;
}

/* A blob of size bytes, last used at mtime. */
static void put_blob(struct fx *f, const char *hex, size_t size, time_t mtime)
{
	char p[VMENV_MAX_PATH];
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	_cleanup_free_ char *data = calloc(1, size + 1);

	assert_int_equal(imgcache_blob_path(&f->c, hex, p, sizeof(p)), 0);
	assert_int_equal(write_file_atomic(p, data, size, 0644), 0);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static bool has(struct fx *f, const char *hex)
{
	return imgcache_stat(&f->c, hex, NULL) == 0;
}

/* --- digest -------------------------------------------------------------- */

static void test_digest(void **state)
{
	static const struct {
		const char *in, *hex;
	} cases[] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b"
		 "855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
		    "0015ad"},
	};
	struct digest *d;
	char hex[DIGEST_HEX_LEN + 1];

	assert_int_equal(digest_new(&d), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(
		    digest_update(d, cases[i].in, strlen(cases[i].in)), 0);
		assert_int_equal(digest_final_hex(d, hex), 0);
		assert_string_equal(hex, cases[i].hex);
	}
	/* In pieces, and after a reset, the same. */
	assert_int_equal(digest_update(d, "xx", 2), 0);
	assert_int_equal(digest_reset(d), 0);
	assert_int_equal(digest_update(d, "a", 1), 0);
	assert_int_equal(digest_update(d, "bc", 2), 0);
	assert_int_equal(digest_final_hex(d, hex), 0);
	assert_string_equal(hex, cases[1].hex);
	digest_free(d);
	digest_free(NULL);
}

/* --- LRU choice ---------------------------------------------------------- */

static void test_pick_victims(void **state)
{
	static const struct imgcache_entry e[] = {
	    {H_A, 400, 100, 0, false}, /* oldest */
	    {H_B, 300, 200, 1, false}, /* leased */
	    {H_C, 200, 300, 0, false},
	    {H_D, 100, 50, 0, true}, /* partial: never evicted */
	};
	static const struct {
		uint64_t max, need, over;
		bool want[4];
	} cases[] = {
	    {2000, 0, 0, {false, false, false, false}}, /* fits */
	    {1000, 0, 0, {false, false, false, false}}, /* exactly */
	    {1000, 1, 0, {true, false, false, false}},	/* oldest goes */
	    {1000, 401, 0, {true, false, true, false}}, /* then the next */
	    {1000, 600, 0, {true, false, true, false}},
	    {1000, 601, 1, {true, false, true, false}}, /* leased stays */
	    {0, 0, 400, {true, false, true, false}},
	};
	bool evict[4];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t over = imgcache_pick_victims(e, 4, cases[i].max,
						      cases[i].need, evict);

		print_message("max %llu need %llu\n",
			      (unsigned long long)cases[i].max,
			      (unsigned long long)cases[i].need);
		assert_int_equal(over, cases[i].over);
		for (size_t k = 0; k < 4; k++)
			assert_int_equal(evict[k], cases[i].want[k]);
	}
	/* Same age: a fixed order, so every process picks the same one. */
	{
		static const struct imgcache_entry t[] = {
		    {H_B, 10, 5, 0, false}, {H_A, 10, 5, 0, false}};
		assert_int_equal(imgcache_pick_victims(t, 2, 10, 0, evict), 0);
		assert_false(evict[0]);
		assert_true(evict[1]);
	}
}

/* --- the cache on disk --------------------------------------------------- */

static void test_make_room(void **state)
{
	struct fx *f = *state;
	char err[512] = "";

	put_blob(f, H_A, 400, 100);
	put_blob(f, H_B, 300, 200);
	put_blob(f, H_C, 200, 300);
	assert_int_equal(imgcache_lease(&f->c, H_A, "n1.7"), 0);
	/* The lease made A the most recently used: B goes first, then C;
	 * A never. */
	assert_int_equal(imgcache_make_room(&f->c, 300, err, sizeof(err)), 0);
	assert_true(has(f, H_A));
	assert_false(has(f, H_B));
	assert_true(has(f, H_C));
	assert_int_equal(imgcache_make_room(&f->c, 700, err, sizeof(err)),
			 -ENOSPC);
	assert_contains(err, "in use by running jobs");
	assert_true(has(f, H_A));
	assert_false(has(f, H_C));
	assert_int_equal(imgcache_make_room(&f->c, 1001, err, sizeof(err)),
			 -EFBIG);
	assert_contains(err, "do not fit in the image cache");
	/* Without the lease A can go. */
	assert_int_equal(imgcache_unlease(&f->c, H_A, "n1.7"), 0);
	assert_int_equal(imgcache_make_room(&f->c, 700, err, sizeof(err)), 0);
	assert_false(has(f, H_A));
}

static void test_leases(void **state)
{
	struct fx *f = *state;
	struct imgcache_entry *v = NULL;
	char err[512] = "", owner[64];
	size_t n = 0;

	/* Only a present blob can be leased. */
	assert_int_equal(imgcache_lease(&f->c, H_A, "n1.1"), -ENOENT);
	put_blob(f, H_A, 10, 100);
	assert_int_equal(imgcache_lease(&f->c, H_A, "n1.1"), 0);
	assert_int_equal(imgcache_lease(&f->c, H_A, "n2.1"), 0);
	assert_int_equal(imgcache_lease(&f->c, H_A, "n1.1"), 0); /* again */
	assert_int_equal(imgcache_list(&f->c, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].leases, 2);
	assert_true(v[0].mtime > 100); /* the lease is a use */
	free(v);
	assert_int_equal(imgcache_remove(&f->c, H_A, err, sizeof(err)), -EBUSY);
	assert_contains(err, "in use by 2 running job(s)");
	/* Bad owners and digests never become paths. */
	assert_int_equal(imgcache_lease(&f->c, H_A, "../x"), -EINVAL);
	assert_int_equal(imgcache_lease(&f->c, H_A, "a/b"), -EINVAL);
	assert_int_equal(imgcache_lease(&f->c, "../../etc", "n1.1"), -EINVAL);
	assert_int_equal(imgcache_owner("n1", 42, owner, sizeof(owner)), 0);
	assert_string_equal(owner, "n1.42");
	assert_int_equal(imgcache_owner("a/b", 42, owner, sizeof(owner)),
			 -EINVAL);
	assert_int_equal(imgcache_unlease(&f->c, H_A, "n1.1"), 0);
	assert_int_equal(imgcache_unlease(&f->c, H_A, "n2.1"), 0);
	assert_int_equal(imgcache_unlease(&f->c, H_A, "n2.1"), 0);
	assert_int_equal(imgcache_remove(&f->c, H_A, err, sizeof(err)), 0);
	assert_false(has(f, H_A));
	assert_int_equal(imgcache_remove(&f->c, H_A, err, sizeof(err)),
			 -ENOENT);
}

static bool keep_7(void *data, uint32_t job)
{
	(void)data;
	return job == 7;
}

static void test_lease_sweep(void **state)
{
	struct fx *f = *state;
	struct imgcache_entry *v = NULL;
	size_t n = 0;

	put_blob(f, H_A, 10, 100);
	put_blob(f, H_B, 10, 100);
	assert_int_equal(imgcache_lease(&f->c, H_A, "n1.7"), 0);
	assert_int_equal(imgcache_lease(&f->c, H_A, "n1.8"), 0);
	assert_int_equal(imgcache_lease(&f->c, H_B, "n1.9"), 0);
	assert_int_equal(imgcache_lease(&f->c, H_B, "n1.5.9"), 0);
	assert_int_equal(imgcache_lease(&f->c, H_B, "n10.9"), 0);
	/* n1's jobs 8 and 9 are gone; n1.5 and n10 are other nodes. */
	assert_int_equal(imgcache_lease_sweep(&f->c, "n1", keep_7, NULL), 2);
	assert_int_equal(imgcache_list(&f->c, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].leases,
				 strcmp(v[i].hex, H_A) == 0 ? 1 : 2);
	free(v);
}

/* A partial file is evicted only when nobody holds its lock. */
static void test_parts(void **state)
{
	struct fx *f = *state;
	char p[VMENV_MAX_PATH];
	int lock;

	assert_int_equal(imgcache_part_path(&f->c, H_B, p, sizeof(p)), 0);
	assert_int_equal(write_file_atomic(p, "xx", 2, 0600), 0);
	assert_int_equal(imgcache_lock(&f->c, H_B, false, NULL, &lock), 0);
	/* Held: a second lock (even in this process) is refused. */
	{
		int again;
		assert_int_equal(imgcache_lock(&f->c, H_B, false, NULL, &again),
				 -EWOULDBLOCK);
	}
	assert_int_equal(imgcache_sweep_parts(&f->c), 0);
	assert_int_equal(access(p, F_OK), 0);
	imgcache_unlock(lock);
	assert_int_equal(imgcache_sweep_parts(&f->c), 1);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(imgcache_lock(&f->c, "../x", false, NULL, &lock),
			 -EINVAL);
}

/* --- pulls over file:// ----------------------------------------------------- */

#define HELPER TEST_BUILDDIR "/fetch/vmenv-fetch"

static const struct fetch_opts opts = {
    .connect_timeout_s = 5,
    .low_speed_time_s = 5,
    .low_speed_bps = 1,
    .retries = 1,
    .retry_delay_ms = 10,
    .max_redirects = 2,
    .helper = HELPER,
    .user = "nobody",
};

struct src {
	char path[VMENV_MAX_PATH];
	char url[VMENV_MAX_PATH + 8];
	char hex[65];
	size_t size;
};

static void make_src(struct fx *f, struct src *s, size_t size)
{
	_cleanup_free_ char *data = malloc(size);
	struct digest *d;

	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 7 + i / 1000);
	snprintf(s->path, sizeof(s->path), "%s/src.img", f->dir);
	snprintf(s->url, sizeof(s->url), "file://%s", s->path);
	assert_int_equal(write_file_atomic(s->path, data, size, 0644), 0);
	assert_int_equal(digest_new(&d), 0);
	assert_int_equal(digest_update(d, data, size), 0);
	assert_int_equal(digest_final_hex(d, s->hex), 0);
	digest_free(d);
	s->size = size;
}

static int pull(struct fx *f, const struct src *s, const char *hex,
		uint64_t size, struct imgpull_stats *st, char *err,
		size_t errlen)
{
	struct imgpull_req req = {.url = s->url,
				  .sha256 = hex,
				  .size = size,
				  .what = "image 't:1' disk"};

	return imgpull(&f->c, &opts, &req, st, err, errlen);
}

static void no_part(struct fx *f, const char *hex)
{
	char p[VMENV_MAX_PATH];

	assert_int_equal(imgcache_part_path(&f->c, hex, p, sizeof(p)), 0);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_pull(void **state)
{
	struct fx *f = *state;
	struct imgpull_stats st;
	struct src s;
	char err[1024] = "", blob[VMENV_MAX_PATH];
	struct stat sb;

	f->c.max_bytes = 1 << 30;
	make_src(f, &s, 300000);
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), 0);
	assert_false(st.cached);
	assert_int_equal(st.bytes, s.size);
	assert_int_equal(st.attempts, 1);
	assert_int_equal(imgcache_blob_path(&f->c, s.hex, blob, sizeof(blob)),
			 0);
	assert_int_equal(stat(blob, &sb), 0);
	assert_int_equal(sb.st_size, s.size);
	assert_int_equal(sb.st_mode & 07777, 0644);
	no_part(f, s.hex);
	/* Again: nothing transferred. */
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), 0);
	assert_true(st.cached);
	assert_int_equal(st.bytes, 0);
}

/* A partial file from an interrupted download is continued, and the whole
 * is verified; one that does not match is thrown away. */
static void test_pull_resume(void **state)
{
	struct fx *f = *state;
	struct imgpull_stats st;
	struct src s;
	char err[1024] = "", part[VMENV_MAX_PATH];
	_cleanup_free_ char *data = NULL;
	size_t len;

	f->c.max_bytes = 1 << 30;
	make_src(f, &s, 300000);
	assert_int_equal(read_file_limited(s.path, 1 << 20, &data, &len), 0);
	assert_int_equal(imgcache_part_path(&f->c, s.hex, part, sizeof(part)),
			 0);
	assert_int_equal(write_file_atomic(part, data, 100000, 0600), 0);
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), 0);
	assert_true(st.resumed);
	assert_int_equal(st.bytes, s.size - 100000);
	no_part(f, s.hex);
	assert_int_equal(imgcache_remove(&f->c, s.hex, err, sizeof(err)), 0);

	/* A wrong prefix: the resumed file fails the checksum, one clean
	 * attempt follows. */
	memset(data, 'x', 1000);
	assert_int_equal(write_file_atomic(part, data, 100000, 0600), 0);
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), 0);
	assert_int_equal(st.bytes, s.size - 100000 + s.size);
	no_part(f, s.hex);
}

/* A partial file that is not one a puller made (a second name of another
 * file, or someone else's) is never written into: refused, its name
 * removed, the other file untouched; the next pull starts clean. */
static void test_pull_part_not_ours(void **state)
{
	struct fx *f = *state;
	struct imgpull_stats st;
	struct src s;
	char err[1024] = "", part[VMENV_MAX_PATH], other[VMENV_MAX_PATH];
	_cleanup_free_ char *data = NULL;
	size_t len;

	f->c.max_bytes = 1 << 30;
	make_src(f, &s, 5000);
	assert_int_equal(imgcache_part_path(&f->c, s.hex, part, sizeof(part)),
			 0);
	snprintf(other, sizeof(other), "%s/precious", f->dir);
	assert_int_equal(write_file_atomic(other, "keep me", 7, 0600), 0);
	assert_int_equal(link(other, part), 0);
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)),
			 -EPERM);
	print_message("%s\n", err);
	assert_contains(err, "is not a partial download: refused");
	no_part(f, s.hex);
	assert_int_equal(read_file_limited(other, 100, &data, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(data, "keep me", 7);
	if (geteuid() == 0) {
		assert_int_equal(write_file_atomic(part, "x", 1, 0600), 0);
		assert_int_equal(chown(part, 65534, 65534), 0);
		assert_int_equal(
		    pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), -EPERM);
		no_part(f, s.hex);
	}
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), 0);
	assert_false(st.resumed);
}

static void test_pull_failures(void **state)
{
	struct fx *f = *state;
	struct imgpull_stats st;
	struct src s;
	char err[1024] = "";
	static const char other[] = HEX("0123");

	f->c.max_bytes = 1 << 30;
	make_src(f, &s, 5000);
	/* The wrong checksum. */
	assert_int_equal(pull(f, &s, other, s.size, &st, err, sizeof(err)),
			 -EBADMSG);
	print_message("%s\n", err);
	assert_contains(err, "image 't:1' disk: sha256 mismatch");
	assert_contains(err, "refused, not cached");
	assert_false(has(f, other));
	no_part(f, other);
	/* Larger than the catalog says. */
	assert_int_equal(pull(f, &s, s.hex, s.size - 1, &st, err, sizeof(err)),
			 -EFBIG);
	print_message("%s\n", err);
	assert_contains(err, "larger than the catalog says");
	no_part(f, s.hex);
	/* Shorter. */
	assert_int_equal(pull(f, &s, s.hex, s.size + 1, &st, err, sizeof(err)),
			 -EIO);
	print_message("%s\n", err);
	assert_contains(err, "ended after 5000 of 5001 bytes");
	no_part(f, s.hex);
	/* Missing. */
	strcat(s.url, ".nope");
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)),
			 -ENOENT);
	print_message("%s\n", err);
	assert_contains(err, "src.img.nope");
	assert_int_equal(st.attempts, 1); /* not retried */
	no_part(f, s.hex);
	/* Bigger than the cache. */
	s.url[strlen(s.url) - 5] = '\0';
	f->c.max_bytes = 4000;
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)),
			 -EFBIG);
	assert_contains(err, "image_cache_max_mib");
	/* And the good pull still works after all that. */
	f->c.max_bytes = 1 << 20;
	assert_int_equal(pull(f, &s, s.hex, s.size, &st, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest),
	    cmocka_unit_test(test_pick_victims),
	    cmocka_unit_test_setup_teardown(test_make_room, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_sweep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pull, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pull_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pull_part_not_ours, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pull_failures, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
