/* SPDX-License-Identifier: MIT */
#include "jobnet.h"

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

int jobnet_plan(const struct vmmd_config *c, uint32_t job_id,
		const struct slurmjob_info *si, const void *key, size_t keylen,
		struct jobnet *ret, char *err, size_t errlen)
{
	uint32_t base, len, i = si->node_index, g = job_id & 0x3fffffu;
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
	ret->mcast_port = (uint16_t)c->net_mcast_port;
	snprintf(ret->mcast_group, sizeof(ret->mcast_group), "239.%u.%u.%u",
		 192 + (g >> 16), (g >> 8) & 255, g & 255);
	snprintf(ret->mac, sizeof(ret->mac), "52:54:00:%02x:%02x:%02x",
		 (i >> 16) & 255, (i >> 8) & 255, i & 255);
	quad(base + i + 1, ret->addr);
	snprintf(ret->addr + strlen(ret->addr),
		 sizeof(ret->addr) - strlen(ret->addr), "/%u", len);
	r = make_token(job_id, (int64_t)si->start_time, key, keylen,
		       ret->token);
	if (r == 0)
		r = peers(base, si, ret, err, errlen);
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
	n->peer_names = NULL;
	n->peer_addrs = NULL;
}
