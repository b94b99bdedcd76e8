/* SPDX-License-Identifier: MIT */
/*
 * An exec session's life (exec_priv.h): made, found, ended and freed, and
 * its task's connection, which can only send a signal or go away. The
 * rest of the relay builds on it; of the relay, it calls only
 * exec_record.c (a session's end removes its record).
 */
#include "exec_priv.h"

#include "agent.h"
#include "bulk.h"
#include "jobrec.h"
#include "log.h"
#include "stray.h"
#include "userfd.h"
#include "vmmd.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* After its EXEC, a task only ever sends SIGNAL (a few dozen bytes): a
 * longer message is not buffered but ends the session. */
#define EXEC_MAX_CLIENT_MSG 4096

/* --- a session ---------------------------------------------------------- */

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

/* --- the task's connection -------------------------------------------- */

void exec_client_gone(struct exec_session *s)
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
		exec_client_gone(s);
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
		exec_client_gone(s);
		return;
	}
	on_client_msg(s);
}

struct userfd_ids exec_job_ids(const struct job *j)
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
	struct userfd_ids ids = exec_job_ids(s->j);
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
