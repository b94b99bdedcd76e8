// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/vmspec*.c: every user option with good and bad
 * values (table-driven), the text form of each field read back, the guest
 * memory arithmetic, and the environment variable names of the options.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "vmspec.h"

struct ocase {
	const char *opt;   /* without "--" */
	const char *value; /* NULL: the bare option */
	const char *field; /* the field it sets, or NULL when refused */
	const char *want;  /* the field's text form, or part of the error */
};

static const struct ocase ocases[] = {
    {"vm-env", "tiny", "image", "tiny"},
    {"vm-env", "tiny:1.2", "image", "tiny:1.2"},
    {"vm-env", "/home/u/my.qcow2", "image", "/home/u/my.qcow2"},
    {"vm-env", "../etc/passwd", NULL, "--vm-env: invalid image"},
    {"vm-env", "/home/u/../x", NULL, "invalid image '/home/u/../x'"},
    {"vm-env", "a b", NULL, "invalid image 'a b'"},
    {"vm-env", NULL, NULL, "--vm-env: needs a value (IMAGE[:VERSION])"},
    {"vm-checkpoint", NULL, "checkpoint", "yes"},
    {"vm-checkpoint", "", "checkpoint", "yes"},
    {"vm-checkpoint", "off", "checkpoint", "no"},
    {"vm-checkpoint", "TRUE", "checkpoint", "yes"},
    {"vm-checkpoint", "maybe", NULL, "'maybe' is not yes or no"},
    {"vm-checkpoint-lead", "600", "checkpoint_lead_s", "600"},
    {"vm-checkpoint-lead", "10m", "checkpoint_lead_s", "600"},
    {"vm-checkpoint-lead", "2H", "checkpoint_lead_s", "7200"},
    {"vm-checkpoint-lead", "7d", "checkpoint_lead_s", "604800"},
    {"vm-checkpoint-lead", "8d", NULL, "up to 604800 s"},
    {"vm-checkpoint-lead", "-5", NULL, "'-5' is not a duration"},
    {"vm-checkpoint-lead", "m", NULL, "is not a duration"},
    {"vm-checkpoint-lead", "99999999999999", NULL, "is not a duration"},
    {"vm-checkpoint-dir", "/scratch/u", "checkpoint_dir", "/scratch/u"},
    {"vm-checkpoint-dir", "/scratch/u/", NULL, "not a clean absolute path"},
    {"vm-checkpoint-dir", "scratch", NULL, "not a clean absolute path"},
    {"vm-requeue", "yes", "requeue", "yes"},
    {"vm-hugepages", "2M", "hugepages", "2M"},
    {"vm-hugepages", "1g", "hugepages", "1G"},
    {"vm-hugepages", "none", "hugepages", "none"},
    {"vm-hugepages", "4M", NULL, "'4M' is not one of: none, 2M, 1G"},
    {"vm-mem-headroom", "15%", "mem_headroom_pct", "15"},
    {"vm-mem-headroom", "256M", "mem_headroom_mib", "256"},
    {"vm-mem-headroom", "1G", "mem_headroom_mib", "1024"},
    {"vm-mem-headroom", "300", "mem_headroom_mib", "300"},
    {"vm-mem-headroom", "10%,512MiB", "mem_headroom_mib", "512"},
    {"vm-mem-headroom", "10%,512MiB", "mem_headroom_pct", "10"},
    {"vm-mem-headroom", "91%", NULL, "is not PCT% (0..90)"},
    {"vm-mem-headroom", "10%,20%", NULL, "each at most once"},
    {"vm-mem-headroom", "5T", NULL, "--vm-mem-headroom: '5T'"},
    {"vm-mem-headroom", "2000G", NULL, "up to 1048576 MiB"},
    {"vm-mem-headroom", ",", NULL, "no value"},
    {"vm-ib", "2", "ib_vfs", "2"},
    {"vm-ib", "65", NULL, "'65' is not a number in 0..64"},
    {"vm-ib", "+1", NULL, "is not a number"},
    {"vm-ib", " 1", NULL, "is not a number"},
    {"vm-gpus", "no", "gpus", "no"},
    {"vm-mount", "/a:/b", "mounts", "/a:/b:rw"},
    {"vm-mount", "/a:/b:ro,/c/d:/e", "mounts", "/a:/b:ro,/c/d:/e:rw"},
    {"vm-mount", "none", "mounts", "none"},
    {"vm-mount", "/a", NULL, "mount '/a' is not SRC:DST[:ro|:rw]"},
    {"vm-mount", "/a:/b:rx", NULL, "mode must be 'ro' or 'rw'"},
    {"vm-mount", "/a:b", NULL, "both paths must be clean absolute paths"},
    {"vm-mount", "/a/..:/b", NULL, "both paths must be clean"},
    {"vm-mount", "/a:/", NULL, "the guest's / cannot be covered"},
    {"vm-mount", "/a:/proc", NULL, "the guest's /proc cannot be covered"},
    {"vm-mount", "/a:/dev/shm", NULL, "the guest's /dev/shm cannot"},
    {"vm-mount", "/a:/device", "mounts", "/a:/device:rw"},
    {"vm-mount", "/a:/x,/b:/x", NULL, "two mounts on /x in the guest"},
    {"vm-mount", ",,", NULL, "no mount given (use 'none')"},
    {"vm-mount",
     "/1:/1,/2:/2,/3:/3,/4:/4,/5:/5,/6:/6,/7:/7,/8:/8,/9:/9,/10:/10,/11:/"
     "11,/12:/12,/13:/13,/14:/14,/15:/15,/16:/16,/17:/17",
     NULL, "more than 16 mounts"},
    {"vm-keep-overlay", NULL, "keep_overlay", "yes"},
    {"vm-cpu-model", "Skylake-Server-v4", "cpu_model", "Skylake-Server-v4"},
    {"vm-cpu-model", "host-passthrough", "cpu_model", "host-passthrough"},
    {"vm-cpu-model", "a'b", NULL, "invalid cpu_model 'a'b'"},
    {"vm-cpu-model",
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL,
     "invalid cpu_model"},
    {"vm-emulator-threads", "housekeeping", "emulator_threads", "housekeeping"},
    {"vm-emulator-threads", "Job", "emulator_threads", "job"},
    {"vm-emulator-threads", "io", NULL, "not one of: job, housekeeping"},
    {"vm-checkpoint-files", "served", "checkpoint_files", "served"},
    {"vm-checkpoint-files", "9P", "checkpoint_files", "9p"},
    {"vm-checkpoint-files", "virtiofs", NULL, "not one of: node, served, 9p"},
    {"vm-checkpoint-keep", NULL, "checkpoint_keep", "yes"},
    {"vm-checkpoint-keep", "off", "checkpoint_keep", "no"},
    {"vm-checkpoint-keep", "later", NULL, "--vm-checkpoint-keep: 'later'"},
    {"vm-restore", "4711", "restore_from", "4711"},
    {"vm-restore", "67043328", "restore_from", "67043328"},
    {"vm-restore", "67043329", NULL,
     "--vm-restore: '67043329' is not a job id (1..67043328"},
    {"vm-restore", "0", NULL, "'0' is not a job id"},
    {"vm-restore", "42_3", NULL, "'42_3' is not a job id"},
    {"vm-restore", "42+1", NULL, "'42+1' is not a job id"},
    {"vm-restore", "-1", NULL, "'-1' is not a job id"},
    {"vm-restore", " 42", NULL, "' 42' is not a job id"},
    {"vm-restore", "99999999999", NULL, "is not a job id"},
    {"vm-restore", "", NULL, "--vm-restore: needs a value (JOBID)"},
    {"vm-restore", NULL, NULL, "--vm-restore: needs a value (JOBID)"},
};

static void test_options(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(ocases); i++) {
		const struct ocase *c = &ocases[i];
		struct vmspec_request *r = calloc(1, sizeof(*r));
		int o = vmspec_option_by_name(c->opt);
		char err[512] = "", got[2048];
		int rc;

		print_message("--%s=%s\n", c->opt, c->value ? c->value : "");
		assert_non_null(r);
		assert_true(o >= 0);
		rc = vmspec_request_set(r, o, c->value, err, sizeof(err));
		if (!c->field) {
			assert_int_equal(rc, -EINVAL);
			assert_contains(err, c->want);
			/* Nothing half-set. */
			for (int f = 0; f < VMSPEC_NFIELDS; f++)
				assert_false(r->set[f]);
		} else {
			int f = vmspec_field_by_name(c->field);

			if (rc != 0)
				fail_msg("%s", err);
			assert_true(f >= 0);
			assert_true(r->set[f]);
			vmspec_format_field(&r->v, f, got, sizeof(got));
			assert_string_equal(got, c->want);
		}
		free(r);
	}
}

/* The text form of every field of a full request reads back equal. */
static void test_round_trip(void **state)
{
	_cleanup_free_ struct vmspec_request *r = calloc(1, sizeof(*r));
	_cleanup_free_ struct vmspec_values *back = calloc(1, sizeof(*back));
	char a[] = "--vm-env=tiny:2", b[] = "--vm-checkpoint",
	     c[] = "--vm-checkpoint-lead=15m", d[] = "--vm-checkpoint-dir=/s/c",
	     e[] = "--vm-requeue=no", f[] = "--vm-hugepages=1G",
	     g[] = "--vm-mem-headroom=12%,100M", h[] = "--vm-ib=4",
	     i[] = "--vm-gpus=no", j[] = "--vm-mount=/x:/y:ro,/p:/q",
	     k[] = "--vm-keep-overlay=yes", l[] = "--vm-cpu-model=host-model",
	     m[] = "--vm-emulator-threads=housekeeping",
	     n[] = "--vm-checkpoint-files=9p", o[] = "--vm-checkpoint-keep",
	     q[] = "--vm-restore=4711", w[] = "--vm-warm-start";
	char *argv[] = {a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, q, w};
	char err[256], text[2048];

	assert_int_equal(vmspec_request_from_argv(r, ARRAY_SIZE(argv), argv,
						  err, sizeof(err)),
			 0);
	for (int fl = 0; fl < VMSPEC_NFIELDS; fl++) {
		if (fl == VMSPEC_IMAGE_PATHS)
			continue;
		assert_true(r->set[fl]);
		vmspec_format_field(&r->v, fl, text, sizeof(text));
		if (vmspec_parse_field(back, fl, text, err, sizeof(err)) != 0)
			fail_msg("%s: '%s': %s", vmspec_field(fl)->name, text,
				 err);
		assert_true(vmspec_field_equal(&r->v, back, fl));
	}
}

static void test_argv(void **state)
{
	struct vmspec_request *r = calloc(1, sizeof(*r));
	char a[] = "--vm-ib", b[] = "2", c[] = "--vm-gpus", d[] = "--vm-nope=1",
	     e[] = "tiny";
	char *ok[] = {a, b, c}, *bad[] = {d}, *bare[] = {e};
	char err[256];

	assert_int_equal(
	    vmspec_request_from_argv(r, ARRAY_SIZE(ok), ok, err, sizeof(err)),
	    0);
	assert_int_equal(r->v.ib_vfs, 2);
	assert_true(r->set[VMSPEC_GPUS] && r->v.gpus);
	assert_int_equal(vmspec_request_from_argv(r, 1, bad, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "'--vm-nope=1' is not a vmenv option");
	assert_int_equal(vmspec_request_from_argv(r, 1, bare, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "'tiny' is not a vmenv option");
	/* A value that would need more than VMSPEC_MAX_OPTARG. */
	char *big = malloc(VMSPEC_MAX_OPTARG + 16);
	memset(big, 'a', VMSPEC_MAX_OPTARG + 15);
	big[VMSPEC_MAX_OPTARG + 15] = '\0';
	assert_int_equal(
	    vmspec_request_set(r, VMSPEC_OPT_CPU_MODEL, big, err, sizeof(err)),
	    -EINVAL);
	assert_contains(err, "longer than 4095 bytes");
	free(big);
	free(r);
}

static void test_guest_mem(void **state)
{
	static const struct {
		uint32_t pct, mib;
		uint64_t alloc;
		uint32_t want;
	} t[] = {
	    {0, 64, 512, 448},	   {15, 0, 1000, 850},
	    {15, 0, 1001, 850},	   {15, 64, 100, 36},
	    {15, 256, 4096, 3481}, {50, 64, 512, 256},
	    {0, 0, 512, 512},	   {0, 512, 512, 0},
	    {90, 0, 100, 10},	   {0, 64, 1ull << 40, UINT32_MAX},
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct vmspec_values v = {.mem_headroom_pct = t[i].pct,
					  .mem_headroom_mib = t[i].mib};

		assert_int_equal(vmspec_guest_mem_mib(&v, t[i].alloc),
				 t[i].want);
	}
}

static void test_env_names(void **state)
{
	char buf[64];

	assert_int_equal(vmspec_option_env(VMSPEC_OPT_CHECKPOINT_LEAD,
					   "SBATCH_", buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "SBATCH_VM_CHECKPOINT_LEAD");
	assert_int_equal(
	    vmspec_option_env(VMSPEC_OPT_ENV, "SLURM_", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "SLURM_VM_ENV");
	assert_int_equal(vmspec_option_env(VMSPEC_OPT_ENV, "SLURM_", buf, 10),
			 -ENAMETOOLONG);
	/* Every option has a name, an argument and help; every user field
	 * has an option. */
	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		const struct vmspec_option *op = vmspec_option(o);
		assert_non_null(op->name);
		assert_non_null(op->arg);
		assert_true(strlen(op->help) > 20);
		assert_int_equal(vmspec_option_by_name(op->name), o);
	}
	for (int f = 0; f < VMSPEC_NFIELDS; f++) {
		const char *opt = vmspec_field(f)->option;
		assert_int_equal(vmspec_field_by_name(vmspec_field(f)->name),
				 f);
		if (opt)
			assert_true(vmspec_option_by_name(opt) >= 0);
	}
	assert_null(vmspec_option(VMSPEC_NOPTS));
	assert_int_equal(vmspec_option_by_name("vm-envy"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options),   cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_argv),      cmocka_unit_test(test_guest_mem),
	    cmocka_unit_test(test_env_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
