// SPDX-License-Identifier: MIT
/*
 * bulkscan: markers in a bulk port's stream (bulkscan.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem */
#endif
#include "bulkscan.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

void bulkscan_idle(struct bulkscan *s)
{
	memset(s, 0, sizeof(*s));
}

void bulkscan_arm(struct bulkscan *s, const uint8_t start[AW_BULK_MARK_LEN],
		  const uint8_t end[AW_BULK_MARK_LEN])
{
	bulkscan_idle(s);
	memcpy(s->start, start, AW_BULK_MARK_LEN);
	memcpy(s->end, end, AW_BULK_MARK_LEN);
	s->st = BULKSCAN_WAIT_START;
}

/* Length of the longest proper suffix of p[0..n) that begins mark. */
static size_t partial_mark(const uint8_t *p, size_t n, const uint8_t *mark)
{
	size_t k = n < BULKSCAN_HEADROOM ? n : BULKSCAN_HEADROOM;

	for (; k > 0; k--)
		if (memcmp(p + n - k, mark, k) == 0)
			return k;
	return 0;
}

/* Keeps p[n-k..n) for the next piece. */
static void hold_tail(struct bulkscan *s, const uint8_t *p, size_t n, size_t k)
{
	memcpy(s->held, p + n - k, k);
	s->nheld = k;
}

void bulkscan_feed(struct bulkscan *s, uint8_t *in, size_t n,
		   const uint8_t **ret_p, size_t *ret_n, bool *ret_ended)
{
	uint8_t *p = in - s->nheld, *m;
	size_t len = n + s->nheld, k;

	*ret_p = in;
	*ret_n = 0;
	*ret_ended = false;
	if (s->st == BULKSCAN_IDLE)
		return;
	memcpy(p, s->held, s->nheld);
	s->nheld = 0;
	if (s->st == BULKSCAN_WAIT_START) {
		m = memmem(p, len, s->start, AW_BULK_MARK_LEN);
		if (!m) {
			hold_tail(s, p, len, partial_mark(p, len, s->start));
			return;
		}
		s->st = BULKSCAN_FORWARD;
		len -= (size_t)(m - p) + AW_BULK_MARK_LEN;
		p = m + AW_BULK_MARK_LEN;
	}
	*ret_p = p;
	m = memmem(p, len, s->end, AW_BULK_MARK_LEN);
	if (m) {
		*ret_n = (size_t)(m - p);
		*ret_ended = true;
		bulkscan_idle(s);
		return;
	}
	k = partial_mark(p, len, s->end);
	*ret_n = len - k;
	hold_tail(s, p, len, k);
}

/* The first byte is 0xff, never in UTF-8 text: a line of text can then
 * never end like the start of a marker and be held back. */
#define MARK_FIRST 0xffu

int bulkscan_new_marks(uint8_t start[AW_BULK_MARK_LEN],
		       uint8_t end[AW_BULK_MARK_LEN])
{
	uint8_t buf[2 * AW_BULK_MARK_LEN];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t r = getrandom(buf + got, sizeof(buf) - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		got += (size_t)r;
	}
	buf[0] = buf[AW_BULK_MARK_LEN] = MARK_FIRST;
	memcpy(start, buf, AW_BULK_MARK_LEN);
	memcpy(end, buf + AW_BULK_MARK_LEN, AW_BULK_MARK_LEN);
	/* 2^-120: but the agent refuses equal markers, so never send them. */
	return memcmp(start, end, AW_BULK_MARK_LEN) ? 0 : -EAGAIN;
}
