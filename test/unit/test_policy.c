// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/policy*.c, table-driven against golden files in
 * test/data/policy/ (VMENV_REGENERATE=1 rewrites them after an intended
 * change; then review the diff):
 *   sets/SET/          policy directories
 *   golden/<case>.out   for each case below: the policies that matched,
 *                       then the effective spec with the origin of every
 *                       field, or the refusal
 *   bad/               files that must be refused; golden/bad.txt holds
 *                       the message of each (file, field, reason)
 * plus the all-or-nothing loading of a directory, deterministic order,
 * and a request that names every option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "policy.h"
#include "rmtree.h"
#include "util.h"
#include "vmspec.h"

#define DATA(f) TEST_DATADIR "/policy/" f

struct rcase {
	const char *name; /* golden/<name>.out */
	const char *set;  /* sets/<set> */
	const char *user;
	const char *partition;
	const char *account;
	const char *qos;
	const char *groups; /* comma separated */
	const char *opts;   /* as given to sbatch, space separated */
};

static const struct rcase cases[] = {
    /* A realistic site: base rules, a partition, an account in it, a user,
     * a group. */
    {"site_debug_plain", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"site_prod_ok", "site", "bob", "prod", NULL, NULL, "bob",
     "--vm-env=rocky9 --vm-gpus=no"},
    {"site_prod_image_refused", "site", "bob", "prod", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"site_prod_hugepages_contradicts", "site", "bob", "prod", NULL, NULL,
     "bob", "--vm-env=rocky9 --vm-hugepages=none"},
    {"site_prod_hugepages_agrees", "site", "bob", "prod", NULL, NULL, "bob",
     "--vm-env=rocky9 --vm-hugepages=2m"},
    {"site_prod_not_settable", "site", "bob", "prod", NULL, NULL, "bob",
     "--vm-env=rocky9 --vm-keep-overlay"},
    {"site_prod_ib_not_settable", "site", "bob", "prod", NULL, NULL, "bob",
     "--vm-env=zeptoos:1 --vm-ib=1"},
    {"site_physics_ib_ok", "site", "bob", "prod", "physics", NULL, "bob",
     "--vm-env=debian12 --vm-ib=2"},
    {"site_physics_ib_over_max", "site", "bob", "prod", "physics", NULL, "bob",
     "--vm-env=debian12 --vm-ib=3"},
    {"site_physics_default_ib", "site", "bob", "prod", "physics", NULL, "bob",
     "--vm-env=rocky9.img"},
    {"site_alice_below_min", "site", "alice", "debug", NULL, NULL, "alice",
     "--vm-env=tiny --vm-mem-headroom=64M"},
    {"site_alice_default_raised", "site", "alice", "debug", NULL, NULL, "alice",
     "--vm-env=tiny"},
    {"site_alice_prod_physics", "site", "alice", "prod", "physics", NULL,
     "alice,users", "--vm-env=debian12:12.5"},
    {"site_group_contradicts", "site", "carol", "debug", NULL, NULL,
     "carol,gpuusers", "--vm-env=tiny --vm-gpus=no"},
    {"site_group_agrees", "site", "carol", "debug", NULL, NULL,
     "carol,gpuusers", "--vm-env=tiny --vm-emulator-threads=housekeeping"},
    {"site_mounts_ok", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/home/bob:/home/bob,/apps/x:/opt/x:ro"},
    {"site_mount_rw_on_ro_prefix", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/apps/x:/opt/x"},
    {"site_mount_outside", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/etc:/mnt/etc:ro"},
    {"site_mount_prefix_boundary", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/homeless:/x"},
    {"site_mounts_too_many", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny "
     "--vm-mount=/home/a:/a,/home/b:/b,/home/c:/c,/home/d:/d,/home/e:/e"},
    {"site_checkpoint_dir_ok", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint --vm-checkpoint-dir=/scratch/bob/ckpt "
     "--vm-checkpoint-lead=20m --vm-requeue"},
    {"site_checkpoint_dir_refused", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint-dir=/var/tmp"},
    {"site_lead_over_max", "site", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint-lead=2h"},
    /* Two policies of the same specificity: the later file wins each rule
     * it states; a more specific policy beats both. */
    {"conflict_later_file_wins", "conflict", "bob", "p", NULL, NULL, "bob",
     "--vm-env=tiny --vm-cpu-model=Skylake-Server"},
    {"conflict_default_not_allowed", "conflict", "bob", "p", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"conflict_user_vs_winner", "conflict", "bob", "p", NULL, NULL, "bob",
     "--vm-env=tiny --vm-hugepages=2M --vm-cpu-model=host-passthrough"},
    {"conflict_more_specific", "conflict", "bob", "p", NULL, "debug", "bob",
     "--vm-env=tiny --vm-cpu-model=host-passthrough"},
    /* No policy at all (non-JSON files in the directory are ignored). */
    {"empty_builtin", "empty", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"empty_every_option", "empty", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny:1 --vm-checkpoint=yes --vm-checkpoint-lead=1h "
     "--vm-requeue --vm-hugepages=1g --vm-mem-headroom=10%,256M --vm-ib=3 "
     "--vm-gpus=no --vm-keep-overlay --vm-cpu-model=host-model "
     "--vm-emulator-threads=housekeeping"},
    {"empty_mount_closed", "empty", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/home/bob:/home/bob"},
    {"empty_checkpoint_dir_closed", "empty", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint-dir=/scratch"},
    {"empty_image_path", "empty", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=/home/bob/my.img"},
    {"empty_no_image", "empty", "bob", "debug", NULL, NULL, "bob", ""},
    /* Patterns and lists in "match", unknown values. */
    {"patterns_partition_glob", "patterns", "bob", "gpu-v100", NULL, NULL,
     "bob", "--vm-env=tiny --vm-gpus=no"},
    {"patterns_partition_list", "patterns", "bob", "a100", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"patterns_partition_no_match", "patterns", "bob", "gp", NULL, NULL, "bob",
     "--vm-env=tiny --vm-gpus=no"},
    {"patterns_user_and_qos", "patterns", "stud42", "debug", NULL, "lowprio",
     "stud42", "--vm-env=tiny --vm-ib=1"},
    {"patterns_user_other_qos", "patterns", "stud42", "debug", NULL, "high",
     "stud42", "--vm-env=tiny --vm-ib=1 --vm-checkpoint"},
    {"patterns_user_no_match", "patterns", "student", "debug", NULL, "normal",
     "student", "--vm-env=tiny --vm-ib=1"},
    {"patterns_image_version", "patterns", "bob", "debug", "bio-lab", NULL,
     "bob", "--vm-env=bio-tools:2"},
    {"patterns_image_no_version", "patterns", "bob", "debug", "bio-lab", NULL,
     "bob", "--vm-env=bio-tools"},
    {"patterns_unknown_qos", "patterns", "bob", NULL, NULL, NULL, NULL,
     "--vm-env=tiny"},
    /* Caps: defaults and enforced values are capped, users refused. */
    /* Checkpoint retention and --vm-restore. */
    {"ckpt_keep_user", "ckpt", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint --vm-checkpoint-keep"},
    {"ckpt_restore_forbidden", "ckpt", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-restore=42"},
    {"ckpt_restore_allowed", "ckpt", "bob", "long", NULL, NULL, "bob",
     "--vm-env=tiny --vm-restore=42"},
    {"ckpt_keep_contradicts", "ckpt", "bob", "long", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint-keep=no"},
    {"caps_wide", "caps", "bob", "debug", NULL, NULL, "bob", "--vm-env=tiny"},
    {"caps_narrow_capped", "caps", "bob", "small", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"caps_user_over_max", "caps", "bob", "small", NULL, NULL, "bob",
     "--vm-env=tiny --vm-ib=3"},
    {"caps_user_below_min", "caps", "bob", "small", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mem-headroom=5%"},
    {"caps_user_asks_capped_enforced", "caps", "bob", "small", NULL, NULL,
     "bob", "--vm-env=tiny --vm-checkpoint-lead=15m"},
    {"caps_user_vs_enforced", "caps", "bob", "small", NULL, NULL, "bob",
     "--vm-env=tiny --vm-checkpoint-lead=30m"},
    {"caps_user_ok", "caps", "bob", "small", NULL, NULL, "bob",
     "--vm-env=tiny --vm-ib=1 --vm-mem-headroom=20%"},
    /* Mounts: enforced ones always, users add, defaults fill in. */
    {"mounts_enforced_only", "mounts", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny"},
    {"mounts_user_added", "mounts", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/home/bob:/home/bob,/data/x:/x:ro"},
    {"mounts_user_covers_enforced", "mounts", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/home/bob/apps:/apps"},
    {"mounts_user_repeats_enforced", "mounts", "bob", "debug", NULL, NULL,
     "bob", "--vm-env=tiny --vm-mount=/sw/apps:/apps:ro,/home/b:/b"},
    {"mounts_data_rw", "mounts", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/data/x:/x"},
    {"mounts_lab_defaults", "mounts", "bob", "debug", "lab", NULL, "bob",
     "--vm-env=tiny"},
    {"mounts_lab_user_none", "mounts", "bob", "debug", "lab", NULL, "bob",
     "--vm-env=tiny --vm-mount=none"},
    /* null lifts what a less specific policy said. */
    {"clear_prod_enforced", "clear", "bob", "prod", NULL, NULL, "bob",
     "--vm-env=tiny --vm-hugepages=1G"},
    {"clear_climate_lifted", "clear", "bob", "prod", "climate", NULL, "bob",
     "--vm-env=tiny --vm-hugepages=1G --vm-ib=8 --vm-cpu-model=host-model"},
    {"clear_climate_default", "clear", "bob", "prod", "climate", NULL, "bob",
     "--vm-env=tiny"},
    {"clear_climate_still_allowed", "clear", "bob", "prod", "climate", NULL,
     "bob", "--vm-env=tiny --vm-hugepages=none"},
    /* The shipped examples (policies/). */
    {"example_prod", "../../../../policies", "bob", "prod", "physics", NULL,
     "bob", "--vm-env=rocky9:9.3 --vm-gpus=no"},
    {"example_prod_hugepages", "../../../../policies", "bob", "prod", NULL,
     NULL, "bob", "--vm-env=rocky9 --vm-hugepages=1G"},
    {"example_climate", "../../../../policies", "bob", "prod", "climate", NULL,
     "bob", "--vm-env=climate-esm:2 --vm-hugepages=1G"},
    {"example_climate_ib", "../../../../policies", "bob", "prod", "climate",
     NULL, "bob", "--vm-env=rocky9 --vm-ib=3"},
    {"example_debug", "../../../../policies", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=tiny --vm-mount=/scratch/bob:/scratch/bob"},
    {"example_imagelab", "../../../../policies", "eve", "debug", NULL, NULL,
     "eve,imagelab", "--vm-env=/home/eve/test.qcow2"},
    {"example_imagelab_prod", "../../../../policies", "eve", "prod", NULL, NULL,
     "eve,imagelab", "--vm-env=/home/eve/test.qcow2"},
    /* Images: paths only where a policy switches them on. */
    {"images_path_ok", "images", "bob", "debug", NULL, NULL, "bob,imagemakers",
     "--vm-env=/home/bob/my.img"},
    {"images_path_pattern", "images", "bob", "debug", NULL, NULL,
     "bob,imagemakers", "--vm-env=/scratch/my.img"},
    {"images_path_not_on", "images", "bob", "debug", NULL, NULL, "bob",
     "--vm-env=/home/bob/my.img"},
    {"images_enforced_other", "images", "bob", "test", NULL, NULL, "bob",
     "--vm-env=rocky9"},
    {"images_enforced_same", "images", "bob", "test", NULL, NULL, "bob",
     "--vm-env=tiny"},
};

/* --- helpers -------------------------------------------------------------- */

static void compare_lines(const char *file, const char *want, const char *got)
{
	unsigned line = 1;

	while (*want && *got) {
		size_t wl = strcspn(want, "\n"), gl = strcspn(got, "\n");

		if (wl != gl || strncmp(want, got, wl) != 0)
			break;
		want += wl + (want[wl] ? 1 : 0);
		got += gl + (got[gl] ? 1 : 0);
		line++;
	}
	if (*want || *got)
		fail_msg("%s:%u differs (VMENV_REGENERATE=1 rewrites the "
			 "goldens)\nwant: %.*s\ngot:  %.*s",
			 file, line, (int)strcspn(want, "\n"), want,
			 (int)strcspn(got, "\n"), got);
}

static void check_golden(const char *name, const char *got)
{
	const char *regen = getenv("VMENV_REGENERATE");
	_cleanup_free_ char *want = NULL;
	char path[VMENV_MAX_PATH];

	snprintf(path, sizeof(path), DATA("golden/%s"), name);
	if (regen && strcmp(regen, "1") == 0) {
		assert_int_equal(
		    write_file_atomic(path, got, strlen(got), 0644), 0);
		print_message("regenerated %s\n", path);
		return;
	}
	if (read_file_limited(path, 1 << 20, &want, NULL) < 0)
		fail_msg("cannot read %s", path);
	compare_lines(name, want, got);
}

static struct policy_set *load_set(const char *set)
{
	struct policy_set *s = NULL;
	char path[VMENV_MAX_PATH], err[1024] = "";

	snprintf(path, sizeof(path), DATA("sets/%s"), set);
	if (policy_set_load(path, false, NULL, NULL, &s, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	return s;
}

/* Splits a space separated string into argv (modifies buf). */
static int split(char *buf, char **argv, int max)
{
	int n = 0;

	for (char *t = strtok(buf, " "); t && n < max; t = strtok(NULL, " "))
		argv[n++] = t;
	return n;
}

static void add(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add(char **out, const char *fmt, ...)
{
	char *more = NULL, *joined = NULL;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&more, fmt, ap) >= 0);
	va_end(ap);
	assert_true(asprintf(&joined, "%s%s", *out ? *out : "", more) >= 0);
	free(*out);
	free(more);
	*out = joined;
}

/* The text of one case: what matched, then the spec or the refusal. */
static char *run_case(const struct policy_set *s, const struct rcase *c)
{
	char opts[1024], groups[256], *argv[32], *gv[16];
	const char *gcv[16];
	char err[1024] = "", why[1024] = "", matches[1024];
	struct vmspec_request *req = calloc(1, sizeof(*req));
	struct vmspec *base = malloc(sizeof(*base)),
		      *spec = malloc(sizeof(*spec));
	char *out = NULL, *text = NULL;
	int argc, ng = 0, r;

	assert_non_null(req);
	assert_non_null(base);
	assert_non_null(spec);
	snprintf(opts, sizeof(opts), "%s", c->opts);
	argc = split(opts, argv, 32);
	if (c->groups) {
		snprintf(groups, sizeof(groups), "%s", c->groups);
		for (char *t = strtok(groups, ","); t && ng < 16;
		     t = strtok(NULL, ","))
			gv[ng++] = t;
	}
	for (int i = 0; i < ng; i++)
		gcv[i] = gv[i];
	struct policy_ctx ctx = {c->user, c->partition, c->account,
				 c->qos,  gcv,		(size_t)ng};
	r = vmspec_request_from_argv(req, argc, argv, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: options: %s", c->name, err);
	vmspec_defaults(base);
	policy_set_matches(s, &ctx, matches, sizeof(matches));
	add(&out, "matching: %s\n", matches);
	r = policy_resolve(s, &ctx, req, base, spec, why, sizeof(why));
	if (r == POLICY_REFUSED) {
		add(&out, "refused: %s\n", why);
	} else {
		assert_int_equal(r, 0);
		assert_int_equal(vmspec_explain(spec, &text), 0);
		add(&out, "%s", text);
	}
	free(text);
	free(req);
	free(base);
	free(spec);
	return out;
}

/* --- tests -------------------------------------------------------------- */

static void test_cases(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct rcase *c = &cases[i];
		struct policy_set *s = load_set(c->set);
		char name[128];
		_cleanup_free_ char *got = NULL;

		print_message("case %s\n", c->name);
		got = run_case(s, c);
		snprintf(name, sizeof(name), "%s.out", c->name);
		check_golden(name, got);
		policy_set_free(s);
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file in bad/ is refused, and golden/bad.txt says how. */
static void test_bad_files(void **state)
{
	DIR *d = opendir(DATA("bad"));
	char *names[128];
	size_t n = 0;
	char *out = NULL;
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) && n < ARRAY_SIZE(names))
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		struct policy_set *s = NULL;
		char path[VMENV_MAX_PATH], err[1024] = "";
		int r;

		snprintf(path, sizeof(path), DATA("bad/%s"), names[i]);
		r = policy_set_load(path, false, NULL, NULL, &s, err,
				    sizeof(err));
		if (r != -EINVAL)
			fail_msg("%s: want -EINVAL, got %d (%s)", names[i], r,
				 err);
		assert_null(s);
		/* The message starts with the file as the admin named it. */
		assert_true(strncmp(err, path, strlen(path)) == 0);
		add(&out, "%s\n", err + strlen(DATA("bad/")));
		free(names[i]);
	}
	check_golden("bad.txt", out);
	free(out);
}

struct errs {
	char text[4096];
	int n;
};

static void collect_err(void *data, const char *msg)
{
	struct errs *e = data;
	size_t used = strlen(e->text);

	snprintf(e->text + used, sizeof(e->text) - used, "%s\n", msg);
	e->n++;
}

/* One bad file refuses the whole directory, and every bad file is
 * reported. */
static void test_all_or_nothing(void **state)
{
	struct policy_set *s = NULL;
	struct errs e = {.n = 0};
	char err[1024];

	assert_int_equal(policy_set_load(DATA("broken"), false, collect_err, &e,
					 &s, err, sizeof(err)),
			 -EINVAL);
	assert_null(s);
	assert_int_equal(e.n, 2);
	assert_contains(e.text, "broken/20-bad.json: ib_vfs.max: must be an "
				"integer, not string");
	assert_contains(e.text, "broken/30 spaced.json: file name must be");
	assert_contains(err, "20-bad.json");

	memset(&e, 0, sizeof(e));
	assert_int_equal(policy_set_load(DATA("dupname"), false, collect_err,
					 &e, &s, err, sizeof(err)),
			 -EINVAL);
	assert_null(s);
	assert_int_equal(e.n, 1);
	assert_contains(e.text, "b.json: name: policy 'same' is also the name "
				"of a.json");
}

/* Editors' and package managers' leftovers next to the policies are not
 * read (made here, not tracked: the repository ignores *~), while the same
 * content as a *.json is refused. */
static void test_leftovers_ignored(void **state)
{
	static const char *const leftovers[] = {"old.json~", ".old.json.swp",
						"old.json.dpkg-old"};
	static const char bad[] = "{\"not\": \"read either\"}\n";
	char dir[] = "/tmp/vmenv-policy-XXXXXX", path[256], err[512] = "";
	struct policy_set *s = NULL;

	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < ARRAY_SIZE(leftovers); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, leftovers[i]);
		assert_int_equal(
		    write_file_atomic(path, bad, sizeof(bad) - 1, 0644), 0);
	}
	assert_int_equal(
	    policy_set_load(dir, false, NULL, NULL, &s, err, sizeof(err)), 0);
	assert_non_null(s);
	assert_int_equal(policy_set_count(s), 0);
	policy_set_free(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/old.json", dir);
	assert_int_equal(write_file_atomic(path, bad, sizeof(bad) - 1, 0644),
			 0);
	assert_int_equal(
	    policy_set_load(dir, false, NULL, NULL, &s, err, sizeof(err)),
	    -EINVAL);
	assert_null(s);
	assert_contains(err, "old.json");
	assert_int_equal(rm_rf(dir), 0);
}

static void test_missing(void **state)
{
	struct policy_set *s = NULL;
	char err[512] = "";

	assert_int_equal(policy_set_load(DATA("no-such-dir"), false, NULL, NULL,
					 &s, err, sizeof(err)),
			 -ENOENT);
	assert_null(s);
	assert_contains(err, "no-such-dir: No such file or directory");
	assert_int_equal(policy_set_load(DATA("no-such-dir"), true, NULL, NULL,
					 &s, err, sizeof(err)),
			 0);
	assert_non_null(s);
	assert_int_equal(policy_set_count(s), 0);
	policy_set_free(s);
	/* One file instead of a directory. */
	assert_int_equal(policy_set_load(DATA("sets/site/10-prod.json"), false,
					 NULL, NULL, &s, err, sizeof(err)),
			 0);
	assert_int_equal(policy_set_count(s), 1);
	policy_set_free(s);
}

static void test_describe(void **state)
{
	struct policy_set *s = load_set("site");
	char buf[4096];

	assert_int_equal(policy_set_count(s), 5);
	policy_set_describe(s, buf, sizeof(buf));
	assert_string_equal(
	    buf, "00-base.json: policy 'base' (every job)\n"
		 "10-prod.json: policy 'prod' (partition=prod)\n"
		 "20-physics.json: policy 'physics-prod' (partition=prod "
		 "account=physics)\n"
		 "40-gpu.json: policy 'gpu-group' (group=gpuusers)\n"
		 "30-alice.json: policy 'alice' (user=alice)\n");
	policy_set_free(s);
}

/* The order comes from specificity and file names, never from the order
 * policies were read in. */
static void test_order_independent(void **state)
{
	static const char *const files[] = {"40-gpu.json", "30-alice.json",
					    "20-physics.json", "10-prod.json",
					    "00-base.json"};
	struct policy *p[ARRAY_SIZE(files)];
	struct policy_set *fwd = load_set("site"), *rev = NULL;
	char err[512];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *text = NULL;
		char path[VMENV_MAX_PATH];
		size_t len;

		snprintf(path, sizeof(path), DATA("sets/site/%s"), files[i]);
		assert_int_equal(read_file_limited(path, 1 << 20, &text, &len),
				 0);
		assert_int_equal(
		    policy_parse(text, len, files[i], &p[i], err, sizeof(err)),
		    0);
	}
	assert_int_equal(
	    policy_set_new(p, ARRAY_SIZE(p), &rev, err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (strcmp(cases[i].set, "site") != 0)
			continue;
		_cleanup_free_ char *a = run_case(fwd, &cases[i]);
		_cleanup_free_ char *b = run_case(rev, &cases[i]);
		assert_string_equal(a, b);
	}
	policy_set_free(fwd);
	policy_set_free(rev);
}

/* No set at all behaves like an empty directory. */
static void test_null_set(void **state)
{
	struct policy_set *empty = load_set("empty");

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (strcmp(cases[i].set, "empty") != 0)
			continue;
		_cleanup_free_ char *a = run_case(empty, &cases[i]);
		_cleanup_free_ char *b = run_case(NULL, &cases[i]);
		assert_string_equal(a, b);
	}
	policy_set_free(empty);
}

/* A refusal names the field, the policy and its file. */
static void test_refusal_names_policy(void **state)
{
	struct policy_set *s = load_set("site");
	struct vmspec_request req = {0};
	struct vmspec base, spec;
	char why[1024] = "", err[256];
	char a0[] = "--vm-env=rocky9", a1[] = "--vm-hugepages=1G";
	char *argv[] = {a0, a1};
	struct policy_ctx ctx = {.user = "bob", .partition = "prod"};

	assert_int_equal(
	    vmspec_request_from_argv(&req, 2, argv, err, sizeof(err)), 0);
	vmspec_defaults(&base);
	assert_int_equal(
	    policy_resolve(s, &ctx, &req, &base, &spec, why, sizeof(why)),
	    POLICY_REFUSED);
	assert_string_equal(why, "hugepages: '1G' contradicts '2M' enforced "
				 "by policy 'prod' (10-prod.json)");
	policy_set_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_all_or_nothing),
	    cmocka_unit_test(test_leftovers_ignored),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_order_independent),
	    cmocka_unit_test(test_null_set),
	    cmocka_unit_test(test_refusal_names_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
