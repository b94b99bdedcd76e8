// SPDX-License-Identifier: MIT
/*
 * A multi-node job's network as each node works it out alone: the same
 * segment and token on every node of a job, a different segment and token
 * for another job or another run of it, addresses by node index, peers in
 * Slurm's order, and the refusals (subnet too small, bad subnet, node list
 * that disagrees with Slurm's count, a site key others can read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "jobnet.h"

static const char key[] = "0123456789abcdef0123456789abcdef";

static struct slurmjob_info job(uint32_t id, uint32_t idx, time_t start)
{
	struct slurmjob_info si = {
	    .job_id = id, .node_index = idx, .nnodes = 3, .start_time = start};

	snprintf(si.nodes, sizeof(si.nodes), "n1,n2,n3");
	return si;
}

static int plan(const struct vmmd_config *c, const struct slurmjob_info *si,
		struct jobnet *n, char *err)
{
	return jobnet_plan(c, si->job_id, si, key, sizeof(key) - 1, n, err,
			   256);
}

static void test_node_shares(void **state)
{
	struct vmmd_config c;
	struct jobnet a, b;
	char err[256] = "";
	struct slurmjob_info s0 = job(4242, 0, 1000), s2 = job(4242, 2, 1000);

	(void)state;
	config_defaults(&c, "n1");
	assert_int_equal(plan(&c, &s0, &a, err), 0);
	assert_int_equal(plan(&c, &s2, &b, err), 0);
	/* One segment and one token for the whole job. */
	assert_string_equal(a.mcast_group, b.mcast_group);
	assert_string_equal(a.mcast_group, "239.192.16.146");
	assert_int_equal(a.mcast_port, 7700);
	assert_string_equal(a.token, b.token);
	assert_int_equal(strlen(a.token), 64);
	/* Addresses and MACs by index. */
	assert_string_equal(a.addr, "10.77.0.1/16");
	assert_string_equal(b.addr, "10.77.0.3/16");
	assert_string_equal(a.mac, "52:54:00:00:00:00");
	assert_string_equal(b.mac, "52:54:00:00:00:02");
	assert_int_equal(b.node_index, 2);
	assert_int_equal(b.nnodes, 3);
	assert_string_equal(b.peer_names[0], "n1");
	assert_string_equal(b.peer_names[2], "n3");
	assert_null(b.peer_names[3]);
	assert_string_equal(b.peer_addrs[1], "10.77.0.2");
	jobnet_clear(&a);
	jobnet_clear(&b);
}

static void test_jobs_apart(void **state)
{
	struct vmmd_config c;
	struct jobnet a, b, r;
	char err[256] = "";
	struct slurmjob_info s1 = job(1, 0, 1000), s2 = job(2, 0, 1000),
			     again = job(1, 0, 2000);

	(void)state;
	config_defaults(&c, "n1");
	assert_int_equal(plan(&c, &s1, &a, err), 0);
	assert_int_equal(plan(&c, &s2, &b, err), 0);
	assert_int_equal(plan(&c, &again, &r, err), 0);
	assert_string_not_equal(a.mcast_group, b.mcast_group);
	assert_string_not_equal(a.token, b.token);
	/* A requeued job's new run gets a new token. */
	assert_string_not_equal(a.token, r.token);
	jobnet_clear(&a);
	jobnet_clear(&b);
	jobnet_clear(&r);
}

static void test_refusals(void **state)
{
	struct vmmd_config c;
	struct jobnet n;
	char err[256] = "";
	struct slurmjob_info si = job(7, 0, 1);

	(void)state;
	config_defaults(&c, "n1");
	snprintf(c.guest_net, sizeof(c.guest_net), "10.0.0.0/31");
	assert_int_equal(plan(&c, &si, &n, err), -EINVAL);
	assert_non_null(strstr(err, "guest_net '10.0.0.0/31'"));
	snprintf(c.guest_net, sizeof(c.guest_net), "10.0.0.0/30");
	err[0] = '\0';
	assert_int_equal(plan(&c, &si, &n, err), -ERANGE);
	assert_non_null(strstr(err, "job 7: 3 nodes do not fit"));
	snprintf(c.guest_net, sizeof(c.guest_net), "10.0.0.300/16");
	assert_int_equal(plan(&c, &si, &n, err), -EINVAL);
	config_defaults(&c, "n1");
	si.nnodes = 4;
	err[0] = '\0';
	assert_int_equal(plan(&c, &si, &n, err), -EINVAL);
	assert_non_null(strstr(err, "has 3 nodes, Slurm says 4"));
}

static void test_key_file(void **state)
{
	char dir[] = "/tmp/jobnet.XXXXXX", path[64], err[256] = "";
	unsigned char buf[64];
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(key, f);
	fclose(f);
	chmod(path, 0644);
	if (geteuid() == 0) {
		assert_int_equal(jobnet_read_key(path, buf, sizeof(buf), &len,
						 err, sizeof(err)),
				 -EPERM);
		assert_non_null(strstr(err, "mode 0600"));
		chmod(path, 0600);
		assert_int_equal(jobnet_read_key(path, buf, sizeof(buf), &len,
						 err, sizeof(err)),
				 0);
		assert_int_equal(len, 32);
	}
	unlink(path);
	assert_int_equal(
	    jobnet_read_key(path, buf, sizeof(buf), &len, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, "job_key_file"));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_node_shares),
	    cmocka_unit_test(test_jobs_apart),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_key_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
