// SPDX-License-Identifier: MIT
/*
 * vmenv-agent: frames to the host. Above the port (channel.c), below
 * everything that answers the host (main.c, session.c, setup.c, ckpt.c).
 * A frame that cannot be queued marks the port broken: the host then sees
 * it reset rather than a stream with a frame missing.
 */
#include "agent.h"

#include <string.h>

void agent_send(struct agent *a, uint8_t type, uint32_t session, const void *p,
		size_t len)
{
	uint8_t *dst = chan_reserve(&a->ch, len);

	if (!dst)
		return;
	if (len)
		memcpy(dst, p, len);
	chan_commit(&a->ch, type, session, len);
}

void agent_send_buf(struct agent *a, uint8_t type, uint32_t session,
		    struct aw_buf *b, int r)
{
	if (r < 0)
		a->ch.broken = true;
	else
		agent_send(a, type, session, b->data, b->len);
	aw_buf_free(b);
}

void agent_send_u32(struct agent *a, uint8_t type, uint32_t session, uint32_t v)
{
	struct aw_buf b = {0};

	agent_send_buf(a, type, session, &b, aw_put_u32(&b, v));
}

void agent_send_u32x2(struct agent *a, uint8_t type, uint32_t session,
		      uint32_t v1, uint32_t v2)
{
	struct aw_buf b = {0};
	int r;

	r = aw_put_u32(&b, v1);
	r = r ?: aw_put_u32(&b, v2);
	agent_send_buf(a, type, session, &b, r);
}

void agent_send_fail(struct agent *a, uint8_t type, uint32_t session, int err,
		     const char *msg)
{
	struct aw_buf b = {0};
	int r;

	r = aw_put_u32(&b, (uint32_t)err);
	r = r ?: aw_put_str(&b, msg);
	agent_send_buf(a, type, session, &b, r);
}
