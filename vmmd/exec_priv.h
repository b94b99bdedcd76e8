/* SPDX-License-Identifier: MIT */
/*
 * An exec session's record, shared by exec.c (the relay) and
 * its restart part (sessions that outlive a vmmd restart). Nothing outside
 * those two includes it.
 */
#ifndef VMMD_EXEC_PRIV_H
#define VMMD_EXEC_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentwire.h"
#include "loop.h"
#include "proto.h"

#define OUT_STDOUT 0
#define OUT_STDERR 1

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
	/* vmmd restarts (exec.c's restart part): the session's record, the hash of
	 * the token its task re-attaches with, what of each stream went out
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

/* exec.c's relay, for its restart part */
void exec_reply_event(struct exec_session *s, enum proto_kind kind,
		      const char *error);
void exec_sess_end(struct exec_session *s, const char *error);
void exec_sess_free(struct exec_session *s);
struct exec_session *exec_sess_find(struct job *j, uint32_t id);
struct exec_session *exec_sess_new(struct job *j, uint32_t id);
void exec_stdin_start(struct exec_session *s);
int exec_client_watch(struct exec_session *s);
int exec_own_stdio(const struct exec_session *s, int *fds);

/* exec.c's restart part, for its relay */
/* A new session's token and record, before its EXEC goes to the guest; the
 * token goes to the task in the "session" event. */
int exec_record_new(struct exec_session *s);
void exec_record_remove(struct exec_session *s);
/* The session's record says again what it is (its output left the bulk
 * port it asked for). */
void exec_record_update(struct exec_session *s);
/* The "session" event: the command goes to the guest; token (NULL: none)
 * is what a re-attach needs. */
void exec_session_event(struct exec_session *s, const char *token);
/* AW_RESUMED for a session found after a restart. */
int exec_on_resumed(struct exec_session *s, const uint8_t *p, size_t n);
/* The guest is ready: resume the sessions whose task came back. */
void exec_restart_ready(struct job *j);

#endif
