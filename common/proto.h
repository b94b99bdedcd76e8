/* SPDX-License-Identifier: MIT */
/*
 * The protocol between vmmd and its clients (SPANK plugin, vmenv-exec,
 * vmenvctl) on vmmd's Unix socket.
 *
 * A message is a u32 big-endian length (at most PROTO_MAX_MSG) followed by
 * that many bytes holding one JSON object. File descriptors (a task's stdio,
 * the batch script) travel as SCM_RIGHTS with the first bytes of a message.
 * JSON lives only in proto.c: callers see C structs. Unknown ops and unknown
 * keys are refused, so both ends notice a version mismatch at once.
 *
 * Requests (client -> vmmd):
 *   {"op":"start","job":N,"uid":U,"gid":G,"image":"tiny",       root/SlurmUser
 *    "request":{"vm-hugepages":"2M",...}}   the user's other --vm-* options
 *                                           as given (optional)
 *   {"op":"stop","job":N}                                        root/SlurmUser
 *   {"op":"step_end","job":N}   a step of N ended here; vmmd stops the guest
 *                               once Slurm says the job is over  root/SlurmUser
 *   {"op":"exec","job":N,"argv":[..],"env":[..],"cwd":"/x",
 *    "stdin":bool,"merge_stderr":bool,"script":bool[,"relay":true]
 *    [,"bulk":true]}   fds: 0,1,2 (the task's pipes) [,script, stdout]
 *   {"op":"signal","signal":S}             on an exec connection, any time
 *   {"op":"reattach","job":N,"session":S,"token":"<64 hex>","out":B,
 *    "err":B,"stdin":bool,"merge_stderr":bool}   fds: 0,1,2 (new pipes)
 *                               [, a batch step's own stdout]
 *                               a step's task after a vmmd restart
 *                               (docs/restart.md): out/err are the bytes
 *                               of each stream it holds; the task must be
 *                               the session's owner (SO_PEERCRED) and
 *                               know its token
 *   {"op":"status"}   {"op":"list"}
 *   {"op":"checkpoint","job":N}   save now, go on (the job's owner or root)
 *   {"op":"console","job":N,"follow":bool}   the job's console log (its
 *                               owner or root): after the ok reply, the
 *                               log's raw bytes until vmmd closes
 *   {"op":"metrics"}            the node's numbers (anyone)
 *   {"op":"overlay_list"}       kept overlays (--vm-keep-overlay): the
 *                               asker's own; root's: all
 *   {"op":"overlay_get","job":N}  the kept overlay, to its owner or root:
 *                               the ok reply carries it as one read-only
 *                               fd (SCM_RIGHTS) that vmmd opened itself
 *   {"op":"overlay_rm","job":N}   remove it (owner or root)
 * Replies (vmmd -> client):
 *   {"ok":true} / {"ok":false,"error":"job 42: ..."}
 *   exec: {"event":"session","session":S[,"token":"<64 hex>"]} (the
 *         command goes to the guest now: never send it again; the token:
 *         what a reattach needs), {"event":"started"} then {"event":"exit",
 *         "code":C} or
 *         {"event":"exit","signal":S} or {"event":"error","error":".."}
 *         or {"event":"checkpointed","error":"job 42: checkpointed on
 *         node n1, requeued","code":C}: the guest was saved; the task
 *         ends (with C) and a task of the restarted job re-attaches;
 *         before "started", while the job's image downloads:
 *         {"event":"progress","image":"debian12:2025.1","done":B,
 *          "total":B,"bps":R,"ms":T,"ready":bool}   for display only
 *         (common/progress.h); ready: the image is in, T ms after the
 *         job asked for it. Sent only to a task that waits, so an older
 *         vmenv-exec never meets it (vmmd and vmenv-exec ship together,
 *         and a vmmd restart ends the connections of the old one).
 *   reattach: {"event":"started","stdin_offset":B,"stdin_eof":bool}
 *         (the guest holds B bytes of stdin: the task sends the rest
 *         again), then as exec; or {"event":"error",...}
 *   status: {"ok":true,"status":{...}}   list: {"ok":true,"jobs":[...]}
 *   metrics: {"ok":true,"text":"# HELP ..."} (Prometheus' text format)
 *   overlay_list, overlay_get: {"ok":true,"overlays":[{"job":N,"uid":U,
 *         "node":"n1","image":"tiny","base":"/var/cache/...","bytes":B,
 *         "created":T,"expires":T}]}
 */
#ifndef VMENV_PROTO_H
#define VMENV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "vmspec.h"

#define PROTO_MAX_MSG	    (4u * 1024u * 1024u)
#define PROTO_MAX_FDS	    5
#define PROTO_MAX_ERROR	    512
#define PROTO_MAX_STRS	    65536
#define PROTO_MAX_IMAGE_REF 160 /* "name:version" (catalog_image_ref) */
/* Jobs an evacuation moved that a list names (vmenvctl evacuate --wait). */
#define PROTO_MAX_MOVED 1024
/* An evacuation's reason: printable ASCII, it goes to Slurm's drain
 * reason and to the jobs' messages (with the NUL). */
#define PROTO_MAX_REASON 161

enum proto_op {
	PROTO_OP_START = 1,
	PROTO_OP_STOP,
	PROTO_OP_EXEC,
	PROTO_OP_SIGNAL,
	PROTO_OP_STATUS,
	PROTO_OP_LIST,
	PROTO_OP_STEP_END,
	PROTO_OP_CHECKPOINT,
	PROTO_OP_CONSOLE,
	PROTO_OP_METRICS,
	PROTO_OP_OVERLAY_LIST,
	PROTO_OP_OVERLAY_GET,
	PROTO_OP_OVERLAY_RM,
	PROTO_OP_EVACUATE,
	PROTO_OP_REATTACH,
	PROTO_OP_WARM,
};

/* A session's re-attach token: 32 random bytes, in hex. */
#define PROTO_TOKEN_HEX 64

struct proto_start {
	uint32_t job_id;
	uint32_t uid;
	uint32_t gid;
	char image[VMENV_MAX_IMAGE_NAME];
	/* The user's other options, indexed by enum vmspec_opt, as the user
	 * wrote them (malloc'ed; NULL: not given; opts[VMSPEC_OPT_ENV] is
	 * never used: that is image). The protocol only bounds them; vmmd
	 * parses them and checks them against its own policies, so a bad
	 * value fails the job with the reason. */
	char *opts[VMSPEC_NOPTS];
};

struct proto_exec {
	uint32_t job_id;
	bool want_stdin;
	bool merge_stderr;
	bool script;
	bool relay; /* output through the agent, not a bulk port (benchmarks) */
	/* a bulk port even where steps must survive a vmmd restart
	 * (session_restarts; the step then does not) */
	bool bulk;
	char *cwd;
	size_t argc;
	char **argv; /* argc + NULL */
	size_t envc;
	char **envp; /* envc + NULL */
};

struct proto_reattach {
	uint32_t session;
	char token[PROTO_TOKEN_HEX + 1];
	uint64_t out_bytes; /* of the session's stdout the task holds */
	uint64_t err_bytes;
};

/* vmenvctl image warm (root): a template of an image for a guest shape
 * made ahead of the jobs (vmmd/warm/warm.h). */
struct proto_warm {
	char image[VMENV_MAX_IMAGE_NAME];
	uint32_t vcpus;	  /* 0: 1 */
	uint32_t mem_mib; /* 0: the node's default_mem_mib */
	bool checkpoint;  /* the shape of a --vm-checkpoint job */
	bool query;	  /* only say where the template stands */
};

struct proto_request {
	enum proto_op op;
	uint32_t job_id;	       /* start, stop, exec */
	int signo;		       /* signal */
	bool follow;		       /* console */
	char reason[PROTO_MAX_REASON]; /* evacuate */
	struct proto_start start;
	struct proto_exec exec; /* reattach: want_stdin, merge_stderr */
	struct proto_reattach re;
	struct proto_warm warm;
};

enum proto_kind {
	PROTO_REPLY_OK = 1,
	PROTO_REPLY_ERROR,
	PROTO_EV_STARTED,
	PROTO_EV_EXIT,
	PROTO_EV_ERROR,
	PROTO_EV_CHECKPOINTED, /* error: the message; exit_value: the code */
	PROTO_EV_PROGRESS,     /* progress */
	PROTO_EV_SESSION,      /* session, token */
};

/* An image download a task waits for. Numbers for display only: the
 * receiver clamps them (done to total) and decides nothing on them. */
struct proto_progress {
	char image[PROTO_MAX_IMAGE_REF]; /* "debian12:2025.1" */
	uint64_t done;			 /* bytes of the image in the cache */
	uint64_t total;			 /* the image's size (catalog) */
	uint64_t bps;			 /* rate seen by this job, 0: unknown */
	uint64_t elapsed_ms;		 /* since the job asked for it */
	bool ready;			 /* all of it is in */
};

struct proto_job_info {
	uint32_t job_id;
	uint32_t uid;
	char image[VMENV_MAX_IMAGE_NAME];
	char state[32];
	char domain[160];
	char console[VMENV_MAX_PATH];
	uint32_t vcpus;
	uint32_t mem_mib;
	uint32_t sessions;
	char error[PROTO_MAX_ERROR];
	int64_t ckpt_due;     /* next checkpoint (wall clock s), 0: none */
	uint32_t ckpt_lead_s; /* the lead it was computed with */
	/* How its guest started: "booted", "warm", or "booted: why not
	 * warm" for a job that asked (vmmd/warm/warm.h). */
	char started[200];
};

/* A kept overlay (vmmd/ovkeep.h). */
struct proto_overlay_info {
	uint32_t job_id;
	uint32_t uid;
	char node[128];
	char image[VMENV_MAX_IMAGE_NAME];
	char base[VMENV_MAX_PATH]; /* the cached image it is backed by */
	uint64_t bytes;
	int64_t created; /* wall clock s */
	int64_t expires; /* swept after */
};

struct proto_status {
	char node[128];
	char version[32];
	char domain_type[16];
	char libvirt_uri[256];
	uint32_t jobs;
	uint64_t uptime_s;
	char policy_dir[VMENV_MAX_PATH];
	bool policy_loaded;		    /* a good set is in force */
	uint32_t policies;		    /* files in that set */
	char policy_error[PROTO_MAX_ERROR]; /* why the last load failed */
};

struct proto_reply {
	enum proto_kind kind;
	char error[PROTO_MAX_ERROR];
	bool exit_signaled;
	int exit_value; /* exit code, or signal number when exit_signaled */
	struct proto_progress progress; /* PROTO_EV_PROGRESS */
	/* PROTO_EV_SESSION; and PROTO_EV_STARTED after a reattach
	 * (reattached: the stdin the guest holds). */
	uint32_t session;
	char token[PROTO_TOKEN_HEX + 1];
	bool reattached;
	uint64_t stdin_offset;
	bool stdin_eof;
	bool has_status;
	struct proto_status status;
	bool has_jobs;
	size_t njobs;
	struct proto_job_info *jobs;
	/* With jobs, for root: the node's evacuation saved and requeued
	 * these (freed by proto_reply_clear). */
	size_t nmoved;
	uint32_t *moved;
	char *text; /* metrics (malloc'ed; freed by proto_reply_clear) */
	bool has_overlays;
	size_t noverlays;
	struct proto_overlay_info *overlays; /* freed by proto_reply_clear */
};

/* Encoding: *ret is a malloc'ed JSON text (caller frees). 0 or -errno. */
int proto_request_encode(const struct proto_request *req, char **ret,
			 size_t *ret_len);
int proto_reply_encode(const struct proto_reply *rep, char **ret,
		       size_t *ret_len);
/* Decoding: 0, or -EBADMSG with a reason in err (never echoes more than a
 * bounded, sanitised part of the input). *ret must be freed with _clear. */
int proto_request_decode(const char *buf, size_t len, struct proto_request *ret,
			 char *err, size_t errlen);
void proto_request_clear(struct proto_request *req);
int proto_reply_decode(const char *buf, size_t len, struct proto_reply *ret,
		       char *err, size_t errlen);
void proto_reply_clear(struct proto_reply *rep);

/* Blocking send of one framed message with optional fds. 0 or -errno. */
int proto_send(int fd, const char *msg, size_t len, const int *fds,
	       size_t nfds);
int proto_send_request(int fd, const struct proto_request *req, const int *fds,
		       size_t nfds);
int proto_send_reply(int fd, const struct proto_reply *rep);
/* The reply with one fd (SCM_RIGHTS): vmmd's answer to overlay_get. */
int proto_send_reply_fd(int fd, const struct proto_reply *rep, int xfd);

/* Incremental receiver for non-blocking sockets (vmmd). */
struct proto_rx {
	uint8_t hdr[4];
	size_t hdr_got;
	char *buf;
	size_t need;
	size_t got;
	int fds[PROTO_MAX_FDS];
	size_t nfds;
	/* Longest message taken (0: PROTO_MAX_MSG); kept by reset. */
	size_t max;
};
void proto_rx_init(struct proto_rx *rx);
/* Reads what is available. Returns 1 when a whole message is in rx->buf
 * (rx->got bytes, NUL-terminated; fds in rx->fds), 0 when more is needed,
 * -ECONNRESET at EOF, -EMSGSIZE for a length over rx->max (rx->need then
 * holds it; nothing was allocated), -EPROTO for too many fds, other
 * -errno. */
int proto_rx_feed(struct proto_rx *rx, int fd);
/* Releases the message (closing fds not taken) and readies the next one. */
void proto_rx_reset(struct proto_rx *rx);

/* Blocking receive of one reply, waiting at most timeout_ms (-1 forever). */
int proto_recv_reply(int fd, int timeout_ms, struct proto_reply *ret, char *err,
		     size_t errlen);
/* The same, taking the one fd the reply may carry into *ret_fd (-1: none;
 * more than one: -EPROTO, none kept). */
int proto_recv_reply_fd(int fd, int timeout_ms, struct proto_reply *ret,
			int *ret_fd, char *err, size_t errlen);

/* Connect, send req, receive one reply. */
int proto_call(const char *sock_path, const struct proto_request *req,
	       int timeout_ms, struct proto_reply *ret, char *err,
	       size_t errlen);

const char *proto_op_name(enum proto_op op);
/* An evacuation's reason as vmmd takes it: 1 to PROTO_MAX_REASON - 1
 * bytes of printable ASCII. 0 or -EBADMSG with why in err. */
int proto_reason_check(const char *reason, char *err, size_t errlen);

#endif
