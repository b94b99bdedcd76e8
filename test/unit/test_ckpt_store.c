// SPDX-License-Identifier: MIT
/*
 * The checkpoint store (vmmd/ckpt_store.h): manifest JSON both ways and
 * refused when malformed, the store's life (begin, commit, latest, gc,
 * verify, remove) on a temporary directory, including what an interrupted
 * save leaves and a corrupted file; and the lead arithmetic
 * (vmmd/ckpt_lead.h).
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

#include "ckpt_lead.h"
#include "ckpt_store.h"
#include "cleanup.h"
#include "rmtree.h"
#include "util.h"
#include "wbfollow.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void sample(struct ckpt_manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->job_id = 42;
	m->uid = 1000;
	m->restart_count = 1;
	m->seq = 3;
	snprintf(m->node, sizeof(m->node), "n1");
	snprintf(m->image, sizeof(m->image), "tiny:1");
	snprintf(m->base_sha256, sizeof(m->base_sha256), "%s", SHA_A);
	snprintf(m->cpu_model, sizeof(m->cpu_model), "qemu64");
	m->vcpus = 2;
	m->mem_mib = 512;
	m->created = 1700000000;
	m->keep = true;
	snprintf(m->work_dir, sizeof(m->work_dir), "/home/u/run 1");
	m->spec = strdup("mem_headroom_pct\t15\tdefault\t\t\n");
	m->domain_xml = strdup("<domain type='qemu'><name>x</name></domain>");
	m->next_session = 4;
	m->nsessions = 1;
	m->sessions[0] = (struct ckpt_session){
	    .id = 2, .batch = true, .merge_stderr = true, .out_bytes = {77, 0}};
	m->nfiles = 1;
	snprintf(m->files[0].name, sizeof(m->files[0].name), "memory");
	m->files[0].size = 123;
	snprintf(m->files[0].sha256, sizeof(m->files[0].sha256), "%s", SHA_A);
}

static void test_manifest_roundtrip(void **state)
{
	struct ckpt_manifest a, b;
	_cleanup_free_ char *text = NULL, *again = NULL;
	char err[256] = "";

	(void)state;
	sample(&a);
	assert_int_equal(ckpt_manifest_encode(&a, &text), 0);
	assert_int_equal(
	    ckpt_manifest_decode(text, strlen(text), &b, err, sizeof(err)), 0);
	assert_int_equal(b.job_id, 42);
	assert_int_equal(b.uid, 1000);
	assert_int_equal(b.restart_count, 1);
	assert_int_equal(b.seq, 3);
	assert_string_equal(b.image, "tiny:1");
	assert_string_equal(b.cpu_model, "qemu64");
	assert_string_equal(b.spec, a.spec);
	assert_string_equal(b.domain_xml, a.domain_xml);
	assert_int_equal(b.nsessions, 1);
	assert_int_equal(b.sessions[0].id, 2);
	assert_true(b.sessions[0].batch);
	assert_int_equal(b.sessions[0].out_bytes[0], 77);
	assert_int_equal(b.nfiles, 1);
	assert_int_equal(b.files[0].size, 123);
	assert_int_equal(b.created, 1700000000);
	assert_true(b.keep);
	assert_string_equal(b.work_dir, "/home/u/run 1");
	/* Encoding what was decoded gives the same text. */
	assert_int_equal(ckpt_manifest_encode(&b, &again), 0);
	assert_string_equal(text, again);
	ckpt_manifest_clear(&a);
	ckpt_manifest_clear(&b);
}

/* Replaces the first occurrence of from in the sample's JSON by to. */
static char *mutate(const char *from, const char *to)
{
	struct ckpt_manifest m;
	_cleanup_free_ char *text = NULL;
	char *out, *p;

	sample(&m);
	assert_int_equal(ckpt_manifest_encode(&m, &text), 0);
	ckpt_manifest_clear(&m);
	p = strstr(text, from);
	assert_non_null(p);
	out = malloc(strlen(text) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(p - text));
	strcpy(out + (p - text), to);
	strcat(out, p + strlen(from));
	return out;
}

static void test_manifest_refused(void **state)
{
	static const struct {
		const char *from, *to, *want;
	} cases[] = {
	    {"\"job\":", "\"jobb\":", "'jobb' is not a manifest key"},
	    {"\"uid\":", "\"x\":0, \"uid\":", "'x' is not a manifest key"},
	    {"\"vcpus\":2", "\"vcpus\":-2", "'vcpus' is out of range"},
	    {"\"vcpus\":2", "\"vcpus\":\"2\"", "'vcpus' is not a number"},
	    {"\"format\":1", "\"format\":2", "'format' is not a format"},
	    {"\"name\":\"memory\"", "\"name\":\"..\\/etc\"",
	     "'files.name' is not a checkpoint file"},
	    {"\"sha256\":\"aaaa", "\"sha256\":\"Zaaa",
	     "'files.sha256' is not a sha256"},
	    {"\"node\":\"n1\",", "", "'node' is missing"},
	    {"\"batch\":true", "\"batch\":1", "'batch' is not true or false"},
	    {"\"id\":2", "\"id\":0", "'sessions.id' is missing or 0"},
	    {"\"image\":\"tiny:1\"", "\"image\":\"a\\u0000b\"",
	     "'image' holds a NUL byte"},
	    {"\"keep\":true", "\"keep\":1", "'keep' is not true or false"},
	    {"{", "[", "not one JSON object"},
	    {"\"seq\":3", "\"seq\":3 } {", "not one JSON object"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *t = mutate(cases[i].from, cases[i].to);
		struct ckpt_manifest m;
		char err[256] = "";

		if (ckpt_manifest_decode(t, strlen(t), &m, err, sizeof(err)) !=
		    -EBADMSG)
			fail_msg("case %zu accepted:\n%s", i, t);
		assert_contains(err, cases[i].want);
		assert_null(m.spec);
	}
}

/* A manifest written before checkpoint_keep existed has no "keep": read
 * as not kept; "keep": false reads back too. */
static void test_manifest_keep_optional(void **state)
{
	struct ckpt_manifest m;
	char err[256] = "";

	(void)state;
	{
		_cleanup_free_ char *t = mutate("\"keep\":true,", "");
		assert_null(strstr(t, "keep"));
		if (ckpt_manifest_decode(t, strlen(t), &m, err, sizeof(err)) !=
		    0)
			fail_msg("%s\n%s", err, t);
		assert_false(m.keep);
		assert_int_equal(m.job_id, 42);
		ckpt_manifest_clear(&m);
	}
	{
		_cleanup_free_ char *t =
		    mutate("\"keep\":true", "\"keep\":false");
		assert_int_equal(
		    ckpt_manifest_decode(t, strlen(t), &m, err, sizeof(err)),
		    0);
		assert_false(m.keep);
		ckpt_manifest_clear(&m);
	}
}

/* --- the store ------------------------------------------------------------ */

struct st {
	char root[64];
};

static int st_setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));

	strcpy(s->root, "/tmp/vmenv-ckpt-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	*state = s;
	return 0;
}

static int st_teardown(void **state)
{
	struct st *s = *state;

	rm_rf(s->root);
	free(s);
	return 0;
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[VMENV_MAX_PATH];

	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", dir, name), 0);
	assert_int_equal(write_file_atomic(p, text, strlen(text), 0600), 0);
}

static bool exists(const char *dir, const char *name)
{
	char p[VMENV_MAX_PATH];
	struct stat st;

	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", dir, name), 0);
	return lstat(p, &st) == 0;
}

/* A complete save of job 42 with the given memory contents; the seq. */
static uint32_t save(struct st *s, const char *mem, bool with_files)
{
	struct ckpt_manifest m;
	char dir[VMENV_MAX_PATH], err[512] = "";
	uint32_t seq = 0;

	assert_int_equal(ckpt_store_begin(s->root, 42, &seq, dir, sizeof(dir),
					  err, sizeof(err)),
			 0);
	put(dir, CKPT_MEMORY, mem);
	put(dir, CKPT_DISK, "QFI\xfb overlay");
	if (with_files)
		put(dir, CKPT_FILES, "fids");
	sample(&m);
	m.seq = seq;
	if (ckpt_store_commit(s->root, dir, &m, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
	assert_int_equal(m.nfiles, with_files ? 3 : 2);
	ckpt_manifest_clear(&m);
	return seq;
}

static void test_store_life(void **state)
{
	struct st *s = *state;
	struct ckpt_manifest m;
	char dir[VMENV_MAX_PATH], err[512] = "";
	uint32_t seq = 0;

	assert_int_equal(ckpt_store_latest(s->root, 42, &seq), -ENOENT);
	assert_int_equal(save(s, "RAM one", false), 1);
	assert_int_equal(ckpt_store_latest(s->root, 42, &seq), 0);
	assert_int_equal(seq, 1);
	/* The next save replaces the first only once it is complete. */
	assert_int_equal(save(s, "RAM two", true), 2);
	ckpt_store_seq_dir(s->root, 42, 1, dir, sizeof(dir));
	assert_false(exists(dir, "."));
	ckpt_store_seq_dir(s->root, 42, 2, dir, sizeof(dir));
	assert_int_equal(ckpt_store_verify(dir, 42, 1000, &m, err, sizeof(err)),
			 0);
	assert_int_equal(m.seq, 2);
	assert_int_equal(m.nfiles, 3);
	ckpt_manifest_clear(&m);
	/* Another job's or user's checkpoint is refused. */
	assert_int_equal(ckpt_store_verify(dir, 43, 1000, &m, err, sizeof(err)),
			 -EPERM);
	assert_contains(err, "belongs to job 42 of uid 1000");
	assert_int_equal(ckpt_store_verify(dir, 42, 0, &m, err, sizeof(err)),
			 -EPERM);
	/* Listed among the store's jobs. */
	{
		uint32_t *ids = NULL;
		size_t n = 0;

		assert_int_equal(ckpt_store_jobs(s->root, &ids, &n, 8), 0);
		assert_int_equal(n, 1);
		assert_int_equal(ids[0], 42);
		free(ids);
	}
	/* Consumed: gone, job directory too. */
	assert_int_equal(ckpt_store_remove(s->root, 42, 2), 0);
	assert_int_equal(ckpt_store_latest(s->root, 42, &seq), -ENOENT);
	ckpt_store_job_dir(s->root, 42, dir, sizeof(dir));
	assert_false(exists(dir, "."));
}

/* vmmd killed or the disk full in the middle of a save: the directory
 * has no manifest, does not count, and goes at the next gc or save. */
static void test_store_interrupted(void **state)
{
	struct st *s = *state;
	char dir[VMENV_MAX_PATH], dir1[VMENV_MAX_PATH], err[512] = "";
	uint32_t seq = 0;

	assert_int_equal(save(s, "RAM one", false), 1);
	assert_int_equal(ckpt_store_begin(s->root, 42, &seq, dir, sizeof(dir),
					  err, sizeof(err)),
			 0);
	assert_int_equal(seq, 2);
	put(dir, CKPT_DISK, "half");
	/* The half save is not the latest; the first is intact. */
	assert_int_equal(ckpt_store_latest(s->root, 42, &seq), 0);
	assert_int_equal(seq, 1);
	ckpt_store_seq_dir(s->root, 42, 1, dir1, sizeof(dir1));
	assert_true(exists(dir1, CKPT_MANIFEST));
	/* A save whose required file is missing fails, and cleans up. */
	{
		struct ckpt_manifest m;
		sample(&m);
		m.seq = 2;
		assert_int_equal(
		    ckpt_store_commit(s->root, dir, &m, err, sizeof(err)),
		    -ENOENT);
		assert_contains(err, "/memory: No such file");
		ckpt_manifest_clear(&m);
	}
	assert_false(exists(dir, "."));
	assert_true(exists(dir1, CKPT_MANIFEST));
	/* gc at start removes leftovers of every job. */
	ckpt_store_seq_dir(s->root, 7, 5, dir, sizeof(dir));
	assert_int_equal(mkdir_p(dir, 0700), 0);
	put(dir, CKPT_MEMORY, "x");
	/* Not while something may still write there (another node's save
	 * on a shared store). */
	assert_int_equal(ckpt_store_gc(s->root, 0, CKPT_GC_IDLE_S), 0);
	assert_true(exists(dir, CKPT_MEMORY));
	assert_int_equal(ckpt_store_gc(s->root, 0, 0), 1);
	assert_false(exists(dir, "."));
	ckpt_store_job_dir(s->root, 7, dir, sizeof(dir));
	assert_false(exists(dir, "."));
	assert_true(exists(dir1, CKPT_MANIFEST));
	/* A job that will never come back loses all of them. */
	assert_int_equal(ckpt_store_remove_job(s->root, 42), 0);
	assert_int_equal(ckpt_store_latest(s->root, 42, &seq), -ENOENT);
	assert_false(exists(dir1, "."));
}

static void corrupt(const char *dir, const char *name, bool grow)
{
	char p[VMENV_MAX_PATH];
	int fd;

	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", dir, name), 0);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	if (grow)
		assert_int_equal(pwrite(fd, "xx", 2, 1000), 2);
	else
		assert_int_equal(pwrite(fd, "X", 1, 1), 1);
	close(fd);
}

static void test_store_corrupt(void **state)
{
	static const struct {
		const char *file;
		bool grow;
		const char *want;
	} cases[] = {
	    {CKPT_MEMORY, false, "file 'memory' is corrupted (sha256"},
	    {CKPT_DISK, false, "file 'disk.qcow2' is corrupted"},
	    {CKPT_FILES, false, "file 'files' is corrupted"},
	    {CKPT_MEMORY, true,
	     "file 'memory' has 1002 bytes, the manifest "
	     "says 7"},
	    {CKPT_MANIFEST, false, "not one JSON object"},
	};
	struct st *s = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ckpt_manifest m;
		char dir[VMENV_MAX_PATH], err[512] = "";
		uint32_t seq = save(s, "RAM one", true);

		ckpt_store_seq_dir(s->root, 42, seq, dir, sizeof(dir));
		corrupt(dir, cases[i].file, cases[i].grow);
		assert_int_equal(
		    ckpt_store_verify(dir, 42, 1000, &m, err, sizeof(err)),
		    -EBADMSG);
		assert_contains(err, cases[i].want);
		assert_contains(err, dir);
	}
}

/* --- the lead --------------------------------------------------------------- */

static void test_lead(void **state)
{
	const uint64_t MiB = 1024 * 1024;
	static const struct {
		uint32_t policy;
		uint64_t mem, disk, bw;
		uint32_t want;
	} cases[] = {
	    /* 1 GiB at 100 MiB/s: 10.24 s x1.5 = 15.36 -> 16, +15. */
	    {0, 1024, 0, 100, 31},
	    /* The policy's figure wins when larger. */
	    {300, 1024, 0, 100, 300},
	    /* Memory and disk both count: 2 GiB at 1 GiB/s: 3 + 15. */
	    {0, 1024, 1024, 1024, 18},
	    /* Unknown bandwidth: the default (100 MiB/s). */
	    {0, 1024, 0, 0, 31},
	    /* Unknown bandwidth, small guest: rounded up to 1 s. */
	    {0, 10, 0, 0, 15 + 1},
	    /* Exactly divisible, no rounding up. */
	    {0, 200, 0, 100, 15 + 3},
	    /* Nothing to write: the margin. */
	    {0, 0, 0, 100, 15},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t bw = cases[i].bw * MiB;
		uint32_t got = ckpt_lead_s(cases[i].policy, cases[i].mem * MiB,
					   cases[i].disk * MiB, bw);
		if (got != cases[i].want)
			fail_msg("case %zu: lead %u, want %u", i, got,
				 cases[i].want);
	}
	/* A tiny positive bandwidth is floored, not taken as unknown. */
	assert_int_equal(ckpt_lead_s(0, 10 * MiB, 0, 1), 15 + 15);
	/* No overflow for absurd sizes. */
	assert_int_equal(ckpt_lead_s(0, UINT64_MAX / 2, 0, 1), UINT32_MAX);
}

static void test_due(void **state)
{
	(void)state;
	assert_int_equal(ckpt_due(1000, 100, 500), 900);
	assert_int_equal(ckpt_due(1000, 600, 500), 500); /* late: now */
	assert_int_equal(ckpt_due(0, 100, 500), 0);	 /* no end time */
}

static void test_bw(void **state)
{
	struct st *s = *state;
	char path[VMENV_MAX_PATH], err[256] = "";
	uint64_t bw = 0;

	assert_int_equal(ckpt_bw_refine(0, 1000, 1000), 1000);
	assert_int_equal(ckpt_bw_refine(1000, 3000, 1000), 2000);
	assert_int_equal(ckpt_bw_refine(0, 5, 0), 5000);
	assert_int_equal(str_printf(path, sizeof(path), "%s/bw", s->root), 0);
	assert_int_equal(ckpt_bw_load(path, &bw), -ENOENT);
	assert_int_equal(ckpt_bw_save(path, 123456789), 0);
	assert_int_equal(ckpt_bw_load(path, &bw), 0);
	assert_int_equal(bw, 123456789);
	put(s->root, "bw", "fast\n");
	assert_int_equal(ckpt_bw_load(path, &bw), -EINVAL);
	/* A small probe really writes, and leaves nothing behind. */
	bw = 0;
	if (ckpt_bw_probe(s->root, 8 * 1024 * 1024, &bw, err, sizeof(err)))
		fail_msg("probe: %s", err);
	assert_true(bw > 0);
	assert_int_equal(str_printf(path, sizeof(path), "%s/nope", s->root), 0);
	assert_int_equal(ckpt_bw_probe(path, 4096, &bw, err, sizeof(err)),
			 -ENOENT);
	assert_contains(err, "checkpoint probe");
}

/* Files go into a store that may be another file system (a shared one;
 * here /dev/shm beside /tmp when they differ): copy_file_range refuses
 * across file systems, the copy must not. Same bytes, an existing target
 * refused, nothing left of a failed copy. */
static void test_copy_across(void **state)
{
	const char *const dirs[][2] = {
	    {"/tmp", "/dev/shm"}, {"/dev/shm", "/tmp"}, {"/tmp", "/tmp"}};
	char from[128], to[128], *got = NULL;
	_cleanup_free_ char *data = malloc(300 * 1024);
	size_t n = 0;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < 300 * 1024; i++)
		data[i] = (char)(i * 7 + i / 1024);
	for (size_t k = 0; k < ARRAY_SIZE(dirs); k++) {
		if (access(dirs[k][0], W_OK) < 0 ||
		    access(dirs[k][1], W_OK) < 0)
			continue;
		snprintf(from, sizeof(from), "%s/vmenv-cp-%d-a", dirs[k][0],
			 (int)getpid());
		snprintf(to, sizeof(to), "%s/vmenv-cp-%d-b", dirs[k][1],
			 (int)getpid());
		unlink(to);
		assert_int_equal(
		    write_file_atomic(from, data, 300 * 1024, 0600), 0);
		assert_int_equal(copy_file(from, to, 0600), 0);
		assert_int_equal(read_file_limited(to, 1 << 20, &got, &n), 0);
		assert_int_equal(n, 300 * 1024);
		assert_memory_equal(got, data, n);
		free(got);
		got = NULL;
		assert_int_equal(copy_file(from, to, 0600), -EEXIST);
		unlink(to);
		assert_int_equal(copy_file("/dev/null", to, 0600), -EINVAL);
		assert_int_equal(access(to, F_OK), -1);
		unlink(from);
	}
}

static void append(const char *path, size_t n)
{
	_cleanup_free_ char *buf = malloc(n);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	assert_non_null(buf);
	assert_true(fd >= 0);
	memset(buf, 0x5a, n);
	assert_int_equal(write_full(fd, buf, n), 0);
	close(fd);
}

/* Waits (5 s at most) until f has handed want bytes to writeback. */
static uint64_t kicked_reaches(struct wbfollow *f, uint64_t want)
{
	for (int i = 0; i < 500 && wbfollow_kicked(f) < want; i++)
		usleep(10000);
	return wbfollow_kicked(f);
}

/* The save image's writer creates it after the follower starts; every
 * step it grows by goes to writeback, less than a step waits for more. */
static void test_wbfollow_grows(void **state)
{
	struct st *s = *state;
	const uint64_t mib = 1 << 20;
	struct wbfollow *f = NULL;
	char p[VMENV_MAX_PATH];

	assert_int_equal(str_printf(p, sizeof(p), "%s/memory.save", s->root),
			 0);
	assert_int_equal(wbfollow_start(&f, p, mib), 0);
	usleep(20000); /* not there yet: it keeps looking */
	for (int i = 0; i < 4; i++)
		append(p, mib);
	assert_int_equal(kicked_reaches(f, 4 * mib), 4 * mib);
	append(p, mib / 2);
	usleep(50000);
	assert_int_equal(wbfollow_kicked(f), 4 * mib);
	append(p, mib / 2);
	assert_int_equal(kicked_reaches(f, 5 * mib), 5 * mib);
	assert_int_equal(wbfollow_stop(f), 5 * mib);
}

/* A link in its place is not followed (O_NOFOLLOW), a file that never
 * comes is no reason to wait, and stopping is at once. */
static void test_wbfollow_refuses(void **state)
{
	struct st *s = *state;
	char p[VMENV_MAX_PATH], target[VMENV_MAX_PATH];
	struct wbfollow *f = NULL;
	uint64_t t0;

	assert_int_equal(
	    str_printf(target, sizeof(target), "%s/elsewhere", s->root), 0);
	assert_int_equal(str_printf(p, sizeof(p), "%s/memory.save", s->root),
			 0);
	append(target, 4 << 20);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(wbfollow_start(&f, p, 1 << 20), 0);
	usleep(100000);
	assert_int_equal(wbfollow_stop(f), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(wbfollow_start(&f, p, 1 << 20), 0);
	t0 = now_ms();
	assert_int_equal(wbfollow_stop(f), 0);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(wbfollow_stop(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manifest_roundtrip),
	    cmocka_unit_test(test_manifest_refused),
	    cmocka_unit_test(test_manifest_keep_optional),
	    cmocka_unit_test_setup_teardown(test_store_life, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_interrupted, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_corrupt, st_setup,
					    st_teardown),
	    cmocka_unit_test(test_lead),
	    cmocka_unit_test(test_due),
	    cmocka_unit_test(test_copy_across),
	    cmocka_unit_test_setup_teardown(test_bw, st_setup, st_teardown),
	    cmocka_unit_test_setup_teardown(test_wbfollow_grows, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_wbfollow_refuses, st_setup,
					    st_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
