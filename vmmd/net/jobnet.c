/* SPDX-License-Identifier: MIT */
#include "jobnet.h"

#include "agentwire.h"
#include "cleanup.h"
#include "digest.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "a.b.c.d/len" into a host-order base and a prefix length. */
static int parse_subnet(const char *s, uint32_t *base, uint32_t *len)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct in_addr a;

	if (!slash || (size_t)(slash - s) >= sizeof(ip) ||
	    parse_u32(slash + 1, len) < 0 || *len < 8 || *len > 30)
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	*base = ntohl(a.s_addr) & ~((1u << (32 - *len)) - 1);
	return 0;
}

static void quad(uint32_t host_order, char out[16])
{
	struct in_addr a = {.s_addr = htonl(host_order)};

	inet_ntop(AF_INET, &a, out, 16);
}

static int make_token(uint32_t job_id, int64_t start, const void *key,
		      size_t keylen, char out[65])
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "vmenv-job%c%u %lld", '\0', job_id,
			 (long long)start);

	return digest_hmac_hex(key, keylen, msg, (size_t)n, out);
}

static int peers(uint32_t base, const struct slurmjob_info *si,
		 struct jobnet *n, char *err, size_t errlen)
{
	uint32_t count = 0;
	int r = slurmjob_hostlist_expand(si->nodes, JOBNET_MAX_NODES,
					 &n->peer_names, &count);

	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot expand its node list '%s': %s",
			       si->job_id, si->nodes, strerror(-r));
	if (count != si->nnodes)
		return err_set(err, errlen, -EINVAL,
			       "job %u: node list '%s' has %u nodes, Slurm "
			       "says %u",
			       si->job_id, si->nodes, count, si->nnodes);
	n->peer_addrs = calloc(count, sizeof(*n->peer_addrs));
	if (!n->peer_addrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++)
		quad(base + i + 1, n->peer_addrs[i]);
	return 0;
}

static const char *node_addr(const struct jobnet_nodes *nodes, const char *name)
{
	for (size_t i = 0; i < nodes->n; i++)
		if (strcmp(nodes->v[i].name, name) == 0)
			return nodes->v[i].addr;
	return NULL;
}

/* Adds a forwarding entry unless it is there already. */
static int fdb_add(struct hostnet_spec *h, const char *mac, const char *dst)
{
	struct hostnet_fdb *v;

	for (uint32_t i = 0; i < h->nfdb; i++)
		if (strcmp(h->fdb[i].mac, mac) == 0 &&
		    strcmp(h->fdb[i].dst, dst) == 0)
			return 0;
	v = realloc(h->fdb, (h->nfdb + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->fdb = v;
	snprintf(v[h->nfdb].mac, sizeof(v->mac), "%s", mac);
	snprintf(v[h->nfdb].dst, sizeof(v->dst), "%s", dst);
	h->nfdb++;
	return 0;
}

static void peer_mac(uint32_t i, char out[18])
{
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (i >> 16) & 255,
		 (i >> 8) & 255, i & 255);
}

/* The tunnel: this host's address, and where each peer on another host
 * is (peers on this host share the bridge). No remote peer: no tunnel. */
static int plan_tunnel(const struct vmmd_config *c, uint32_t job_id,
		       const struct jobnet_nodes *nodes, struct jobnet *n,
		       char *err, size_t errlen)
{
	struct hostnet_spec *h = &n->host;
	const char *local = node_addr(nodes, c->node_name), *dst;
	char mac[18];
	int r = 0;

	if (!local)
		return err_set(err, errlen, -ENOENT,
			       "job %u: this node '%s' is not in "
			       "net_nodes_file %s",
			       job_id, c->node_name, c->net_nodes_file);
	snprintf(h->local, sizeof(h->local), "%s", local);
	h->vni = 1 + job_id % 0xffffffu;
	h->port = (uint16_t)c->net_vxlan_port;
	for (uint32_t i = 0; i < n->nnodes && r == 0; i++) {
		dst = node_addr(nodes, n->peer_names[i]);
		if (!dst)
			return err_set(err, errlen, -ENOENT,
				       "job %u: node '%s' is not in "
				       "net_nodes_file %s",
				       job_id, n->peer_names[i],
				       c->net_nodes_file);
		if (strcmp(dst, local) == 0)
			continue;
		peer_mac(i, mac);
		r = fdb_add(h, "00:00:00:00:00:00", dst);
		r = r ?: fdb_add(h, mac, dst);
	}
	if (r == 0 && h->nfdb == 0)
		h->tunnel[0] = '\0';
	return r;
}

static int plan_host(const struct vmmd_config *c, uint32_t job_id,
		     const struct jobnet_nodes *nodes, struct jobnet *n,
		     char *err, size_t errlen)
{
	bool vxlan = strcmp(c->net_tunnel, "vxlan") == 0;

	hostnet_names(job_id, n->node_index, n->host.bridge, n->host.tunnel,
		      n->tap);
	n->mtu = c->net_mtu ? c->net_mtu
		 : vxlan    ? JOBNET_VXLAN_MTU
			    : JOBNET_MTU;
	if (n->mtu < 576)
		return err_set(err, errlen, -EINVAL, "net_mtu %u is below 576",
			       n->mtu);
	n->host.mtu = n->mtu;
	if (!vxlan) {
		n->host.tunnel[0] = '\0';
		return 0;
	}
	n->host.guard_port = (uint16_t)c->net_vxlan_port;
	if (!nodes)
		return err_set(err, errlen, -EINVAL,
			       "job %u: net_tunnel = vxlan without the nodes' "
			       "addresses",
			       job_id);
	return plan_tunnel(c, job_id, nodes, n, err, errlen);
}

int jobnet_plan(const struct vmmd_config *c, uint32_t job_id,
		const struct slurmjob_info *si, const void *key, size_t keylen,
		const struct jobnet_nodes *nodes, struct jobnet *ret, char *err,
		size_t errlen)
{
	uint32_t base, len, i = si->node_index;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (parse_subnet(c->guest_net, &base, &len) < 0)
		return err_set(err, errlen, -EINVAL,
			       "guest_net '%s' is not a.b.c.d/8..30",
			       c->guest_net);
	if (si->nnodes < 1 || i >= si->nnodes ||
	    (uint64_t)si->nnodes + 2 > (1ull << (32 - len)))
		return err_set(err, errlen, -ERANGE,
			       "job %u: %u nodes do not fit guest_net '%s'",
			       job_id, si->nnodes, c->guest_net);
	ret->node_index = i;
	ret->nnodes = si->nnodes;
	peer_mac(i, ret->mac);
	quad(base + i + 1, ret->addr);
	snprintf(ret->addr + strlen(ret->addr),
		 sizeof(ret->addr) - strlen(ret->addr), "/%u", len);
	r = make_token(job_id, (int64_t)si->start_time, key, keylen,
		       ret->token);
	if (r == 0)
		r = peers(base, si, ret, err, errlen);
	if (r == 0)
		r = plan_host(c, job_id, nodes, ret, err, errlen);
	if (r < 0) {
		jobnet_clear(ret);
		if (!*err)
			err_set(err, errlen, r, "job %u: network: %s", job_id,
				strerror(-r));
	}
	return r;
}

int jobnet_read_key(const char *path, unsigned char *buf, size_t size,
		    size_t *len, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return err_set(err, errlen, -errno,
			       "the site key %s (job_key_file): %m", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0077) ||
	    st.st_uid != 0) {
		close(fd);
		return err_set(err, errlen, -EPERM,
			       "the site key %s must be a regular file of "
			       "root's, mode 0600 or stricter",
			       path);
	}
	n = read(fd, buf, size);
	close(fd);
	if (n < 16)
		return err_set(err, errlen, -EINVAL,
			       "the site key %s is shorter than 16 bytes",
			       path);
	*len = (size_t)n;
	return 0;
}

void jobnet_clear(struct jobnet *n)
{
	strv_free(n->peer_names);
	free(n->peer_addrs);
	free(n->host.fdb);
	n->peer_names = NULL;
	n->peer_addrs = NULL;
	n->host.fdb = NULL;
	n->host.nfdb = 0;
}

/* --- the nodes' tunnel addresses ------------------------------------------ */

static int nodes_add(struct jobnet_nodes *ns, const char *name,
		     const char *addr)
{
	struct jobnet_node *v;

	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i].name, name) == 0)
			return -EEXIST;
	v = realloc(ns->v, (ns->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ns->v = v;
	snprintf(v[ns->n].name, sizeof(v->name), "%s", name);
	snprintf(v[ns->n].addr, sizeof(v->addr), "%s", addr);
	ns->n++;
	return 0;
}

/* One line: "NAME ADDRESS", blank, or a comment. */
static int nodes_line(struct jobnet_nodes *ns, char *line, const char *name,
		      unsigned lineno, char *err, size_t errlen)
{
	char *save = NULL, *node, *addr;
	int r;

	line[strcspn(line, "#")] = '\0';
	node = strtok_r(line, " \t", &save);
	if (!node)
		return 0;
	addr = strtok_r(NULL, " \t", &save);
	if (!addr || strtok_r(NULL, " \t", &save) || !aw_hostname_ok(node) ||
	    strlen(node) >= sizeof(ns->v->name) || !aw_ipv4_ok(addr))
		return err_set(err, errlen, -EINVAL,
			       "%s:%u: not 'NODE IPV4-ADDRESS'", name, lineno);
	r = nodes_add(ns, node, addr);
	if (r == -EEXIST)
		return err_set(err, errlen, -EINVAL, "%s:%u: node '%s' again",
			       name, lineno, node);
	return r;
}

int jobnet_parse_nodes(const char *text, const char *name,
		       struct jobnet_nodes *ret, char *err, size_t errlen)
{
	_cleanup_free_ char *copy = strdup(text);
	struct jobnet_nodes ns = {0};
	char *line;
	unsigned lineno = 0;
	int r = copy ? 0 : -ENOMEM;

	memset(ret, 0, sizeof(*ret));
	/* strsep keeps empty lines, so the numbers are the file's. */
	for (char *p = copy; r == 0 && (line = strsep(&p, "\n"));)
		r = nodes_line(&ns, line, name, ++lineno, err, errlen);
	if (r < 0) {
		jobnet_nodes_clear(&ns);
		return r;
	}
	*ret = ns;
	return 0;
}

int jobnet_read_nodes(const char *path, struct jobnet_nodes *ret, char *err,
		      size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	struct stat st;
	int r, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	memset(ret, 0, sizeof(*ret));
	if (fd < 0)
		return err_set(err, errlen, -errno,
			       "the nodes' tunnel addresses %s "
			       "(net_nodes_file): %m",
			       path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 0022)) {
		close(fd);
		return err_set(err, errlen, -EPERM,
			       "%s (net_nodes_file) must be a regular file of "
			       "root's that no one else may write",
			       path);
	}
	r = read_fd_limited(fd, 1u << 20, &text, NULL);
	close(fd);
	if (r < 0)
		return err_set(err, errlen, r, "reading %s: %s", path,
			       strerror(-r));
	return jobnet_parse_nodes(text, path, ret, err, errlen);
}

void jobnet_nodes_clear(struct jobnet_nodes *n)
{
	free(n->v);
	n->v = NULL;
	n->n = 0;
}
