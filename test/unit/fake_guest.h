/* SPDX-License-Identifier: MIT */
/*
 * The guest's end of vmmd's agent channel, for the transport tests
 * (test_agent, test_exec): a Unix socket listening where QEMU would, frames
 * per agentwire, and every wait pumping vmmd's loop (loop_run_once) so
 * that nothing blocks. Include after <cmocka.h>.
 */
#ifndef VMENV_TEST_FAKE_GUEST_H
#define VMENV_TEST_FAKE_GUEST_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentwire.h"
#include "loop.h"
#include "util.h"

#define GUEST_WAIT_MS 5000

struct guest {
	struct loop *loop;
	int listen_fd;
	int fd; /* the accepted channel, non-blocking */
};

struct gframe {
	struct aw_hdr h;
	uint8_t *p; /* malloc'ed payload */
};

static inline void pump(struct loop *l, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do
		assert_int_equal(loop_run_once(l, 10), 0);
	while (now_ms() < end);
}

static inline void guest_listen(struct guest *g, struct loop *l,
				const char *path)
{
	g->loop = l;
	g->fd = -1;
	g->listen_fd = unix_listen(path, 0600, 4);
	assert_true(g->listen_fd >= 0);
}

/* vmmd's connection (already made: connect() completes on the backlog). */
static inline void guest_accept(struct guest *g)
{
	struct pollfd p = {.fd = g->listen_fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, GUEST_WAIT_MS), 1);
	g->fd = accept4(g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(g->fd >= 0);
}

static inline void guest_close(struct guest *g)
{
	if (g->fd >= 0)
		close(g->fd);
	if (g->listen_fd >= 0)
		close(g->listen_fd);
	g->fd = g->listen_fd = -1;
}

static inline void guest_write(struct guest *g, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t end = now_ms() + GUEST_WAIT_MS;

	while (len) {
		ssize_t n = send(g->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (now_ms() >= end)
			fail_msg("vmmd stopped reading the agent channel");
		assert_int_equal(loop_run_once(g->loop, 10), 0);
	}
}

static inline void guest_send(struct guest *g, uint8_t type, uint32_t session,
			      const void *payload, size_t len)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_frame(&b, type, session, payload, len), 0);
	guest_write(g, b.data, b.len);
	aw_buf_free(&b);
}

/* A frame whose payload is n u32s. */
static inline void guest_send_u32s(struct guest *g, uint8_t type,
				   uint32_t session, const uint32_t *v,
				   size_t n)
{
	struct aw_buf p = {0};

	for (size_t i = 0; i < n; i++)
		assert_int_equal(aw_put_u32(&p, v[i]), 0);
	guest_send(g, type, session, p.data, p.len);
	aw_buf_free(&p);
}

/* Exactly len bytes; false at EOF. */
static inline bool guest_read(struct guest *g, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t end = now_ms() + GUEST_WAIT_MS;

	while (len) {
		ssize_t n = read(g->fd, p, len);

		if (n == 0)
			return false;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (now_ms() >= end)
			fail_msg("no frame from vmmd");
		assert_int_equal(loop_run_once(g->loop, 10), 0);
	}
	return true;
}

static inline void guest_recv(struct guest *g, struct gframe *fr)
{
	uint8_t hdr[AW_HDR_LEN];

	if (!guest_read(g, hdr, sizeof(hdr)))
		fail_msg("vmmd closed the agent channel");
	assert_int_equal(aw_hdr_decode(hdr, AW_MAX_HOST_PAYLOAD, &fr->h), 0);
	fr->p = malloc(fr->h.len ? fr->h.len : 1);
	assert_non_null(fr->p);
	if (!guest_read(g, fr->p, fr->h.len))
		fail_msg("vmmd closed the agent channel mid-frame");
}

static inline void gframe_free(struct gframe *fr)
{
	free(fr->p);
	fr->p = NULL;
}

/* The next frame that is not a HELLO (vmmd repeats HELLO until answered)
 * nor a CREDIT (returned at vmmd's own pace): it must be of type. */
static inline void guest_expect(struct guest *g, uint8_t type,
				struct gframe *fr)
{
	for (;;) {
		guest_recv(g, fr);
		if (fr->h.type == type)
			return;
		if (fr->h.type != AW_HELLO && fr->h.type != AW_CREDIT)
			fail_msg("expected frame %s, got %s",
				 aw_type_name(type), aw_type_name(fr->h.type));
		gframe_free(fr);
	}
}

/* vmmd's loop runs for ms; then true when nothing but HELLOs and CREDITs
 * came (those are read and dropped). */
static inline bool guest_quiet(struct guest *g, int ms)
{
	struct gframe fr;
	struct pollfd p = {.fd = g->fd, .events = POLLIN};

	pump(g->loop, ms);
	while (poll(&p, 1, 0) == 1) {
		guest_recv(g, &fr);
		if (fr.h.type != AW_HELLO && fr.h.type != AW_CREDIT) {
			gframe_free(&fr);
			return false;
		}
		gframe_free(&fr);
	}
	return true;
}

/* The agent's answer to HELLO: version, flags, a version string. */
static inline void guest_hello(struct guest *g, uint32_t version,
			       uint32_t flags)
{
	struct aw_buf b = {0};

	assert_int_equal(aw_put_u32(&b, version), 0);
	assert_int_equal(aw_put_u32(&b, flags), 0);
	assert_int_equal(aw_put_str(&b, "fake-agent"), 0);
	guest_send(g, AW_HELLO, 0, b.data, b.len);
	aw_buf_free(&b);
}

#endif
