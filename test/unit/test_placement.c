// SPDX-License-Identifier: MIT
/*
 * CPU sets, the host topology read from fixture trees
 * (test/data/sysfs/{node2s,plain}, made by test/data/sysfs/mkfixtures),
 * Slurm's core indices mapped to Linux CPUs, and the placement built from
 * them: pinning, guest topology, NUMA cells, memory split, hugepages,
 * devices' cells, and the refusals with their reasons.
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

#include "cleanup.h"
#include "cpuset.h"
#include "hostinfo.h"
#include "placement.h"
#include "util.h"

#define NODE2S TEST_DATADIR "/sysfs/node2s/sys"
#define PLAIN  TEST_DATADIR "/sysfs/plain/sys"

static struct cpuset set_of(const char *list)
{
	struct cpuset s;

	if (cpuset_parse(list, &s) != 0)
		fail_msg("cannot parse '%s'", list);
	return s;
}

static void assert_set(const struct cpuset *s, const char *want)
{
	char got[512];

	assert_int_equal(cpuset_format(s, got, sizeof(got)), 0);
	assert_string_equal(got, want);
}

/* --- cpuset ------------------------------------------------------------- */

static void test_cpuset_parse(void **state)
{
	static const struct {
		const char *in;
		int r;
		const char *canonical;
		uint32_t count;
	} cases[] = {
	    {"", 0, "", 0},
	    {"\n", 0, "", 0},
	    {"0", 0, "0", 1},
	    {"0-3\n", 0, "0-3", 4},
	    {"0-3,8-11", 0, "0-3,8-11", 8},
	    {"3,1,2,0", 0, "0-3", 4},
	    {"0,2,4", 0, "0,2,4", 3},
	    {"5-5", 0, "5", 1},
	    {"1023", 0, "1023", 1},
	    {"63-64", 0, "63-64", 2},
	    {"1024", -ERANGE, NULL, 0},
	    {"0-99999", -ERANGE, NULL, 0},
	    {"3-1", -EINVAL, NULL, 0},
	    {"1,", -EINVAL, NULL, 0},
	    {",1", -EINVAL, NULL, 0},
	    {"1,,2", -EINVAL, NULL, 0},
	    {"a", -EINVAL, NULL, 0},
	    {"1-", -EINVAL, NULL, 0},
	    {"-1", -EINVAL, NULL, 0},
	    {"1 2", -EINVAL, NULL, 0},
	    {"0-3\n\n", -EINVAL, NULL, 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cpuset s = set_of("7");

		print_message("case: '%s'\n", cases[i].in);
		assert_int_equal(cpuset_parse(cases[i].in, &s), cases[i].r);
		if (cases[i].r < 0) {
			/* untouched on failure */
			assert_set(&s, "7");
			continue;
		}
		assert_set(&s, cases[i].canonical);
		assert_int_equal(cpuset_count(&s), cases[i].count);
	}
}

static void test_cpuset_ops(void **state)
{
	struct cpuset a = set_of("0-3,8"), b = set_of("2-9"), c = a;
	char small[4];
	int n = 0;

	assert_true(cpuset_intersects(&a, &b));
	assert_false(cpuset_subset(&a, &b));
	cpuset_and(&c, &b);
	assert_set(&c, "2-3,8");
	assert_true(cpuset_subset(&c, &a));
	cpuset_or(&c, &b);
	assert_set(&c, "2-9");
	assert_true(cpuset_equal(&c, &b));
	for (int i = cpuset_next(&a, -1); i >= 0; i = cpuset_next(&a, i))
		n++;
	assert_int_equal(n, 5);
	assert_int_equal(cpuset_next(&a, 8), -1);
	assert_int_equal(cpuset_format(&a, small, sizeof(small)), -ENOSPC);
	assert_string_equal(small, "");
	cpuset_zero(&c);
	assert_true(cpuset_empty(&c));
	cpuset_set(&c, CPUSET_MAX); /* ignored, not a crash */
	assert_true(cpuset_empty(&c));
}

/* --- hostinfo ----------------------------------------------------------- */

static struct host_topo *topo(const char *root)
{
	struct host_topo *t = malloc(sizeof(*t));
	char err[256] = "";

	assert_non_null(t);
	if (hostinfo_read(root, t, err, sizeof(err)) != 0)
		fail_msg("hostinfo_read(%s): %s", root, err);
	return t;
}

static void test_hostinfo_node2s(void **state)
{
	struct host_topo *t = topo(NODE2S);
	struct cpuset sib;

	assert_set(&t->online, "0-15");
	assert_set(&t->nodes, "0-1");
	assert_set(&t->node[0].cpus, "0-3,8-11");
	assert_set(&t->node[1].cpus, "4-7,12-15");
	/* CPU = thread*8 + package*4 + core; core_ids 0,1,8,9 */
	assert_int_equal(t->cpu[13].package, 1);
	assert_int_equal(t->cpu[13].core, 1);
	assert_int_equal(t->cpu[13].node, 1);
	assert_int_equal(t->cpu[2].core, 8);
	assert_int_equal(t->node[0].mem_total_kib, 67108864);
	assert_int_equal(t->node[1].mem_free_kib, 61000000);
	assert_int_equal(t->node[0].hp_free[HOST_HP_2M], 1000);
	assert_int_equal(t->node[1].hp_free[HOST_HP_2M], 16);
	assert_int_equal(t->node[0].hp_free[HOST_HP_1G], 4);
	assert_int_equal(t->node[1].hp_total[HOST_HP_1G], 0);
	hostinfo_core_siblings(t, 9, &sib);
	assert_set(&sib, "1,9");
	free(t);
}

static void test_hostinfo_plain_and_errors(void **state)
{
	struct host_topo *t = topo(PLAIN), *u = malloc(sizeof(*u));
	char err[256] = "";

	assert_set(&t->online, "0-1");
	assert_set(&t->nodes, "0");
	assert_int_equal(t->node[0].hp_free[HOST_HP_2M], 0);
	assert_int_equal(hostinfo_read("/nonexistent", u, err, sizeof(err)),
			 -ENOENT);
	assert_contains(err, "/nonexistent/devices/system/cpu/online");
	free(u);
	free(t);
}

/* This machine's own /sys: whatever it holds, it reads. */
static void test_hostinfo_real_sys(void **state)
{
	struct host_topo *t = malloc(sizeof(*t));
	char err[256] = "";

	assert_non_null(t);
	if (hostinfo_read("/sys", t, err, sizeof(err)) != 0) {
		free(t);
		print_message("no usable /sys here: %s\n", err);
		skip();
	}
	assert_false(cpuset_empty(&t->online));
	assert_false(cpuset_empty(&t->nodes));
	free(t);
}

static void test_order(void **state)
{
	struct host_topo *t = topo(NODE2S);
	struct cpuset all = set_of("0-15"), some = set_of("13,4,12,5");
	uint32_t o[CPUSET_MAX];
	static const uint32_t want[] = {0, 8,  1, 9,  2, 10, 3, 11,
					4, 12, 5, 13, 6, 14, 7, 15};

	assert_int_equal(hostinfo_order(t, &all, o, CPUSET_MAX), 16);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		assert_int_equal(o[i], want[i]);
	assert_int_equal(hostinfo_order(t, &some, o, CPUSET_MAX), 4);
	assert_int_equal(o[0], 4);
	assert_int_equal(o[1], 12);
	assert_int_equal(o[2], 5);
	assert_int_equal(o[3], 13);
	free(t);
}

static void test_slurm_cpus(void **state)
{
	static const struct {
		const char *root, *ids;
		uint32_t slurm_cores;
		int r;
		const char *want; /* CPUs, or a piece of the error */
	} cases[] = {
	    /* Slurm knows the 8 cores: core k is both its threads. */
	    {NODE2S, "0", 8, 0, "0,8"},
	    {NODE2S, "0-3", 8, 0, "0-3,8-11"},
	    {NODE2S, "4", 8, 0, "4,12"},
	    {NODE2S, "3-4", 8, 0, "3-4,11-12"},
	    {NODE2S, "7", 8, 0, "7,15"},
	    /* slurm.conf says CPUs=16 only: index k is the k-th CPU in
	     * topology order. */
	    {NODE2S, "0-1", 16, 0, "0,8"},
	    {NODE2S, "2", 16, 0, "1"},
	    /* This cluster: 2 cores, no threads. */
	    {PLAIN, "0", 2, 0, "0"},
	    {PLAIN, "1", 2, 0, "1"},
	    {PLAIN, "0-1", 2, 0, "0-1"},
	    {NODE2S, "0", 12, -EINVAL, "12 cores but the host has 8 cores"},
	    {NODE2S, "8", 8, -EINVAL, "core index 8 of only 8"},
	    {PLAIN, "2", 2, -EINVAL, "core index 2"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct host_topo *t = topo(cases[i].root);
		struct cpuset ids = set_of(cases[i].ids), out;
		char err[256] = "";

		print_message("case %zu: ids %s of %u cores\n", i, cases[i].ids,
			      cases[i].slurm_cores);
		assert_int_equal(hostinfo_slurm_cpus(t, &ids,
						     cases[i].slurm_cores, &out,
						     err, sizeof(err)),
				 cases[i].r);
		if (cases[i].r == 0)
			assert_set(&out, cases[i].want);
		else
			assert_contains(err, cases[i].want);
		free(t);
	}
}

/* --- placement ---------------------------------------------------------- */

static struct place_req req(const char *cpus, uint32_t mem_mib)
{
	struct place_req q = {.job_id = 42, .node = "n1", .mem_mib = mem_mib};

	q.cpus = set_of(cpus);
	return q;
}

static int build(const char *root, const struct place_req *q,
		 struct dom_placement *p, char *err, size_t errlen)
{
	struct host_topo *t = topo(root);
	char note[256];
	int r = placement_build(t, q, p, note, sizeof(note), err, errlen);

	free(t);
	return r;
}

static struct dom_placement *place_ok(const char *root,
				      const struct place_req *q)
{
	struct dom_placement *p = malloc(sizeof(*p));
	char err[256] = "";

	assert_non_null(p);
	if (build(root, q, p, err, sizeof(err)) != 0)
		fail_msg("placement failed: %s", err);
	return p;
}

static void test_place_one_socket(void **state)
{
	struct place_req q = req("0-3,8-11", 4096);
	struct dom_placement *p;

	q.hard_limit_mib = 4224;
	p = place_ok(NODE2S, &q);
	assert_int_equal(p->nvcpus, 8);
	/* vCPUs in (package, core, thread) order: siblings adjacent. */
	assert_int_equal(p->pin[0], 0);
	assert_int_equal(p->pin[1], 8);
	assert_int_equal(p->pin[7], 11);
	assert_int_equal(p->sockets, 1);
	assert_int_equal(p->cores, 4);
	assert_int_equal(p->threads, 2);
	assert_int_equal(p->ncells, 1);
	assert_int_equal(p->cell[0].host_node, 0);
	assert_set(&p->cell[0].vcpus, "0-7");
	assert_int_equal(p->cell[0].mem_mib, 4096);
	assert_set(&p->emulator, "0-3,8-11");
	assert_int_equal(p->hard_limit_mib, 4224);
	assert_int_equal(p->hugepage_kib, 0);
	assert_int_equal(placement_mem_mib(p), 4096);
	free(p);
}

static void test_place_two_sockets(void **state)
{
	/* One core (two threads) on each socket. */
	struct place_req q = req("1,9,5,13", 1001);
	struct dom_placement *p = place_ok(NODE2S, &q);

	assert_int_equal(p->nvcpus, 4);
	assert_int_equal(p->pin[0], 1);
	assert_int_equal(p->pin[1], 9);
	assert_int_equal(p->pin[2], 5);
	assert_int_equal(p->pin[3], 13);
	assert_int_equal(p->sockets, 2);
	assert_int_equal(p->cores, 1);
	assert_int_equal(p->threads, 2);
	assert_int_equal(p->ncells, 2);
	assert_int_equal(p->cell[0].host_node, 0);
	assert_int_equal(p->cell[1].host_node, 1);
	assert_set(&p->cell[0].vcpus, "0-1");
	assert_set(&p->cell[1].vcpus, "2-3");
	/* Split by vCPUs, whole MiB, the odd one to the first cell. */
	assert_int_equal(p->cell[0].mem_mib, 501);
	assert_int_equal(p->cell[1].mem_mib, 500);
	free(p);
}

static void test_place_uneven(void **state)
{
	static const struct {
		const char *root, *cpus;
		uint32_t s, c, t;
	} cases[] = {
	    /* 3 cores on socket 0, 1 on socket 1, all with both threads:
	     * one socket, threads kept. */
	    {NODE2S, "0-2,8-10,4,12", 1, 4, 2},
	    /* One thread of a core and both of another: no uniform
	     * threads either. */
	    {NODE2S, "0,8,1", 1, 3, 1},
	    /* Single threads on two sockets (Slurm CPUs=16 style). */
	    {NODE2S, "0,4", 2, 1, 1},
	    {PLAIN, "0-1", 1, 2, 1},
	    {PLAIN, "1", 1, 1, 1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct place_req q = req(cases[i].cpus, 1024);
		struct dom_placement *p = place_ok(cases[i].root, &q);

		print_message("case: %s\n", cases[i].cpus);
		assert_int_equal(p->sockets, cases[i].s);
		assert_int_equal(p->cores, cases[i].c);
		assert_int_equal(p->threads, cases[i].t);
		assert_int_equal(p->sockets * p->cores * p->threads, p->nvcpus);
		free(p);
	}
}

static void test_place_housekeeping(void **state)
{
	struct place_req q = req("4-5", 512);
	struct dom_placement *p;

	q.housekeeping = set_of("0");
	p = place_ok(NODE2S, &q);
	assert_set(&p->emulator, "0");
	free(p);
}

static void test_place_hugepages(void **state)
{
	struct place_req q = req("0-1", 1001);
	struct dom_placement *p;

	/* 2 MiB pages: the guest's RAM rounds down to whole pages. */
	q.hugepage_kib = 2048;
	p = place_ok(NODE2S, &q);
	assert_int_equal(p->hugepage_kib, 2048);
	assert_int_equal(placement_mem_mib(p), 1000);
	free(p);
	/* 1 GiB pages on node 0: 4 free. */
	q.mem_mib = 4096 + 100;
	q.hugepage_kib = 1048576;
	p = place_ok(NODE2S, &q);
	assert_int_equal(placement_mem_mib(p), 4096);
	free(p);
	/* Two cells, 2 MiB pages: node 1 has only 16 free (32 MiB). */
	q = req("0,4", 64);
	q.hugepage_kib = 2048;
	p = place_ok(NODE2S, &q);
	assert_int_equal(p->cell[1].mem_mib, 32);
	free(p);
}

static void test_place_refusals(void **state)
{
	static const struct {
		const char *what, *root, *cpus;
		uint32_t mem, hp_kib, limit;
		const char *housekeeping;
		int r;
		const char *want;
	} cases[] = {
	    {"no CPUs", NODE2S, "", 512, 0, 0, NULL, -EINVAL,
	     "job 42: Slurm allocated no CPUs on node n1"},
	    {"CPUs not on the host", PLAIN, "0-3", 512, 0, 0, NULL, -EINVAL,
	     "job 42: allocated CPUs 2-3 are not online on node n1"},
	    {"housekeeping not on the host", PLAIN, "0", 512, 0, 0, "5",
	     -EINVAL, "housekeeping CPUs 5 are not online"},
	    {"more 2M pages than free", NODE2S, "4-5", 512, 2048, 0, NULL,
	     -ENOMEM,
	     "job 42: the guest needs 256 hugepages of 2048 KiB on NUMA "
	     "node 1 but node n1 has 16 free there"},
	    {"1G pages where there are none", NODE2S, "4", 2048, 1048576, 0,
	     NULL, -ENOMEM, "needs 2 hugepages of 1048576 KiB on NUMA node 1"},
	    {"more 1G pages than free", NODE2S, "0", 5120, 1048576, 0, NULL,
	     -ENOMEM,
	     "needs 5 hugepages of 1048576 KiB on NUMA node 0 but "
	     "node n1 has 4 free"},
	    {"hugepages on a node without", PLAIN, "0", 256, 2048, 0, NULL,
	     -ENOMEM, "has 0 free"},
	    {"less than one hugepage", NODE2S, "0", 512, 1048576, 0, NULL,
	     -EINVAL, "less than one hugepage"},
	    {"odd hugepage size", NODE2S, "0", 512, 4, 0, NULL, -EINVAL,
	     "hugepages of 4 KiB are not supported"},
	    {"limit below the guest", NODE2S, "0", 512, 0, 500, NULL, -EINVAL,
	     "memory limit 500 MiB is below the guest's 512 MiB"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct place_req q = req(cases[i].cpus, cases[i].mem);
		struct dom_placement *p = malloc(sizeof(*p));
		char err[256] = "";

		print_message("case: %s\n", cases[i].what);
		q.hugepage_kib = cases[i].hp_kib;
		q.hard_limit_mib = cases[i].limit;
		if (cases[i].housekeeping)
			q.housekeeping = set_of(cases[i].housekeeping);
		assert_int_equal(build(cases[i].root, &q, p, err, sizeof(err)),
				 cases[i].r);
		assert_contains(err, cases[i].want);
		free(p);
	}
}

static void test_place_devices(void **state)
{
	struct place_req q = req("0,4", 1024);
	struct host_topo *t = topo(NODE2S);
	struct dom_placement *p = malloc(sizeof(*p));
	char note[256], err[256];

	q.ndevs = 3;
	pci_addr_parse("0000:3b:00.1", &q.dev[0].addr);
	q.dev[0].numa_node = 0;
	q.dev[0].what = "IB VF";
	pci_addr_parse("0000:af:00.0", &q.dev[1].addr);
	q.dev[1].numa_node = 1;
	q.dev[1].what = "GPU";
	pci_addr_parse("0000:18:00.0", &q.dev[2].addr);
	q.dev[2].numa_node = -1;
	q.dev[2].what = "GPU";
	assert_int_equal(
	    placement_build(t, &q, p, note, sizeof(note), err, sizeof(err)), 0);
	assert_int_equal(p->ndevs, 3);
	assert_int_equal(p->dev[0].cell, 0);
	assert_int_equal(p->dev[1].cell, 1);
	assert_int_equal(p->dev[2].cell, -1); /* locality unknown: root bus */
	assert_string_equal(note, "");
	/* CPUs on node 0 only: one cell, no expander bus, and a note for
	 * the GPU on node 1. */
	q.cpus = set_of("0-1");
	assert_int_equal(
	    placement_build(t, &q, p, note, sizeof(note), err, sizeof(err)), 0);
	assert_int_equal(p->ncells, 1);
	assert_int_equal(p->dev[0].cell, -1);
	assert_int_equal(p->dev[1].cell, -1);
	assert_string_equal(note, "GPU 0000:af:00.0 is on NUMA node 1, where "
				  "the job has no CPUs");
	free(p);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cpuset_parse),
	    cmocka_unit_test(test_cpuset_ops),
	    cmocka_unit_test(test_hostinfo_node2s),
	    cmocka_unit_test(test_hostinfo_plain_and_errors),
	    cmocka_unit_test(test_hostinfo_real_sys),
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_slurm_cpus),
	    cmocka_unit_test(test_place_one_socket),
	    cmocka_unit_test(test_place_two_sockets),
	    cmocka_unit_test(test_place_uneven),
	    cmocka_unit_test(test_place_housekeeping),
	    cmocka_unit_test(test_place_hugepages),
	    cmocka_unit_test(test_place_refusals),
	    cmocka_unit_test(test_place_devices),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
