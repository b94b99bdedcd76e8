/* SPDX-License-Identifier: MIT */
/*
 * agentwire: the frame format between vmmd (host) and vmenv-agent (guest) on
 * the virtio-serial port named AW_PORT_NAME.
 *
 * The same file is compiled into vmmd and into the static guest agent, so the
 * two ends can never disagree. It does no I/O and does not log.
 *
 * A frame is a 12-byte header followed by `len` payload bytes:
 *
 *   offset 0  u32 len      payload length, big endian
 *   offset 4  u8  type     enum aw_type
 *   offset 5  u8  flags    must be 0
 *   offset 6  u16 reserved must be 0
 *   offset 8  u32 session  big endian; 0 = the channel itself
 *
 * The guest is untrusted: the host accepts at most AW_MAX_AGENT_PAYLOAD bytes
 * per frame from it, and checks every field before use. Payload fields are
 * u32 (big endian), i64 (big endian) and str (u32 length + bytes, no NUL
 * inside, no terminator on the wire).
 *
 * Handshake: the host sends HELLO(version) when it connects and again every
 * second until it hears HELLO back. QEMU holds what the host writes before
 * the guest opened the port (a blocking writer would hang, so the host
 * writes non-blocking) and delivers it all once the port opens: the host
 * must accept several HELLO answers. The agent answers each HELLO with
 * HELLO(version, flags, info). The host then sends SETUP once; SETUP_OK means
 * the guest is ready for EXEC.
 *
 * Versions: the agent answers HELLO with the lower of the host's version and
 * its own, and both ends then speak that version. So a version 1 vmmd (which
 * refuses any other answer) keeps working with a newer agent, and a newer
 * vmmd with an old image's agent. Version 2 adds the multi-node fields at
 * the end of SETUP (struct aw_setup); a version 1 SETUP ends after the
 * mounts, and the v2 fields then read as empty.
 *
 * Version 3 (docs/restart.md): sessions outlive the host's connection. A
 * v3 agent whose host goes away (vmmd restarted) does not kill its
 * sessions: each waits, its output paused, for a new host's RESUME or
 * RELEASE. Until the host returns window with CREDIT, the agent keeps a
 * copy of the output it sent (at most AW_WINDOW per session); RESUME
 * names how much of each stream the step's task holds, and the agent
 * sends the rest again. EXIT no longer ends the session: the host
 * sends RELEASE once the task has it, so an EXIT lost with a host is sent
 * again to the next one.
 *
 * Bulk ports (docs/design.md §9): an agent that sets AW_HELLO_BULK knows
 * EXEC's AW_EXEC_BULK. The guest then has up to AW_MAX_BULK_PORTS more
 * virtio-serial ports named AW_BULK_PORT_FMT; such an EXEC names one, and
 * the session's stdout (and stderr when merged) is that port itself: no
 * frames, no window. The agent writes bulk_start into the port before the
 * command's first byte and bulk_end after the command (and its process
 * group) ended, then sends EXIT. STARTED then carries a second u32: 0 when
 * the port is the command's stdout, else the errno of opening it (EBUSY:
 * an earlier session's process still holds it), and the session's output
 * comes in STDOUT/STDERR frames as without the flag.
 *
 * Flow control: each session has a window of AW_WINDOW bytes per direction.
 * The agent may have at most AW_WINDOW bytes of STDOUT+STDERR payload in
 * flight per session; the host returns window with CREDIT(n) after it has
 * written n bytes out. The host likewise sends at most AW_WINDOW bytes of
 * STDIN per session before the agent returns CREDIT(n).
 */
#ifndef VMENV_AGENTWIRE_H
#define VMENV_AGENTWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AW_PORT_NAME   "org.vmenv.agent.0"
#define AW_VERSION     3u
#define AW_VERSION_MIN 1u
#define AW_HDR_LEN     12u
/* Largest frame the host accepts from the guest. */
#define AW_MAX_AGENT_PAYLOAD (64u * 1024u)
/* Largest frame the agent accepts from the host (EXEC carries the batch
 * script, up to Slurm's 4 MB default, plus argv and environment). */
#define AW_MAX_HOST_PAYLOAD (12u * 1024u * 1024u)
#define AW_WINDOW	    (2u * 1024u * 1024u)
#define AW_MAX_GROUPS	    64u
/* Commands running at once in one guest (the agent's table; vmmd refuses
 * more, which also bounds what it buffers per job: AW_WINDOW each). */
#define AW_MAX_SESSIONS 64u
/* The working directory and a job's --vm-mount directories (VMSPEC_MAX_MOUNTS). */
#define AW_MAX_MOUNTS 17u
#define AW_MAX_ARGS   65536u /* argv + envp entries each */
#define AW_MAX_STR    (1u * 1024u * 1024u)
/* Nodes of one job (SETUP v2 peers): 65536 peers of the longest name fit in
 * AW_MAX_HOST_PAYLOAD. */
#define AW_MAX_PEERS 65536u
/* Longest peer or host name (HOST_NAME_MAX) and the job token's length. */
#define AW_MAX_HOSTNAME 64u
#define AW_TOKEN_LEN	64u
/* Bulk ports: most per guest, and the length of each marker (random,
 * drawn by the host per session: unguessable for other sessions). */
#define AW_MAX_BULK_PORTS 16u
#define AW_BULK_MARK_LEN  16u
#define AW_BULK_PORT_FMT  "org.vmenv.bulk.%u"
/* TCP port of the agent's rsh service on the job's private network. */
#define AW_RSH_PORT 7022u

enum aw_type {
	AW_HELLO = 1,  /* host: u32 version. agent: u32 version, u32 flags
			  (AW_HELLO_SETUP_DONE), str agent description */
	AW_SETUP,      /* host: struct aw_setup */
	AW_SETUP_OK,   /* agent: empty */
	AW_SETUP_FAIL, /* agent: u32 errno, str message */
	AW_EXEC,       /* host, session != 0: struct aw_exec */
	AW_STARTED,    /* agent: u32 pid [, u32 bulk errno: only after an
			  EXEC with AW_EXEC_BULK] */
	AW_EXEC_FAIL,  /* agent: u32 errno, str message; session is over */
	AW_STDIN,      /* host: data; empty payload = EOF */
	AW_STDOUT,     /* agent: data; empty payload = EOF */
	AW_STDERR,     /* agent: data; empty payload = EOF */
	AW_CREDIT,     /* either: u32 bytes consumed (returns window) */
	AW_SIGNAL,     /* host: u32 signal number, sent to the process group */
	AW_EXIT,       /* agent: u32 kind (AW_EXIT_*), u32 code or signal;
			  sent after both output EOFs; session is over */
	AW_SHUTDOWN,   /* host, session 0: sync and power off */
	AW_ERROR,      /* agent, session 0: str message (protocol error seen) */
	/* Checkpoint (docs/checkpoint.md), session 0, only to an agent that
	 * set AW_HELLO_CKPT: */
	AW_CKPT_PREPARE, /* host: u32 flags (AW_CKPT_*). The agent runs the
			    image's prepare hook, freezes the job's processes,
			    releases the 9p mounts (AW_CKPT_MOUNTS), stops
			    reading the sessions' output and answers CKPT_OK
			    (all output before it was sent) or CKPT_REFUSED
			    (everything as before) */
	AW_CKPT_RESUME,	 /* host: i64 wall clock (s), u32 flags [, with
			    AW_CKPT_SEED: AW_SEED_LEN bytes]. Steps the
			    clock, remounts, thaws, runs the resume hook, reads
			    output again; answers CKPT_OK or CKPT_REFUSED */
	AW_CKPT_OK,	 /* agent: u32 the request's type */
	AW_CKPT_REFUSED, /* agent: u32 the request's type, u32 errno, str
			    reason */
	/* Version 3, on a session: */
	AW_RESUME,  /* host: i64 stdout bytes, i64 stderr bytes the task holds.
		       The agent answers RESUMED, then sends the session's
		       output after those offsets again, each stream's EOF
		       and the EXIT if they were sent before */
	AW_RESUMED, /* agent: u32 errno (0; ENOENT: no such session; ERANGE:
		       an offset outside what it kept), i64 STDIN bytes it
		       took, u32 1 when it took STDIN's EOF, u32 the STDIN
		       window it has free (CREDIT it sent may have been lost
		       with the old host) */
	AW_RELEASE, /* host: the task has the EXIT (or is gone): the agent
		       kills what is left of the session and forgets it */
	AW_TYPE_END
};

#define AW_HELLO_SETUP_DONE 0x1u
/* The agent knows the CKPT_* frames. */
#define AW_HELLO_CKPT 0x2u
/* The agent holds a prepared checkpoint (frozen, output paused): the host
 * it now talks to is a restored guest's, and must send CKPT_RESUME. */
#define AW_HELLO_CKPT_HELD 0x4u
/* The agent knows AW_EXEC_BULK. */
#define AW_HELLO_BULK 0x8u
/* The guest may be a warm-start template (docs/warmstart.md): the agent
 * is the guest's init, so nothing ran before it that could have read
 * state a job must not share (boot_id), and it knows AW_CKPT_SEED. Only
 * while no SETUP has come. */
#define AW_HELLO_WARM 0x10u

/* CKPT_PREPARE / CKPT_RESUME flags */
#define AW_CKPT_MOUNTS 0x1u /* unmount the SETUP mounts / mount them again */
/* CKPT_RESUME only: fresh entropy follows; the agent credits it to the
 * kernel's pool and reseeds the CRNG (a warm-started guest's random state
 * is its template's until then). */
#define AW_CKPT_SEED 0x2u
#define AW_SEED_LEN  32u

enum aw_exit_kind { AW_EXIT_CODE = 0, AW_EXIT_SIGNAL = 1 };

/* EXEC flags */
#define AW_EXEC_MERGE_STDERR 0x1u /* stderr goes to the STDOUT stream */
#define AW_EXEC_STDIN	     0x2u /* stdin comes in STDIN frames; else /dev/null */
#define AW_EXEC_SCRIPT \
	0x4u /* run `script` (written to a private file)
				     with argv[1..] as its arguments */
/* stdout (and a merged stderr) is bulk port `bulk_port`, between the
 * markers (see above) */
#define AW_EXEC_BULK 0x8u

struct aw_hdr {
	uint32_t len;
	uint8_t type;
	uint32_t session;
};

/* Growable output buffer. Owned by the caller; aw_buf_free() releases it. */
struct aw_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Bounded reader over a payload; any overrun sets err and later reads
 * return zero values. */
struct aw_reader {
	const uint8_t *p;
	size_t left;
	int err;
};

/* How a share reaches the guest (vmmd/files/jobfiles.h). */
enum aw_mount_transport {
	AW_MOUNT_VIRTIO_9P = 0, /* tag: QEMU's virtio-9p mount tag */
	AW_MOUNT_SERVED = 1,	/* tag: the virtio-serial port vmenv-9p
				   serves; the agent relays (relay.h) */
	AW_MOUNT_TRANSPORT_END
};

/* On the wire: tag and path per mount; last in SETUP (after the version
 * 2 fields when there are), only when some
 * mount is not AW_MOUNT_VIRTIO_9P, one u32 transport per mount (an agent
 * that predates it refuses such a SETUP as malformed, rather than
 * mounting the wrong thing). */
struct aw_mount {
	char *tag;  /* 9p mount tag, or the port's name */
	char *path; /* absolute path in the guest */
	uint32_t transport;
};

struct aw_peer {
	char *name; /* host name chars only (aw_hostname_ok) */
	char *addr; /* IPv4 dotted quad */
};

/*
 * SETUP. Version 2 appends, after the mounts:
 *   u32 node_index, str net_addr, str job_token, u32 ngroups + ngroups u32,
 *   u32 npeers + npeers x (str name, str addr)
 * and both codecs check them (aw_setup_check_net): net_addr is "" (no
 * network) or "a.b.c.d/prefix" and then peers[node_index] has that address;
 * job_token is "" or AW_TOKEN_LEN lowercase hex digits and needs net_addr;
 * node_index < npeers (or 0 without peers); npeers <= AW_MAX_PEERS.
 */
struct aw_setup {
	char *hostname;
	char *user; /* passwd entry to add: name, uid, gid, home */
	uint32_t uid;
	uint32_t gid;
	char *group; /* name of the primary group */
	char *home;
	int64_t time_sec; /* host wall clock, to step the guest clock */
	uint32_t nmounts;
	struct aw_mount mounts[AW_MAX_MOUNTS];
	/* version 2; a version 1 decode leaves strings "" and counts 0 */
	uint32_t node_index;
	char *net_addr;	  /* CIDR of this guest's NIC, "" = no network */
	char *job_token;  /* secret of the job's rsh service, "" = none */
	uint32_t ngroups; /* the job user's supplementary groups, for rsh */
	uint32_t groups[AW_MAX_GROUPS];
	uint32_t npeers;
	struct aw_peer *peers; /* npeers entries, in node index order */
};

struct aw_exec {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[AW_MAX_GROUPS];
	uint32_t flags;
	char *cwd;
	uint32_t argc;
	char **argv; /* argc entries + NULL */
	uint32_t envc;
	char **envp; /* envc entries + NULL */
	uint32_t script_len;
	char *script; /* script_len bytes + NUL, only with AW_EXEC_SCRIPT */
	/* Only with AW_EXEC_BULK, last on the wire: u32 port (below
	 * AW_MAX_BULK_PORTS), then the two markers, which differ. */
	uint32_t bulk_port;
	uint8_t bulk_start[AW_BULK_MARK_LEN];
	uint8_t bulk_end[AW_BULK_MARK_LEN];
};

/* Header: encode into 12 bytes; decode checks flags/reserved/type and the
 * length against max_payload. Returns 0 or -EPROTO / -EMSGSIZE. */
void aw_hdr_encode(uint8_t out[AW_HDR_LEN], uint32_t len, uint8_t type,
		   uint32_t session);
int aw_hdr_decode(const uint8_t in[AW_HDR_LEN], size_t max_payload,
		  struct aw_hdr *ret);

/* Buffer: every put returns 0 or -ENOMEM. */
void aw_buf_free(struct aw_buf *b);
int aw_put_u32(struct aw_buf *b, uint32_t v);
int aw_put_i64(struct aw_buf *b, int64_t v);
int aw_put_bytes(struct aw_buf *b, const void *p, size_t n);
int aw_put_str(struct aw_buf *b, const char *s);
/* Appends a whole frame (header + payload) to b. */
int aw_put_frame(struct aw_buf *b, uint8_t type, uint32_t session,
		 const void *payload, size_t len);

void aw_reader_init(struct aw_reader *r, const void *p, size_t n);
uint32_t aw_get_u32(struct aw_reader *r);
int64_t aw_get_i64(struct aw_reader *r);
/* n raw bytes into out (zeroed and err set on overrun). */
void aw_get_bytes(struct aw_reader *r, void *out, size_t n);
/* Returns a newly allocated NUL-terminated copy (caller frees), or NULL and
 * sets err on overrun, embedded NUL, length > max, or no memory. */
char *aw_get_str(struct aw_reader *r, size_t max);
/* A u32 count (at most max_n) and that many strs (each at most max_len)
 * into a NULL-terminated array (free with strv_free), or NULL and err. */
char **aw_get_strv(struct aw_reader *r, uint32_t max_n, size_t max_len,
		   uint32_t *ret_n);
/* 0 when the whole payload was consumed without error, else -EPROTO. */
int aw_reader_done(const struct aw_reader *r);

/* Payload codecs. Encoders append the payload only (not the header).
 * Decoders return 0 and fill *ret (free with the matching _clear), or
 * -EPROTO / -ENOMEM leaving *ret empty. */
/* SETUP takes the version both ends agreed on (AW_VERSION_MIN..AW_VERSION,
 * else -EINVAL); the encoder leaves out the v2 fields for version 1, and
 * refuses (-EINVAL) v2 values that the decoder would refuse. NULL strings
 * of the v2 fields encode as "". */
int aw_setup_encode(const struct aw_setup *s, uint32_t version,
		    struct aw_buf *b);
int aw_setup_decode(const void *p, size_t n, uint32_t version,
		    struct aw_setup *ret);
void aw_setup_clear(struct aw_setup *s);

/* Validators of the v2 fields, for both ends and for vmmd's own checks. */
bool aw_hostname_ok(const char *s); /* 1..AW_MAX_HOSTNAME of [A-Za-z0-9.-],
				     not starting with - or . */
bool aw_ipv4_ok(const char *s);	    /* dotted quad, as inet_pton takes it */
bool aw_token_ok(const char *s);    /* AW_TOKEN_LEN of [0-9a-f] */
/* "a.b.c.d/N", 1 <= N <= 32; fills the address (network byte order) and
 * the prefix length. Returns 0 or -EINVAL. */
int aw_cidr_parse(const char *s, uint32_t *ret_addr_be, unsigned *ret_prefix);
/* The consistency rules above; 0 or -EINVAL. */
int aw_setup_check_net(const struct aw_setup *s);

int aw_exec_encode(const struct aw_exec *e, struct aw_buf *b);
int aw_exec_decode(const void *p, size_t n, struct aw_exec *ret);
void aw_exec_clear(struct aw_exec *e);

const char *aw_type_name(uint8_t type);

#endif
