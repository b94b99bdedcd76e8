// SPDX-License-Identifier: MIT
/*
 * vmmd/net/hostnet_linux.c against the real kernel, in network namespaces of
 * the test's own (nothing of the host's network is touched): a job's
 * bridge, guests on it (veth ends in namespaces of their own, named as
 * vmmd names the taps), the nf_tables guard, and across two "hosts" the
 * VXLAN tunnel. Then the attacks of a local user (nobody) that the guard
 * must stop: sending into the segment through the bridge or a guest's port
 * (SO_BINDTODEVICE, broadcast and unicast), sniffing it (a packet socket),
 * attaching to a job's tap, forging a VXLAN packet to the tunnel's port,
 * binding that port first. Each attack is also made where it must work
 * (without the guard, or as root), so a test that cannot see an attack
 * cannot pass. Needs root and `ip` (iproute2); SKIPPED otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hostnet.h"
#include "nl.h"
#include "testutil.h"

/* glibc's before the kernel's (linux/netfilter.h includes linux/in.h). */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY	   65534u
#define JOB	   42u
#define VNI	   43u
#define PORT	   789u
#define GUEST_PORT 9999u

static struct {
	bool ok;      /* root, ip, namespaces */
	int outer;    /* the namespace the test started in */
	int host;     /* "this host": the test's own namespace */
	char dir[64]; /* lock file */
	struct hostnet_linux hl;
	char bridge[HOSTNET_IFNAME_MAX], tunnel[HOSTNET_IFNAME_MAX],
	    tap0[HOSTNET_IFNAME_MAX], tap1[HOSTNET_IFNAME_MAX];
} fx;

/* --- namespaces ----------------------------------------------------------- */

static void enter(int ns)
{
	assert_int_equal(setns(ns, CLONE_NEWNET), 0);
}

/* A new network namespace (its fd keeps it); the caller stays where it was. */
static int ns_new(void)
{
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	assert_true(here >= 0);
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	enter(here);
	close(here);
	return fd;
}

/* A shell command in namespace ns; its exit status. */
__attribute__((format(printf, 2, 3))) static int sh(int ns, const char *fmt,
						    ...)
{
	char cmd[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	enter(ns);
	r = system(cmd);
	enter(fx.host);
	return WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

/* Moves link name of the current namespace into namespace ns. */
static void move_link(const char *name, int ns)
{
	static struct nl_msg m;
	struct nl_sock s;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	size_t off;

	assert_int_equal(nl_open(&s, NETLINK_ROUTE), 0);
	nl_msg_init(&m);
	off = nl_begin(&m, &s, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, name);
	nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)ns);
	nl_end(&m, off);
	assert_int_equal(nl_send_wait(&s, &m), 0);
	nl_close(&s);
}

/* A guest: a namespace with one interface "gN" at 10.77.0.N/16 whose
 * other end is port (named as vmmd names a tap) on the bridge of the
 * namespace host; and a UDP socket of it on GUEST_PORT. */
struct guest {
	int ns;
	int sock;
};

static struct guest guest_new(int host, int n, const char *port,
			      const char *bridge)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(GUEST_PORT)};
	struct guest g = {.ns = ns_new()};
	char name[16];

	snprintf(name, sizeof(name), "g%d", n);
	assert_int_equal(
	    sh(host, "ip link add %s type veth peer name %s", port, name), 0);
	enter(host);
	move_link(name, g.ns);
	enter(fx.host);
	assert_int_equal(sh(host, "ip link set %s master %s up", port, bridge),
			 0);
	assert_int_equal(sh(g.ns,
			    "ip addr add 10.77.0.%d/16 dev %s && ip link set "
			    "%s up && ip link set lo up",
			    n, name, name),
			 0);
	enter(g.ns);
	g.sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(g.sock, (struct sockaddr *)&sin, sizeof(sin)), 0);
	enter(fx.host);
	return g;
}

static void guest_free(struct guest *g)
{
	close(g->sock);
	close(g->ns);
}

/* What the guest received within ms, payloads joined by '|'. */
static const char *received(struct guest *g, int ms)
{
	static char out[1024];
	struct pollfd p = {.fd = g->sock, .events = POLLIN};
	char buf[512];
	ssize_t n;

	out[0] = '\0';
	while (poll(&p, 1, ms) > 0) {
		n = recv(g->sock, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			break;
		buf[n] = '\0';
		if (out[0])
			strncat(out, "|", sizeof(out) - strlen(out) - 1);
		strncat(out, buf, sizeof(out) - strlen(out) - 1);
		ms = 200;
	}
	return out;
}

/* Sends text from guest g to 10.77.0.to. */
static void guest_send(struct guest *g, int to, const char *text)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(GUEST_PORT)};
	char addr[16];

	snprintf(addr, sizeof(addr), "10.77.0.%d", to);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	assert_int_equal(sendto(g->sock, text, strlen(text), 0,
				(struct sockaddr *)&sin, sizeof(sin)),
			 (ssize_t)strlen(text));
}

/* --- the attacker: a process of nobody's on the host ---------------------- */

/* Runs fn as nobody in namespace ns (a child); its exit status. */
static int as_nobody(int ns, int (*fn)(const void *), const void *arg)
{
	pid_t pid;
	int w;

	enter(ns);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 ||
		    setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY))
			_exit(100);
		_exit(fn(arg));
	}
	enter(fx.host);
	assert_int_equal(waitpid(pid, &w, 0), pid);
	return WIFEXITED(w) ? WEXITSTATUS(w) : 128;
}

/* Exit codes of the attacks: what stopped them. */
enum { SENT = 0, REFUSED_SEND = 1, REFUSED_SOCKET = 2, REFUSED_DEVICE = 3 };

struct inject {
	const char *dev;
	const char *dst;
	uint16_t port;
	const char *text;
};

/* UDP through a device of our choosing, as any process may. */
static int inject_udp(const void *arg)
{
	const struct inject *in = arg;
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(in->port)};
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;

	inet_pton(AF_INET, in->dst, &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	if (in->dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, in->dev,
				  (socklen_t)strlen(in->dev)) < 0)
		return REFUSED_DEVICE;
	if (sendto(fd, in->text, strlen(in->text), 0, (struct sockaddr *)&sin,
		   sizeof(sin)) < 0)
		return REFUSED_SEND;
	return SENT;
}

static int sniff(const void *arg)
{
	(void)arg;
	return socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) < 0
		   ? REFUSED_SOCKET
		   : SENT;
}

static int open_tap(const void *arg)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return REFUSED_SOCKET;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", (const char *)arg);
	return ioctl(fd, TUNSETIFF, &ifr) < 0 ? REFUSED_DEVICE : SENT;
}

/* --- fixture -------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	if (geteuid() != 0 || system("ip -V >/dev/null 2>&1") != 0)
		return 0;
	fx.outer = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fx.outer < 0 || unshare(CLONE_NEWNET) < 0)
		return 0;
	fx.host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/vmenv-test-hostnet.XXXXXX");
	if (fx.host < 0 || !mkdtemp(fx.dir))
		return -1;
	static char lock[96];
	snprintf(lock, sizeof(lock), "%s/jobnet.lock", fx.dir);
	fx.hl.lock_path = lock;
	hostnet_names(JOB, 0, fx.bridge, fx.tunnel, fx.tap0);
	hostnet_names(JOB, 1, fx.bridge, fx.tunnel, fx.tap1);
	/* The host's own address (a source for what it sends), and a
	 * default route, as a compute node has. */
	if (system("ip link set lo up && ip link add pub0 type veth peer name "
		   "pub1 && ip addr add 192.0.2.1/24 dev pub0 && ip link set "
		   "pub0 up && ip link set pub1 up && ip route add default via "
		   "192.0.2.2") != 0)
		return -1;
	fx.ok = true;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (fx.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		if (system(cmd) != 0)
			return -1;
	}
	/* The namespaces go with their last fd and process. */
	return 0;
}

static void need_root(void)
{
	if (!fx.ok) {
		print_message("needs root, iproute2 and network namespaces\n");
		skip();
	}
}

static struct hostnet_spec spec_local(void)
{
	struct hostnet_spec s = {.mtu = 1500};

	snprintf(s.bridge, sizeof(s.bridge), "%s", fx.bridge);
	return s;
}

/* Deletes the guard (nf_tables tables of ours), for the controls. */
static void guard_delete(void)
{
	static struct nl_msg m;
	static const uint8_t families[] = {NFPROTO_INET, NFPROTO_ARP};
	struct nfgenmsg b = {.nfgen_family = AF_UNSPEC,
			     .res_id = htons(NFNL_SUBSYS_NFTABLES)};
	struct nl_sock s;

	assert_int_equal(nl_open(&s, NETLINK_NETFILTER), 0);
	nl_msg_init(&m);
	nl_end(&m, nl_begin(&m, &s, NFNL_MSG_BATCH_BEGIN, 0, &b, sizeof(b)));
	for (size_t i = 0; i < sizeof(families); i++) {
		struct nfgenmsg h = {.nfgen_family = families[i]};
		size_t off = nl_begin(
		    &m, &s, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE,
		    NLM_F_ACK, &h, sizeof(h));

		nl_put_str(&m, NFTA_TABLE_NAME, HOSTNET_GUARD);
		nl_end(&m, off);
	}
	nl_end(&m, nl_begin(&m, &s, NFNL_MSG_BATCH_END, 0, &b, sizeof(b)));
	assert_int_equal(nl_send_wait(&s, &m), 0);
	nl_close(&s);
}

static bool link_exists(int ns, const char *name)
{
	return sh(ns, "ip link show %s >/dev/null 2>&1", name) == 0;
}

/* Removes a guest's port (or waits until the guest's namespace took it
 * along: a namespace's devices go a moment after its last fd). */
static void del_link(int ns, const char *name)
{
	(void)sh(ns, "ip link del %s 2>/dev/null", name);
	for (int i = 0; i < 100 && link_exists(ns, name); i++)
		usleep(50000);
	assert_false(link_exists(ns, name));
}

/* --- tests ---------------------------------------------------------------- */

static void test_names(void **state)
{
	char b[16], t[16], tap[16];
	uint32_t id;

	(void)state;
	hostnet_names(0xdeadbeef, 65533, b, t, tap);
	assert_string_equal(b, "vmjdeadbeef");
	assert_string_equal(t, "vmjdeadbeeft");
	assert_string_equal(tap, "vmjdeadbeeffffd");
	assert_int_equal(strlen(tap), 15); /* IFNAMSIZ - 1 */
	hostnet_names(7, 0, b, t, tap);
	assert_string_equal(b, "vmj00000007");
	assert_string_equal(tap, "vmj000000070000");
	assert_true(hostnet_bridge_job("vmj00000007", &id));
	assert_int_equal(id, 7);
	assert_true(hostnet_bridge_job("vmjdeadbeef", &id));
	assert_int_equal(id, 0xdeadbeef);
	assert_false(hostnet_bridge_job("vmj0000007", &id));
	assert_false(hostnet_bridge_job("vmj000000070", &id));
	assert_false(hostnet_bridge_job("vmjDEADBEEF", &id));
	assert_false(hostnet_bridge_job("vmx00000007", &id));
	assert_false(hostnet_bridge_job("vmj00000007t", &id));
	assert_false(hostnet_bridge_job("", &id));
}

/* A job's bridge with two guests: they reach each other; a local user can
 * neither send into the segment nor sniff it nor take a tap, while the
 * guard is there; without it the same sends arrive. */
static void test_bridge_guarded(void **state)
{
	struct hostnet_spec s = spec_local();
	struct inject via_bridge = {fx.bridge, "255.255.255.255", GUEST_PORT,
				    "bcast-bridge"},
		      via_port = {fx.tap1, "255.255.255.255", GUEST_PORT,
				  "bcast-port"},
		      unicast = {fx.bridge, "10.77.0.2", GUEST_PORT, "unicast"};
	struct guest g1, g2;
	char err[512] = "";

	(void)state;
	need_root();
	assert_int_equal(hostnet_linux_ops.up(&fx.hl, &s, err, sizeof(err)), 0);
	g1 = guest_new(fx.host, 1, fx.tap0, fx.bridge);
	g2 = guest_new(fx.host, 2, fx.tap1, fx.bridge);
	/* The job's own traffic. */
	guest_send(&g1, 2, "hello from g1");
	assert_string_equal(received(&g2, 3000), "hello from g1");
	/* The attacks. */
	assert_int_equal(as_nobody(fx.host, inject_udp, &via_bridge),
			 REFUSED_SEND);
	assert_int_equal(as_nobody(fx.host, inject_udp, &via_port),
			 REFUSED_SEND);
	assert_int_equal(as_nobody(fx.host, inject_udp, &unicast),
			 REFUSED_SEND);
	assert_string_equal(received(&g2, 500), "");
	assert_int_equal(as_nobody(fx.host, sniff, NULL), REFUSED_SOCKET);
	assert_true(as_nobody(fx.host, open_tap, fx.tap1) != SENT);
	/* A guest cannot reach the host's own addresses either. */
	guest_send(&g1, 2, "still fine");
	assert_string_equal(received(&g2, 3000), "still fine");
	/* Control: without the guard the same sends arrive. */
	guard_delete();
	assert_int_equal(as_nobody(fx.host, inject_udp, &via_bridge), SENT);
	assert_int_equal(as_nobody(fx.host, inject_udp, &via_port), SENT);
	assert_string_equal(received(&g2, 3000), "bcast-bridge|bcast-port");
	assert_int_equal(hostnet_linux_ops.guard(&fx.hl, 0, err, sizeof(err)),
			 0);
	assert_int_equal(as_nobody(fx.host, inject_udp, &via_bridge),
			 REFUSED_SEND);
	assert_string_equal(received(&g2, 500), "");
	/* In use: not removed. Then the guests go, and so does the bridge. */
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)), 0);
	assert_true(link_exists(fx.host, fx.bridge));
	guest_free(&g1);
	guest_free(&g2);
	del_link(fx.host, fx.tap0);
	del_link(fx.host, fx.tap1);
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)), 1);
	assert_false(link_exists(fx.host, fx.bridge));
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)),
	    -ENOENT);
}

/* Two vmmd of one host (the test cluster's nodes) share the job's bridge:
 * both bring it up, the first to leave keeps it for the other's guest, the
 * last removes it; list sees it meanwhile; an unrelated device of our name
 * is not taken for a bridge. */
static void test_shared_and_list(void **state)
{
	struct hostnet_spec s = spec_local();
	struct hostnet_bridge *v = NULL;
	struct guest g;
	char err[512] = "";
	size_t n = 0;

	(void)state;
	need_root();
	assert_int_equal(hostnet_linux_ops.up(&fx.hl, &s, err, sizeof(err)), 0);
	assert_int_equal(hostnet_linux_ops.up(&fx.hl, &s, err, sizeof(err)), 0);
	g = guest_new(fx.host, 1, fx.tap0, fx.bridge);
	/* No address, no IPv6 on it. */
	assert_int_equal(
	    sh(fx.host, "test -z \"$(ip -o addr show dev %s)\"", fx.bridge), 0);
	assert_int_equal(
	    hostnet_linux_ops.list(&fx.hl, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, fx.bridge);
	assert_int_equal(v[0].job_id, JOB);
	assert_int_equal(v[0].guests, 1);
	free(v);
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)), 0);
	guest_free(&g);
	del_link(fx.host, fx.tap0);
	assert_int_equal(
	    hostnet_linux_ops.list(&fx.hl, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].guests, 0);
	free(v);
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)), 1);
	/* A dummy-like device (a veth) with the bridge's name. */
	assert_int_equal(
	    sh(fx.host, "ip link add %s type veth peer name xx0", fx.bridge),
	    0);
	assert_true(hostnet_linux_ops.up(&fx.hl, &s, err, sizeof(err)) < 0);
	assert_contains(err, "is not a bridge");
	assert_int_equal(
	    hostnet_linux_ops.list(&fx.hl, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(sh(fx.host, "ip link del %s", fx.bridge), 0);
}

/* A forged VXLAN packet: the job's VNI, an Ethernet broadcast carrying
 * UDP to 10.77.0.2:GUEST_PORT. */
struct forge {
	const char *dst; /* the remote host */
	const char *text;
};

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static size_t forge_frame(uint8_t *b, const char *text)
{
	size_t tl = strlen(text), ip_len = 20 + 8 + tl;
	uint8_t *eth = b + 8, *ip = eth + 14, *udp = ip + 20;
	uint16_t c;

	memset(b, 0, 8 + 14 + ip_len);
	b[0] = 0x08; /* VXLAN: VNI valid */
	b[4] = (uint8_t)(VNI >> 16);
	b[5] = (uint8_t)(VNI >> 8);
	b[6] = (uint8_t)VNI;
	memset(eth, 0xff, 6);
	memcpy(eth + 6, "\x02\x00\x00\x00\x00\x99", 6);
	eth[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, "\x0a\x4d\x00\x63", 4); /* 10.77.0.99 */
	memset(ip + 16, 0xff, 4);		/* broadcast */
	c = csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = 0x30;
	udp[1] = 0x39;
	udp[2] = (uint8_t)(GUEST_PORT >> 8);
	udp[3] = (uint8_t)GUEST_PORT;
	udp[4] = (uint8_t)((8 + tl) >> 8);
	udp[5] = (uint8_t)(8 + tl);
	memcpy(udp + 8, text, tl);
	return 8 + 14 + ip_len;
}

static int forge_vxlan(const void *arg)
{
	const struct forge *f = arg;
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(PORT)};
	uint8_t buf[256];
	size_t n = forge_frame(buf, f->text);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	inet_pton(AF_INET, f->dst, &sin.sin_addr);
	return sendto(fd, buf, n, 0, (struct sockaddr *)&sin, sizeof(sin)) < 0
		   ? REFUSED_SEND
		   : SENT;
}

/* Bind the tunnel's port before vmmd does, to read what arrives there. */
static int bind_port(const void *arg)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(PORT)};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	(void)arg;
	return bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0
		   ? REFUSED_SOCKET
		   : SENT;
}

static struct hostnet_spec spec_tunnel(const char *local, const char *remote,
				       struct hostnet_fdb *fdb)
{
	struct hostnet_spec s = spec_local();

	snprintf(s.tunnel, sizeof(s.tunnel), "%s", fx.tunnel);
	snprintf(s.local, sizeof(s.local), "%s", local);
	s.vni = VNI;
	s.port = PORT;
	s.guard_port = PORT;
	s.mtu = 1450;
	snprintf(fdb[0].mac, sizeof(fdb[0].mac), "00:00:00:00:00:00");
	snprintf(fdb[0].dst, sizeof(fdb[0].dst), "%s", remote);
	snprintf(fdb[1].mac, sizeof(fdb[1].mac), "52:54:00:00:00:01");
	snprintf(fdb[1].dst, sizeof(fdb[1].dst), "%s", remote);
	s.nfdb = 2;
	s.fdb = fdb;
	return s;
}

/* Two hosts (this namespace and another), an underlay between them, a job
 * with a guest on each: the tunnel carries their traffic; a local user of
 * either host cannot forge a tunnel packet (root can: the control) nor bind
 * the port first; release removes the tunnel with the bridge. */
static void test_vxlan(void **state)
{
	struct hostnet_fdb fdb_a[2], fdb_b[2];
	struct hostnet_spec a = spec_tunnel("10.99.0.1", "10.99.0.2", fdb_a),
			    b = spec_tunnel("10.99.0.2", "10.99.0.1", fdb_b);
	struct forge to_b = {"10.99.0.2", "forged"},
		     to_self = {"10.99.0.2", "forged-local"};
	struct guest g1, g2;
	char err[512] = "";
	int hb;

	(void)state;
	need_root();
	hb = ns_new();
	assert_int_equal(sh(fx.host, "ip link add ula type veth peer name ulb"),
			 0);
	move_link("ulb", hb);
	assert_int_equal(sh(fx.host, "ip addr add 10.99.0.1/24 dev ula && ip "
				     "link set ula up"),
			 0);
	assert_int_equal(sh(hb, "ip link set lo up && ip addr add "
				"10.99.0.2/24 dev ulb && ip link set ulb up"),
			 0);
	assert_int_equal(hostnet_linux_ops.up(&fx.hl, &a, err, sizeof(err)), 0);
	enter(hb);
	assert_int_equal(hostnet_linux_ops.up(&fx.hl, &b, err, sizeof(err)), 0);
	enter(fx.host);
	g1 = guest_new(fx.host, 1, fx.tap0, fx.bridge);
	g2 = guest_new(hb, 2, fx.tap1, fx.bridge);
	assert_int_equal(sh(hb, "ip -d link show %s | grep -q 'vxlan id %u'",
			    fx.tunnel, VNI),
			 0);
	/* Across the tunnel (the first frames wait for ARP). */
	for (int i = 0; i < 10 && !*received(&g2, 0); i++) {
		guest_send(&g1, 2, "over vxlan");
		usleep(300000);
	}
	(void)received(&g2, 1000);
	guest_send(&g1, 2, "over vxlan again");
	assert_string_equal(received(&g2, 3000), "over vxlan again");
	/* Forged tunnel packets from a local user: from the other host and
	 * from the receiving host itself. Root's (the control) arrive. */
	assert_int_equal(as_nobody(fx.host, forge_vxlan, &to_b), REFUSED_SEND);
	assert_int_equal(as_nobody(hb, forge_vxlan, &to_self), REFUSED_SEND);
	assert_string_equal(received(&g2, 500), "");
	assert_int_equal(forge_vxlan(&to_b), SENT);
	assert_string_equal(received(&g2, 3000), "forged");
	assert_int_equal(as_nobody(fx.host, bind_port, NULL), REFUSED_SOCKET);
	/* The end: the tunnel goes with the bridge, on both hosts. */
	guest_free(&g1);
	guest_free(&g2);
	del_link(fx.host, fx.tap0);
	del_link(hb, fx.tap1);
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)), 1);
	assert_false(link_exists(fx.host, fx.tunnel));
	assert_false(link_exists(fx.host, fx.bridge));
	enter(hb);
	assert_int_equal(
	    hostnet_linux_ops.release(&fx.hl, fx.bridge, err, sizeof(err)), 1);
	enter(fx.host);
	assert_false(link_exists(hb, fx.tunnel));
	assert_int_equal(sh(fx.host, "ip link del ula"), 0);
	close(hb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_bridge_guarded),
	    cmocka_unit_test(test_shared_and_list),
	    cmocka_unit_test(test_vxlan),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
