/* SPDX-License-Identifier: MIT */
/*
 * An exec session's types (struct exec_session, its streams), below every
 * file of the relay: types and one inline only, no call, so every exec
 * file can use them whichever others it calls (exec_priv.h lists those
 * calls, top down). Nothing outside the relay includes it.
 */
#ifndef VMMD_EXEC_TYPES_H
#define VMMD_EXEC_TYPES_H

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

/* Closes *fd if open; it is -1 from then on. */
static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

#endif
