// SPDX-License-Identifier: MIT
/*
 * EXEC sessions: start a process as the job's user, relay its output within
 * the session's window, feed it STDIN, signal its process group, and report
 * its exit once every byte of output and both EOFs have been queued.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- lookup and teardown ------------------------------------------------ */

struct session *session_find(struct agent *a, uint32_t id)
{
	int i;

	for (i = 0; i < AGENT_MAX_SESSIONS; i++)
		if (a->sessions[i].active && a->sessions[i].id == id)
			return &a->sessions[i];
	return NULL;
}

static struct session *session_unused(struct agent *a)
{
	int i;

	for (i = 0; i < AGENT_MAX_SESSIONS; i++)
		if (!a->sessions[i].active)
			return &a->sessions[i];
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void start_info_free(struct start_info *si)
{
	free(si->cwd);
	free(si->exe);
	si->cwd = NULL;
	si->exe = NULL;
}

void session_free(struct session *s)
{
	int k;

	aw_buf_free(&s->held);
	close_fd(&s->status_fd);
	for (k = 0; k < STREAM_N; k++)
		close_fd(&s->out_fd[k]);
	close_fd(&s->in_fd);
	close_fd(&s->bulk_fd);
	free(s->in_buf);
	start_info_free(&s->start);
	if (s->script_path) {
		unlink(s->script_path);
		free(s->script_path);
	}
	*s = (struct session){
	    .status_fd = -1, .out_fd = {-1, -1}, .in_fd = -1, .bulk_fd = -1};
}

/* Signals the process group; before the child's setsid() there is no group
 * yet, so fall back to the process itself. */
void session_kill(const struct session *s, int sig)
{
	if (s->pid <= 0)
		return;
	if (kill(-s->pid, sig) < 0 && errno == ESRCH && !s->exited)
		kill(s->pid, sig);
}

void sessions_kill_all(struct agent *a)
{
	int i;

	for (i = 0; i < AGENT_MAX_SESSIONS; i++) {
		if (!a->sessions[i].active)
			continue;
		session_kill(&a->sessions[i], SIGKILL);
		session_free(&a->sessions[i]);
	}
}

/* Sends EXIT and ends the session once the process has exited and both
 * output streams have reached EOF. */
void session_send_exit(struct agent *a, struct session *s)
{
	if (WIFSIGNALED(s->wstatus))
		agent_send_u32x2(a, AW_EXIT, s->id, AW_EXIT_SIGNAL,
				 (uint32_t)WTERMSIG(s->wstatus));
	else
		agent_send_u32x2(a, AW_EXIT, s->id, AW_EXIT_CODE,
				 (uint32_t)WEXITSTATUS(s->wstatus));
}

/* A v3 session stays until the host's RELEASE: its EXIT may be lost with
 * the host and must then go to the next one. A detached session's EXIT
 * waits for the host that resumes it. */
void session_check_done(struct agent *a, struct session *s)
{
	if (!s->active || s->starting || !s->exited || s->exit_sent ||
	    s->detached)
		return;
	if (s->out_fd[STREAM_OUT] >= 0 || s->out_fd[STREAM_ERR] >= 0)
		return;
	/* All output first: the end marker must be in the port. */
	if (s->bulk_fd >= 0 || s->mark_pid > 0)
		return;
	session_send_exit(a, s);
	if (agent_resumable(a))
		s->exit_sent = true;
	else
		session_free(s);
}

/* --- starting ----------------------------------------------------------- */

/* The directory of batch scripts, on a file system that lets them run:
 * images mount /run noexec (Debian's initramfs does), so the agent then
 * mounts its own small tmpfs there. */
static int rundir_ready(void)
{
	struct statvfs st;

	if (mkdir(AGENT_RUNDIR, 0711) < 0 && errno != EEXIST)
		return -errno;
	if (statvfs(AGENT_RUNDIR, &st) < 0)
		return -errno;
	if ((st.f_flag & ST_NOEXEC) &&
	    mount("vmenv-agent", AGENT_RUNDIR, "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=0711,size=" AGENT_RUNDIR_SIZE) < 0)
		return -errno;
	if (chmod(AGENT_RUNDIR, 0711) < 0)
		return -errno;
	return 0;
}

/* Writes the batch script to a file only the job's user can read. */
static int script_write(const struct aw_exec *e, const char *path)
{
	int fd, r;

	r = rundir_ready();
	if (r < 0)
		return r;
	/* A stale file of an earlier agent would make O_EXCL fail. */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0700);
	if (fd < 0)
		return -errno;
	r = agent_write_all(fd, e->script, e->script_len);
	if (!r && fchown(fd, e->uid, e->gid) < 0)
		r = -errno;
	if (!r && fchmod(fd, 0700) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

/* Takes the agent's ends of the pipes into the session. */
static void session_adopt(struct session *s, pid_t pid, struct spawn_pipes *p)
{
	s->pid = pid;
	s->starting = true;
	s->window = AW_WINDOW;
	s->status_fd = p->st[0];
	s->out_fd[STREAM_OUT] = p->out[0];
	s->out_fd[STREAM_ERR] = p->err[0];
	s->in_fd = p->in[1];
	p->st[0] = p->out[0] = p->err[0] = p->in[1] = -1;
	spawn_pipes_close(p);
}

static int session_prepare(struct session *s, uint32_t id,
			   const struct aw_exec *e)
{
	*s = (struct session){
	    .id = id,
	    .status_fd = -1,
	    .out_fd = {-1, -1},
	    .in_fd = -1,
	    .bulk_fd = -1,
	    .start = {.uid = e->uid, .gid = e->gid, .ngroups = e->ngroups},
	};
	if (e->flags & AW_EXEC_SCRIPT) {
		if (asprintf(&s->script_path, AGENT_RUNDIR "/script.%u", id) <
		    0) {
			s->script_path = NULL;
			return -ENOMEM;
		}
	}
	s->start.cwd = strdup(e->cwd);
	s->start.exe = strdup(s->script_path ? s->script_path : e->argv[0]);
	if (!s->start.cwd || !s->start.exe)
		return -ENOMEM;
	return 0;
}

/* The session's port, when the host gave one and it is free; else the
 * command's output goes through the pipes as without one, and STARTED
 * says why (e->flags loses AW_EXEC_BULK). */
static void session_bulk_open(struct session *s, struct aw_exec *e)
{
	int r;

	if (!(e->flags & AW_EXEC_BULK))
		return;
	s->bulk = true;
	r = bulk_open(e->bulk_port, &s->bulk_fd);
	if (r < 0) {
		s->bulk_err = -r;
		e->flags &= ~AW_EXEC_BULK;
		return;
	}
	memcpy(s->bulk_end, e->bulk_end, AW_BULK_MARK_LEN);
}

/* Starts the process; on failure fills msg and leaves s unused. */
static int session_start(struct session *s, uint32_t id, struct aw_exec *e,
			 char *msg, size_t size)
{
	struct spawn_pipes p = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
	const char *what = "out of memory";
	char script_what[64];
	pid_t pid = -1;
	int r;

	r = session_prepare(s, id, e);
	if (r == 0 && s->script_path) {
		snprintf(script_what, sizeof(script_what), "writing '%s'",
			 s->script_path);
		what = script_what;
		r = script_write(e, s->script_path);
	}
	if (r == 0) {
		what = "pipe";
		session_bulk_open(s, e);
		r = spawn_pipes_open(&p, e->flags);
		if (r == 0 && s->bulk_fd >= 0)
			r = spawn_pipes_use_port(&p, s->bulk_fd);
	}
	if (r == 0) {
		what = "fork";
		pid = fork();
		if (pid == 0)
			spawn_child(e, &p, s->script_path);
		if (pid < 0)
			r = -errno;
	}
	if (r < 0) {
		snprintf(msg, size, "%s: %s", what, strerror(-r));
		spawn_pipes_close(&p);
		session_free(s);
		return r;
	}
	session_adopt(s, pid, &p);
	s->active = true;
	return 0;
}

int session_exec(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_exec e;
	struct session *s;
	char msg[512];
	int r;

	/* A host that lost track of a session it had (a restarted vmmd):
	 * this EXEC fails, the others go on. */
	if (session_find(a, h->session)) {
		agent_send_fail(a, AW_EXEC_FAIL, h->session, EBUSY,
				"session id in use");
		return 0;
	}
	r = aw_exec_decode(p, h->len, &e);
	if (r == -EPROTO)
		return agent_proto_error(a, "malformed EXEC on session %u",
					 h->session);
	/* A multi-node job's commands find their nodes (VMENV_*). */
	if (r == 0 && jobfiles_env(&a->job, &e.envp, &e.envc) < 0) {
		aw_exec_clear(&e);
		r = -ENOMEM;
	}
	if (r < 0) {
		agent_send_fail(a, AW_EXEC_FAIL, h->session, -r,
				"out of memory decoding EXEC");
		return 0;
	}
	s = session_unused(a);
	if (!s) {
		snprintf(msg, sizeof(msg), "too many sessions (limit %d)",
			 AGENT_MAX_SESSIONS);
		agent_send_fail(a, AW_EXEC_FAIL, h->session, EAGAIN, msg);
	} else {
		r = session_start(s, h->session, &e, msg, sizeof(msg));
		if (r < 0)
			agent_send_fail(a, AW_EXEC_FAIL, h->session, -r, msg);
	}
	aw_exec_clear(&e);
	return 0;
}

/* --- exec result -------------------------------------------------------- */

/* The status pipe reports a failure before exec, or closes on exec. */
static void status_ready(struct agent *a, struct session *s)
{
	char msg[600];
	int err;

	err = spawn_status_read(s->status_fd, &s->start, msg, sizeof(msg));
	if (err == -EAGAIN)
		return;
	close_fd(&s->status_fd);
	s->starting = false;
	if (err > 0) {
		agent_send_fail(a, AW_EXEC_FAIL, s->id, err, msg);
		session_kill(s, SIGKILL);
		session_free(s);
		return;
	}
	if (s->bulk)
		agent_send_u32x2(a, AW_STARTED, s->id, (uint32_t)s->pid,
				 (uint32_t)s->bulk_err);
	else
		agent_send_u32(a, AW_STARTED, s->id, (uint32_t)s->pid);
	start_info_free(&s->start);
	session_check_done(a, s);
}

/* --- output ------------------------------------------------------------- */

static void stream_eof(struct agent *a, struct session *s, enum stream k)
{
	close_fd(&s->out_fd[k]);
	s->eof_sent[k] = true;
	agent_send(a, k == STREAM_OUT ? AW_STDOUT : AW_STDERR, s->id, NULL, 0);
	session_check_done(a, s);
}

/* Moves up to one frame from a pipe to the port, within the window.
 * Returns true when a full frame was read (there may be more). */
static bool stream_read_frame(struct agent *a, struct session *s, enum stream k)
{
	size_t max = s->window < AGENT_OUT_FRAME ? s->window : AGENT_OUT_FRAME;
	uint8_t *p;
	ssize_t n;

	/* Detached: nothing goes out until a host resumes the session. */
	if (max == 0 || s->out_fd[k] < 0 || s->detached)
		return false;
	p = chan_reserve(&a->ch, max);
	if (!p)
		return false;
	n = read(s->out_fd[k], p, max);
	if (n > 0) {
		chan_commit(&a->ch, k == STREAM_OUT ? AW_STDOUT : AW_STDERR,
			    s->id, (size_t)n);
		s->window -= (uint32_t)n;
		s->sent[k] += (uint64_t)n;
		if (agent_resumable(a))
			held_add(s, k, p, (size_t)n);
		return (size_t)n == max;
	}
	if (n < 0 && errno == EINTR)
		return false;
	/* Once draining, an empty pipe is held only by processes that left
	 * the group: stop waiting for them. */
	if (n < 0 && errno == EAGAIN && !s->draining)
		return false;
	stream_eof(a, s, k);
	return false;
}

/* Drains a pipe by whole frames, up to AGENT_READ_BATCH per wakeup: each
 * poll round trip costs far more than a read under emulation, and the cap
 * keeps one busy session from starving the others. */
static void stream_read(struct agent *a, struct session *s, enum stream k)
{
	for (size_t i = 0; i < AGENT_READ_BATCH / AGENT_OUT_FRAME; i++)
		if (!stream_read_frame(a, s, k) ||
		    chan_pending(&a->ch) >= AGENT_OUT_HIGH)
			return;
}

static void session_pump(struct agent *a, struct session *s)
{
	int k;

	for (k = 0; k < STREAM_N && s->active; k++)
		stream_read(a, s, (enum stream)k);
}

int session_credit(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_reader r;
	struct session *s;
	uint32_t n;

	aw_reader_init(&r, p, h->len);
	n = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0)
		return agent_proto_error(a, "malformed CREDIT");
	s = session_find(a, h->session);
	if (!s)
		return 0;
	/* More credit than was outstanding cannot widen the window. */
	s->window = n >= AW_WINDOW - s->window ? AW_WINDOW : s->window + n;
	held_credit(s, n);
	if (s->draining)
		session_pump(a, s);
	return 0;
}

/* --- stdin -------------------------------------------------------------- */

static void stdin_close(struct session *s)
{
	close_fd(&s->in_fd);
	free(s->in_buf);
	s->in_buf = NULL;
	s->in_len = 0;
}

/* Writes buffered STDIN to the pipe and returns credit for what left the
 * buffer; if the reader is gone the rest is discarded, and credited too. */
static void stdin_drain(struct agent *a, struct session *s)
{
	size_t done = 0;
	bool gone = false;
	ssize_t n;

	while (done < s->in_len) {
		n = write(s->in_fd, s->in_buf + done, s->in_len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			gone = true;
			done = s->in_len;
			break;
		}
		done += (size_t)n;
	}
	if (done) {
		memmove(s->in_buf, s->in_buf + done, s->in_len - done);
		s->in_len -= done;
		/* Detached: RESUMED tells the next host the window. */
		if (!s->detached)
			agent_send_u32(a, AW_CREDIT, s->id, (uint32_t)done);
	}
	if (gone || (s->in_eof && s->in_len == 0))
		stdin_close(s);
}

int session_stdin(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct session *s = session_find(a, h->session);

	/* Detached: no host sends it stdin before RESUME; one that does
	 * lost track of it (another session of the same id): not its. */
	if (!s || s->detached)
		return 0;
	s->in_got += h->len;
	if (h->len == 0) {
		s->in_eof_got = true;
		s->in_eof = true;
		if (s->in_len == 0)
			stdin_close(s);
		return 0;
	}
	if (s->in_fd < 0 || s->in_eof) {
		/* Nobody reads it, but the host's window must come back. */
		agent_send_u32(a, AW_CREDIT, s->id, h->len);
		return 0;
	}
	if (h->len > AW_WINDOW - s->in_len)
		return agent_proto_error(a, "session %u: STDIN beyond window",
					 s->id);
	if (!s->in_buf) {
		s->in_buf = malloc(AW_WINDOW);
		if (!s->in_buf)
			return -ENOMEM;
	}
	memcpy(s->in_buf + s->in_len, p, h->len);
	s->in_len += h->len;
	stdin_drain(a, s);
	return 0;
}

/* --- signals and exit --------------------------------------------------- */

int session_signal(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_reader r;
	struct session *s;
	uint32_t sig;

	aw_reader_init(&r, p, h->len);
	sig = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0)
		return agent_proto_error(a, "malformed SIGNAL");
	if (sig < 1 || sig > 64)
		return agent_proto_error(a, "SIGNAL %u out of range", sig);
	s = session_find(a, h->session);
	if (s)
		session_kill(s, (int)sig);
	return 0;
}

/* Once the command's process group is gone (or, like the pipes, after the
 * kill and the drain grace: what left the group is not waited for), the
 * end marker goes into the port. Returns when to look again, or -1. */
static int64_t session_bulk_end(struct session *s, int64_t now)
{
	pid_t pid;

	if (s->bulk_fd < 0 || !s->exited || s->starting)
		return -1;
	if (!s->draining && !bulk_group_gone(s->pid))
		return now + AGENT_BULK_POLL_MS;
	pid = bulk_write_end(s->bulk_fd, s->bulk_end);
	if (pid < 0)
		agent_log("session %u: no end marker: fork: %s", s->id,
			  strerror((int)-pid));
	s->mark_pid = pid > 0 ? pid : 0;
	close_fd(&s->bulk_fd);
	return -1;
}

void session_reaped(struct agent *a, pid_t pid, int wstatus)
{
	int i;
	struct session *s;

	for (i = 0; i < AGENT_MAX_SESSIONS; i++) {
		s = &a->sessions[i];
		if (s->active && s->mark_pid == pid) {
			s->mark_pid = 0;
			session_check_done(a, s);
			return;
		}
		if (!s->active || s->pid != pid || s->exited)
			continue;
		s->exited = true;
		s->wstatus = wstatus;
		s->exit_ms = agent_now_ms();
		session_bulk_end(s, s->exit_ms);
		session_check_done(a, s);
		return;
	}
}

static int64_t min_due(int64_t next, int64_t due)
{
	return next < 0 || due < next ? due : next;
}

/* Background children keep the pipes open after the main process exits:
 * kill the group after a grace period, and later stop waiting for pipes
 * held by processes outside it. Returns the next due time or -1. */
static int64_t session_timer(struct agent *a, struct session *s, int64_t now)
{
	int64_t due = -1, bulk_due;

	if (!s->exited || s->starting)
		return -1;
	if (!s->killed && now < s->exit_ms + AGENT_EXIT_GRACE_MS) {
		due = s->exit_ms + AGENT_EXIT_GRACE_MS;
	} else if (!s->killed) {
		session_kill(s, SIGKILL);
		s->killed = true;
		s->kill_ms = now;
	}
	if (s->killed && !s->draining) {
		if (now < s->kill_ms + AGENT_DRAIN_GRACE_MS) {
			due = s->kill_ms + AGENT_DRAIN_GRACE_MS;
		} else {
			s->draining = true;
			session_pump(a, s);
		}
	}
	if (!s->active)
		return -1;
	bulk_due = session_bulk_end(s, now);
	if (bulk_due >= 0)
		due = min_due(due, bulk_due);
	return due;
}

int sessions_timers(struct agent *a)
{
	int64_t now = agent_now_ms(), next = -1, due;
	int i;

	for (i = 0; i < AGENT_MAX_SESSIONS; i++) {
		if (!a->sessions[i].active)
			continue;
		due = session_timer(a, &a->sessions[i], now);
		if (due >= 0)
			next = min_due(next, due);
	}
	if (next < 0)
		return -1;
	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

/* --- poll plumbing ------------------------------------------------------ */

void sessions_poll_add(struct agent *a, struct pollset *ps)
{
	struct session *s;
	int i, k;

	for (i = 0; i < AGENT_MAX_SESSIONS; i++) {
		s = &a->sessions[i];
		/* Held for a checkpoint: nothing moves until it resumes. */
		if (!s->active || a->ckpt_held)
			continue;
		if (s->in_fd >= 0 && s->in_len)
			pollset_add(ps, s->in_fd, POLLOUT, PK_STDIN, i, s->id);
		/* Detached: STARTED and output wait for the next host. */
		if (s->detached)
			continue;
		if (s->starting)
			pollset_add(ps, s->status_fd, POLLIN, PK_STATUS, i,
				    s->id);
		for (k = 0; k < STREAM_N && !s->starting && s->window; k++)
			if (s->out_fd[k] >= 0)
				pollset_add(ps, s->out_fd[k], POLLIN,
					    k == STREAM_OUT ? PK_STDOUT
							    : PK_STDERR,
					    i, s->id);
	}
}

static void session_event(struct agent *a, struct session *s,
			  enum poll_kind kind, int fd)
{
	switch (kind) {
	case PK_STATUS:
		if (fd == s->status_fd)
			status_ready(a, s);
		break;
	case PK_STDOUT:
		if (fd == s->out_fd[STREAM_OUT])
			stream_read(a, s, STREAM_OUT);
		break;
	case PK_STDERR:
		if (fd == s->out_fd[STREAM_ERR])
			stream_read(a, s, STREAM_ERR);
		break;
	case PK_STDIN:
		if (fd == s->in_fd)
			stdin_drain(a, s);
		break;
	case PK_PORT:
	case PK_SIGNAL:
	case PK_UEVENT:
	case PK_RSH_LISTEN:
	case PK_RSH_SOCK:
	case PK_RSH_STATUS:
	case PK_RSH_STDOUT:
	case PK_RSH_STDERR:
	case PK_RSH_STDIN:
		break;
	}
}

void sessions_poll_handle(struct agent *a, const struct pollset *ps)
{
	const struct poll_owner *o;
	struct session *s;
	size_t i;

	for (i = 0; i < ps->n; i++) {
		o = &ps->own[i];
		if (o->slot < 0 || !ps->fds[i].revents ||
		    o->kind >= PK_RSH_LISTEN)
			continue;
		/* An earlier event of this turn may have ended it. */
		s = &a->sessions[o->slot];
		if (!s->active || s->id != o->session)
			continue;
		session_event(a, s, o->kind, ps->fds[i].fd);
	}
}
