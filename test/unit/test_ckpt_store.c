// SPDX-License-Identifier: MIT
/*
 * The checkpoint store (vmmd/ckpt/ckpt_store.h): manifest JSON both ways and
 * refused when malformed, the store's life (begin, commit, latest, gc,
 * verify, remove) on a temporary directory, including what an interrupted
 * save leaves and a corrupted file; and the lead arithmetic
 * (vmmd/ckpt/ckpt_lead.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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
	    {"\"name\":\"memory\"", "\"name\":\"files.m01\"",
	     "'files.name' is not a checkpoint file"},
	    {"\"name\":\"memory\"", "\"name\":\"files.m16\"",
	     "'files.name' is not a checkpoint file"},
	    {"\"name\":\"memory\"", "\"name\":\"files.m\"",
	     "'files.name' is not a checkpoint file"},
	    {"\"name\":\"memory\"", "\"name\":\"files.m1.pendin\"",
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
	struct ckpt_store cs; /* the store at root, opened as the node's */
};

static int st_setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	char err[512] = "";

	strcpy(s->root, "/tmp/vmenv-ckpt-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	s->cs.fd = -1;
	if (ckpt_store_open(s->root, CKPT_STORE_NODE, &s->cs, err,
			    sizeof(err)) < 0)
		fail_msg("%s", err);
	*state = s;
	return 0;
}

static int st_teardown(void **state)
{
	struct st *s = *state;

	ckpt_store_close(&s->cs);
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
	int fd = ckpt_store_begin(&s->cs, 42, &seq, dir, sizeof(dir), err,
				  sizeof(err));

	if (fd < 0)
		fail_msg("begin: %s", err);
	put(dir, CKPT_MEMORY, mem);
	put(dir, CKPT_DISK, "QFI\xfb overlay");
	if (with_files)
		put(dir, CKPT_FILES, "fids");
	sample(&m);
	m.seq = seq;
	if (ckpt_store_commit(fd, dir, &m, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
	assert_int_equal(m.nfiles, with_files ? 3 : 2);
	ckpt_manifest_clear(&m);
	close(fd);
	return seq;
}

/* Opens job 42's checkpoint seq and verifies it for job, uid. */
static int verify(struct st *s, uint32_t seq, uint32_t job, uint32_t uid,
		  struct ckpt_verified *v, char *dir, char *err, size_t errlen)
{
	int r, fd = ckpt_store_open_seq(&s->cs, 42, seq, dir, VMENV_MAX_PATH,
					err, errlen);

	if (fd < 0) {
		ckpt_verified_init(v);
		return fd;
	}
	r = ckpt_store_verify(fd, dir, job, uid, v, err, errlen);
	close(fd);
	return r;
}

static void test_store_life(void **state)
{
	struct st *s = *state;
	struct ckpt_verified v;
	char dir[VMENV_MAX_PATH], err[512] = "";
	uint32_t seq = 0;

	assert_int_equal(ckpt_store_latest(&s->cs, 42, &seq, NULL, 0), -ENOENT);
	assert_int_equal(save(s, "RAM one", false), 1);
	assert_int_equal(ckpt_store_latest(&s->cs, 42, &seq, NULL, 0), 0);
	assert_int_equal(seq, 1);
	/* The next save replaces the first only once it is complete. */
	assert_int_equal(save(s, "RAM two", true), 2);
	ckpt_store_seq_dir(s->root, 42, 1, dir, sizeof(dir));
	assert_false(exists(dir, "."));
	assert_int_equal(verify(s, 2, 42, 1000, &v, dir, err, sizeof(err)), 0);
	assert_int_equal(v.man.seq, 2);
	assert_int_equal(v.man.nfiles, 3);
	ckpt_verified_clear(&v);
	/* Another job's or user's checkpoint is refused. */
	assert_int_equal(verify(s, 2, 43, 1000, &v, dir, err, sizeof(err)),
			 -EPERM);
	assert_contains(err, "belongs to job 42 of uid 1000");
	assert_int_equal(verify(s, 2, 42, 0, &v, dir, err, sizeof(err)),
			 -EPERM);
	/* Listed among the store's jobs. */
	{
		uint32_t *ids = NULL;
		size_t n = 0;

		assert_int_equal(ckpt_store_jobs(&s->cs, &ids, &n, 8), 0);
		assert_int_equal(n, 1);
		assert_int_equal(ids[0], 42);
		free(ids);
	}
	/* Consumed: gone, job directory too. */
	assert_int_equal(ckpt_store_remove(&s->cs, 42, 2), 0);
	assert_int_equal(ckpt_store_latest(&s->cs, 42, &seq, NULL, 0), -ENOENT);
	ckpt_store_job_dir(s->root, 42, dir, sizeof(dir));
	assert_false(exists(dir, "."));
}

/* A served job's mounts: each one's state and pending requests are in
 * the checkpoint under a name of its own (files.m<i>, files.m<i>.pending),
 * listed in the manifest and found by the restore's lookup from the fd it
 * verified; a name that only looks like one (files.m01, files.m16) is not
 * listed, and the names round-trip through the manifest. */
static void test_store_mount_files(void **state)
{
	static const char *const names[] = {"files.m0", "files.m0.pending",
					    "files.m1", "files.m15"};
	struct st *s = *state;
	struct ckpt_manifest m;
	struct ckpt_verified v;
	char dir[VMENV_MAX_PATH], err[512] = "", name[32], buf[32];
	uint32_t seq = 0;
	uint64_t size = 0;
	int fd = ckpt_store_begin(&s->cs, 42, &seq, dir, sizeof(dir), err,
				  sizeof(err));

	assert_true(fd >= 0);
	assert_int_equal(ckpt_file_mount_name(3, true, name, sizeof(name)), 0);
	assert_string_equal(name, "files.m3.pending");
	assert_int_equal(ckpt_file_mount_name(16, false, name, sizeof(name)),
			 -EINVAL);
	assert_true(ckpt_file_name_ok("files.m15.pending"));
	assert_false(ckpt_file_name_ok("files.m16"));
	assert_false(ckpt_file_name_ok("files.m-1"));
	put(dir, CKPT_MEMORY, "RAM");
	put(dir, CKPT_FILES, "workdir fids");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		put(dir, names[i], names[i]);
	put(dir, "files.m01", "not ours");
	put(dir, "files.m16", "not ours");
	sample(&m);
	m.seq = seq;
	if (ckpt_store_commit(fd, dir, &m, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
	close(fd);
	assert_int_equal(m.nfiles, 2 + ARRAY_SIZE(names));
	/* files.m0 and files.m1: two mounts (files.m15 alone is not a
	 * third). */
	assert_int_equal(ckpt_manifest_mounts(&m), 2);
	ckpt_manifest_clear(&m);
	assert_int_equal(verify(s, seq, 42, 1000, &v, dir, err, sizeof(err)),
			 0);
	assert_int_equal(v.man.nfiles, 2 + ARRAY_SIZE(names));
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		fd = ckpt_verified_fd(&v, names[i], &size);
		assert_true(fd >= 0);
		assert_int_equal(size, strlen(names[i]));
		assert_int_equal(pread(fd, buf, sizeof(buf), 0),
				 (ssize_t)strlen(names[i]));
		assert_memory_equal(buf, names[i], strlen(names[i]));
	}
	assert_int_equal(ckpt_verified_fd(&v, "files.m1.pending", NULL),
			 -ENOENT);
	assert_int_equal(ckpt_verified_fd(&v, "files.m01", NULL), -ENOENT);
	assert_int_equal(ckpt_verified_fd(&v, "files.m16", NULL), -ENOENT);
	ckpt_verified_clear(&v);
	assert_int_equal(ckpt_store_remove(&s->cs, 42, seq), 0);
}

/* vmmd killed or the disk full in the middle of a save: the directory
 * has no manifest, does not count, and goes at the next gc or save. */
static void test_store_interrupted(void **state)
{
	struct st *s = *state;
	char dir[VMENV_MAX_PATH], dir1[VMENV_MAX_PATH], err[512] = "";
	uint32_t seq = 0;
	int fd;

	assert_int_equal(save(s, "RAM one", false), 1);
	fd = ckpt_store_begin(&s->cs, 42, &seq, dir, sizeof(dir), err,
			      sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(seq, 2);
	put(dir, CKPT_DISK, "half");
	/* The half save is not the latest; the first is intact. */
	assert_int_equal(ckpt_store_latest(&s->cs, 42, &seq, NULL, 0), 0);
	assert_int_equal(seq, 1);
	ckpt_store_seq_dir(s->root, 42, 1, dir1, sizeof(dir1));
	assert_true(exists(dir1, CKPT_MANIFEST));
	/* A save whose required file is missing fails, and cleans up. */
	{
		struct ckpt_manifest m;
		sample(&m);
		m.seq = 2;
		assert_int_equal(
		    ckpt_store_commit(fd, dir, &m, err, sizeof(err)), -ENOENT);
		assert_contains(err, "/memory: No such file");
		ckpt_manifest_clear(&m);
		close(fd);
	}
	assert_false(exists(dir, "."));
	assert_true(exists(dir1, CKPT_MANIFEST));
	/* gc at start removes leftovers of every job. */
	ckpt_store_seq_dir(s->root, 7, 5, dir, sizeof(dir));
	assert_int_equal(mkdir_p(dir, 0700), 0);
	put(dir, CKPT_MEMORY, "x");
	/* Not while something may still write there (another node's save
	 * on a shared store). */
	assert_int_equal(ckpt_store_gc(&s->cs, 0, CKPT_GC_IDLE_S), 0);
	assert_true(exists(dir, CKPT_MEMORY));
	assert_int_equal(ckpt_store_gc(&s->cs, 0, 0), 1);
	assert_false(exists(dir, "."));
	ckpt_store_job_dir(s->root, 7, dir, sizeof(dir));
	assert_false(exists(dir, "."));
	assert_true(exists(dir1, CKPT_MANIFEST));
	/* A job that will never come back loses all of them. */
	assert_int_equal(ckpt_store_remove_job(&s->cs, 42), 0);
	assert_int_equal(ckpt_store_latest(&s->cs, 42, &seq, NULL, 0), -ENOENT);
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
		struct ckpt_verified v;
		char dir[VMENV_MAX_PATH], err[512] = "";
		uint32_t seq = save(s, "RAM one", true);

		ckpt_store_seq_dir(s->root, 42, seq, dir, sizeof(dir));
		corrupt(dir, cases[i].file, cases[i].grow);
		assert_int_equal(
		    verify(s, seq, 42, 1000, &v, dir, err, sizeof(err)),
		    -EBADMSG);
		assert_contains(err, cases[i].want);
		assert_contains(err, dir);
	}
}

/* --- what a user may have put there --------------------------------------- */

/* Another user, as the tests play one (chown as root; no account). */
#define OTHER_UID 12345

static void path_in(const struct st *s, char *buf, size_t len, const char *sub)
{
	assert_int_equal(str_printf(buf, len, "%s/%s", s->root, sub), 0);
}

/* A directory of vmmd's (uid 0: whoever runs the test) or another's. */
static void plant_dir(const struct st *s, const char *sub, mode_t mode,
		      uid_t uid)
{
	char p[VMENV_MAX_PATH];

	path_in(s, p, sizeof(p), sub);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	if (uid != 0)
		assert_int_equal(chown(p, uid, (gid_t)-1), 0);
}

static void plant_link(const struct st *s, const char *sub, const char *to)
{
	char p[VMENV_MAX_PATH], t[VMENV_MAX_PATH];

	path_in(s, p, sizeof(p), sub);
	path_in(s, t, sizeof(t), to);
	assert_int_equal(symlink(t, p), 0);
}

static bool there(const struct st *s, const char *sub)
{
	char p[VMENV_MAX_PATH];
	struct stat st;

	path_in(s, p, sizeof(p), sub);
	return lstat(p, &st) == 0;
}

/* A manifest a user wrote, saying what root would want to see. */
static void forge(const struct st *s, const char *sub, uint32_t job)
{
	struct ckpt_manifest m;
	_cleanup_free_ char *text = NULL;
	char p[VMENV_MAX_PATH];

	sample(&m);
	m.job_id = job;
	m.seq = 1;
	assert_int_equal(ckpt_manifest_encode(&m, &text), 0);
	ckpt_manifest_clear(&m);
	path_in(s, p, sizeof(p), sub);
	put(p, CKPT_MANIFEST, text);
	put(p, CKPT_MEMORY, "RAM of the user's choosing");
}

/* A <jobid> or <seq> directory that is not root's only, or a link: never
 * read (a forged manifest there is evidence of nothing), written,
 * collected or removed. */
static void test_store_refused_dirs(void **state)
{
	static const struct {
		const char *what;
		void (*plant)(const struct st *s);
		int latest, begin; /* what latest and begin say */
		const char *why;   /* in begin's message (never writes into
				    * what is there) */
	} cases[] = {
	    {"a job directory of another user with a forged manifest", NULL,
	     -EPERM, -EPERM, "is owned by uid 12345 with mode 0700"},
	    {"a job directory others may enter", NULL, -EPERM, -EPERM,
	     "with mode 0755"},
	    {"a job directory that is a link to another job's", NULL, -ELOOP,
	     -ELOOP, "is not a directory (a symlink or a file)"},
	    {"a seq directory that is a link", NULL, -ENOENT, -EEXIST,
	     "File exists"},
	    {"a seq directory of another user", NULL, -ENOENT, -EEXIST,
	     "File exists"},
	};
	struct st *s = *state;

	if (geteuid() != 0)
		skip();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char dir[VMENV_MAX_PATH], err[1024] = "";
		uint32_t seq = 0;
		int fd;

		print_message("case %zu: %s\n", i, cases[i].what);
		rm_rf(s->root);
		assert_int_equal(mkdir(s->root, 0700), 0);
		ckpt_store_close(&s->cs);
		assert_int_equal(ckpt_store_open(s->root, CKPT_STORE_NODE,
						 &s->cs, err, sizeof(err)),
				 0);
		/* Job 43's real checkpoint, where a link may lead. */
		plant_dir(s, "43", 0700, 0);
		plant_dir(s, "43/1", 0700, 0);
		forge(s, "43/1", 42);
		switch (i) {
		case 0:
			plant_dir(s, "42", 0700, OTHER_UID);
			plant_dir(s, "42/1", 0700, OTHER_UID);
			forge(s, "42/1", 42);
			break;
		case 1:
			plant_dir(s, "42", 0755, 0);
			plant_dir(s, "42/1", 0700, 0);
			forge(s, "42/1", 42);
			break;
		case 2:
			plant_link(s, "42", "43");
			break;
		case 3:
			plant_dir(s, "42", 0700, 0);
			plant_link(s, "42/1", "43/1");
			break;
		default:
			plant_dir(s, "42", 0700, 0);
			plant_dir(s, "42/1", 0700, OTHER_UID);
			forge(s, "42/1", 42);
		}
		assert_int_equal(ckpt_store_latest(&s->cs, 42, &seq, NULL, 0),
				 cases[i].latest);
		/* Nothing to read through it. */
		fd = ckpt_store_open_seq(&s->cs, 42, 1, dir, sizeof(dir), err,
					 sizeof(err));
		assert_true(fd < 0);
		fd = ckpt_store_begin(&s->cs, 42, &seq, dir, sizeof(dir), err,
				      sizeof(err));
		assert_int_equal(fd, cases[i].begin);
		assert_contains(err, cases[i].why);
		/* Neither collected nor removed through it. */
		ckpt_store_gc(&s->cs, 0, 0);
		ckpt_store_remove_job(&s->cs, 42);
		assert_true(there(s, "43/1/" CKPT_MANIFEST));
		if (i < 2)
			assert_true(there(s, "42/1/" CKPT_MANIFEST));
	}
}

/* The store's own path: a symlink anywhere on it is refused (a policy's
 * prefix cannot be escaped through one); the node's must be root's all
 * the way; a user's may be the user's. */
static void test_store_path(void **state)
{
	struct st *s = *state;
	struct ckpt_store cs = CKPT_STORE_INIT;
	char p[VMENV_MAX_PATH], err[1024] = "";

	plant_dir(s, "etc", 0700, 0);
	plant_dir(s, "scratch", 0755, 0);
	plant_dir(s, "scratch/u", 0755, 0);
	plant_link(s, "scratch/u/ck", "etc");
	path_in(s, p, sizeof(p), "scratch/u/ck/more");
	assert_int_equal(
	    ckpt_store_open(p, CKPT_STORE_CREATE, &cs, err, sizeof(err)),
	    -ELOOP);
	assert_contains(err, "(a symlink on the way)");
	assert_false(there(s, "etc/more"));
	path_in(s, p, sizeof(p), "scratch/u/ck");
	assert_int_equal(ckpt_store_open(p, 0, &cs, err, sizeof(err)), -ELOOP);
	/* Made, root's, when missing. */
	path_in(s, p, sizeof(p), "scratch/u/new/ck");
	assert_int_equal(
	    ckpt_store_open(p, CKPT_STORE_CREATE, &cs, err, sizeof(err)), 0);
	assert_true(cs.trusted);
	ckpt_store_close(&cs);
	if (geteuid() != 0)
		return;
	/* A user's directory on the way: fine for the user's store, never
	 * for the node's. */
	assert_int_equal(chown(p, OTHER_UID, (gid_t)-1), 0);
	assert_int_equal(ckpt_store_open(p, 0, &cs, err, sizeof(err)), 0);
	assert_false(cs.trusted);
	ckpt_store_close(&cs);
	assert_int_equal(
	    ckpt_store_open(p, CKPT_STORE_NODE, &cs, err, sizeof(err)), -EPERM);
	assert_contains(err, "must be root's all the way");
}

static void alarm_fail(int sig)
{
	static const char msg[] = "the store blocked on a FIFO\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Files of a checkpoint as a restore reads them: the listed ones are
 * opened once without following a link or blocking on a FIFO, must be
 * plain files of root's with one name; unlisted ones are never opened. */
static void test_store_files_refused(void **state)
{
	static const struct {
		const char *what;
		const char *file; /* replaced in a complete checkpoint */
		int kind;	  /* 0 link, 1 FIFO, 2 hard link, 3 chown */
		const char *want; /* verify's message; NULL: verifies */
	} cases[] = {
	    {"memory a link to a file of the same bytes", CKPT_MEMORY, 0,
	     "file 'memory': Too many levels of symbolic links"},
	    {"memory a FIFO", CKPT_MEMORY, 1,
	     "file 'memory': not a plain file"},
	    {"memory with another name", CKPT_MEMORY, 2,
	     "file 'memory': has other names"},
	    {"memory another user's", CKPT_MEMORY, 3,
	     "file 'memory': not root's"},
	    {"an unlisted output: a link to a secret", CKPT_OUTPUT, 0, NULL},
	    {"an unlisted files.pending: a FIFO", CKPT_FILES_PENDING, 1, NULL},
	};
	struct st *s = *state;

	signal(SIGALRM, alarm_fail);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ckpt_verified v;
		char dir[VMENV_MAX_PATH], p[VMENV_MAX_PATH], q[VMENV_MAX_PATH];
		char err[1024] = "";
		uint32_t seq;
		int r;

		if (cases[i].kind >= 2 && geteuid() != 0)
			continue;
		print_message("case %zu: %s\n", i, cases[i].what);
		seq = save(s, "RAM one", true);
		ckpt_store_seq_dir(s->root, 42, seq, dir, sizeof(dir));
		assert_int_equal(
		    str_printf(p, sizeof(p), "%s/%s", dir, cases[i].file), 0);
		path_in(s, q, sizeof(q), "secret");
		unlink(q);
		assert_int_equal(write_file_atomic(q, "RAM one", 7, 0600), 0);
		unlink(p);
		if (cases[i].kind == 0)
			assert_int_equal(symlink(q, p), 0);
		else if (cases[i].kind == 1)
			assert_int_equal(mkfifo(p, 0600), 0);
		else if (cases[i].kind == 2)
			assert_int_equal(link(q, p), 0);
		else {
			assert_int_equal(
			    write_file_atomic(p, "RAM one", 7, 0600), 0);
			assert_int_equal(chown(p, OTHER_UID, (gid_t)-1), 0);
		}
		alarm(10);
		r = verify(s, seq, 42, 1000, &v, dir, err, sizeof(err));
		alarm(0);
		if (cases[i].want) {
			assert_int_equal(r, -EBADMSG);
			assert_contains(err, cases[i].want);
			continue;
		}
		if (r < 0)
			fail_msg("%s", err);
		assert_int_equal(ckpt_verified_fd(&v, cases[i].file, NULL),
				 -ENOENT);
		assert_true(ckpt_verified_fd(&v, CKPT_MEMORY, NULL) >= 0);
		ckpt_verified_clear(&v);
	}
	signal(SIGALRM, SIG_DFL);
}

/* What a restore copies is what was hashed: a file replaced under its
 * name after the verification does not get in. */
static void test_store_swap_after_verify(void **state)
{
	struct st *s = *state;
	struct ckpt_verified v;
	_cleanup_close_ int out = -1;
	_cleanup_free_ char *got = NULL;
	char dir[VMENV_MAX_PATH], p[VMENV_MAX_PATH], err[512] = "";
	uint64_t size = 0;
	uint32_t seq = save(s, "RAM one", false);
	int fd;

	assert_int_equal(verify(s, seq, 42, 1000, &v, dir, err, sizeof(err)),
			 0);
	assert_int_equal(str_printf(p, sizeof(p), "%s/evil", dir), 0);
	assert_int_equal(write_file_atomic(p, "EVIL", 4, 0600), 0);
	assert_int_equal(str_printf(p, sizeof(p), "%s/%s", dir, CKPT_DISK), 0);
	{
		char from[VMENV_MAX_PATH];
		assert_int_equal(str_printf(from, sizeof(from), "%s/evil", dir),
				 0);
		assert_int_equal(rename(from, p), 0);
	}
	fd = ckpt_verified_fd(&v, CKPT_DISK, &size);
	assert_true(fd >= 0);
	out = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(out >= 0);
	assert_int_equal(sfs_copy_fd(fd, size, out, "overlay.qcow2", 0600), 0);
	assert_int_equal(str_printf(p, sizeof(p), "%s/overlay.qcow2", s->root),
			 0);
	assert_int_equal(read_file_limited(p, 4096, &got, NULL), 0);
	assert_string_equal(got, "QFI\xfb overlay");
	ckpt_verified_clear(&v);
}

/* Removing a job's checkpoints never follows a link out of the store:
 * not a link inside a checkpoint, not a job directory that is one. */
static void test_store_remove_links(void **state)
{
	struct st *s = *state;

	plant_dir(s, "victim", 0700, 0);
	plant_dir(s, "victim/1", 0700, 0);
	put(s->root, "victim/1/precious", "keep me");
	put(s->root, "victim/1/" CKPT_MANIFEST, "{}");
	save(s, "RAM one", false);
	plant_link(s, "42/1/link", "victim");
	plant_link(s, "7", "victim");
	assert_int_equal(ckpt_store_remove_job(&s->cs, 42), 0);
	assert_false(there(s, "42"));
	assert_int_equal(ckpt_store_remove_job(&s->cs, 7), -ELOOP);
	assert_int_equal(ckpt_store_gc(&s->cs, 0, 0), 0);
	assert_true(there(s, "victim/1/precious"));
	assert_true(there(s, "victim/1/" CKPT_MANIFEST));
}

/* What a user's kept checkpoints take in a store (the limits), and the
 * room on its file system (a tiny tmpfs, in a mount namespace of this
 * test's own: root only). */
static void test_store_kept_room(void **state)
{
	struct st *s = *state;
	struct ckpt_kept k;
	uint64_t avail = 0;

	save(s, "RAM one", false); /* job 42, uid 1000, keep */
	plant_dir(s, "50", 0700, 0);
	plant_dir(s, "50/1", 0700, 0);
	forge(s, "50/1", 50);
	plant_dir(s, "51", 0700, 0);
	plant_dir(s, "51/1", 0700, 0);
	forge(s, "51/1", 51);
	assert_int_equal(ckpt_store_kept(&s->cs, 1000, 0, &k), 0);
	assert_int_equal(k.count, 3);
	assert_int_equal(k.bytes, 7 + 12 + 2 * 123);
	assert_int_equal(k.newest_job, 51);
	assert_int_equal(ckpt_store_kept(&s->cs, 1000, 42, &k), 0);
	assert_int_equal(k.count, 2);
	assert_int_equal(ckpt_store_kept(&s->cs, 1001, 0, &k), 0);
	assert_int_equal(k.count, 0);
	assert_int_equal(ckpt_store_avail(&s->cs, &avail), 0);
	assert_true(avail > 0);
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		print_message("no tmpfs: not root\n");
		return;
	}
	{
		struct ckpt_store tiny = CKPT_STORE_INIT;
		char p[VMENV_MAX_PATH], err[512] = "";

		plant_dir(s, "tiny", 0700, 0);
		path_in(s, p, sizeof(p), "tiny");
		assert_int_equal(mount("tmpfs", p, "tmpfs", 0, "size=1m"), 0);
		assert_int_equal(ckpt_store_open(p, CKPT_STORE_NODE, &tiny, err,
						 sizeof(err)),
				 0);
		assert_int_equal(ckpt_store_avail(&tiny, &avail), 0);
		assert_true(avail <= (1u << 20));
		ckpt_store_close(&tiny);
		assert_int_equal(umount(p), 0);
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
	    cmocka_unit_test_setup_teardown(test_store_mount_files, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_interrupted, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_corrupt, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_refused_dirs, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_path, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_files_refused, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_swap_after_verify,
					    st_setup, st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_remove_links, st_setup,
					    st_teardown),
	    cmocka_unit_test_setup_teardown(test_store_kept_room, st_setup,
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
