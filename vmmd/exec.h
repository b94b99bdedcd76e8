/* SPDX-License-Identifier: MIT */
/*
 * Exec sessions: one task (vmenv-exec) running one command in its job's
 * guest. vmmd owns the task's stdio fds (received over SCM_RIGHTS) and
 * relays between them and the agent channel, with per-session windows so a
 * slow reader never stalls the other sessions of the guest.
 */
#ifndef VMMD_EXEC_H
#define VMMD_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"
#include "proto.h"

struct job;
struct vmmd;

/* Takes over the client connection cfd and the fds (stdin, stdout, stderr
 * [, script]). On error the caller still owns nothing: everything passed
 * is closed and the client got an error event. */
void exec_begin(struct vmmd *d, struct job *j, int cfd, uid_t peer_uid,
		struct proto_request *req, int *fds, size_t nfds);
/* The guest became ready: launch waiting sessions. */
void exec_job_ready(struct job *j);
/* The job failed or stops: every session ends with this error. */
void exec_job_gone(struct job *j, const char *why);
/* A session frame from the agent (already size-checked). */
int exec_on_frame(struct job *j, const struct aw_hdr *h, const uint8_t *p);
uint32_t exec_count(const struct job *j);

#endif
