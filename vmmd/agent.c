/* SPDX-License-Identifier: MIT */
#include "agent.h"

#include "agentwire.h"
#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "stray.h"
#include "vmmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bound on what vmmd queues toward one guest (EXEC frames carry scripts;
 * stdin is windowed). */
#define AGENT_MAX_OUTQ (64u * 1024u * 1024u)
#define AGENT_RETRY_MS 200
#define AGENT_HELLO_MS 1000

struct agent {
	struct job *j;
	int fd;
	struct loop_watch *w;
	struct loop_timer *timer;
	uint8_t hdr[AW_HDR_LEN];
	size_t hdr_got;
	struct aw_hdr h;
	uint8_t *payload;
	size_t got;
	struct aw_buf out;
	size_t out_off;
	bool hello_seen;
	bool setup_sent;
	bool setup_ok_seen;
	uint32_t version; /* what the agent's HELLO answered */
	/* Answers the guest owes: one HELLO per HELLO, one CKPT_OK or
	 * CKPT_REFUSED per CKPT_PREPARE or CKPT_RESUME. More are out of
	 * phase and draw on the job's grace (stray.h). */
	uint32_t hellos_sent, hellos_got;
	uint32_t ckpt_asked, ckpt_answered;
};

static void agent_io(void *data, uint32_t events);
static void agent_tick(void *data);

static void agent_fail(struct agent *a, const char *what)
{
	struct job *j = a->j;
	char msg[PROTO_MAX_ERROR];

	snprintf(msg, sizeof(msg), "job %u: %s; see vmenvctl console %u", j->id,
		 what, j->id);
	/* The owner ends the job, which detaches (and frees) the agent. */
	j->agent_h->on_fail(j, METRICS_FAIL_AGENT, msg);
}

static int flush_out(struct agent *a)
{
	while (a->out_off < a->out.len) {
		ssize_t n = write(a->fd, a->out.data + a->out_off,
				  a->out.len - a->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		a->out_off += (size_t)n;
	}
	if (a->out_off == a->out.len) {
		a->out.len = 0;
		a->out_off = 0;
	}
	return loop_mod_fd(a->w, EPOLLIN | (a->out.len ? EPOLLOUT : 0));
}

int agent_send(struct job *j, uint8_t type, uint32_t session,
	       const void *payload, size_t len)
{
	struct agent *a = j->agent;
	int r;

	if (!a || a->fd < 0)
		return -ENOTCONN;
	if (a->out.len - a->out_off + len > AGENT_MAX_OUTQ)
		return -ENOBUFS;
	r = aw_put_frame(&a->out, type, session, payload, len);
	if (r < 0)
		return r;
	if (type == AW_HELLO)
		a->hellos_sent++;
	else if (type == AW_CKPT_PREPARE || type == AW_CKPT_RESUME)
		a->ckpt_asked++;
	return flush_out(a);
}

static int send_hello(struct job *j)
{
	struct aw_buf b = {0};
	int r = aw_put_u32(&b, AW_VERSION);

	if (r == 0)
		r = agent_send(j, AW_HELLO, 0, b.data, b.len);
	aw_buf_free(&b);
	return r;
}

/* SETUP's content is the owner's; the channel only sends it. */
static int send_setup(struct job *j, uint32_t version)
{
	struct aw_buf b = {0};
	int r = j->agent_h->build_setup(j, version, &b);

	if (r == 0)
		r = agent_send(j, AW_SETUP, 0, b.data, b.len);
	aw_buf_free(&b);
	return r;
}

static int setup_now(struct agent *a)
{
	/* A version 1 agent knows nothing of networks: the job's other
	 * guests could never reach this one. */
	if (a->j->has_net && a->version < 2) {
		agent_fail(a, "the image's agent is too old for a multi-node "
			      "job (agent protocol 1, needs 2)");
		return -ECANCELED;
	}
	a->setup_sent = true;
	return send_setup(a->j, a->version);
}

static int on_hello(struct agent *a, const uint8_t *p, size_t n)
{
	struct aw_reader r;
	uint32_t version, flags;
	_cleanup_free_ char *info = NULL;

	aw_reader_init(&r, p, n);
	version = aw_get_u32(&r);
	flags = aw_get_u32(&r);
	info = aw_get_str(&r, 256);
	if (aw_reader_done(&r) < 0)
		return -EPROTO;
	/* The agent answers with the lower of our version and its own. */
	if (version < AW_VERSION_MIN || version > AW_VERSION) {
		agent_fail(a, "the guest's agent speaks another protocol "
			      "version");
		return -EPROTO;
	}
	/* vmmd repeats HELLO until answered, and the guest answers each. */
	if (++a->hellos_got > a->hellos_sent)
		return stray_frame(&a->j->stray, (uint32_t)n, now_ms());
	if (a->hello_seen)
		return 0;
	a->hello_seen = true;
	a->version = version;
	log_info("job %u: agent up (%s)", a->j->id, info ? info : "?");
	a->j->agent_ckpt = flags & AW_HELLO_CKPT;
	a->j->agent_bulk = flags & AW_HELLO_BULK;
	a->j->agent_resume = version >= 3;
	/* Held for a checkpoint, or already set up: the owner's to say. */
	if (!a->j->agent_h->on_hello(a->j, flags))
		return 0;
	return setup_now(a);
}

int agent_setup(struct job *j)
{
	struct agent *a = j->agent;

	if (!a || !a->hello_seen || a->setup_sent)
		return -EALREADY;
	return setup_now(a);
}

static int on_setup_fail(struct agent *a, const uint8_t *p, size_t n)
{
	struct aw_reader r;
	_cleanup_free_ char *msg = NULL;
	char what[400], safe[300];

	aw_reader_init(&r, p, n);
	(void)aw_get_u32(&r);
	msg = aw_get_str(&r, 1024);
	snprintf(what, sizeof(what), "guest setup failed: %s",
		 printable(msg ? msg : "?", safe, sizeof(safe)));
	agent_fail(a, what);
	return 0;
}

/* Returns <0 when the channel must go (the agent was already failed or
 * the frame was bad). */
static int dispatch(struct agent *a)
{
	const struct aw_hdr *h = &a->h;
	struct job *j = a->j;

	if (h->session != 0)
		return j->agent_h->on_session_frame(j, h, a->payload);
	switch (h->type) {
	case AW_HELLO:
		return on_hello(a, a->payload, h->len);
	case AW_SETUP_OK:
		if (!a->setup_sent)
			return -EPROTO;
		if (a->setup_ok_seen)
			return stray_frame(&j->stray, h->len, now_ms());
		a->setup_ok_seen = true;
		j->agent_h->on_setup_ok(j);
		return 0;
	case AW_SETUP_FAIL:
		on_setup_fail(a, a->payload, h->len);
		return -ECANCELED;
	case AW_ERROR:
		agent_fail(a, "the guest's agent reported a protocol error");
		return -ECANCELED;
	case AW_CKPT_OK:
	case AW_CKPT_REFUSED:
		if (a->ckpt_answered >= a->ckpt_asked)
			return stray_frame(&j->stray, h->len, now_ms());
		a->ckpt_answered++;
		return j->agent_h->on_ckpt_frame(j, h->type, a->payload,
						 h->len);
	default:
		return -EPROTO;
	}
}

/* One read's worth of framing. 1: a frame is complete, 0: need more. */
static int read_frame(struct agent *a)
{
	ssize_t n;
	int r;

	if (a->hdr_got < AW_HDR_LEN) {
		n = read(a->fd, a->hdr + a->hdr_got, AW_HDR_LEN - a->hdr_got);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		a->hdr_got += (size_t)n;
		if (a->hdr_got < AW_HDR_LEN)
			return 0;
		/* The guest is untrusted: the size is checked before any
		 * allocation. */
		r = aw_hdr_decode(a->hdr, AW_MAX_AGENT_PAYLOAD, &a->h);
		if (r < 0)
			return r;
		a->payload = malloc(a->h.len ? a->h.len : 1);
		if (!a->payload)
			return -ENOMEM;
		a->got = 0;
	}
	if (a->got < a->h.len) {
		n = read(a->fd, a->payload + a->got, a->h.len - a->got);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		a->got += (size_t)n;
	}
	return a->got == a->h.len ? 1 : 0;
}

static void frame_done(struct agent *a)
{
	free(a->payload);
	a->payload = NULL;
	a->hdr_got = 0;
	a->got = 0;
}

/* The job fails with the frame that broke the protocol, named. */
static void fail_frame(struct agent *a, int r)
{
	const struct aw_hdr *h = &a->h;
	const struct stray *st = &a->j->stray;
	char what[300];

	log_warn("job %u: agent frame %s, session %u, %u bytes: %s", a->j->id,
		 aw_type_name(h->type), (unsigned)h->session, (unsigned)h->len,
		 r == STRAY_OVER ? "over the budget for frames vmmd drops"
				 : strerror(-r));
	if (r == STRAY_OVER)
		snprintf(what, sizeof(what),
			 "the guest's agent flooded vmmd with frames it has "
			 "no use for (%llu frames, %llu bytes dropped; the "
			 "last: %s for session %u)",
			 (unsigned long long)st->frames,
			 (unsigned long long)st->bytes, aw_type_name(h->type),
			 (unsigned)h->session);
	else
		snprintf(what, sizeof(what),
			 "the guest's agent broke the protocol (%s for "
			 "session %u: %s)",
			 aw_type_name(h->type), (unsigned)h->session,
			 strerror(-r));
	frame_done(a);
	agent_fail(a, what);
}

static void read_some(struct agent *a)
{
	struct job *j = a->j;

	/* A bounded number of frames per wakeup keeps one chatty guest from
	 * starving the others. */
	for (int i = 0; i < 64; i++) {
		int r = read_frame(a);

		if (r == 0)
			return;
		if (r < 0) {
			agent_fail(a, r == -ECONNRESET
					  ? "the guest's agent channel closed"
					  : "the guest's agent sent a "
					    "malformed frame");
			return;
		}
		r = dispatch(a);
		if (j->agent != a)
			return; /* the job failed and freed us */
		if (r < 0) {
			fail_frame(a, r);
			return;
		}
		frame_done(a);
	}
}

static void agent_io(void *data, uint32_t events)
{
	struct agent *a = data;
	struct job *j = a->j;

	if (events & EPOLLOUT) {
		if (flush_out(a) < 0) {
			agent_fail(a, "cannot write to the guest's agent");
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_some(a);
	(void)j;
}

static int try_connect(struct agent *a)
{
	int fd = unix_connect(a->j->agent_sock, 100);
	int r;

	if (fd < 0)
		return fd;
	r = fd_set_nonblock(fd, true);
	if (r == 0)
		r = loop_add_fd(a->j->d->loop, fd, EPOLLIN, agent_io, a, &a->w);
	if (r < 0) {
		close(fd);
		return r;
	}
	a->fd = fd;
	return send_hello(a->j);
}

/* Until the agent answers: (re)connect, and repeat HELLO, because a
 * virtio-serial port drops what arrives before the guest opened it. */
static void agent_tick(void *data)
{
	struct agent *a = data;

	a->timer = NULL;
	if (a->hello_seen)
		return;
	if (a->fd < 0) {
		int r = try_connect(a);
		if (r < 0 && r != -ENOENT && r != -ECONNREFUSED) {
			agent_fail(a, "cannot connect to the guest's agent "
				      "channel");
			return;
		}
	} else if (send_hello(a->j) < 0) {
		agent_fail(a, "cannot write to the guest's agent");
		return;
	}
	a->timer = loop_add_timer(a->j->d->loop,
				  a->fd < 0 ? AGENT_RETRY_MS : AGENT_HELLO_MS,
				  agent_tick, a);
}

void agent_hello_now(struct job *j)
{
	struct agent *a = j->agent;

	if (!a || a->hello_seen)
		return;
	loop_cancel_timer(a->timer);
	agent_tick(a);
}

int agent_attach(struct job *j)
{
	struct agent *a;

	if (!j->agent_h)
		return -EINVAL;
	if (!(a = calloc(1, sizeof(*a))))
		return -ENOMEM;
	a->j = j;
	a->fd = -1;
	j->agent = a;
	agent_tick(a);
	return 0;
}

void agent_detach(struct job *j)
{
	struct agent *a = j->agent;

	if (!a)
		return;
	j->agent = NULL;
	loop_cancel_timer(a->timer);
	loop_del_fd(a->w);
	if (a->fd >= 0)
		close(a->fd);
	free(a->payload);
	aw_buf_free(&a->out);
	free(a);
}
