/* SPDX-License-Identifier: MIT */
/*
 * Exec sessions: one task (vmenv-exec) running one command in its job's
 * guest. The task sends vmmd its pipes' ends (SCM_RIGHTS): vmmd relays
 * between them and the agent channel, with per-session windows so a slow
 * reader never stalls the other sessions of the guest. The task copies
 * the pipes to its own stdio and counts, so what a vmmd restart could
 * lose is known exactly (exec_reattach.c, docs/restart.md).
 */
#ifndef VMMD_EXEC_H
#define VMMD_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"
#include "ckpt_store.h"
#include "proto.h"

struct exec_session;
struct job;
struct vmmd;

/* Takes over the client connection cfd and the fds (stdin, stdout, stderr
 * [, script]). On error the caller still owns nothing: everything passed
 * is closed and the client got an error event. progress: the job's image
 * download so far (jobimage.h), for a task that waits while the job is
 * preparing; NULL: nothing to show. */
void exec_begin(struct vmmd *d, struct job *j, int cfd, uid_t peer_uid,
		struct proto_request *req, int *fds, size_t nfds,
		const struct proto_progress *progress);
/* vmmd restarts (exec_reattach.c, docs/restart.md): the sessions recorded
 * for an adopted guest wait for their tasks; a task comes back with
 * PROTO_OP_REATTACH (the caller checked nothing; this checks the peer and
 * the token, and owns cfd and fds from here). */
void exec_restart_adopt(struct job *j);
void exec_reattach(struct job *j, int cfd, uid_t peer_uid,
		   const struct proto_request *req, int *fds, size_t nfds);
/* The guest became ready: launch waiting sessions. */
void exec_job_ready(struct job *j);
/* The job's image download, for the sessions waiting for the guest. */
void exec_job_progress(struct job *j, const struct proto_progress *p);
/* vmmd stops and leaves the guest to the next one: every session's
 * connection closes without a word (its task comes back), and the
 * records stay. */
void exec_job_forget(struct job *j);
/* The job failed or stops: every session ends with this error. */
void exec_job_gone(struct job *j, const char *why);
/* A session frame from the agent (already size-checked). */
int exec_on_frame(struct job *j, const struct aw_hdr *h, const uint8_t *p);
uint32_t exec_count(const struct job *j);

/* Checkpoints (ckpt.c). */
/* held: a checkpoint is in progress (the owner says so when it starts and
 * when it is over): stdin and the tasks' signals are held back from the
 * guest, which is frozen or gone. Signals that come meanwhile are dropped
 * (the SIGTERM of a requeue must not reach the guest); stdin is read on
 * from exec_ckpt_resumed(). */
void exec_hold(struct job *j, bool held);
/* No output of any session is still queued toward its task. */
bool exec_ckpt_flushed(const struct job *j);
/* Records the running sessions into m; *ret_fd: a dup of the batch
 * session's stdout (or -1), for the copy the restore may need. */
int exec_ckpt_collect(struct job *j, struct ckpt_manifest *m, int *ret_fd);
/* The guest goes on after a checkpoint (or one that failed): window and
 * stdin flow again. */
void exec_ckpt_resumed(struct job *j);
/* The guest is saved: every session ends with PROTO_EV_CHECKPOINTED. */
void exec_ckpt_end(struct job *j, const char *msg, int code);
/* After a restore: the batch session waits (detached) for the restarted
 * batch step's task; the others are killed. replay_path: the batch output
 * as it was at the save (may be NULL), written back when the restarted
 * step's output file turns out truncated. */
int exec_ckpt_adopt(struct job *j, const struct ckpt_manifest *m,
		    const char *replay_path);

#endif
