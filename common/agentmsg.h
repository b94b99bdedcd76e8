/* SPDX-License-Identifier: MIT */
/*
 * agentmsg: every frame the agent sends, decoded for the host in one pure
 * function, by its header and payload, against the shapes agentwire.h
 * gives: exact lengths (trailing bytes are an error), strings bounded and
 * checked before any allocation, no NUL inside, numbers in their ranges,
 * the session each type belongs to (0 or a command's), and the types only
 * the host sends refused. What is left to the caller is what needs its
 * state: the protocol version it offered, whether a session exists and in
 * which phase, the window it granted.
 *
 * No I/O, no logging, no state: compiled into vmmd's library and fuzzed on
 * its own (test/fuzz/fuzz_wire.c, selector 6: what decodes encodes again
 * to the very same bytes). The encoder is the agent's side of the same
 * shapes.
 */
#ifndef VMENV_AGENTMSG_H
#define VMENV_AGENTMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"

/* Longest string in each frame that carries one. */
#define AW_MAX_AGENT_INFO 256u	/* HELLO's description of the agent */
#define AW_MAX_AGENT_MSG  1024u /* SETUP_FAIL, EXEC_FAIL, ERROR, CKPT_REFUSED */

struct aw_agent_msg {
	uint8_t type;
	uint32_t session;
	/* By type:
	 *   HELLO         a version, b flags (AW_HELLO_*), text info
	 *   SETUP_FAIL    a errno, text
	 *   STARTED       a pid, b the bulk port's errno (bulk sessions)
	 *   EXEC_FAIL     a errno, text
	 *   STDOUT/ERR    data, len (0: EOF)
	 *   CREDIT        a bytes (<= AW_WINDOW)
	 *   EXIT          a kind (enum aw_exit_kind), b code or signal (<= 255)
	 *   ERROR         text
	 *   CKPT_OK       a the request's type (CKPT_PREPARE or CKPT_RESUME)
	 *   CKPT_REFUSED  a the request's type, b errno, text
	 *   SETUP_OK      nothing */
	uint32_t a, b;
	char *text;	     /* malloc'ed, NUL-terminated; NULL when none */
	const uint8_t *data; /* into the payload given to the decoder */
	size_t len;
};

/* h as aw_hdr_decode gave it, p its h->len payload bytes; bulk: the
 * session's EXEC asked for a bulk port (STARTED then has two numbers).
 * 0 and *ret filled (free with aw_agent_msg_clear), or -EPROTO / -ENOMEM
 * with *ret empty. */
int aw_agent_msg_decode(const struct aw_hdr *h, const uint8_t *p, bool bulk,
			struct aw_agent_msg *ret);
/* The payload of m (not the header), as the decoder takes it; -EINVAL for
 * what it would refuse. */
int aw_agent_msg_encode(const struct aw_agent_msg *m, bool bulk,
			struct aw_buf *b);
void aw_agent_msg_clear(struct aw_agent_msg *m);

#endif
