// SPDX-License-Identifier: MIT
/*
 * Devices on fixture nodes (test/data/sysfs/, see mkfixtures): PCI
 * addresses, SR-IOV VFs, IOMMU groups, GPU device files to PCI devices,
 * per-VF GUIDs; gres.conf and Slurm's GRES detail; leases; and a job's
 * devices: VFs exclusive across concurrent jobs, exhaustion, a restarted
 * vmmd (nothing in memory: the leases on disk) never handing a VF out
 * twice, GPUs only ever the job's own, failures leaving nothing.
 *
 * Tests that write (leases, GUIDs) work on a copy of the fixture in /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "devices.h"
#include "devlease.h"
#include "gres.h"
#include "pcidev.h"
#include "rmtree.h"
#include "sysfs.h"
#include "util.h"
#include "vmmdconf.h"

#define FIX    TEST_DATADIR "/sysfs"
#define NODE2S FIX "/node2s/sys"
#define PROC2S FIX "/node2s/proc"

static struct pci_addr addr(const char *s)
{
	struct pci_addr a;

	if (pci_addr_parse(s, &a) != 0)
		fail_msg("bad address '%s'", s);
	return a;
}

static void assert_addr(const struct pci_addr *a, const char *want)
{
	char s[PCI_ADDR_LEN];

	pci_addr_format(a, s);
	assert_string_equal(s, want);
}

/* --- PCI, SR-IOV, IOMMU groups, device files ----------------------------- */

static void test_pci_addr(void **state)
{
	static const struct {
		const char *in;
		int r;
		const char *out;
	} cases[] = {
	    {"0000:3b:00.2", 0, "0000:3b:00.2"},
	    {"0000:AF:1F.7", 0, "0000:af:1f.7"},
	    {"ffff:ff:1f.7", 0, "ffff:ff:1f.7"},
	    {"0000:3b:20.0", -EINVAL, NULL}, /* slot > 31 */
	    {"0000:3b:00.8", -EINVAL, NULL}, /* function > 7 */
	    {"3b:00.2", -EINVAL, NULL},
	    {"0000:3b:00.2 ", -EINVAL, NULL},
	    {"0000:3b:00:2", -EINVAL, NULL},
	    {"00g0:3b:00.2", -EINVAL, NULL},
	    {"", -EINVAL, NULL},
	    {"../../../etc", -EINVAL, NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pci_addr a;

		print_message("case: '%s'\n", cases[i].in);
		assert_int_equal(pci_addr_parse(cases[i].in, &a), cases[i].r);
		if (!cases[i].r)
			assert_addr(&a, cases[i].out);
	}
}

static void test_pf_and_vfs(void **state)
{
	struct pci_addr pf, byname;
	struct pci_vf vfs[16];
	size_t n = 0;
	int numa;

	assert_int_equal(pci_resolve_pf(NODE2S, "0000:3b:00.0", &pf), 0);
	assert_int_equal(pci_resolve_pf(NODE2S, "mlx5_0", &byname), 0);
	assert_true(pci_addr_equal(&pf, &byname));
	assert_int_equal(pci_resolve_pf(NODE2S, "mlx5_9", &byname), -ENOENT);
	assert_int_equal(pci_resolve_pf(NODE2S, "0000:3b:00.9", &byname),
			 -EINVAL);
	assert_int_equal(pci_resolve_pf(NODE2S, "0000:5e:00.0", &byname),
			 -ENOENT);
	assert_int_equal(pci_resolve_pf(NODE2S, "../mlx5_0", &byname), -EINVAL);
	assert_int_equal(pci_list_vfs(NODE2S, &pf, vfs, 16, &n), 0);
	assert_int_equal(n, 8);
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(vfs[i].index, i);
		assert_true(pci_addr_equal(&vfs[i].pf, &pf));
		assert_int_equal(vfs[i].numa_node, 0);
	}
	assert_addr(&vfs[0].addr, "0000:3b:00.1");
	assert_addr(&vfs[6].addr, "0000:3b:00.7");
	assert_addr(&vfs[7].addr, "0000:3b:01.0");
	assert_int_equal(pci_list_vfs(NODE2S, &pf, vfs, 4, &n), -E2BIG);
	assert_int_equal(n, 8);
	/* A GPU has no VFs. */
	pf = addr("0000:18:00.0");
	assert_int_equal(pci_list_vfs(NODE2S, &pf, vfs, 16, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pci_numa_node(NODE2S, &pf, &numa), 0);
	assert_int_equal(numa, 0);
	pf = addr("0000:af:00.1");
	assert_int_equal(pci_numa_node(NODE2S, &pf, &numa), 0);
	assert_int_equal(numa, 1);
}

static void test_devfiles(void **state)
{
	static const struct {
		const char *file;
		int r;
		const char *want[2];
	} cases[] = {
	    {"/dev/nvidia0", 0, {"0000:18:00.0"}},
	    {"/dev/nvidia3", 0, {"0000:af:00.0"}},
	    {"/dev/nvidia4", -ENOENT, {NULL}},
	    /* The whole IOMMU group, but not its bridge. */
	    {"/dev/vfio/33", 0, {"0000:af:00.0", "0000:af:00.1"}},
	    {"/dev/vfio/31", 0, {"0000:3d:00.0"}},
	    {"/dev/vfio/99", -ENOENT, {NULL}},
	    {"/dev/dri/renderD130", 0, {"0000:86:00.0"}},
	    {"/dev/dri/renderD200", -ENOENT, {NULL}},
	    {"/dev/nvidiactl", -EOPNOTSUPP, {NULL}},
	    {"/dev/sda", -EOPNOTSUPP, {NULL}},
	    {"/dev/vfio/vfio", -EOPNOTSUPP, {NULL}},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pci_addr a[4];
		size_t n = 0;

		print_message("case: %s\n", cases[i].file);
		assert_int_equal(
		    pci_from_devfile(NODE2S, PROC2S, cases[i].file, a, 4, &n),
		    cases[i].r);
		if (cases[i].r)
			continue;
		for (size_t k = 0; k < 2; k++) {
			if (!cases[i].want[k]) {
				assert_int_equal(n, k);
				break;
			}
			assert_addr(&a[k], cases[i].want[k]);
		}
	}
}

static void test_guids(void **state)
{
	char s[IB_GUID_LEN];
	uint64_t g;

	ib_guid_format(0x02c903000003b0a1ull, s);
	assert_string_equal(s, "02:c9:03:00:00:03:b0:a1");
	assert_int_equal(ib_guid_parse(s, &g), 0);
	assert_true(g == 0x02c903000003b0a1ull);
	assert_int_equal(ib_guid_parse("02:c9:03:00:00:03:b0", &g), -EINVAL);
	assert_int_equal(ib_guid_parse("02-c9-03-00-00-03-b0-a1", &g), -EINVAL);
	assert_int_equal(ib_guid_parse("0x:c9:03:00:00:03:b0:a1", &g), -EINVAL);
}

/* --- gres.conf and Slurm's GRES detail ---------------------------------- */

static int collect(const char *name, void *data)
{
	char *out = data;

	strcat(out, name);
	strcat(out, " ");
	return 0;
}

static void test_gres_expand(void **state)
{
	static const struct {
		const char *in;
		int r;
		const char *out;
	} cases[] = {
	    {"n1", 0, "n1 "},
	    {"n[1-3]", 0, "n1 n2 n3 "},
	    {"n[01-03,7]", 0, "n01 n02 n03 n7 "}, /* each range its width */
	    {"n[001-002]", 0, "n001 n002 "},
	    {"n[8-10]x,gpu1", 0, "n8x n9x n10x gpu1 "},
	    {"/dev/nvidia[0-3]", 0,
	     "/dev/nvidia0 /dev/nvidia1 /dev/nvidia2 /dev/nvidia3 "},
	    {"/dev/vfio/30,/dev/vfio/31", 0, "/dev/vfio/30 /dev/vfio/31 "},
	    {"n[3-1]", -EINVAL, ""},
	    {"n[1-", -EINVAL, ""},
	    {"n]1", -EINVAL, ""},
	    {"n[1][2]", -EINVAL, ""},
	    {"n[[1]]", -EINVAL, ""},
	    {"n[]", -EINVAL, ""},
	    {"", -EINVAL, ""},
	    {"a,", -EINVAL, "a "},
	    {"n[0-9999]", -E2BIG, NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		static char out[80000];

		out[0] = '\0';
		print_message("case: '%s'\n", cases[i].in);
		assert_int_equal(gres_expand(cases[i].in, collect, out),
				 cases[i].r);
		if (cases[i].out)
			assert_string_equal(out, cases[i].out);
	}
}

static void test_gres_conf(void **state)
{
	struct gres_gpus g;
	_cleanup_free_ char *text = NULL;
	char err[256] = "";

	assert_int_equal(
	    read_file_limited(FIX "/node2s/etc/gres.conf", 4096, &text, NULL),
	    0);
	assert_int_equal(gres_conf_gpus(text, "n1", &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.file[0], "/dev/nvidia0");
	assert_string_equal(g.file[3], "/dev/nvidia3");
	assert_int_equal(gres_conf_gpus(text, "other", &g, err, sizeof(err)),
			 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.file[0], "/dev/nvidia4");
	assert_int_equal(gres_conf_gpus(text, "n9", &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 0);
	free(text);
	text = NULL;
	assert_int_equal(read_file_limited(FIX "/node2s/etc/gres-vfio.conf",
					   4096, &text, NULL),
			 0);
	/* No NodeName: every node. Records in order. */
	assert_int_equal(gres_conf_gpus(text, "n1", &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.file[1], "/dev/vfio/31");
	assert_string_equal(g.file[2], "/dev/vfio/32");
}

static void test_gres_conf_bad(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"Name=gpu\n", "line 1: GPUs without File= (Count only)"},
	    {"# c\nAutoDetect=nvml Name=gpu Type=a100\n",
	     "line 2: GPUs without File= (AutoDetect)"},
	    {"Name=gpu File=relative[0-1]\n", "line 1: bad File="},
	    {"Name=gpu File=/dev/nvidia[0-1\n", "line 1: bad File="},
	    {"Name gpu\n", "line 1: expected Key=Value"},
	    {"NodeName=n[1- Name=gpu File=/dev/nvidia0\n",
	     "line 1: bad NodeName"},
	    {"Name=gpu File=/dev/nvidia[0-99]\n", "too many GPUs"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct gres_gpus g;
		char err[256] = "";

		print_message("case: %s", cases[i].text);
		assert_int_equal(
		    gres_conf_gpus(cases[i].text, "n1", &g, err, sizeof(err)),
		    -EINVAL);
		assert_contains(err, cases[i].want);
	}
}

static void test_gres_detail(void **state)
{
	static const struct {
		const char *in;
		int r;
		const char *idx; /* or error */
	} cases[] = {
	    {NULL, 0, ""},
	    {"", 0, ""},
	    {"gpu:2(IDX:0-1)", 0, "0-1"},
	    {"gpu:a100:2(IDX:0,2)", 0, "0,2"},
	    {"gpu:a100:1(IDX:3),gpu:v100:1(IDX:5)", 0, "3,5"},
	    {"mps:100(IDX:0),gpu:a100:1(IDX:1)", 0, "1"},
	    {"gpumem:1(IDX:4),shard:2(IDX:0-1)", 0, ""},
	    {"gpu:0(IDX:N/A)", 0, ""},
	    {"gpu(CNT:2)", -EINVAL, "has no GPU indices"},
	    {"gpu:2", -EINVAL, "not understood"},
	    {"gpu:1(IDX:x)", -EINVAL, "GRES indices 'x' not understood"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cpuset s;
		char err[256] = "", got[64];

		print_message("case: %s\n", cases[i].in ? cases[i].in : "NULL");
		assert_int_equal(
		    gres_detail_gpus(cases[i].in, &s, err, sizeof(err)),
		    cases[i].r);
		if (cases[i].r) {
			assert_contains(err, cases[i].idx);
			continue;
		}
		cpuset_format(&s, got, sizeof(got));
		assert_string_equal(got, cases[i].idx);
	}
}

/* --- a writable node ---------------------------------------------------- */

struct node {
	char dir[64];
	struct vmmd_config c;
};

static int run_cp(const char *from, const char *to)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execlp("cp", "cp", "-a", from, to, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A copy of a fixture node with its own run_dir. */
static struct node *node_new(const char *fixture)
{
	struct node *n = calloc(1, sizeof(*n));
	char from[VMENV_MAX_PATH], to[VMENV_MAX_PATH];

	assert_non_null(n);
	strcpy(n->dir, "/tmp/vmenv-devices-XXXXXX");
	assert_non_null(mkdtemp(n->dir));
	snprintf(from, sizeof(from), "%s/%s", FIX, fixture);
	snprintf(to, sizeof(to), "%s/node", n->dir);
	assert_int_equal(run_cp(from, to), 0);
	config_defaults(&n->c, "n1");
	snprintf(n->c.run_dir, sizeof(n->c.run_dir), "%s/run", n->dir);
	snprintf(n->c.sysfs_root, sizeof(n->c.sysfs_root), "%s/node/sys",
		 n->dir);
	snprintf(n->c.proc_root, sizeof(n->c.proc_root), "%s/node/proc",
		 n->dir);
	snprintf(n->c.gres_conf, sizeof(n->c.gres_conf),
		 "%s/node/etc/gres.conf", n->dir);
	snprintf(n->c.ib_pfs, sizeof(n->c.ib_pfs), "mlx5_0");
	return n;
}

static void node_free(struct node *n)
{
	assert_int_equal(rm_rf(n->dir), 0);
	free(n);
}

static size_t leases(const struct node *n)
{
	_cleanup_free_ struct devlease *v = NULL;
	char dir[VMENV_MAX_PATH];
	size_t k = 0;

	assert_int_equal(devices_lease_dir(&n->c, dir, sizeof(dir)), 0);
	assert_int_equal(devlease_list(dir, &v, &k), 0);
	return k;
}

static int acquire(struct node *n, uint32_t job, uint32_t vfs, const char *gres,
		   struct dev_grant *g, char *err, size_t errlen)
{
	struct dev_request q = {.job_id = job, .ib_vfs = vfs, .gres = gres};

	q.numa_nodes = (struct cpuset){{1}}; /* node 0 */
	return devices_acquire(&n->c, &q, g, err, errlen);
}

static void acquire_ok(struct node *n, uint32_t job, uint32_t vfs,
		       const char *gres, struct dev_grant *g)
{
	char err[512] = "";

	if (acquire(n, job, vfs, gres, g, err, sizeof(err)) != 0)
		fail_msg("job %u: %s", job, err);
}

/* --- leases ------------------------------------------------------------- */

static void test_lease_files(void **state)
{
	struct node *n = node_new("plain");
	char dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 32];
	struct devlease l = {.addr = addr("0000:3b:00.3"),
			     .job_id = 7,
			     .kind = DEVLEASE_VF,
			     .pf = addr("0000:3b:00.0"),
			     .vf_index = 2,
			     .has_guids = true,
			     .node_guid = 0x1122334455667788ull,
			     .port_guid = 1},
			other = l, got, holder;

	devices_lease_dir(&n->c, dir, sizeof(dir));
	assert_int_equal(devlease_take(dir, &l, NULL), 0);
	other.job_id = 8;
	assert_int_equal(devlease_take(dir, &other, &holder), -EBUSY);
	assert_int_equal(holder.job_id, 7);
	assert_int_equal(devlease_read(dir, &l.addr, &got), 0);
	assert_int_equal(got.job_id, 7);
	assert_int_equal(got.kind, DEVLEASE_VF);
	assert_int_equal(got.vf_index, 2);
	assert_addr(&got.pf, "0000:3b:00.0");
	assert_true(got.has_guids);
	assert_true(got.node_guid == 0x1122334455667788ull);
	assert_true(got.port_guid == 1);
	assert_int_equal(devlease_drop(dir, &l.addr, 8), -EPERM);
	assert_int_equal(devlease_drop(dir, &l.addr, 7), 0);
	assert_int_equal(devlease_drop(dir, &l.addr, 7), -ENOENT);
	/* No temp file is left behind; the directory holds nothing. */
	assert_int_equal(leases(n), 0);
	{
		DIR *d = opendir(dir);
		struct dirent *e;
		int files = 0;

		assert_non_null(d);
		while ((e = readdir(d)))
			files += e->d_name[0] != '.' ||
				 strncmp(e->d_name, ".lease-", 7) == 0;
		closedir(d);
		assert_int_equal(files, 0);
	}
	/* A damaged lease reads as such and is listed as job 0. */
	snprintf(path, sizeof(path), "%s/0000:3b:00.4", dir);
	assert_int_equal(write_file_atomic(path, "job=x\n", 6, 0600), 0);
	assert_int_equal(
	    devlease_read(dir, &(struct pci_addr){0, 0x3b, 0, 4}, &got),
	    -EBADMSG);
	assert_int_equal(leases(n), 1);
	node_free(n);
}

/* --- a job's devices ---------------------------------------------------- */

static void test_vfs_exclusive(void **state)
{
	struct node *n = node_new("node2s");
	struct dev_grant a, b, c;
	char err[512] = "";

	acquire_ok(n, 101, 3, NULL, &a);
	acquire_ok(n, 102, 5, NULL, &b);
	assert_int_equal(a.ndevs, 3);
	assert_int_equal(b.ndevs, 5);
	for (uint32_t i = 0; i < a.ndevs; i++) {
		assert_string_equal(a.dev[i].what, "IB VF");
		assert_int_equal(a.dev[i].numa_node, 0);
		for (uint32_t k = 0; k < b.ndevs; k++)
			assert_false(
			    pci_addr_equal(&a.dev[i].addr, &b.dev[k].addr));
	}
	assert_int_equal(leases(n), 8);
	/* Exhausted: a clear error, and the third job holds nothing. */
	assert_int_equal(acquire(n, 103, 1, NULL, &c, err, sizeof(err)),
			 -EBUSY);
	assert_string_equal(err, "job 103: asked for 1 InfiniBand VFs but "
				 "only 0 of the 8 on node n1 are free");
	assert_int_equal(leases(n), 8);
	/* Job 101 ends: its three come back, and only those. */
	assert_int_equal(devices_release(&n->c, 101, err, sizeof(err)), 3);
	assert_int_equal(leases(n), 5);
	acquire_ok(n, 103, 3, NULL, &c);
	for (uint32_t i = 0; i < c.ndevs; i++)
		assert_true(pci_addr_equal(&c.dev[i].addr, &a.dev[i].addr));
	node_free(n);
}

static void test_vfs_refusals(void **state)
{
	static const struct {
		const char *what, *fixture, *pfs;
		uint32_t vfs, max;
		int r;
		const char *want;
	} cases[] = {
	    {"more than the node has", "node2s", "mlx5_0", 9, 16, -EBUSY,
	     "job 7: asked for 9 InfiniBand VFs but only 8 of the 8 on node "
	     "n1 are free"},
	    {"more than max_ib_vfs", "node2s", "mlx5_0", 5, 4, -EINVAL,
	     "job 7: 5 InfiniBand VFs asked, at most 4 per job on node n1"},
	    {"IB on a node without", "plain", "", 1, 8, -ENODEV,
	     "job 7: asked for 1 InfiniBand VFs but node n1 has none (ib_pfs "
	     "is not set)"},
	    {"PF without VFs", "node2s", "0000:18:00.0", 1, 8, -ENODEV,
	     "has none (its PFs have no VFs enabled)"},
	    {"PF gone", "plain", "mlx5_0", 1, 8, -EINVAL,
	     "ib_pfs: 'mlx5_0' is neither an InfiniBand device nor a PCI "
	     "device"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct node *n = node_new(cases[i].fixture);
		struct dev_grant g;
		char err[512] = "";

		print_message("case: %s\n", cases[i].what);
		snprintf(n->c.ib_pfs, sizeof(n->c.ib_pfs), "%s", cases[i].pfs);
		n->c.max_ib_vfs = cases[i].max;
		assert_int_equal(
		    acquire(n, 7, cases[i].vfs, NULL, &g, err, sizeof(err)),
		    cases[i].r);
		assert_contains(err, cases[i].want);
		assert_int_equal(g.ndevs, 0);
		assert_int_equal(leases(n), 0);
		node_free(n);
	}
}

/* Reconcile's question: which jobs still run here. */
static uint32_t running[4];

static bool alive(uint32_t job, void *data)
{
	(void)data;
	for (size_t i = 0; i < ARRAY_SIZE(running); i++)
		if (running[i] == job)
			return true;
	return false;
}

/* vmmd keeps nothing in memory: a vmmd killed with SIGKILL while holding
 * VFs (a child here) and "restarted" (a fresh config over the same
 * run_dir) sees the leases on disk and never hands those VFs out again;
 * reconcile gives them back once the job is gone. */
static void test_vfs_survive_restart(void **state)
{
	struct node *n = node_new("node2s");
	struct vmmd_config restarted;
	struct dev_grant g;
	char err[512] = "";
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct dev_grant cg;
		if (acquire(n, 201, 6, NULL, &cg, err, sizeof(err)) != 0)
			_exit(1);
		pause(); /* holds them until killed */
		_exit(2);
	}
	for (int i = 0; i < 500 && leases(n) < 6; i++)
		usleep(10000);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(leases(n), 6);
	restarted = n->c;
	n->c = restarted;
	assert_int_equal(acquire(n, 202, 3, NULL, &g, err, sizeof(err)),
			 -EBUSY);
	assert_contains(err, "only 2 of the 8");
	acquire_ok(n, 202, 2, NULL, &g);
	assert_int_equal(leases(n), 8);
	/* Reconcile while both jobs run: nothing moves. */
	running[0] = 201;
	running[1] = 202;
	assert_int_equal(devices_sweep(&n->c, alive, NULL), 0);
	assert_int_equal(leases(n), 8);
	/* Job 201 is gone: its six come back, job 202's two stay. */
	running[0] = 0;
	assert_int_equal(devices_sweep(&n->c, alive, NULL), 6);
	assert_int_equal(leases(n), 2);
	acquire_ok(n, 203, 6, NULL, &g);
	memset(running, 0, sizeof(running));
	node_free(n);
}

/* A half-written lease (a crash between create and write cannot happen
 * with link(), but a damaged file might) is removed by reconcile. */
static void test_damaged_lease_swept(void **state)
{
	struct node *n = node_new("node2s");
	char dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 32];
	struct dev_grant g;
	char err[512] = "";

	devices_lease_dir(&n->c, dir, sizeof(dir));
	assert_int_equal(mkdir_p(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/0000:3b:00.1", dir);
	assert_int_equal(write_file_atomic(path, "", 0, 0600), 0);
	/* Until then the VF is not handed out. */
	assert_int_equal(acquire(n, 301, 8, NULL, &g, err, sizeof(err)),
			 -EBUSY);
	assert_int_equal(devices_sweep(&n->c, alive, NULL), 1);
	acquire_ok(n, 301, 8, NULL, &g);
	node_free(n);
}

static void read_guid(const struct node *n, uint32_t vf, const char *what,
		      char *buf, size_t len)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "bus/pci/devices/0000:3b:00.0/sriov/%u/%s",
		 vf, what);
	assert_int_equal(sysfs_read_line(n->c.sysfs_root, rel, buf, len), 0);
}

static void test_vf_guids(void **state)
{
	struct node *n = node_new("node2s");
	struct dev_grant g;
	char s[64], err[512] = "";

	snprintf(n->c.ib_guid_prefix, sizeof(n->c.ib_guid_prefix), "fa16");
	n->c.ib_guid_node_id = 3;
	acquire_ok(n, 0x12345678, 2, NULL, &g);
	/* prefix | job | node | slot<<1 | port */
	read_guid(n, 0, "node", s, sizeof(s));
	assert_string_equal(s, "fa:16:12:34:56:78:03:00");
	read_guid(n, 0, "port", s, sizeof(s));
	assert_string_equal(s, "fa:16:12:34:56:78:03:01");
	read_guid(n, 1, "node", s, sizeof(s));
	assert_string_equal(s, "fa:16:12:34:56:78:03:02");
	read_guid(n, 1, "policy", s, sizeof(s));
	assert_string_equal(s, "Follow");
	read_guid(n, 2, "node", s, sizeof(s)); /* not the job's */
	assert_string_equal(s, "02:c9:03:00:00:3b:00:02");
	/* At release the VFs get their own GUIDs back. */
	assert_int_equal(devices_release(&n->c, 0x12345678, err, sizeof(err)),
			 2);
	assert_string_equal(err, "");
	read_guid(n, 0, "node", s, sizeof(s));
	assert_string_equal(s, "02:c9:03:00:00:3b:00:00");
	read_guid(n, 1, "port", s, sizeof(s));
	assert_string_equal(s, "02:c9:03:00:00:3b:01:01");
	node_free(n);
}

static void test_vf_guids_unsupported(void **state)
{
	struct node *n = node_new("node2s");
	struct dev_grant g;
	char err[512] = "", path[VMENV_MAX_PATH + 64];

	snprintf(n->c.ib_guid_prefix, sizeof(n->c.ib_guid_prefix), "fa16");
	snprintf(path, sizeof(path),
		 "%s/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/sriov",
		 n->c.sysfs_root);
	assert_int_equal(rm_rf(path), 0);
	assert_int_equal(acquire(n, 5, 1, NULL, &g, err, sizeof(err)), -ENOENT);
	assert_contains(err, "job 5: ib_guid_prefix is set but VF "
			     "0000:3b:00.1 offers no per-VF GUIDs");
	assert_int_equal(leases(n), 0);
	node_free(n);
}

static void test_gpus(void **state)
{
	struct node *n = node_new("node2s");
	struct dev_grant a, b;

	acquire_ok(n, 401, 0, "gpu:a100:2(IDX:0,3)", &a);
	assert_int_equal(a.ndevs, 2);
	assert_addr(&a.dev[0].addr, "0000:18:00.0");
	assert_int_equal(a.dev[0].numa_node, 0);
	assert_addr(&a.dev[1].addr, "0000:af:00.0");
	assert_int_equal(a.dev[1].numa_node, 1);
	assert_string_equal(a.dev[1].what, "GPU");
	/* The other job gets exactly its own, with VFs besides. */
	acquire_ok(n, 402, 1, "gpu:a100:2(IDX:1-2)", &b);
	assert_int_equal(b.ndevs, 3);
	assert_addr(&b.dev[0].addr, "0000:3d:00.0");
	assert_addr(&b.dev[1].addr, "0000:86:00.0");
	assert_string_equal(b.dev[2].what, "IB VF");
	node_free(n);
}

static void test_gpus_vfio_groups(void **state)
{
	struct node *n = node_new("node2s");
	struct dev_grant a;

	snprintf(n->c.gres_conf, sizeof(n->c.gres_conf),
		 "%s/node/etc/gres-vfio.conf", n->dir);
	acquire_ok(n, 501, 0, "gpu:1(IDX:3)", &a);
	/* The GPU and its audio function: the IOMMU group goes whole. */
	assert_int_equal(a.ndevs, 2);
	assert_addr(&a.dev[0].addr, "0000:af:00.0");
	assert_addr(&a.dev[1].addr, "0000:af:00.1");
	node_free(n);
}

/* Never another job's GPU: if Slurm's indices ever led to a GPU another
 * job holds (a stale lease, a changed gres.conf), the start fails; it is
 * never silently given, nor swapped for a free one. */
static void test_gpus_never_anothers(void **state)
{
	static const struct {
		const char *what, *fixture, *gres, *conf;
		int r;
		const char *want;
	} cases[] = {
	    {"held by another job", "node2s", "gpu:1(IDX:0)", NULL, -EBUSY,
	     "job 602: GPU 0000:18:00.0 (/dev/nvidia0) on node n1 is held by "
	     "job 601"},
	    {"index beyond gres.conf", "node2s", "gpu:1(IDX:4)", NULL, -ENODEV,
	     "job 602: GPU index 4 is not in"},
	    {"GPUs on a GPU-less node", "plain", "gpu:1(IDX:0)", NULL, -ENODEV,
	     "job 602: Slurm allocated GPUs 0 on node n1 but"},
	    {"device file without a GPU", "node2s", "gpu:1(IDX:0)",
	     "Name=gpu File=/dev/nvidia9\n", -ENOENT,
	     "job 602: GPU /dev/nvidia9: no PCI device found"},
	    {"count without indices", "node2s", "gpu(CNT:1)", NULL, -EINVAL,
	     "has no GPU indices"},
	    {"AutoDetect", "node2s", "gpu:1(IDX:0)",
	     "AutoDetect=nvml\nName=gpu\n", -EINVAL,
	     "GPUs without File= (AutoDetect)"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct node *n = node_new(cases[i].fixture);
		struct dev_grant a, b;
		char err[512] = "";

		print_message("case: %s\n", cases[i].what);
		if (cases[i].conf)
			assert_int_equal(
			    write_file_atomic(n->c.gres_conf, cases[i].conf,
					      strlen(cases[i].conf), 0644),
			    0);
		if (i == 0)
			acquire_ok(n, 601, 0, "gpu:1(IDX:0)", &a);
		assert_int_equal(
		    acquire(n, 602, 2, cases[i].gres, &b, err, sizeof(err)),
		    cases[i].r);
		assert_contains(err, cases[i].want);
		/* Nothing of job 602's stays (not even the VFs asked for
		 * besides). */
		assert_int_equal(b.ndevs, 0);
		assert_int_equal(leases(n), i == 0 ? 1 : 0);
		node_free(n);
	}
}

static void test_config_check(void **state)
{
	static const struct {
		const char *key, *value, *want;
	} cases[] = {
	    {"housekeeping_cpus", "0-x", "housekeeping_cpus: a CPU list"},
	    {"housekeeping_cpus", "job", "housekeeping_cpus"},
	    {"ib_guid_prefix", "fa1", "ib_guid_prefix: 4 hex digits"},
	    {"ib_guid_prefix", "fa1g", "ib_guid_prefix"},
	    {"ib_pfs", "mlx5_0 mlx5_7", "'mlx5_7' is neither"},
	    {"ib_pfs", "a,b,c,d,e,f,g,h,i", "more than 8 PFs"},
	};
	struct node *n = node_new("node2s");
	char err[256] = "";

	assert_int_equal(devices_config_check(&n->c, err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vmmd_config c = n->c;
		char line[300];

		print_message("case: %s = %s\n", cases[i].key, cases[i].value);
		snprintf(line, sizeof(line), "%s = %s\n", cases[i].key,
			 cases[i].value);
		assert_int_equal(config_parse(&c, line, "t", err, sizeof(err)),
				 0);
		assert_int_equal(devices_config_check(&c, err, sizeof(err)),
				 -EINVAL);
		assert_contains(err, cases[i].want);
	}
	node_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pci_addr),
	    cmocka_unit_test(test_pf_and_vfs),
	    cmocka_unit_test(test_devfiles),
	    cmocka_unit_test(test_guids),
	    cmocka_unit_test(test_gres_expand),
	    cmocka_unit_test(test_gres_conf),
	    cmocka_unit_test(test_gres_conf_bad),
	    cmocka_unit_test(test_gres_detail),
	    cmocka_unit_test(test_lease_files),
	    cmocka_unit_test(test_vfs_exclusive),
	    cmocka_unit_test(test_vfs_refusals),
	    cmocka_unit_test(test_vfs_survive_restart),
	    cmocka_unit_test(test_damaged_lease_swept),
	    cmocka_unit_test(test_vf_guids),
	    cmocka_unit_test(test_vf_guids_unsupported),
	    cmocka_unit_test(test_gpus),
	    cmocka_unit_test(test_gpus_vfio_groups),
	    cmocka_unit_test(test_gpus_never_anothers),
	    cmocka_unit_test(test_config_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
