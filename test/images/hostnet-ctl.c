// SPDX-License-Identifier: MIT
/*
 * hostnet-ctl: vmmd's host network code (vmmd/net/hostnet.h) by hand, for
 * images/tiny/rsh-pair --bridge and for looking at a host:
 *
 *   hostnet-ctl [--lock PATH] up JOB        the guard, then job's bridge
 *   hostnet-ctl [--lock PATH] release JOB   removes it unless a guest is on
 *   hostnet-ctl [--lock PATH] list          bridges of ours: name job guests
 *   hostnet-ctl guard [PORT]                the guard alone
 *   hostnet-ctl unguard                     removes it (controls of tests:
 *                                           what the guard stops arrives)
 *   hostnet-ctl names JOB NODE              bridge, tunnel and tap names
 *
 * Root; run it in a network namespace of its own for experiments.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int usage(void)
{
	fprintf(stderr, "usage: hostnet-ctl [--lock PATH] up|release JOB | "
			"list | guard [PORT] | unguard | names JOB NODE\n");
	return 2;
}

static int job_arg(const char *s, uint32_t *id)
{
	if (parse_u32(s, id) < 0) {
		fprintf(stderr, "hostnet-ctl: '%s' is not a job id\n", s);
		return -1;
	}
	return 0;
}

static int list(struct hostnet_linux *hl)
{
	struct hostnet_bridge *v;
	char err[512];
	size_t n;

	if (hostnet_linux_ops.list(hl, &v, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "hostnet-ctl: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s %u %u\n", v[i].name, v[i].job_id, v[i].guests);
	free(v);
	return 0;
}

static int up(struct hostnet_linux *hl, uint32_t id)
{
	struct hostnet_spec s = {.mtu = 1500};
	char err[512], tap[HOSTNET_IFNAME_MAX];

	hostnet_names(id, 0, s.bridge, s.tunnel, tap);
	s.tunnel[0] = '\0';
	if (hostnet_linux_ops.up(hl, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "hostnet-ctl: %s\n", err);
		return 1;
	}
	printf("%s\n", s.bridge);
	return 0;
}

static int release(struct hostnet_linux *hl, uint32_t id)
{
	char b[HOSTNET_IFNAME_MAX], t[HOSTNET_IFNAME_MAX],
	    tap[HOSTNET_IFNAME_MAX], err[512] = "";
	int r;

	hostnet_names(id, 0, b, t, tap);
	r = hostnet_linux_ops.release(hl, b, err, sizeof(err));
	if (r < 0 && r != -ENOENT) {
		fprintf(stderr, "hostnet-ctl: %s\n", err);
		return 1;
	}
	printf("%s\n", r == 1 ? "removed" : r == 0 ? "in use" : "none");
	return 0;
}

static int unguard(void)
{
	static struct nl_msg m;
	static const uint8_t families[] = {NFPROTO_INET, NFPROTO_ARP};
	struct nfgenmsg b = {.nfgen_family = AF_UNSPEC,
			     .res_id = htons(NFNL_SUBSYS_NFTABLES)};
	struct nl_sock s;
	int r = nl_open(&s, NETLINK_NETFILTER);

	if (r < 0)
		return 1;
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
	r = nl_send_wait(&s, &m);
	nl_close(&s);
	if (r < 0)
		fprintf(stderr, "hostnet-ctl: unguard: %s\n", strerror(-r));
	return r < 0;
}

int main(int argc, char **argv)
{
	struct hostnet_linux hl = {.lock_path = "/run/vmenv/jobnet.lock"};
	char b[HOSTNET_IFNAME_MAX], t[HOSTNET_IFNAME_MAX],
	    tap[HOSTNET_IFNAME_MAX], err[512];
	uint32_t id, node, port = 0;
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "--lock") == 0) {
		hl.lock_path = argv[2];
		i = 3;
	}
	if (i >= argc)
		return usage();
	if (strcmp(argv[i], "list") == 0)
		return list(&hl);
	if (strcmp(argv[i], "unguard") == 0)
		return unguard();
	if (strcmp(argv[i], "guard") == 0) {
		if (i + 1 < argc && parse_u32(argv[i + 1], &port) < 0)
			return usage();
		if (nftguard_install((uint16_t)port, err, sizeof(err)) < 0) {
			fprintf(stderr, "hostnet-ctl: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (i + 1 >= argc || job_arg(argv[i + 1], &id) < 0)
		return usage();
	if (strcmp(argv[i], "up") == 0)
		return up(&hl, id);
	if (strcmp(argv[i], "release") == 0)
		return release(&hl, id);
	if (strcmp(argv[i], "names") == 0 && i + 2 < argc &&
	    parse_u32(argv[i + 2], &node) == 0) {
		hostnet_names(id, node, b, t, tap);
		printf("%s %s %s\n", b, t, tap);
		return 0;
	}
	return usage();
}
