/* SPDX-License-Identifier: MIT */
#include "catalogfile.h"
#include "vmmd.h"

#include "ckpt.h"
#include "cleanup.h"
#include "devices.h"
#include "evacuate.h"
#include "image.h"
#include "job.h"
#include "log.h"
#include "server.h"
#include "spec.h"
#include "warm.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* /proc/cpuinfo "flags" naming vmx or svm: hardware virtualisation is
 * really exposed. A /dev/kvm without it (some nested setups) accepts
 * ioctls but never runs a guest. */
static int cpu_has_virt(void)
{
	_cleanup_free_ char *text = NULL;

	if (read_file_limited("/proc/cpuinfo", 16 << 20, &text, NULL) < 0)
		return 0;
	return strstr(text, " vmx") || strstr(text, " svm");
}

const char *vmmd_pick_domain_type(const char *configured, int kvm_offered,
				  int cpu_virt, char *why, size_t whylen)
{
	if (strcmp(configured, "auto") != 0) {
		snprintf(why, whylen, "configured");
		return strcmp(configured, "kvm") == 0 ? "kvm" : "qemu";
	}
	if (kvm_offered && cpu_virt) {
		snprintf(why, whylen,
			 "auto: libvirt offers KVM and the CPU "
			 "has vmx/svm");
		return "kvm";
	}
	snprintf(why, whylen, "auto: %s; guests run under TCG emulation",
		 !kvm_offered ? "libvirt offers no KVM"
			      : "the CPU shows no vmx/svm");
	return "qemu";
}

bool vmmd_pick_mem_limit_live(const char *configured, bool can_raise_memlock,
			      char *why, size_t whylen)
{
	if (strcmp(configured, "auto") != 0) {
		snprintf(why, whylen, "configured");
		return strcmp(configured, "live") == 0;
	}
	snprintf(why, whylen,
		 can_raise_memlock
		     ? "auto: in the domain XML"
		     : "auto: set on the paused domain, because libvirt "
		       "would raise RLIMIT_MEMLOCK to the limit and this host "
		       "denies CAP_SYS_RESOURCE");
	return !can_raise_memlock;
}

/* CAP_SYS_RESOURCE (24) in our effective set: libvirtd, root on the same
 * host, then normally has it too. */
static bool can_raise_memlock(void)
{
	_cleanup_free_ char *text = NULL;
	const char *p;

	if (read_file_limited("/proc/self/status", 1 << 16, &text, NULL) < 0 ||
	    !(p = strstr(text, "\nCapEff:")))
		return true;
	return (strtoull(p + 8, NULL, 16) >> 24) & 1;
}

static void on_hv_event(void *data, const char *name, enum hv_event ev)
{
	job_on_domain_event(data, name, (int)ev);
}

static void hv_io(void *data, uint32_t events)
{
	struct vmmd *d = data;

	(void)events;
	d->hv->drain_events(d->hv_ctx, on_hv_event, d);
}

static void reconcile_tick(void *data)
{
	struct vmmd *d = data;

	job_reconcile(d, false);
	evacuate_watch_drain(d, false);
	d->reconcile_t = loop_add_timer(
	    d->loop, d->cfg.reconcile_interval_s * 1000ull, reconcile_tick, d);
}

static int resolve_slurm_uid(struct vmmd *d)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];

	d->slurm_uid = 0;
	if (getpwnam_r(d->cfg.slurm_user, &pw, buf, sizeof(buf), &pwp) == 0 &&
	    pwp)
		d->slurm_uid = pw.pw_uid;
	else
		log_warn("slurm_user '%s' unknown; only root may start guests",
			 d->cfg.slurm_user);
	return 0;
}

static int open_hv(struct vmmd *d)
{
	char err[512] = "", why[160];
	int r = d->hv->open(&d->hv_ctx, d->cfg.libvirt_uri, err, sizeof(err));

	if (r < 0) {
		log_err("%s", err);
		return r;
	}
	snprintf(d->domain_type, sizeof(d->domain_type), "%s",
		 vmmd_pick_domain_type(d->cfg.domain_type,
				       d->hv->kvm_offered(d->hv_ctx),
				       cpu_has_virt(), why, sizeof(why)));
	log_notice("guests use domain type '%s' (%s)", d->domain_type, why);
	d->mem_limit_live = vmmd_pick_mem_limit_live(
	    d->cfg.mem_limit, can_raise_memlock(), why, sizeof(why));
	log_notice("guest memory limit: %s", why);
	return loop_add_fd(d->loop, d->hv->event_fd(d->hv_ctx), EPOLLIN, hv_io,
			   d, &d->hv_w);
}

int vmmd_init(struct vmmd *d)
{
	char err[512] = "";
	int r;

	d->listen_fd = -1;
	d->started_ms = now_ms();
	snprintf(d->domain_prefix, sizeof(d->domain_prefix), "vmenv-%s-",
		 d->cfg.node_name);
	if ((r = loop_new(&d->loop)) < 0)
		return r;
	resolve_slurm_uid(d);
	if ((r = devices_config_check(&d->cfg, err, sizeof(err))) < 0) {
		log_err("config: %s", err);
		return r;
	}
	if ((r = images_init(d)) < 0) {
		log_err("image cache %s: %s", d->cfg.image_cache, strerror(-r));
		return r;
	}
	if ((config_catalog_is_url(&d->cfg)
		 ? images_catalog_initial(d, err, sizeof(err))
		 : catalogfile_refresh(d, err, sizeof(err))) < 0)
		log_warn("catalog: %s (every job will fail until it is fixed)",
			 err);
	spec_policies_load(d);
	ckpt_init(d, &job_ckpt_events);
	if ((r = warm_init(d, &job_warm_events)) < 0)
		return r;
	if ((r = open_hv(d)) < 0)
		return r;
	job_reconcile(d, true);
	evacuate_watch_drain(d, true);
	if ((r = server_listen(d)) < 0)
		return r;
	d->reconcile_t = loop_add_timer(
	    d->loop, d->cfg.reconcile_interval_s * 1000ull, reconcile_tick, d);
	log_notice("vmmd %s on node %s listening on %s", PACKAGE_VERSION,
		   d->cfg.node_name, d->cfg.socket_path);
	return 0;
}

void vmmd_fini(struct vmmd *d)
{
	if (d->loop)
		server_close(d);
	job_stop_all_records(d);
	ckpt_fini(d);
	if (d->hv_ctx)
		warm_fini(d);
	images_fini(d);
	if (d->hv_ctx) {
		loop_del_fd(d->hv_w);
		d->hv->close(d->hv_ctx);
		d->hv_ctx = NULL;
	}
	catalog_clear(&d->catalog);
	console_keep_free(&d->console_ended);
	spec_policies_free(d);
	loop_free(d->loop);
	d->loop = NULL;
}
