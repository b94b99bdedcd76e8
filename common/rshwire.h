/* SPDX-License-Identifier: MIT */
/*
 * rshwire: the protocol between vmenv-rsh (the client in a job's guest) and
 * the rsh service of vmenv-agent on another guest of the same job, over one
 * TCP connection to port AW_RSH_PORT on the job's private network.
 *
 * The client is whoever can reach the port; the server trusts nothing in
 * the request until the token matched. Same encoding as agentwire (u32 big
 * endian, str = u32 length + bytes without NUL), its own framing:
 *
 *   offset 0  u32 len    payload length, big endian
 *   offset 4  u8  type   enum rsh_type
 *   offset 5  u8[3]      must be 0
 *
 * Conversation:
 *   client  REQUEST (struct rsh_request) as the first frame
 *   server  REFUSE(u32 errno, str message) and closes: bad token, limits,
 *           bad request, exec failure
 *           or ACCEPT(u32 pid) once the command runs
 *   client  STDIN data frames, empty = EOF; SIGNAL(u32 signo) to the
 *           command's process group
 *   server  STDOUT / STDERR data frames, empty = EOF, then
 *           EXIT(u32 kind, u32 code or signal: enum aw_exit_kind) and closes
 * The client closing the connection kills the command's process group.
 * There are no credits: TCP's own flow control bounds both ends, because
 * each side reads from the socket only while it has room for a frame.
 */
#ifndef VMENV_RSHWIRE_H
#define VMENV_RSHWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"

#define RSH_VERSION 1u
#define RSH_HDR_LEN 8u
/* Largest STDIN/STDOUT/STDERR payload. */
#define RSH_MAX_DATA (64u * 1024u)
/* Largest REQUEST: Linux takes at most 128 KiB per argument (MAX_ARG_STRLEN),
 * and `sh -c "joined command"` is one argument. */
#define RSH_MAX_REQUEST (256u * 1024u)
#define RSH_MAX_ARGS	4096u
#define RSH_MAX_ENV	64u
#define RSH_MAX_MSG	1024u

enum rsh_type {
	RSH_REQUEST = 1, /* client: struct rsh_request */
	RSH_ACCEPT,	 /* server: u32 pid */
	RSH_REFUSE,	 /* server: u32 errno, str message; then closes */
	RSH_STDIN,	 /* client: data; empty = EOF */
	RSH_STDOUT,	 /* server: data; empty = EOF */
	RSH_STDERR,	 /* server: data; empty = EOF */
	RSH_SIGNAL,	 /* client: u32 signal number */
	RSH_EXIT,	 /* server: u32 kind, u32 code or signal; then closes */
	RSH_TYPE_END
};

struct rsh_hdr {
	uint32_t len;
	uint8_t type;
};

/*
 * REQUEST: u32 version, str token, str cwd, u32 argc + argc str,
 * u32 envc + envc str. argv[0] is run as the server's PATH search finds
 * it (vmenv-rsh sends "/bin/sh", "-c", the joined command, as ssh does);
 * env entries are NAME=value with NAME allowed by rsh_env_name_ok().
 */
struct rsh_request {
	uint32_t version;
	char *token;
	char *cwd;
	uint32_t argc;
	char **argv; /* argc entries + NULL */
	uint32_t envc;
	char **envp; /* envc entries + NULL */
};

void rsh_hdr_encode(uint8_t out[RSH_HDR_LEN], uint32_t len, uint8_t type);
/* Checks the reserved bytes, the type and len <= max. 0, -EPROTO or
 * -EMSGSIZE. */
int rsh_hdr_decode(const uint8_t in[RSH_HDR_LEN], size_t max,
		   struct rsh_hdr *ret);
/* Appends a whole frame. 0, -EMSGSIZE (payload over RSH_MAX_REQUEST) or
 * -ENOMEM. */
int rsh_put_frame(struct aw_buf *b, uint8_t type, const void *payload,
		  size_t len);

/* The variables a client may pass: PATH, LD_LIBRARY_PATH, LANG, LC_*, TZ,
 * TERM, TMPDIR. The rest of the environment is the server's. */
bool rsh_env_name_ok(const char *entry);

/* Encoder refuses (-EINVAL) what the decoder would refuse; decoder returns
 * 0 and fills *ret (free with rsh_request_clear), or -EPROTO / -ENOMEM
 * with *ret empty. */
int rsh_request_encode(const struct rsh_request *q, struct aw_buf *b);
int rsh_request_decode(const void *p, size_t n, struct rsh_request *ret);
void rsh_request_clear(struct rsh_request *q);

/* Token check that takes the same time wherever the first difference is. */
bool rsh_token_equal(const char *a, const char *b);

const char *rsh_type_name(uint8_t type);

#endif
