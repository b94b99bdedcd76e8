// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/jobfiles_served.c without a guest: the paths, the
 * domain fields, vmenv-9p's command line (ids, groups, restored state),
 * and freeze/thaw refusing cleanly when no server runs. test/ninep/
 * host-test runs the real thing against a guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "domxml.h"
#include "job.h"
#include "jobfiles_served.h"
#include "testutil.h"

static void job_init(struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = 42;
	j->uid = 2005;
	j->gid = 2005;
	j->ngroups = 2;
	j->groups[0] = 2005;
	j->groups[1] = 27;
	strcpy(j->dir, "/run/vmenv/jobs/42");
	strcpy(j->work_dir, "/home/a/w");
}

static void test_prepare_domspec(void **state)
{
	struct job j;
	struct dom_spec s = {.share_dir = "/x", .share_tag = "t"};
	char err[256];

	(void)state;
	job_init(&j);
	assert_int_equal(jobfiles_served_domspec(&j, &s), -EINVAL);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	assert_int_equal(jobfiles_served_domspec(&j, &s), 0);
	assert_null(s.share_dir);
	assert_string_equal(s.files_sock, "/run/vmenv/jobs/42/q/files.sock");
	assert_string_equal(s.files_port, "org.vmenv.files.0");
	assert_string_equal(j.served->state,
			    "/run/vmenv/jobs/42/q/files.state");
	jobfiles_served_stop(&j);
	assert_null(j.served);
}

static void test_argv(void **state)
{
	const char *argv[JOBFILES_SERVED_ARGV];
	char line[1024] = "", err[256];
	struct job j;

	(void)state;
	job_init(&j);
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	jobfiles_served_argv(&j, "/ckpt/42/1/files", argv);
	for (size_t i = 1; argv[i]; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "%s ", argv[i]);
	assert_string_equal(
	    line, "--root /home/a/w --connect /run/vmenv/jobs/42/q/files.sock "
		  "--uid 2005 --gid 2005 --groups 2005,27 --state-out "
		  "/run/vmenv/jobs/42/q/files.state --ctl-fd 3 --state-in "
		  "/ckpt/42/1/files ");
	assert_true(strstr(argv[0], "/vmenv-9p") != NULL);
	jobfiles_served_stop(&j);
}

static void test_no_server(void **state)
{
	char err[256];
	struct job j;

	(void)state;
	job_init(&j);
	assert_int_equal(jobfiles_served_freeze(&j, "/tmp", err, sizeof(err)),
			 -ESRCH);
	assert_contains(err, "job 42");
	assert_int_equal(jobfiles_served_prepare(&j, err, sizeof(err)), 0);
	assert_int_equal(jobfiles_served_thaw(&j, NULL, err, sizeof(err)),
			 -EIO);
	assert_contains(err, "did not resume");
	jobfiles_served_stop(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prepare_domspec),
	    cmocka_unit_test(test_argv),
	    cmocka_unit_test(test_no_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
