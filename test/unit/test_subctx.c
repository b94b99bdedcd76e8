// SPDX-License-Identifier: MIT
/*
 * Unit tests for plugin/subctx.c: where the submit side finds the job's
 * partition, account and QOS in sbatch/salloc/srun command lines and in a
 * batch script's #SBATCH lines (table-driven).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "subctx.h"

static const struct {
	const char *line; /* the words after the program, space separated */
	bool sbatch;
	const char *partition, *account, *qos, *script;
} cases[] = {
    {"-p prod job.sh", true, "prod", "", "", "job.sh"},
    {"-pprod -A phys -q high job.sh -p other", true, "prod", "phys", "high",
     "job.sh"},
    {"--partition=prod --account phys --qos=low job.sh", true, "prod", "phys",
     "low", "job.sh"},
    {"--partition prod,debug --wrap true", true, "prod,debug", "", "", ""},
    {"-N2 -n 4 -p prod job.sh", true, "prod", "", "", "job.sh"},
    /* Flags that take nothing do not eat the next word. */
    {"-v -p prod job.sh", true, "prod", "", "", "job.sh"},
    {"-vvp prod job.sh", true, "prod", "", "", "job.sh"},
    {"--exclusive job.sh -p x", true, "", "", "", "job.sh"},
    {"--vm-checkpoint job.sh -p x", true, "", "", "", "job.sh"},
    {"--vm-env tiny -p prod job.sh", true, "prod", "", "", "job.sh"},
    /* Options taking a word do eat it: -J -p is a job name. */
    {"-J -p job.sh", true, "", "", "", "job.sh"},
    {"--job-name -p job.sh", true, "", "", "", "job.sh"},
    /* sbatch -W waits; srun -W takes seconds. */
    {"-W job.sh -p x", true, "", "", "", "job.sh"},
    {"-W 5 -p prod cmd", false, "prod", "", "", "cmd"},
    {"--wait job.sh -p x", true, "", "", "", "job.sh"},
    {"--wait 5 -p prod cmd", false, "prod", "", "", "cmd"},
    /* The command's own options are not srun's. */
    {"-n1 ./a.out -p 4", false, "", "", "", "./a.out"},
    {"-- -p x", false, "", "", "", ""},
    {"-p", true, "", "", "", ""},
    {"--partition", true, "", "", "", ""},
    {"", true, "", "", "", ""},
};

static void test_args(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct subctx_args a = {0};
		char buf[256], *argv[32];
		int argc = 0;

		print_message("'%s'\n", cases[i].line);
		snprintf(buf, sizeof(buf), "%s", cases[i].line);
		for (char *t = strtok(buf, " "); t; t = strtok(NULL, " "))
			argv[argc++] = t;
		subctx_scan_args(argc, argv, cases[i].sbatch, &a);
		assert_string_equal(a.partition, cases[i].partition);
		assert_string_equal(a.account, cases[i].account);
		assert_string_equal(a.qos, cases[i].qos);
		assert_string_equal(a.script, cases[i].script);
	}
}

static void test_script(void **state)
{
	struct subctx_args a = {0};

	subctx_scan_script("#!/bin/bash\n"
			   "# a comment\n"
			   "\n"
			   "#SBATCH -p prod   # the partition\n"
			   "#SBATCH --account=phys\n"
			   "#SBATCHX --qos=ignored\n"
			   "#SBATCH --vm-env=tiny\n"
			   "echo hi\n"
			   "#SBATCH --qos=too-late\n",
			   &a);
	assert_string_equal(a.partition, "prod");
	assert_string_equal(a.account, "phys");
	assert_string_equal(a.qos, "");
	/* What is known already wins (the command line before the
	 * script). */
	snprintf(a.qos, sizeof(a.qos), "cli");
	subctx_scan_script("#SBATCH -q script\n", &a);
	assert_string_equal(a.qos, "cli");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args),
	    cmocka_unit_test(test_script),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
