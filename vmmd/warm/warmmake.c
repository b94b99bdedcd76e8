// SPDX-License-Identifier: MIT
/*
 * Making a template in a thread (warmmake.h). The guest here is the
 * template's, booted from the image with no job in it; its agent is still
 * untrusted: every frame is size-checked and the waits are bounded.
 */
#include "warmmake.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agentwire.h"
#include "cleanup.h"
#include "log.h"
#include "overlay.h"
#include "util.h"

#define HELLO_EVERY_MS 500
/* Whatever the agent sends before its answers is read and dropped. */
#define MAX_PAYLOAD 4096

static int send_frame(int fd, uint8_t type, const struct aw_buf *b)
{
	uint8_t h[AW_HDR_LEN];
	struct pollfd p = {.fd = fd, .events = POLLOUT};

	aw_hdr_encode(h, (uint32_t)b->len, type, 0);
	/* Two small writes on an idle socket: poll once for room. */
	if (poll(&p, 1, 1000) <= 0)
		return -ETIMEDOUT;
	if (write_full(fd, h, sizeof(h)) < 0 ||
	    (b->len && write_full(fd, b->data, b->len) < 0))
		return -EIO;
	return 0;
}

static int send_u32(int fd, uint8_t type, uint32_t v)
{
	struct aw_buf b = {0};
	int r = aw_put_u32(&b, v);

	r = r ?: send_frame(fd, type, &b);
	aw_buf_free(&b);
	return r;
}

/* Reads exactly n bytes (fd is non-blocking): nothing by 'first' is a
 * timeout, but bytes begun are read on until 'last'. A frame split across
 * a HELLO interval (a busy guest writes its header and payload apart) must
 * not be cut there: the next read would start in its middle, and the
 * stream would be lost (a template once failed so, in 7 s). */
static int read_until(int fd, uint8_t *buf, size_t n, uint64_t first,
		      uint64_t last)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t deadline = got ? last : first;
		uint64_t now = now_ms();
		ssize_t k;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(deadline - now)) == 0)
			continue;
		k = read(fd, buf + got, n - got);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0)
			return k == 0 ? -ECONNRESET : -errno;
		got += (size_t)k;
	}
	return 0;
}

/* One frame of session 0: its type and payload (at most MAX_PAYLOAD); none
 * begun by 'first' is a timeout, one begun is read to its end by 'last'. */
static int read_frame(int fd, uint64_t first, uint64_t last, struct aw_hdr *h,
		      uint8_t *payload)
{
	uint8_t hb[AW_HDR_LEN];
	int r = read_until(fd, hb, sizeof(hb), first, last);

	if (r < 0)
		return r;
	if (aw_hdr_decode(hb, MAX_PAYLOAD, h) < 0)
		return -EPROTO;
	return read_until(fd, payload, h->len, last, last);
}

/* HELLO, repeated until the agent (which may not listen yet) answers:
 * its flags. */
static bool stopped(const bool *stop)
{
	return stop && __atomic_load_n(stop, __ATOMIC_RELAXED);
}

static int hello(int fd, uint32_t timeout_ms, const bool *stop, uint32_t *flags)
{
	uint64_t end = now_ms() + timeout_ms;
	uint8_t payload[MAX_PAYLOAD];

	while (now_ms() < end) {
		if (stopped(stop))
			return -ECANCELED;
		uint64_t next = now_ms() + HELLO_EVERY_MS;
		struct aw_hdr h;
		int r = send_u32(fd, AW_HELLO, AW_VERSION);

		if (r < 0)
			return r;
		while ((r = read_frame(fd, next < end ? next : end, end, &h,
				       payload)) == 0) {
			struct aw_reader rd;

			if (h.type != AW_HELLO || h.session != 0)
				continue;
			aw_reader_init(&rd, payload, h.len);
			(void)aw_get_u32(&rd); /* version */
			*flags = aw_get_u32(&rd);
			return rd.err ? -EPROTO : 0;
		}
		if (r != -ETIMEDOUT)
			return r;
	}
	return -ETIMEDOUT;
}

static int prepared(int fd, uint32_t timeout_ms, char *why, size_t whylen)
{
	uint64_t end = now_ms() + timeout_ms;
	uint8_t payload[MAX_PAYLOAD];
	struct aw_hdr h;
	int r;

	if ((r = send_u32(fd, AW_CKPT_PREPARE, 0)) < 0)
		return r;
	while ((r = read_frame(fd, end, end, &h, payload)) == 0) {
		struct aw_reader rd;
		uint32_t what;

		if (h.session != 0 ||
		    (h.type != AW_CKPT_OK && h.type != AW_CKPT_REFUSED))
			continue;
		aw_reader_init(&rd, payload, h.len);
		what = aw_get_u32(&rd);
		if (rd.err || what != AW_CKPT_PREPARE)
			return -EPROTO;
		if (h.type == AW_CKPT_OK)
			return 0;
		return err_set(why, whylen, -ECANCELED,
			       "the guest's agent refused to hold itself");
	}
	return r;
}

int warm_make_handshake(int fd, uint32_t timeout_ms, const bool *stop,
			bool *not_warm, char *why, size_t whylen)
{
	uint32_t flags = 0;
	int r = hello(fd, timeout_ms, stop, &flags);

	*not_warm = false;
	if (r == -ETIMEDOUT)
		return err_set(why, whylen, r,
			       "the guest's agent did not answer within %u s",
			       timeout_ms / 1000);
	if (r < 0)
		return err_set(why, whylen, r,
			       "the guest's agent channel failed before its "
			       "answer: %s",
			       strerror(-r));
	if (!(flags & AW_HELLO_WARM) || !(flags & AW_HELLO_CKPT) ||
	    (flags & AW_HELLO_SETUP_DONE)) {
		*not_warm = true;
		return err_set(why, whylen, -EOPNOTSUPP,
			       "the image's agent is not its guest's init (or "
			       "too old): something may have run before it");
	}
	r = prepared(fd, timeout_ms, why, whylen);
	if (r < 0 && r != -ECANCELED)
		return err_set(why, whylen, r,
			       "the guest's agent did not hold itself: %s",
			       strerror(-r));
	return r;
}

/* Connects to the agent socket QEMU made, retried until the deadline. */
static int connect_agent(const char *path, uint32_t timeout_ms,
			 const bool *stop)
{
	uint64_t end = now_ms() + timeout_ms;
	struct timespec tick = {0, 100 * 1000 * 1000};

	for (;;) {
		int fd = unix_connect(path, 1000);
		if (fd >= 0 || now_ms() >= end || stopped(stop))
			return fd;
		nanosleep(&tick, NULL);
	}
}

void *warm_make_main(void *arg)
{
	struct warm_make *m = arg;
	uint64_t t0 = now_ms();
	_cleanup_close_ int fd = -1;
	char why[512] = "";

	if (m->disk[0] &&
	    (m->r = overlay_create(m->qemu_img, m->base, m->base_fmt, m->disk,
				   why, sizeof(why))) < 0) {
		snprintf(m->why, sizeof(m->why), "its overlay: %s", why);
		return NULL;
	}
	m->r = m->hv->create(m->hv_ctx, m->xml, why, sizeof(why));
	if (m->r < 0) {
		snprintf(m->why, sizeof(m->why), "cannot start it: %s", why);
		return NULL;
	}
	fd = connect_agent(m->agent, m->timeout_ms, &m->stop);
	m->r = fd < 0
		   ? fd
		   : warm_make_handshake(fd, m->timeout_ms, &m->stop,
					 &m->not_warm, m->why, sizeof(m->why));
	if (fd < 0)
		snprintf(m->why, sizeof(m->why),
			 "cannot reach the guest's agent: %s", strerror(-fd));
	m->boot_ms = now_ms() - t0;
	if (m->r == 0 && stopped(&m->stop))
		m->r = -ECANCELED;
	if (m->r == 0) {
		t0 = now_ms();
		m->r = m->hv->save(m->hv_ctx, m->domain, m->save, why,
				   sizeof(why));
		if (m->r < 0)
			snprintf(m->why, sizeof(m->why), "save: %s", why);
		m->save_ms = now_ms() - t0;
	}
	if (m->r < 0)
		m->hv->destroy(m->hv_ctx, m->domain, why, sizeof(why));
	return NULL;
}
