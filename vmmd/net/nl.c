/* SPDX-License-Identifier: MIT */
#include "nl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long the kernel may take to answer (it answers at once; this only
 * keeps a lost reply from hanging vmmd's loop). */
#define NL_TIMEOUT_MS 5000

#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)

int nl_open(struct nl_sock *s, int proto)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int one = 1;

	s->seq = 0;
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (s->fd < 0)
		return -errno;
	/* Errors come back with the request's header only, and extended
	 * ACKs are not needed: the caller logs errno. */
	(void)setsockopt(s->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one,
			 sizeof(one));
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(s->fd);
		s->fd = -1;
		return r;
	}
	return 0;
}

void nl_close(struct nl_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void nl_msg_init(struct nl_msg *m)
{
	m->len = 0;
	m->err = 0;
	m->nacks = 0;
	m->first_seq = 0;
	m->last_seq = 0;
}

/* Room for n more bytes (aligned), zeroed; NULL after an overflow. */
static void *grow(struct nl_msg *m, size_t n)
{
	void *p;

	if (m->err || ALIGN4(n) > sizeof(m->buf) - m->len) {
		m->err = -EMSGSIZE;
		return NULL;
	}
	p = m->buf + m->len;
	memset(p, 0, ALIGN4(n));
	m->len += ALIGN4(n);
	return p;
}

size_t nl_begin(struct nl_msg *m, struct nl_sock *s, uint16_t type,
		uint16_t flags, const void *hdr, size_t hdr_len)
{
	size_t off = m->len;
	struct nlmsghdr *h = grow(m, sizeof(*h));
	void *fh;

	if (!h)
		return off;
	h->nlmsg_type = type;
	h->nlmsg_flags = (uint16_t)(flags | NLM_F_REQUEST);
	h->nlmsg_seq = ++s->seq;
	if (off == 0)
		m->first_seq = h->nlmsg_seq;
	m->last_seq = h->nlmsg_seq;
	if (flags & NLM_F_ACK)
		m->nacks++;
	fh = grow(m, hdr_len);
	if (fh && hdr_len)
		memcpy(fh, hdr, hdr_len);
	return off;
}

void nl_end(struct nl_msg *m, size_t off)
{
	struct nlmsghdr *h = (struct nlmsghdr *)(void *)(m->buf + off);

	if (!m->err)
		h->nlmsg_len = (uint32_t)(m->len - off);
}

void nl_put(struct nl_msg *m, uint16_t type, const void *p, size_t n)
{
	struct nlattr *a = grow(m, NLA_HDRLEN + n);

	if (!a)
		return;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + n);
	if (n)
		memcpy((uint8_t *)a + NLA_HDRLEN, p, n);
}

void nl_put_u8(struct nl_msg *m, uint16_t type, uint8_t v)
{
	nl_put(m, type, &v, sizeof(v));
}

void nl_put_u16(struct nl_msg *m, uint16_t type, uint16_t v)
{
	nl_put(m, type, &v, sizeof(v));
}

void nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v)
{
	nl_put(m, type, &v, sizeof(v));
}

void nl_put_be16(struct nl_msg *m, uint16_t type, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	nl_put(m, type, b, sizeof(b));
}

void nl_put_be32(struct nl_msg *m, uint16_t type, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};

	nl_put(m, type, b, sizeof(b));
}

void nl_put_str(struct nl_msg *m, uint16_t type, const char *s)
{
	nl_put(m, type, s, strlen(s) + 1);
}

size_t nl_nest(struct nl_msg *m, uint16_t type)
{
	size_t off = m->len;
	struct nlattr *a = grow(m, NLA_HDRLEN);

	if (a)
		a->nla_type = (uint16_t)(type | NLA_F_NESTED);
	return off;
}

void nl_nest_end(struct nl_msg *m, size_t off)
{
	struct nlattr *a = (struct nlattr *)(void *)(m->buf + off);

	if (!m->err)
		a->nla_len = (uint16_t)(m->len - off);
}

static int send_msg(struct nl_sock *s, const struct nl_msg *m)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	ssize_t n;

	if (m->err)
		return m->err;
	do
		n = sendto(s->fd, m->buf, m->len, 0, (struct sockaddr *)&sa,
			   sizeof(sa));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == m->len ? 0 : -EIO;
}

static ssize_t recv_some(struct nl_sock *s, void *buf, size_t size)
{
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	struct sockaddr_nl from;
	struct iovec iov = {buf, size};
	struct msghdr mh = {.msg_name = &from,
			    .msg_namelen = sizeof(from),
			    .msg_iov = &iov,
			    .msg_iovlen = 1};
	ssize_t n;
	int r;

	do
		r = poll(&p, 1, NL_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	do
		n = recvmsg(s->fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Only the kernel speaks here. */
	if (mh.msg_flags & MSG_TRUNC || from.nl_pid != 0)
		return -EPROTO;
	return n;
}

/* Calls fn for every message in buf[0, n); stops at fn's nonzero answer. */
static int each_msg(const uint8_t *buf, size_t n,
		    int (*fn)(const struct nlmsghdr *h, void *data), void *data)
{
	while (n >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *h = (const void *)buf;
		int r;

		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > n)
			return -EPROTO;
		r = fn(h, data);
		if (r)
			return r;
		if (ALIGN4(h->nlmsg_len) >= n)
			break;
		buf += ALIGN4(h->nlmsg_len);
		n -= ALIGN4(h->nlmsg_len);
	}
	return 0;
}

/* The errno of an NLMSG_ERROR (0 for an ACK), or -EPROTO. */
static int error_of(const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
		return -EPROTO;
	return e->error > 0 ? -EPROTO : e->error;
}

struct acks {
	const struct nl_msg *m;
	uint32_t seen;
	int err;
};

/* ACKs (and errors) of the messages in m; an error for a message that did
 * not ask for an ACK (a batch's begin, when the kernel has no nf_tables)
 * ends the wait: no more answers come. */
static int on_ack(const struct nlmsghdr *h, void *data)
{
	struct acks *a = data;
	int e;

	if (h->nlmsg_seq < a->m->first_seq || h->nlmsg_seq > a->m->last_seq)
		return 0; /* a late answer to something before */
	if (h->nlmsg_type != NLMSG_ERROR)
		return 0;
	e = error_of(h);
	a->seen++;
	if (e && !a->err)
		a->err = e;
	return 0;
}

/* Replies are read into this much (the kernel splits dumps to fit). */
#define NL_RECV_MAX 65536u

int nl_send_wait(struct nl_sock *s, struct nl_msg *m)
{
	struct acks a = {m, 0, 0};
	uint8_t *buf;
	ssize_t n;
	int r = send_msg(s, m);

	if (r < 0)
		return r;
	buf = malloc(NL_RECV_MAX);
	if (!buf)
		return -ENOMEM;
	while (r == 0 && a.seen < m->nacks && !a.err) {
		n = recv_some(s, buf, NL_RECV_MAX);
		r = n < 0 ? (int)n : each_msg(buf, (size_t)n, on_ack, &a);
	}
	free(buf);
	return r < 0 ? r : a.err;
}

struct dump {
	uint32_t seq;
	int (*cb)(const struct nlmsghdr *h, void *data);
	void *data;
	int err;
	bool done;
};

static int on_dump(const struct nlmsghdr *h, void *data)
{
	struct dump *d = data;
	int r;

	if (h->nlmsg_seq != d->seq)
		return 0;
	if (h->nlmsg_type == NLMSG_DONE) {
		d->done = true;
		return 0;
	}
	if (h->nlmsg_type == NLMSG_ERROR) {
		d->done = true;
		if (!d->err)
			d->err = error_of(h);
		return 0;
	}
	if (d->err)
		return 0;
	r = d->cb(h, d->data);
	if (r < 0)
		d->err = r;
	return 0;
}

int nl_dump(struct nl_sock *s, struct nl_msg *m,
	    int (*cb)(const struct nlmsghdr *h, void *data), void *data)
{
	const struct nlmsghdr *h = (const void *)m->buf;
	struct dump d = {.cb = cb, .data = data};
	uint8_t *buf;
	ssize_t n;
	int r = send_msg(s, m);

	if (r < 0)
		return r;
	buf = malloc(NL_RECV_MAX);
	if (!buf)
		return -ENOMEM;
	d.seq = h->nlmsg_seq;
	while (r == 0 && !d.done) {
		n = recv_some(s, buf, NL_RECV_MAX);
		r = n < 0 ? (int)n : each_msg(buf, (size_t)n, on_dump, &d);
	}
	free(buf);
	return r < 0 ? r : d.err;
}

int nl_attrs(const void *p, size_t n, const struct nlattr **tb, uint16_t max)
{
	const uint8_t *b = p;

	memset(tb, 0, (max + 1u) * sizeof(*tb));
	while (n >= NLA_HDRLEN) {
		const struct nlattr *a = (const void *)b;
		uint16_t type = a->nla_type & NLA_TYPE_MASK;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > n)
			return -EPROTO;
		if (type <= max)
			tb[type] = a;
		if (ALIGN4(a->nla_len) >= n)
			break;
		b += ALIGN4(a->nla_len);
		n -= ALIGN4(a->nla_len);
	}
	return 0;
}

const void *nl_data(const struct nlattr *a)
{
	return (const uint8_t *)a + NLA_HDRLEN;
}

size_t nl_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

int nl_get_str(const struct nlattr *a, char *out, size_t size)
{
	size_t n = nl_len(a);
	const char *s = nl_data(a);

	if (n == 0 || s[n - 1] != '\0' || strlen(s) >= size)
		return -EPROTO;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int nl_get_u32(const struct nlattr *a, uint32_t *ret)
{
	if (nl_len(a) != sizeof(*ret))
		return -EPROTO;
	memcpy(ret, nl_data(a), sizeof(*ret));
	return 0;
}
