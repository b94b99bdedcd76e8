// SPDX-License-Identifier: MIT
/*
 * Unit tests for plugin/envopt.c: the --vm-* values a batch job submitted
 * without sbatch (slurmrestd) carries in its environment, read in sbatch's
 * order, with the limits of vmmd's request (table-driven).
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
#include <string.h>

#include "cleanup.h"
#include "envopt.h"
#include "util.h"

/* A job environment: NULL-terminated "NAME=value" strings. */
struct fake_env {
	const char *const *v;
};

static int fake_getenv(void *data, const char *name, char *buf, size_t len)
{
	const struct fake_env *f = data;
	size_t n = strlen(name);

	for (const char *const *e = f->v; *e; e++) {
		if (strncmp(*e, name, n) != 0 || (*e)[n] != '=')
			continue;
		snprintf(buf, len, "%s", *e + n + 1);
		return strlen(*e + n + 1) >= len ? -ENOSPC : 0;
	}
	return -ENOENT;
}

static const struct {
	const char *what;
	const char *env[4];
	int opt;	   /* the option looked at */
	const char *value; /* its value, NULL: not set */
	const char *from;
} cases[] = {
    {"SBATCH_ names the image",
     {"SBATCH_VM_ENV=tiny", NULL},
     VMSPEC_OPT_ENV,
     "tiny",
     "SBATCH_VM_ENV"},
    {"SLURM_ names it when SBATCH_ does not",
     {"SLURM_VM_ENV=tiny:1", NULL},
     VMSPEC_OPT_ENV,
     "tiny:1",
     "SLURM_VM_ENV"},
    {"SBATCH_ wins over SLURM_, as in sbatch",
     {"SLURM_VM_ENV=b", "SBATCH_VM_ENV=a", NULL},
     VMSPEC_OPT_ENV,
     "a",
     "SBATCH_VM_ENV"},
    {"an empty SBATCH_ is not set",
     {"SBATCH_VM_ENV=", "SLURM_VM_ENV=b", NULL},
     VMSPEC_OPT_ENV,
     "b",
     "SLURM_VM_ENV"},
    {"dashes are underscores",
     {"SBATCH_VM_MEM_HEADROOM=10%", NULL},
     VMSPEC_OPT_MEM_HEADROOM,
     "10%",
     "SBATCH_VM_MEM_HEADROOM"},
    {"the value is kept as written, for vmmd to judge",
     {"SBATCH_VM_IB=lots", NULL},
     VMSPEC_OPT_IB,
     "lots",
     "SBATCH_VM_IB"},
    {"other variables say nothing",
     {"VMENV_ENV=tiny", "SLURM_SPANK__SLURM_SPANK_OPTION_vmenv_vm_env=x",
      "sbatch_vm_env=y", NULL},
     VMSPEC_OPT_ENV,
     NULL,
     ""},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool given[VMSPEC_NOPTS] = {false};
		struct envopt e;
		char err[256] = "";
		int o = cases[i].opt;

		print_message("%s\n", cases[i].what);
		struct fake_env f = {cases[i].env};

		assert_int_equal(envopt_collect(fake_getenv, &f, given, &e, err,
						sizeof(err)),
				 0);
		if (cases[i].value)
			assert_string_equal(e.value[o], cases[i].value);
		else
			assert_null(e.value[o]);
		assert_string_equal(e.from[o], cases[i].from);
		envopt_clear(&e);
	}
}

/* An option given on the command line (or #SBATCH) is the truth. */
static void test_given_wins(void **state)
{
	const char *env[] = {"SBATCH_VM_ENV=tiny", "SBATCH_VM_GPUS=no", NULL};
	struct fake_env f = {env};
	bool given[VMSPEC_NOPTS] = {[VMSPEC_OPT_ENV] = true};
	struct envopt e;
	char err[256];

	(void)state;
	assert_int_equal(
	    envopt_collect(fake_getenv, &f, given, &e, err, sizeof(err)), 0);
	assert_null(e.value[VMSPEC_OPT_ENV]);
	assert_string_equal(e.value[VMSPEC_OPT_GPUS], "no");
	envopt_clear(&e);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Cut short, a value would mean something else: refused, naming the
 * variable and the limit; the longest that fits is taken. */
static void test_limits(void **state)
{
	const size_t lim[] = {VMENV_MAX_IMAGE_NAME, VMSPEC_MAX_OPTARG};
	const char *var[] = {"SBATCH_VM_ENV", "SBATCH_VM_MOUNT"};
	bool given[VMSPEC_NOPTS] = {false};

	(void)state;
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		char *v = repeat('a', lim[i]), *line, err[256] = "", want[160];
		const char *env[] = {NULL, NULL};
		struct fake_env f = {env};
		struct envopt e;

		assert_true(asprintf(&line, "%s=%s", var[i], v) > 0);
		env[0] = line;
		assert_int_equal(envopt_collect(fake_getenv, &f, given, &e, err,
						sizeof(err)),
				 -E2BIG);
		/* The start of the value, as much as printable() quotes. */
		snprintf(want, sizeof(want),
			 "%s='%.44s...' is longer than %zu bytes", var[i], v,
			 lim[i] - 1);
		assert_string_equal(err, want);
		for (int o = 0; o < VMSPEC_NOPTS; o++)
			assert_null(e.value[o]);
		/* One byte less fits. */
		line[strlen(line) - 1] = '\0';
		assert_int_equal(envopt_collect(fake_getenv, &f, given, &e, err,
						sizeof(err)),
				 0);
		assert_int_equal(
		    strlen(e.value[i ? VMSPEC_OPT_MOUNT : VMSPEC_OPT_ENV]),
		    lim[i] - 1);
		envopt_clear(&e);
		free(line);
		free(v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_given_wins),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
