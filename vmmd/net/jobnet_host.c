/* SPDX-License-Identifier: MIT */
#include "jobnet_host.h"

#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "util.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool vxlan(const struct vmmd *d)
{
	return strcmp(d->cfg.net_tunnel, "vxlan") == 0;
}

/* The tunnel's port must be one no unprivileged process may bind: else one
 * could take it before vmmd's first tunnel and read what other hosts send
 * this one. */
static int port_privileged(uint32_t port, char *why, size_t len)
{
	_cleanup_free_ char *text = NULL;
	uint32_t start = 1024;
	int r = read_file_limited(
	    "/proc/sys/net/ipv4/ip_unprivileged_port_start", 64, &text, NULL);

	if (r == 0) {
		text[strcspn(text, "\n")] = '\0';
		if (parse_u32(text, &start) < 0)
			start = 1024;
	}
	if (port < start)
		return 0;
	return err_set(why, len, -EPERM,
		       "net_vxlan_port %u is not below "
		       "net.ipv4.ip_unprivileged_port_start (%u): any user "
		       "could bind it",
		       port, start);
}

int jobnet_host_plan(struct vmmd *d, uint32_t job_id,
		     const struct slurmjob_info *si, struct jobnet *ret,
		     char *err, size_t errlen)
{
	unsigned char key[4096];
	struct jobnet_nodes nodes = {0};
	size_t keylen = 0;
	char why[512] = "";
	int r;

	memset(ret, 0, sizeof(*ret));
	r = jobnet_read_key(d->cfg.job_key_file, key, sizeof(key), &keylen, why,
			    sizeof(why));
	if (r == 0 && vxlan(d))
		r = port_privileged(d->cfg.net_vxlan_port, why, sizeof(why));
	if (r == 0 && vxlan(d))
		r = jobnet_read_nodes(d->cfg.net_nodes_file, &nodes, why,
				      sizeof(why));
	if (r == 0)
		r = jobnet_plan(&d->cfg, job_id, si, key, keylen,
				vxlan(d) ? &nodes : NULL, ret, why,
				sizeof(why));
	explicit_bzero(key, sizeof(key));
	jobnet_nodes_clear(&nodes);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: multi-node guests on node %s: %s",
			       job_id, d->cfg.node_name, why);
	return 0;
}

int jobnet_host_up(struct vmmd *d, uint32_t job_id, const struct jobnet *n,
		   struct dom_spec *s, char *err, size_t errlen)
{
	char why[512] = "";
	int r = d->net ? d->net->up(d->net_ctx, &n->host, why, sizeof(why))
		       : -EOPNOTSUPP;

	if (r == -EOPNOTSUPP && !why[0])
		snprintf(why, sizeof(why), "this vmmd has no host network");
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: private network on node %s: %s", job_id,
			       d->cfg.node_name, why);
	log_info("job %u: network %s%s%s ready (tap %s)", job_id,
		 n->host.bridge, n->host.tunnel[0] ? ", tunnel " : "",
		 n->host.tunnel, n->tap);
	s->net_bridge = n->host.bridge;
	s->net_tap = n->tap;
	s->net_mtu = n->mtu;
	s->net_mac = n->mac;
	return 0;
}

static int release(struct vmmd *d, uint32_t job_id, char *why, size_t len)
{
	char bridge[HOSTNET_IFNAME_MAX], tunnel[HOSTNET_IFNAME_MAX],
	    tap[HOSTNET_IFNAME_MAX];

	hostnet_names(job_id, 0, bridge, tunnel, tap);
	return d->net->release(d->net_ctx, bridge, why, len);
}

void jobnet_host_release(struct vmmd *d, uint32_t job_id)
{
	char why[512] = "";
	int r;

	if (!d->net)
		return;
	r = release(d, job_id, why, sizeof(why));
	if (r == 1)
		log_info("job %u: network removed", job_id);
	else if (r == 0)
		log_info("job %u: network kept for the job's other guests on "
			 "this host",
			 job_id);
	else if (r != -ENOENT)
		log_err("job %u: %s", job_id, why);
}

/* A bridge of a job this vmmd does not run: Slurm decides. */
static void sweep_one(struct vmmd *d, const struct hostnet_bridge *b)
{
	struct slurmjob_info si;
	char why[512] = "";
	int r;

	if (b->guests > 0 || job_find(d, b->job_id))
		return;
	r = d->slurm_lookup(b->job_id, d->cfg.node_name, &si, why, sizeof(why));
	if (r < 0 && r != -ENOENT)
		return; /* slurmctld unreachable: later */
	/* Running: another node of the host is starting its guest. */
	if (r == 0 && si.active && !si.ending)
		return;
	r = release(d, b->job_id, why, sizeof(why));
	if (r == 1)
		log_warn("reconcile: removed network %s of job %u, which "
			 "runs no more",
			 b->name, b->job_id);
	else if (r < 0 && r != -ENOENT)
		log_err("reconcile: %s", why);
}

void jobnet_host_sweep(struct vmmd *d)
{
	struct hostnet_bridge *v = NULL;
	uint16_t port = vxlan(d) ? (uint16_t)d->cfg.net_vxlan_port : 0;
	char why[512] = "";
	size_t n = 0;

	if (!d->net)
		return;
	if (d->net->list(d->net_ctx, &v, &n, why, sizeof(why)) < 0) {
		log_warn("reconcile: %s", why);
		return;
	}
	/* While any job network exists here, its guard must be there. */
	if (n > 0 && d->net->guard(d->net_ctx, port, why, sizeof(why)) < 0)
		log_err("reconcile: %s", why);
	for (size_t i = 0; i < n; i++)
		sweep_one(d, &v[i]);
	free(v);
}

int jobnet_host_lock_path(const struct vmmd_config *c, char *out, size_t size)
{
	const char *slash = strrchr(c->run_dir, '/');
	int n;

	if (!slash)
		return -EINVAL;
	n = slash == c->run_dir
		? snprintf(out, size, "/vmenv-jobnet.lock")
		: snprintf(out, size, "%.*s/jobnet.lock",
			   (int)(slash - c->run_dir), c->run_dir);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
