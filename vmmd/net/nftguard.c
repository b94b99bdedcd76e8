/* SPDX-License-Identifier: MIT */
/*
 * The guard of the jobs' private networks (hostnet.h): nf_tables tables
 * "inet vmenv_jobnet" and "arp vmenv_jobnet", written as the netlink
 * messages nft(8) would send for
 *
 *   table inet vmenv_jobnet {
 *     chain input { type filter hook input priority -50;
 *       iifname "vmj*" drop }
 *     chain output { type filter hook output priority -50;
 *       oifname "vmj*" drop
 *       udp dport PORT meta skuid != 0 drop }        (with a tunnel)
 *     chain forward { type filter hook forward priority -50;
 *       iifname "vmj*" oifname != "vmj*" drop
 *       oifname "vmj*" iifname != "vmj*" drop }
 *   }
 *   table arp vmenv_jobnet {
 *     chain input { type filter hook input priority -50; iifname "vmj*" drop }
 *     chain output { type filter hook output priority -50; oifname "vmj*" drop }
 *   }
 *
 * in one transaction that first creates each table (if absent), deletes it
 * and creates it again: a host never has half a guard, and several vmmd
 * installing it at once end with one. A drop is final whatever other
 * tables accept. "meta skuid" does not match a packet without a socket
 * of a process (the kernel's VXLAN socket), so tunnel traffic passes and
 * only processes other than root's are kept from the port. The forward
 * rules let bridged traffic through when br_netfilter hands it to the IP
 * hooks (in and out are then both the job's bridge).
 */
#include "hostnet.h"
#include "nl.h"
#include "util.h"

/* glibc's before the kernel's (linux/netfilter.h includes linux/in.h). */
#include <netinet/in.h>

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_arp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define GUARD_PRIORITY (-50)

struct guard {
	struct nl_msg m;
	struct nl_sock s;
	uint8_t family;
	const char *chain;
};

static size_t begin(struct guard *g, uint16_t msg, uint16_t flags)
{
	struct nfgenmsg h = {.nfgen_family = g->family,
			     .version = NFNETLINK_V0};

	return nl_begin(&g->m, &g->s,
			(uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | msg),
			(uint16_t)(flags | NLM_F_ACK), &h, sizeof(h));
}

static void batch_mark(struct guard *g, uint16_t type)
{
	struct nfgenmsg h = {.nfgen_family = AF_UNSPEC,
			     .version = NFNETLINK_V0,
			     .res_id = htons(NFNL_SUBSYS_NFTABLES)};

	nl_end(&g->m, nl_begin(&g->m, &g->s, type, 0, &h, sizeof(h)));
}

static void table(struct guard *g, uint16_t msg, uint16_t flags)
{
	size_t off = begin(g, msg, flags);

	nl_put_str(&g->m, NFTA_TABLE_NAME, HOSTNET_GUARD);
	nl_end(&g->m, off);
}

static void chain(struct guard *g, const char *name, uint32_t hook)
{
	size_t off = begin(g, NFT_MSG_NEWCHAIN, NLM_F_CREATE), h;

	nl_put_str(&g->m, NFTA_CHAIN_TABLE, HOSTNET_GUARD);
	nl_put_str(&g->m, NFTA_CHAIN_NAME, name);
	h = nl_nest(&g->m, NFTA_CHAIN_HOOK);
	nl_put_be32(&g->m, NFTA_HOOK_HOOKNUM, hook);
	nl_put_be32(&g->m, NFTA_HOOK_PRIORITY, (uint32_t)GUARD_PRIORITY);
	nl_nest_end(&g->m, h);
	nl_put_be32(&g->m, NFTA_CHAIN_POLICY, NF_ACCEPT);
	nl_put_str(&g->m, NFTA_CHAIN_TYPE, "filter");
	nl_end(&g->m, off);
	g->chain = name;
}

/* One expression: its name, then its data's attributes by fill. */
static size_t expr_begin(struct guard *g, const char *name)
{
	size_t e = nl_nest(&g->m, NFTA_LIST_ELEM);

	nl_put_str(&g->m, NFTA_EXPR_NAME, name);
	return e;
}

static void meta(struct guard *g, uint32_t key)
{
	size_t e = expr_begin(g, "meta"), d = nl_nest(&g->m, NFTA_EXPR_DATA);

	nl_put_be32(&g->m, NFTA_META_DREG, NFT_REG_1);
	nl_put_be32(&g->m, NFTA_META_KEY, key);
	nl_nest_end(&g->m, d);
	nl_nest_end(&g->m, e);
}

static void cmp(struct guard *g, uint32_t op, const void *p, size_t n)
{
	size_t e = expr_begin(g, "cmp"), d = nl_nest(&g->m, NFTA_EXPR_DATA), v;

	nl_put_be32(&g->m, NFTA_CMP_SREG, NFT_REG_1);
	nl_put_be32(&g->m, NFTA_CMP_OP, op);
	v = nl_nest(&g->m, NFTA_CMP_DATA);
	nl_put(&g->m, NFTA_DATA_VALUE, p, n);
	nl_nest_end(&g->m, v);
	nl_nest_end(&g->m, d);
	nl_nest_end(&g->m, e);
}

/* The interface name starts with (or, op NEQ, does not start with) ours:
 * a prefix compare, as nft compiles "vmj*". */
static void ifname(struct guard *g, uint32_t key, uint32_t op)
{
	meta(g, key);
	cmp(g, op, HOSTNET_PREFIX, strlen(HOSTNET_PREFIX));
}

static void udp_dport(struct guard *g, uint16_t port)
{
	uint8_t proto = IPPROTO_UDP,
		be[2] = {(uint8_t)(port >> 8), (uint8_t)port};
	size_t e, d;

	meta(g, NFT_META_L4PROTO);
	cmp(g, NFT_CMP_EQ, &proto, sizeof(proto));
	e = expr_begin(g, "payload");
	d = nl_nest(&g->m, NFTA_EXPR_DATA);
	nl_put_be32(&g->m, NFTA_PAYLOAD_DREG, NFT_REG_1);
	nl_put_be32(&g->m, NFTA_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
	nl_put_be32(&g->m, NFTA_PAYLOAD_OFFSET, 2);
	nl_put_be32(&g->m, NFTA_PAYLOAD_LEN, 2);
	nl_nest_end(&g->m, d);
	nl_nest_end(&g->m, e);
	cmp(g, NFT_CMP_EQ, be, sizeof(be));
}

static void drop(struct guard *g)
{
	size_t e = expr_begin(g, "immediate"),
	       d = nl_nest(&g->m, NFTA_EXPR_DATA), v, vd;

	nl_put_be32(&g->m, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	v = nl_nest(&g->m, NFTA_IMMEDIATE_DATA);
	vd = nl_nest(&g->m, NFTA_DATA_VERDICT);
	nl_put_be32(&g->m, NFTA_VERDICT_CODE, NF_DROP);
	nl_nest_end(&g->m, vd);
	nl_nest_end(&g->m, v);
	nl_nest_end(&g->m, d);
	nl_nest_end(&g->m, e);
}

/* The matches of a rule, then drop. */
enum match {
	M_IN,	     /* iifname "vmj*" */
	M_OUT,	     /* oifname "vmj*" */
	M_IN_NOT,    /* iifname != "vmj*" */
	M_OUT_NOT,   /* oifname != "vmj*" */
	M_NOT_ROOT,  /* meta skuid != 0 */
	M_UDP_DPORT, /* udp dport <port> */
	M_END
};

static void rule(struct guard *g, const enum match *ms, uint16_t port)
{
	static const uint32_t zero;
	size_t off = begin(g, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND), l;

	nl_put_str(&g->m, NFTA_RULE_TABLE, HOSTNET_GUARD);
	nl_put_str(&g->m, NFTA_RULE_CHAIN, g->chain);
	l = nl_nest(&g->m, NFTA_RULE_EXPRESSIONS);
	for (; *ms != M_END; ms++) {
		switch (*ms) {
		case M_IN:
			ifname(g, NFT_META_IIFNAME, NFT_CMP_EQ);
			break;
		case M_OUT:
			ifname(g, NFT_META_OIFNAME, NFT_CMP_EQ);
			break;
		case M_IN_NOT:
			ifname(g, NFT_META_IIFNAME, NFT_CMP_NEQ);
			break;
		case M_OUT_NOT:
			ifname(g, NFT_META_OIFNAME, NFT_CMP_NEQ);
			break;
		case M_NOT_ROOT:
			meta(g, NFT_META_SKUID);
			cmp(g, NFT_CMP_NEQ, &zero, sizeof(zero));
			break;
		case M_UDP_DPORT:
			udp_dport(g, port);
			break;
		case M_END:
			break;
		}
	}
	drop(g);
	nl_nest_end(&g->m, l);
	nl_end(&g->m, off);
}

/* Creates the family's table if absent, deletes it, creates it empty. */
static void fresh_table(struct guard *g, uint8_t family)
{
	g->family = family;
	table(g, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	table(g, NFT_MSG_DELTABLE, 0);
	table(g, NFT_MSG_NEWTABLE, NLM_F_CREATE);
}

static void build(struct guard *g, uint16_t port)
{
	static const enum match in[] = {M_IN, M_END}, out[] = {M_OUT, M_END},
				in_fwd[] = {M_IN, M_OUT_NOT, M_END},
				out_fwd[] = {M_OUT, M_IN_NOT, M_END},
				tunnel[] = {M_UDP_DPORT, M_NOT_ROOT, M_END};

	nl_msg_init(&g->m);
	batch_mark(g, NFNL_MSG_BATCH_BEGIN);
	fresh_table(g, NFPROTO_INET);
	chain(g, "input", NF_INET_LOCAL_IN);
	rule(g, in, 0);
	chain(g, "output", NF_INET_LOCAL_OUT);
	rule(g, out, 0);
	if (port)
		rule(g, tunnel, port);
	chain(g, "forward", NF_INET_FORWARD);
	rule(g, in_fwd, 0);
	rule(g, out_fwd, 0);
	fresh_table(g, NFPROTO_ARP);
	chain(g, "input", NF_ARP_IN);
	rule(g, in, 0);
	chain(g, "output", NF_ARP_OUT);
	rule(g, out, 0);
	batch_mark(g, NFNL_MSG_BATCH_END);
}

int nftguard_install(uint16_t tunnel_port, char *err, size_t errlen)
{
	struct guard *g = calloc(1, sizeof(*g));
	int r;

	if (!g)
		return -ENOMEM;
	r = nl_open(&g->s, NETLINK_NETFILTER);
	if (r == 0) {
		build(g, tunnel_port);
		r = nl_send_wait(&g->s, &g->m);
		nl_close(&g->s);
	}
	free(g);
	if (r < 0)
		return err_set(err, errlen, r,
			       "cannot install the nf_tables guard of the "
			       "jobs' networks (table inet/arp %s): %s",
			       HOSTNET_GUARD, strerror(-r));
	return 0;
}
