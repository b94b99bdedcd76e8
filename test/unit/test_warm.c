// SPDX-License-Identifier: MIT
/*
 * Unit tests for warm start's pure parts (vmmd/warm/): libvirt's save
 * image read and written again under another XML (the stream untouched,
 * the cookie kept, foreign files refused), the template key (one for
 * guests that differ only in what is the job's, another for any guest
 * difference; ineligible guests refused), and the template maker's
 * handshake against a scripted agent on a socketpair (held, not an
 * init agent, refused, silent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentwire.h"
#include "cleanup.h"
#include "domxml.h"
#include "overlay.h"
#include "saveimg.h"
#include "util.h"
#include "warmclaim.h"
#include "warmdisk.h"
#include "warmkey.h"
#include "warmmake.h"

/* --- save images ------------------------------------------------------- */

#define XML0   "<domain><name>vmenv-tmpl-vm</name><uuid>x</uuid></domain>"
#define COOKIE "<cookie><cpu mode='custom'/></cookie>"

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A save image as libvirt writes one: header, XML and cookie padded, then
 * a stream of n bytes (i & 0xff). */
static int fake_image(uint32_t format, uint32_t data_len, size_t n)
{
	char path[] = "/tmp/test_warm.XXXXXX";
	int fd = mkstemp(path);
	uint8_t h[SAVEIMG_HDR_LEN] = {0};
	_cleanup_free_ char *data = calloc(1, data_len);
	_cleanup_free_ uint8_t *stream = malloc(n);

	assert_true(fd >= 0 && data && stream);
	unlink(path);
	memcpy(h, "LibvirtQemudSave", 16);
	put32(h + 16, 2);
	put32(h + 20, data_len);
	put32(h + 24, 1);
	put32(h + 28, format);
	put32(h + 32, (uint32_t)sizeof(XML0));
	memcpy(data, XML0, sizeof(XML0));
	memcpy(data + sizeof(XML0), COOKIE, sizeof(COOKIE));
	for (size_t i = 0; i < n; i++)
		stream[i] = (uint8_t)i;
	assert_int_equal(write_full(fd, h, sizeof(h)), 0);
	assert_int_equal(write_full(fd, data, data_len), 0);
	assert_int_equal(write_full(fd, stream, n), 0);
	return fd;
}

static int tmp_fd(void)
{
	char path[] = "/tmp/test_warm.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void test_saveimg_roundtrip(void **state)
{
	const size_t n = 3 * 4096 + 77;
	_cleanup_close_ int in = fake_image(0, 8192, n);
	_cleanup_close_ int out = tmp_fd();
	struct saveimg a, b;
	char why[256];
	_cleanup_free_ uint8_t *s1 = malloc(n), *s2 = malloc(n);
	const char *xml = "<domain><name>vmenv-vm-42</name><uuid>"
			  "01234567-89ab-4def-8123-456789abcdef</uuid>"
			  "</domain>";
	_cleanup_free_ char *got = NULL;

	(void)state;
	assert_int_equal(saveimg_read(in, &a, why, sizeof(why)), 0);
	assert_int_equal(a.data_len, 8192);
	assert_int_equal(a.stream_off, SAVEIMG_HDR_LEN + 8192);
	assert_int_equal(a.stream_len, n);
	assert_string_equal(a.cookie, COOKIE);
	assert_int_equal(a.was_running, 1);
	assert_int_equal(saveimg_write(in, &a, xml, out, why, sizeof(why)), 0);
	assert_int_equal(saveimg_read(out, &b, why, sizeof(why)), 0);
	/* The stream starts on a 4 KiB boundary and is the template's. */
	assert_int_equal(b.stream_off % 4096, 0);
	assert_int_equal(b.stream_len, n);
	assert_string_equal(b.cookie, COOKIE);
	assert_int_equal(pread(in, s1, n, (off_t)a.stream_off), (ssize_t)n);
	assert_int_equal(pread(out, s2, n, (off_t)b.stream_off), (ssize_t)n);
	assert_memory_equal(s1, s2, n);
	/* The XML is the job's. */
	got = calloc(1, strlen(xml) + 1);
	assert_int_equal(pread(out, got, strlen(xml), SAVEIMG_HDR_LEN),
			 (ssize_t)strlen(xml));
	assert_string_equal(got, xml);
	saveimg_clear(&a);
	saveimg_clear(&b);
}

static void test_saveimg_refused(void **state)
{
	struct saveimg a;
	char why[256];
	int fd;

	(void)state;
	fd = fake_image(1, 8192, 100); /* gzip */
	assert_int_equal(saveimg_read(fd, &a, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "compressed"));
	close(fd);
	/* data_len past the end of the file. */
	fd = fake_image(0, 8192, 0);
	assert_int_equal(ftruncate(fd, SAVEIMG_HDR_LEN + 100), 0);
	assert_int_equal(saveimg_read(fd, &a, why, sizeof(why)), -EINVAL);
	close(fd);
	/* An unfinished save (libvirt's partial magic). */
	fd = fake_image(0, 8192, 10);
	assert_int_equal(pwrite(fd, "LibvirtQemudPart", 16, 0), 16);
	assert_int_equal(saveimg_read(fd, &a, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "magic"));
	close(fd);
	/* Not a plain file. */
	fd = open("/dev/null", O_RDONLY);
	assert_int_equal(saveimg_read(fd, &a, why, sizeof(why)), -EINVAL);
	close(fd);
}

static void test_saveimg_uuid(void **state)
{
	char u1[37], u2[37];
	_cleanup_free_ char *x = NULL;
	char *y = NULL;

	(void)state;
	assert_int_equal(saveimg_new_uuid(u1), 0);
	assert_int_equal(saveimg_new_uuid(u2), 0);
	assert_int_equal(strlen(u1), 36);
	assert_string_not_equal(u1, u2);
	assert_int_equal(u1[14], '4'); /* version 4 */
	assert_int_equal(
	    saveimg_xml_with_uuid("<domain><name>n</name></domain>", u1, &x),
	    0);
	assert_non_null(strstr(x, "<name>n</name><uuid>"));
	assert_non_null(strstr(x, u1));
	/* One that has a UUID, or no name, is refused. */
	assert_int_equal(saveimg_xml_with_uuid(x, u2, &y), -EINVAL);
	assert_int_equal(saveimg_xml_with_uuid("<domain/>", u2, &y), -EINVAL);
	assert_null(y);
}

/* --- the key ----------------------------------------------------------- */

static struct dom_placement place1, place2;

static void spec_job(struct dom_spec *s, struct dom_placement *p, uint32_t job,
		     uint16_t cpu)
{
	static char name[2][64], agent[2][64];
	int k = job & 1;

	memset(p, 0, sizeof(*p));
	p->nvcpus = 1;
	p->pin[0] = cpu;
	p->sockets = p->cores = p->threads = 1;
	p->ncells = 1;
	p->cell[0].host_node = cpu;
	cpuset_set(&p->cell[0].vcpus, 0);
	p->cell[0].mem_mib = 384;
	p->hard_limit_mib = 500 + job;
	snprintf(name[k], sizeof(name[k]), "vmenv-vm-%u", job);
	snprintf(agent[k], sizeof(agent[k]), "/run/vmenv/vm/jobs/%u/agent.sock",
		 job);
	*s = (struct dom_spec){
	    .name = name[k],
	    .type = "qemu",
	    .job_id = job,
	    .node = "vm",
	    .uid = 1000 + job,
	    .gid = 1000 + job,
	    .vcpus = 1,
	    .mem_mib = 384,
	    .place = p,
	    .kernel = job & 1 ? "/run/a/kernel" : "/run/b/kernel",
	    .initrd = job & 1 ? "/run/a/initrd" : "/run/b/initrd",
	    .cmdline = "console=ttyS0 quiet",
	    .console_log = job & 1 ? "/var/log/a.log" : "/var/log/b.log",
	    .agent_sock = agent[k],
	    .share_dir = job & 1 ? "/home/u1/w" : "/home/u2/x",
	    .share_tag = "vmenv.workdir",
	};
}

static void test_key_same_guest(void **state)
{
	struct dom_spec a, b;
	char ka[WARM_KEY_LEN + 1], kb[WARM_KEY_LEN + 1];

	(void)state;
	spec_job(&a, &place1, 41, 0);
	spec_job(&b, &place2, 42, 1);
	assert_int_equal(warm_key(&a, "kernel k initrd i", ka), 0);
	assert_int_equal(warm_key(&b, "kernel k initrd i", kb), 0);
	/* Name, owner, paths, pinning, host node and limit are the job's. */
	assert_string_equal(ka, kb);
	assert_int_equal(strlen(ka), WARM_KEY_LEN);
}

static void test_key_other_guest(void **state)
{
	struct dom_spec a, b;
	char ka[WARM_KEY_LEN + 1], kb[WARM_KEY_LEN + 1];

	(void)state;
	spec_job(&a, &place1, 41, 0);
	assert_int_equal(warm_key(&a, "kernel k initrd i", ka), 0);
	/* Another image version. */
	assert_int_equal(warm_key(&a, "kernel k2 initrd i", kb), 0);
	assert_string_not_equal(ka, kb);
	/* More memory. */
	spec_job(&b, &place2, 42, 0);
	b.mem_mib = place2.cell[0].mem_mib = 512;
	assert_int_equal(warm_key(&b, "kernel k initrd i", kb), 0);
	assert_string_not_equal(ka, kb);
	/* Another kernel command line. */
	spec_job(&b, &place2, 42, 0);
	b.cmdline = "console=ttyS0";
	assert_int_equal(warm_key(&b, "kernel k initrd i", kb), 0);
	assert_string_not_equal(ka, kb);
	/* A bulk port more: another device set. */
	spec_job(&b, &place2, 42, 0);
	b.bulk_ports = 1;
	b.bulk_sock_prefix = "/run/q/bulk.";
	assert_int_equal(warm_key(&b, "kernel k initrd i", kb), 0);
	assert_string_not_equal(ka, kb);
}

static void test_key_not_eligible(void **state)
{
	struct dom_spec s;
	char why[128];

	(void)state;
	spec_job(&s, &place1, 41, 0);
	s.kernel = s.initrd = NULL;
	s.disk_overlay = "/o.qcow2";
	s.disk_base = "/b";
	s.disk_base_format = "qcow2";
	assert_false(warm_eligible(&s, why, sizeof(why)));
	assert_string_equal(why, "the image boots from its disk");
}

/* An image with a disk (debian12): each job's overlay is its own, the
 * base is the cache's; the template keeps its own overlay over that base,
 * whose path the overlay names, so the base's path is in the key. */
static void test_key_disk(void **state)
{
	struct dom_spec a, b;
	char ka[WARM_KEY_LEN + 1], kb[WARM_KEY_LEN + 1], kc[WARM_KEY_LEN + 1];
	static const char boot[] = "kernel k initrd i disk d";

	(void)state;
	spec_job(&a, &place1, 41, 0);
	assert_int_equal(warm_key(&a, "kernel k initrd i", kc), 0);
	a.disk_overlay = "/run/vmenv/vm/jobs/41/disk/overlay.qcow2";
	a.disk_base = "/var/cache/vmenv/blobs/d";
	a.disk_base_format = "qcow2";
	spec_job(&b, &place2, 42, 1);
	b.disk_overlay = "/run/vmenv/vm/jobs/42/disk/overlay.qcow2";
	b.disk_base = a.disk_base;
	b.disk_base_format = "qcow2";
	assert_int_equal(warm_key(&a, boot, ka), 0);
	assert_int_equal(warm_key(&b, boot, kb), 0);
	assert_string_equal(ka, kb);
	/* Without the disk: another guest. */
	assert_string_not_equal(ka, kc);
	/* Another cache (the template's overlay would name a base that is
	 * not there). */
	b.disk_base = "/srv/cache/blobs/d";
	assert_int_equal(warm_key(&b, boot, kb), 0);
	assert_string_not_equal(ka, kb);
}

/* What a template booted from, against the catalog: a new version of its
 * image (other digests), or the image gone, and it is not listed. */
static char *hex64(char c, char *buf)
{
	memset(buf, c, 64);
	buf[64] = '\0';
	return buf;
}

/* Image x (kernel and initrd: kernel digest k) and image d (with a
 * disk). */
static void catalog_of(char k, struct catalog *c)
{
	char json[2048], err[256], h[5][65];
	static const char file[] =
	    "\"%s\":{\"source\":\"f\",\"sha256\":\"%s\",\"size\":5}";
	char kx[160], ix[160], kd[160], id[160];

	snprintf(kx, sizeof(kx), file, "kernel", hex64(k, h[0]));
	snprintf(ix, sizeof(ix), file, "initrd", hex64('b', h[1]));
	snprintf(kd, sizeof(kd), file, "kernel", hex64('c', h[2]));
	snprintf(id, sizeof(id), file, "initrd", hex64('d', h[3]));
	snprintf(json, sizeof(json),
		 "{\"images\":[{\"name\":\"x\",\"versions\":[{\"version\":"
		 "\"1\",\"boot\":\"kernel\",%s,%s}]},{\"name\":\"d\","
		 "\"versions\":[{\"version\":\"1\",\"boot\":\"disk-kernel\","
		 "%s,%s,\"disk\":{\"source\":\"q\",\"sha256\":\"%s\",\"size\":"
		 "5,\"format\":\"qcow2\"}}]}]}",
		 kx, ix, kd, id, hex64('e', h[4]));
	assert_int_equal(catalog_parse_base(json, strlen(json), "http://h/", c,
					    err, sizeof(err)),
			 0);
}

static void test_boot_listed(void **state)
{
	struct catalog c = {0};
	char boot_x[300], boot_d[300], want[300], h[3][65];

	(void)state;
	catalog_of('a', &c);
	assert_int_equal(
	    catalog_boot_digest(&c.images[0], boot_x, sizeof(boot_x)), 0);
	snprintf(want, sizeof(want), "kernel %s initrd %s", hex64('a', h[0]),
		 hex64('b', h[1]));
	assert_string_equal(boot_x, want);
	assert_int_equal(
	    catalog_boot_digest(&c.images[1], boot_d, sizeof(boot_d)), 0);
	snprintf(want, sizeof(want), "kernel %s initrd %s disk %s",
		 hex64('c', h[0]), hex64('d', h[1]), hex64('e', h[2]));
	assert_string_equal(boot_d, want);
	assert_true(warm_boot_listed(&c, boot_x));
	assert_true(warm_boot_listed(&c, boot_d));
	catalog_clear(&c);
	/* x's new version: its old template is not listed; d's still is. */
	catalog_of('f', &c);
	assert_false(warm_boot_listed(&c, boot_x));
	assert_true(warm_boot_listed(&c, boot_d));
	catalog_clear(&c);
}

/* One node makes a template of a shared store; a dead maker's claim is
 * taken over; a node's own claims go when its vmmd starts again. */
static void test_claim(void **state)
{
	char dir[] = "/tmp/test_warm_claim.XXXXXX", who[128], p[128];
	static const char key[] = "k1";
	struct timespec old[2] = {{0, 0}, {0, 0}};
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(warm_claim(dir, key, "vm", 60, who, sizeof(who)), 0);
	assert_int_equal(warm_claim(dir, key, "vm-2", 60, who, sizeof(who)),
			 -EBUSY);
	assert_string_equal(who, "vm");
	assert_int_equal(warm_claim_holder(dir, key, who, sizeof(who)), 0);
	assert_string_equal(who, "vm");
	assert_int_equal(warm_claim(dir, "k2", "vm-2", 60, who, sizeof(who)),
			 0);
	warm_unclaim(dir, key);
	assert_int_equal(warm_claim_holder(dir, key, who, sizeof(who)),
			 -ENOENT);
	assert_int_equal(warm_claim(dir, key, "vm-3", 60, who, sizeof(who)), 0);
	/* vm-3 died making it long ago: vm takes it over. */
	snprintf(p, sizeof(p), "%s/.claim-%s", dir, key);
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 3600;
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	assert_int_equal(warm_claim(dir, key, "vm", 60, who, sizeof(who)), 0);
	assert_int_equal(warm_claim_holder(dir, key, who, sizeof(who)), 0);
	assert_string_equal(who, "vm");
	/* vm's vmmd starts again: its claims go, vm-2's stay. */
	warm_claims_clean(dir, "vm");
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(warm_claim_holder(dir, "k2", who, sizeof(who)), 0);
	assert_string_equal(who, "vm-2");
	warm_unclaim(dir, "k2");
	assert_int_equal(rmdir(dir), 0);
}

/* --- the template's disk ----------------------------------------------- */

#define QEMU_IMG "/usr/bin/qemu-img"

struct disk_dir {
	char dir[64], base[128], ov[128], job[128];
};

static void disk_dir_make(struct disk_dir *t)
{
	char why[256];
	int fd;

	snprintf(t->dir, sizeof(t->dir), "/tmp/test_warm_disk.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->base, sizeof(t->base), "%s/base.raw", t->dir);
	snprintf(t->ov, sizeof(t->ov), "%s/tmpl.qcow2", t->dir);
	snprintf(t->job, sizeof(t->job), "%s/job.qcow2", t->dir);
	fd = open(t->base, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_int_equal(
	    overlay_create(QEMU_IMG, t->base, "raw", t->ov, why, sizeof(why)),
	    0);
}

static void disk_dir_rm(struct disk_dir *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	assert_int_equal(system(cmd), 0);
}

/* The check of a header with one change at off: why, or "" if taken. */
static const char *patched(const struct disk_dir *t, size_t off,
			   const void *bytes, size_t n, const char *base,
			   const char *fmt)
{
	static char why[256];
	uint8_t h[65536];
	int in = open(t->ov, O_RDONLY), out = tmp_fd();
	ssize_t len = pread(in, h, sizeof(h), 0);

	assert_true(len > 0);
	memcpy(h + off, bytes, n);
	assert_int_equal(write_full(out, h, (size_t)len), 0);
	why[0] = '\0';
	warm_disk_check(out, base, fmt, why, sizeof(why));
	close(in);
	close(out);
	return why;
}

static void test_disk_check(void **state)
{
	struct disk_dir t;
	char why[256] = "";
	uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 4}, big[4] = {0, 0x10, 0, 0};
	int fd;

	(void)state;
	disk_dir_make(&t);
	fd = open(t.ov, O_RDONLY);
	/* What qemu-img makes is taken. */
	assert_int_equal(warm_disk_check(fd, t.base, "raw", why, sizeof(why)),
			 0);
	/* Another base, another format, the base itself: refused. */
	assert_int_equal(warm_disk_check(fd, "/other", "raw", why, sizeof(why)),
			 -EPERM);
	assert_non_null(strstr(why, "backing file is not /other"));
	assert_int_equal(warm_disk_check(fd, t.base, "qcow2", why, sizeof(why)),
			 -EPERM);
	assert_non_null(strstr(why, "backing format is not qcow2"));
	close(fd);
	fd = open(t.base, O_RDONLY);
	assert_int_equal(warm_disk_check(fd, t.base, "raw", why, sizeof(why)),
			 -EPERM);
	assert_string_equal(why, "not a qcow2 image");
	close(fd);
	/* What a QEMU turned against root could write into the header: an
	 * external data file (incompatible bit 2), internal snapshots, a
	 * backing name beyond the header. */
	assert_non_null(strstr(patched(&t, 72, one, 8, t.base, "raw"),
			       "incompatible features 0x4"));
	assert_non_null(strstr(patched(&t, 60, one + 4, 4, t.base, "raw"),
			       "internal snapshots"));
	assert_non_null(strstr(patched(&t, 16, big, 4, t.base, "raw"),
			       "out of the header"));
	assert_string_equal(patched(&t, 200, "", 0, t.base, "raw"), "");
	disk_dir_rm(&t);
}

static void test_disk_copy(void **state)
{
	struct disk_dir t;
	char why[256] = "", lnk[160];
	struct stat a, b;
	int fd;

	(void)state;
	disk_dir_make(&t);
	/* The job's overlay as qemu-img made it, replaced by the
	 * template's. */
	assert_int_equal(
	    overlay_create(QEMU_IMG, t.base, "raw", t.job, why, sizeof(why)),
	    0);
	fd = open(t.ov, O_WRONLY | O_APPEND);
	assert_int_equal(write_full(fd, "template", 8), 0);
	close(fd);
	assert_int_equal(
	    warm_disk_copy(t.ov, t.job, t.base, "raw", why, sizeof(why)), 0);
	assert_int_equal(stat(t.ov, &a), 0);
	assert_int_equal(stat(t.job, &b), 0);
	assert_int_equal(a.st_size, b.st_size);
	assert_int_equal(b.st_mode & 07777, 0600);
	/* A template that is a link is not followed; one of another base is
	 * refused and the job's overlay is left. */
	snprintf(lnk, sizeof(lnk), "%s/link", t.dir);
	assert_int_equal(symlink(t.ov, lnk), 0);
	assert_int_equal(
	    warm_disk_copy(lnk, t.job, t.base, "raw", why, sizeof(why)),
	    -ELOOP);
	assert_int_equal(
	    warm_disk_copy(t.ov, t.job, "/other", "raw", why, sizeof(why)),
	    -EPERM);
	assert_non_null(strstr(why, "backing file is not /other"));
	assert_int_equal(stat(t.job, &b), 0);
	disk_dir_rm(&t);
}

/* The template guest's overlay, kept: a file of root's that no one else
 * holds. While its guest ran it was warm_user's, so another process of
 * that user (another node's template QEMU on this machine) could have
 * opened it read-write; what it writes through that descriptor after the
 * check must not reach the kept file. */
static void test_disk_keep(void **state)
{
	static const uint8_t data_file[8] = {0, 0, 0, 0, 0, 0, 0, 4};
	struct disk_dir t;
	char why[256] = "", to[160];
	struct stat st;
	int held, fd;

	(void)state;
	if (geteuid() != 0)
		skip(); /* the kept file is chowned to root */
	disk_dir_make(&t);
	snprintf(to, sizeof(to), "%s/kept.qcow2", t.dir);
	held = open(t.ov, O_RDWR);
	assert_true(held >= 0);
	assert_int_equal(
	    warm_disk_keep(t.ov, to, t.base, "raw", why, sizeof(why)), 0);
	assert_int_equal(lstat(to, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* An external data file set through the held descriptor, after the
	 * check. */
	assert_int_equal(pwrite(held, data_file, 8, 72), 8);
	close(held);
	fd = open(to, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(warm_disk_check(fd, t.base, "raw", why, sizeof(why)),
			 0);
	close(fd);
	disk_dir_rm(&t);
}

/* An overlay far bigger than a boot writes (a sparse file of a QEMU turned
 * against root: each warm start would copy it) is not kept. */
static void test_disk_keep_big(void **state)
{
	struct disk_dir t;
	char why[256] = "", to[160];
	int fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	disk_dir_make(&t);
	snprintf(to, sizeof(to), "%s/kept.qcow2", t.dir);
	fd = open(t.ov, O_RDWR);
	assert_int_equal(ftruncate(fd, (off_t)WARM_DISK_MAX_MIB * 1048576 + 1),
			 0);
	close(fd);
	assert_int_equal(
	    warm_disk_keep(t.ov, to, t.base, "raw", why, sizeof(why)), -EFBIG);
	assert_non_null(strstr(why, "MiB"));
	assert_int_equal(access(to, F_OK), -1);
	disk_dir_rm(&t);
}

/* A multi-node job's NIC is plugged after the restore (its MAC and tap are
 * the job's): its guest has the key of a one-node guest of its shape, and
 * two nodes' guests (other MACs, taps, bridges) one key. */
static void test_key_nic_plugged_after(void **state)
{
	struct dom_spec a, b, c;
	char ka[WARM_KEY_LEN + 1], kb[WARM_KEY_LEN + 1], kc[WARM_KEY_LEN + 1];
	char why[128];
	_cleanup_free_ char *nic = NULL, *cold = NULL, *none = NULL;

	(void)state;
	spec_job(&a, &place1, 41, 0);
	spec_job(&b, &place1, 42, 0);
	b.net_bridge = "vmj2a";
	b.net_tap = "vmj2a00";
	b.net_mac = "52:54:00:00:2a:00";
	b.net_mtu = 1500;
	spec_job(&c, &place1, 43, 0);
	c.net_bridge = "vmj2b";
	c.net_tap = "vmj2b01";
	c.net_mac = "52:54:00:00:2b:01";
	c.net_mtu = 9000;
	assert_true(warm_eligible(&b, why, sizeof(why)));
	assert_int_equal(warm_key(&a, "kernel k initrd i", ka), 0);
	assert_int_equal(warm_key(&b, "kernel k initrd i", kb), 0);
	assert_int_equal(warm_key(&c, "kernel k initrd i", kc), 0);
	assert_string_equal(ka, kb);
	assert_string_equal(kb, kc);
	/* What is plugged: the job's own NIC, in the slot a cold guest has
	 * it in (a later checkpoint's restore finds it there). */
	assert_int_equal(domxml_net(&b, &nic), 0);
	assert_non_null(strstr(nic, "<mac address='52:54:00:00:2a:00'/>"));
	assert_non_null(strstr(nic, "<target dev='vmj2a00'/>"));
	assert_int_equal(domxml_build(&b, &cold), 0);
	assert_non_null(strstr(cold, strstr(nic, "<address ")));
	assert_int_equal(domxml_net(&a, &none), -EINVAL);
}

/* Devices a save cannot hold are plugged after the restore: the template
 * has none, and a guest with them has the same key. */
static void test_key_devices_plugged_after(void **state)
{
	struct dom_spec a, b;
	char ka[WARM_KEY_LEN + 1], kb[WARM_KEY_LEN + 1];

	(void)state;
	spec_job(&a, &place1, 41, 0);
	spec_job(&b, &place2, 42, 0);
	b.standin = true;
	place2.ndevs = 1;
	place2.dev[0].cell = -1;
	assert_int_equal(warm_key(&a, "boot", ka), 0);
	assert_int_equal(warm_key(&b, "boot", kb), 0);
	assert_string_equal(ka, kb);
}

/* --- the maker's handshake --------------------------------------------- */

enum script { HELD, NOT_INIT, REFUSES, SILENT, SPLIT };

struct fake_agent {
	int fd;
	enum script script;
	uint32_t hellos;
};

/* split: the header, then the payload 700 ms later (longer than the
 * maker's HELLO interval), as a guest busy under TCG once wrote them. */
static int send_frame(int fd, uint8_t type, const struct aw_buf *b, bool split)
{
	uint8_t h[AW_HDR_LEN];
	struct timespec gap = {0, 700 * 1000 * 1000};

	aw_hdr_encode(h, (uint32_t)b->len, type, 0);
	if (write_full(fd, h, sizeof(h)) < 0)
		return -1;
	if (split)
		nanosleep(&gap, NULL);
	return b->len ? write_full(fd, b->data, b->len) : 0;
}

static void *agent_main(void *arg)
{
	struct fake_agent *a = arg;
	uint8_t hb[AW_HDR_LEN], p[4096];
	struct aw_hdr h;

	while (read(a->fd, hb, sizeof(hb)) == (ssize_t)sizeof(hb)) {
		struct aw_buf b = {0};

		if (aw_hdr_decode(hb, sizeof(p), &h) < 0 ||
		    (h.len && read(a->fd, p, h.len) != (ssize_t)h.len))
			break;
		if (a->script == SILENT)
			continue;
		/* The first HELLO is lost (the agent was not up yet). */
		if (h.type == AW_HELLO && a->hellos++ == 0)
			continue;
		if (h.type == AW_HELLO) {
			aw_put_u32(&b, AW_VERSION);
			aw_put_u32(
			    &b,
			    AW_HELLO_CKPT | AW_HELLO_BULK |
				(a->script == NOT_INIT ? 0 : AW_HELLO_WARM));
			aw_put_str(&b, "fake");
			send_frame(a->fd, AW_HELLO, &b, a->script == SPLIT);
		} else if (h.type == AW_CKPT_PREPARE) {
			aw_put_u32(&b, AW_CKPT_PREPARE);
			if (a->script == REFUSES) {
				aw_put_u32(&b, EBUSY);
				aw_put_str(&b, "no");
			}
			send_frame(a->fd,
				   a->script == REFUSES ? AW_CKPT_REFUSED
							: AW_CKPT_OK,
				   &b, false);
		}
		aw_buf_free(&b);
	}
	return NULL;
}

static int run_script(enum script sc, uint32_t timeout_ms, bool *not_warm,
		      char *why, size_t whylen)
{
	int sv[2];
	pthread_t t;
	struct fake_agent a = {.script = sc};
	int r;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a.fd = sv[1];
	fd_set_nonblock(sv[0], true);
	assert_int_equal(pthread_create(&t, NULL, agent_main, &a), 0);
	r = warm_make_handshake(sv[0], timeout_ms, NULL, not_warm, why, whylen);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return r;
}

static void test_make_handshake(void **state)
{
	bool not_warm;
	char why[512];
	uint64_t t0;

	(void)state;
	assert_int_equal(run_script(HELD, 5000, &not_warm, why, sizeof(why)),
			 0);
	assert_false(not_warm);
	/* An agent that is not the guest's init: no template. */
	assert_int_equal(
	    run_script(NOT_INIT, 5000, &not_warm, why, sizeof(why)),
	    -EOPNOTSUPP);
	assert_true(not_warm);
	assert_non_null(strstr(why, "init"));
	assert_int_equal(run_script(REFUSES, 5000, &not_warm, why, sizeof(why)),
			 -ECANCELED);
	assert_false(not_warm);
	/* An answer split across a HELLO interval is read whole. */
	assert_int_equal(run_script(SPLIT, 5000, &not_warm, why, sizeof(why)),
			 0);
	assert_false(not_warm);
	/* A silent guest: bounded. */
	t0 = now_ms();
	assert_int_equal(run_script(SILENT, 1200, &not_warm, why, sizeof(why)),
			 -ETIMEDOUT);
	assert_true(now_ms() - t0 < 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_saveimg_roundtrip),
	    cmocka_unit_test(test_saveimg_refused),
	    cmocka_unit_test(test_saveimg_uuid),
	    cmocka_unit_test(test_key_same_guest),
	    cmocka_unit_test(test_key_other_guest),
	    cmocka_unit_test(test_key_not_eligible),
	    cmocka_unit_test(test_key_disk),
	    cmocka_unit_test(test_boot_listed),
	    cmocka_unit_test(test_claim),
	    cmocka_unit_test(test_disk_check),
	    cmocka_unit_test(test_disk_copy),
	    cmocka_unit_test(test_disk_keep),
	    cmocka_unit_test(test_disk_keep_big),
	    cmocka_unit_test(test_key_nic_plugged_after),
	    cmocka_unit_test(test_key_devices_plugged_after),
	    cmocka_unit_test(test_make_handshake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
