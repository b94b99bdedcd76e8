/* SPDX-License-Identifier: MIT */
/*
 * The exec relay's top (exec.h): a task's EXEC taken in and launched in
 * the guest, and the agent's frames handed to their session. The parts
 * below it (exec_priv.h: the output, the checkpoints, a restarted vmmd,
 * the session and its record) never call up here, so each can be read,
 * and linked, without this one.
 */
#include "exec.h"
#include "exec_priv.h"

#include "agent.h"
#include "bulk.h"
#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "stray.h"
#include "userfd.h"
#include "vmmd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define EXEC_MAX_SCRIPT (8u * 1024u * 1024u)
#define EXEC_PIPE_SIZE	(1 << 20)

uint32_t exec_count(const struct job *j)
{
	uint32_t n = 0;

	for (const struct exec_session *s = j->sessions; s; s = s->next)
		n++;
	return n;
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
	    bulk_claim(s->j, &exec_bulk_to_session, s, &e) == 0) {
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
		if (s->batch && exec_attach_batch(j, s))
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
	exec_maybe_finish(s);
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
		return exec_on_output(s, OUT_STDOUT, p, h->len);
	case AW_STDERR:
		return exec_on_output(s, OUT_STDERR, p, h->len);
	case AW_CREDIT:
		return exec_on_credit(s, p, h->len);
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

/* --- a new task ------------------------------------------------------- */

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
	if (exec_attach_batch(j, s))
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
