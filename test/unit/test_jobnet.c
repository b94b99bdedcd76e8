// SPDX-License-Identifier: MIT
/*
 * A multi-node job's network as each node works it out alone: the same
 * bridge, VNI and token on every node of a job, different ones for another
 * job (and a new token for another run of it), taps and addresses by node
 * index, peers in Slurm's order; with VXLAN, which peers are on other hosts
 * and where (net_nodes_file); and the refusals (subnet too small, bad
 * subnet, node list that disagrees with Slurm's count, a node without a
 * tunnel address, a nodes file or site key others can write or read).
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

#include "jobnet.h"
#include "vmmdconf.h"

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
	return jobnet_plan(c, si->job_id, si, key, sizeof(key) - 1, NULL, n,
			   err, 256);
}

static int plan_nodes(const struct vmmd_config *c,
		      const struct slurmjob_info *si, const char *nodes_text,
		      struct jobnet *n, char *err)
{
	struct jobnet_nodes ns;
	int r = jobnet_parse_nodes(nodes_text, "nodes", &ns, err, 256);

	assert_int_equal(r, 0);
	r = jobnet_plan(c, si->job_id, si, key, sizeof(key) - 1, &ns, n, err,
			256);
	jobnet_nodes_clear(&ns);
	return r;
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
	/* One bridge and one token for the whole job; a tap per node; no
	 * tunnel (net_tunnel = none: every node on this host). */
	assert_string_equal(a.host.bridge, b.host.bridge);
	assert_string_equal(a.host.bridge, "vmj00001092");
	assert_string_equal(a.tap, "vmj000010920000");
	assert_string_equal(b.tap, "vmj000010920002");
	assert_string_equal(a.host.tunnel, "");
	assert_int_equal(a.host.guard_port, 0);
	assert_int_equal(a.mtu, 1500);
	assert_int_equal(a.host.nfdb, 0);
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
	assert_string_not_equal(a.host.bridge, b.host.bridge);
	assert_string_equal(a.host.bridge, r.host.bridge);
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

/* Nodes n1 and n2 share host A, n3 is on B: n1's plan tunnels to B only,
 * with a broadcast entry and one for n3's guest; n3's to A, with entries
 * for both guests there. The VNI is the job's on every node. */
static void test_vxlan_plan(void **state)
{
	static const char nodes[] = "# node  tunnel address\n"
				    "n1 192.168.5.1\n"
				    "n2\t192.168.5.1 # the same host\n"
				    "\n"
				    "n3 192.168.5.2\n";
	struct vmmd_config c1, c3;
	struct slurmjob_info s1 = job(4242, 0, 9), s3 = job(4242, 2, 9);
	struct jobnet a, b;
	char err[256] = "";

	(void)state;
	config_defaults(&c1, "n1");
	config_defaults(&c3, "n3");
	snprintf(c1.net_tunnel, sizeof(c1.net_tunnel), "vxlan");
	snprintf(c3.net_tunnel, sizeof(c3.net_tunnel), "vxlan");
	assert_int_equal(plan_nodes(&c1, &s1, nodes, &a, err), 0);
	assert_int_equal(plan_nodes(&c3, &s3, nodes, &b, err), 0);
	assert_string_equal(a.host.tunnel, "vmj00001092t");
	assert_int_equal(a.host.vni, 1 + 4242);
	assert_int_equal(b.host.vni, a.host.vni);
	assert_int_equal(a.host.port, 789);
	assert_int_equal(a.host.guard_port, 789);
	assert_int_equal(a.mtu, 1450);
	assert_int_equal(a.host.mtu, 1450);
	assert_string_equal(a.host.local, "192.168.5.1");
	assert_string_equal(b.host.local, "192.168.5.2");
	assert_int_equal(a.host.nfdb, 2);
	assert_string_equal(a.host.fdb[0].mac, "00:00:00:00:00:00");
	assert_string_equal(a.host.fdb[0].dst, "192.168.5.2");
	assert_string_equal(a.host.fdb[1].mac, "52:54:00:00:00:02");
	assert_string_equal(a.host.fdb[1].dst, "192.168.5.2");
	assert_int_equal(b.host.nfdb, 3);
	assert_string_equal(b.host.fdb[0].mac, "00:00:00:00:00:00");
	assert_string_equal(b.host.fdb[0].dst, "192.168.5.1");
	assert_string_equal(b.host.fdb[1].mac, "52:54:00:00:00:00");
	assert_string_equal(b.host.fdb[2].mac, "52:54:00:00:00:01");
	jobnet_clear(&a);
	jobnet_clear(&b);
	/* Every node on one host: no tunnel at all, the guard still knows
	 * the port. A VNI never 0. */
	s1 = job(16777215, 0, 9);
	assert_int_equal(plan_nodes(&c1, &s1,
				    "n1 10.0.0.1\nn2 10.0.0.1\nn3 10.0.0.1\n",
				    &a, err),
			 0);
	assert_string_equal(a.host.tunnel, "");
	assert_int_equal(a.host.guard_port, 789);
	assert_int_equal(a.host.vni, 1);
	jobnet_clear(&a);
	c1.net_mtu = 9000;
	assert_int_equal(plan_nodes(&c1, &s1, nodes, &a, err), 0);
	assert_int_equal(a.mtu, 9000);
	jobnet_clear(&a);
}

static void test_vxlan_refusals(void **state)
{
	struct vmmd_config c;
	struct slurmjob_info si = job(5, 0, 9);
	struct jobnet_nodes ns;
	struct jobnet n;
	char err[256] = "";

	(void)state;
	config_defaults(&c, "n1");
	snprintf(c.net_tunnel, sizeof(c.net_tunnel), "vxlan");
	assert_int_equal(plan(&c, &si, &n, err), -EINVAL);
	assert_contains(err, "without the nodes' addresses");
	assert_int_equal(
	    plan_nodes(&c, &si, "n1 10.0.0.1\nn2 10.0.0.2\n", &n, err),
	    -ENOENT);
	assert_contains(err, "node 'n3' is not in net_nodes_file");
	assert_int_equal(
	    plan_nodes(&c, &si, "n2 10.0.0.2\nn3 10.0.0.3\n", &n, err),
	    -ENOENT);
	assert_contains(err, "this node 'n1' is not in net_nodes_file");
	c.net_mtu = 100;
	assert_int_equal(plan_nodes(&c, &si, "n1 1.1.1.1\n", &n, err), -EINVAL);
	assert_contains(err, "net_mtu 100");
	/* The file's own refusals, with the line. */
	assert_int_equal(
	    jobnet_parse_nodes("n1 10.0.0.1\nn2\n", "f", &ns, err, 256),
	    -EINVAL);
	assert_contains(err, "f:2: not 'NODE IPV4-ADDRESS'");
	assert_int_equal(
	    jobnet_parse_nodes("n1 10.0.0.300\n", "f", &ns, err, 256), -EINVAL);
	assert_int_equal(
	    jobnet_parse_nodes("n1 10.0.0.1 x\n", "f", &ns, err, 256), -EINVAL);
	assert_int_equal(
	    jobnet_parse_nodes("-n1 10.0.0.1\n", "f", &ns, err, 256), -EINVAL);
	assert_int_equal(jobnet_parse_nodes("n1 10.0.0.1\n\nn1 10.0.0.2\n", "f",
					    &ns, err, 256),
			 -EINVAL);
	assert_contains(err, "f:3: node 'n1' again");
	assert_int_equal(jobnet_parse_nodes("", "f", &ns, err, 256), 0);
	assert_int_equal(ns.n, 0);
	jobnet_nodes_clear(&ns);
}

static void test_nodes_file(void **state)
{
	char dir[] = "/tmp/jobnet.XXXXXX", path[64], link[80], err[256] = "";
	struct jobnet_nodes ns;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nodes", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("n1 10.0.0.1\nn2 10.0.0.2\n", f);
	fclose(f);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(jobnet_read_nodes(link, &ns, err, sizeof(err)),
			 -ELOOP);
	chmod(path, 0664);
	assert_int_equal(jobnet_read_nodes(path, &ns, err, sizeof(err)),
			 -EPERM);
	assert_contains(err, "no one else may write");
	chmod(path, 0644);
	if (geteuid() == 0) {
		assert_int_equal(jobnet_read_nodes(path, &ns, err, sizeof(err)),
				 0);
		assert_int_equal(ns.n, 2);
		assert_string_equal(ns.v[1].name, "n2");
		assert_string_equal(ns.v[1].addr, "10.0.0.2");
		jobnet_nodes_clear(&ns);
	}
	unlink(link);
	unlink(path);
	assert_int_equal(jobnet_read_nodes(path, &ns, err, sizeof(err)),
			 -ENOENT);
	assert_contains(err, "net_nodes_file");
	rmdir(dir);
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
	    cmocka_unit_test(test_vxlan_plan),
	    cmocka_unit_test(test_vxlan_refusals),
	    cmocka_unit_test(test_nodes_file),
	    cmocka_unit_test(test_key_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
