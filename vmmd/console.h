/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl console JOBID [--follow]: a job's guest console log, read by
 * vmmd (the file is root's, written by virtlogd) and streamed to a client
 * whose SO_PEERCRED uid is the job's owner or root. The user never gets a
 * path or a descriptor of root's.
 *
 * After the "ok" reply the connection carries the log's raw bytes, then
 * vmmd closes it: at once after the last CONSOLE_TAIL_BYTES of the log as
 * it is, or with --follow when the job's guest is gone (the job ended,
 * failed or was checkpointed) and its last bytes were sent. The bytes are
 * the guest's: the client escapes them for a terminal.
 * Bounds: CONSOLE_TAIL_BYTES of the past per request, CONSOLE_CHUNK per
 * read, followers CONSOLE_MAX_PER_UID per user and CONSOLE_MAX in all; a
 * slow reader is not read for (the socket's buffer is the only queue).
 */
#ifndef VMMD_CONSOLE_H
#define VMMD_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONSOLE_TAIL_BYTES  (1024 * 1024)
#define CONSOLE_CHUNK	    (64 * 1024)
#define CONSOLE_MAX_PER_UID 4
#define CONSOLE_MAX	    64
#define CONSOLE_POLL_MS	    250

struct vmmd;
struct console_stream;

/* Takes the connection fd when it returns 0 (the "ok" reply is sent and
 * the stream runs on the loop); -errno with a message for the client in
 * err ("job 42: ...") otherwise, the fd left to the caller. */
int console_begin(struct vmmd *d, int fd, uid_t uid, uint32_t job, bool follow,
		  char *err, size_t errlen);
/* At shutdown: ends every stream. */
void console_close_all(struct vmmd *d);

#endif
