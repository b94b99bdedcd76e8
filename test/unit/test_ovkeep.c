// SPDX-License-Identifier: MIT
/*
 * Kept overlays' store (vmmd/ovkeep_store.h) on real files in a temporary
 * directory: the record both ways and refused when malformed; the move
 * in by fd and what it refuses (a link, a second name, another owner, a
 * FIFO); the ownership check; a link planted in the store refused and
 * tidied as a link; tidying what no record accounts for; the limits
 * (table) and the retention.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "ovkeep_store.h"
#include "rmtree.h"
#include "util.h"

#define SHA_A	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OTHER_UID 65534
#define QCOW	  "QFI\xfb overlay bytes of job"

struct fx {
	char dir[64];  /* the run dir */
	char disk[96]; /* a job's disk/ */
	int sfd;       /* the store */
	int dfd;       /* disk/ */
};

static void sample(struct ovkeep_rec *r, uint32_t job, uint32_t uid)
{
	*r = (struct ovkeep_rec){.job = job, .uid = uid, .created = 1700000000};
	snprintf(r->node, sizeof(r->node), "n1");
	snprintf(r->image, sizeof(r->image), "tiny:1");
	snprintf(r->base_hex, sizeof(r->base_hex), "%s", SHA_A);
	snprintf(r->base, sizeof(r->base), "/var/cache/vmenv/sha256/%s", SHA_A);
}

static void put_file(int dfd, const char *name, const char *text, mode_t mode)
{
	int fd =
	    openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, text, strlen(text)), 0);
	close(fd);
}

static bool there(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	/* Root's store, and other owners made with chown: root only. */
	if (geteuid() != 0) {
		free(f);
		*state = NULL;
		return 0;
	}
	assert_non_null(f);
	strcpy(f->dir, "/tmp/vmenv-ovkeep-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->disk, sizeof(f->disk), "%s/disk", f->dir);
	assert_int_equal(mkdir(f->disk, 0755), 0);
	f->dfd = open(f->disk, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dfd >= 0);
	assert_int_equal(ovkeep_store_open(f->dir, false), -ENOENT);
	f->sfd = ovkeep_store_open(f->dir, true);
	assert_true(f->sfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (!f)
		return 0;
	close(f->sfd);
	close(f->dfd);
	assert_int_equal(rm_rf(f->dir), 0);
	free(f);
	return 0;
}

/* --- the record ---------------------------------------------------------- */

static void test_rec_roundtrip(void **state)
{
	struct ovkeep_rec a, b;
	char text[OVKEEP_MAX_REC];

	(void)state;
	sample(&a, 42, 1001);
	a.bytes = 12345;
	assert_int_equal(ovkeep_rec_format(&a, text, sizeof(text)), 0);
	assert_int_equal(ovkeep_rec_parse(text, &b), 0);
	assert_int_equal(b.job, 42);
	assert_int_equal(b.uid, 1001);
	assert_int_equal(b.created, 1700000000);
	assert_int_equal(b.bytes, 12345);
	assert_string_equal(b.node, "n1");
	assert_string_equal(b.image, "tiny:1");
	assert_string_equal(b.base_hex, SHA_A);
	assert_string_equal(b.base, a.base);
}

static void test_rec_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    /* no newline at the end: a cut file */
	    "job 1\nuid 2\nnode n\ncreated 3\nbytes 4\nimage i\nbase_hex \n"
	    "base /b",
	    /* a key missing */
	    "job 1\nuid 2\nnode n\ncreated 3\nbytes 4\nimage i\nbase /b\n",
	    /* a key twice */
	    "job 1\nuid 2\nuid 3\nnode n\ncreated 3\nbytes 4\nimage i\n"
	    "base_hex \nbase /b\n",
	    /* an unknown key */
	    "job 1\nuid 2\nnode n\ncreated 3\nbytes 4\nimage i\nbase_hex \n"
	    "base /b\nowner 0\n",
	    /* not a digest */
	    "job 1\nuid 2\nnode n\ncreated 3\nbytes 4\nimage i\nbase_hex xyz\n"
	    "base /b\n",
	    /* job 0 */
	    "job 0\nuid 2\nnode n\ncreated 3\nbytes 4\nimage i\nbase_hex \n"
	    "base /b\n",
	    /* a negative time, a uid out of range */
	    "job 1\nuid 2\nnode n\ncreated -3\nbytes 4\nimage i\nbase_hex \n"
	    "base /b\n",
	    "job 1\nuid 4294967296\nnode n\ncreated 3\nbytes 4\nimage i\n"
	    "base_hex \nbase /b\n",
	    /* a control character */
	    "job 1\nuid 2\nnode n\x1b\ncreated 3\nbytes 4\nimage i\n"
	    "base_hex \nbase /b\n",
	};
	struct ovkeep_rec r;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (ovkeep_rec_parse(bad[i], &r) == 0)
			fail_msg("case %zu parsed", i);
	assert_int_equal(
	    ovkeep_rec_parse("job 1\nuid 2\nnode n\ncreated 3\nbytes 4\n"
			     "image i\nbase_hex \nbase /b\n",
			     &r),
	    0);
}

static void test_lease_owner(void **state)
{
	char buf[160];

	(void)state;
	assert_int_equal(ovkeep_lease_owner("n1", 42, buf, sizeof(buf)), 0);
	/* Not NODE.JOBID: the job leases' sweep never takes it. */
	assert_string_equal(buf, "n1.42.overlay");
	assert_int_equal(ovkeep_lease_owner("a/b", 42, buf, sizeof(buf)),
			 -EINVAL);
}

/* --- the move in --------------------------------------------------------- */

static void test_put_and_get(void **state)
{
	struct fx *f = *state;
	struct ovkeep_rec r, got;
	_cleanup_free_ struct ovkeep_rec *v = NULL;
	char buf[64] = "";
	struct stat st;
	size_t n = 0;
	int fd;

	if (!f) {
		skip();
		return;
	}

	put_file(f->dfd, "overlay.qcow2", QCOW, 0644);
	sample(&r, 42, 1001);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), 0);
	assert_int_equal(r.bytes, strlen(QCOW));
	/* Moved, not copied; root 0600 in a root 0700 store. */
	assert_false(there(f->dfd, "overlay.qcow2"));
	assert_int_equal(fstatat(f->sfd, "42.qcow2", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(fstatat(f->sfd, "42.rec", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(fstat(f->sfd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	assert_int_equal(ovkeep_store_get(f->sfd, 42, &got), 0);
	assert_int_equal(got.uid, 1001);
	assert_int_equal(got.bytes, strlen(QCOW));
	assert_int_equal(ovkeep_store_list(f->sfd, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].job, 42);

	/* Its owner and root get it; anyone else does not. */
	fd = ovkeep_store_open_for(f->sfd, 42, 1001, &got);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(QCOW));
	assert_string_equal(buf, QCOW);
	/* Read-only: the owner cannot change the kept file through it. */
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);
	fd = ovkeep_store_open_for(f->sfd, 42, 0, &got);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ovkeep_store_open_for(f->sfd, 42, 1002, &got),
			 -EACCES);
	assert_int_equal(got.uid, 1001);
	assert_int_equal(ovkeep_store_open_for(f->sfd, 43, 1001, &got),
			 -ENOENT);

	assert_int_equal(ovkeep_store_remove(f->sfd, 42), 0);
	assert_false(there(f->sfd, "42.qcow2"));
	assert_false(there(f->sfd, "42.rec"));
	assert_int_equal(ovkeep_store_open_for(f->sfd, 42, 0, &got), -ENOENT);
}

/* What the job's disk/ may hold instead of a plain root file: refused,
 * and nothing of it reaches the store. */
static void test_put_refused(void **state)
{
	struct fx *f = *state;
	char target[128], other[128];
	struct ovkeep_rec r;
	struct stat st;

	if (!f) {
		skip();
		return;
	}

	sample(&r, 42, 1001);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), -ENOENT);

	snprintf(target, sizeof(target), "%s/secret", f->dir);
	put_file(AT_FDCWD, target, "root's secret", 0600);
	assert_int_equal(symlinkat(target, f->dfd, "overlay.qcow2"), 0);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), -ELOOP);
	assert_int_equal(unlinkat(f->dfd, "overlay.qcow2", 0), 0);

	assert_int_equal(linkat(AT_FDCWD, target, f->dfd, "overlay.qcow2", 0),
			 0);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), -EMLINK);
	assert_int_equal(unlinkat(f->dfd, "overlay.qcow2", 0), 0);

	assert_int_equal(mkfifoat(f->dfd, "overlay.qcow2", 0600), 0);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), -EINVAL);
	assert_int_equal(unlinkat(f->dfd, "overlay.qcow2", 0), 0);

	/* Another user's file: not the job's to keep. */
	snprintf(other, sizeof(other), "%s/overlay.qcow2", f->disk);
	put_file(AT_FDCWD, other, QCOW, 0600);
	assert_int_equal(chown(other, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), -EPERM);
	assert_true(there(f->dfd, "overlay.qcow2"));

	assert_false(there(f->sfd, "42.qcow2"));
	assert_false(there(f->sfd, "42.rec"));

	/* The job's user's (libvirt did not give it back): kept as root's. */
	r.uid = OTHER_UID;
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), 0);
	assert_false(there(f->dfd, "overlay.qcow2"));
	assert_int_equal(fstatat(f->sfd, "42.qcow2", &st, 0), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* The store itself must be root's and closed: no one else's directory,
 * no link, nothing others may enter. */
static void test_store_refused(void **state)
{
	struct fx *f = *state;
	char p[128], q[128];

	if (!f) {
		skip();
		return;
	}

	snprintf(p, sizeof(p), "%s/%s", f->dir, OVKEEP_DIR);
	assert_int_equal(chmod(p, 0755), 0);
	assert_int_equal(ovkeep_store_open(f->dir, false), -EPERM);
	assert_int_equal(chmod(p, 0700), 0);
	assert_int_equal(chown(p, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(ovkeep_store_open(f->dir, false), -EPERM);
	assert_int_equal(rmdir(p), 0);
	snprintf(q, sizeof(q), "%s/elsewhere", f->dir);
	assert_int_equal(mkdir(q, 0700), 0);
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(ovkeep_store_open(f->dir, true), -ELOOP);
}

/* A link planted where a kept overlay or its record is: refused, and
 * tidied as a link (what it points to stays). */
static void test_planted_link(void **state)
{
	struct fx *f = *state;
	struct ovkeep_rec r, got;
	_cleanup_free_ struct ovkeep_rec *lost = NULL, *v = NULL;
	char target[128], text[OVKEEP_MAX_REC];
	size_t n = 0;

	if (!f) {
		skip();
		return;
	}

	snprintf(target, sizeof(target), "%s/secret", f->dir);
	put_file(AT_FDCWD, target, "root's secret", 0600);
	sample(&r, 42, 1001);
	assert_int_equal(ovkeep_rec_format(&r, text, sizeof(text)), 0);
	put_file(f->sfd, "42.rec", text, 0600);
	assert_int_equal(symlinkat(target, f->sfd, "42.qcow2"), 0);
	assert_int_equal(ovkeep_store_open_for(f->sfd, 42, 1001, &got), -ELOOP);
	assert_int_equal(ovkeep_store_open_for(f->sfd, 42, 0, &got), -ELOOP);
	/* Listed with nothing counted for it. */
	assert_int_equal(ovkeep_store_list(f->sfd, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].bytes, 0);

	/* A record that is a link is no record. */
	assert_int_equal(symlinkat(target, f->sfd, "43.rec"), 0);
	put_file(f->sfd, "43.qcow2", QCOW, 0600);
	assert_int_equal(ovkeep_store_get(f->sfd, 43, &got), -ELOOP);
	assert_int_equal(ovkeep_store_open_for(f->sfd, 43, 0, &got), -ELOOP);

	assert_int_equal(ovkeep_store_tidy(f->sfd, &lost, &n), 4);
	/* 42's record was readable: its lease is the caller's to drop. */
	assert_int_equal(n, 1);
	assert_int_equal(lost[0].job, 42);
	assert_false(there(f->sfd, "42.qcow2"));
	assert_false(there(f->sfd, "42.rec"));
	assert_false(there(f->sfd, "43.qcow2"));
	assert_false(there(f->sfd, "43.rec"));
	assert_true(there(AT_FDCWD, target));
}

/* A second name of a kept file (a hard link) is refused. */
static void test_hard_link_refused(void **state)
{
	struct fx *f = *state;
	struct ovkeep_rec r, got;
	char p[128];

	if (!f) {
		skip();
		return;
	}

	put_file(f->dfd, "overlay.qcow2", QCOW, 0644);
	sample(&r, 42, 1001);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), 0);
	snprintf(p, sizeof(p), "%s/other-name", f->dir);
	assert_int_equal(linkat(f->sfd, "42.qcow2", AT_FDCWD, p, 0), 0);
	assert_int_equal(ovkeep_store_open_for(f->sfd, 42, 1001, &got),
			 -EMLINK);
}

static void test_tidy(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ struct ovkeep_rec *lost = NULL;
	struct ovkeep_rec r;
	size_t n = 0;

	if (!f) {
		skip();
		return;
	}

	put_file(f->dfd, "overlay.qcow2", QCOW, 0644);
	sample(&r, 42, 1001);
	assert_int_equal(ovkeep_store_put(f->sfd, f->dfd, &r), 0);
	put_file(f->sfd, "44.qcow2", QCOW, 0600);     /* no record */
	put_file(f->sfd, ".45.rec.tmp.1", "x", 0600); /* a torn write */
	put_file(f->sfd, "junk", "x", 0600);
	put_file(f->sfd, "042.rec", "x", 0600); /* not canonical */
	assert_int_equal(mkdirat(f->sfd, "d", 0700), 0);
	put_file(f->sfd, "d/x", "x", 0600);
	assert_int_equal(ovkeep_store_tidy(f->sfd, &lost, &n), 5);
	assert_int_equal(n, 0);
	assert_true(there(f->sfd, "42.qcow2"));
	assert_true(there(f->sfd, "42.rec"));
	assert_false(there(f->sfd, "44.qcow2"));
	assert_false(there(f->sfd, "junk"));
	assert_false(there(f->sfd, "d"));
}

/* --- limits -------------------------------------------------------------- */

#define MB (1ull << 20)

static void test_plan(void **state)
{
	/* Oldest first: uid 1's 10, 11, 12; uid 2's 20. */
	static const struct ovkeep_rec recs[] = {
	    {.job = 10, .uid = 1, .created = 1, .bytes = 100 * MB},
	    {.job = 20, .uid = 2, .created = 2, .bytes = 300 * MB},
	    {.job = 11, .uid = 1, .created = 3, .bytes = 100 * MB},
	    {.job = 12, .uid = 1, .created = 4, .bytes = 100 * MB},
	};
	static const struct {
		const char *what;
		uint32_t uid, job, max;
		uint64_t bytes, max_mib, total_mib;
		enum ovkeep_verdict v;
		bool evict[4];
	} cases[] = {
	    {"fits", 3, 30, 4, 10 * MB, 1000, 10000, OVKEEP_KEEP, {0}},
	    {"count: the user's oldest goes",
	     1,
	     13,
	     3,
	     10 * MB,
	     1000,
	     10000,
	     OVKEEP_KEEP,
	     {1, 0, 0, 0}},
	    {"count 1: all the user's others go",
	     1,
	     13,
	     1,
	     10 * MB,
	     1000,
	     10000,
	     OVKEEP_KEEP,
	     {1, 0, 1, 1}},
	    {"bytes: oldest first until it fits",
	     1,
	     13,
	     10,
	     250 * MB,
	     400,
	     10000,
	     OVKEEP_KEEP,
	     {1, 0, 1, 0}},
	    {"larger than a user may keep",
	     1,
	     13,
	     10,
	     500 * MB,
	     450,
	     10000,
	     OVKEEP_TOO_BIG,
	     {0}},
	    {"none kept", 1, 13, 0, 1, 1000, 10000, OVKEEP_NONE_ALLOWED, {0}},
	    {"node full: the user's own go first",
	     1,
	     13,
	     10,
	     100 * MB,
	     1000,
	     500,
	     OVKEEP_KEEP,
	     {1, 0, 1, 0}},
	    {"node full of another user's: not kept, nothing goes",
	     3,
	     30,
	     10,
	     300 * MB,
	     1000,
	     800,
	     OVKEEP_NODE_FULL,
	     {0}},
	    {"a requeued job's older one is replaced",
	     1,
	     11,
	     3,
	     10 * MB,
	     1000,
	     10000,
	     OVKEEP_KEEP,
	     {0, 0, 1, 0}},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ovkeep_limits l = {cases[i].max, cases[i].max_mib * MB,
					  cases[i].total_mib * MB};
		bool evict[4];
		enum ovkeep_verdict v =
		    ovkeep_plan(recs, 4, cases[i].uid, cases[i].job,
				cases[i].bytes, &l, evict);

		if (v != cases[i].v)
			fail_msg("%s: verdict %d, want %d", cases[i].what, v,
				 cases[i].v);
		for (size_t k = 0; k < 4; k++)
			if (evict[k] != cases[i].evict[k])
				fail_msg("%s: job %u %s", cases[i].what,
					 recs[k].job,
					 evict[k] ? "evicted" : "kept");
	}
}

static void test_expired(void **state)
{
	struct ovkeep_rec r = {.created = 1000};

	(void)state;
	assert_false(ovkeep_expired(&r, 1000 + 604799, 604800));
	assert_true(ovkeep_expired(&r, 1000 + 604800, 604800));
	assert_true(ovkeep_expired(&r, 1000, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rec_roundtrip),
	    cmocka_unit_test(test_rec_refused),
	    cmocka_unit_test(test_lease_owner),
	    cmocka_unit_test_setup_teardown(test_put_and_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_planted_link, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hard_link_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tidy, setup, teardown),
	    cmocka_unit_test(test_plan),
	    cmocka_unit_test(test_expired),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
