/* SPDX-License-Identifier: MIT */
#include "vmmdconf.h"

#include "cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* C_STR: one word; C_LIST: words separated by spaces (or commas). */
enum ckind { C_STR, C_LIST, C_PATH, C_U32, C_ENUM, C_LOC };

struct centry {
	const char *key;
	enum ckind kind;
	size_t off;
	size_t size;
	uint32_t min, max;   /* C_U32 */
	const char *choices; /* C_ENUM: space separated */
	const char *def;
	const char *help;
};

#define S(k, kind, m, def, help)                                           \
	{                                                                  \
		k, kind, offsetof(struct vmmd_config, m),                  \
		    sizeof(((struct vmmd_config *)0)->m), 0, 0, NULL, def, \
		    help                                                   \
	}
#define N(k, m, lo, hi, def, help)                                           \
	{                                                                    \
		k, C_U32, offsetof(struct vmmd_config, m), sizeof(uint32_t), \
		    lo, hi, NULL, def, help                                  \
	}
#define E(k, m, choices, def, help)                                           \
	{                                                                     \
		k, C_ENUM, offsetof(struct vmmd_config, m),                   \
		    sizeof(((struct vmmd_config *)0)->m), 0, 0, choices, def, \
		    help                                                      \
	}

static const struct centry table[] = {
    S("node_name", C_STR, node_name, "",
      "Slurm node name (default: short hostname)"),
    S("socket", C_PATH, socket_path, VMENV_RUNDIR "/%n/vmmd.sock",
      "client socket"),
    S("run_dir", C_PATH, run_dir, VMENV_RUNDIR "/%n", "per-job runtime state"),
    S("console_dir", C_PATH, console_dir, VMENV_LOGDIR "/%n",
      "guest console logs"),
    S("catalog", C_LOC, catalog, VMENV_SYSCONFDIR "/catalog.json",
      "image catalog: a file, or an http(s):// URL"),
    S("policy_dir", C_PATH, policy_dir, VMENV_SYSCONFDIR "/policies.d",
      "site policies (*.json); re-read on SIGHUP"),
    S("libvirt_uri", C_STR, libvirt_uri, "qemu:///system",
      "libvirt connection"),
    E("domain_type", domain_type, "auto kvm qemu", "auto",
      "auto: kvm when libvirt offers it and the CPU exposes vmx/svm"),
    S("slurm_user", C_STR, slurm_user, "slurm",
      "may start/stop guests besides root"),
    E("keep_console_logs", keep_console_logs, "none failed all", "failed",
      "console logs kept after a job ends (for root; one not kept is "
      "removed when console_linger_s is up)"),
    N("console_linger_s", console_linger_s, 0, 30 * 86400, "3600",
      "how long after a job ends its owner can still read its console log "
      "with vmenvctl console (0: not at all; logs not kept go at once)"),
    E("log_level", log_level, "error warning notice info debug", "info",
      "log verbosity"),
    N("boot_timeout_s", boot_timeout_s, 1, 3600, "120",
      "guest must reach the agent's ready by then"),
    N("default_mem_mib", default_mem_mib, 64, 1 << 24, "512",
      "guest memory when Slurm allocated no memory"),
    N("mem_headroom_mib", mem_headroom_mib, 0, 1 << 20, "128",
      "taken from the job's memory for QEMU itself, unless a policy or "
      "the user says otherwise (measured: bench/qemu-mem)"),
    N("max_vcpus", max_vcpus, 1, 1024, "255", "upper bound on vCPUs per guest"),
    N("max_clients", max_clients, 1, 65536, "1024",
      "client connections waiting for their request, all users together"),
    N("max_clients_per_uid", max_clients_per_uid, 1, 65536, "64",
      "client connections waiting for their request, of one user (root "
      "and slurm_user: not bound per user)"),
    N("reserved_clients", reserved_clients, 1, 65536, "32",
      "more connections only root and slurm_user may hold beyond "
      "max_clients, so that they are served whatever users hold"),
    N("max_request_kib_per_uid", max_request_kib_per_uid, 64, 1u << 22, "16384",
      "request bytes one user's connections may make vmmd buffer at "
      "once (one request is at most 4096 KiB)"),
    N("client_request_timeout_s", client_request_timeout_s, 1, 300, "5",
      "a connection is closed when its whole request has not come by "
      "then (the clients send it at once)"),
    N("reconcile_interval_s", reconcile_interval_s, 5, 86400, "60",
      "how often guests are checked against Slurm's running jobs"),
    S("sysfs_root", C_PATH, sysfs_root, "/sys",
      "where CPUs, NUMA nodes and PCI devices are read"),
    S("proc_root", C_PATH, proc_root, "/proc", "procfs (NVIDIA GPU minors)"),
    S("gres_conf", C_PATH, gres_conf, "/etc/slurm/gres.conf",
      "maps Slurm's GPU indices to device files"),
    S("housekeeping_cpus", C_STR, housekeeping_cpus, "",
      "CPUs for QEMU's non-vCPU threads of jobs whose spec says "
      "emulator_threads = housekeeping (a list; empty: none)"),
    E("mem_limit", mem_limit, "auto domain live", "auto",
      "memory hard limit: in the domain XML, or set live after start "
      "(auto: live when libvirtd cannot raise RLIMIT_MEMLOCK)"),
    S("ib_pfs", C_LIST, ib_pfs, "",
      "InfiniBand PFs whose VFs jobs get (IB devices or PCI addresses)"),
    N("max_ib_vfs", max_ib_vfs, 0, 64, "8", "upper bound on VFs per job"),
    S("ib_guid_prefix", C_STR, ib_guid_prefix, "",
      "4 hex digits: set per-job VF GUIDs (empty: leave them)"),
    N("ib_guid_node_id", ib_guid_node_id, 0, 255, "0",
      "this node's byte in per-job VF GUIDs"),
    S("image_cache", C_PATH, image_cache, VMENV_CACHEDIR,
      "node-local image cache, shared by every vmmd of the machine"),
    N("image_cache_max_mib", image_cache_max_mib, 64, 1u << 30, "51200",
      "bound on the cache; least recently used images go first"),
    E("allow_user_images", allow_user_images, "no yes", "no",
      "--vm-env=/abs/path to an image the job's user owns"),
    S("qemu_img", C_PATH, qemu_img, "/usr/bin/qemu-img",
      "creates the per-job overlays"),
    S("fetch_proxy", C_STR, fetch_proxy, "",
      "HTTP proxy for image downloads (empty: the environment's)"),
    S("fetch_user", C_STR, fetch_user, "vmenv-fetch",
      "the unprivileged user image downloads run as (libcurl runs in "
      "vmenv-fetch, never in root; not root, nor a user of the jobs)"),
    S("fetch_helper", C_PATH, fetch_helper, VMENV_LIBEXECDIR "/vmenv-fetch",
      "the download helper program"),
    N("catalog_refresh_s", catalog_refresh_s, 0, 86400, "300",
      "how often a catalog URL is fetched again (0: at SIGHUP only)"),
    N("image_prepare_timeout_s", image_prepare_timeout_s, 10, 86400, "3600",
      "fetching and preparing a job's image must end by then"),
    N("fetch_connect_timeout_s", fetch_connect_timeout_s, 1, 600, "15",
      "connecting to an image server"),
    N("fetch_low_speed_time_s", fetch_low_speed_time_s, 1, 3600, "60",
      "a download slower than fetch_low_speed_bps for this long fails"),
    N("fetch_low_speed_bps", fetch_low_speed_bps, 1, 1u << 30, "1024",
      "see fetch_low_speed_time_s"),
    N("fetch_retries", fetch_retries, 0, 100, "4",
      "attempts after the first (resuming where the last one stopped)"),
    N("fetch_retry_delay_ms", fetch_retry_delay_ms, 0, 600000, "1000",
      "first back-off between attempts; doubles each time"),
    S("guest_net", C_STR, guest_net, "10.77.0.0/16",
      "private subnet of a multi-node job's guests (node i gets .i+1)"),
    E("net_tunnel", net_tunnel, "none vxlan", "none",
      "how a multi-node job's guests on different hosts reach each other: "
      "none (every node of a job on this host, as in the one-machine test "
      "cluster) or vxlan (docs/multinode.md: what the site must provide)"),
    N("net_vxlan_port", net_vxlan_port, 1, 65535, "789",
      "UDP port of the VXLAN tunnels; must be below "
      "net.ipv4.ip_unprivileged_port_start, so no user binds it first"),
    S("net_nodes_file", C_PATH, net_nodes_file, VMENV_SYSCONFDIR "/nodes",
      "with net_tunnel = vxlan: every node's tunnel address, one "
      "'NODE ADDRESS' a line (root's file, like the site key)"),
    N("net_mtu", net_mtu, 0, 65535, "0",
      "MTU of the guests' NIC (0: 1500, or 1450 with a VXLAN tunnel)"),
    S("job_key_file", C_PATH, job_key_file, VMENV_SYSCONFDIR "/job.key",
      "site secret (the same on every node, root only) that per-job "
      "tokens are derived from"),
    S("checkpoint_dir", C_PATH, checkpoint_dir, VMENV_STATEDIR "/checkpoints",
      "checkpoint store; multi-node jobs need one every node shares, "
      "root's on each (docs/checkpoint.md)"),
    N("checkpoint_probe_mib", checkpoint_probe_mib, 0, 65536, "128",
      "O_DIRECT write measured at start for the checkpoint lead (0: none)"),
    N("checkpoint_requery_s", checkpoint_requery_s, 1, 3600, "30",
      "how often a job's end time is asked of Slurm again"),
    E("checkpoint_standin_device", checkpoint_standin_device, "no yes", "no",
      "tests: give every checkpointing guest an emulated virtio-rng PCI "
      "device handled like a passed-through one (unplugged before each "
      "save, plugged after each restore), on nodes without VFs"),
    E("checkpoint_files", checkpoint_files, "served 9p", "served",
      "how a checkpointing job's working directory reaches its guest: "
      "served (vmenv-9p: open files survive a checkpoint) or 9p (QEMU's "
      "virtio-9p: faster, the share must be idle at a checkpoint)"),
    N("checkpoint_retention_s", checkpoint_retention_s, 0, 366u * 86400u,
      "604800",
      "how long a kept checkpoint (checkpoint_keep) outlives its job, "
      "from its save"),
    S("evacuate_drain_reason", C_STR, evacuate_drain_reason, "",
      "a node drained in Slurm with a reason that begins with this word is "
      "evacuated (its jobs saved and requeued: docs/checkpoint.md); empty: "
      "only vmenvctl evacuate does"),
    N("checkpoint_keep_max", checkpoint_keep_max, 0, 4096, "4",
      "kept checkpoints one user may have in a store; a save to keep "
      "beyond it is refused (0: none may be kept)"),
    N("checkpoint_keep_max_mib", checkpoint_keep_max_mib, 0, 1u << 30, "65536",
      "bytes (MiB) one user's kept checkpoints may take in a store; a save "
      "to keep beyond it is refused"),
    N("overlay_keep_max", overlay_keep_max, 0, 4096, "2",
      "kept overlays (--vm-keep-overlay) one user may have on the node; "
      "beyond it the user's oldest goes (0: none is kept)"),
    N("overlay_keep_max_mib", overlay_keep_max_mib, 0, 1u << 30, "4096",
      "MiB one user's kept overlays may take on the node; beyond it the "
      "user's oldest go, and an overlay larger alone is not kept"),
    N("overlay_keep_total_mib", overlay_keep_total_mib, 0, 1u << 30, "16384",
      "MiB all users' kept overlays may take on the node (they stay in "
      "run_dir's file system, usually /run: memory); an overlay that does "
      "not fit even without its user's older ones is not kept"),
    E("warm_start", warm_start, "no yes", "yes",
      "a job that asks for it (--vm-warm-start, or a policy) starts its guest "
      "from a template of its image and shape, made on first use "
      "(docs/warmstart.md); no: every guest boots"),
    S("warm_user", C_STR, warm_user, "vmenv-template",
      "the system user a template's guest boots as: every warm-started guest "
      "starts from its memory, so no job's user and no other service may "
      "run as it (no such user: no templates are made)"),
    N("warm_templates_max", warm_templates_max, 0, 4096, "8",
      "templates kept in the image cache; the least recently used goes "
      "first (0: none is made)"),
    N("overlay_retention_s", overlay_retention_s, 0, 366u * 86400u, "604800",
      "how long a kept overlay stays after its job's end (swept at the "
      "next reconcile after that)"),
    N("bulk_ports", bulk_ports, 0, 16, "4",
      "extra virtio-serial ports per guest that commands write their "
      "stdout to directly (0: none, all output through the agent)"),
    E("session_restarts", session_restarts, "no yes", "yes",
      "a job's running steps go on across a vmmd restart (an upgrade, a "
      "crash): their output then goes through the agent, which keeps what "
      "a restart could lose, not through a bulk port (about a third of its "
      "throughput; docs/restart.md); no: bulk ports, and a restart ends "
      "the steps"),
};

static int cerr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool in_choices(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *c = choices; *c;) {
		const char *e = strchr(c, ' ');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		if (len == n && strncmp(c, v, n) == 0)
			return true;
		if (!e)
			break;
		c = e + 1;
	}
	return false;
}

static bool is_url(const char *v)
{
	return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
}

static bool str_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v <= 0x20 || *v == 0x7f)
			return false;
	return true;
}

static bool list_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	return true;
}

static bool url_ok(const char *v)
{
	const char *host = strstr(v, "://") + 3;

	return str_ok(v) && *host && *host != '/' && !strpbrk(v, "\"<>\\`");
}

int config_catalog_is_url(const struct vmmd_config *c)
{
	return is_url(c->catalog);
}

static int set_value(struct vmmd_config *c, const struct centry *e,
		     const char *v, char *why, size_t whylen)
{
	char *dst = (char *)c + e->off;
	uint32_t n;

	switch (e->kind) {
	case C_U32:
		if (parse_u32(v, &n) < 0 || n < e->min || n > e->max)
			return cerr(why, whylen,
				    "'%s' wants an integer in %u..%u", e->key,
				    e->min, e->max);
		*(uint32_t *)(void *)dst = n;
		return 0;
	case C_ENUM:
		if (!in_choices(e->choices, v))
			return cerr(why, whylen, "'%s' must be one of: %s",
				    e->key, e->choices);
		break;
	case C_LOC:
		if (is_url(v)) {
			if (!url_ok(v))
				return cerr(why, whylen,
					    "'%s' is not a usable URL", e->key);
			break;
		}
		/* fall through */
	case C_PATH:
		/* %n is expanded later; check the shape now. */
		if (v[0] != '/' || strstr(v, "/../") || strstr(v, "//"))
			return cerr(why, whylen,
				    "'%s' must be an absolute path", e->key);
		break;
	case C_LIST:
		if (!list_ok(v))
			return cerr(why, whylen,
				    "'%s' must not contain control characters",
				    e->key);
		break;
	case C_STR:
		if (!str_ok(v))
			return cerr(why, whylen,
				    "'%s' must not contain spaces or control "
				    "characters",
				    e->key);
		break;
	}
	if (strlen(v) >= e->size)
		return cerr(why, whylen, "'%s' is too long", e->key);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

void config_defaults(struct vmmd_config *c, const char *node)
{
	char why[128];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		set_value(c, &table[i], table[i].def, why, sizeof(why));
	if (node && *node) {
		snprintf(c->node_name, sizeof(c->node_name), "%s", node);
	} else {
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		host[strcspn(host, ".")] = '\0';
		snprintf(c->node_name, sizeof(c->node_name), "%s", host);
	}
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_line(struct vmmd_config *c, char *line, const char *name,
		      unsigned lineno, char *err, size_t errlen)
{
	char why[256];
	char *eq, *key, *val;

	line[strcspn(line, "#")] = '\0';
	key = trim(line);
	if (!*key)
		return 0;
	eq = strchr(key, '=');
	if (!eq)
		return cerr(err, errlen,
			    "%s:%u: '%.*s': expected 'key = value'", name,
			    lineno, (int)strcspn(key, " \t"), key);
	*eq = '\0';
	key = trim(key);
	val = trim(eq + 1);
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		if (strcmp(table[i].key, key) != 0)
			continue;
		if (set_value(c, &table[i], val, why, sizeof(why)) < 0)
			return cerr(err, errlen, "%s:%u: %s", name, lineno,
				    why);
		return 0;
	}
	char safe[64];
	return cerr(err, errlen, "%s:%u: unknown key '%s'", name, lineno,
		    printable(key, safe, sizeof(safe)));
}

int config_parse(struct vmmd_config *c, const char *text, const char *name,
		 char *err, size_t errlen)
{
	_cleanup_free_ char *copy = strdup(text);
	unsigned lineno = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	/* strtok_r would skip empty lines and miscount; walk by hand. */
	for (char *line = copy; line; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = '\0';
		lineno++;
		int r = parse_line(c, line, name, lineno, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int config_load(struct vmmd_config *c, const char *path, int optional,
		char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_limited(path, 1 << 20, &text, NULL);

	if (r == -ENOENT && optional)
		return 0;
	if (r < 0)
		return cerr(err, errlen, "%s: %s", path, strerror(-r));
	return config_parse(c, text, path, err, errlen);
}

static int expand(char *dst, size_t size, const char *node, char *err,
		  size_t errlen, const char *key)
{
	char out[VMENV_MAX_PATH];
	size_t o = 0;

	for (const char *p = dst; *p; p++) {
		const char *add = NULL;
		char one[2] = {*p, 0};

		if (p[0] == '%' && p[1] == 'n') {
			add = node;
			p++;
		} else {
			add = one;
		}
		size_t n = strlen(add);
		if (o + n >= sizeof(out) || o + n >= size)
			return cerr(err, errlen,
				    "'%s' too long after expansion", key);
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	memcpy(dst, out, o + 1);
	return 0;
}

int config_expand(struct vmmd_config *c, char *err, size_t errlen)
{
	if (!valid_image_ref(c->node_name) || strchr(c->node_name, ':'))
		return cerr(err, errlen, "node name '%s' is not a valid name",
			    c->node_name);
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		if (table[i].kind != C_PATH && table[i].kind != C_LOC)
			continue;
		char *dst = (char *)c + table[i].off;
		int r = expand(dst, table[i].size, c->node_name, err, errlen,
			       table[i].key);
		if (r < 0)
			return r;
		if (!(table[i].kind == C_LOC && is_url(dst)) &&
		    !valid_abs_path(dst))
			return cerr(err, errlen,
				    "'%s' is not a clean absolute path",
				    table[i].key);
	}
	return 0;
}

void config_dump(const struct vmmd_config *c, FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		const char *p = (const char *)c + table[i].off;

		if (table[i].kind == C_U32)
			fprintf(f, "%s = %u\n", table[i].key,
				*(const uint32_t *)(const void *)p);
		else
			fprintf(f, "%s = %s\n", table[i].key, p);
	}
}

const char *config_key_doc(size_t i, const char **ret_def,
			   const char **ret_help, char *values, size_t len)
{
	const struct centry *e;

	if (i >= ARRAY_SIZE(table))
		return NULL;
	e = &table[i];
	switch (e->kind) {
	case C_U32:
		snprintf(values, len, "an integer in %u..%u", e->min, e->max);
		break;
	case C_ENUM:
		snprintf(values, len, "one of: %s", e->choices);
		break;
	case C_LOC:
		snprintf(values, len, "an absolute path or an http(s) URL");
		break;
	case C_PATH:
		snprintf(values, len, "an absolute path");
		break;
	case C_LIST:
		snprintf(values, len, "words separated by spaces or commas");
		break;
	case C_STR:
		snprintf(values, len, "text without spaces");
		break;
	}
	*ret_def = e->def;
	*ret_help = e->help;
	return e->key;
}
