// SPDX-License-Identifier: MIT
/*
 * agentwire v3: sessions that outlive the host's connection (vmmd
 * restarted; docs/restart.md). What a session sent and the host did not
 * yet credit is kept here; a new host names what the step's task holds,
 * and the rest is sent again. Nothing is sent twice to the task: the host
 * credits only what it put where the task reads it.
 */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The host went away: every session waits for the next one. */
void sessions_detach(struct agent *a)
{
	for (int i = 0; i < AGENT_MAX_SESSIONS; i++)
		if (a->sessions[i].active)
			a->sessions[i].detached = true;
}

static void send_resumed(struct agent *a, const struct session *s, uint32_t id,
			 int err)
{
	struct aw_buf b = {0};
	int r = aw_put_u32(&b, (uint32_t)err);

	if (!r)
		r = aw_put_i64(&b, s ? (int64_t)s->in_got : 0);
	if (!r)
		r = aw_put_u32(&b, s && s->in_eof_got ? 1 : 0);
	if (!r)
		r = aw_put_u32(&b, s ? AW_WINDOW - (uint32_t)s->in_len : 0);
	agent_send_buf(a, AW_RESUMED, id, &b, r);
}

/* What the task does not hold goes again, within the session's window
 * (all of it: it was in flight before). */
static void replay(struct agent *a, struct session *s)
{
	uint32_t total = 0;

	for (size_t o = s->held_off; o < s->held.len;) {
		const uint8_t *r = s->held.data + o;
		uint32_t len = held_rec_len(r);

		for (uint32_t d = 0; d < len; d += AGENT_OUT_FRAME) {
			uint32_t n = len - d < AGENT_OUT_FRAME
					 ? len - d
					 : AGENT_OUT_FRAME;
			agent_send(a,
				   r[0] == STREAM_OUT ? AW_STDOUT : AW_STDERR,
				   s->id, r + HELD_REC_HDR + d, n);
		}
		total += len;
		o += HELD_REC_HDR + len;
	}
	s->window = AW_WINDOW - total;
	for (int k = 0; k < STREAM_N; k++)
		if (s->eof_sent[k])
			agent_send(a, k == STREAM_OUT ? AW_STDOUT : AW_STDERR,
				   s->id, NULL, 0);
}

int session_resume(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct session *s = session_find(a, h->session);
	struct aw_reader r;
	uint64_t off[STREAM_N];

	aw_reader_init(&r, p, h->len);
	off[STREAM_OUT] = (uint64_t)aw_get_i64(&r);
	off[STREAM_ERR] = (uint64_t)aw_get_i64(&r);
	if (aw_reader_done(&r) < 0)
		return agent_proto_error(a, "malformed RESUME");
	if (!s || !s->detached) {
		send_resumed(a, NULL, h->session, ENOENT);
		return 0;
	}
	for (int k = 0; k < STREAM_N; k++) {
		if (s->held_lost || off[k] > s->sent[k] ||
		    off[k] < s->sent[k] - s->held_n[k]) {
			agent_log("session %u: cannot resume: the task holds "
				  "%llu bytes of stream %d, %llu were sent, "
				  "%u kept",
				  s->id, (unsigned long long)off[k], k,
				  (unsigned long long)s->sent[k], s->held_n[k]);
			send_resumed(a, NULL, h->session, ERANGE);
			return 0;
		}
	}
	if (held_trim(s, off) < 0) {
		send_resumed(a, NULL, h->session, ENOMEM);
		return 0;
	}
	s->detached = false;
	send_resumed(a, s, s->id, 0);
	replay(a, s);
	agent_log("session %u resumed: %u bytes of output sent again", s->id,
		  s->held_n[STREAM_OUT] + s->held_n[STREAM_ERR]);
	if (s->exit_sent)
		session_send_exit(a, s);
	else
		session_check_done(a, s);
	return 0;
}

int session_release(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct session *s = session_find(a, h->session);

	(void)p;
	if (h->len != 0)
		return agent_proto_error(a, "malformed RELEASE");
	if (!s)
		return 0;
	if (!s->exited)
		session_kill(s, SIGKILL);
	session_free(s);
	return 0;
}
