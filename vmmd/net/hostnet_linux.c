/* SPDX-License-Identifier: MIT */
/*
 * hostnet.h on Linux: bridges, VXLAN devices and their forwarding entries
 * through rtnetlink, the guard through nf_tables (nftguard.c). Every device
 * name is one vmmd made (hostnet_names), never a user's string. Each
 * operation holds the host's lock file, shared by every vmmd of the host.
 */
#include "hostnet.h"
#include "nl.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- links ---------------------------------------------------------------- */

struct link {
	int index;
	int master;
	char name[HOSTNET_IFNAME_MAX];
	char kind[16];
};

static int parse_link(const struct nlmsghdr *h, struct link *l)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	uint32_t master = 0;
	size_t hl = NLMSG_LENGTH(sizeof(*ifi));

	memset(l, 0, sizeof(*l));
	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < hl ||
	    nl_attrs((const uint8_t *)h + NLMSG_ALIGN(hl),
		     h->nlmsg_len - NLMSG_ALIGN(hl), tb, IFLA_MAX) < 0 ||
	    !tb[IFLA_IFNAME] ||
	    nl_get_str(tb[IFLA_IFNAME], l->name, sizeof(l->name)) < 0)
		return -EPROTO;
	l->index = ifi->ifi_index;
	if (tb[IFLA_MASTER] && nl_get_u32(tb[IFLA_MASTER], &master) == 0)
		l->master = (int)master;
	if (tb[IFLA_LINKINFO] &&
	    nl_attrs(nl_data(tb[IFLA_LINKINFO]), nl_len(tb[IFLA_LINKINFO]), li,
		     IFLA_INFO_MAX) == 0 &&
	    li[IFLA_INFO_KIND])
		(void)nl_get_str(li[IFLA_INFO_KIND], l->kind, sizeof(l->kind));
	return 0;
}

struct links {
	struct link *v;
	size_t n;
	int err;
};

static int on_link(const struct nlmsghdr *h, void *data)
{
	struct links *ls = data;
	struct link l, *v;

	if (parse_link(h, &l) < 0)
		return 0; /* names longer than ours: not ours */
	v = realloc(ls->v, (ls->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ls->v = v;
	ls->v[ls->n++] = l;
	return 0;
}

/* Every link of the host. */
static int dump_links(struct nl_sock *s, struct links *ret)
{
	struct nl_msg *m = malloc(sizeof(*m));
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!m)
		return -ENOMEM;
	nl_msg_init(m);
	nl_end(m, nl_begin(m, s, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi)));
	r = nl_dump(s, m, on_link, ret);
	free(m);
	if (r < 0) {
		free(ret->v);
		ret->v = NULL;
		ret->n = 0;
	}
	return r;
}

static const struct link *find(const struct links *ls, const char *name)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i].name, name) == 0)
			return &ls->v[i];
	return NULL;
}

/* Ports of bridge other than the one named except. */
static uint32_t guests(const struct links *ls, const struct link *bridge,
		       const char *except)
{
	uint32_t n = 0;

	for (size_t i = 0; i < ls->n; i++)
		if (ls->v[i].master == bridge->index &&
		    strcmp(ls->v[i].name, except) != 0)
			n++;
	return n;
}

/* One request, answered by an ACK. */
struct req {
	struct nl_msg m;
	size_t off;
};

static void req_link(struct req *q, struct nl_sock *s, uint16_t type,
		     uint16_t flags, int index, unsigned up)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC,
				.ifi_index = index,
				.ifi_flags = up ? IFF_UP : 0,
				.ifi_change = up ? IFF_UP : 0};

	nl_msg_init(&q->m);
	q->off = nl_begin(&q->m, s, type, (uint16_t)(flags | NLM_F_ACK), &ifi,
			  sizeof(ifi));
}

static int req_send(struct req *q, struct nl_sock *s)
{
	nl_end(&q->m, q->off);
	return nl_send_wait(s, &q->m);
}

static int link_del(struct nl_sock *s, struct req *q, const char *name)
{
	req_link(q, s, RTM_DELLINK, 0, 0, 0);
	nl_put_str(&q->m, IFLA_IFNAME, name);
	return req_send(q, s);
}

static int link_up(struct nl_sock *s, struct req *q, const char *name)
{
	req_link(q, s, RTM_NEWLINK, 0, 0, 1);
	nl_put_str(&q->m, IFLA_IFNAME, name);
	return req_send(q, s);
}

/* No IPv6 address is ever made for it (the guard drops IPv6 there too;
 * this keeps the host from even trying). */
static int link_no_ipv6(struct nl_sock *s, struct req *q, const char *name)
{
	char path[96];
	size_t a, i6;
	int fd, r;

	req_link(q, s, RTM_NEWLINK, 0, 0, 0);
	nl_put_str(&q->m, IFLA_IFNAME, name);
	a = nl_nest(&q->m, IFLA_AF_SPEC);
	i6 = nl_nest(&q->m, AF_INET6);
	nl_put_u8(&q->m, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
	nl_nest_end(&q->m, i6);
	nl_nest_end(&q->m, a);
	r = req_send(q, s);
	if (r == -EAFNOSUPPORT)
		return 0; /* no IPv6 in this kernel */
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
		 name);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = write(fd, "1\n", 2) == 2 ? 0 : -errno;
	close(fd);
	return r;
}

/* --- the bridge and the tunnel -------------------------------------------- */

static int bridge_create(struct nl_sock *s, struct req *q, const char *name)
{
	size_t li, data;

	req_link(q, s, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, 0);
	nl_put_str(&q->m, IFLA_IFNAME, name);
	li = nl_nest(&q->m, IFLA_LINKINFO);
	nl_put_str(&q->m, IFLA_INFO_KIND, "bridge");
	data = nl_nest(&q->m, IFLA_INFO_DATA);
	/* A segment of a few guests: no spanning tree, forwarding at once. */
	nl_put_u32(&q->m, IFLA_BR_STP_STATE, 0);
	nl_put_u32(&q->m, IFLA_BR_FORWARD_DELAY, 0);
	nl_nest_end(&q->m, data);
	nl_nest_end(&q->m, li);
	return req_send(q, s);
}

static int tunnel_create(struct nl_sock *s, struct req *q,
			 const struct hostnet_spec *sp, int bridge)
{
	struct in_addr local;
	size_t li, data;

	if (inet_pton(AF_INET, sp->local, &local) != 1)
		return -EINVAL;
	req_link(q, s, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, 0);
	nl_put_str(&q->m, IFLA_IFNAME, sp->tunnel);
	nl_put_u32(&q->m, IFLA_MTU, sp->mtu);
	nl_put_u32(&q->m, IFLA_MASTER, (uint32_t)bridge);
	li = nl_nest(&q->m, IFLA_LINKINFO);
	nl_put_str(&q->m, IFLA_INFO_KIND, "vxlan");
	data = nl_nest(&q->m, IFLA_INFO_DATA);
	nl_put_u32(&q->m, IFLA_VXLAN_ID, sp->vni);
	nl_put(&q->m, IFLA_VXLAN_LOCAL, &local, sizeof(local));
	nl_put_be16(&q->m, IFLA_VXLAN_PORT, sp->port);
	/* Where each guest is, is known (the forwarding entries): nothing
	 * is learnt from what arrives. */
	nl_put_u8(&q->m, IFLA_VXLAN_LEARNING, 0);
	nl_nest_end(&q->m, data);
	nl_nest_end(&q->m, li);
	return req_send(q, s);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5]) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int fdb_add(struct nl_sock *s, struct req *q, int tunnel,
		   const struct hostnet_fdb *e)
{
	struct ndmsg nd = {.ndm_family = AF_BRIDGE,
			   .ndm_ifindex = tunnel,
			   .ndm_state = NUD_NOARP | NUD_PERMANENT,
			   .ndm_flags = NTF_SELF};
	struct in_addr dst;
	uint8_t mac[6];
	int r;

	if (parse_mac(e->mac, mac) < 0 || inet_pton(AF_INET, e->dst, &dst) != 1)
		return -EINVAL;
	nl_msg_init(&q->m);
	/* APPEND: the all-zero MAC has one entry per remote host. */
	q->off =
	    nl_begin(&q->m, s, RTM_NEWNEIGH,
		     NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, &nd, sizeof(nd));
	nl_put(&q->m, NDA_LLADDR, mac, sizeof(mac));
	nl_put(&q->m, NDA_DST, &dst, sizeof(dst));
	r = req_send(q, s);
	return r == -EEXIST ? 0 : r;
}

/* The tunnel: made afresh while no guest of the job is attached here (a
 * leftover's entries may name another run's hosts), else kept. */
static int tunnel_up(struct nl_sock *s, struct req *q,
		     const struct hostnet_spec *sp, const struct link *bridge)
{
	struct links ls;
	const struct link *t;
	uint32_t n;
	int r = dump_links(s, &ls);

	if (r < 0)
		return r;
	t = find(&ls, sp->tunnel);
	n = guests(&ls, bridge, sp->tunnel);
	if (t && (n == 0 || strcmp(t->kind, "vxlan") != 0))
		r = link_del(s, q, sp->tunnel);
	if (r == 0 && (!t || n == 0))
		r = tunnel_create(s, q, sp, bridge->index);
	free(ls.v);
	if (r == 0)
		r = link_no_ipv6(s, q, sp->tunnel);
	if (r == 0)
		r = link_up(s, q, sp->tunnel);
	if (r < 0)
		return r;
	r = dump_links(s, &ls);
	t = r == 0 ? find(&ls, sp->tunnel) : NULL;
	for (uint32_t i = 0; t && r == 0 && i < sp->nfdb; i++)
		r = fdb_add(s, q, t->index, &sp->fdb[i]);
	if (r == 0 && !t)
		r = -ENODEV;
	free(ls.v);
	return r;
}

/* The job's bridge, made if absent; what it is is checked when found. */
static int bridge_up(struct nl_sock *s, struct req *q, const char *name,
		     struct link *ret)
{
	struct links ls;
	const struct link *b;
	int r = bridge_create(s, q, name);

	if (r == -EEXIST)
		r = 0;
	if (r == 0)
		r = link_no_ipv6(s, q, name);
	if (r == 0)
		r = link_up(s, q, name);
	if (r == 0)
		r = dump_links(s, &ls);
	if (r < 0)
		return r;
	b = find(&ls, name);
	if (!b)
		r = -ENODEV;
	else if (strcmp(b->kind, "bridge") != 0)
		r = -ENOTTY; /* a device of our name that is not our bridge */
	else
		*ret = *b;
	free(ls.v);
	return r;
}

/* --- the host's lock ------------------------------------------------------ */

static int lock_host(const struct hostnet_linux *hl)
{
	int fd = open(hl->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);

	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = -errno;

			close(fd);
			return r;
		}
	}
	return fd;
}

/* The lock and a route socket, or -errno. */
struct session {
	int lock;
	struct nl_sock s;
	struct req *q;
};

static int session_open(void *ctx, struct session *ss)
{
	int r;

	ss->q = malloc(sizeof(*ss->q));
	if (!ss->q)
		return -ENOMEM;
	ss->lock = lock_host(ctx);
	if (ss->lock < 0) {
		free(ss->q);
		return ss->lock;
	}
	r = nl_open(&ss->s, NETLINK_ROUTE);
	if (r < 0) {
		close(ss->lock);
		free(ss->q);
	}
	return r;
}

static void session_close(struct session *ss)
{
	nl_close(&ss->s);
	close(ss->lock);
	free(ss->q);
}

/* --- the operations -------------------------------------------------------- */

static int op_guard(void *ctx, uint16_t port, char *err, size_t errlen)
{
	(void)ctx;
	return nftguard_install(port, err, errlen);
}

static int op_up(void *ctx, const struct hostnet_spec *sp, char *err,
		 size_t errlen)
{
	struct session ss;
	struct link br;
	int r = op_guard(ctx, sp->guard_port, err, errlen);

	if (r < 0)
		return r;
	r = session_open(ctx, &ss);
	if (r < 0)
		return err_set(err, errlen, r, "the host's network lock %s: %s",
			       ((struct hostnet_linux *)ctx)->lock_path,
			       strerror(-r));
	r = bridge_up(&ss.s, ss.q, sp->bridge, &br);
	if (r < 0)
		err_set(err, errlen, r, "bridge %s: %s", sp->bridge,
			r == -ENOTTY ? "a device of that name is not a bridge"
				     : strerror(-r));
	else if (sp->tunnel[0] && (r = tunnel_up(&ss.s, ss.q, sp, &br)) < 0)
		err_set(err, errlen, r,
			"VXLAN %s (VNI %u, port %u, local %s): %s", sp->tunnel,
			sp->vni, sp->port, sp->local, strerror(-r));
	session_close(&ss);
	return r;
}

/* Under the lock: removes the tunnel and the bridge unless a guest is
 * attached. 1 removed, 0 in use, -ENOENT none. */
static int release_locked(struct session *ss, const char *b, const char *t)
{
	const struct link *br;
	struct links ls;
	int r = dump_links(&ss->s, &ls);

	if (r < 0)
		return r;
	br = find(&ls, b);
	if (br && guests(&ls, br, t) > 0) {
		free(ls.v);
		return 0;
	}
	/* A tunnel without its bridge is a half-made leftover. */
	if (find(&ls, t))
		r = link_del(&ss->s, ss->q, t);
	if (r == 0 && br)
		r = link_del(&ss->s, ss->q, b);
	if (r == -ENODEV)
		r = 0;
	if (r == 0)
		r = br ? 1 : -ENOENT;
	free(ls.v);
	return r;
}

static int op_release(void *ctx, const char *bridge, char *err, size_t errlen)
{
	char b[HOSTNET_IFNAME_MAX], t[HOSTNET_IFNAME_MAX],
	    tap[HOSTNET_IFNAME_MAX];
	struct session ss;
	uint32_t id;
	int r;

	if (!hostnet_bridge_job(bridge, &id))
		return -EINVAL;
	hostnet_names(id, 0, b, t, tap);
	r = session_open(ctx, &ss);
	if (r == 0) {
		r = release_locked(&ss, b, t);
		session_close(&ss);
	}
	if (r < 0 && r != -ENOENT)
		return err_set(err, errlen, r, "removing bridge %s: %s", bridge,
			       strerror(-r));
	return r;
}

/* Our bridges among the links, with their guest counts. */
static struct hostnet_bridge *our_bridges(const struct links *ls, size_t *n)
{
	char b[HOSTNET_IFNAME_MAX], t[HOSTNET_IFNAME_MAX],
	    tap[HOSTNET_IFNAME_MAX];
	struct hostnet_bridge *v = calloc(ls->n ? ls->n : 1, sizeof(*v));
	uint32_t id;
	size_t k = 0;

	for (size_t i = 0; v && i < ls->n; i++) {
		if (strcmp(ls->v[i].kind, "bridge") != 0 ||
		    !hostnet_bridge_job(ls->v[i].name, &id))
			continue;
		hostnet_names(id, 0, b, t, tap);
		snprintf(v[k].name, sizeof(v[k].name), "%s", b);
		v[k].job_id = id;
		v[k].guests = guests(ls, &ls->v[i], t);
		k++;
	}
	*n = k;
	return v;
}

static int op_list(void *ctx, struct hostnet_bridge **ret, size_t *n, char *err,
		   size_t errlen)
{
	struct session ss;
	struct links ls;
	int r = session_open(ctx, &ss);

	if (r == 0) {
		r = dump_links(&ss.s, &ls);
		session_close(&ss);
	}
	if (r < 0)
		return err_set(err, errlen, r, "listing the host's links: %s",
			       strerror(-r));
	*ret = our_bridges(&ls, n);
	free(ls.v);
	return *ret ? 0 : -ENOMEM;
}

const struct hostnet_ops hostnet_linux_ops = {
    .guard = op_guard,
    .up = op_up,
    .release = op_release,
    .list = op_list,
};
