/* SPDX-License-Identifier: MIT */
/*
 * vmmd's configuration: "key = value" lines, '#' comments, parsed from a
 * declarative table. Unknown keys and bad values are errors naming the file
 * and line. In path values "%n" stands for the node name, so several vmmd
 * instances (one per simulated node) can share one config file.
 */
#ifndef VMMD_CONFIG_H
#define VMMD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "util.h"

struct vmmd_config {
	char node_name[128];
	char socket_path[VMENV_MAX_PATH];
	char run_dir[VMENV_MAX_PATH];
	char console_dir[VMENV_MAX_PATH];
	char catalog[VMENV_MAX_PATH]; /* a path or an http(s):// URL */
	char policy_dir[VMENV_MAX_PATH];
	char libvirt_uri[256];
	char domain_type[8]; /* auto, kvm, qemu */
	char slurm_user[64];
	char keep_console_logs[8]; /* none, failed, all */
	uint32_t console_linger_s; /* an ended job's log, for its owner */
	char log_level[16];
	uint32_t boot_timeout_s;
	uint32_t default_mem_mib;
	uint32_t mem_headroom_mib;
	uint32_t max_vcpus;
	/* Client connections before their request (server.c,
	 * clientlimit.h). */
	uint32_t max_clients;
	uint32_t max_clients_per_uid;
	uint32_t reserved_clients;
	uint32_t max_request_kib_per_uid;
	uint32_t client_request_timeout_s;
	uint32_t reconcile_interval_s;
	/* Placement and devices (devices.h checks them at start). */
	char sysfs_root[VMENV_MAX_PATH];
	char proc_root[VMENV_MAX_PATH];
	char gres_conf[VMENV_MAX_PATH];
	char housekeeping_cpus[256]; /* a CPU list, or "" */
	char mem_limit[8];	     /* auto, domain, live */
	char ib_pfs[512];	     /* PF names or PCI addresses */
	uint32_t max_ib_vfs;
	char ib_guid_prefix[8]; /* "" or 4 hex digits */
	uint32_t ib_guid_node_id;
	/* Images (docs/images.md). */
	char image_cache[VMENV_MAX_PATH];
	uint32_t image_cache_max_mib;
	char allow_user_images[4]; /* no, yes */
	char qemu_img[VMENV_MAX_PATH];
	char fetch_proxy[256];
	char fetch_user[64];		   /* the download helper runs as */
	char fetch_helper[VMENV_MAX_PATH]; /* fetch/vmenv-fetch */
	uint32_t catalog_refresh_s;
	uint32_t image_prepare_timeout_s;
	uint32_t fetch_connect_timeout_s;
	uint32_t fetch_low_speed_time_s;
	uint32_t fetch_low_speed_bps;
	uint32_t fetch_retries;
	uint32_t fetch_retry_delay_ms;
	/* Multi-node jobs (docs/multinode.md). */
	char guest_net[32]; /* the guests' private subnet, a.b.c.d/len */
	char net_tunnel[8]; /* none, vxlan */
	uint32_t net_vxlan_port;
	char net_nodes_file[VMENV_MAX_PATH];
	uint32_t net_mtu; /* 0: the tunnel's default */
	char job_key_file[VMENV_MAX_PATH];
	/* Checkpoints (docs/checkpoint.md). */
	char checkpoint_dir[VMENV_MAX_PATH];
	uint32_t checkpoint_probe_mib;
	uint32_t checkpoint_requery_s;
	char checkpoint_files[8];	   /* served, 9p */
	char checkpoint_standin_device[4]; /* no, yes */
	uint32_t checkpoint_retention_s;
	/* Evacuate the node when Slurm drains it with a reason that begins
	 * with this word ("": never by a drain). */
	char evacuate_drain_reason[64];
	/* Per user and store: kept checkpoints (count, MiB). */
	uint32_t checkpoint_keep_max;
	uint32_t checkpoint_keep_max_mib;
	/* Kept overlays (--vm-keep-overlay, ovkeep.h): per user (count,
	 * MiB), the node's MiB, how long. */
	uint32_t overlay_keep_max;
	uint32_t overlay_keep_max_mib;
	uint32_t overlay_keep_total_mib;
	uint32_t overlay_retention_s;
	/* Warm start (docs/warmstart.md): whether jobs that ask for it may
	 * restore a template here, and how many templates the node keeps. */
	char warm_start[4]; /* no, yes */
	char warm_user[64]; /* the templates' QEMU runs as */
	uint32_t warm_templates_max;
	/* Stdout straight to a port (docs/design.md §9); at most
	 * AW_MAX_BULK_PORTS. */
	uint32_t bulk_ports;
	/* Steps outlive a vmmd restart (docs/restart.md): their stdout goes
	 * through the agent then, not a bulk port. */
	char session_restarts[4]; /* no, yes */
};

/* Is the catalog setting a URL (else a local path)? */
int config_catalog_is_url(const struct vmmd_config *c);

/* Fills the defaults; node may be NULL (then the host's short name). */
void config_defaults(struct vmmd_config *c, const char *node);
/* Applies the file over what *c holds. A missing file is not an error when
 * optional is set. 0 or -errno with "file:line: reason" in err. */
int config_load(struct vmmd_config *c, const char *path, int optional,
		char *err, size_t errlen);
int config_parse(struct vmmd_config *c, const char *text, const char *name,
		 char *err, size_t errlen);
/* Replaces %n with the node name in every path. */
int config_expand(struct vmmd_config *c, char *err, size_t errlen);
void config_dump(const struct vmmd_config *c, FILE *f);

/* The i-th key of the table, for vmmd.conf(5) (man/mangen.c): its
 * default as text and its help in *ret_def and *ret_help (static), and in
 * values what it takes, in words ("an integer in 1..3600"). The key, or
 * NULL past the last one. */
const char *config_key_doc(size_t i, const char **ret_def,
			   const char **ret_help, char *values, size_t len);

#endif
