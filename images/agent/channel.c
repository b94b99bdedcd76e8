// SPDX-License-Identifier: MIT
/*
 * The virtio-serial port: finding it, reading agentwire frames from it and
 * buffering what goes back, so the loop never blocks on a slow host.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PORTS_DIR "/sys/class/virtio-ports"
/* Payload and output buffers above these sizes are freed once idle, so one
 * 12 MiB EXEC does not pin 12 MiB for the life of the guest. */
#define PAYLOAD_KEEP (1024u * 1024u)
#define OUT_KEEP     (4u * 1024u * 1024u)

void chan_init(struct chan *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->fd = -1;
}

/* Reads a sysfs attribute into buf without its trailing newline. */
static int read_attr(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Finds the vportNpM whose name is AW_PORT_NAME. */
static int find_port(char *dev, size_t size)
{
	char path[512], name[128];
	struct dirent *e;
	DIR *d;
	int r = -ENOENT;

	d = opendir(PORTS_DIR);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PORTS_DIR "/%s/name", e->d_name);
		if (read_attr(path, name, sizeof(name)) < 0)
			continue;
		if (strcmp(name, AW_PORT_NAME) == 0) {
			snprintf(dev, size, "/dev/%s", e->d_name);
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void chan_open(struct chan *ch)
{
	bool said_wait = false;
	int said_err = 0;

	for (;;) {
		if (find_port(ch->dev, sizeof(ch->dev)) == 0) {
			ch->fd = open(ch->dev, O_RDWR | O_NONBLOCK | O_CLOEXEC |
						   O_NOCTTY);
			if (ch->fd >= 0)
				return;
			/* The node may lag behind sysfs; say each new
			 * reason once. */
			if (errno != said_err && errno != ENOENT)
				agent_log("open %s: %s", ch->dev,
					  strerror(errno));
			said_err = errno;
		} else if (!said_wait) {
			agent_log("waiting for port '%s'", AW_PORT_NAME);
			said_wait = true;
		}
		sleep_ms(AGENT_RETRY_MS);
	}
}

bool chan_host_present(const struct chan *ch)
{
	struct pollfd p = {.fd = ch->fd, .events = POLLIN};

	if (poll(&p, 1, 0) < 0)
		return false;
	return !(p.revents & (POLLHUP | POLLERR));
}

size_t chan_pending(const struct chan *ch)
{
	return ch->out.len - ch->out_off;
}

void chan_reset(struct chan *ch)
{
	ch->hdr_got = 0;
	ch->payload_got = 0;
	free(ch->payload);
	ch->payload = NULL;
	ch->payload_cap = 0;
	aw_buf_free(&ch->out);
	ch->out_off = 0;
	ch->poisoned = false;
	ch->broken = false;
}

/* --- input -------------------------------------------------------------- */

static int start_frame(struct agent *a)
{
	struct chan *ch = &a->ch;
	uint8_t *p;
	int r;

	r = aw_hdr_decode(ch->hdr, AW_MAX_HOST_PAYLOAD, &ch->cur);
	if (r == -EMSGSIZE)
		return agent_proto_error(a, "frame too large (limit %u bytes)",
					 AW_MAX_HOST_PAYLOAD);
	if (r < 0)
		return agent_proto_error(
		    a, "bad frame header (type %u, flags %u, reserved %u)",
		    ch->hdr[4], ch->hdr[5],
		    (unsigned)ch->hdr[6] << 8 | ch->hdr[7]);
	/* Length checked against the limit above before allocating. */
	if (ch->cur.len > ch->payload_cap) {
		p = realloc(ch->payload, ch->cur.len);
		if (!p)
			return -ENOMEM;
		ch->payload = p;
		ch->payload_cap = ch->cur.len;
	}
	ch->payload_got = 0;
	return 0;
}

static int end_frame(struct agent *a, agent_frame_fn *on_frame)
{
	struct chan *ch = &a->ch;
	int r;

	r = on_frame(a, &ch->cur, ch->payload);
	ch->hdr_got = 0;
	ch->payload_got = 0;
	if (ch->payload_cap > PAYLOAD_KEEP) {
		free(ch->payload);
		ch->payload = NULL;
		ch->payload_cap = 0;
	}
	return r;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int chan_feed(struct agent *a, const uint8_t *p, size_t n,
		     agent_frame_fn *on_frame)
{
	struct chan *ch = &a->ch;
	size_t k;
	int r;

	while (n > 0) {
		if (ch->hdr_got < AW_HDR_LEN) {
			k = min_size(n, AW_HDR_LEN - ch->hdr_got);
			memcpy(ch->hdr + ch->hdr_got, p, k);
			ch->hdr_got += k;
			if (ch->hdr_got < AW_HDR_LEN)
				return 0;
			r = start_frame(a);
			if (r < 0)
				return r;
		} else {
			k = min_size(n, ch->cur.len - ch->payload_got);
			memcpy(ch->payload + ch->payload_got, p, k);
			ch->payload_got += k;
		}
		p += k;
		n -= k;
		if (ch->payload_got == ch->cur.len) {
			r = end_frame(a, on_frame);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int chan_read(struct agent *a, agent_frame_fn *on_frame)
{
	static uint8_t buf[64 * 1024];
	struct chan *ch = &a->ch;
	ssize_t n;
	int i, r;

	/* A bounded number of reads per loop turn keeps sessions served. */
	for (i = 0; i < 64; i++) {
		if (chan_pending(ch) >= AGENT_OUT_HIGH || ch->broken)
			return 0;
		n = read(ch->fd, buf, sizeof(buf));
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (ch->poisoned)
			continue;
		r = chan_feed(a, buf, (size_t)n, on_frame);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- output ------------------------------------------------------------- */

int chan_flush(struct chan *ch)
{
	ssize_t n;

	while (ch->out_off < ch->out.len) {
		n = write(ch->fd, ch->out.data + ch->out_off,
			  ch->out.len - ch->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		ch->out_off += (size_t)n;
	}
	if (ch->out_off == ch->out.len) {
		ch->out_off = 0;
		ch->out.len = 0;
		if (ch->out.cap > OUT_KEEP)
			aw_buf_free(&ch->out);
	} else if (ch->out_off >= ch->out.len / 2) {
		/* Reclaim the written half so the buffer does not creep. */
		memmove(ch->out.data, ch->out.data + ch->out_off,
			ch->out.len - ch->out_off);
		ch->out.len -= ch->out_off;
		ch->out_off = 0;
	}
	return 0;
}

uint8_t *chan_reserve(struct chan *ch, size_t max)
{
	size_t need = AW_HDR_LEN + max, cap;
	uint8_t *p;

	if (ch->out.cap - ch->out.len < need) {
		cap = ch->out.cap ? ch->out.cap : 64 * 1024;
		while (cap - ch->out.len < need)
			cap *= 2;
		p = realloc(ch->out.data, cap);
		if (!p) {
			ch->broken = true;
			return NULL;
		}
		ch->out.data = p;
		ch->out.cap = cap;
	}
	return ch->out.data + ch->out.len + AW_HDR_LEN;
}

void chan_commit(struct chan *ch, uint8_t type, uint32_t session, size_t n)
{
	aw_hdr_encode(ch->out.data + ch->out.len, (uint32_t)n, type, session);
	ch->out.len += AW_HDR_LEN + n;
}
