// SPDX-License-Identifier: MIT
/*
 * What vmmd's placement and device setup add to a VM start, on a fixture
 * node (no hardware needed): reading the host topology, mapping Slurm's
 * cores, taking the devices (leases, VF GUIDs), building the placement and
 * the domain XML, and giving the devices back. Each scenario runs N times;
 * the mean is printed in microseconds.
 *
 *   place-cost FIXTURE_DIR [N]      (FIXTURE_DIR: a copy of
 *                                    test/data/sysfs/node2s, writable)
 * bench/placement runs it.
 */
#include "devices.h"
#include "domxml.h"
#include "hostinfo.h"
#include "placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct scenario {
	const char *name;
	uint32_t vfs;
	const char *gres;
	uint32_t hugepage_kib;
	bool guids;
};

static const struct scenario scenarios[] = {
    {"pinning only (8 CPUs, 1 cell)", 0, NULL, 0, false},
    {"+ 2M hugepages", 0, NULL, 2048, false},
    {"+ 1 IB VF", 1, NULL, 0, false},
    {"+ 8 IB VFs", 8, NULL, 0, false},
    {"+ 8 IB VFs with per-job GUIDs", 8, NULL, 0, true},
    {"+ 1 GPU", 0, "gpu:1(IDX:0)", 0, false},
    {"+ 4 GPUs", 0, "gpu:4(IDX:0-3)", 0, false},
    {"+ 4 GPUs and 8 VFs", 8, "gpu:4(IDX:0-3)", 0, false},
};

struct times {
	double topo, devices, place, xml, release;
};

static int one(const struct vmmd_config *c, const struct scenario *s,
	       struct host_topo *t, struct times *tm)
{
	static struct dom_placement p;
	struct place_req q = {.job_id = 7, .node = "n1", .mem_mib = 1024};
	struct dev_request dq = {
	    .job_id = 7, .ib_vfs = s->vfs, .gres = s->gres};
	struct dev_grant g;
	struct cpuset ids;
	struct dom_spec spec = {
	    .name = "bench",
	    .type = "kvm",
	    .node = "n1",
	    .kernel = "/k",
	    .initrd = "/i",
	    .cmdline = "c",
	    .console_log = "/l",
	    .agent_sock = "/s",
	};
	char err[512], note[256];
	char *xml = NULL;
	double t0 = now_us(), t1, t2, t3, t4;

	if (hostinfo_read(c->sysfs_root, t, err, sizeof(err)) < 0 ||
	    cpuset_parse("0-3", &ids) < 0 ||
	    hostinfo_slurm_cpus(t, &ids, 8, &q.cpus, err, sizeof(err)) < 0)
		goto fail;
	dq.numa_nodes = (struct cpuset){{1}};
	t1 = now_us();
	if (devices_acquire(c, &dq, &g, err, sizeof(err)) < 0)
		goto fail;
	t2 = now_us();
	q.ndevs = g.ndevs;
	memcpy(q.dev, g.dev, sizeof(g.dev));
	q.hugepage_kib = s->hugepage_kib;
	q.hard_limit_mib = 1152;
	if (placement_build(t, &q, &p, note, sizeof(note), err, sizeof(err)) <
	    0)
		goto fail;
	t3 = now_us();
	spec.vcpus = p.nvcpus;
	spec.mem_mib = placement_mem_mib(&p);
	spec.place = &p;
	if (domxml_build(&spec, &xml) < 0)
		goto fail;
	free(xml);
	t4 = now_us();
	devices_release(c, 7, err, sizeof(err));
	tm->topo += t1 - t0;
	tm->devices += t2 - t1;
	tm->place += t3 - t2;
	tm->xml += t4 - t3;
	tm->release += now_us() - t4;
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", s->name, err);
	return -1;
}

int main(int argc, char **argv)
{
	struct host_topo *t = malloc(sizeof(*t));
	struct vmmd_config c;
	int n = argc > 2 ? atoi(argv[2]) : 200;

	if (argc < 2 || !t || n < 1) {
		fprintf(stderr, "usage: place-cost FIXTURE_DIR [N]\n");
		return 2;
	}
	config_defaults(&c, "n1");
	snprintf(c.sysfs_root, sizeof(c.sysfs_root), "%s/sys", argv[1]);
	snprintf(c.proc_root, sizeof(c.proc_root), "%s/proc", argv[1]);
	snprintf(c.gres_conf, sizeof(c.gres_conf), "%s/etc/gres.conf", argv[1]);
	snprintf(c.run_dir, sizeof(c.run_dir), "%s/run", argv[1]);
	snprintf(c.ib_pfs, sizeof(c.ib_pfs), "mlx5_0");
	printf("   %-34s %9s %9s %9s %9s %9s %9s\n", "scenario (mean of N)",
	       "topology", "devices", "placement", "XML", "release", "total");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		struct times tm = {0};

		snprintf(c.ib_guid_prefix, sizeof(c.ib_guid_prefix), "%s",
			 scenarios[i].guids ? "fa16" : "");
		for (int k = 0; k < n; k++)
			if (one(&c, &scenarios[i], t, &tm) < 0)
				return 1;
		printf("   %-34s %7.0fus %7.0fus %7.0fus %7.0fus %7.0fus "
		       "%7.0fus\n",
		       scenarios[i].name, tm.topo / n, tm.devices / n,
		       tm.place / n, tm.xml / n, tm.release / n,
		       (tm.topo + tm.devices + tm.place + tm.xml + tm.release) /
			   n);
	}
	free(t);
	return 0;
}
