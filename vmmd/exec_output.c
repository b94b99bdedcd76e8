/* SPDX-License-Identifier: MIT */
/*
 * A session's streams (exec_priv.h): the command's output from the agent
 * (or its bulk port) to the task's pipes, and the task's stdin to the
 * agent, each within its window, so a slow reader or writer never stalls
 * the guest's other sessions.
 */
#include "exec_priv.h"

#include "agent.h"
#include "bulk.h"
#include "jobrec.h"
#include "log.h"
#include "stray.h"
#include "vmmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define EXEC_CHUNK (32u * 1024u)
/* Return window to the agent in chunks, not per frame. */
#define EXEC_CREDIT_BATCH (AW_WINDOW / 8)
/* Output from a bulk port queued toward a slow task before vmmd stops
 * reading the port (and QEMU the guest's writer). */
#define EXEC_BULK_QUEUE (1024u * 1024u)

/* --- output: agent -> task ------------------------------------------- */

void exec_give_credit(struct exec_session *s, uint32_t n, bool force)
{
	struct aw_buf b = {0};

	s->credit_pending += n;
	if (!s->credit_pending ||
	    (!force && s->credit_pending < EXEC_CREDIT_BATCH))
		return;
	if (aw_put_u32(&b, s->credit_pending) == 0 &&
	    agent_send(s->j, AW_CREDIT, s->id, b.data, b.len) == 0)
		s->credit_pending = 0;
	aw_buf_free(&b);
}

void exec_maybe_finish(struct exec_session *s)
{
	/* A detached session keeps its exit for the task that re-attaches. */
	if (!s->exit_seen || s->out[0].q.len || s->out[1].q.len ||
	    s->st == S_DETACHED || s->bulk_open)
		return;
	exec_sess_end(s, NULL);
}

/* Writes what it can; the rest waits for EPOLLOUT. Returns the number of
 * bytes that left the queue (to be credited). */
static size_t out_flush(struct exec_session *s, struct out_stream *o)
{
	size_t done = 0;

	/* No task yet: the output waits for the one that re-attaches. */
	if (o->fd < 0 && s->st == S_DETACHED)
		return 0;
	while (o->off < o->q.len && !o->broken) {
		ssize_t n = write(o->fd, o->q.data + o->off, o->q.len - o->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			log_debug("job %u: session %u: output lost: %m",
				  s->j->id, s->id);
			o->broken = true;
			break;
		}
		o->off += (size_t)n;
		done += (size_t)n;
		s->written[o == &s->out[OUT_STDERR]] += (uint64_t)n;
	}
	if (o->broken) {
		done += o->q.len - o->off;
		o->off = o->q.len;
	}
	if (o->off == o->q.len) {
		o->q.len = o->off = 0;
		loop_del_fd(o->w);
		o->w = NULL;
	} else if (!o->w && loop_add_fd(s->j->d->loop, o->fd, EPOLLOUT,
					exec_out_ready, s, &o->w) < 0) {
		o->broken = true;
	}
	return done;
}

void exec_out_ready(void *data, uint32_t events)
{
	struct exec_session *s = data;
	size_t n = 0;

	(void)events;
	for (int i = 0; i < 2; i++) {
		size_t done = out_flush(s, &s->out[i]);

		n += s->out[i].bulk ? 0 : done;
	}
	s->inflight -= (uint32_t)n;
	exec_give_credit(s, (uint32_t)n, s->inflight == 0);
	if (s->bulk_port >= 0 &&
	    s->out[OUT_STDOUT].q.len - s->out[OUT_STDOUT].off < EXEC_BULK_QUEUE)
		bulk_resume(s->j, (uint32_t)s->bulk_port);
	exec_maybe_finish(s);
}

/* Bulk ports (bulk.h): output of session s read from its port. Returns
 * false when its queue toward the task is full: the port is then not read
 * until bulk_resume(). */
static bool bulk_output(void *ctx, const uint8_t *p, size_t n)
{
	struct exec_session *s = ctx;
	struct out_stream *o = &s->out[OUT_STDOUT];

	if (!s->j->t_first_output)
		s->j->t_first_output = now_ms();
	s->j->bulk_bytes += n;
	if (o->broken)
		return true; /* the task is gone: drop, keep the guest going */
	/* A task that keeps up only partly never empties the queue: what it
	 * took goes, so the buffer stays within twice the bound. */
	if (o->off && o->off >= o->q.len / 2) {
		memmove(o->q.data, o->q.data + o->off, o->q.len - o->off);
		o->q.len -= o->off;
		o->off = 0;
	}
	if (aw_put_bytes(&o->q, p, n) < 0) {
		log_err("job %u: session %u: output lost: out of memory",
			s->j->id, s->id);
		o->broken = true;
		return true;
	}
	out_flush(s, o);
	return o->q.len - o->off < EXEC_BULK_QUEUE;
}

/* The port's end marker came: all of s's output is in (may end s). */
static void bulk_end(void *ctx)
{
	struct exec_session *s = ctx;

	s->bulk_port = -1;
	s->bulk_open = false;
	exec_maybe_finish(s);
}

const struct bulk_sink exec_bulk_to_session = {
    .output = bulk_output,
    .end = bulk_end,
};

int exec_on_output(struct exec_session *s, int which, const uint8_t *p,
		   size_t n)
{
	struct out_stream *o = &s->out[which];
	size_t done;

	/* Nothing comes after a stream's EOF: a guest that sends more makes
	 * vmmd work outside any window. */
	if (s->eof_seen[which])
		return stray_frame(&s->j->stray, (uint32_t)n, now_ms());
	if (o->fd < 0 && (s->st != S_DETACHED || s->req.exec.merge_stderr))
		o = &s->out[OUT_STDOUT]; /* merged */
	if (n == 0) {
		s->eof_seen[which] = true;
		o->eof = true;
		return 0;
	}
	if (!s->j->t_first_output)
		s->j->t_first_output = now_ms();
	s->inflight += (uint32_t)n;
	/* The agent must respect the window: more is a broken guest. */
	if (s->inflight > AW_WINDOW)
		return -EPROTO;
	if (aw_put_bytes(&o->q, p, n) < 0)
		return -ENOMEM;
	done = out_flush(s, o);
	s->inflight -= (uint32_t)done;
	exec_give_credit(s, (uint32_t)done, s->inflight == 0);
	return 0;
}

/* --- input: task -> agent -------------------------------------------- */

static void in_ready(void *data, uint32_t events);

static void in_file_tick(void *data);
static void in_eof(struct exec_session *s);

/* A regular file is always readable and epoll refuses it: it is read from
 * a zero-delay timer instead, one chunk per loop turn, so a large file
 * never holds up other sessions. */
static void in_file_schedule(struct exec_session *s)
{
	if (s->in_tick || s->in_fd < 0 || s->in_window == 0)
		return;
	s->in_tick = loop_add_timer(s->j->d->loop, 0, in_file_tick, s);
	if (!s->in_tick)
		in_eof(s);
}

void exec_in_pause(struct exec_session *s, bool pause)
{
	if (s->in_file) {
		if (!pause)
			in_file_schedule(s);
		return;
	}
	if (!s->in_w || s->in_paused == pause)
		return;
	s->in_paused = pause;
	loop_mod_fd(s->in_w, pause ? 0 : EPOLLIN);
}

static void in_eof(struct exec_session *s)
{
	agent_send(s->j, AW_STDIN, s->id, NULL, 0);
	loop_del_fd(s->in_w);
	s->in_w = NULL;
	loop_cancel_timer(s->in_tick);
	s->in_tick = NULL;
	s->in_file = false;
	close_fd(&s->in_fd);
}

static void in_ready(void *data, uint32_t events)
{
	struct exec_session *s = data;
	uint8_t buf[EXEC_CHUNK];
	size_t want = s->in_window < sizeof(buf) ? s->in_window : sizeof(buf);
	ssize_t n;

	(void)events;
	/* Nothing goes to a guest being checkpointed: it would be lost with
	 * the channel; exec_ckpt_resumed() reads on. */
	if (want == 0 || s->j->exec_held) {
		exec_in_pause(s, true);
		return;
	}
	n = read(s->in_fd, buf, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		in_eof(s);
		return;
	}
	if (agent_send(s->j, AW_STDIN, s->id, buf, (size_t)n) < 0) {
		in_eof(s);
		return;
	}
	s->in_window -= (uint32_t)n;
	if (s->in_window == 0)
		exec_in_pause(s, true);
	else if (s->in_file)
		in_file_schedule(s);
}

static void in_file_tick(void *data)
{
	struct exec_session *s = data;

	s->in_tick = NULL;
	in_ready(s, EPOLLIN);
}

int exec_on_credit(struct exec_session *s, const uint8_t *p, size_t n)
{
	struct aw_reader r;
	uint32_t c;

	aw_reader_init(&r, p, n);
	c = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0 || c > AW_WINDOW - s->in_window)
		return -EPROTO;
	if (c == 0)
		return stray_frame(&s->j->stray, (uint32_t)n, now_ms());
	s->in_window += c;
	exec_in_pause(s, false);
	return 0;
}

/* Reading the task's stdin toward the agent, within the window. */
void exec_stdin_start(struct exec_session *s)
{
	int r;

	if (s->in_fd < 0)
		return;
	r = loop_add_fd(s->j->d->loop, s->in_fd, EPOLLIN, in_ready, s,
			&s->in_w);
	if (r == -EPERM) {
		s->in_file = true;
		in_file_schedule(s);
	} else if (r < 0) {
		in_eof(s);
	}
}
