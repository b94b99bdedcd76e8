// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/domxml.c: golden files in test/data/domxml/ (run with
 * VMENV_REGENERATE=1 to rewrite them after an intended change, then review
 * the diff), the kvm/qemu and share variants, escaping checked by parsing
 * the result back with xmllint, libvirt's own schema (virt-xml-validate),
 * and refusal of incomplete specs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentwire.h"
#include "cleanup.h"
#include "domowner.h"
#include "domxml.h"
#include "util.h"

#define XMLLINT		  "/usr/bin/xmllint"
#define VIRT_XML_VALIDATE "virt-xml-validate"
#define SPECIAL		  "/tmp/a&b<c>'d\""

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("XML does not contain '%s':\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("XML contains '%s':\n%s", needle, hay);
}

static struct dom_spec base_spec(void)
{
	return (struct dom_spec){
	    .name = "vmenv-n1-42",
	    .type = "qemu",
	    .job_id = 42,
	    .node = "n1",
	    .uid = 1000,
	    .gid = 1001,
	    .vcpus = 2,
	    .mem_mib = 960,
	    .kernel = "/run/vmenv/n1/jobs/42/boot/vmlinuz",
	    .initrd = "/run/vmenv/n1/jobs/42/boot/initrd.img",
	    .cmdline = "console=ttyS0 quiet",
	    .console_log = "/var/log/vmenv/n1/job-42.log",
	    .agent_sock = "/run/vmenv/n1/jobs/42/q/agent.sock",
	    .share_dir = "/home/alice/work",
	    .share_tag = "vmenv.workdir",
	};
}

static char *build(const struct dom_spec *s)
{
	char *xml = NULL;

	assert_int_equal(domxml_build(s, &xml), 0);
	assert_non_null(xml);
	return xml;
}

/* Writes xml to a new temp file; path must be a mkstemp template. */
static void write_temp(char *path, const char *xml)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, xml, strlen(xml)), 0);
	close(fd);
}

/* Runs argv (no shell), stdout into out; the exit code, or -1. */
static int run(const char *const *argv, char *out, size_t outlen)
{
	int pfd[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (out && got + 1 < outlen &&
	       (n = read(pfd[0], out + got, outlen - got - 1)) > 0)
		got += (size_t)n;
	if (out)
		out[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Is prog on PATH (as execvp would find it)? */
static bool have_prog(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[VMENV_MAX_PATH];

	if (prog[0] == '/')
		return access(prog, X_OK) == 0;
	if (!path)
		path = "/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/* --- golden files ------------------------------------------------------- */

static void spec_kvm(struct dom_spec *s)
{
	s->type = "kvm";
}

static void spec_noshare(struct dom_spec *s)
{
	s->share_dir = NULL;
	s->share_tag = NULL;
}

/* The job's files served by vmenv-9p instead of virtio-9p. */
static void spec_served(struct dom_spec *s)
{
	spec_noshare(s);
	s->files_sock = "/run/vmenv/jobs/42/q/files.sock";
	s->files_port = "org.vmenv.files.0";
}

/* A served job's mounts: a port each after the working directory's, no
 * 9p share (vmmd/files/jobfiles_served.h). */
static const struct dom_port served_mounts[] = {
    {"/run/vmenv/jobs/42/q/files.m0.sock", "org.vmenv.files.m0"},
    {"/run/vmenv/jobs/42/q/files.m1.sock", "org.vmenv.files.m1"},
};

static void spec_served_mounts(struct dom_spec *s)
{
	spec_served(s);
	s->nfiles_mounts = 2;
	s->files_mounts = served_mounts;
}

/* The most virtio-serial ports a guest gets: the agent's, the working
 * directory's, 16 served mounts' and 16 bulk ports, more than one
 * controller's 31 (libvirt adds a second controller). */
static void spec_ports_max(struct dom_spec *s)
{
	static char socks[DOM_MAX_FILES_MOUNTS][64],
	    names[DOM_MAX_FILES_MOUNTS][32];
	static struct dom_port ports[DOM_MAX_FILES_MOUNTS];

	spec_served(s);
	for (unsigned i = 0; i < DOM_MAX_FILES_MOUNTS; i++) {
		snprintf(socks[i], sizeof(socks[i]),
			 "/run/vmenv/jobs/42/q/files.m%u.sock", i);
		snprintf(names[i], sizeof(names[i]), "org.vmenv.files.m%u", i);
		ports[i] = (struct dom_port){socks[i], names[i]};
	}
	s->nfiles_mounts = DOM_MAX_FILES_MOUNTS;
	s->files_mounts = ports;
	s->bulk_ports = AW_MAX_BULK_PORTS;
	s->bulk_sock_prefix = "/run/vmenv/n1/jobs/42/q/bulk.";
}

/* The emulated device that stands in for a VF in the checkpoint tests. */
static void spec_standin(struct dom_spec *s)
{
	s->standin = true;
}

/* Placements as placement.c makes them for the fixture nodes of
 * test/data/sysfs (test_placement checks that side). Static: a spec only
 * points at its placement. */
static struct dom_placement place_plain, place_numa, place_devs;

static struct cpuset cs(const char *list)
{
	struct cpuset c;

	assert_int_equal(cpuset_parse(list, &c), 0);
	return c;
}

static struct pci_addr pci(const char *a)
{
	struct pci_addr p;

	assert_int_equal(pci_addr_parse(a, &p), 0);
	return p;
}

/* This development node: 2 CPUs, one NUMA node, the limit at Slurm's
 * 1024 MiB. */
static void spec_pinned(struct dom_spec *s)
{
	struct dom_placement *p = &place_plain;

	memset(p, 0, sizeof(*p));
	p->nvcpus = 2;
	p->pin[0] = 0;
	p->pin[1] = 1;
	p->emulator = cs("0-1");
	p->sockets = 1;
	p->cores = 2;
	p->threads = 1;
	p->ncells = 1;
	p->cell[0] = (struct dom_cell){0, cs("0-1"), 960};
	p->hard_limit_mib = 1024;
	s->place = p;
}

/* node2s, one core (two threads) on each socket, 2 MiB hugepages, a VF
 * and a GPU on each side's expander bus, an unknown-locality GPU on the
 * root bus, emulator on housekeeping CPU 0, KVM. */
static void spec_numa(struct dom_spec *s)
{
	struct dom_placement *p = &place_numa;
	static const uint16_t pins[] = {1, 9, 5, 13};

	memset(p, 0, sizeof(*p));
	p->nvcpus = 4;
	memcpy(p->pin, pins, sizeof(pins));
	p->emulator = cs("0");
	p->sockets = 2;
	p->cores = 1;
	p->threads = 2;
	p->ncells = 2;
	p->cell[0] = (struct dom_cell){0, cs("0-1"), 2048};
	p->cell[1] = (struct dom_cell){1, cs("2-3"), 2048};
	p->hugepage_kib = 2048;
	p->hard_limit_mib = 4224;
	p->ndevs = 4;
	p->dev[0] = (struct dom_hostdev){pci("0000:3b:00.1"), 0};
	p->dev[1] = (struct dom_hostdev){pci("0000:18:00.0"), 0};
	p->dev[2] = (struct dom_hostdev){pci("0000:af:00.0"), 1};
	p->dev[3] = (struct dom_hostdev){pci("0000:86:00.0"), -1};
	s->type = "kvm";
	s->vcpus = 4;
	s->mem_mib = 4096;
	s->place = p;
}

/* node2s, socket 0 only: 1 GiB pages, a GPU with its audio function and
 * two VFs, all local (one cell: no expander bus). */
static void spec_devs(struct dom_spec *s)
{
	struct dom_placement *p = &place_devs;

	memset(p, 0, sizeof(*p));
	p->nvcpus = 2;
	p->pin[0] = 2;
	p->pin[1] = 10;
	p->emulator = cs("2,10");
	p->sockets = 1;
	p->cores = 1;
	p->threads = 2;
	p->ncells = 1;
	p->cell[0] = (struct dom_cell){0, cs("0-1"), 2048};
	p->hugepage_kib = 1048576;
	p->hard_limit_mib = 2176;
	p->ndevs = 4;
	p->dev[0] = (struct dom_hostdev){pci("0000:af:00.0"), -1};
	p->dev[1] = (struct dom_hostdev){pci("0000:af:00.1"), -1};
	p->dev[2] = (struct dom_hostdev){pci("0000:3b:00.2"), -1};
	p->dev[3] = (struct dom_hostdev){pci("0000:3b:01.0"), -1};
	s->vcpus = 2;
	s->mem_mib = 2048;
	s->place = p;
}

/* TCG with a named CPU model over the pinned placement. */
static void spec_model(struct dom_spec *s)
{
	spec_pinned(s);
	s->cpu_model = "Skylake-Server";
}

/* A disk image booted with its own kernel: the job's overlay on the
 * cached qcow2 base. */
static void spec_disk(struct dom_spec *s)
{
	s->cmdline = "root=/dev/vda rw console=ttyS0";
	s->disk_overlay = "/run/vmenv/n1/jobs/42/disk/overlay.qcow2";
	s->disk_base = "/var/cache/vmenv/sha256/"
		       "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e"
		       "846f6be03";
	s->disk_base_format = "qcow2";
}

/* A raw disk with its own bootloader: no kernel. */
static void spec_diskboot(struct dom_spec *s)
{
	spec_disk(s);
	s->kernel = s->initrd = s->cmdline = NULL;
	s->disk_base_format = "raw";
}

/* Both at once: the overlay disk on the root bus beside node2s's
 * expander buses and hostdevs. */
static void spec_disk_numa(struct dom_spec *s)
{
	spec_numa(s);
	spec_disk(s);
}

/* A guest of a multi-node job: a virtio NIC on a tap vmmd names, on the
 * job's bridge (vmmd/net/jobnet.h, hostnet.h), node 2 of the job. */
static void spec_net(struct dom_spec *s)
{
	s->net_bridge = "vmj0000002a";
	s->net_tap = "vmj0000002a0002";
	s->net_mtu = 1450;
	s->net_mac = "52:54:00:00:00:02";
}

/* Bulk ports (docs/design.md §9), as vmmd's default bulk_ports gives. */
static void spec_bulk(struct dom_spec *s)
{
	s->bulk_ports = 4;
	s->bulk_sock_prefix = "/run/vmenv/n1/jobs/42/q/bulk.";
}

static const struct {
	const char *file;
	void (*adjust)(struct dom_spec *s);
} goldens[] = {
    {"basic.xml", NULL},
    {"kvm.xml", spec_kvm},
    {"noshare.xml", spec_noshare},
    {"served.xml", spec_served},
    {"served_mounts.xml", spec_served_mounts},
    {"ports_max.xml", spec_ports_max},
    {"standin.xml", spec_standin},
    {"pinned.xml", spec_pinned},
    {"numa.xml", spec_numa},
    {"devices.xml", spec_devs},
    {"model.xml", spec_model},
    {"disk.xml", spec_disk},
    {"diskboot.xml", spec_diskboot},
    {"disknuma.xml", spec_disk_numa},
    {"net.xml", spec_net},
    {"bulk.xml", spec_bulk},
};

static void golden_path(char *buf, size_t len, const char *file)
{
	assert_int_equal(
	    str_printf(buf, len, "%s/domxml/%s", TEST_DATADIR, file), 0);
}

/* Names the first line that differs, which says more than two dumps. */
static void compare_lines(const char *file, const char *want, const char *got)
{
	const char *w = want, *g = got;
	unsigned line = 1;

	for (; *w && *w == *g; w++, g++)
		if (*w == '\n') {
			line++;
			want = w + 1;
			got = g + 1;
		}
	if (*w || *g)
		fail_msg("%s:%u differs (VMENV_REGENERATE=1 rewrites the "
			 "goldens)\nwant: %.*s\ngot:  %.*s",
			 file, line, (int)strcspn(want, "\n"), want,
			 (int)strcspn(got, "\n"), got);
}

static void test_golden(void **state)
{
	const char *regen = getenv("VMENV_REGENERATE");

	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		struct dom_spec s = base_spec();
		_cleanup_free_ char *xml = NULL, *want = NULL;
		char path[VMENV_MAX_PATH];

		if (goldens[i].adjust)
			goldens[i].adjust(&s);
		xml = build(&s);
		golden_path(path, sizeof(path), goldens[i].file);
		if (regen && strcmp(regen, "1") == 0) {
			assert_int_equal(
			    write_file_atomic(path, xml, strlen(xml), 0644), 0);
			print_message("regenerated %s\n", path);
			continue;
		}
		if (read_file_limited(path, 1 << 20, &want, NULL) < 0)
			fail_msg("cannot read %s", path);
		compare_lines(goldens[i].file, want, xml);
	}
}

static void test_golden_schema(void **state)
{
	if (!have_prog(VIRT_XML_VALIDATE)) {
		print_message("%s not installed\n", VIRT_XML_VALIDATE);
		skip();
	}
	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		char path[VMENV_MAX_PATH];
		const char *argv[] = {VIRT_XML_VALIDATE, path, "domain", NULL};

		golden_path(path, sizeof(path), goldens[i].file);
		if (run(argv, NULL, 0) != 0)
			fail_msg("libvirt's schema refuses %s", path);
	}
}

/* --- variants ----------------------------------------------------------- */

static void test_kvm_vs_qemu(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *qemu = NULL, *kvm = NULL, *other = NULL;

	qemu = build(&s);
	assert_contains(qemu, "<domain type='qemu'>");
	assert_lacks(qemu, "host-passthrough");
	assert_lacks(qemu, "<cpu");
	s.type = "kvm";
	kvm = build(&s);
	assert_contains(kvm, "<domain type='kvm'>");
	assert_contains(kvm, "<cpu mode='host-passthrough'/>");
	assert_lacks(kvm, "type='qemu'");
	/* Anything but "kvm" means emulation: never an unknown type. */
	s.type = "xen";
	other = build(&s);
	assert_contains(other, "<domain type='qemu'>");
	assert_lacks(other, "xen");
}

static void test_share(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *with = NULL, *without = NULL;

	with = build(&s);
	assert_contains(with, "<filesystem type='mount' "
			      "accessmode='passthrough'>");
	assert_contains(with, "<source dir='/home/alice/work'/>");
	assert_contains(with, "<target dir='vmenv.workdir'/>");
	spec_noshare(&s);
	without = build(&s);
	assert_lacks(without, "<filesystem");
	assert_lacks(without, "/home/alice/work");
	/* The rest of the domain is unchanged. */
	assert_contains(without, "<channel type='unix'>");
}

static void test_values(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *xml = NULL;

	s.uid = 4294967294u;
	s.gid = 0;
	s.vcpus = 255;
	s.mem_mib = 16777216;
	s.job_id = 4294967295u;
	xml = build(&s);
	assert_contains(xml, "<label>+4294967294:+0</label>");
	assert_contains(xml, "<vcpu placement='static'>255</vcpu>");
	assert_contains(xml, "<memory unit='MiB'>16777216</memory>");
	assert_contains(xml, "id='4294967295'");
	assert_contains(xml,
			"<target type='virtio' name='org.vmenv.agent.0'/>");
}

/* --- escaping ----------------------------------------------------------- */

/* Every user-derived string, and where it lands (for xmllint --xpath). */
static const struct {
	const char *xpath;
	size_t off; /* of the const char * in struct dom_spec */
} escaped_fields[] = {
    {"string(/domain/os/kernel)", offsetof(struct dom_spec, kernel)},
    {"string(/domain/os/initrd)", offsetof(struct dom_spec, initrd)},
    {"string(/domain/os/cmdline)", offsetof(struct dom_spec, cmdline)},
    {"string(/domain/devices/serial/log/@file)",
     offsetof(struct dom_spec, console_log)},
    {"string(/domain/devices/channel/source/@path)",
     offsetof(struct dom_spec, agent_sock)},
    {"string(/domain/devices/filesystem/source/@dir)",
     offsetof(struct dom_spec, share_dir)},
    {"string(/domain/devices/filesystem/target/@dir)",
     offsetof(struct dom_spec, share_tag)},
    {"string(/domain/name)", offsetof(struct dom_spec, name)},
    {"string(/domain/devices/disk/source/@file)",
     offsetof(struct dom_spec, disk_overlay)},
    {"string(/domain/devices/disk/backingStore/source/@file)",
     offsetof(struct dom_spec, disk_base)},
    {"string(/domain/metadata/*/@node)", offsetof(struct dom_spec, node)},
    {"string(/domain/cpu/model)", offsetof(struct dom_spec, cpu_model)},
};

static struct dom_spec special_spec(void)
{
	struct dom_spec s = base_spec();

	spec_disk(&s);
	for (size_t i = 0; i < ARRAY_SIZE(escaped_fields); i++)
		memcpy((char *)&s + escaped_fields[i].off,
		       &(const char *){SPECIAL}, sizeof(const char *));
	return s;
}

/* The owner vmmd writes into <metadata> reads back (vmmd/domowner.h),
 * from the whole domain and from the element alone as libvirt's
 * virDomainGetMetadata returns it (no prefix, double quotes); anything
 * else is not an owner. */
static void test_owner(void **state)
{
	static const struct {
		const char *xml;
		int r;
		uint32_t id;
		const char *node;
	} cases[] = {
	    {"<vmenv:job xmlns:vmenv=\"" DOMXML_NS "\" id=\"43\" "
	     "node=\"vm-2\"/>",
	     0, 43, "vm-2"},
	    {"<job xmlns=\"" DOMXML_NS "\" node='n1' id='7'/>", 0, 7, "n1"},
	    /* what libvirt 9.0's virDomainGetMetadata returned here */
	    {"<job id=\"42\" node=\"ck42\"/>", 0, 42, "ck42"},
	    {"<jobs id='4' node='n1'/>", -ENOENT, 0, NULL},
	    {"<domain><name>vmenv-n1-42</name></domain>", -ENOENT, 0, NULL},
	    {"<vmenv:job id='0' node='n1'/>", -EINVAL, 0, NULL},
	    {"<vmenv:job id='x1' node='n1'/>", -EINVAL, 0, NULL},
	    {"<vmenv:job id='4' node='a b'/>", -EINVAL, 0, NULL},
	    {"<vmenv:job id='4' node='a&amp;b'/>", -EINVAL, 0, NULL},
	    {"<vmenv:job id='4'/>", -EINVAL, 0, NULL},
	    {"<vmenv:job xid='4' node='n1'/>", -EINVAL, 0, NULL},
	    {"<vmenv:job id='4' node='n1'", -ENOENT, 0, NULL},
	};
	struct dom_spec s = base_spec();
	_cleanup_free_ char *xml = build(&s);
	char node[64];
	uint32_t id = 0;

	assert_int_equal(domowner_parse(xml, &id, node, sizeof(node)), 0);
	assert_int_equal(id, s.job_id);
	assert_string_equal(node, "n1");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		print_message("%s\n", cases[i].xml);
		id = 0;
		assert_int_equal(
		    domowner_parse(cases[i].xml, &id, node, sizeof(node)),
		    cases[i].r);
		if (cases[i].r == 0) {
			assert_int_equal(id, cases[i].id);
			assert_string_equal(node, cases[i].node);
		}
	}
	/* A node name that does not fit is refused, not cut. */
	assert_int_equal(domowner_parse(cases[0].xml, &id, node, 4), -EINVAL);
}

static void test_escaping(void **state)
{
	struct dom_spec s = special_spec();
	_cleanup_free_ char *xml = build(&s);

	assert_contains(xml, "/tmp/a&amp;b&lt;c&gt;&apos;d&quot;");
	assert_lacks(xml, "a&b");
	assert_lacks(xml, "<c>");
	assert_lacks(xml, "'d\"");
	/* Escaped once, not twice. */
	assert_lacks(xml, "&amp;amp;");
}

/* The real check: an XML parser reads back exactly the original strings. */
static void test_escaping_wellformed(void **state)
{
	struct dom_spec s = special_spec();
	_cleanup_free_ char *xml = build(&s);
	char path[] = "/tmp/vmenv-domxml-XXXXXX";

	if (access(XMLLINT, X_OK) != 0) {
		print_message("%s not installed\n", XMLLINT);
		skip();
	}
	write_temp(path, xml);
	{
		const char *argv[] = {XMLLINT, "--noout", path, NULL};
		int r = run(argv, NULL, 0);

		if (r != 0) {
			unlink(path);
			fail_msg("xmllint: not well-formed:\n%s", xml);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(escaped_fields); i++) {
		const char *argv[] = {XMLLINT, "--xpath",
				      escaped_fields[i].xpath, path, NULL};
		char out[256];

		assert_int_equal(run(argv, out, sizeof(out)), 0);
		out[strcspn(out, "\n")] = '\0'; /* xmllint ends the line */
		if (strcmp(out, SPECIAL) != 0) {
			unlink(path);
			fail_msg("%s reads back as '%s'",
				 escaped_fields[i].xpath, out);
		}
	}
	unlink(path);
}

/* --- placement and devices ------------------------------------------- */

static void test_placement_sections(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *none = NULL, *pinned = NULL, *numa = NULL;

	none = build(&s);
	assert_lacks(none, "<cputune>");
	assert_lacks(none, "<numatune>");
	assert_lacks(none, "<memtune>");
	assert_lacks(none, "<hostdev");
	spec_pinned(&s);
	pinned = build(&s);
	assert_contains(pinned, "<vcpupin vcpu='0' cpuset='0'/>");
	assert_contains(pinned, "<vcpupin vcpu='1' cpuset='1'/>");
	assert_contains(pinned, "<emulatorpin cpuset='0-1'/>");
	assert_contains(pinned, "<hard_limit unit='MiB'>1024</hard_limit>");
	/* TCG: a <cpu> for topology and cells, no host CPU model. */
	assert_contains(pinned, "  <cpu>\n    <topology sockets='1' dies='1' "
				"cores='2' threads='1'/>");
	assert_lacks(pinned, "host-passthrough");
	assert_lacks(pinned, "<memoryBacking>");
	assert_lacks(pinned, "<hostdev");
	s = base_spec();
	spec_numa(&s);
	numa = build(&s);
	assert_contains(numa, "<cpu mode='host-passthrough'>\n");
	assert_contains(numa, "<memory mode='strict' nodeset='0-1'/>");
	assert_contains(numa,
			"<memnode cellid='1' mode='strict' nodeset='1'/>");
	assert_contains(numa, "<page size='2048' unit='KiB'/>");
	assert_contains(numa, "<allocation mode='immediate'/>");
	/* Devices on cell 1 sit behind controller index 2 (node 1). */
	assert_contains(numa, "<controller type='pci' index='2' "
			      "model='pci-expander-bus'>\n"
			      "      <target><node>1</node></target>");
	assert_contains(numa, "bus='0xaf' slot='0x00' function='0x0'/></source>"
			      "\n      <address type='pci' domain='0x0000' "
			      "bus='0x02' slot='0x00' function='0x0'/>");
	assert_contains(numa, "<driver name='vfio'/>");
}

static void test_cpu_models(void **state)
{
	static const struct {
		const char *type, *model;
		bool placed;
		const char *want, *lacks;
	} cases[] = {
	    {"qemu", NULL, false, NULL, "<cpu"},
	    {"qemu", "", false, NULL, "<cpu"},
	    {"kvm", NULL, false, "  <cpu mode='host-passthrough'/>\n", NULL},
	    {"kvm", "host-passthrough", false,
	     "  <cpu mode='host-passthrough'/>\n", NULL},
	    {"qemu", "host-passthrough", false, "  <cpu mode='maximum'/>\n",
	     "host-passthrough"},
	    {"qemu", "host-model", true,
	     "  <cpu mode='host-model'>\n    <topology", NULL},
	    {"kvm", "Skylake-Server", false,
	     "  <cpu mode='custom' match='exact'>\n"
	     "    <model fallback='forbid'>Skylake-Server</model>\n"
	     "  </cpu>\n",
	     "host-passthrough"},
	    {"kvm", NULL, true,
	     "  <cpu mode='host-passthrough'>\n    <topology", NULL},
	    {"qemu", NULL, true, "  <cpu>\n    <topology", NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dom_spec s = base_spec();
		_cleanup_free_ char *xml = NULL;

		print_message("case %zu: %s %s\n", i, cases[i].type,
			      cases[i].model ? cases[i].model : "(none)");
		if (cases[i].placed)
			spec_pinned(&s);
		s.type = cases[i].type;
		s.cpu_model = cases[i].model;
		xml = build(&s);
		if (cases[i].want)
			assert_contains(xml, cases[i].want);
		if (cases[i].lacks)
			assert_lacks(xml, cases[i].lacks);
	}
}

/* A placement that does not add up with the spec is refused. */
static void test_placement_refusals(void **state)
{
	for (int i = 0; i < 6; i++) {
		struct dom_spec s = base_spec();
		char *xml = NULL;

		spec_numa(&s);
		print_message("case %d\n", i);
		if (i == 0)
			s.vcpus = 3; /* pins for 4 */
		else if (i == 1)
			s.mem_mib = 4095; /* cells hold 4096 */
		else if (i == 2)
			place_numa.threads = 1; /* 2x1x1 != 4 */
		else if (i == 3)
			place_numa.ncells = DOM_MAX_CELLS + 1;
		else if (i == 4)
			place_numa.ndevs = DOM_MAX_HOSTDEVS + 1;
		else
			place_numa.dev[0].cell = 2; /* no such cell */
		assert_int_equal(domxml_build(&s, &xml), -EINVAL);
		assert_null(xml);
	}
}

/* libvirt's own reading of the generated domains: its conversion to the
 * QEMU command line must hold the devices, memory backing and NUMA layout.
 * vCPU and emulator pinning are not on the command line (libvirt applies
 * them to the threads once QEMU runs): the XML checks above and the live
 * test (test/integration/t_70_placement) cover them. */
static const struct {
	const char *file;
	const char *want[12];
} conversions[] = {
    /* 34 virtio-serial ports: a second controller, every port named. */
    {"ports_max.xml",
     {"\"driver\":\"virtio-serial-pci\",\"id\":\"virtio-serial1\"",
      "\"name\":\"org.vmenv.files.m15\"", "\"name\":\"org.vmenv.bulk.15\""}},
    {"pinned.xml",
     {"-accel tcg", "-smp 2,sockets=1,dies=1,cores=2,threads=1",
      "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node0\","
      "\"size\":1006632960,\"host-nodes\":[0],\"policy\":\"bind\"}",
      "-numa node,nodeid=0,cpus=0-1,memdev=ram-node0"}},
    {"model.xml", {"-cpu Skylake-Server", "-smp 2,sockets=1,dies=1,cores=2"}},
    {"devices.xml",
     {"-smp 2,sockets=1,dies=1,cores=1,threads=2",
      "\"id\":\"ram-node0\",\"hugetlb\":true,\"hugetlbsize\":1073741824,"
      "\"prealloc\":true,\"size\":2147483648,\"host-nodes\":[0],"
      "\"policy\":\"bind\"",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:af:00.0\",",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:af:00.1\",",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:3b:00.2\",",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:3b:01.0\","}},
    {"numa.xml",
     {"-smp 4,sockets=2,dies=1,cores=1,threads=2",
      "\"id\":\"ram-node0\",\"hugetlb\":true,\"hugetlbsize\":2097152,"
      "\"prealloc\":true,\"size\":2147483648,\"host-nodes\":[0],"
      "\"policy\":\"bind\"",
      "\"id\":\"ram-node1\",\"hugetlb\":true,\"hugetlbsize\":2097152,"
      "\"prealloc\":true,\"size\":2147483648,\"host-nodes\":[@1],"
      "\"policy\":\"bind\"",
      "-numa node,nodeid=0,cpus=0-1,memdev=ram-node0",
      "-numa node,nodeid=1,cpus=2-3,memdev=ram-node1",
      "{\"driver\":\"pxb\",\"bus_nr\":254,\"id\":\"pci.1\",\"numa_node\":0,",
      "{\"driver\":\"pxb\",\"bus_nr\":252,\"id\":\"pci.2\",\"numa_node\":1,",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:3b:00.1\",\"id\":\"hostdev0\","
      "\"bus\":\"pci.1\"",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:18:00.0\",\"id\":\"hostdev1\","
      "\"bus\":\"pci.1\"",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:af:00.0\",\"id\":\"hostdev2\","
      "\"bus\":\"pci.2\"",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:86:00.0\",\"id\":\"hostdev3\","
      "\"bus\":\"pci.0\""}},
    /* The overlay on its read-only base, on the root bus beside the
     * expander buses and their hostdevs. */
    {"disknuma.xml",
     {"\"node-name\":\"libvirt-2-format\",\"read-only\":true,"
      "\"driver\":\"qcow2\"",
      "\"filename\":\"/run/vmenv/n1/jobs/42/disk/overlay.qcow2\"",
      "\"backing\":\"libvirt-2-format\"",
      "{\"driver\":\"virtio-blk-pci\",\"bus\":\"pci.0\"",
      "{\"driver\":\"pxb\",\"bus_nr\":252,\"id\":\"pci.2\",\"numa_node\":1,",
      "{\"driver\":\"vfio-pci\",\"host\":\"0000:af:00.0\",\"id\":\"hostdev2\","
      "\"bus\":\"pci.2\""}},
    {"bulk.xml",
     {"socket,id=charchannel1,path=/run/vmenv/n1/jobs/42/q/bulk.0.sock,"
      "server=on,wait=off",
      "\"chardev\":\"charchannel4\",\"id\":\"channel4\","
      "\"name\":\"org.vmenv.bulk.3\""}},
};

static bool libvirt_reachable(void)
{
	const char *argv[] = {"virsh",		"-q",  "-c",
			      "qemu:///system", "uri", NULL};
	char out[256];

	return have_prog("virsh") && run(argv, out, sizeof(out)) == 0;
}

/* Replaces every "from" in *text by "to" (same or shorter length). */
static void replace_all(char *text, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);

	for (char *p = strstr(text, from); p; p = strstr(p + tl, from)) {
		memmove(p + tl, p + fl, strlen(p + fl) + 1);
		memcpy(p, to, tl);
	}
}

/* The golden, adapted to what this host's libvirt can convert: host NUMA
 * node 1 mapped onto node 0 when the host has no node 1 (libvirt checks
 * nodesets against the host), TCG when libvirt offers no KVM. What was
 * adapted is printed, and the expectations follow. */
static char *convertible(const char *file, bool *node1_remapped)
{
	char path[VMENV_MAX_PATH];
	char *text = NULL;

	golden_path(path, sizeof(path), file);
	if (read_file_limited(path, 1 << 20, &text, NULL) < 0)
		fail_msg("cannot read %s", path);
	*node1_remapped = false;
	if (strstr(text, "nodeset='1'") &&
	    access("/sys/devices/system/node/node1", F_OK) != 0) {
		replace_all(text, "nodeset='0-1'", "nodeset='0'");
		replace_all(text, "nodeset='1'", "nodeset='0'");
		*node1_remapped = true;
		print_message("%s: this host has no NUMA node 1; its cells are "
			      "bound to node 0 for the conversion\n",
			      file);
	}
	return text;
}

static char *to_native(const char *xml, char *out, size_t outlen)
{
	char path[] = "/tmp/vmenv-domxml-XXXXXX";
	const char *argv[] = {
	    "virsh",	 "-q", "-c", "qemu:///system", "domxml-to-native",
	    "qemu-argv", path, NULL};
	int r;

	write_temp(path, xml);
	r = run(argv, out, outlen);
	unlink(path);
	return r == 0 ? out : NULL;
}

static void test_libvirt_conversion(void **state)
{
	static char out[1 << 16];

	if (!libvirt_reachable()) {
		print_message("libvirtd (qemu:///system) not reachable\n");
		skip();
	}
	for (size_t i = 0; i < ARRAY_SIZE(conversions); i++) {
		bool remapped;
		_cleanup_free_ char *xml =
		    convertible(conversions[i].file, &remapped);

		if (!to_native(xml, out, sizeof(out)) &&
		    strstr(xml, "<domain type='kvm'>")) {
			print_message("%s: libvirt offers no KVM here; "
				      "converted as TCG\n",
				      conversions[i].file);
			replace_all(xml, "<domain type='kvm'>",
				    "<domain type='qemu'>");
			replace_all(xml, "<cpu mode='host-passthrough'>",
				    "<cpu>");
		}
		if (!to_native(xml, out, sizeof(out)))
			fail_msg("libvirt cannot convert %s:\n%s",
				 conversions[i].file, out);
		for (size_t k = 0; conversions[i].want[k]; k++) {
			char want[512];

			snprintf(want, sizeof(want), "%s",
				 conversions[i].want[k]);
			replace_all(want, "@1", remapped ? "0" : "1");
			if (!strstr(out, want))
				fail_msg("%s: libvirt's command line lacks "
					 "'%s':\n%s",
					 conversions[i].file, want, out);
		}
	}
}

/* --- disks --------------------------------------------------------------- */

static void test_disk(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *none = NULL, *disk = NULL, *boot = NULL;

	none = build(&s);
	assert_lacks(none, "<disk");
	assert_lacks(none, "<boot dev=");
	spec_disk(&s);
	disk = build(&s);
	assert_contains(disk, "<disk type='file' device='disk'>");
	assert_contains(disk, "<driver name='qemu' type='qcow2'/>");
	assert_contains(disk, "<format type='qcow2'/>");
	/* The shared base is never relabelled (chowned) to the user. */
	assert_contains(disk, "<seclabel model='dac' relabel='no'/>");
	assert_contains(disk, "<target dev='vda' bus='virtio'/>");
	assert_contains(disk, "<kernel>");
	assert_lacks(disk, "<boot dev=");
	spec_diskboot(&s);
	boot = build(&s);
	assert_contains(boot, "<boot dev='hd'/>");
	assert_contains(boot, "<format type='raw'/>");
	assert_lacks(boot, "<kernel>");
	assert_lacks(boot, "<cmdline>");
}

static void no_kernel(struct dom_spec *s)
{
	s->kernel = s->initrd = s->cmdline = NULL;
}

static void disk_no_initrd(struct dom_spec *s)
{
	spec_disk(s);
	s->initrd = NULL;
}

static void disk_no_base(struct dom_spec *s)
{
	spec_disk(s);
	s->disk_base = NULL;
}

static void base_no_overlay(struct dom_spec *s)
{
	s->disk_base = "/b";
	s->disk_base_format = "qcow2";
}

static void disk_vmdk(struct dom_spec *s)
{
	spec_disk(s);
	s->disk_base_format = "vmdk";
}

static void test_disk_refusals(void **state)
{
	static const struct {
		const char *what;
		void (*adjust)(struct dom_spec *s);
	} cases[] = {
	    {"no kernel and no disk", no_kernel},
	    {"a kernel without initrd", disk_no_initrd},
	    {"overlay without base", disk_no_base},
	    {"base without overlay", base_no_overlay},
	    {"unknown base format", disk_vmdk},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dom_spec s = base_spec();
		char *xml = NULL;

		print_message("case: %s\n", cases[i].what);
		cases[i].adjust(&s);
		assert_int_equal(domxml_build(&s, &xml), -EINVAL);
		assert_null(xml);
	}
}

/* libvirt itself turns the disk into QEMU's command line: the overlay as
 * the drive, the base as its read-only backing node (read-only libvirt
 * call, no domain is defined). */
static void test_disk_libvirt_argv(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *xml = NULL;
	char path[] = "/tmp/vmenv-domxml-XXXXXX", out[16384];
	const char *argv[] = {
	    "virsh",	 "-q", "-c", "qemu:///system", "domxml-to-native",
	    "qemu-argv", path, NULL};

	if (!have_prog("virsh") || getenv("VMENV_NO_LIBVIRT")) {
		print_message("virsh not available\n");
		skip();
	}
	spec_disk(&s);
	xml = build(&s);
	write_temp(path, xml);
	if (run(argv, out, sizeof(out)) != 0) {
		unlink(path);
		print_message("libvirtd not reachable (or refused): skipped\n");
		skip();
	}
	unlink(path);
	assert_contains(out, "overlay.qcow2");
	assert_contains(out, "/var/cache/vmenv/sha256/5891b5b5");
	assert_contains(out, "\"read-only\":true");
	assert_contains(out, "virtio-blk-pci");
}

/* --- refusals ----------------------------------------------------------- */

static void net_tap_other(struct dom_spec *s)
{
	s->net_tap = "eth0";
}

static void net_tap_quote(struct dom_spec *s)
{
	s->net_tap = "vmj0'/><x a='";
}

static void net_tap_long(struct dom_spec *s)
{
	s->net_tap = "vmj0000002a00020";
}

static void net_tap_upper(struct dom_spec *s)
{
	s->net_tap = "vmj0000002A0002";
}

static void net_no_tap(struct dom_spec *s)
{
	s->net_tap = NULL;
}

static void net_bridge_prefix_only(struct dom_spec *s)
{
	s->net_bridge = "vmj";
}

static void net_bad_mac(struct dom_spec *s)
{
	s->net_mac = "52:54:00:00:00:0g";
}

static void net_no_mac(struct dom_spec *s)
{
	s->net_mac = NULL;
}

static void net_small_mtu(struct dom_spec *s)
{
	s->net_mtu = 575;
}

/* Device names and the MAC reach libvirt (which makes the tap under that
 * name): only what vmmd makes passes. */
static void test_net_refusals(void **state)
{
	static const struct {
		const char *what;
		void (*adjust)(struct dom_spec *s);
	} cases[] = {
	    {"a tap not of ours", net_tap_other},
	    {"a quote in the tap's name", net_tap_quote},
	    {"a tap name over IFNAMSIZ", net_tap_long},
	    {"upper case", net_tap_upper},
	    {"a bridge without a tap", net_no_tap},
	    {"the prefix alone", net_bridge_prefix_only},
	    {"a bad MAC", net_bad_mac},
	    {"no MAC", net_no_mac},
	    {"an MTU below 576", net_small_mtu},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dom_spec s = base_spec();
		char *xml = NULL;

		print_message("case: %s\n", cases[i].what);
		spec_net(&s);
		cases[i].adjust(&s);
		assert_int_equal(domxml_build(&s, &xml), -EINVAL);
		assert_null(xml);
	}
}

static void test_missing_fields(void **state)
{
	static const struct {
		const char *what;
		size_t off; /* pointer to clear, or */
		int which;  /* 1 vcpus=0, 2 mem=0, 3-4 bulk ports, 5-7 served
			       mounts */
	} cases[] = {
	    {"name", offsetof(struct dom_spec, name)},
	    {"type", offsetof(struct dom_spec, type)},
	    {"node", offsetof(struct dom_spec, node)},
	    {"kernel", offsetof(struct dom_spec, kernel)},
	    {"initrd", offsetof(struct dom_spec, initrd)},
	    {"cmdline", offsetof(struct dom_spec, cmdline)},
	    {"console_log", offsetof(struct dom_spec, console_log)},
	    {"agent_sock", offsetof(struct dom_spec, agent_sock)},
	    {"share_tag with a share_dir",
	     offsetof(struct dom_spec, share_tag)},
	    {"no vCPUs", 0, 1},
	    {"no memory", 0, 2},
	    {"bulk ports without a socket prefix", 0, 3},
	    {"more bulk ports than the protocol names", 0, 4},
	    {"served mounts without the working directory's port", 0, 5},
	    {"more served mounts than a spec has mounts", 0, 6},
	    {"a served mount without a socket", 0, 7},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dom_spec s = base_spec();
		char *xml = NULL;

		print_message("case: %s\n", cases[i].what);
		if (cases[i].which == 1)
			s.vcpus = 0;
		else if (cases[i].which == 2)
			s.mem_mib = 0;
		else if (cases[i].which == 3)
			s.bulk_ports = 1;
		else if (cases[i].which == 4) {
			spec_bulk(&s);
			s.bulk_ports = AW_MAX_BULK_PORTS + 1;
		} else if (cases[i].which == 5) {
			spec_served_mounts(&s);
			s.files_sock = NULL;
			s.files_port = NULL;
		} else if (cases[i].which == 6) {
			static struct dom_port many[DOM_MAX_FILES_MOUNTS + 1];

			for (size_t k = 0; k < ARRAY_SIZE(many); k++)
				many[k] = served_mounts[0];
			spec_served(&s);
			s.nfiles_mounts = ARRAY_SIZE(many);
			s.files_mounts = many;
		} else if (cases[i].which == 7) {
			static const struct dom_port nosock[] = {
			    {NULL, "org.vmenv.files.m0"}};

			spec_served(&s);
			s.nfiles_mounts = 1;
			s.files_mounts = nosock;
		} else
			memset((char *)&s + cases[i].off, 0,
			       sizeof(const char *));
		assert_int_equal(domxml_build(&s, &xml), -EINVAL);
		assert_null(xml);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_golden_schema),
	    cmocka_unit_test(test_kvm_vs_qemu),
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_owner),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_escaping_wellformed),
	    cmocka_unit_test(test_missing_fields),
	    cmocka_unit_test(test_placement_sections),
	    cmocka_unit_test(test_cpu_models),
	    cmocka_unit_test(test_placement_refusals),
	    cmocka_unit_test(test_libvirt_conversion),
	    cmocka_unit_test(test_disk),
	    cmocka_unit_test(test_disk_refusals),
	    cmocka_unit_test(test_disk_libvirt_argv),
	    cmocka_unit_test(test_net_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
