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

#include "exec_types.h"

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
