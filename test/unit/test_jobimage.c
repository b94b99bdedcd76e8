// SPDX-License-Identifier: MIT
/*
 * vmmd's image path, in-process against the fake hypervisor and fake Slurm
 * (as test_vmmd.c): a catalog in the current format whose files are file://
 * sources in a temp directory, fetched by the real worker threads into a
 * real cache, overlays made by the real qemu-img. Checks the job states
 * (preparing, then booting), the domain XML's disk, leases, that eight jobs
 * asking at once cause one download, that a tampered image fails its job
 * naming the image and leaves nothing in the cache, users' own images
 * behind allow_user_images, and that reconcile drops stale leases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testlog.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "digest.h"
#include "fakes.h"
#include "image.h"
#include "job.h"
#include "log.h"
#include "proto.h"
#include "rmtree.h"
#include "spec.h"
#include "vmmd.h"

#define NODE	 "n1"
#define WAIT_MS	 10000
#define QEMU_IMG "/usr/bin/qemu-img"

struct fx {
	char dir[64];
	int fds_before;
	struct vmmd d;
	char hex_kernel[65], hex_initrd[65], hex_disk[65], hex_raw[65];
};

static void path_of(const struct fx *f, char *buf, size_t len, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));
static void path_of(const struct fx *f, char *buf, size_t len, const char *fmt,
		    ...)
{
	char rel[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	assert_int_equal(str_printf(buf, len, "%s/%s", f->dir, rel), 0);
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static void write_text(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644), 0);
}

static void sha_of(const char *path, char *hex)
{
	struct digest *dg;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(digest_new(&dg), 0);
	assert_int_equal(digest_fd(dg, fd, (uint64_t)st.st_size, NULL, NULL),
			 0);
	assert_int_equal(digest_final_hex(dg, hex), 0);
	digest_free(dg);
	close(fd);
}

static uint64_t size_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Runs argv, quietly; its exit code. */
static int run(const char *const *argv)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool have_qemu_img(void)
{
	return access(QEMU_IMG, X_OK) == 0;
}

/* "key":{"source":...,"sha256":...,"size":N[,"format":...]} */
static const char *file_json(char *buf, size_t len, const char *key,
			     const char *src, const char *hex, uint64_t size,
			     const char *format)
{
	snprintf(
	    buf, len,
	    "\"%s\":{\"source\":\"%s\",\"sha256\":\"%s\",\"size\":%llu%s%s%s}",
	    key, src, hex, (unsigned long long)size,
	    format ? ",\"format\":\"" : "", format ? format : "",
	    format ? "\"" : "");
	return buf;
}

static void add_image(char *text, size_t len, const char *name,
		      const char *boot, const char *files, const char *cmdline)
{
	size_t used = strlen(text);

	snprintf(text + used, len - used,
		 "%s{\"name\":\"%s\",\"versions\":[{\"version\":\"1\","
		 "\"boot\":\"%s\",%s%s%s%s}]}",
		 strchr(text, '{') && text[used - 1] != '[' ? "," : "", name,
		 boot, files, cmdline ? ",\"cmdline\":\"" : "",
		 cmdline ? cmdline : "", cmdline ? "\"" : "");
}

/* The source files and a catalog naming them (mostly relative to it). */
static void write_sources(struct fx *f)
{
	char p[256], text[8192] = "{\"images\":[";
	char kernel[256], initrd[256], disk[256], raw[256];
	char fk[512], fi[512], fd[512], files[2048];

	path_of(f, p, sizeof(p), "src");
	assert_int_equal(mkdir(p, 0755), 0);
	path_of(f, kernel, sizeof(kernel), "src/vmlinuz");
	write_text(kernel, "KERNEL\n");
	sha_of(kernel, f->hex_kernel);
	path_of(f, initrd, sizeof(initrd), "src/initrd.img");
	write_text(initrd, "INITRD\n");
	sha_of(initrd, f->hex_initrd);
	path_of(f, raw, sizeof(raw), "src/disk.raw");
	write_text(raw, "a raw disk\n");
	assert_int_equal(truncate(raw, 1 << 20), 0);
	sha_of(raw, f->hex_raw);
	path_of(f, disk, sizeof(disk), "src/disk.qcow2");
	if (have_qemu_img()) {
		const char *argv[] = {QEMU_IMG, "create", "-q",	 "-f",
				      "qcow2",	disk,	  "64M", NULL};
		assert_int_equal(run(argv), 0);
	} else {
		write_text(disk, "not really qcow2\n");
	}
	sha_of(disk, f->hex_disk);

	file_json(fk, sizeof(fk), "kernel", "src/vmlinuz", f->hex_kernel,
		  size_of(kernel), NULL);
	file_json(fi, sizeof(fi), "initrd", "src/initrd.img", f->hex_initrd,
		  size_of(initrd), NULL);
	snprintf(files, sizeof(files), "%s,%s", fk, fi);
	add_image(text, sizeof(text), "k", "kernel", files, "console=ttyS0");
	file_json(fd, sizeof(fd), "disk", "src/disk.qcow2", f->hex_disk,
		  size_of(disk), "qcow2");
	snprintf(files, sizeof(files), "%s,%s,%s", fd, fk, fi);
	add_image(text, sizeof(text), "dk", "disk-kernel", files,
		  "root=/dev/vda");
	/* An absolute path source. */
	add_image(text, sizeof(text), "raw", "disk",
		  file_json(fd, sizeof(fd), "disk", raw, f->hex_raw,
			    size_of(raw), "raw"),
		  NULL);
	/* The checksum of another file. */
	add_image(text, sizeof(text), "bad", "disk",
		  file_json(fd, sizeof(fd), "disk", "src/disk.raw",
			    f->hex_kernel, size_of(raw), "raw"),
		  NULL);
	add_image(text, sizeof(text), "gone", "disk",
		  file_json(fd, sizeof(fd), "disk", "src/nothing.raw",
			    f->hex_raw, 5, "raw"),
		  NULL);
	strcat(text, "]}");
	path_of(f, p, sizeof(p), "catalog.json");
	write_text(p, text);
}

static void slurm_job(const struct fx *f, uint32_t id)
{
	struct slurmjob_info si = {
	    .job_id = id,
	    .uid = (uint32_t)getuid(),
	    .gid = (uint32_t)getgid(),
	    .active = true,
	    .on_node = true,
	    .cpus = 1,
	    .mem_mib = 1024,
	    .cpu_ids = "0",
	    .node_cores = 2,
	};

	path_of(f, si.work_dir, sizeof(si.work_dir), "work");
	fake_slurm_set(&si);
}

static int count_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vmmd_config *c;
	struct passwd *pw;
	char p[256];

	assert_non_null(f);
	f->fds_before = count_fds();
	log_reset();
	log_set_sink(log_sink);
	log_set_level(LOG_DEBUG);
	strcpy(f->dir, "/tmp/vmenv-jobimg-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(chmod(f->dir, 0755), 0);
	path_of(f, p, sizeof(p), "work");
	assert_int_equal(mkdir(p, 0755), 0);
	write_sources(f);

	c = &f->d.cfg;
	config_defaults(c, NODE);
	path_of(f, c->run_dir, sizeof(c->run_dir), "run");
	path_of(f, c->console_dir, sizeof(c->console_dir), "console");
	path_of(f, c->checkpoint_dir, sizeof(c->checkpoint_dir), "ckpt");
	c->checkpoint_probe_mib = 0;
	path_of(f, c->socket_path, sizeof(c->socket_path), "run/vmmd.sock");
	path_of(f, c->catalog, sizeof(c->catalog), "catalog.json");
	path_of(f, c->image_cache, sizeof(c->image_cache), "cache");
	/* Absent until a test writes policies: no site policies. */
	path_of(f, c->policy_dir, sizeof(c->policy_dir), "policies");
	c->fetch_retries = 0;
	/* The build's download helper, as nobody (root runs the tests). */
	snprintf(c->fetch_helper, sizeof(c->fetch_helper), "%s",
		 TEST_BUILDDIR "/fetch/vmenv-fetch");
	snprintf(c->fetch_user, sizeof(c->fetch_user), "nobody");
	/* Placement on a 2-CPU fixture node without devices. */
	snprintf(c->sysfs_root, sizeof(c->sysfs_root), "%s",
		 TEST_DATADIR "/sysfs/plain/sys");
	snprintf(c->proc_root, sizeof(c->proc_root), "%s",
		 TEST_DATADIR "/sysfs/plain/proc");
	path_of(f, c->gres_conf, sizeof(c->gres_conf), "gres.conf");
	snprintf(c->mem_limit, sizeof(c->mem_limit), "domain");
	pw = getpwuid(getuid());
	assert_non_null(pw);
	snprintf(c->slurm_user, sizeof(c->slurm_user), "%s", pw->pw_name);
	f->d.hv = &fake_hv_ops;
	f->d.slurm_lookup = fake_slurm_lookup;
	fake_hv_reset();
	fake_slurm_reset();
	for (uint32_t id = 40; id < 50; id++)
		slurm_job(f, id);
	assert_int_equal(vmmd_init(&f->d), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vmmd_fini(&f->d);
	fake_hv_reset();
	log_set_sink(NULL);
	assert_int_equal(rm_rf(f->dir), 0);
	/* Threads, pipes, qemu-img's output: nothing left open. */
	assert_int_equal(count_fds(), f->fds_before);
	free(f);
	return 0;
}

/* --- driving vmmd ------------------------------------------------------- */

static int send_start(struct fx *f, uint32_t id, const char *image)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = id,
	    .start = {.job_id = id,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid()},
	};
	int fd = unix_connect(f->d.cfg.socket_path, 1000);

	assert_true(fd >= 0);
	snprintf(req.start.image, sizeof(req.start.image), "%s", image);
	assert_int_equal(proto_send_request(fd, &req, NULL, 0), 0);
	return fd;
}

static void recv_reply(struct fx *f, int fd, struct proto_reply *rep)
{
	char err[PROTO_MAX_ERROR] = "";
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		int r = proto_recv_reply(fd, 0, rep, err, sizeof(err));
		if (r == 0)
			break;
		if (now_ms() >= end)
			fail_msg("no reply from vmmd: %s", err);
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	close(fd);
}

static void start(struct fx *f, uint32_t id, const char *image,
		  struct proto_reply *rep)
{
	recv_reply(f, send_start(f, id, image), rep);
}

static void start_ok(struct fx *f, uint32_t id, const char *image)
{
	struct proto_reply rep;

	start(f, id, image, &rep);
	if (rep.kind != PROTO_REPLY_OK)
		fail_msg("start refused: %s", rep.error);
}

static struct job *wait_state(struct fx *f, uint32_t id, enum job_state want)
{
	uint64_t end = now_ms() + WAIT_MS;
	struct job *j;

	while (!(j = job_find(&f->d, id)) || j->state != want) {
		if (j && j->state == JOB_FAILED && want != JOB_FAILED)
			fail_msg("job %u failed: %s", id, j->error);
		if (now_ms() >= end)
			fail_msg("job %u never became %s (is %s)", id,
				 job_state_name(want),
				 j ? job_state_name(j->state) : "gone");
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	}
	return j;
}

static unsigned count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n +=
		    strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static unsigned leases(struct fx *f, const char *hex)
{
	char p[256];

	path_of(f, p, sizeof(p), "cache/leases/%s", hex);
	return count_dir(p);
}

/* Only complete blobs: no partial file left by anything. */
static void no_partial_files(struct fx *f)
{
	char p[256];
	DIR *d;
	struct dirent *e;

	path_of(f, p, sizeof(p), "cache/sha256");
	d = opendir(p);
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".part"))
			fail_msg("partial file left: %s", e->d_name);
	closedir(d);
}

static bool cached(struct fx *f, const char *hex)
{
	char p[256];

	path_of(f, p, sizeof(p), "cache/sha256/%s", hex);
	return exists(p);
}

static void stop(struct fx *f, uint32_t id)
{
	assert_int_equal(job_stop(&f->d, id), 0);
}

/* --- tests --------------------------------------------------------------- */

/* Kernel and initrd come through the cache; the job boots from its own
 * copies and holds no lease on them afterwards. */
static void test_kernel_image(void **state)
{
	struct fx *f = *state;
	char p[256], *text = NULL;
	struct job *j;

	start_ok(f, 40, "k");
	j = job_find(&f->d, 40);
	assert_non_null(j);
	assert_int_equal(j->state, JOB_PREPARING);
	assert_int_equal(fake_hv.ncreate, 0);
	wait_state(f, 40, JOB_BOOTING);
	assert_int_equal(fake_hv.ncreate, 1);
	assert_true(cached(f, f->hex_kernel));
	assert_true(cached(f, f->hex_initrd));
	path_of(f, p, sizeof(p), "run/jobs/40/boot/vmlinuz");
	assert_int_equal(read_file_limited(p, 100, &text, NULL), 0);
	assert_string_equal(text, "KERNEL\n");
	free(text);
	assert_contains(fake_hv.last_xml, p);
	assert_contains(fake_hv.last_xml, "<cmdline>console=ttyS0</cmdline>");
	assert_null(strstr(fake_hv.last_xml, "<disk"));
	assert_int_equal(leases(f, f->hex_kernel), 0);
	assert_int_equal(leases(f, f->hex_initrd), 0);
	no_partial_files(f);
	/* The state file does not name a base: there is no disk. */
	path_of(f, p, sizeof(p), "run/jobs/40/state");
	assert_int_equal(read_file_limited(p, 4096, &text, NULL), 0);
	assert_null(strstr(text, "base="));
	free(text);
	stop(f, 40);
	/* A second job finds everything cached. */
	start_ok(f, 41, "k");
	wait_state(f, 41, JOB_BOOTING);
	assert_int_equal(log_count("downloaded"), 2);
	stop(f, 41);
}

static void test_disk_image(void **state)
{
	struct fx *f = *state;
	char overlay[256], base[256], lease[256], *text = NULL;
	unsigned char hdr[4];
	int fd;

	if (!have_qemu_img())
		skip();
	start_ok(f, 42, "dk");
	wait_state(f, 42, JOB_BOOTING);
	path_of(f, overlay, sizeof(overlay), "run/jobs/42/disk/overlay.qcow2");
	path_of(f, base, sizeof(base), "cache/sha256/%s", f->hex_disk);
	fd = open(overlay, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, hdr, 4), 4);
	close(fd);
	assert_memory_equal(hdr, "QFI\xfb", 4);
	/* The overlay names the cached base as its backing file. */
	assert_int_equal(read_file_limited(overlay, 1 << 20, &text, NULL), 0);
	assert_non_null(memmem(text, 1 << 16, base, strlen(base)));
	free(text);
	assert_contains(fake_hv.last_xml, "<source file='");
	assert_contains(fake_hv.last_xml, overlay);
	assert_contains(fake_hv.last_xml, "<format type='qcow2'/>");
	assert_contains(fake_hv.last_xml, base);
	assert_contains(fake_hv.last_xml,
			"<seclabel model='dac' relabel='no'/>");
	assert_contains(fake_hv.last_xml, "<target dev='vda' bus='virtio'/>");
	assert_contains(fake_hv.last_xml, "<kernel>");
	/* Placed once the image was ready: pinned to the job's CPU, the
	 * job's memory as the hard limit. */
	assert_contains(fake_hv.last_xml, "<vcpupin vcpu='0' cpuset='0'/>");
	assert_contains(fake_hv.last_xml,
			"<hard_limit unit='MiB'>1024</hard_limit>");
	/* The base is root's and read-only for everyone else. */
	assert_int_equal(size_of(base) > 0, 1);
	struct stat st;
	assert_int_equal(stat(base, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	path_of(f, lease, sizeof(lease), "cache/leases/%s/n1.42", f->hex_disk);
	assert_true(exists(lease));
	path_of(f, lease, sizeof(lease), "run/jobs/42/state");
	assert_int_equal(read_file_limited(lease, 4096, &text, NULL), 0);
	assert_contains(text, "base=");
	assert_contains(text, f->hex_disk);
	free(text);
	stop(f, 42);
	assert_false(exists(overlay));
	assert_int_equal(leases(f, f->hex_disk), 0);
	/* The base stays cached for the next job. */
	assert_true(cached(f, f->hex_disk));
}

/* Eight jobs asking at once for an image not yet cached: one download,
 * eight leases, eight guests. */
static void test_concurrent_one_download(void **state)
{
	struct fx *f = *state;
	int fds[8];

	if (!have_qemu_img())
		skip();
	for (uint32_t i = 0; i < 8; i++)
		fds[i] = send_start(f, 40 + i, "dk");
	for (uint32_t i = 0; i < 8; i++) {
		struct proto_reply rep;
		recv_reply(f, fds[i], &rep);
		assert_int_equal(rep.kind, PROTO_REPLY_OK);
	}
	for (uint32_t i = 0; i < 8; i++)
		wait_state(f, 40 + i, JOB_BOOTING);
	assert_int_equal(log_count("image 'dk:1' disk: downloaded"), 1);
	assert_int_equal(log_count("image 'dk:1' disk: joins the download"), 7);
	assert_int_equal(leases(f, f->hex_disk), 8);
	assert_int_equal(fake_hv.ncreate, 8);
	for (uint32_t i = 0; i < 8; i++)
		stop(f, 40 + i);
	assert_int_equal(leases(f, f->hex_disk), 0);
}

/* A file that does not match its checksum: the job fails naming the
 * image, nothing is cached, and the next good job still works. */
static void test_tampered(void **state)
{
	struct fx *f = *state;
	struct job *j;

	start_ok(f, 43, "bad");
	j = wait_state(f, 43, JOB_FAILED);
	print_message("%s\n", j->error);
	assert_contains(j->error, "job 43: image 'bad:1' disk: sha256 "
				  "mismatch");
	assert_contains(j->error, "refused, not cached");
	assert_int_equal(fake_hv.ncreate, 0);
	assert_false(cached(f, f->hex_kernel)); /* the claimed checksum */
	assert_false(cached(f, f->hex_raw));
	no_partial_files(f);
	stop(f, 43);
	start_ok(f, 44, "k");
	wait_state(f, 44, JOB_BOOTING);
	stop(f, 44);
}

static void test_missing_source(void **state)
{
	struct fx *f = *state;
	struct job *j;

	start_ok(f, 45, "gone");
	j = wait_state(f, 45, JOB_FAILED);
	print_message("%s\n", j->error);
	assert_contains(j->error, "job 45: image 'gone:1' disk: file://");
	assert_contains(j->error, "nothing.raw");
	no_partial_files(f);
	stop(f, 45);
}

/* An absolute path disk image from the catalog, raw, no kernel: the
 * guest boots from the disk. */
static void test_raw_disk_boot(void **state)
{
	struct fx *f = *state;

	if (!have_qemu_img())
		skip();
	start_ok(f, 46, "raw:1");
	wait_state(f, 46, JOB_BOOTING);
	assert_contains(fake_hv.last_xml, "<boot dev='hd'/>");
	assert_contains(fake_hv.last_xml, "<format type='raw'/>");
	assert_null(strstr(fake_hv.last_xml, "<kernel>"));
	stop(f, 46);
}

static void test_user_image(void **state)
{
	struct fx *f = *state;
	char img[256], bk[256], ref[300], p[256];
	struct proto_reply rep;
	struct job *j;

	if (!have_qemu_img())
		skip();
	path_of(f, img, sizeof(img), "work/mine.raw");
	write_text(img, "my disk\n");
	/* Off by default: the site policy (image_paths) refuses. */
	start(f, 47, img, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "image_paths: no");
	stop(f, 47);
	/* A policy allows paths: the node's switch still says no. */
	path_of(f, p, sizeof(p), "policies");
	assert_int_equal(mkdir(p, 0755), 0);
	path_of(f, p, sizeof(p), "policies/10-own.json");
	write_text(p, "{\"image_paths\": {\"enforce\": true}}");
	assert_int_equal(spec_policies_load(&f->d), 0);
	start(f, 47, img, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "image paths are not allowed on node n1 "
				   "(allow_user_images = no)");
	stop(f, 47);
	snprintf(f->d.cfg.allow_user_images, 4, "yes");
	start_ok(f, 47, img);
	wait_state(f, 47, JOB_BOOTING);
	assert_contains(fake_hv.last_xml, img);
	assert_contains(fake_hv.last_xml, "<format type='raw'/>");
	assert_contains(fake_hv.last_xml, "relabel='no'");
	stop(f, 47);
	/* Still a clean path only. */
	snprintf(ref, sizeof(ref), "%s/../work/mine.raw", f->dir);
	start(f, 48, ref, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "invalid image name");
	/* A qcow2 that would make QEMU open another file. */
	path_of(f, bk, sizeof(bk), "work/backed.qcow2");
	{
		const char *argv[] = {QEMU_IMG, "create", "-q", "-f",
				      "qcow2",	"-b",	  img,	"-F",
				      "raw",	bk,	  NULL};
		assert_int_equal(run(argv), 0);
	}
	start(f, 48, bk, &rep);
	assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
	assert_contains(rep.error, "refers to other files");
	j = wait_state(f, 48, JOB_FAILED);
	assert_contains(j->error, "refers to other files");
	stop(f, 48);
	/* Not the job user's file. */
	if (getuid() == 0) {
		assert_int_equal(chown(img, 65534, 65534), 0);
		start(f, 49, img, &rep);
		assert_int_equal(rep.kind, PROTO_REPLY_ERROR);
		assert_contains(rep.error, "owned by the job's user");
		stop(f, 49);
	}
}

/* Leases of jobs this node no longer knows are dropped by reconcile;
 * another node's are not touched. */
static void test_lease_sweep(void **state)
{
	struct fx *f = *state;
	char p[256];

	start_ok(f, 40, "k");
	wait_state(f, 40, JOB_BOOTING);
	path_of(f, p, sizeof(p), "cache/leases/%s", f->hex_kernel);
	assert_int_equal(mkdir_p(p, 0755), 0);
	path_of(f, p, sizeof(p), "cache/leases/%s/n1.999", f->hex_kernel);
	write_text(p, "");
	path_of(f, p, sizeof(p), "cache/leases/%s/n2.999", f->hex_kernel);
	write_text(p, "");
	path_of(f, p, sizeof(p), "cache/leases/%s/n1.40", f->hex_kernel);
	write_text(p, "");
	job_reconcile(&f->d, false);
	path_of(f, p, sizeof(p), "cache/leases/%s/n1.999", f->hex_kernel);
	assert_false(exists(p));
	path_of(f, p, sizeof(p), "cache/leases/%s/n2.999", f->hex_kernel);
	assert_true(exists(p));
	path_of(f, p, sizeof(p), "cache/leases/%s/n1.40", f->hex_kernel);
	assert_true(exists(p));
	stop(f, 40);
}

/* A job stopped while its image is being prepared leaves nothing. */
static void test_stop_while_preparing(void **state)
{
	struct fx *f = *state;
	char p[256];

	start_ok(f, 40, "k");
	assert_int_equal(job_find(&f->d, 40)->state, JOB_PREPARING);
	stop(f, 40);
	assert_null(job_find(&f->d, 40));
	/* Whatever the download does now, it tells no job. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(loop_run_once(f->d.loop, 10), 0);
	assert_int_equal(fake_hv.ncreate, 0);
	path_of(f, p, sizeof(p), "run/jobs/40");
	assert_false(exists(p));
	assert_int_equal(leases(f, f->hex_kernel), 0);
	no_partial_files(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kernel_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disk_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_one_download, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_source, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_raw_disk_boot, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_user_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_sweep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_while_preparing, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
