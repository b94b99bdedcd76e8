// SPDX-License-Identifier: MIT
/*
 * Bulk ports, host side (bulk.h).
 */
#include "bulk.h"

#include "bulkscan.h"
#include "domxml.h"
#include "jobrec.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One read from a port, and reads per wakeup: a port that never runs dry
 * (a fast command, or a guest flooding an idle port) must not hold up the
 * rest of vmmd. */
#define BULK_READ	(256u * 1024u)
#define BULK_READS_TURN 8
/* A port the guest could not open (in use) is not offered for this
 * long. */
#define BULK_BUSY_MS 10000u

struct bulk_port {
	struct bulk_job *b;
	uint32_t idx;
	int fd; /* -1: not connected, never offered */
	struct loop_watch *w;
	struct bulkscan scan;
	/* The claimer's (bulk_claim); NULL: the port is free. */
	const struct bulk_sink *sink;
	void *ctx;
	bool paused;
	uint64_t busy_until_ms;
};

struct bulk_job {
	struct job *j;
	uint32_t n;
	uint32_t next; /* round robin: a just-freed port is taken last */
	/* One read's bytes, after the scanner's headroom; shared by the
	 * job's ports (the bytes leave it before the callback returns). */
	uint8_t *buf;
	struct bulk_port port[AW_MAX_BULK_PORTS];
};

/* Not for a guest that is or may become a checkpoint, nor one restored
 * from one: a restore needs the saved guest's very devices. */
uint32_t bulk_ports_of(const struct vmmd_config *c, bool saved)
{
	return saved ? 0 : c->bulk_ports;
}

static bool job_may_use(const struct job *j, bool restoring)
{
	return bulk_ports_of(&j->d->cfg, j->spec.v.checkpoint ||
					     j->spec.v.restore_from ||
					     restoring) > 0;
}

void bulk_domspec(const struct job *j, struct dom_spec *s, bool restoring)
{
	if (!job_may_use(j, restoring))
		return;
	s->bulk_ports = j->d->cfg.bulk_ports;
	s->bulk_sock_prefix = j->bulk_prefix;
}

static void port_pause(struct bulk_port *p, bool pause)
{
	if (p->paused == pause || !p->w)
		return;
	if (loop_mod_fd(p->w, pause ? 0 : EPOLLIN) == 0)
		p->paused = pause;
}

static void port_close(struct bulk_port *p)
{
	loop_del_fd(p->w);
	p->w = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->paused = false;
}

/* The claimer's bytes of one read, and its end. Returns false when the
 * port must not be read any more this turn. */
static bool port_take(struct bulk_port *p, uint8_t *in, size_t n)
{
	const struct bulk_sink *sink = p->sink;
	void *ctx = p->ctx;
	const uint8_t *out;
	size_t len;
	bool ended, room = true;

	bulkscan_feed(&p->scan, in, n, &out, &len, &ended);
	if (!sink)
		return true;
	if (len)
		room = sink->output(ctx, out, len);
	if (ended) {
		p->sink = NULL;
		p->ctx = NULL;
		port_pause(p, false);
		/* May end (and free) the session: ctx is not touched
		 * after. */
		sink->end(ctx);
		return true;
	}
	if (!room)
		port_pause(p, true);
	return room;
}

static void port_io(void *data, uint32_t events)
{
	struct bulk_port *p = data;
	uint8_t *in = p->b->buf + BULKSCAN_HEADROOM;

	(void)events;
	for (int i = 0; i < BULK_READS_TURN && !p->paused; i++) {
		ssize_t n = read(p->fd, in, BULK_READ);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* QEMU closed it: the guest is going away, and the
			 * job's end takes its sessions. */
			log_debug("job %u: bulk port %u closed", p->b->j->id,
				  p->idx);
			port_close(p);
			return;
		}
		if (!port_take(p, in, (size_t)n))
			return;
	}
}

static int port_connect(struct bulk_port *p)
{
	struct job *j = p->b->j;
	char path[VMENV_MAX_PATH + 16];
	int fd, r;

	if (snprintf(path, sizeof(path), "%s%u.sock", j->bulk_prefix, p->idx) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = unix_connect(path, 100);
	if (fd < 0)
		return fd;
	r = fd_set_nonblock(fd, true);
	if (r == 0)
		r = loop_add_fd(j->d->loop, fd, EPOLLIN, port_io, p, &p->w);
	if (r < 0) {
		close(fd);
		return r;
	}
	p->fd = fd;
	return 0;
}

void bulk_attach(struct job *j, bool restoring)
{
	struct bulk_job *b;
	uint32_t up = 0;

	if (j->bulk || !job_may_use(j, restoring))
		return;
	b = calloc(1, sizeof(*b));
	if (!b || !(b->buf = malloc(BULKSCAN_HEADROOM + BULK_READ))) {
		free(b);
		return;
	}
	b->j = j;
	b->n = j->d->cfg.bulk_ports;
	if (b->n > AW_MAX_BULK_PORTS)
		b->n = AW_MAX_BULK_PORTS;
	for (uint32_t i = 0; i < b->n; i++) {
		struct bulk_port *p = &b->port[i];
		int r;

		*p = (struct bulk_port){.b = b, .idx = i, .fd = -1};
		r = port_connect(p);
		if (r < 0)
			log_debug("job %u: bulk port %u unusable: %s", j->id, i,
				  strerror(-r));
		up += r == 0;
	}
	j->bulk = b;
	if (up < b->n)
		log_info("job %u: %u of %u bulk ports connected", j->id, up,
			 b->n);
}

void bulk_detach(struct job *j)
{
	struct bulk_job *b = j->bulk;

	if (!b)
		return;
	j->bulk = NULL;
	for (uint32_t i = 0; i < b->n; i++)
		port_close(&b->port[i]);
	free(b->buf);
	free(b);
}

static struct bulk_port *free_port(struct bulk_job *b)
{
	uint64_t now = now_ms();

	for (uint32_t k = 0; k < b->n; k++) {
		struct bulk_port *p = &b->port[(b->next + k) % b->n];

		if (p->fd >= 0 && !p->sink && p->busy_until_ms <= now)
			return p;
	}
	return NULL;
}

int bulk_claim(struct job *j, const struct bulk_sink *sink, void *ctx,
	       struct aw_exec *e)
{
	struct bulk_port *p = j->bulk ? free_port(j->bulk) : NULL;
	int r;

	if (!p)
		return -ENOENT;
	r = bulkscan_new_marks(e->bulk_start, e->bulk_end);
	if (r < 0)
		return r;
	bulkscan_arm(&p->scan, e->bulk_start, e->bulk_end);
	p->sink = sink;
	p->ctx = ctx;
	port_pause(p, false);
	j->bulk->next = (p->idx + 1) % j->bulk->n;
	e->flags |= AW_EXEC_BULK;
	e->bulk_port = p->idx;
	return 0;
}

static struct bulk_port *port_of(struct job *j, uint32_t port)
{
	return j->bulk && port < j->bulk->n ? &j->bulk->port[port] : NULL;
}

void bulk_release(struct job *j, uint32_t port, int guest_err)
{
	struct bulk_port *p = port_of(j, port);

	if (!p)
		return;
	p->sink = NULL;
	p->ctx = NULL;
	bulkscan_idle(&p->scan);
	port_pause(p, false);
	if (guest_err) {
		p->busy_until_ms = now_ms() + BULK_BUSY_MS;
		log_info("job %u: bulk port %u cannot be opened in the guest "
			 "(%s); output goes through the agent",
			 j->id, port,
			 guest_err == EBUSY ? "still held by an earlier session"
					    : strerror(guest_err));
	}
}

void bulk_resume(struct job *j, uint32_t port)
{
	struct bulk_port *p = port_of(j, port);

	if (p && p->sink)
		port_pause(p, false);
}
