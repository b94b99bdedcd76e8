/* SPDX-License-Identifier: MIT */
/*
 * An exec session (struct exec_session) and the calls between the relay's
 * files; nothing else includes it. Each file calls only those below it:
 *   exec.c           a task's EXEC launched; the agent's frames routed
 *   exec_ckpt.c      sessions across a checkpoint
 *   exec_reattach.c  sessions across a vmmd restart
 *   exec_output.c    output to the task, stdin to the agent
 *   exec_session.c   a session's life and its task's connection
 *   exec_record.c    the records a restarted vmmd reads
 * (the CI's layers check: a call back up would be a loop).
 */
#ifndef VMMD_EXEC_PRIV_H
#define VMMD_EXEC_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "agentwire.h"
#include "loop.h"
#include "proto.h"
#include "userfd.h"

#define OUT_STDOUT 0
#define OUT_STDERR 1

struct bulk_sink;
struct job;

/* S_DETACHED: a session of a restored guest whose task has not re-attached
 * yet (its output waits in the queue, within the window). */
enum sess_state { S_WAITING, S_RUNNING, S_DETACHED };

struct out_stream {
	int fd;
	struct loop_watch *w; /* only while output is queued */
	struct aw_buf q;
	size_t off;
	bool broken; /* reader gone: discard, keep crediting */
	bool eof;
	bool bulk; /* fed from a bulk port: nothing to credit */
};

struct exec_session {
	struct exec_session *next;
	struct job *j;
	uint32_t id;
	enum sess_state st;
	int cfd;
	struct loop_watch *cw;
	struct proto_rx rx;
	int in_fd;
	struct loop_watch *in_w;
	struct loop_timer *in_tick; /* stdin is a regular file: no epoll */
	bool in_file;
	bool in_paused;
	uint32_t in_window;
	int script_fd;
	struct out_stream out[2];
	uint32_t inflight;
	uint32_t credit_pending;
	/* The session's bulk port (bulk.h), -1: none; bulk_open until its
	 * end marker came (the exit waits for it). */
	int bulk_port;
	bool bulk_open;
	/* The EXEC asked for a port: STARTED then carries its errno. Not
	 * bulk_open: the port is another channel, and its end marker can be
	 * read before the agent's STARTED (a command that ends at once). */
	bool bulk_asked;
	bool exit_seen; /* or EXEC_FAIL: the guest is done with it */
	bool exit_signaled;
	/* Frames that come once (STARTED, each stream's EOF). */
	bool started_seen;
	bool eof_seen[2];
	int exit_value;
	struct proto_request req;
	/* Checkpoints: the batch script's session re-attaches after a
	 * restore; written[] counts what reached the task's stdout/stderr. */
	bool batch;
	uint64_t written[2];
	/* The batch output as it was at the save, for a restarted batch step
	 * whose output file Slurm truncated (exec_ckpt_adopt). */
	char *replay_path;
	uint64_t replay_size;
	/* The task's own stdout (a batch step's output file), for the copy a
	 * checkpoint keeps: out[].fd are the task's pipes (docs/restart.md). */
	int file_fd;
	/* vmmd restarts (exec_record.c, exec_reattach.c): the session's
	 * record, the hash of the token its task re-attaches with, what of each stream went out
	 * before this task attached (a checkpoint's restored batch session),
	 * and, for a session a restarted vmmd found, how long its task has to
	 * come back. */
	bool recorded;
	uid_t owner;
	char token_hash[65];
	uint64_t base[2];
	bool restarted;	       /* found after a vmmd restart, not yet resumed */
	uint64_t resume_at[2]; /* what its task holds of each stream */
	bool resume_sent;
	bool release; /* the agent forgets it when it is freed */
	struct loop_timer *reattach_timer;
};

/* exec_record.c */
/* A record's size at most (it is read back by exec_reattach.c). */
#define RECORD_MAX 1024u
/* The job's records: run_dir/jobs/<id>/sessions. */
int exec_record_dir(const struct job *j, char *buf, size_t n);
/* 0: dir is root's alone, so a record there can be trusted. */
int exec_record_dir_ok(const char *dir);
/* A token's SHA-256 (hex): what its record keeps, not the token. */
int exec_hash_token(const char *hex, char out[65]);
/* A new session's token and record, before its EXEC goes to the guest; the
 * token goes to the task in the "session" event. */
int exec_record_new(struct exec_session *s);
/* The session ends: its record goes (if it has one). */
void exec_record_remove(struct exec_session *s);
/* The session's record says again what it is (its output left the bulk
 * port it asked for). */
void exec_record_update(struct exec_session *s);
/* The "session" event: the command goes to the guest; token (NULL: none)
 * is what a re-attach needs. */
void exec_session_event(struct exec_session *s, const char *token);

/* exec_session.c */
/* Closes *fd if open; it is -1 from then on. */
static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The task gets this event (an EXIT: the command's status). */
void exec_reply_event(struct exec_session *s, enum proto_kind kind,
		      const char *error);
/* The task gets its exit (error NULL) or the error, and s is freed. */
void exec_sess_end(struct exec_session *s, const char *error);
/* Everything s holds goes: its record, port, watches and fds. */
void exec_sess_free(struct exec_session *s);
/* NULL: the job has no session id. */
struct exec_session *exec_sess_find(struct job *j, uint32_t id);
/* A session with no task's fds yet, first in the job's list. */
struct exec_session *exec_sess_new(struct job *j, uint32_t id);
/* The task's connection is read: a SIGNAL, or its end. */
int exec_client_watch(struct exec_session *s);
/* The task's stdio as the job's user's non-blocking copies (userfd.h). */
int exec_own_stdio(const struct exec_session *s, int *fds);
/* The task went away: so does its command (if running) and s. */
void exec_client_gone(struct exec_session *s);
/* The job's user, for opening what its task sent (userfd.h). */
struct userfd_ids exec_job_ids(const struct job *j);

/* exec_output.c */
/* n more bytes went to the task: the agent gets them back as window,
 * in batches (now if force). */
void exec_give_credit(struct exec_session *s, uint32_t n, bool force);
/* The exit came and all output went out: the session ends. */
void exec_maybe_finish(struct exec_session *s);
/* The task's pipes can take more (an EPOLLOUT, or a newly attached task). */
void exec_out_ready(void *data, uint32_t events);
/* Where a session's bulk port delivers (bulk_claim()). */
extern const struct bulk_sink exec_bulk_to_session;
/* STDOUT/STDERR frames; length 0: the stream's EOF. */
int exec_on_output(struct exec_session *s, int which, const uint8_t *p,
		   size_t n);
/* Stop or go on reading the task's stdin. */
void exec_in_pause(struct exec_session *s, bool pause);
/* CREDIT: the agent has room for more stdin. */
int exec_on_credit(struct exec_session *s, const uint8_t *p, size_t n);
/* Reading the task's stdin toward the agent, within the window. */
void exec_stdin_start(struct exec_session *s);

/* exec_ckpt.c */
/* A restarted batch step's task takes over the batch script's session
 * of a restored guest; false: n is not that task (nothing done). */
bool exec_attach_batch(struct job *j, struct exec_session *n);

/* exec_reattach.c */
/* AW_RESUMED for a session found after a restart. */
int exec_on_resumed(struct exec_session *s, const uint8_t *p, size_t n);
/* The guest is ready: resume the sessions whose task came back. */
void exec_restart_ready(struct job *j);

#endif
