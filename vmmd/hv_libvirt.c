/* SPDX-License-Identifier: MIT */
/*
 * The one file that includes libvirt. libvirt's default event loop runs in a
 * thread of its own; lifecycle events cross to vmmd's loop through a pipe
 * (fixed-size records), so no vmmd state is ever touched from that thread.
 */
#include "hv.h"

#include "cleanup.h"
#include "domowner.h"
#include "domxml.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct hv_event_rec {
	char name[128];
	int event;
};

struct hv_lv {
	virConnectPtr conn;
	char uri[256];
	int pipe_rd;
	int pipe_wr;
	int cb_id;
	/* A checkpoint's save runs in a worker thread: (re)connecting is
	 * serialised. */
	pthread_mutex_t lock;
};

static pthread_once_t event_once = PTHREAD_ONCE_INIT;
static bool event_ok;

static void *event_thread(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			log_err("libvirt event loop: %s",
				virGetLastErrorMessage());
	return NULL;
}

/* libvirt prints errors to stderr by default; we log them ourselves, once,
 * where they are handled. */
static void quiet_errors(void *data, virErrorPtr e)
{
	(void)data;
	(void)e;
}

static void event_init(void)
{
	pthread_t t;

	virSetErrorFunc(NULL, quiet_errors);
	if (virEventRegisterDefaultImpl() < 0)
		return;
	if (pthread_create(&t, NULL, event_thread, NULL) != 0)
		return;
	pthread_detach(t);
	event_ok = true;
}

static int lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event,
			int detail, void *opaque)
{
	struct hv_lv *h = opaque;
	struct hv_event_rec rec = {0};

	(void)conn;
	snprintf(rec.name, sizeof(rec.name), "%s", virDomainGetName(dom));
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		rec.event = HV_EV_STARTED;
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		rec.event =
		    detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? HV_EV_CRASHED
		    : detail == VIR_DOMAIN_EVENT_STOPPED_SAVED ? HV_EV_SAVED
							       : HV_EV_STOPPED;
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		rec.event = HV_EV_CRASHED;
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		/* Other pauses are vmmd's own (create_limited, a save). */
		if (detail != VIR_DOMAIN_EVENT_SUSPENDED_IOERROR)
			return 0;
		rec.event = HV_EV_IOERROR;
		break;
	default:
		return 0;
	}
	/* A full pipe loses an event; the periodic reconcile catches up. */
	if (write(h->pipe_wr, &rec, sizeof(rec)) < 0)
		log_warn("libvirt event for %s dropped: %s", rec.name,
			 strerror(errno));
	return 0;
}

static void set_err(char *err, size_t errlen, const char *what)
{
	const char *m = virGetLastErrorMessage();

	snprintf(err, errlen, "%s: %s", what, m ? m : "unknown libvirt error");
}

static int lv_connect(struct hv_lv *h, char *err, size_t errlen)
{
	h->conn = virConnectOpen(h->uri);
	if (!h->conn) {
		set_err(err, errlen, "cannot connect to libvirt");
		return -ECONNREFUSED;
	}
	/* A libvirtd that exits closes the socket, which libvirt's event
	 * thread sees at once (virConnectIsAlive turns false; the next call
	 * reconnects); keepalive only finds one that hangs. Every ping wakes
	 * both of vmmd's threads, and HPC nodes count such jitter
	 * (bench/idle): 30 s x 3 instead of libvirt's 5 s x 5. */
	virConnectSetKeepAlive(h->conn, 30, 3);
	h->cb_id = virConnectDomainEventRegisterAny(
	    h->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), h, NULL);
	if (h->cb_id < 0)
		log_warn("libvirt lifecycle events unavailable: %s",
			 virGetLastErrorMessage());
	return 0;
}

/* Reconnects when libvirtd went away since the last call. */
static int lv_conn_locked(struct hv_lv *h, char *err, size_t errlen)
{
	if (h->conn && virConnectIsAlive(h->conn) == 1)
		return 0;
	if (h->conn) {
		log_warn("libvirt connection lost; reconnecting");
		virConnectClose(h->conn);
		h->conn = NULL;
	}
	return lv_connect(h, err, errlen);
}

static int lv_conn(struct hv_lv *h, char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&h->lock);
	r = lv_conn_locked(h, err, errlen);
	pthread_mutex_unlock(&h->lock);
	return r;
}

static int lv_open(void **ctx, const char *uri, char *err, size_t errlen)
{
	struct hv_lv *h = calloc(1, sizeof(*h));
	int fds[2];

	if (!h)
		return -ENOMEM;
	pthread_once(&event_once, event_init);
	if (!event_ok)
		log_warn("libvirt event loop could not start");
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(h);
		return -errno;
	}
	h->pipe_rd = fds[0];
	h->pipe_wr = fds[1];
	pthread_mutex_init(&h->lock, NULL);
	snprintf(h->uri, sizeof(h->uri), "%s", uri);
	int r = lv_connect(h, err, errlen);
	if (r < 0) {
		close(fds[0]);
		close(fds[1]);
		free(h);
		return r;
	}
	*ctx = h;
	return 0;
}

static void lv_close(void *ctx)
{
	struct hv_lv *h = ctx;

	if (!h)
		return;
	if (h->conn) {
		if (h->cb_id >= 0)
			virConnectDomainEventDeregisterAny(h->conn, h->cb_id);
		virConnectClose(h->conn);
	}
	close(h->pipe_rd);
	close(h->pipe_wr);
	free(h);
}

static int lv_create(void *ctx, const char *xml, char *err, size_t errlen)
{
	struct hv_lv *h = ctx;
	virDomainPtr d;
	int r = lv_conn(h, err, errlen);

	if (r < 0)
		return r;
	d = virDomainCreateXML(
	    h->conn, xml,
	    0 /* no AUTODESTROY: guests outlive a vmmd restart */);
	if (!d) {
		set_err(err, errlen, "libvirt could not start the guest");
		return -EIO;
	}
	virDomainFree(d);
	return 0;
}

static int set_hard_limit(virDomainPtr d, uint64_t kib)
{
	virTypedParameter p = {.type = VIR_TYPED_PARAM_ULLONG};

	snprintf(p.field, sizeof(p.field), "%s", VIR_DOMAIN_MEMORY_HARD_LIMIT);
	p.value.ul = kib;
	return virDomainSetMemoryParameters(d, &p, 1, VIR_DOMAIN_AFFECT_LIVE);
}

static int lv_create_limited(void *ctx, const char *xml,
			     uint64_t hard_limit_kib, char *err, size_t errlen)
{
	struct hv_lv *h = ctx;
	virDomainPtr d;
	int r = lv_conn(h, err, errlen);

	if (r < 0)
		return r;
	d = virDomainCreateXML(h->conn, xml, VIR_DOMAIN_START_PAUSED);
	if (!d) {
		set_err(err, errlen, "libvirt could not start the guest");
		return -EIO;
	}
	if (set_hard_limit(d, hard_limit_kib) < 0) {
		set_err(err, errlen,
			"libvirt could not limit the guest's memory");
		r = -EIO;
	} else if (virDomainResume(d) < 0) {
		set_err(err, errlen, "libvirt could not resume the guest");
		r = -EIO;
	}
	if (r < 0)
		virDomainDestroy(d);
	virDomainFree(d);
	return r;
}

static int lv_destroy(void *ctx, const char *name, char *err, size_t errlen)
{
	struct hv_lv *h = ctx;
	virDomainPtr d;
	int r = lv_conn(h, err, errlen);

	if (r < 0)
		return r;
	d = virDomainLookupByName(h->conn, name);
	if (!d)
		return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? -ENOENT
								  : -EIO;
	/* GRACEFUL first lets libvirt give QEMU a moment to flush; a guest
	 * that will not die is then killed outright. */
	r = virDomainDestroyFlags(d, VIR_DOMAIN_DESTROY_GRACEFUL);
	if (r < 0)
		r = virDomainDestroy(d);
	if (r < 0 && virGetLastErrorCode() != VIR_ERR_OPERATION_INVALID) {
		set_err(err, errlen, "libvirt could not destroy the guest");
		virDomainFree(d);
		return -EIO;
	}
	virDomainFree(d);
	return 0;
}

static int lv_list(void *ctx, const char *prefix, char ***ret)
{
	struct hv_lv *h = ctx;
	virDomainPtr *doms = NULL;
	char err[256];
	int n, r = lv_conn(h, err, sizeof(err));
	char **names;
	size_t k = 0;

	if (r < 0)
		return r;
	n = virConnectListAllDomains(h->conn, &doms,
				     VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0)
		return -EIO;
	names = calloc((size_t)n + 1, sizeof(*names));
	for (int i = 0; i < n; i++) {
		const char *nm = virDomainGetName(doms[i]);
		if (names && nm && strncmp(nm, prefix, strlen(prefix)) == 0)
			names[k++] = strdup(nm);
		virDomainFree(doms[i]);
	}
	free(doms);
	if (!names)
		return -ENOMEM;
	*ret = names;
	return 0;
}

static int lv_kvm_offered(void *ctx)
{
	struct hv_lv *h = ctx;
	char err[256];
	_cleanup_free_ char *caps = NULL;

	if (lv_conn(h, err, sizeof(err)) < 0)
		return 0;
	caps = virConnectGetCapabilities(h->conn);
	return caps && strstr(caps, "<domain type='kvm'") ? 1 : 0;
}

static int lv_event_fd(void *ctx)
{
	return ((struct hv_lv *)ctx)->pipe_rd;
}

static void lv_drain(void *ctx,
		     void (*cb)(void *data, const char *name, enum hv_event ev),
		     void *data)
{
	struct hv_lv *h = ctx;
	struct hv_event_rec rec;

	while (read(h->pipe_rd, &rec, sizeof(rec)) == (ssize_t)sizeof(rec)) {
		rec.name[sizeof(rec.name) - 1] = '\0';
		cb(data, rec.name, (enum hv_event)rec.event);
	}
}

/* --- checkpoints --------------------------------------------------------- */

static virDomainPtr lv_lookup(struct hv_lv *h, const char *name, char *err,
			      size_t errlen)
{
	virDomainPtr d;

	if (lv_conn(h, err, errlen) < 0)
		return NULL;
	d = virDomainLookupByName(h->conn, name);
	if (!d)
		set_err(err, errlen, "no such guest");
	return d;
}

static int lv_save(void *ctx, const char *name, const char *path, char *err,
		   size_t errlen)
{
	virDomainPtr d = lv_lookup(ctx, name, err, errlen);
	int r = 0;

	if (!d)
		return -ENOENT;
	/* Through the page cache, not BYPASS_CACHE: libvirt's helper then
	 * never makes QEMU wait for the disk, and the caller starts the
	 * writeback behind the stream (vmmd/ckpt/ckpt_save.h; 0.59 -> 0.8 of dd
	 * for a 4 GiB guest). The commit drops the pages once it has hashed
	 * them (ckpt_store.c). */
	if (virDomainSaveFlags(d, path, NULL, 0) < 0) {
		set_err(err, errlen, "libvirt could not save the guest");
		r = virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID ? -EBUSY
								       : -EIO;
	}
	virDomainFree(d);
	return r;
}

static int lv_set_limit(void *ctx, const char *name, uint64_t kib, char *err,
			size_t errlen)
{
	virDomainPtr d = lv_lookup(ctx, name, err, errlen);
	int r = 0;

	if (!d)
		return -ENOENT;
	if (set_hard_limit(d, kib) < 0) {
		set_err(err, errlen,
			"libvirt could not set the guest's memory limit");
		r = -EIO;
	}
	virDomainFree(d);
	return r;
}

/* The domain named in xml (our own XML: <name> holds no escapes). */
static virDomainPtr lookup_xml_name(struct hv_lv *h, const char *xml)
{
	const char *p = strstr(xml, "<name>"), *e;
	char name[160];

	if (!p || !(e = strstr(p, "</name>")) || e - p - 6 >= 160)
		return NULL;
	snprintf(name, sizeof(name), "%.*s", (int)(e - p - 6), p + 6);
	return virDomainLookupByName(h->conn, name);
}

/* libvirt refuses a restore XML whose UUID differs from the saved
 * domain's (its ABI check; the error then shows only as the iohelper's
 * SIGPIPE). Ours has none: the saved one goes in after <name>. */
static char *with_saved_uuid(struct hv_lv *h, const char *path, const char *xml)
{
	_cleanup_free_ char *saved =
	    virDomainSaveImageGetXMLDesc(h->conn, path, 0);
	const char *u = saved ? strstr(saved, "<uuid>") : NULL;
	const char *n = strstr(xml, "</name>");
	char *out = NULL;

	if (!u || !n || strstr(xml, "<uuid>") || strlen(u) < 6 + 36 + 7 ||
	    strncmp(u + 6 + 36, "</uuid>", 7) != 0)
		return strdup(xml);
	n += strlen("</name>");
	if (asprintf(&out, "%.*s<uuid>%.36s</uuid>%s", (int)(n - xml), xml,
		     u + 6, n) < 0)
		return NULL;
	return out;
}

static int restore_flags(void *ctx, const char *path, const char *xml,
			 uint64_t hard_limit_kib, unsigned flags, char *err,
			 size_t errlen)
{
	struct hv_lv *h = ctx;
	_cleanup_free_ char *dxml = NULL;
	virDomainPtr d;
	int r = lv_conn(h, err, errlen);

	if (r < 0)
		return r;
	if (!(dxml = with_saved_uuid(h, path, xml)))
		return -ENOMEM;
	if (hard_limit_kib)
		flags |= VIR_DOMAIN_SAVE_PAUSED;
	if (virDomainRestoreFlags(h->conn, path, dxml, flags) < 0) {
		set_err(err, errlen, "libvirt could not restore the guest");
		return -EIO;
	}
	if (!hard_limit_kib)
		return 0;
	d = lookup_xml_name(h, xml);
	if (!d) {
		set_err(err, errlen, "the restored guest vanished");
		return -EIO;
	}
	if (set_hard_limit(d, hard_limit_kib) < 0 || virDomainResume(d) < 0) {
		set_err(err, errlen,
			"libvirt could not limit and resume the "
			"restored guest");
		virDomainDestroy(d);
		r = -EIO;
	}
	virDomainFree(d);
	return r;
}

static int lv_restore(void *ctx, const char *path, const char *xml,
		      uint64_t hard_limit_kib, char *err, size_t errlen)
{
	return restore_flags(ctx, path, xml, hard_limit_kib,
			     VIR_DOMAIN_SAVE_BYPASS_CACHE, err, errlen);
}

static int lv_restore_cached(void *ctx, const char *path, const char *xml,
			     uint64_t hard_limit_kib, char *err, size_t errlen)
{
	return restore_flags(ctx, path, xml, hard_limit_kib, 0, err, errlen);
}

/* Device removal is asynchronous (the guest must let go): poll the live
 * XML until the device is gone, bounded. */
static int wait_gone(virDomainPtr d, const char *gone, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		char *xml = virDomainGetXMLDesc(d, 0);
		bool present = xml && strstr(xml, gone);

		free(xml);
		if (!present)
			return 0;
		usleep(100 * 1000);
	}
	return -ETIMEDOUT;
}

static int lv_detach(void *ctx, const char *name, const char *dev_xml,
		     const char *gone, int timeout_ms, char *err, size_t errlen)
{
	virDomainPtr d = lv_lookup(ctx, name, err, errlen);
	int r = 0;

	if (!d)
		return -ENOENT;
	if (virDomainDetachDeviceFlags(d, dev_xml, VIR_DOMAIN_AFFECT_LIVE) <
	    0) {
		set_err(err, errlen, "libvirt could not unplug the device");
		r = -EIO;
	} else if ((r = wait_gone(d, gone, timeout_ms)) < 0) {
		snprintf(err, errlen,
			 "the guest did not release the device within %d ms",
			 timeout_ms);
	}
	virDomainFree(d);
	return r;
}

static int lv_attach(void *ctx, const char *name, const char *dev_xml,
		     char *err, size_t errlen)
{
	virDomainPtr d = lv_lookup(ctx, name, err, errlen);
	int r = 0;

	if (!d)
		return -ENOENT;
	if (virDomainAttachDeviceFlags(d, dev_xml, VIR_DOMAIN_AFFECT_LIVE) <
	    0) {
		set_err(err, errlen, "libvirt could not plug the device");
		r = -EIO;
	}
	virDomainFree(d);
	return r;
}

static int lv_owner(void *ctx, const char *name, uint32_t *job_id, char *node,
		    size_t nodelen)
{
	struct hv_lv *h = ctx;
	_cleanup_free_ char *meta = NULL;
	char err[256];
	virDomainPtr d;
	int code = 0;

	if (lv_conn(h, err, sizeof(err)) < 0)
		return -EIO;
	d = virDomainLookupByName(h->conn, name);
	if (!d)
		return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? -ENOENT
								  : -EIO;
	/* libvirt 9.0 gives the element without prefix or namespace:
	 * <job id="42" node="n1"/>. */
	meta = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS,
				    VIR_DOMAIN_AFFECT_LIVE);
	if (!meta)
		code = virGetLastErrorCode();
	virDomainFree(d);
	if (!meta)
		return code == VIR_ERR_NO_DOMAIN_METADATA ? -ENODATA : -EIO;
	return domowner_parse(meta, job_id, node, nodelen) == 0 ? 0 : -ENODATA;
}

static int lv_cpu_ok(void *ctx, const char *type, const char *cpu_model,
		     char *why, size_t whylen)
{
	struct hv_lv *h = ctx;
	char xml[256];
	int r = lv_conn(h, why, whylen);

	if (r < 0)
		return r;
	if (!cpu_model || !cpu_model[0] || strncmp(cpu_model, "host-", 5) == 0)
		return 1;
	/* cpu_model passed the spec's check: [A-Za-z0-9_.+-] only. */
	snprintf(xml, sizeof(xml),
		 "<cpu mode='custom' match='exact'><model fallback='forbid'>"
		 "%s</model></cpu>",
		 cpu_model);
	r = virConnectCompareHypervisorCPU(h->conn, NULL, NULL, NULL, type, xml,
					   0);
	if (r == VIR_CPU_COMPARE_IDENTICAL || r == VIR_CPU_COMPARE_SUPERSET)
		return 1;
	if (r == VIR_CPU_COMPARE_INCOMPATIBLE) {
		snprintf(why, whylen,
			 "this node cannot give the guest CPU model '%s'",
			 cpu_model);
		return 0;
	}
	set_err(why, whylen, "cannot compare the CPU model");
	return -EIO;
}

const struct hv_ops hv_libvirt_ops = {
    .open = lv_open,
    .close = lv_close,
    .create = lv_create,
    .create_limited = lv_create_limited,
    .destroy = lv_destroy,
    .list = lv_list,
    .kvm_offered = lv_kvm_offered,
    .event_fd = lv_event_fd,
    .drain_events = lv_drain,
    .save = lv_save,
    .set_limit = lv_set_limit,
    .restore = lv_restore,
    .restore_cached = lv_restore_cached,
    .detach = lv_detach,
    .attach = lv_attach,
    .cpu_ok = lv_cpu_ok,
    .owner = lv_owner,
};
