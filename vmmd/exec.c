/* SPDX-License-Identifier: MIT */
#include "exec.h"
#include "exec_priv.h"

#include "agent.h"
#include "bulk.h"
#include "cleanup.h"
#include "digest.h"
#include "jobrec.h"
#include "log.h"
#include "stray.h"
#include "userfd.h"
#include "vmmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define EXEC_MAX_SCRIPT (8u * 1024u * 1024u)
#define EXEC_CHUNK	(32u * 1024u)
#define EXEC_PIPE_SIZE	(1 << 20)
/* Return window to the agent in chunks, not per frame. */
#define EXEC_CREDIT_BATCH (AW_WINDOW / 8)
/* Output from a bulk port queued toward a slow task before vmmd stops
 * reading the port (and QEMU the guest's writer). */
#define EXEC_BULK_QUEUE (1024u * 1024u)
/* After its EXEC, a task only ever sends SIGNAL (a few dozen bytes): a
 * longer message is not buffered but ends the session. */
#define EXEC_MAX_CLIENT_MSG 4096

uint32_t exec_count(const struct job *j)
{
	uint32_t n = 0;

	for (const struct exec_session *s = j->sessions; s; s = s->next)
		n++;
	return n;
}

void exec_reply_event(struct exec_session *s, enum proto_kind kind,
		      const char *error)
{
	struct proto_reply rep = {.kind = kind};

	if (error)
		snprintf(rep.error, sizeof(rep.error), "%s", error);
	if (kind == PROTO_EV_EXIT) {
		rep.exit_signaled = s->exit_signaled;
		rep.exit_value = s->exit_value;
	}
	if (s->cfd >= 0 && proto_send_reply(s->cfd, &rep) < 0)
		log_debug("job %u: session %u: client gone before the reply",
			  s->j->id, s->id);
}

void exec_sess_end(struct exec_session *s, const char *error)
{
	exec_reply_event(s, error ? PROTO_EV_ERROR : PROTO_EV_EXIT, error);
	exec_sess_free(s);
}

static void sess_unlink(struct exec_session *s)
{
	for (struct exec_session **p = &s->j->sessions; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			return;
		}
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The guest may still send for a session vmmd ends while its command runs
 * (the task went away): what its windows allow, no more (stray.h). */
static void sess_remember(const struct exec_session *s)
{
	uint32_t owed = s->inflight + s->credit_pending;

	if ((s->st != S_RUNNING && s->st != S_DETACHED) || s->exit_seen)
		return;
	stray_session_ended(&s->j->stray, s->id,
			    owed < AW_WINDOW ? AW_WINDOW - owed : 0,
			    AW_WINDOW - s->in_window);
}

void exec_sess_free(struct exec_session *s)
{
	/* Its task has the end (or is gone): the agent forgets it. */
	if (s->release)
		agent_send(s->j, AW_RELEASE, s->id, NULL, 0);
	exec_record_remove(s);
	loop_cancel_timer(s->reattach_timer);
	close_fd(&s->file_fd);
	sess_remember(s);
	if (s->bulk_port >= 0)
		bulk_release(s->j, (uint32_t)s->bulk_port, 0);
	sess_unlink(s);
	loop_del_fd(s->cw);
	loop_del_fd(s->in_w);
	loop_cancel_timer(s->in_tick);
	for (int i = 0; i < 2; i++) {
		loop_del_fd(s->out[i].w);
		aw_buf_free(&s->out[i].q);
		close_fd(&s->out[i].fd);
	}
	close_fd(&s->cfd);
	close_fd(&s->in_fd);
	close_fd(&s->script_fd);
	proto_rx_reset(&s->rx);
	proto_request_clear(&s->req);
	if (s->replay_path)
		unlink(s->replay_path);
	free(s->replay_path);
	free(s);
}

struct exec_session *exec_sess_find(struct job *j, uint32_t id)
{
	for (struct exec_session *s = j->sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* --- output: agent -> task ------------------------------------------- */

static void give_credit(struct exec_session *s, uint32_t n, bool force)
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

static void maybe_finish(struct exec_session *s)
{
	/* A detached session keeps its exit for the task that re-attaches. */
	if (!s->exit_seen || s->out[0].q.len || s->out[1].q.len ||
	    s->st == S_DETACHED || s->bulk_open)
		return;
	exec_sess_end(s, NULL);
}

static void out_ready(void *data, uint32_t events);

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
					out_ready, s, &o->w) < 0) {
		o->broken = true;
	}
	return done;
}

static void out_ready(void *data, uint32_t events)
{
	struct exec_session *s = data;
	size_t n = 0;

	(void)events;
	for (int i = 0; i < 2; i++) {
		size_t done = out_flush(s, &s->out[i]);

		n += s->out[i].bulk ? 0 : done;
	}
	s->inflight -= (uint32_t)n;
	give_credit(s, (uint32_t)n, s->inflight == 0);
	if (s->bulk_port >= 0 &&
	    s->out[OUT_STDOUT].q.len - s->out[OUT_STDOUT].off < EXEC_BULK_QUEUE)
		bulk_resume(s->j, (uint32_t)s->bulk_port);
	maybe_finish(s);
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
	maybe_finish(s);
}

static const struct bulk_sink bulk_to_session = {
    .output = bulk_output,
    .end = bulk_end,
};

static int on_output(struct exec_session *s, int which, const uint8_t *p,
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
	give_credit(s, (uint32_t)done, s->inflight == 0);
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

static void in_pause(struct exec_session *s, bool pause)
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
		in_pause(s, true);
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
		in_pause(s, true);
	else if (s->in_file)
		in_file_schedule(s);
}

static void in_file_tick(void *data)
{
	struct exec_session *s = data;

	s->in_tick = NULL;
	in_ready(s, EPOLLIN);
}

static int on_credit(struct exec_session *s, const uint8_t *p, size_t n)
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
	in_pause(s, false);
	return 0;
}

/* --- launching -------------------------------------------------------- */

static int read_script(struct exec_session *s, struct aw_exec *e)
{
	char *text = NULL;
	size_t len = 0;
	int r = read_fd_limited(s->script_fd, EXEC_MAX_SCRIPT, &text, &len);

	close_fd(&s->script_fd);
	if (r < 0)
		return r;
	if (memchr(text, '\0', len)) {
		free(text);
		return -EINVAL;
	}
	e->script = text;
	e->script_len = (uint32_t)len;
	return 0;
}

static int encode_exec(struct exec_session *s, struct aw_buf *b)
{
	const struct job *j = s->j;
	struct aw_exec e = {
	    .uid = (uint32_t)j->uid,
	    .gid = (uint32_t)j->gid,
	    .ngroups = j->ngroups,
	    .cwd = s->req.exec.cwd,
	    .argc = (uint32_t)s->req.exec.argc,
	    .argv = s->req.exec.argv,
	    .envc = (uint32_t)s->req.exec.envc,
	    .envp = s->req.exec.envp,
	};
	int r = 0;

	for (uint32_t i = 0; i < j->ngroups; i++)
		e.groups[i] = (uint32_t)j->groups[i];
	if (s->req.exec.merge_stderr)
		e.flags |= AW_EXEC_MERGE_STDERR;
	if (s->in_fd >= 0)
		e.flags |= AW_EXEC_STDIN;
	if (s->req.exec.script) {
		e.flags |= AW_EXEC_SCRIPT;
		r = read_script(s, &e);
	}
	/* A bulk port's stream cannot be taken over by a restarted vmmd:
	 * where steps must survive one, output goes through the agent unless
	 * the task asked for a port (VMENV_EXEC_BULK=1). */
	if (r == 0 && j->agent_bulk && !s->req.exec.relay &&
	    (s->req.exec.bulk || !j->agent_resume ||
	     strcmp(j->d->cfg.session_restarts, "yes") != 0) &&
	    bulk_claim(s->j, &bulk_to_session, s, &e) == 0) {
		s->bulk_port = (int)e.bulk_port;
		s->bulk_open = true;
		s->bulk_asked = true;
		s->out[OUT_STDOUT].bulk = true;
	}
	if (r == 0)
		r = aw_exec_encode(&e, b);
	free(e.script);
	return r;
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

static void launch(struct exec_session *s)
{
	struct aw_buf b = {0};
	char msg[PROTO_MAX_ERROR];
	int r = encode_exec(s, &b);

	/* The task learns the command is on its way before it can start
	 * (it must never send it again), and, where sessions outlive vmmd,
	 * how to come back. */
	if (r == 0 && s->j->agent_resume)
		r = exec_record_new(s);
	else if (r == 0)
		exec_session_event(s, NULL);
	if (r == 0)
		r = agent_send(s->j, AW_EXEC, s->id, b.data, b.len);
	aw_buf_free(&b);
	if (r < 0) {
		snprintf(msg, sizeof(msg),
			 "job %u: cannot send the command to "
			 "the guest: %s",
			 s->j->id,
			 r == -EFBIG ? "batch script too large" : strerror(-r));
		exec_sess_end(s, msg);
		return;
	}
	s->st = S_RUNNING;
	exec_stdin_start(s);
}

static bool attach_batch(struct job *j, struct exec_session *n);

static bool id_taken(const struct job *j, const struct exec_session *s)
{
	for (const struct exec_session *o = j->sessions; o; o = o->next)
		if (o != s && o->id == s->id)
			return true;
	return false;
}

/* Tasks that came while the guest was restored from a checkpoint got
 * their ids before the restored sessions were known: the batch step's
 * takes over the batch script's session, the others get ids the guest
 * does not use. */
void exec_job_ready(struct job *j)
{
	struct exec_session *s = j->sessions, *next;

	exec_restart_ready(j);
	s = j->sessions;
	for (; s; s = next) {
		next = s->next;
		if (s->st != S_WAITING)
			continue;
		if (s->batch && attach_batch(j, s))
			continue;
		if (id_taken(j, s))
			s->id = j->next_session++;
		launch(s);
	}
}

static void send_progress(struct exec_session *s,
			  const struct proto_progress *p)
{
	struct proto_reply rep = {.kind = PROTO_EV_PROGRESS, .progress = *p};

	/* The task may be gone already; its end comes through client_io. */
	if (s->cfd >= 0 && proto_send_reply(s->cfd, &rep) < 0)
		log_debug("job %u: session %u: progress not delivered",
			  s->j->id, s->id);
}

/* Every waiting task gets it: vmenv-exec shows it on the first task of
 * each step on the node only (SLURM_LOCALID 0), since the tasks of a
 * step share its output. */
void exec_job_progress(struct job *j, const struct proto_progress *p)
{
	for (struct exec_session *s = j->sessions; s; s = s->next)
		if (s->st == S_WAITING)
			send_progress(s, p);
}

void exec_job_forget(struct job *j)
{
	while (j->sessions) {
		struct exec_session *s = j->sessions;

		s->recorded = false; /* the next vmmd reads it */
		s->release = false;
		exec_sess_free(s);
	}
}

void exec_job_gone(struct job *j, const char *why)
{
	while (j->sessions)
		exec_sess_end(j->sessions, why);
}

/* --- frames from the agent -------------------------------------------- */

static int on_exec_fail(struct exec_session *s, const uint8_t *p, size_t n)
{
	struct aw_reader r;
	_cleanup_free_ char *m = NULL;
	char msg[PROTO_MAX_ERROR], safe[300], arg0[80];

	aw_reader_init(&r, p, n);
	(void)aw_get_u32(&r);
	m = aw_get_str(&r, 1024);
	s->exit_seen = true; /* nothing more comes for it */
	snprintf(msg, sizeof(msg), "job %u: cannot run '%s' in the guest: %s",
		 s->j->id, printable(s->req.exec.argv[0], arg0, sizeof(arg0)),
		 printable(m ? m : "unknown error", safe, sizeof(safe)));
	exec_sess_end(s, msg);
	return 0;
}

/* STARTED: u32 pid, and after a bulk EXEC whether the port is in use
 * (0) or why not: the output then comes through the agent. */
static int on_started(struct exec_session *s, const uint8_t *p, size_t n)
{
	struct aw_reader r;
	uint32_t err = 0;

	if (s->started_seen)
		return stray_frame(&s->j->stray, (uint32_t)n, now_ms());
	aw_reader_init(&r, p, n);
	(void)aw_get_u32(&r);
	if (s->bulk_asked)
		err = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0)
		return -EPROTO;
	s->started_seen = true;
	/* The agent could not use the port (then it wrote no end marker:
	 * the port is still open here). */
	if (err && s->bulk_open) {
		bulk_release(s->j, (uint32_t)s->bulk_port,
			     err < 4096 ? (int)err : EINVAL);
		s->bulk_port = -1;
		s->bulk_open = false;
		s->out[OUT_STDOUT].bulk = false;
		/* Through the agent after all: a restart can take it over. */
		exec_record_update(s);
	}
	exec_reply_event(s, PROTO_EV_STARTED, NULL);
	return 0;
}

static int on_exit_frame(struct exec_session *s, const uint8_t *p, size_t n)
{
	struct aw_reader r;
	uint32_t kind, value;

	aw_reader_init(&r, p, n);
	kind = aw_get_u32(&r);
	value = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0 || kind > AW_EXIT_SIGNAL || value > 255)
		return -EPROTO;
	s->exit_seen = true;
	s->release = s->j->agent_resume;
	s->exit_signaled = kind == AW_EXIT_SIGNAL;
	s->exit_value = (int)value;
	maybe_finish(s);
	return 0;
}

static int session_frame(struct exec_session *s, const struct aw_hdr *h,
			 const uint8_t *p)
{
	if (h->type == AW_RESUMED)
		return s->restarted && s->resume_sent
			   ? exec_on_resumed(s, p, h->len)
			   : -EPROTO;
	/* Found after a restart: nothing comes before RESUMED. */
	if (s->restarted)
		return -EPROTO;
	if ((s->st != S_RUNNING && s->st != S_DETACHED) || s->exit_seen)
		return -EPROTO;
	switch (h->type) {
	case AW_STARTED:
		return on_started(s, p, h->len);
	case AW_EXEC_FAIL:
		return on_exec_fail(s, p, h->len);
	case AW_STDOUT:
		return on_output(s, OUT_STDOUT, p, h->len);
	case AW_STDERR:
		return on_output(s, OUT_STDERR, p, h->len);
	case AW_CREDIT:
		return on_credit(s, p, h->len);
	case AW_EXIT:
		return on_exit_frame(s, p, h->len);
	default:
		return -EPROTO;
	}
}

int exec_on_frame(struct job *j, const struct aw_hdr *h, const uint8_t *p)
{
	struct exec_session *s = exec_sess_find(j, h->session);
	int r;

	/* Late frames of a session whose task went away are dropped, within
	 * what its window allows; a session never issued gets only the
	 * grace. */
	if (!s)
		return stray_session_frame(&j->stray, h->session, h->type, p,
					   h->len, now_ms());
	r = session_frame(s, h, p);
	/* Which frame, and what the session was: a broken guest and a bug
	 * of ours look the same from the job's side. */
	if (r == -EPROTO)
		log_warn("job %u: session %u: agent frame type %u (%u bytes) "
			 "refused: state %d, exit %s, in flight %u, stdin "
			 "window %u, bulk %s",
			 j->id, s->id, (unsigned)h->type, (unsigned)h->len,
			 (int)s->st, s->exit_seen ? "seen" : "not seen",
			 (unsigned)s->inflight, (unsigned)s->in_window,
			 s->bulk_open	 ? "open"
			 : s->bulk_asked ? "ended"
					 : "no");
	return r;
}

/* --- the task's connection -------------------------------------------- */

static void client_gone(struct exec_session *s)
{
	struct aw_buf b = {0};

	/* The task is gone (killed, or srun went away): so is its command,
	 * also one found after a restart whose task had come back. */
	bool live = s->st == S_RUNNING || s->restarted;

	if (live && aw_put_u32(&b, SIGKILL) == 0)
		agent_send(s->j, AW_SIGNAL, s->id, b.data, b.len);
	aw_buf_free(&b);
	s->release = live && (s->j->agent_resume || s->restarted);
	close_fd(&s->cfd);
	exec_sess_free(s);
}

static void on_client_msg(struct exec_session *s)
{
	struct proto_request req = {0};
	struct aw_buf b = {0};
	char err[128];

	if (proto_request_decode(s->rx.buf, s->rx.got, &req, err, sizeof(err)) <
		0 ||
	    req.op != PROTO_OP_SIGNAL) {
		proto_request_clear(&req);
		client_gone(s);
		return;
	}
	/* During a checkpoint the guest is frozen or gone: the SIGTERM Slurm
	 * sends at the requeue must not reach it. */
	if (s->st == S_RUNNING && !s->j->exec_held &&
	    aw_put_u32(&b, (uint32_t)req.signo) == 0)
		agent_send(s->j, AW_SIGNAL, s->id, b.data, b.len);
	aw_buf_free(&b);
	proto_request_clear(&req);
	proto_rx_reset(&s->rx);
}

static void client_io(void *data, uint32_t events)
{
	struct exec_session *s = data;
	int r;

	(void)events;
	r = proto_rx_feed(&s->rx, s->cfd);
	if (r == 0)
		return;
	if (r < 0 || s->rx.nfds) {
		client_gone(s);
		return;
	}
	on_client_msg(s);
}

/* A task's stdout is mostly a pipe to slurmstepd (srun) or to the
 * command the job pipes into: at 64 KiB (the default) vmmd wakes the
 * reader for every 64 KiB of a guest that writes hundreds of MB/s. */
static void widen_pipe(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
	    fcntl(fd, F_GETPIPE_SZ) < EXEC_PIPE_SIZE)
		(void)fcntl(fd, F_SETPIPE_SZ, EXEC_PIPE_SIZE);
}

static struct userfd_ids job_ids(const struct job *j)
{
	return (struct userfd_ids){.uid = j->uid,
				   .gid = j->gid,
				   .ngroups = j->ngroups,
				   .groups = j->groups};
}

/* The task shares its stdio with vmmd: non-blocking mode is taken on
 * private copies opened as the job's user (common/userfd.h), never as
 * root, never set on a description the task shares when avoidable. */
int exec_own_stdio(const struct exec_session *s, int *fds)
{
	struct userfd_ids ids = job_ids(s->j);
	int pick[3], modes[3], r;
	size_t idx[3], n = 0;

	if (s->req.exec.want_stdin)
		idx[n] = 0, modes[n++] = O_RDONLY;
	idx[n] = 1, modes[n++] = O_WRONLY;
	if (!s->req.exec.merge_stderr)
		idx[n] = 2, modes[n++] = O_WRONLY;
	for (size_t i = 0; i < n; i++)
		pick[i] = fds[idx[i]];
	if ((r = userfd_own_nonblock(&ids, pick, modes, n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		fds[idx[i]] = pick[i];
	return 0;
}

/* The batch script is read on vmmd's loop: only a regular file of a
 * bounded size, opened for reading, and not on FUSE (whose server, any
 * user's process, could make the read block vmmd for every job). */
static int check_script_fd(int fd)
{
	struct stat st;
	struct statfs sf;
	int r;

	if ((r = userfd_check(fd, O_RDONLY)) < 0)
		return r;
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sf) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || sf.f_type == FUSE_SUPER_MAGIC)
		return -EINVAL;
	return st.st_size > EXEC_MAX_SCRIPT ? -EFBIG : 0;
}

/* stdin, stdout, stderr are the task's pipes (docs/restart.md); a batch
 * step adds its script and its own stdout, the output file a checkpoint
 * copies. */
static int sess_setup_fds(struct exec_session *s, int *fds, size_t nfds)
{
	size_t want = 3 + (s->req.exec.script ? 2 : 0);
	int r;

	if (nfds != want)
		return -EINVAL;
	if ((r = exec_own_stdio(s, fds)) < 0 ||
	    (s->req.exec.script && (r = check_script_fd(fds[3])) < 0))
		return r;
	s->in_fd = fds[0];
	s->out[OUT_STDOUT].fd = fds[1];
	s->out[OUT_STDERR].fd = fds[2];
	s->script_fd = s->req.exec.script ? fds[3] : -1;
	s->file_fd = s->req.exec.script ? fds[4] : -1;
	if (!s->req.exec.want_stdin)
		close_fd(&s->in_fd);
	if (s->req.exec.merge_stderr)
		close_fd(&s->out[OUT_STDERR].fd);
	for (int i = 0; i < 2; i++)
		if (s->out[i].fd >= 0)
			widen_pipe(s->out[i].fd);
	return 0;
}

struct exec_session *exec_sess_new(struct job *j, uint32_t id)
{
	struct exec_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->j = j;
	s->id = id;
	s->cfd = s->in_fd = s->script_fd = s->file_fd = -1;
	s->out[0].fd = s->out[1].fd = -1;
	s->bulk_port = -1;
	s->in_window = AW_WINDOW;
	proto_rx_init(&s->rx);
	s->rx.max = EXEC_MAX_CLIENT_MSG;
	s->next = j->sessions;
	j->sessions = s;
	return s;
}

int exec_client_watch(struct exec_session *s)
{
	return loop_add_fd(s->j->d->loop, s->cfd, EPOLLIN, client_io, s,
			   &s->cw);
}

void exec_begin(struct vmmd *d, struct job *j, int cfd, uid_t peer_uid,
		struct proto_request *req, int *fds, size_t nfds,
		const struct proto_progress *progress)
{
	struct exec_session *s;
	char msg[PROTO_MAX_ERROR];
	int r;

	if (j->next_session == 0)
		j->next_session = 1;
	if (!(s = exec_sess_new(j, j->next_session++))) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		close(cfd);
		return;
	}
	s->cfd = cfd;
	s->owner = peer_uid;
	s->req = *req;
	memset(req, 0, sizeof(*req));
	/* This one is already counted. */
	if (exec_count(j) > AW_MAX_SESSIONS) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		snprintf(msg, sizeof(msg),
			 "job %u: too many commands running in the guest "
			 "(limit %u)",
			 j->id, AW_MAX_SESSIONS);
		exec_sess_end(s, msg);
		return;
	}
	if ((r = sess_setup_fds(s, fds, nfds)) < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		snprintf(msg, sizeof(msg),
			 "job %u: exec needs the task's stdin, stdout and "
			 "stderr, open for reading and writing: %s",
			 j->id, strerror(-r));
		exec_sess_end(s, msg);
		return;
	}
	s->batch = s->req.exec.script;
	if (attach_batch(j, s))
		return;
	if (exec_client_watch(s) < 0) {
		exec_sess_free(s);
		return;
	}
	if (j->state == JOB_READY)
		launch(s);
	else if (j->state == JOB_PREPARING && progress)
		send_progress(s, progress);
}

void exec_hold(struct job *j, bool held)
{
	j->exec_held = held;
}

/* --- checkpoints -------------------------------------------------------- */

/* The task's stdout is write-only: the copy for the checkpoint reads the
 * same file through a description of its own. */
/* The batch step's output file, read for the checkpoint as the job's
 * user: a descriptor the task sent is never opened again with root's
 * rights (it could name a file only root may read). */
static int reopen_read(const struct job *j, int fd)
{
	struct userfd_ids ids = job_ids(j);

	return userfd_reopen_read(&ids, fd);
}

bool exec_ckpt_flushed(const struct job *j)
{
	for (const struct exec_session *s = j->sessions; s; s = s->next)
		if (s->out[0].q.len || s->out[1].q.len)
			return false;
	return true;
}

int exec_ckpt_collect(struct job *j, struct ckpt_manifest *m, int *ret_fd)
{
	*ret_fd = -1;
	m->nsessions = 0;
	m->next_session = j->next_session;
	for (struct exec_session *s = j->sessions; s; s = s->next) {
		struct ckpt_session *c;

		if (s->st != S_RUNNING || s->exit_seen)
			continue;
		if (m->nsessions == CKPT_MAX_SESSIONS)
			return -E2BIG;
		c = &m->sessions[m->nsessions++];
		c->id = s->id;
		c->batch = s->batch;
		c->merge_stderr = s->req.exec.merge_stderr;
		c->out_bytes[0] = s->written[0];
		c->out_bytes[1] = s->written[1];
		/* The window the agent still counts as in flight: returned
		 * after the restore, so the session's output flows again. */
		c->credit = s->credit_pending + s->inflight;
		if (s->batch && *ret_fd < 0 && s->file_fd >= 0)
			*ret_fd = reopen_read(j, s->file_fd);
	}
	return 0;
}

void exec_ckpt_resumed(struct job *j)
{
	for (struct exec_session *s = j->sessions; s; s = s->next) {
		if (s->st != S_RUNNING)
			continue;
		give_credit(s, 0, true);
		in_pause(s, false);
	}
}

void exec_ckpt_end(struct job *j, const char *msg, int code)
{
	while (j->sessions) {
		struct exec_session *s = j->sessions;
		struct proto_reply rep = {.kind = PROTO_EV_CHECKPOINTED,
					  .exit_value = code};

		snprintf(rep.error, sizeof(rep.error), "%s", msg);
		if (s->cfd >= 0)
			proto_send_reply(s->cfd, &rep);
		exec_sess_free(s);
	}
}

static struct exec_session *detached_new(struct job *j,
					 const struct ckpt_session *c)
{
	struct exec_session *s = exec_sess_new(j, c->id);

	if (!s)
		return NULL;
	s->st = S_DETACHED;
	s->batch = c->batch;
	s->req.exec.merge_stderr = c->merge_stderr;
	s->written[0] = c->out_bytes[0];
	s->written[1] = c->out_bytes[1];
	return s;
}

int exec_ckpt_adopt(struct job *j, const struct ckpt_manifest *m,
		    const char *replay_path)
{
	struct aw_buf b = {0};
	int r = 0;

	if (m->next_session > j->next_session)
		j->next_session = m->next_session;
	for (size_t i = 0; i < m->nsessions && r == 0; i++) {
		const struct ckpt_session *c = &m->sessions[i];
		struct exec_session *s;

		/* Only the batch script's task comes back (a requeue starts
		 * the batch step again); anything else has no one to talk
		 * to and ends. */
		if (!c->batch) {
			b.len = 0;
			if (aw_put_u32(&b, SIGKILL) == 0)
				agent_send(j, AW_SIGNAL, c->id, b.data, b.len);
			/* A v3 agent would keep its EXIT for a RELEASE that
			 * nobody else sends. */
			if (j->agent_resume)
				agent_send(j, AW_RELEASE, c->id, NULL, 0);
			/* Its output still in the guest may come: within
			 * the window vmmd had not returned. */
			stray_session_ended(
			    &j->stray, c->id,
			    c->credit < AW_WINDOW ? AW_WINDOW - c->credit : 0,
			    AW_WINDOW);
			continue;
		}
		if (!(s = detached_new(j, c))) {
			r = -ENOMEM;
			break;
		}
		if (replay_path && !(s->replay_path = strdup(replay_path)))
			r = -ENOMEM;
		s->replay_size = c->out_bytes[0];
		replay_path = NULL;
		if (c->credit)
			give_credit(s, c->credit, true);
	}
	aw_buf_free(&b);
	return r;
}

static struct exec_session *detached_batch(struct job *j)
{
	for (struct exec_session *s = j->sessions; s; s = s->next)
		/* Not one found after a restart: only its own task, with
		 * the token, takes that over (the restart part of exec.c). */
		if (s->st == S_DETACHED && s->batch && !s->restarted)
			return s;
	return NULL;
}

/* Slurm opens the batch output of a restarted job with O_TRUNC unless the
 * job asked for --open-mode=append (or JobFileAppend=1): what the job wrote
 * before the checkpoint is then gone from the file. vmmd kept a copy in
 * the checkpoint; it goes back first, so the file ends up as if the job
 * had never stopped. An appended file (already that long) is left alone. */
static int copy_fd(int in, int out)
{
	char buf[64 * 1024];
	ssize_t n;

	/* Not copy_file_range: the output is opened O_APPEND. */
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		int r = write_full(out, buf, (size_t)n);
		if (r < 0)
			return r;
	}
	return n < 0 ? -errno : 0;
}

static void replay_output(struct exec_session *s, int fd)
{
	struct stat st;
	int in;

	if (!s->replay_path || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size >= s->replay_size)
		return;
	in = open(s->replay_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return;
	if (st.st_size == 0 && copy_fd(in, fd) < 0)
		log_err("job %u: cannot put the output before the checkpoint "
			"back: %m",
			s->j->id);
	close(in);
}

/* A restarted batch step's task takes over the session that ran the batch
 * script before the checkpoint: same process in the guest, output goes on
 * where it stopped. */
static bool attach_batch(struct job *j, struct exec_session *n)
{
	struct exec_session *s = detached_batch(j);

	if (!s || !n->batch)
		return false;
	for (int i = 0; i < 2; i++) {
		s->out[i].fd = n->out[i].fd;
		n->out[i].fd = -1;
	}
	s->file_fd = n->file_fd;
	n->file_fd = -1;
	if (s->file_fd >= 0)
		replay_output(s, s->file_fd);
	s->cfd = n->cfd;
	s->owner = n->owner;
	n->cfd = -1;
	loop_del_fd(n->cw);
	n->cw = NULL;
	exec_sess_free(n);
	s->st = S_RUNNING;
	if (exec_client_watch(s) < 0) {
		client_gone(s);
		return true;
	}
	/* The task must know its command is in the guest already (never
	 * to be sent again), and, where it can, how to come back. */
	if (!j->agent_resume) {
		exec_session_event(s, NULL);
	} else if (exec_record_new(s) < 0) {
		exec_reply_event(s, PROTO_EV_ERROR,
				 "cannot record the batch step for a vmmd "
				 "restart");
		client_gone(s);
		return true;
	}
	log_info("job %u: the batch step re-attached to session %u", j->id,
		 s->id);
	exec_reply_event(s, PROTO_EV_STARTED, NULL);
	out_ready(s, EPOLLOUT);
	return true;
}

/* ======================================================================= */
/*
 * Steps that outlive a vmmd restart (docs/restart.md). Each session of a
 * guest whose agent speaks agentwire v3 has a record and a token; its task
 * (vmenv-exec) keeps the token. A restarted vmmd that adopts the guest
 * reads the records; the task comes back with REATTACH (its owner, by
 * SO_PEERCRED, with the token), says how much of each stream it holds,
 * and the agent sends the rest again and says how much stdin it took.
 *
 * Records: run_dir/jobs/<id>/sessions/<session>, root's (0700 directory,
 * 0600 files, written atomically), never in a directory a user can write:
 *   owner=U token=<SHA-256 of the token, hex> batch=0|1 merge=0|1
 *   stdin=0|1 bulk=0|1 base_out=N base_err=N       (one per line)
 * The token itself is only in the task's memory.
 */
/* How long a task has to come back after a restart before its command is
 * killed (vmenv-exec retries for as long: VMENV_REATTACH_S). */
#define REATTACH_MS (300u * 1000u)
#define RECORD_MAX  1024u

static int record_dir(const struct job *j, char *buf, size_t n)
{
	int r = snprintf(buf, n, "%s/sessions", j->dir);

	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

/* The directory must be root's alone: a record there is trusted. */
static int record_dir_ok(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

static int record_path(const struct exec_session *s, char *buf, size_t n)
{
	char dir[VMENV_MAX_PATH];
	int r = record_dir(s->j, dir, sizeof(dir));

	if (r < 0)
		return r;
	r = snprintf(buf, n, "%s/%u", dir, s->id);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static int hash_token(const char *hex, char out[65])
{
	struct digest *d = NULL;
	int r = digest_new(&d);

	if (r == 0)
		r = digest_update(d, hex, strlen(hex));
	if (r == 0)
		r = digest_final_hex(d, out);
	digest_free(d);
	return r;
}

static int new_token(char hex[PROTO_TOKEN_HEX + 1], char hash[65])
{
	uint8_t raw[PROTO_TOKEN_HEX / 2];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	return hash_token(hex, hash);
}

static int record_write(const struct exec_session *s)
{
	char dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 16], text[RECORD_MAX];
	int r = record_dir(s->j, dir, sizeof(dir)), n;

	if (r < 0)
		return r;
	if ((r = record_dir_ok(dir)) < 0 ||
	    (r = record_path(s, path, sizeof(path))) < 0)
		return r;
	n = snprintf(text, sizeof(text),
		     "owner=%u\ntoken=%s\nbatch=%d\nmerge=%d\nstdin=%d\n"
		     "bulk=%d\nbase_out=%llu\nbase_err=%llu\n",
		     (unsigned)s->owner, s->token_hash, s->batch,
		     s->req.exec.merge_stderr, s->in_fd >= 0, s->bulk_open,
		     (unsigned long long)s->base[0],
		     (unsigned long long)s->base[1]);
	return write_file_atomic(path, text, (size_t)n, 0600);
}

void exec_session_event(struct exec_session *s, const char *token)
{
	struct proto_reply rep = {.kind = PROTO_EV_SESSION, .session = s->id};

	if (token)
		snprintf(rep.token, sizeof(rep.token), "%s", token);
	if (s->cfd >= 0 && proto_send_reply(s->cfd, &rep) < 0)
		log_debug("job %u: session %u: task gone before its token",
			  s->j->id, s->id);
	explicit_bzero(rep.token, sizeof(rep.token));
}

/* The next id a restarted vmmd may give: the guest's agent may still
 * hold any session below it, recorded or not (a RELEASE lost with the
 * old vmmd), and an id it holds must never be given again. */
static int next_write(const struct job *j)
{
	char dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 16], text[16];
	int r = record_dir(j, dir, sizeof(dir)), n;

	if (r < 0)
		return r;
	/* The first session's: the directory comes with it. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((r = record_dir_ok(dir)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/next", dir);
	n = snprintf(text, sizeof(text), "%u\n", j->next_session);
	return write_file_atomic(path, text, (size_t)n, 0600);
}

int exec_record_new(struct exec_session *s)
{
	char token[PROTO_TOKEN_HEX + 1];
	int r;

	s->base[0] = s->written[0];
	s->base[1] = s->written[1];
	/* next first: a record must never name an id the file would give
	 * again. */
	if ((r = new_token(token, s->token_hash)) < 0 ||
	    (r = next_write(s->j)) < 0 || (r = record_write(s)) < 0) {
		log_err("job %u: session %u: cannot record it for a vmmd "
			"restart: %s",
			s->j->id, s->id, strerror(-r));
		return r;
	}
	s->recorded = true;
	exec_session_event(s, token);
	explicit_bzero(token, sizeof(token));
	return 0;
}

void exec_record_update(struct exec_session *s)
{
	int r;

	if (s->recorded && (r = record_write(s)) < 0)
		log_warn("job %u: session %u: cannot update its record: %s",
			 s->j->id, s->id, strerror(-r));
}

void exec_record_remove(struct exec_session *s)
{
	char path[VMENV_MAX_PATH + 16];

	if (!s->recorded)
		return;
	s->recorded = false;
	if (record_path(s, path, sizeof(path)) == 0 && unlink(path) < 0 &&
	    errno != ENOENT)
		log_warn("job %u: session %u: cannot remove %s: %m", s->j->id,
			 s->id, path);
}

/* --- a restarted vmmd ------------------------------------------------------ */

struct record {
	uid_t owner;
	char token[65];
	int batch, merge, stdin_, bulk;
	unsigned long long base[2];
};

static int record_parse(char *text, struct record *rec)
{
	int seen = 0;

	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned u;

		if (sscanf(line, "owner=%u", &u) == 1)
			rec->owner = (uid_t)u, seen |= 1;
		else if (sscanf(line, "token=%64[0-9a-f]", rec->token) == 1)
			seen |= 2;
		else if (sscanf(line, "batch=%d", &rec->batch) == 1 ||
			 sscanf(line, "merge=%d", &rec->merge) == 1 ||
			 sscanf(line, "stdin=%d", &rec->stdin_) == 1 ||
			 sscanf(line, "bulk=%d", &rec->bulk) == 1 ||
			 sscanf(line, "base_out=%llu", &rec->base[0]) == 1 ||
			 sscanf(line, "base_err=%llu", &rec->base[1]) == 1)
			continue;
		else
			return -EBADMSG;
	}
	return seen == 3 && strlen(rec->token) == 64 ? 0 : -EBADMSG;
}

static void reattach_expired(void *data)
{
	struct exec_session *s = data;
	char msg[PROTO_MAX_ERROR];
	struct aw_buf b = {0};

	s->reattach_timer = NULL;
	log_warn("job %u: session %u: its task did not come back within %u s "
		 "of the vmmd restart; its command is killed",
		 s->j->id, s->id, REATTACH_MS / 1000);
	if (aw_put_u32(&b, SIGKILL) == 0)
		agent_send(s->j, AW_SIGNAL, s->id, b.data, b.len);
	aw_buf_free(&b);
	s->release = true;
	snprintf(msg, sizeof(msg),
		 "job %u: the step ended: %s within %u s of the vmmd restart "
		 "on node %s",
		 s->j->id,
		 s->cfd >= 0 ? "the guest did not answer its re-attach"
			     : "its task did not come back",
		 REATTACH_MS / 1000, s->j->d->cfg.node_name);
	exec_sess_end(s, msg);
}

static void adopt_record(struct job *j, uint32_t id, const struct record *rec)
{
	struct exec_session *s = exec_sess_new(j, id);

	if (!s)
		return;
	s->st = S_DETACHED;
	s->restarted = true;
	s->recorded = true;
	s->owner = rec->owner;
	memcpy(s->token_hash, rec->token, sizeof(s->token_hash));
	s->batch = rec->batch;
	s->bulk_asked = rec->bulk;
	s->req.exec.merge_stderr = rec->merge;
	s->req.exec.want_stdin = rec->stdin_;
	s->base[0] = s->written[0] = rec->base[0];
	s->base[1] = s->written[1] = rec->base[1];
	if (id >= j->next_session)
		j->next_session = id + 1;
	s->reattach_timer =
	    loop_add_timer(j->d->loop, REATTACH_MS, reattach_expired, s);
	if (!s->reattach_timer) {
		s->recorded = false; /* the next vmmd's to handle */
		exec_sess_free(s);
		return;
	}
	log_info("job %u: session %u waits for its task to re-attach", j->id,
		 id);
}

static void adopt_one(struct job *j, const char *dir, const char *name)
{
	char path[VMENV_MAX_PATH + 272], *end;
	_cleanup_free_ char *text = NULL;
	struct record rec = {0};
	unsigned long id = strtoul(name, &end, 10);
	size_t len;

	if (*name < '1' || *name > '9' || *end || id > UINT32_MAX)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_plain_file_limited(path, RECORD_MAX, &text, &len) < 0 ||
	    record_parse(text, &rec) < 0) {
		log_warn("job %u: session record %s unreadable: removed", j->id,
			 path);
		unlink(path);
		return;
	}
	adopt_record(j, (uint32_t)id, &rec);
}

static void next_read(struct job *j, const char *dir)
{
	char path[VMENV_MAX_PATH + 16];
	_cleanup_free_ char *text = NULL;
	unsigned next;
	size_t len;

	snprintf(path, sizeof(path), "%s/next", dir);
	if (read_plain_file_limited(path, 16, &text, &len) == 0 &&
	    sscanf(text, "%u", &next) == 1 && next > j->next_session)
		j->next_session = next;
}

void exec_restart_adopt(struct job *j)
{
	char dir[VMENV_MAX_PATH];
	struct dirent *e;
	DIR *d;

	if (record_dir(j, dir, sizeof(dir)) < 0 || record_dir_ok(dir) < 0)
		return;
	next_read(j, dir);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d)))
		adopt_one(j, dir, e->d_name);
	closedir(d);
}

static void send_resume(struct exec_session *s)
{
	struct aw_buf b = {0};

	if (aw_put_i64(&b, (int64_t)(s->base[0] + s->resume_at[0])) == 0 &&
	    aw_put_i64(&b, (int64_t)(s->base[1] + s->resume_at[1])) == 0 &&
	    agent_send(s->j, AW_RESUME, s->id, b.data, b.len) == 0)
		s->resume_sent = true;
	aw_buf_free(&b);
	/* Not sent: the reattach timer ends it, saying so. */
	if (!s->resume_sent)
		log_err("job %u: session %u: cannot ask the guest to resume it",
			s->j->id, s->id);
}

void exec_restart_ready(struct job *j)
{
	struct exec_session *s, *next;
	char msg[PROTO_MAX_ERROR];

	for (s = j->sessions; s; s = next) {
		next = s->next;
		if (!s->restarted || s->resume_sent)
			continue;
		if (!j->agent_resume) {
			snprintf(msg, sizeof(msg),
				 "job %u: the step ended with the vmmd restart "
				 "on node %s: the guest's agent cannot keep "
				 "steps across one (an image built before "
				 "agent protocol 3)",
				 j->id, j->d->cfg.node_name);
			exec_sess_end(s, msg);
		} else if (s->cfd >= 0) {
			send_resume(s);
		}
	}
}

static void refuse(int cfd, int *fds, size_t nfds, const char *msg)
{
	struct proto_reply rep = {.kind = PROTO_EV_ERROR};

	snprintf(rep.error, sizeof(rep.error), "%s", msg);
	proto_send_reply(cfd, &rep);
	close(cfd);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

static bool token_ok(const struct exec_session *s, const char *token)
{
	char hash[65];
	unsigned char diff = 0;

	if (hash_token(token, hash) < 0)
		return false;
	for (size_t i = 0; i < 64; i++)
		diff |= (unsigned char)(hash[i] ^ s->token_hash[i]);
	return diff == 0;
}

static const char REFUSED_AUTH[] =
    "permission denied (no such session of yours waits for its task)";
static const char REFUSED_BULK[] =
    "its output went through a bulk port, which a restarted vmmd cannot "
    "take over";

/* Why the task may not take session s over, or NULL. */
static const char *reattach_refusal(const struct exec_session *s, uid_t peer,
				    const struct proto_request *req,
				    size_t nfds)
{
	/* One answer for "not yours" and "not there": another user learns
	 * nothing of the job's sessions. */
	if (!s || !s->restarted || peer != s->owner ||
	    !token_ok(s, req->re.token))
		return REFUSED_AUTH;
	if (s->cfd >= 0)
		return "its task re-attached already";
	if (s->bulk_asked)
		return REFUSED_BULK;
	if (nfds != 3 + (s->batch ? 1u : 0u))
		return "re-attach needs the task's stdin, stdout and stderr "
		       "(and a batch step's own stdout)";
	return NULL;
}

static int take_fds(struct exec_session *s, int *fds)
{
	int r = exec_own_stdio(s, fds);

	if (r < 0)
		return r;
	s->in_fd = fds[0];
	s->out[OUT_STDOUT].fd = fds[1];
	s->out[OUT_STDERR].fd = fds[2];
	/* The batch output file, for a later checkpoint's copy. */
	s->file_fd = s->batch ? fds[3] : -1;
	if (!s->req.exec.want_stdin && s->in_fd >= 0)
		close(s->in_fd), s->in_fd = -1;
	if (s->req.exec.merge_stderr && s->out[OUT_STDERR].fd >= 0)
		close(s->out[OUT_STDERR].fd), s->out[OUT_STDERR].fd = -1;
	return 0;
}

void exec_reattach(struct job *j, int cfd, uid_t peer_uid,
		   const struct proto_request *req, int *fds, size_t nfds)
{
	struct exec_session *s = exec_sess_find(j, req->re.session);
	const char *why = reattach_refusal(s, peer_uid, req, nfds);
	char msg[PROTO_MAX_ERROR];

	if (why) {
		log_warn("job %u: uid %u refused re-attach to session %u: %s",
			 j->id, (unsigned)peer_uid, req->re.session, why);
		snprintf(msg, sizeof(msg),
			 "job %u: lost the connection to vmmd on node %s "
			 "(vmmd stopped or restarted) and cannot re-attach: "
			 "%s",
			 j->id, j->d->cfg.node_name, why);
		refuse(cfd, fds, nfds, msg);
		/* Its own task, told why: the command goes. */
		if (why == REFUSED_BULK) {
			s->release = true;
			exec_sess_free(s);
		}
		return;
	}
	s->cfd = cfd;
	s->resume_at[0] = req->re.out_bytes;
	s->resume_at[1] = req->re.err_bytes;
	if (take_fds(s, fds) < 0 || exec_client_watch(s) < 0) {
		for (size_t i = 0; i < nfds; i++)
			if (fds[i] != s->in_fd && fds[i] != s->out[0].fd &&
			    fds[i] != s->out[1].fd && fds[i] != s->file_fd)
				close(fds[i]);
		s->release = true;
		exec_sess_end(s, "cannot take the task's stdio");
		return;
	}
	if (j->state == JOB_READY && j->agent_resume)
		send_resume(s);
}

int exec_on_resumed(struct exec_session *s, const uint8_t *p, size_t n)
{
	struct proto_reply rep = {.kind = PROTO_EV_STARTED, .reattached = true};
	char msg[PROTO_MAX_ERROR];
	struct aw_reader r;
	uint32_t err, eof, window;
	int64_t in_got;

	aw_reader_init(&r, p, n);
	err = aw_get_u32(&r);
	in_got = aw_get_i64(&r);
	eof = aw_get_u32(&r);
	window = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0 || in_got < 0 || eof > 1 ||
	    window > AW_WINDOW)
		return -EPROTO;
	if (err) {
		snprintf(msg, sizeof(msg),
			 "job %u: the step cannot go on after the vmmd "
			 "restart on node %s: the guest %s",
			 s->j->id, s->j->d->cfg.node_name,
			 err == ENOENT
			     ? "does not have its command (it never arrived, "
			       "or it ended and was let go)"
			     : "no longer holds the output the task missed");
		s->release = true;
		exec_sess_end(s, msg);
		return 0;
	}
	s->restarted = false;
	s->st = S_RUNNING;
	/* What reached the task in all: a checkpoint's copy of the output
	 * is this long. */
	s->written[0] = s->base[0] + s->resume_at[0];
	s->written[1] = s->base[1] + s->resume_at[1];
	s->started_seen = true;
	s->in_window = window;
	loop_cancel_timer(s->reattach_timer);
	s->reattach_timer = NULL;
	rep.stdin_offset = (uint64_t)in_got;
	rep.stdin_eof = eof;
	if (proto_send_reply(s->cfd, &rep) < 0)
		log_debug("job %u: session %u: task gone before the reply",
			  s->j->id, s->id);
	if (eof && s->in_fd >= 0)
		close(s->in_fd), s->in_fd = -1;
	exec_stdin_start(s);
	log_info("job %u: session %u re-attached after the vmmd restart "
		 "(its task holds %llu+%llu bytes of output, the guest %lld "
		 "of stdin)",
		 s->j->id, s->id, (unsigned long long)s->resume_at[0],
		 (unsigned long long)s->resume_at[1], (long long)in_got);
	return 0;
}
