// SPDX-License-Identifier: MIT
/*
 * A hypervisor for test_vmmd: no guests, but the agent channel socket QEMU
 * would create, so vmmd's real agent code runs against the test's fake
 * agent.
 */
#include "fakes.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "domowner.h"

struct fake_hv fake_hv = {.event_fd = -1};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void domain_down(struct fake_domain *d)
{
	close_fd(&d->listen_fd);
	close_fd(&d->agent_fd);
	if (d->agent_sock[0])
		unlink(d->agent_sock);
	for (unsigned i = 0; i < d->nbulk; i++) {
		close_fd(&d->bulk_listen[i]);
		close_fd(&d->bulk_fd[i]);
		unlink(d->bulk_sock[i]);
	}
	d->nbulk = 0;
	d->running = false;
}

void fake_hv_reset(void)
{
	static bool initialized; /* before, the fds read 0, not -1 */

	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS && initialized; i++) {
		domain_down(&fake_hv.dom[i]);
		free(fake_hv.dom[i].xml);
	}
	initialized = true;
	close_fd(&fake_hv.event_fd);
	free(fake_hv.last_xml);
	free(fake_hv.restore_xml);
	memset(&fake_hv, 0, sizeof(fake_hv));
	fake_hv.event_fd = -1;
	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS; i++)
		fake_hv.dom[i].listen_fd = fake_hv.dom[i].agent_fd = -1;
}

int fake_xml_unescape(const char *in, size_t n, char *out, size_t outlen)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'},
		    {"&lt;", '<'},
		    {"&gt;", '>'},
		    {"&apos;", '\''},
		    {"&quot;", '"'}};
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		char c = in[i];
		size_t used = 1;

		if (c == '&') {
			size_t k;

			for (k = 0; k < ARRAY_SIZE(ents); k++) {
				size_t el = strlen(ents[k].ent);
				if (el <= n - i &&
				    memcmp(in + i, ents[k].ent, el) == 0)
					break;
			}
			if (k == ARRAY_SIZE(ents))
				return -EINVAL;
			c = ents[k].c;
			used = strlen(ents[k].ent);
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
		i += used;
	}
	out[o] = '\0';
	return 0;
}

/* The text between start and the next end, after from; unescaped. */
static int xml_find(const char *from, const char *start, const char *end,
		    char *out, size_t outlen)
{
	const char *p = from ? strstr(from, start) : NULL, *e;

	if (!p)
		return -ENOENT;
	p += strlen(start);
	e = strstr(p, end);
	if (!e)
		return -EINVAL;
	return fake_xml_unescape(p, (size_t)(e - p), out, outlen);
}

static int fake_open(void **ctx, const char *uri, char *err, size_t errlen)
{
	fake_hv.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fake_hv.event_fd < 0) {
		snprintf(err, errlen, "fake: eventfd: %s", strerror(errno));
		return -errno;
	}
	fake_hv.open = true;
	*ctx = &fake_hv;
	return 0;
}

static void fake_close(void *ctx)
{
	close_fd(&fake_hv.event_fd);
	fake_hv.open = false;
}

static struct fake_domain *free_slot(void)
{
	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS; i++)
		if (!fake_hv.dom[i].running)
			return &fake_hv.dom[i];
	return NULL;
}

/* The bulk ports' sockets (vmmd/bulk.h) of the XML, up to
 * FAKE_HV_MAX_BULK, listened on as QEMU would. */
static void fake_bulk_listen(struct fake_domain *d, const char *xml)
{
	static const char tag[] = "<source mode='bind' path='";
	const char *p = xml;
	char path[VMENV_MAX_PATH];

	while ((p = strstr(p, tag)) && d->nbulk < FAKE_HV_MAX_BULK) {
		if (xml_find(p, tag, "'", path, sizeof(path)) == 0 &&
		    strstr(path, "/q/bulk.")) {
			unsigned i = d->nbulk;

			d->bulk_listen[i] = unix_listen(path, 0600, 8);
			d->bulk_fd[i] = -1;
			snprintf(d->bulk_sock[i], sizeof(d->bulk_sock[i]), "%s",
				 path);
			d->nbulk++;
		}
		p += strlen(tag);
	}
}

int fake_hv_accept_bulk(struct fake_domain *d, unsigned i, int timeout_ms)
{
	struct pollfd p = {.events = POLLIN};
	int fd;

	if (i >= d->nbulk || d->bulk_listen[i] < 0)
		return -ENOTCONN;
	if (d->bulk_fd[i] >= 0)
		return d->bulk_fd[i];
	p.fd = d->bulk_listen[i];
	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	fd = accept4(p.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -errno;
	d->bulk_fd[i] = fd;
	return fd;
}

/* What QEMU does with <channel type='unix'><source mode='bind'
 * path='...'/>: bind and listen there before the guest runs. */
static int fake_start(const char *xml, char *err, size_t errlen)
{
	struct fake_domain *d = free_slot();
	char name[160], sock[VMENV_MAX_PATH];
	int fd;

	if (!d || xml_find(xml, "<name>", "</name>", name, sizeof(name)) < 0 ||
	    xml_find(strstr(xml, "<channel"), "<source mode='bind' path='", "'",
		     sock, sizeof(sock)) < 0) {
		snprintf(err, errlen, "fake: no name or agent channel in XML");
		return -EINVAL;
	}
	fd = unix_listen(sock, 0600, 8);
	if (fd < 0) {
		snprintf(err, errlen, "fake: cannot listen on %s: %s", sock,
			 strerror(-fd));
		return fd;
	}
	free(d->xml);
	memset(d, 0, sizeof(*d));
	d->xml = strdup(xml);
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->agent_sock, sizeof(d->agent_sock), "%s", sock);
	d->listen_fd = fd;
	d->agent_fd = -1;
	d->running = true;
	fake_bulk_listen(d, xml);
	return 0;
}

static int fake_create(void *ctx, const char *xml, char *err, size_t errlen)
{
	char name[160];

	if (fake_hv.ncreate < FAKE_HV_MAX_CALLS &&
	    xml_find(xml, "<name>", "</name>", name, sizeof(name)) == 0)
		snprintf(fake_hv.created[fake_hv.ncreate], sizeof(name), "%s",
			 name);
	fake_hv.ncreate++;
	free(fake_hv.last_xml);
	fake_hv.last_xml = strdup(xml);
	if (fake_hv.fail_create) {
		snprintf(err, errlen, "%s", fake_hv.fail_message);
		return fake_hv.fail_create;
	}
	return fake_start(xml, err, errlen);
}

static int fake_create_limited(void *ctx, const char *xml,
			       uint64_t hard_limit_kib, char *err,
			       size_t errlen)
{
	fake_hv.last_limit_kib = hard_limit_kib;
	return fake_create(ctx, xml, err, errlen);
}

struct fake_domain *fake_hv_domain(const char *name)
{
	struct fake_domain *last = NULL;

	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS; i++) {
		if (strcmp(fake_hv.dom[i].name, name) != 0)
			continue;
		if (fake_hv.dom[i].running)
			return &fake_hv.dom[i];
		last = &fake_hv.dom[i];
	}
	return last;
}

static int fake_destroy(void *ctx, const char *name, char *err, size_t errlen)
{
	struct fake_domain *d = fake_hv_domain(name);

	if (fake_hv.ndestroy < FAKE_HV_MAX_CALLS)
		snprintf(fake_hv.destroyed[fake_hv.ndestroy],
			 sizeof(fake_hv.destroyed[0]), "%s", name);
	fake_hv.ndestroy++;
	if (!d || !d->running) {
		snprintf(err, errlen, "fake: domain '%s' not running", name);
		return -ENOENT;
	}
	/* QEMU dies: its end of the agent channel goes with it. */
	domain_down(d);
	return 0;
}

static int fake_list(void *ctx, const char *prefix, char ***ret)
{
	char **v = calloc(FAKE_HV_MAX_DOMAINS + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS; i++) {
		const struct fake_domain *d = &fake_hv.dom[i];

		if (!d->running || strncmp(d->name, prefix, strlen(prefix)))
			continue;
		v[n] = strdup(d->name);
		if (!v[n++]) {
			hv_names_free(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	return 0;
}

static int fake_kvm_offered(void *ctx)
{
	return fake_hv.kvm;
}

static int fake_event_fd(void *ctx)
{
	return fake_hv.event_fd;
}

static void fake_drain_events(void *ctx,
			      void (*cb)(void *data, const char *name,
					 enum hv_event ev),
			      void *data)
{
	uint64_t n;
	size_t count = fake_hv.nevents;

	if (read(fake_hv.event_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	fake_hv.nevents = 0;
	for (size_t i = 0; i < count; i++) {
		struct fake_domain *d = fake_hv_domain(fake_hv.events[i].name);

		/* An I/O error pauses the domain; it stays until destroyed. */
		if (d && fake_hv.events[i].ev != HV_EV_STARTED &&
		    fake_hv.events[i].ev != HV_EV_IOERROR)
			domain_down(d);
		cb(data, fake_hv.events[i].name, fake_hv.events[i].ev);
	}
}

void fake_hv_emit(const char *name, enum hv_event ev)
{
	uint64_t one = 1;

	if (fake_hv.nevents >= FAKE_HV_MAX_EVENTS)
		return;
	snprintf(fake_hv.events[fake_hv.nevents].name,
		 sizeof(fake_hv.events[0].name), "%s", name);
	fake_hv.events[fake_hv.nevents++].ev = ev;
	if (write(fake_hv.event_fd, &one, sizeof(one)) < 0)
		fake_hv.nevents--;
}

int fake_hv_accept_agent(struct fake_domain *d, int timeout_ms)
{
	struct pollfd p = {.fd = d->listen_fd, .events = POLLIN};
	int fd;

	if (d->agent_fd >= 0)
		return d->agent_fd;
	if (d->listen_fd < 0)
		return -ENOTCONN;
	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -errno;
	d->agent_fd = fd;
	return fd;
}

/* What libvirt's save does: the state goes into path, QEMU ends. A
 * failure leaves half a file, as a full disk would. */
static int fake_save(void *ctx, const char *name, const char *path, char *err,
		     size_t errlen)
{
	struct fake_domain *d = fake_hv_domain(name);
	char text[256];

	fake_hv.nsave++;
	snprintf(fake_hv.saved_path, sizeof(fake_hv.saved_path), "%s", path);
	if (fake_hv.on_save)
		fake_hv.on_save(path);
	if (!d || !d->running) {
		snprintf(err, errlen, "fake: domain '%s' not running", name);
		return -ENOENT;
	}
	snprintf(text, sizeof(text), "SAVED %s\n", name);
	if (fake_hv.fail_save) {
		write_file_atomic(path, "SAV", 3, 0600);
		snprintf(err, errlen, "fake: cannot save: %s",
			 strerror(-fake_hv.fail_save));
		return fake_hv.fail_save;
	}
	if (write_file_atomic(path, text, strlen(text), 0600) < 0) {
		snprintf(err, errlen, "fake: cannot write %s", path);
		return -EIO;
	}
	domain_down(d);
	return 0;
}

/* libvirt's virDomainSetMemoryParameters of a running domain's hard
 * limit; runs in vmmd's save worker thread. */
static int fake_set_limit(void *ctx, const char *name, uint64_t kib, char *err,
			  size_t errlen)
{
	struct fake_domain *d = fake_hv_domain(name);
	unsigned i = fake_hv.nset_limit++;

	if (i < FAKE_HV_MAX_CALLS) {
		snprintf(fake_hv.set_limit[i].name,
			 sizeof(fake_hv.set_limit[i].name), "%s", name);
		fake_hv.set_limit[i].kib = kib;
		fake_hv.set_limit[i].nsave = fake_hv.nsave;
		fake_hv.set_limit[i].save_file =
		    fake_hv.saved_path[0] &&
		    access(fake_hv.saved_path, F_OK) == 0;
	}
	if (!d || !d->running) {
		snprintf(err, errlen, "fake: domain '%s' not running", name);
		return -ENOENT;
	}
	return 0;
}

static int fake_restore(void *ctx, const char *path, const char *xml,
			uint64_t hard_limit_kib, char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	int r;

	fake_hv.nrestore++;
	free(fake_hv.restore_xml);
	fake_hv.restore_xml = strdup(xml);
	fake_hv.restore_limit_kib = hard_limit_kib;
	if (fake_hv.fail_restore) {
		snprintf(err, errlen, "fake: cannot restore");
		return fake_hv.fail_restore;
	}
	if (read_file_limited(path, 4096, &text, NULL) < 0 ||
	    strncmp(text, "SAVED ", 6) != 0) {
		snprintf(err, errlen, "fake: %s is no save image", path);
		return -EINVAL;
	}
	/* The restored QEMU binds the agent socket anew. */
	r = fake_start(xml, err, errlen);
	if (r == 0 && fake_hv.restore_delay_ms)
		usleep(fake_hv.restore_delay_ms * 1000u);
	return r;
}

static int fake_detach(void *ctx, const char *name, const char *dev_xml,
		       const char *gone, int timeout_ms, char *err,
		       size_t errlen)
{
	if (fake_hv.ndetach < FAKE_HV_MAX_CALLS)
		snprintf(fake_hv.detached[fake_hv.ndetach],
			 sizeof(fake_hv.detached[0]), "%s", dev_xml);
	fake_hv.ndetach++;
	return 0;
}

static int fake_attach(void *ctx, const char *name, const char *dev_xml,
		       char *err, size_t errlen)
{
	if (fake_hv.nattach < FAKE_HV_MAX_CALLS)
		snprintf(fake_hv.attached[fake_hv.nattach],
			 sizeof(fake_hv.attached[0]), "%s", dev_xml);
	fake_hv.nattach++;
	return 0;
}

static int fake_cpu_ok(void *ctx, const char *type, const char *cpu_model,
		       char *why, size_t whylen)
{
	/* "*": whatever the model (the default one is ""). */
	if (fake_hv.cpu_refuse[0] &&
	    (strcmp(fake_hv.cpu_refuse, "*") == 0 ||
	     (cpu_model && strcmp(cpu_model, fake_hv.cpu_refuse) == 0))) {
		snprintf(why, whylen,
			 "this node cannot give the guest CPU model '%s'",
			 cpu_model);
		return 0;
	}
	return 1;
}

/* The metadata of the XML the domain was started with (created or
 * restored), as libvirt keeps it. */
static int fake_owner(void *ctx, const char *name, uint32_t *job_id, char *node,
		      size_t nodelen)
{
	struct fake_domain *d = fake_hv_domain(name);

	if (!d || !d->running)
		return -ENOENT;
	if (fake_hv.fail_owner)
		return fake_hv.fail_owner;
	return d->xml && domowner_parse(d->xml, job_id, node, nodelen) == 0
		   ? 0
		   : -ENODATA;
}

const struct hv_ops fake_hv_ops = {
    .open = fake_open,
    .close = fake_close,
    .create = fake_create,
    .create_limited = fake_create_limited,
    .destroy = fake_destroy,
    .list = fake_list,
    .kvm_offered = fake_kvm_offered,
    .event_fd = fake_event_fd,
    .drain_events = fake_drain_events,
    .save = fake_save,
    .set_limit = fake_set_limit,
    .restore = fake_restore,
    .detach = fake_detach,
    .attach = fake_attach,
    .cpu_ok = fake_cpu_ok,
    .owner = fake_owner,
};

/* --- the host's side of job networks (hostnet.h) ------------------------- */

struct fake_net fake_net;

void fake_net_reset(void)
{
	memset(&fake_net, 0, sizeof(fake_net));
}

struct hostnet_bridge *fake_net_bridge(const char *name)
{
	for (size_t i = 0; i < fake_net.nbr; i++)
		if (strcmp(fake_net.br[i].name, name) == 0)
			return &fake_net.br[i];
	return NULL;
}

static int fake_net_guard(void *ctx, uint16_t port, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	fake_net.nguard++;
	fake_net.guard_port = port;
	return 0;
}

static int fake_net_up(void *ctx, const struct hostnet_spec *s, char *err,
		       size_t errlen)
{
	struct hostnet_bridge *b;
	uint32_t id = 0;

	fake_net.nup++;
	if (fake_net.fail_up)
		return err_set(err, errlen, fake_net.fail_up,
			       "fake: bridge %s refused", s->bridge);
	fake_net_guard(ctx, s->guard_port, err, errlen);
	fake_net.last = *s;
	fake_net.last.fdb = NULL;
	if (fake_net_bridge(s->bridge) || fake_net.nbr == FAKE_NET_MAX)
		return 0;
	b = &fake_net.br[fake_net.nbr++];
	snprintf(b->name, sizeof(b->name), "%s", s->bridge);
	if (hostnet_bridge_job(s->bridge, &id))
		b->job_id = id;
	return 0;
}

static int fake_net_release(void *ctx, const char *bridge, char *err,
			    size_t errlen)
{
	struct hostnet_bridge *b = fake_net_bridge(bridge);

	(void)ctx;
	(void)err;
	(void)errlen;
	fake_net.nrelease++;
	if (!b)
		return -ENOENT;
	if (b->guests > 0)
		return 0;
	*b = fake_net.br[--fake_net.nbr];
	return 1;
}

static int fake_net_list(void *ctx, struct hostnet_bridge **ret, size_t *n,
			 char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	*ret = calloc(FAKE_NET_MAX, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, fake_net.br, fake_net.nbr * sizeof(**ret));
	*n = fake_net.nbr;
	return 0;
}

const struct hostnet_ops fake_net_ops = {
    .guard = fake_net_guard,
    .up = fake_net_up,
    .release = fake_net_release,
    .list = fake_net_list,
};
