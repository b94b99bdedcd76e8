// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the 9P2000.L codec (common/ninep.c): the input is
 * a stream of messages as the guest would send them. Each is framed with
 * ninep_msg_size() and decoded; every decoded string is read whole (ASan
 * sees an overrun), and a reply is built from the decoded fields into a
 * buffer of msize, as the server does. Built and run by
 * test/fuzz/run-ninep-fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ninep.h"

#define MSIZE 8192u

static volatile size_t sink;

static void touch(const struct ninep_str *s)
{
	for (size_t i = 0; i < s->len; i++)
		sink += (unsigned char)s->p[i];
	sink += ninep_name_ok(s);
}

static void reply(const struct ninep_req *q, uint8_t *out)
{
	struct ninep_out o;
	struct ninep_qid qid = {NINEP_QTFILE, q->mode, q->offset};
	size_t base;

	ninep_reply_begin(&o, out, MSIZE, (uint8_t)(q->type + 1), q->tag);
	ninep_put_u32(&o, 0);
	base = o.len;
	for (uint16_t i = 0; i < q->nwname; i++)
		if (!ninep_put_dirent(&o, base, q->count, &qid, i, 0,
				      q->wname[i].p, q->wname[i].len))
			break;
	ninep_put_str(&o, q->name.p, q->name.len);
	if (q->data)
		ninep_put_str(&o, (const char *)q->data,
			      q->count > 4096 ? 4096 : q->count);
	sink += (size_t)ninep_reply_end(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = malloc(MSIZE);
	struct ninep_req q;
	uint32_t n;

	while (out && size >= 4 && ninep_msg_size(data, size, MSIZE, &n) == 0 &&
	       n <= size) {
		/* A copy of exactly n bytes, so reading past it is caught. */
		uint8_t *msg = malloc(n);

		if (!msg)
			break;
		memcpy(msg, data, n);
		if (ninep_decode(msg, n, MSIZE, &q) == 0) {
			touch(&q.name);
			touch(&q.name2);
			for (uint16_t i = 0; i < q.nwname; i++)
				touch(&q.wname[i]);
			for (uint32_t i = 0; q.data && i < q.count; i++)
				sink += q.data[i];
			reply(&q, out);
		}
		sink += ninep_rlerror(out, q.tag, 5);
		free(msg);
		data += n;
		size -= n;
	}
	free(out);
	return 0;
}
