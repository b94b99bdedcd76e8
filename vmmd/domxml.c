/* SPDX-License-Identifier: MIT */
#include "domxml.h"

#include "agentwire.h"
#include "hostnet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

static void sb_grow(struct sbuf *b, size_t add)
{
	size_t ncap;
	char *np;

	if (b->oom || b->len + add + 1 <= b->cap)
		return;
	ncap = b->cap ? b->cap : 4096;
	while (ncap < b->len + add + 1)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = ncap;
}

static void sb_raw(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Literal XML with %s/%u arguments that are never user strings: numbers and
 * fixed words. User-derived strings go through sb_esc(). */
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->oom = true;
		return;
	}
	sb_raw(b, tmp, (size_t)n);
}

static void sb_esc(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			sb_raw(b, "&amp;", 5);
			break;
		case '<':
			sb_raw(b, "&lt;", 4);
			break;
		case '>':
			sb_raw(b, "&gt;", 4);
			break;
		case '\'':
			sb_raw(b, "&apos;", 6);
			break;
		case '"':
			sb_raw(b, "&quot;", 6);
			break;
		default:
			sb_raw(b, s, 1);
		}
	}
}

/* <tag>escaped</tag> on its own line. */
static void sb_elem(struct sbuf *b, const char *indent, const char *tag,
		    const char *val)
{
	sb_fmt(b, "%s<%s>", indent, tag);
	sb_esc(b, val);
	sb_fmt(b, "</%s>\n", tag);
}

/* --- placement and devices (struct dom_placement) ------------------ */

static void sb_cpuset(struct sbuf *b, const struct cpuset *set)
{
	char list[8 * CPUSET_MAX];

	if (cpuset_format(set, list, sizeof(list)) < 0)
		b->oom = true;
	else
		sb_raw(b, list, strlen(list));
}

/* vCPU i on host CPU pin[i]; QEMU's other threads (main loop, I/O,
 * workers) on the emulator set. */
static void build_cputune(struct sbuf *b, const struct dom_placement *p)
{
	if (!p->nvcpus)
		return;
	sb_fmt(b, "  <cputune>\n");
	for (uint32_t i = 0; i < p->nvcpus; i++)
		sb_fmt(b, "    <vcpupin vcpu='%u' cpuset='%u'/>\n", i,
		       (unsigned)p->pin[i]);
	sb_fmt(b, "    <emulatorpin cpuset='");
	sb_cpuset(b, &p->emulator);
	sb_fmt(b, "'/>\n  </cputune>\n");
}

/* The cgroup limit on everything QEMU uses: guest RAM and QEMU itself. */
static void build_memtune(struct sbuf *b, const struct dom_placement *p)
{
	if (p->hard_limit_mib)
		sb_fmt(b,
		       "  <memtune>\n    <hard_limit unit='MiB'>%u</hard_limit>"
		       "\n  </memtune>\n",
		       p->hard_limit_mib);
}

/* Hugepages from memfd (no hugetlbfs mount needed), allocated when QEMU
 * starts, so a shortage shows at start and not as a guest crash later. */
static void build_memory_backing(struct sbuf *b, const struct dom_placement *p)
{
	if (!p->hugepage_kib)
		return;
	sb_fmt(b,
	       "  <memoryBacking>\n    <hugepages>\n"
	       "      <page size='%u' unit='KiB'/>\n    </hugepages>\n"
	       "    <source type='memfd'/>\n"
	       "    <allocation mode='immediate'/>\n  </memoryBacking>\n",
	       p->hugepage_kib);
}

static void build_numatune(struct sbuf *b, const struct dom_placement *p)
{
	struct cpuset nodes;

	if (!p->ncells)
		return;
	cpuset_zero(&nodes);
	for (uint32_t i = 0; i < p->ncells; i++)
		cpuset_set(&nodes, p->cell[i].host_node);
	sb_fmt(b, "  <numatune>\n    <memory mode='strict' nodeset='");
	sb_cpuset(b, &nodes);
	sb_fmt(b, "'/>\n");
	for (uint32_t i = 0; i < p->ncells; i++)
		sb_fmt(
		    b,
		    "    <memnode cellid='%u' mode='strict' nodeset='%u'/>\n",
		    i, p->cell[i].host_node);
	sb_fmt(b, "  </numatune>\n");
}

static void build_placement(struct sbuf *b, const struct dom_spec *s)
{
	if (!s->place)
		return;
	build_cputune(b, s->place);
	build_memtune(b, s->place);
	build_memory_backing(b, s->place);
	build_numatune(b, s->place);
}

/* The <cpu> start for the spec's model. Returns whether the element is
 * left open for children and its end tag (false: nothing was written, or
 * a complete empty element). */
static bool cpu_open(struct sbuf *b, const struct dom_spec *s, bool inner)
{
	const char *m = s->cpu_model && *s->cpu_model ? s->cpu_model : NULL;
	bool kvm = strcmp(s->type, "kvm") == 0;

	if (!m && kvm)
		m = "host-passthrough";
	if (!m) {
		if (inner)
			sb_fmt(b, "  <cpu>\n");
		return inner;
	}
	if (strcmp(m, "host-passthrough") == 0) {
		/* TCG cannot pass the host's CPU through; "maximum" is QEMU's
		 * "max", every feature it can emulate. */
		sb_fmt(b, "  <cpu mode='%s'", kvm ? m : "maximum");
	} else if (strcmp(m, "host-model") == 0) {
		sb_fmt(b, "  <cpu mode='host-model'");
	} else {
		sb_fmt(b, "  <cpu mode='custom' match='exact'>\n"
			  "    <model fallback='forbid'>");
		sb_esc(b, m);
		sb_fmt(b, "</model>\n");
		return true;
	}
	sb_fmt(b, inner ? ">\n" : "/>\n");
	return inner;
}

/* <cpu>: the model, the guest topology, and the guest NUMA cells. */
static void build_cpu(struct sbuf *b, const struct dom_spec *s)
{
	const struct dom_placement *p = s->place;
	bool inner = p && (p->sockets || p->ncells);

	if (!cpu_open(b, s, inner))
		return;
	if (inner && p->sockets)
		sb_fmt(b,
		       "    <topology sockets='%u' dies='1' cores='%u' "
		       "threads='%u'/>\n",
		       p->sockets, p->cores, p->threads);
	if (inner && p->ncells) {
		sb_fmt(b, "    <numa>\n");
		for (uint32_t i = 0; i < p->ncells; i++) {
			sb_fmt(b, "      <cell id='%u' cpus='", i);
			sb_cpuset(b, &p->cell[i].vcpus);
			sb_fmt(b, "' memory='%u' unit='MiB'/>\n",
			       p->cell[i].mem_mib);
		}
		sb_fmt(b, "    </numa>\n");
	}
	sb_fmt(b, "  </cpu>\n");
}

/* A PCI expander bus per guest NUMA cell that has devices (controller
 * index cell+1; libvirt numbers the buses), then the devices: VFIO,
 * managed (libvirt detaches them from their host driver for the guest's
 * life and gives them back after). */
/* The NIC sits in a fixed slot of the root bus, the same whether it is in
 * the domain from its start or plugged into a guest restored from a
 * template (warm.c): a later checkpoint's restore then finds it where the
 * saved guest had it (libvirt would give a cold NIC a low slot, ahead of
 * the devices that a plugged one comes after). */
#define NET_SLOT 0x1f

static void build_net(struct sbuf *b, const struct dom_spec *s)
{
	sb_fmt(b, "    <interface type='bridge'>\n      <mac address='");
	sb_esc(b, s->net_mac);
	sb_fmt(b, "'/>\n      <source bridge='");
	sb_esc(b, s->net_bridge);
	sb_fmt(b, "'/>\n      <target dev='");
	sb_esc(b, s->net_tap);
	sb_fmt(b,
	       "'/>\n      <model type='virtio'/>\n      <mtu size='%u'/>\n"
	       "      <address type='pci' domain='0x0000' bus='0x00' "
	       "slot='0x%02x' function='0x0'/>\n"
	       "    </interface>\n",
	       s->net_mtu, NET_SLOT);
}

static void build_hostdevs(struct sbuf *b, const struct dom_spec *s)
{
	const struct dom_placement *p = s->place;
	uint32_t next_slot[DOM_MAX_CELLS + 1] = {0};
	bool bus[DOM_MAX_CELLS] = {false};

	if (!p)
		return;
	for (uint32_t i = 0; i < p->ndevs; i++)
		if (p->dev[i].cell >= 0 && p->dev[i].cell < DOM_MAX_CELLS)
			bus[p->dev[i].cell] = true;
	for (uint32_t c = 0; c < p->ncells && c < DOM_MAX_CELLS; c++)
		if (bus[c])
			sb_fmt(b,
			       "    <controller type='pci' index='%u' "
			       "model='pci-expander-bus'>\n"
			       "      <target><node>%u</node></target>\n"
			       "    </controller>\n",
			       c + 1, c);
	for (uint32_t i = 0; i < p->ndevs; i++) {
		const struct dom_hostdev *d = &p->dev[i];
		uint32_t idx = d->cell >= 0 ? (uint32_t)d->cell + 1 : 0;

		sb_fmt(b,
		       "    <hostdev mode='subsystem' type='pci' "
		       "managed='yes'>\n"
		       "      <driver name='vfio'/>\n"
		       "      <source><address domain='0x%04x' bus='0x%02x' "
		       "slot='0x%02x' function='0x%x'/></source>\n",
		       d->host.domain, d->host.bus, d->host.slot, d->host.func);
		if (idx)
			sb_fmt(b,
			       "      <address type='pci' domain='0x0000' "
			       "bus='0x%02x' slot='0x%02x' function='0x0'/>\n",
			       idx, next_slot[idx]++);
		sb_fmt(b, "    </hostdev>\n");
	}
}

static bool placement_ok(const struct dom_spec *s)
{
	const struct dom_placement *p = s->place;
	uint32_t mem = 0;

	if (!p)
		return true;
	if (p->ncells > DOM_MAX_CELLS || p->ndevs > DOM_MAX_HOSTDEVS ||
	    p->nvcpus > CPUSET_MAX)
		return false;
	if (p->nvcpus && p->nvcpus != s->vcpus)
		return false;
	for (uint32_t i = 0; i < p->ndevs; i++)
		if (p->dev[i].cell >= (int)p->ncells)
			return false;
	for (uint32_t i = 0; i < p->ncells; i++)
		mem += p->cell[i].mem_mib;
	if (p->ncells && mem != s->mem_mib)
		return false;
	return !p->sockets || p->sockets * p->cores * p->threads == s->vcpus;
}

/* QEMU's 9p server, as the job's user (QEMU runs as that user):
 * passthrough keeps the host's owners and modes. */
static void build_share(struct sbuf *b, const char *dir, const char *tag,
			bool ro)
{
	sb_fmt(b, "    <filesystem type='mount' accessmode='passthrough'>"
		  "\n      <source dir='");
	sb_esc(b, dir);
	sb_fmt(b, "'/>\n      <target dir='");
	sb_esc(b, tag);
	sb_fmt(b, "'/>\n%s    </filesystem>\n",
	       ro ? "      <readonly/>\n" : "");
}

static void build_kernel(struct sbuf *b, const struct dom_spec *s)
{
	sb_elem(b, "    ", "kernel", s->kernel);
	sb_elem(b, "    ", "initrd", s->initrd);
	sb_elem(b, "    ", "cmdline", s->cmdline);
}

/* The job's overlay, backed by the shared base that libvirt must leave
 * alone (relabel='no', see domxml.h). */
static void build_disk(struct sbuf *b, const struct dom_spec *s)
{
	sb_fmt(b, "    <disk type='file' device='disk'>\n"
		  "      <driver name='qemu' type='qcow2'/>\n"
		  "      <source file='");
	sb_esc(b, s->disk_overlay);
	sb_fmt(b,
	       "'/>\n      <backingStore type='file'>\n"
	       "        <format type='%s'/>\n        <source file='",
	       strcmp(s->disk_base_format, "raw") == 0 ? "raw" : "qcow2");
	sb_esc(b, s->disk_base);
	sb_fmt(b, "'>\n          <seclabel model='dac' relabel='no'/>\n"
		  "        </source>\n        <backingStore/>\n"
		  "      </backingStore>\n"
		  "      <target dev='vda' bus='virtio'/>\n    </disk>\n");
}

static bool disk_ok(const struct dom_spec *s)
{
	if (!s->disk_overlay)
		return !s->disk_base && !s->disk_base_format;
	return s->disk_base && s->disk_base_format &&
	       (strcmp(s->disk_base_format, "qcow2") == 0 ||
		strcmp(s->disk_base_format, "raw") == 0);
}

static void build_head(struct sbuf *b, const struct dom_spec *s)
{
	sb_fmt(b, "<domain type='%s'>\n",
	       strcmp(s->type, "kvm") ? "qemu" : "kvm");
	sb_elem(b, "  ", "name", s->name);
	sb_fmt(b,
	       "  <metadata>\n    <vmenv:job xmlns:vmenv='" DOMXML_NS
	       "' id='%u' node='",
	       s->job_id);
	sb_esc(b, s->node);
	sb_fmt(b, "'/>\n  </metadata>\n");
	sb_fmt(b, "  <memory unit='MiB'>%u</memory>\n", s->mem_mib);
	sb_fmt(b, "  <vcpu placement='static'>%u</vcpu>\n", s->vcpus);
	build_placement(b, s);
	sb_fmt(b, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
	if (s->kernel)
		build_kernel(b, s);
	else
		sb_fmt(b, "    <boot dev='hd'/>\n");
	sb_fmt(b, "  </os>\n  <features><acpi/></features>\n");
	build_cpu(b, s);
	/* A guest that stops for any reason is gone: vmmd sees the event and
	 * fails the job instead of leaving a paused domain behind. */
	sb_fmt(b, "  <on_poweroff>destroy</on_poweroff>\n"
		  "  <on_reboot>destroy</on_reboot>\n"
		  "  <on_crash>destroy</on_crash>\n");
	sb_fmt(b,
	       "  <seclabel type='static' model='dac' relabel='yes'>"
	       "<label>+%u:+%u</label></seclabel>\n",
	       s->uid, s->gid);
}

static void build_port(struct sbuf *b, const char *sock, const char *name)
{
	sb_fmt(b,
	       "    <channel type='unix'>\n      <source mode='bind' path='");
	sb_esc(b, sock);
	sb_fmt(b, "'/>\n      <target type='virtio' name='");
	sb_esc(b, name);
	sb_fmt(b, "'/>\n    </channel>\n");
}

/* The working directory's port, then each served mount's. */
static void build_files_port(struct sbuf *b, const struct dom_spec *s)
{
	build_port(b, s->files_sock, s->files_port);
	for (uint32_t i = 0; i < s->nfiles_mounts; i++)
		build_port(b, s->files_mounts[i].sock, s->files_mounts[i].name);
}

static void build_bulk_ports(struct sbuf *b, const struct dom_spec *s)
{
	for (uint32_t i = 0; i < s->bulk_ports; i++) {
		sb_fmt(b,
		       "    <channel type='unix'>\n      <source mode='bind' "
		       "path='");
		sb_esc(b, s->bulk_sock_prefix);
		sb_fmt(b, "%u.sock'/>\n      <target type='virtio' name='", i);
		sb_fmt(b, AW_BULK_PORT_FMT, i);
		sb_fmt(b, "'/>\n    </channel>\n");
	}
}

static void build_devices(struct sbuf *b, const struct dom_spec *s)
{
	sb_fmt(b, "  <devices>\n");
	/* No USB controller: nothing uses it, and the guest kernel would probe
	 * it at every boot (libvirt adds one to 'pc' machines otherwise). */
	sb_fmt(b, "    <controller type='usb' model='none'/>\n");
	if (s->disk_overlay)
		build_disk(b, s);
	sb_fmt(b, "    <serial type='pty'>\n      <log file='");
	sb_esc(b, s->console_log);
	sb_fmt(b, "' append='on'/>\n      <target port='0'/>\n    </serial>\n"
		  "    <console type='pty'><target type='serial' port='0'/>"
		  "</console>\n");
	sb_fmt(b,
	       "    <channel type='unix'>\n      <source mode='bind' path='");
	sb_esc(b, s->agent_sock);
	sb_fmt(b, "'/>\n      <target type='virtio' name='org.vmenv.agent.0'/>"
		  "\n    </channel>\n");
	if (s->share_dir)
		build_share(b, s->share_dir, s->share_tag, false);
	for (uint32_t i = 0; i < s->nmounts; i++)
		build_share(b, s->mounts[i].dir, s->mounts[i].tag,
			    s->mounts[i].ro);
	if (s->net_bridge)
		build_net(b, s);
	if (s->files_sock)
		build_files_port(b, s);
	build_bulk_ports(b, s);
	build_hostdevs(b, s);
	if (s->standin)
		sb_fmt(b, "    " DOMXML_STANDIN_XML "\n");
	sb_fmt(b, "    <memballoon model='none'/>\n  </devices>\n</domain>\n");
}

/* A device name vmmd made (hostnet_names): our prefix, lowercase hex, at
 * most IFNAMSIZ - 1 characters. */
static bool ifname_ok(const char *n)
{
	size_t plen = strlen(HOSTNET_PREFIX), len = n ? strlen(n) : 0;

	return len > plen && len < HOSTNET_IFNAME_MAX &&
	       strncmp(n, HOSTNET_PREFIX, plen) == 0 &&
	       strspn(n + plen, "0123456789abcdef") == len - plen;
}

static bool net_ok(const struct dom_spec *s)
{
	return !s->net_bridge ||
	       (ifname_ok(s->net_bridge) && ifname_ok(s->net_tap) &&
		s->net_mac && strlen(s->net_mac) == 17 &&
		strspn(s->net_mac, "0123456789abcdef:") == 17 &&
		s->net_mtu >= 576 && s->net_mtu <= 65535);
}

static bool mounts_ok(const struct dom_spec *s)
{
	for (uint32_t i = 0; i < s->nmounts; i++)
		if (!s->mounts[i].dir || !s->mounts[i].tag)
			return false;
	if (s->nfiles_mounts > DOM_MAX_FILES_MOUNTS ||
	    (s->nfiles_mounts && (!s->files_sock || !s->files_mounts)))
		return false;
	for (uint32_t i = 0; i < s->nfiles_mounts; i++)
		if (!s->files_mounts[i].sock || !s->files_mounts[i].name)
			return false;
	return !s->nmounts || s->mounts;
}

static bool spec_ok(const struct dom_spec *s)
{
	bool kernel = s->kernel && s->initrd && s->cmdline;
	bool no_kernel = !s->kernel && !s->initrd && !s->cmdline;

	return s->name && s->type && s->node && (kernel || no_kernel) &&
	       (kernel || s->disk_overlay) && disk_ok(s) && s->console_log &&
	       s->agent_sock && s->vcpus > 0 && s->mem_mib > 0 &&
	       (!s->share_dir || s->share_tag) && mounts_ok(s) &&
	       (!s->files_sock || s->files_port) &&
	       s->bulk_ports <= AW_MAX_BULK_PORTS &&
	       (!s->bulk_ports || s->bulk_sock_prefix) && net_ok(s) &&
	       placement_ok(s);
}

int domxml_net(const struct dom_spec *s, char **ret)
{
	struct sbuf b = {0};

	if (!s->net_bridge || !net_ok(s))
		return -EINVAL;
	build_net(&b, s);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*ret = b.p;
	return 0;
}

int domxml_hostdev(const struct dom_hostdev *d, char **ret)
{
	struct sbuf b = {0};

	sb_fmt(&b,
	       "<hostdev mode='subsystem' type='pci' managed='yes'>\n"
	       "  <driver name='vfio'/>\n"
	       "  <source><address domain='0x%04x' bus='0x%02x' slot='0x%02x' "
	       "function='0x%x'/></source>\n"
	       "</hostdev>\n",
	       d->host.domain, d->host.bus, d->host.slot, d->host.func);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*ret = b.p;
	return 0;
}

int domxml_hostdev_gone(const struct dom_hostdev *d, char *buf, size_t len)
{
	int n =
	    snprintf(buf, len,
		     "<address domain='0x%04x' bus='0x%02x' slot='0x%02x' "
		     "function='0x%x'/></source>",
		     d->host.domain, d->host.bus, d->host.slot, d->host.func);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int domxml_build(const struct dom_spec *s, char **ret)
{
	struct sbuf b = {0};

	if (!spec_ok(s))
		return -EINVAL;
	build_head(&b, s);
	build_devices(&b, s);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*ret = b.p;
	return 0;
}
