/* SPDX-License-Identifier: MIT */
/*
 * rshwire: the protocol between vmenv-rsh (the client in a job's guest) and
 * the rsh service of vmenv-agent on another guest of the same job, over one
 * TCP connection to port AW_RSH_PORT on the job's private network.
 *
 * The client is whoever can reach the port; the server trusts nothing in
 * the request until its MAC checked. Same encoding as agentwire (u32 big
 * endian, str = u32 length + bytes without NUL), its own framing:
 *
 *   offset 0  u32 len    payload length, big endian
 *   offset 4  u8  type   enum rsh_type
 *   offset 5  u8[3]      must be 0
 *
 * Conversation (version 2): the job's token (64 hex digits, from vmmd) is
 * the key of HMAC-SHA256 and never travels.
 *   client  HELLO(u32 version, client nonce[32]) as the first frame
 *   server  CHALLENGE(u32 version, server nonce[32], from getrandom), or
 *           REFUSE(u32 errno, str message) and closes: limits, version
 *   client  REQUEST: u32 version, mac[32], then the body (cwd, argv, env:
 *           struct rsh_request); mac = HMAC(token, "vmenv-rsh 2 request"
 *           NUL, server nonce, client nonce, body bytes as sent)
 *   server  REFUSE and closes: bad MAC, limits, bad request, exec failure;
 *           or ACCEPT(u32 pid, mac[32]) once the command runs, mac =
 *           HMAC(token, "vmenv-rsh 2 accept" NUL, server nonce, client
 *           nonce, the request's mac, pid): the client knows it reached a
 *           guest of its own job before it sends any input
 *   client  STDIN data frames, empty = EOF; SIGNAL(u32 signo) to the
 *           command's process group
 *   server  STDOUT / STDERR data frames, empty = EOF, then
 *           EXIT(u32 kind, u32 code or signal: enum aw_exit_kind) and closes
 * A fresh server nonce per connection makes a recorded exchange worthless
 * (replaying its REQUEST answers another challenge); the body is under the
 * MAC, so a recorded MAC cannot carry another command; the labels differ
 * per direction, so neither side's MAC answers for the other.
 * A version 1 client (the token in clear, REQUEST first) gets REFUSE
 * (EPROTONOSUPPORT) naming the reason, and nothing of its request is used.
 * The client closing the connection kills the command's process group.
 * There are no credits: TCP's own flow control bounds both ends, because
 * each side reads from the socket only while it has room for a frame.
 * What follows ACCEPT is not authenticated: the job's private segment
 * (vmmd/net/jobnet.h) is what keeps others from reading or forging it.
 */
#ifndef VMENV_RSHWIRE_H
#define VMENV_RSHWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"
#include "hmac256.h"

#define RSH_VERSION   2u
#define RSH_NONCE_LEN 32u
#define RSH_MAC_LEN   SHA256_LEN
/* HELLO and CHALLENGE: u32 version + nonce. */
#define RSH_HELLO_LEN (4u + RSH_NONCE_LEN)
/* REQUEST's fixed start: u32 version + mac; the body follows. */
#define RSH_REQUEST_HEAD (4u + RSH_MAC_LEN)
#define RSH_HDR_LEN	 8u
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
	RSH_ACCEPT,	 /* server: u32 pid, mac */
	RSH_REFUSE,	 /* server: u32 errno, str message; then closes */
	RSH_STDIN,	 /* client: data; empty = EOF */
	RSH_STDOUT,	 /* server: data; empty = EOF */
	RSH_STDERR,	 /* server: data; empty = EOF */
	RSH_SIGNAL,	 /* client: u32 signal number */
	RSH_EXIT,	 /* server: u32 kind, u32 code or signal; then closes */
	RSH_HELLO,	 /* client: u32 version, nonce */
	RSH_CHALLENGE,	 /* server: u32 version, nonce */
	RSH_TYPE_END
};

struct rsh_hdr {
	uint32_t len;
	uint8_t type;
};

/*
 * REQUEST: u32 version, mac[RSH_MAC_LEN], then the body: str cwd,
 * u32 argc + argc str, u32 envc + envc str. argv[0] is run as the server's
 * PATH search finds it (vmenv-rsh sends "/bin/sh", "-c", the joined
 * command, as ssh does); env entries are NAME=value with NAME allowed by
 * rsh_env_name_ok().
 */
struct rsh_request {
	uint32_t version;
	uint8_t mac[RSH_MAC_LEN];
	char *cwd;
	uint32_t argc;
	char **argv; /* argc entries + NULL */
	uint32_t envc;
	char **envp; /* envc entries + NULL */
};

/* The two nonces of one connection. */
struct rsh_nonces {
	uint8_t server[RSH_NONCE_LEN];
	uint8_t client[RSH_NONCE_LEN];
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

/* HELLO (client) and CHALLENGE (server). decode: 0, -EPROTO (malformed)
 * or -EPROTONOSUPPORT (well formed, *version is not RSH_VERSION). */
int rsh_hello_encode(uint32_t version, const uint8_t nonce[RSH_NONCE_LEN],
		     struct aw_buf *b);
int rsh_hello_decode(const void *p, size_t n, uint32_t *version,
		     uint8_t nonce[RSH_NONCE_LEN]);

/* Encoder refuses (-EINVAL) what the decoder would refuse and writes
 * q->mac as it is (rsh_request_sign fills it in afterwards); decoder
 * returns 0 and fills *ret (free with rsh_request_clear), or -EPROTO /
 * -ENOMEM with *ret empty, or -EPROTONOSUPPORT when the payload starts
 * with another version (a version 1 client: its token follows). */
int rsh_request_encode(const struct rsh_request *q, struct aw_buf *b);
int rsh_request_decode(const void *p, size_t n, struct rsh_request *ret);
void rsh_request_clear(struct rsh_request *q);

/* The first u32 of a REQUEST payload: 0 or -EPROTO (too short). */
int rsh_request_version(const void *p, size_t n, uint32_t *version);

/* The MAC over an encoded REQUEST payload (p, n: version, mac, body).
 * token: the job's (AW_TOKEN_LEN hex digits). -EPROTO when n is shorter
 * than RSH_REQUEST_HEAD. */
int rsh_request_mac(const char *token, const struct rsh_nonces *nn,
		    const void *p, size_t n, uint8_t out[RSH_MAC_LEN]);
/* Writes that MAC into the REQUEST payload that starts at b->data + start. */
int rsh_request_sign(const char *token, const struct rsh_nonces *nn,
		     struct aw_buf *b, size_t start);
/* Whether the payload's version is RSH_VERSION and its MAC is right
 * (compared in constant time). Looks at nothing else of the body. */
bool rsh_request_verify(const char *token, const struct rsh_nonces *nn,
			const void *p, size_t n);

/* ACCEPT: u32 pid, mac = the server's answer to the request's mac. */
void rsh_accept_mac(const char *token, const struct rsh_nonces *nn,
		    const uint8_t req_mac[RSH_MAC_LEN], uint32_t pid,
		    uint8_t out[RSH_MAC_LEN]);
int rsh_accept_encode(uint32_t pid, const uint8_t mac[RSH_MAC_LEN],
		      struct aw_buf *b);
int rsh_accept_decode(const void *p, size_t n, uint32_t *pid,
		      uint8_t mac[RSH_MAC_LEN]);

/* getrandom(2) for a nonce: 0 or -errno. flags as getrandom's (the agent
 * passes GRND_NONBLOCK: its loop must not wait). */
int rsh_nonce(uint8_t out[RSH_NONCE_LEN], unsigned flags);

const char *rsh_type_name(uint8_t type);

#endif
