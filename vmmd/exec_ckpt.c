/* SPDX-License-Identifier: MIT */
/*
 * Exec sessions across a checkpoint (exec.h, docs/checkpoint.md): what a
 * save records of them, and after a restore the batch script's session,
 * which the restarted batch step's task takes over.
 */
#include "exec.h"
#include "exec_priv.h"

#include "agent.h"
#include "jobrec.h"
#include "log.h"
#include "stray.h"
#include "userfd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The task's stdout is write-only: the copy for the checkpoint reads the
 * same file through a description of its own. */
/* The batch step's output file, read for the checkpoint as the job's
 * user: a descriptor the task sent is never opened again with root's
 * rights (it could name a file only root may read). */
static int reopen_read(const struct job *j, int fd)
{
	struct userfd_ids ids = exec_job_ids(j);

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
		exec_give_credit(s, 0, true);
		exec_in_pause(s, false);
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
			exec_give_credit(s, c->credit, true);
	}
	aw_buf_free(&b);
	return r;
}

static struct exec_session *detached_batch(struct job *j)
{
	for (struct exec_session *s = j->sessions; s; s = s->next)
		/* Not one found after a restart: only its own task, with
		 * the token, takes that over (exec_reattach.c). */
		if (s->st == S_DETACHED && s->batch && !s->restarted)
			return s;
	return NULL;
}

/* Slurm opens the batch output of a restarted job with O_TRUNC unless the
 * job asked for --open-mode=append (or JobFileAppend=1): what the job wrote
 * before the checkpoint is then gone from the file. vmmd kept a copy in
 * the checkpoint; it goes back first, so the file ends up as if the job
 * had never stopped. An appended file (already that long) is left alone. */
static int copy_output(int in, int out)
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
	if (st.st_size == 0 && copy_output(in, fd) < 0)
		log_err("job %u: cannot put the output before the checkpoint "
			"back: %m",
			s->j->id);
	close(in);
}

/* A restarted batch step's task takes over the session that ran the batch
 * script before the checkpoint: same process in the guest, output goes on
 * where it stopped. */
bool exec_attach_batch(struct job *j, struct exec_session *n)
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
		exec_client_gone(s);
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
		exec_client_gone(s);
		return true;
	}
	log_info("job %u: the batch step re-attached to session %u", j->id,
		 s->id);
	exec_reply_event(s, PROTO_EV_STARTED, NULL);
	exec_out_ready(s, EPOLLOUT);
	return true;
}
