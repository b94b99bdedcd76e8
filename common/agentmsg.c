// SPDX-License-Identifier: MIT
/*
 * agentmsg: the shapes of the agent's frames as a table, one decoder and
 * one encoder that follow it (agentmsg.h).
 */
#include "agentmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum field { F_END = 0, F_A, F_B, F_B_BULK, F_TEXT, F_DATA };

struct shape {
	uint8_t type;
	bool in_session; /* a command's session, else 0 (the channel) */
	uint8_t field[3];
	uint32_t max_text;
};

static const struct shape shapes[] = {
    {AW_HELLO, false, {F_A, F_B, F_TEXT}, AW_MAX_AGENT_INFO},
    {AW_SETUP_OK, false, {F_END}, 0},
    {AW_SETUP_FAIL, false, {F_A, F_TEXT}, AW_MAX_AGENT_MSG},
    {AW_STARTED, true, {F_A, F_B_BULK}, 0},
    {AW_EXEC_FAIL, true, {F_A, F_TEXT}, AW_MAX_AGENT_MSG},
    {AW_STDOUT, true, {F_DATA}, 0},
    {AW_STDERR, true, {F_DATA}, 0},
    {AW_CREDIT, true, {F_A}, 0},
    {AW_EXIT, true, {F_A, F_B}, 0},
    {AW_ERROR, false, {F_TEXT}, AW_MAX_AGENT_MSG},
    {AW_CKPT_OK, false, {F_A}, 0},
    {AW_CKPT_REFUSED, false, {F_A, F_B, F_TEXT}, AW_MAX_AGENT_MSG},
};

/* The agent's frame types; NULL for the host's own (SETUP, EXEC, STDIN,
 * SIGNAL, SHUTDOWN, CKPT_PREPARE, CKPT_RESUME) and unknown ones. */
static const struct shape *shape_of(uint8_t type)
{
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		if (shapes[i].type == type)
			return &shapes[i];
	return NULL;
}

static bool is_ckpt_request(uint32_t t)
{
	return t == AW_CKPT_PREPARE || t == AW_CKPT_RESUME;
}

/* The numbers that have a range of their own. */
static bool ranges_ok(const struct aw_agent_msg *m)
{
	switch (m->type) {
	case AW_CREDIT:
		return m->a <= AW_WINDOW;
	case AW_EXIT:
		return m->a <= AW_EXIT_SIGNAL && m->b <= 255;
	case AW_CKPT_OK:
	case AW_CKPT_REFUSED:
		return is_ckpt_request(m->a);
	default:
		return true;
	}
}

static void read_field(struct aw_reader *r, enum field f, const struct shape *s,
		       bool bulk, struct aw_agent_msg *m)
{
	switch (f) {
	case F_A:
		m->a = aw_get_u32(r);
		break;
	case F_B_BULK:
		if (!bulk)
			break;
		/* fall through */
	case F_B:
		m->b = aw_get_u32(r);
		break;
	case F_TEXT:
		m->text = aw_get_str(r, s->max_text);
		break;
	case F_DATA:
		m->data = r->p;
		m->len = r->left;
		r->p += r->left;
		r->left = 0;
		break;
	case F_END:
		break;
	}
}

int aw_agent_msg_decode(const struct aw_hdr *h, const uint8_t *p, bool bulk,
			struct aw_agent_msg *ret)
{
	const struct shape *s = shape_of(h->type);
	struct aw_agent_msg m = {.type = h->type, .session = h->session};
	struct aw_reader r;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (!s || s->in_session != (h->session != 0) ||
	    h->len > AW_MAX_AGENT_PAYLOAD)
		return -EPROTO;
	aw_reader_init(&r, p, h->len);
	for (size_t i = 0; i < sizeof(s->field) && s->field[i] != F_END; i++)
		read_field(&r, s->field[i], s, bulk, &m);
	err = r.err ? r.err : aw_reader_done(&r);
	if (err == 0 && !ranges_ok(&m))
		err = -EPROTO;
	if (err < 0) {
		aw_agent_msg_clear(&m);
		return err;
	}
	*ret = m;
	return 0;
}

static int put_field(struct aw_buf *b, enum field f, const struct shape *s,
		     bool bulk, const struct aw_agent_msg *m)
{
	const char *t = m->text ? m->text : "";

	switch (f) {
	case F_A:
		return aw_put_u32(b, m->a);
	case F_B_BULK:
		if (!bulk)
			return 0;
		/* fall through */
	case F_B:
		return aw_put_u32(b, m->b);
	case F_TEXT:
		return strlen(t) > s->max_text ? -EINVAL : aw_put_str(b, t);
	case F_DATA:
		return m->len > AW_MAX_AGENT_PAYLOAD
			   ? -EINVAL
			   : aw_put_bytes(b, m->data, m->len);
	case F_END:
		break;
	}
	return 0;
}

int aw_agent_msg_encode(const struct aw_agent_msg *m, bool bulk,
			struct aw_buf *b)
{
	const struct shape *s = shape_of(m->type);
	int r = 0;

	if (!s || s->in_session != (m->session != 0) || !ranges_ok(m))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(s->field) && s->field[i] != F_END; i++)
		if ((r = put_field(b, s->field[i], s, bulk, m)) < 0)
			return r;
	return 0;
}

void aw_agent_msg_clear(struct aw_agent_msg *m)
{
	free(m->text);
	memset(m, 0, sizeof(*m));
}
