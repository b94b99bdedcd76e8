// SPDX-License-Identifier: MIT
/*
 * Unit tests for the download helper and root's side of it
 * (common/fetch.c, fetch/vmenv-fetch, common/fetchwire.h): the real helper
 * runs as fetch_user, never as root, with no new privileges, no
 * capabilities and no supplementary groups (it fetches its own
 * /proc/self/status and we read the kernel's words); it refuses to run as
 * root; root refuses a fetch_user that is root or missing. A fake helper
 * (fake_fetch.c) shows how root starts it (fds, environment) and tells
 * every lie a compromised helper could: root refuses each, kills it, and
 * leaves nothing in the cache. Runs as root (test/all) or as a user; the
 * identity checks are stronger as root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "fetch.h"
#include "imgcache.h"
#include "imgpull.h"
#include "rmtree.h"

#define HELPER	    TEST_BUILDDIR "/fetch/vmenv-fetch"
#define FAKE_HELPER TEST_BUILDDIR "/test/unit/fake-fetch"
#define USER	    "nobody"

static struct fetch_opts opts(const char *helper)
{
	return (struct fetch_opts){
	    .connect_timeout_s = 5,
	    .low_speed_time_s = 5,
	    .low_speed_bps = 1,
	    .retries = 0,
	    .retry_delay_ms = 10,
	    .max_redirects = 2,
	    .helper = helper,
	    .user = USER,
	};
}

/* Who the helper must run as: fetch_user under root, else the caller. */
static void expected_ids(uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	*uid = getuid();
	*gid = getgid();
	if (geteuid() != 0)
		return;
	pw = getpwnam(USER);
	assert_non_null(pw);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

static char *text_of(const char *helper, const char *url, int *ret_r, char *err,
		     size_t errlen)
{
	struct fetch_opts o = opts(helper);
	char *text = NULL;
	size_t len = 0;

	*ret_r = fetch_text(url, &o, 1 << 20, NULL, &text, &len, err, errlen);
	return text;
}

/* "Name:\tA\tB..." of /proc/PID/status: the fields after the name. */
static const char *status_field(const char *status, const char *name)
{
	static char line[512];
	const char *p = strstr(status, name);

	assert_non_null(p);
	p += strlen(name);
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(p, "\n"), p);
	return line;
}

/* The real helper reads its own /proc/self/status through file://: the
 * kernel says who it was. */
static void test_helper_identity(void **state)
{
	char err[1024] = "", want[128];
	_cleanup_free_ char *st = NULL;
	uid_t uid;
	gid_t gid;
	int r;

	(void)state;
	expected_ids(&uid, &gid);
	st = text_of(HELPER, "file:///proc/self/status", &r, err, sizeof(err));
	if (r < 0)
		fail_msg("%s", err);
	print_message("helper: Uid:%s Gid:%s\n", status_field(st, "\nUid:"),
		      status_field(st, "\nGid:"));
	assert_contains(st, "Name:\tvmenv-fetch\n");
	snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", (unsigned)uid,
		 (unsigned)uid, (unsigned)uid, (unsigned)uid);
	assert_string_equal(status_field(st, "\nUid:"), want);
	snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", (unsigned)gid,
		 (unsigned)gid, (unsigned)gid, (unsigned)gid);
	assert_string_equal(status_field(st, "\nGid:"), want);
	assert_true(uid != 0 && gid != 0);
	assert_string_equal(status_field(st, "\nNoNewPrivs:"), "\t1");
	assert_string_equal(status_field(st, "\nCapEff:"),
			    "\t0000000000000000");
	assert_string_equal(status_field(st, "\nCapPrm:"),
			    "\t0000000000000000");
	/* PID 1 of a namespace of its own (the last NSpid field). */
	if (geteuid() == 0) {
		const char *ns = status_field(st, "\nNSpid:");

		assert_string_equal(ns + strlen(ns) - 2, "\t1");
	}
	/* No supplementary group: the kernel prints none after the tab. */
	if (geteuid() == 0)
		assert_true(strspn(status_field(st, "\nGroups:"), "\t ") ==
			    strlen(status_field(st, "\nGroups:")));
}

/* Root's own file, 0600: the helper cannot read it, root could. */
static void test_helper_not_root_reads(void **state)
{
	char dir[] = "/tmp/vmenv-fetch-XXXXXX", path[128], url[160];
	char err[1024] = "";
	_cleanup_free_ char *text = NULL;
	int r;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/secret", dir);
	assert_int_equal(write_file_atomic(path, "root only\n", 10, 0600), 0);
	snprintf(url, sizeof(url), "file://%s", path);
	text = text_of(HELPER, url, &r, err, sizeof(err));
	print_message("%s\n", err);
	assert_int_equal(r, -ENOENT);
	assert_contains(err, "Couldn't open file");
	assert_int_equal(chmod(path, 0644), 0);
	text = text_of(HELPER, url, &r, err, sizeof(err));
	assert_int_equal(r, 0);
	assert_string_equal(text, "root only\n");
	assert_int_equal(rm_rf(dir), 0);
}

static void test_helper_refuses_root(void **state)
{
	struct fetch_opts o = opts(HELPER);
	char err[512] = "", *text = NULL;
	int status, r;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	/* Started by hand as root: it refuses and fetches nothing. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0), dup2(null, 1), dup2(null, 2), dup2(null, 3);
		execl(HELPER, HELPER, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
	/* Root never starts it as root, nor as someone who is not there. */
	o.user = "root";
	r = fetch_text("file:///etc/hostname", &o, 4096, NULL, &text, NULL, err,
		       sizeof(err));
	assert_int_equal(r, -EPERM);
	assert_contains(err, "fetch_user 'root' is root");
	o.user = "vmenv-no-such-user";
	r = fetch_text("file:///etc/hostname", &o, 4096, NULL, &text, NULL, err,
		       sizeof(err));
	assert_int_equal(r, -EPERM);
	assert_contains(err, "does not exist");
	o.user = "";
	r = fetch_text("file:///etc/hostname", &o, 4096, NULL, &text, NULL, err,
		       sizeof(err));
	assert_int_equal(r, -EPERM);
}

/* How root starts it: fds 0-3 only, the environment's proxies but
 * nothing else of it, no new privileges, no groups. */
static void test_helper_started_clean(void **state)
{
	char err[1024] = "", want[64];
	_cleanup_free_ char *text = NULL;
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
	uid_t uid;
	gid_t gid;
	int r;

	(void)state;
	expected_ids(&uid, &gid);
	assert_true(leak >= 0);
	setenv("http_proxy", "http://proxy.invalid:3128", 1);
	setenv("VMENV_SECRET", "do-not-pass", 1);
	text = text_of(FAKE_HELPER, "fake:report", &r, err, sizeof(err));
	unsetenv("http_proxy");
	unsetenv("VMENV_SECRET");
	close(leak);
	if (r < 0)
		fail_msg("%s", err);
	print_message("%s\n", text);
	snprintf(want, sizeof(want), "uid=%u gid=%u ", (unsigned)uid,
		 (unsigned)gid);
	assert_contains(text, want);
	assert_contains(text, "nnp=1 fds=0,1,2,3, env=");
	if (geteuid() == 0)
		assert_contains(text, "groups=0 ");
	assert_contains(text, "|http_proxy=http://proxy.invalid:3128|");
	assert_contains(text, "env=PATH=/usr/bin:/bin|LC_ALL=C|");
	assert_null(strstr(text, "VMENV_SECRET"));
}

/* --- a helper that lies ------------------------------------------------- */

struct fx {
	char dir[64];
	struct imgcache c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char cache[128];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/vmenv-fetch-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(cache, sizeof(cache), "%s/cache", f->dir);
	assert_int_equal(imgcache_init(&f->c, cache, 1 << 30, true), 0);
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

/* The sha256 of n bytes of c. */
static void sha_of(char c, size_t n, char *hex)
{
	_cleanup_free_ char *data = malloc(n);
	struct digest *d;

	assert_non_null(data);
	memset(data, c, n);
	assert_int_equal(digest_new(&d), 0);
	assert_int_equal(digest_update(d, data, n), 0);
	assert_int_equal(digest_final_hex(d, hex), 0);
	digest_free(d);
}

static void nothing_left(struct fx *f, const char *hex)
{
	char p[VMENV_MAX_PATH];

	assert_int_equal(imgcache_part_path(&f->c, hex, p, sizeof(p)), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(imgcache_stat(&f->c, hex, NULL), -ENOENT);
}

/* Processes named fake-fetch still there (within 1 s). */
static int fakes_alive(void)
{
	int n = 0;

	for (int tries = 0; tries < 20; tries++) {
		_cleanup_free_ char *out = NULL;
		size_t len;

		n = 0;
		DIR *d = opendir("/proc");
		struct dirent *e;

		assert_non_null(d);
		while ((e = readdir(d))) {
			char p[300];

			snprintf(p, sizeof(p), "/proc/%s/comm", e->d_name);
			if (read_file_limited(p, 64, &out, &len) == 0 &&
			    strcmp(out, "fake-fetch\n") == 0)
				n++;
			free(out);
			out = NULL;
		}
		closedir(d);
		if (n == 0)
			break;
		usleep(50 * 1000);
	}
	return n;
}

static void test_lies(void **state)
{
	static const struct {
		const char *mode;
		int r;
		const char *says;
	} lies[] = {
	    {"oversize", -EFBIG, "larger than the catalog says"},
	    /* Exactly the size, the wrong bytes (whatever the helper says,
	     * root hashed what it wrote). */
	    {"liar", -EBADMSG, "sha256 mismatch"},
	    {"short", -EIO, "ended after 2500 of 5000 bytes"},
	    {"badstart", -EPROTO, "broke the protocol (the bytes start"},
	    {"shortstart", -EPROTO, "broke the protocol (a short start)"},
	    {"noresult", -EPROTO, "ended without a valid result"},
	    {"badresult", -EPROTO, "ended without a valid result"},
	    {"evilmsg", -EIO, "fake:evilmsg: ?[31mred?<0>forged"},
	    {"crash", -EIO, "killed by signal 11"},
	    /* Its orphan holds the pipes for 10 s: not waited for (and
	     * killed with it when root started it). */
	    {"orphan", -EBADMSG, "sha256 mismatch"},
	};
	struct fx *f = *state;
	struct fetch_opts o = opts(FAKE_HELPER);
	char hex[65], url[64], err[1024];

	sha_of('y', 5000, hex);
	for (size_t i = 0; i < ARRAY_SIZE(lies); i++) {
		struct imgpull_req req = {.url = url,
					  .sha256 = hex,
					  .size = 5000,
					  .what = "image 'lie:1' disk"};
		struct imgpull_stats st;
		uint64_t t0 = now_ms();
		int r;

		snprintf(url, sizeof(url), "fake:%s", lies[i].mode);
		err[0] = '\0';
		r = imgpull(&f->c, &o, &req, &st, err, sizeof(err));
		print_message("%-10s %d %s (%llu ms)\n", lies[i].mode, r, err,
			      (unsigned long long)(now_ms() - t0));
		assert_int_equal(r, lies[i].r);
		assert_contains(err, "image 'lie:1' disk: ");
		assert_contains(err, lies[i].says);
		assert_null(strpbrk(err, "\n\x1b"));
		assert_true(now_ms() - t0 < 5000);
		nothing_left(f, hex);
	}
	/* Root's helper is PID 1 of its own namespace: the orphan went with
	 * it. */
	if (geteuid() == 0)
		assert_int_equal(fakes_alive(), 0);
}

/* A server that ignored the range: the bytes start at 0, root empties the
 * partial file and takes the whole. */
static void test_restart(void **state)
{
	struct fx *f = *state;
	struct fetch_opts o = opts(FAKE_HELPER);
	char hex[65], part[VMENV_MAX_PATH], err[1024] = "";
	struct imgpull_req req = {.url = "fake:restart",
				  .sha256 = hex,
				  .size = 5000,
				  .what = "image 'r:1' disk"};
	struct imgpull_stats st;

	sha_of('x', 5000, hex);
	assert_int_equal(imgcache_part_path(&f->c, hex, part, sizeof(part)), 0);
	assert_int_equal(write_file_atomic(part, "zzzz", 4, 0600), 0);
	assert_int_equal(imgpull(&f->c, &o, &req, &st, err, sizeof(err)), 0);
	assert_true(st.resumed);
	assert_int_equal(st.bytes, 5000);
	assert_int_equal(imgcache_stat(&f->c, hex, NULL), 0);
}

static atomic_int cancel_flag;

static void *cancel_soon(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	atomic_store(&cancel_flag, 1);
	return NULL;
}

/* A helper that stops talking: cancelled, killed, nothing left. */
static void test_hang_cancelled(void **state)
{
	struct fx *f = *state;
	struct fetch_opts o = opts(FAKE_HELPER);
	char hex[65], err[1024] = "";
	struct imgpull_req req = {.url = "fake:hang",
				  .sha256 = hex,
				  .size = 5000,
				  .what = "image 'h:1' disk",
				  .cancel = &cancel_flag};
	uint64_t t0 = now_ms();
	pthread_t t;

	sha_of('x', 5000, hex);
	atomic_store(&cancel_flag, 0);
	assert_int_equal(pthread_create(&t, NULL, cancel_soon, NULL), 0);
	assert_int_equal(imgpull(&f->c, &o, &req, NULL, err, sizeof(err)),
			 -ECANCELED);
	pthread_join(t, NULL);
	assert_true(now_ms() - t0 < 3000);
	nothing_left(f, hex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_helper_identity),
	    cmocka_unit_test(test_helper_not_root_reads),
	    cmocka_unit_test(test_helper_refuses_root),
	    cmocka_unit_test(test_helper_started_clean),
	    cmocka_unit_test_setup_teardown(test_lies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hang_cancelled, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
