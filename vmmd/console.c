/* SPDX-License-Identifier: MIT */
/* Streams a job's console log to its owner (console.h). */
#include "console.h"

#include "cleanup.h"
#include "console_keep.h"
#include "job.h"
#include "log.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct console_stream {
	struct console_stream *next;
	struct vmmd *d;
	int sock;
	uid_t uid;
	uint32_t job;
	bool follow;
	bool ending; /* the guest is gone: one more look, then the end */
	int log_fd;  /* -1: no log yet (the guest is not created yet) */
	dev_t dev;
	ino_t ino;
	off_t off;
	off_t end; /* without follow: where the log ended at the request */
	size_t len, sent;
	struct loop_watch *w;
	struct loop_timer *tick;
	char buf[CONSOLE_CHUNK];
};

static void log_path(const struct vmmd *d, uint32_t job, char *buf, size_t len)
{
	snprintf(buf, len, "%s/job-%u.log", d->cfg.console_dir, job);
}

/* console_dir is root's all the way (checked at start); the name is
 * vmmd's own. Still: no link followed, no FIFO waited on, a plain file
 * only. */
static int open_log(const struct vmmd *d, uint32_t job, struct stat *st)
{
	char path[VMENV_MAX_PATH + 32];
	int fd;

	log_path(d, job, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

static void use_log(struct console_stream *s, int fd, const struct stat *st,
		    off_t from)
{
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = fd;
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->off = from;
	s->end = st->st_size;
}

static void stream_free(struct console_stream *s)
{
	for (struct console_stream **p = &s->d->consoles; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	loop_del_fd(s->w);
	loop_cancel_timer(s->tick);
	if (s->log_fd >= 0)
		close(s->log_fd);
	close(s->sock);
	free(s);
}

/* The guest is gone for good: no record, or one that only keeps the
 * reason (failed, checkpointed). */
static bool guest_gone(const struct console_stream *s)
{
	const struct job *j = job_find(s->d, s->job);

	return !j || j->state == JOB_FAILED || j->state == JOB_SAVED;
}

/* virtlogd rotates a long log (job-N.log becomes job-N.log.0): at the end
 * of ours, a new file under the name is read from its start. */
static void follow_rotation(struct console_stream *s)
{
	struct stat st;
	int fd = open_log(s->d, s->job, &st);

	if (fd < 0)
		return;
	if (s->log_fd >= 0 && st.st_dev == s->dev && st.st_ino == s->ino) {
		close(fd);
		return;
	}
	use_log(s, fd, &st, 0);
}

/* Reads the next piece when the buffer is empty: 1 when there is some,
 * 0 at the end of the log, -errno. */
static int fill(struct console_stream *s)
{
	size_t want = sizeof(s->buf);
	ssize_t n;

	if (s->sent < s->len)
		return 1;
	s->len = s->sent = 0;
	if (s->log_fd < 0)
		return 0;
	if (!s->follow) {
		if (s->off >= s->end)
			return 0;
		if ((off_t)want > s->end - s->off)
			want = (size_t)(s->end - s->off);
	}
	do
		n = pread(s->log_fd, s->buf, want, s->off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	s->off += n;
	s->len = (size_t)n;
	return n > 0;
}

/* 1: all of the buffer went, 0: the socket is full, -errno. */
static int flush(struct console_stream *s)
{
	while (s->sent < s->len) {
		ssize_t n = send(s->sock, s->buf + s->sent, s->len - s->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		s->sent += (size_t)n;
	}
	return 1;
}

static void tick(void *data);
static void pump(struct console_stream *s);

static void wait_for(struct console_stream *s, uint32_t events,
		     uint64_t delay_ms)
{
	loop_mod_fd(s->w, events | EPOLLRDHUP);
	if (delay_ms != UINT64_MAX && !s->tick)
		s->tick = loop_add_timer(s->d->loop, delay_ms, tick, s);
}

/* At the end of what the log holds now: done, or look again later. */
static void at_end(struct console_stream *s)
{
	if (!s->follow || s->ending) {
		stream_free(s);
		return;
	}
	/* One more look after the guest is gone: virtlogd may still be
	 * writing its last lines. */
	if (guest_gone(s))
		s->ending = true;
	follow_rotation(s);
	wait_for(s, 0, CONSOLE_POLL_MS);
}

/* A few pieces per wakeup, so one fast reader does not hold the loop. */
static void pump(struct console_stream *s)
{
	for (int i = 0; i < 4; i++) {
		int r = fill(s);

		if (r == 0) {
			at_end(s);
			return;
		}
		if (r > 0)
			r = flush(s);
		if (r < 0) {
			stream_free(s);
			return;
		}
		if (r == 0) {
			wait_for(s, EPOLLOUT, UINT64_MAX);
			return;
		}
	}
	wait_for(s, 0, 0);
}

static void tick(void *data)
{
	struct console_stream *s = data;

	s->tick = NULL;
	pump(s);
}

static void sock_io(void *data, uint32_t events)
{
	struct console_stream *s = data;

	/* The client sends nothing after its request: anything else, or its
	 * close, ends the stream. */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		stream_free(s);
		return;
	}
	pump(s);
}

/* Who may read the log: the job's owner (while the job runs here, or for
 * console_linger_s after it ended) and root. */
static int check_access(struct vmmd *d, uid_t uid, uint32_t job, char *err,
			size_t errlen)
{
	const struct job *j = job_find(d, job);
	uid_t owner;
	bool known = j != NULL;

	if (j)
		owner = j->uid;
	else
		known = console_keep_owner(&d->console_ended, job, &owner) == 0;
	if (!known && uid != 0)
		return err_set(err, errlen, -ENOENT,
			       "job %u has no console log on node %s (not a "
			       "VM job of this node, or it ended more than "
			       "%u s ago)",
			       job, d->cfg.node_name, d->cfg.console_linger_s);
	if (known && uid != 0 && uid != owner) {
		log_warn("uid %u refused the console of job %u of uid %u",
			 (unsigned)uid, job, (unsigned)owner);
		return err_set(err, errlen, -EPERM,
			       "job %u: permission denied: the job belongs to "
			       "another user",
			       job);
	}
	return 0;
}

static int check_room(const struct vmmd *d, uid_t uid, char *err, size_t errlen)
{
	unsigned all = 0, mine = 0;

	for (const struct console_stream *s = d->consoles; s; s = s->next) {
		all++;
		mine += s->uid == uid;
	}
	if (mine >= CONSOLE_MAX_PER_UID || all >= CONSOLE_MAX)
		return err_set(err, errlen, -EUSERS,
			       "too many console readers on node %s (%u of "
			       "uid %u, %u in all; at most %u and %u)",
			       d->cfg.node_name, mine, (unsigned)uid, all,
			       CONSOLE_MAX_PER_UID, CONSOLE_MAX);
	return 0;
}

/* Opens the log; a job whose guest is not created yet has none, which a
 * follower waits for. */
static int open_first(struct console_stream *s, char *err, size_t errlen)
{
	struct stat st;
	int fd = open_log(s->d, s->job, &st);

	if (fd == -ENOENT && job_find(s->d, s->job))
		return 0;
	if (fd < 0)
		return err_set(
		    err, errlen, fd, "job %u: no console log on node %s: %s",
		    s->job, s->d->cfg.node_name,
		    fd == -ENOENT ? "it was removed" : strerror(-fd));
	use_log(s, fd, &st,
		st.st_size > CONSOLE_TAIL_BYTES
		    ? st.st_size - CONSOLE_TAIL_BYTES
		    : 0);
	return 0;
}

int console_begin(struct vmmd *d, int fd, uid_t uid, uint32_t job, bool follow,
		  char *err, size_t errlen)
{
	struct proto_reply ok = {.kind = PROTO_REPLY_OK};
	struct console_stream *s;
	int r;

	if ((r = check_access(d, uid, job, err, errlen)) < 0 ||
	    (follow && (r = check_room(d, uid, err, errlen)) < 0))
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	*s = (struct console_stream){.d = d,
				     .sock = fd,
				     .uid = uid,
				     .job = job,
				     .follow = follow,
				     .log_fd = -1};
	r = open_first(s, err, errlen);
	if (r == 0 &&
	    (r = loop_add_fd(d->loop, fd, EPOLLRDHUP, sock_io, s, &s->w)) < 0)
		err_set(err, errlen, r, "job %u: cannot stream the log: %s",
			job, strerror(-r));
	if (r < 0) {
		if (s->log_fd >= 0)
			close(s->log_fd);
		free(s);
		return r;
	}
	/* The socket is fresh and empty: the short reply never blocks. */
	proto_send_reply(fd, &ok);
	s->next = d->consoles;
	d->consoles = s;
	pump(s);
	return 0;
}

void console_close_all(struct vmmd *d)
{
	while (d->consoles)
		stream_free(d->consoles);
}
