/* SPDX-License-Identifier: MIT */
/*
 * vmenv-agent: the guest side of agentwire. One single-threaded poll() loop
 * serves the virtio-serial port, the pipes of every EXEC session and a
 * signalfd for SIGCHLD. It runs as PID 1 in the tiny image and as an
 * ordinary service in a full distribution.
 */
#ifndef VMENV_AGENT_H
#define VMENV_AGENT_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
/* strchrnul, pipe2, asprintf; config.h defines it in the automake build. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentwire.h"
#include "rshwire.h"

#define AGENT_MAX_SESSIONS ((int)AW_MAX_SESSIONS)
/* Largest STDOUT/STDERR payload the agent sends. */
#define AGENT_OUT_FRAME (64u * 1024u)
/* Most output moved from one pipe per wakeup. */
#define AGENT_READ_BATCH (512u * 1024u)
/* Size asked for the job's stdout/stderr pipes. */
#define AGENT_PIPE_SIZE (1024 * 1024)
/* Host frames are read only while less than this is waiting to go out, so
 * a host that stops reading cannot make the agent buffer without bound. */
#define AGENT_OUT_HIGH (1024u * 1024u)
/* After the main process exited, how long background children may keep the
 * output pipes open before the process group is killed. */
#define AGENT_EXIT_GRACE_MS 2000
/* After that kill, how long before pipes still held open by processes that
 * left the group are treated as ended once they run dry. */
#define AGENT_DRAIN_GRACE_MS 1000
/* How often the agent looks whether a bulk session's process group is
 * gone (then it writes the end marker). */
#define AGENT_BULK_POLL_MS 20
/* Retry interval while the port is missing or the host is away. */
#define AGENT_RETRY_MS 100
#define AGENT_RUNDIR   "/run/vmenv-agent"
/* Cap of the tmpfs mounted there when /run is noexec: 64 scripts of up to
 * Slurm's 4 MB default. */
#define AGENT_RUNDIR_SIZE "320m"
/* What a multi-node job finds in the guest (docs/multinode.md). */
#define AGENT_JOBDIR	 "/run/vmenv"
#define AGENT_NODEFILE	 AGENT_JOBDIR "/nodefile"
#define AGENT_TOKEN_FILE AGENT_JOBDIR "/job-token"
/* rsh service: connections at once (authenticated or not), how long a
 * client has to send its request, how long a finished session's last
 * frames may wait for a client that stopped reading, and how much output
 * is queued per connection before the command's pipes are left alone. */
#define RSH_MAX_CONNS 16
#define RSH_AUTH_MS   10000
#define RSH_LINGER_MS 10000
#define RSH_OUT_HIGH  (256u * 1024u)
/* Every session's processes, for the checkpoint freezer (ckpt.c). */
#define AGENT_CGROUP "/sys/fs/cgroup/vmenv.job"
#define AGENT_9P_MOUNT_OPTS \
	"trans=virtio,version=9p2000.L,msize=262144,access=user"

/* The virtio-serial port and its framing state. */
struct chan {
	int fd;
	char dev[300];	/* /dev/vportNpM */
	bool connected; /* the host has the port open */
	bool poisoned;	/* protocol error sent: discard input until the host
			   disconnects, since the stream cannot be resynced */
	bool broken;	/* out of memory queueing output: reset */
	/* input: the frame being assembled */
	uint8_t hdr[AW_HDR_LEN];
	size_t hdr_got;
	struct aw_hdr cur;
	uint8_t *payload;
	size_t payload_cap;
	size_t payload_got;
	/* output: bytes [out_off, out.len) are still to be written */
	struct aw_buf out;
	size_t out_off;
};

enum stream { STREAM_OUT, STREAM_ERR, STREAM_N };

/* What the parent keeps to word an EXEC_FAIL until the child has exec'd. */
struct start_info {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	char *cwd;
	char *exe;
};

struct session {
	bool active;
	uint32_t id;
	pid_t pid; /* also the process group id (the child calls setsid) */
	/* until the status pipe reports exec or failure, nothing but
	   EXEC_FAIL or STARTED may be sent for this session */
	bool starting;
	int status_fd;
	struct start_info start;
	int out_fd[STREAM_N]; /* read ends; -1 once EOF was sent or absent */
	uint32_t window;      /* output bytes the host still accepts */
	int in_fd;	      /* write end of stdin; -1 when closed or absent */
	uint8_t *in_buf;      /* STDIN bytes not yet written, < AW_WINDOW */
	size_t in_len;
	bool in_eof; /* close in_fd once in_buf is empty */
	bool exited;
	int wstatus;
	int64_t exit_ms;
	bool killed;
	int64_t kill_ms;
	bool draining; /* an empty pipe now counts as ended */
	char *script_path;
	/* AW_EXEC_BULK: STARTED then carries bulk_err (0: the port is the
	 * command's stdout). bulk_fd: the agent's copy of the port, kept for
	 * the end marker until mark_pid (its writer) takes it; EXIT waits
	 * for that writer. */
	bool bulk;
	int bulk_err;
	int bulk_fd;
	uint8_t bulk_end[AW_BULK_MARK_LEN];
	pid_t mark_pid;
	/* agentwire v3 (resume.c): the output sent and not yet credited, as
	 * records (u8 stream, u32 length, bytes) from held_off on, replayed
	 * to a host that resumes the session; what each stream sent in all;
	 * what went out once and must go again to a new host. */
	struct aw_buf held;
	size_t held_off;
	uint32_t held_n[STREAM_N];
	bool held_lost; /* out of memory: the session cannot be resumed */
	uint64_t sent[STREAM_N];
	bool eof_sent[STREAM_N];
	bool exit_sent;
	bool detached;	 /* the host went away: wait for RESUME/RELEASE */
	uint64_t in_got; /* STDIN bytes taken from the host */
	bool in_eof_got; /* and its EOF */
};

/* The job's nodes, from SETUP v2 (nnodes 0: not a multi-node job). */
struct agent_job {
	uint32_t node_index;
	uint32_t nnodes;
};

/* What the rsh service runs commands as, and where it listens. */
struct rsh_config {
	uint32_t addr_be; /* listen address, network byte order */
	uint16_t port;	  /* 0 = any (tests) */
	char token[AW_TOKEN_LEN + 1];
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[AW_MAX_GROUPS];
	char user[257];
	char home[1024];
	struct agent_job job;
};

/* RC_HELLO: waiting for the client's HELLO; RC_AUTH: CHALLENGE sent,
 * waiting for the REQUEST (common/rshwire.h). */
enum rsh_state { RC_HELLO, RC_AUTH, RC_RUN, RC_CLOSING };

struct rsh_conn {
	bool active;
	uint32_t gen; /* tells a reused slot from the one a poll entry saw */
	enum rsh_state state;
	int sock;
	char peer[32];
	int64_t deadline_ms; /* RC_HELLO, RC_AUTH and RC_CLOSING */
	struct rsh_nonces nonces;
	uint8_t req_mac[RSH_MAC_LEN]; /* answered in ACCEPT */
	/* input: the frame being assembled */
	uint8_t hdr[RSH_HDR_LEN];
	size_t hdr_got;
	struct rsh_hdr cur;
	uint8_t *payload;
	size_t payload_got;
	/* output: bytes [out_off, out.len) still to be sent */
	struct aw_buf out;
	size_t out_off;
	/* the command */
	pid_t pid;
	bool starting;
	int status_fd;
	struct start_info start;
	int out_fd[STREAM_N];
	int in_fd;
	uint8_t *in_buf; /* one STDIN frame being written to the pipe */
	size_t in_len;
	size_t in_off;
	bool in_eof;
	bool exited;
	int wstatus;
	int64_t exit_ms;
	bool killed;
	bool draining; /* an empty pipe now counts as ended */
	bool wr_shut;  /* RC_CLOSING: all sent, waiting for the client's EOF */
};

struct rsh_server {
	int listen_fd;
	struct rsh_config cfg;
	uint32_t next_gen;
	struct rsh_conn conns[RSH_MAX_CONNS];
};

struct agent {
	struct chan ch;
	int sig_fd;
	int uevent_fd; /* the kernel's uevents (init only), or -1 */
	bool is_init;
	bool setup_done;
	uint32_t version; /* agreed with the host's HELLO */
	char errmsg[256]; /* reason of the last protocol error */
	struct session sessions[AGENT_MAX_SESSIONS];
	struct agent_job job;
	struct rsh_server rsh;
	/* SETUP's mounts, released and re-established across a checkpoint. */
	uint32_t nmounts;
	char *mount_tag[AW_MAX_MOUNTS];
	char *mount_path[AW_MAX_MOUNTS];
	/* A checkpoint is prepared: processes frozen, output not read, and a
	 * host that goes away does not end the sessions. */
	bool ckpt_held;
	bool ckpt_mounts_released;
	bool ckpt_sigstop; /* frozen with SIGSTOP (no cgroup v2) */
};

/* The poll set of one loop iteration, with what each entry belongs to. */
enum poll_kind {
	PK_PORT,
	PK_SIGNAL,
	PK_UEVENT,
	PK_STATUS,
	PK_STDOUT,
	PK_STDERR,
	PK_STDIN,
	/* the rsh service's; slot is a connection */
	PK_RSH_LISTEN,
	PK_RSH_SOCK,
	PK_RSH_STATUS,
	PK_RSH_STDOUT,
	PK_RSH_STDERR,
	PK_RSH_STDIN
};

#define POLLSET_MAX (4 + AGENT_MAX_SESSIONS * 4 + RSH_MAX_CONNS * 5)

struct poll_owner {
	enum poll_kind kind;
	int slot;
	uint32_t session;
};

struct pollset {
	struct pollfd fds[POLLSET_MAX];
	struct poll_owner own[POLLSET_MAX];
	size_t n;
};

/* util.c */
void pollset_add(struct pollset *ps, int fd, short events, enum poll_kind kind,
		 int slot, uint32_t session);
__attribute__((format(printf, 1, 2))) void agent_log(const char *fmt, ...);
int64_t agent_now_ms(void);
/* Formats "<what>: <strerror(err)>" into msg; returns -err. */
__attribute__((format(printf, 4, 5))) int
agent_fail(char *msg, size_t size, int err, const char *fmt, ...);
int agent_write_all(int fd, const void *p, size_t n);
/* Mounts a virtio-9p share (the job's working directory, a --vm-mount). */
int agent_mount_9p(const char *tag, const char *path);
/* Replaces path whole: temporary file, owner and mode, fsync, rename. */
int agent_write_file(const char *path, const void *p, size_t n, mode_t mode,
		     uid_t uid, gid_t gid);

/* Records why the host's stream is bad; returns -EPROTO. */
__attribute__((format(printf, 2, 3))) int
agent_proto_error(struct agent *a, const char *fmt, ...);

/* A handler of one complete frame from the host (main.c's dispatch).
 * Returns 0, or a negative errno that makes the channel reset. */
typedef int agent_frame_fn(struct agent *a, const struct aw_hdr *h,
			   const uint8_t *p);

/* send.c */
/* Queue frames (the payload is copied); on failure the channel is marked
 * broken and the loop resets it. */
void agent_send(struct agent *a, uint8_t type, uint32_t session, const void *p,
		size_t len);
/* Sends what b holds (r: the result of building it; < 0 marks the
 * channel broken) and frees b. */
void agent_send_buf(struct agent *a, uint8_t type, uint32_t session,
		    struct aw_buf *b, int r);
void agent_send_u32(struct agent *a, uint8_t type, uint32_t session,
		    uint32_t v);
void agent_send_u32x2(struct agent *a, uint8_t type, uint32_t session,
		      uint32_t v1, uint32_t v2);
/* u32 errno + str message (SETUP_FAIL, EXEC_FAIL). */
void agent_send_fail(struct agent *a, uint8_t type, uint32_t session, int err,
		     const char *msg);

/* channel.c */
void chan_init(struct chan *ch);
/* Blocks until the port appears, then opens it; logs while it waits. */
void chan_open(struct chan *ch);
/* Reads what the host sent and hands each complete frame to on_frame.
 * Returns 0, -EPIPE when the host went away, or the handler's / parser's
 * error. */
int chan_read(struct agent *a, agent_frame_fn *on_frame);
/* Writes queued output until the port would block. Returns 0 or -errno. */
int chan_flush(struct chan *ch);
size_t chan_pending(const struct chan *ch);
/* Forgets partial input and queued output. */
void chan_reset(struct chan *ch);
/* True when the host has the port open (no POLLHUP). */
bool chan_host_present(const struct chan *ch);
/* Room for a frame of up to max payload bytes at the end of the output;
 * returns where the payload goes, or NULL with the channel marked broken. */
uint8_t *chan_reserve(struct chan *ch, size_t max);
/* Completes the reserved frame with n payload bytes. */
void chan_commit(struct chan *ch, uint8_t type, uint32_t session, size_t n);

/* session.c */
int session_exec(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
int session_stdin(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
int session_credit(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
int session_signal(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
void session_reaped(struct agent *a, pid_t pid, int wstatus);
void sessions_kill_all(struct agent *a);
/* The session's EXIT, once its process and output are done (v3: again to
 * a host that resumes it). */
void session_send_exit(struct agent *a, struct session *s);
void session_check_done(struct agent *a, struct session *s);
void session_free(struct session *s);
void session_kill(const struct session *s, int sig);
struct session *session_find(struct agent *a, uint32_t id);

/* held.c: a session's output kept until credited (agentwire v3). */
#define HELD_REC_HDR 5u /* u8 stream, u32 length */
bool agent_resumable(const struct agent *a);
uint32_t held_rec_len(const uint8_t *r);
void held_add(struct session *s, enum stream k, const uint8_t *p, size_t n);
void held_credit(struct session *s, uint32_t n);
/* Keeps only what follows off[] in each stream, in the order sent. */
int held_trim(struct session *s, const uint64_t off[STREAM_N]);
/* resume.c: agentwire v3, sessions that outlive the host's connection. */
void sessions_detach(struct agent *a);
int session_resume(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
int session_release(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
/* Poll set plumbing: adds this loop's fds of every session, then handles
 * their events. */
void sessions_poll_add(struct agent *a, struct pollset *ps);
void sessions_poll_handle(struct agent *a, const struct pollset *ps);
/* Fires the exit/drain timers; returns ms until the next one, or -1. */
int sessions_timers(struct agent *a);

/* spawn.c */
/* Both ends of every pipe of one command; -1 where there is none. */
struct spawn_pipes {
	int out[2];
	int err[2];
	int in[2];
	int st[2];
};
/* Opens the pipes the AW_EXEC_* flags call for (stdin, stderr apart); the
 * parent's ends are non-blocking, all are close-on-exec. 0 or -errno. */
int spawn_pipes_open(struct spawn_pipes *p, uint32_t flags);
/* The command's stdout is port_fd (a bulk port; a copy is taken), not a
 * pipe. 0 or -errno. */
int spawn_pipes_use_port(struct spawn_pipes *p, int port_fd);
void spawn_pipes_close(struct spawn_pipes *p);
int spawn_set_nonblock(int fd);
/* In the forked child: new session, stdio from the pipes, groups, gid,
 * uid, cwd, exec with e's PATH (script replaces argv[0] when set). Reports
 * a failure on the status pipe and exits. */
__attribute__((noreturn)) void
spawn_child(struct aw_exec *e, const struct spawn_pipes *p, char *script);
/* Reads the status pipe: 0 when the child exec'd (EOF), -EAGAIN when it
 * has not said yet, else the child's errno (> 0) with the reason in msg. */
int spawn_status_read(int fd, const struct start_info *si, char *msg,
		      size_t size);

/* bulk.c: bulk ports (agentwire.h). */
/* Opens port number `port` for writing (blocking, close-on-exec). 0 or
 * -errno (-EBUSY: still open elsewhere, -ENOENT: no such port). */
int bulk_open(uint32_t port, int *ret_fd);
/* No process is left in the process group. */
bool bulk_group_gone(pid_t pgid);
/* Forks a child that writes the end marker to fd and exits. The child's
 * pid or -errno. */
pid_t bulk_write_end(int fd, const uint8_t mark[AW_BULK_MARK_LEN]);

/* setup.c */
int setup_handle(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
/* Mounts one 9p share (tag on path). 0 or -errno. */

/* ckpt.c */
int ckpt_prepare(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
int ckpt_resume(struct agent *a, const struct aw_hdr *h, const uint8_t *p);
/* Creates AGENT_CGROUP (mounting cgroup2 first when needed). */
void ckpt_cgroup_init(void);
/* coldplug.c: loads the drivers of the devices that have none (plugged
 * after the guest's init, as a warm-started guest's are): those present
 * now, and those the kernel's uevents (coldplug_open's socket, read by
 * coldplug_event) announce. */
void coldplug(void);
int coldplug_open(void);
void coldplug_event(int fd);
/* One uevent (the kernel's "KEY=VALUE\0..." message, len bytes, with a
 * NUL at msg[len] as coldplug_event reads it): true with its
 * MODALIAS in alias when it adds a device of a class whose driver is
 * loaded and the device has none. */
bool coldplug_uevent(const char *msg, size_t len, char *alias, size_t alen);
/* zerofree.c: makes the guest's free memory zero pages (a template's
 * save then skips it); MiB zeroed, or -1. */
long agent_zero_free_memory(void);

/* net.c: lo up, and the first Ethernet interface (name into nic) up with
 * the address and prefix of cidr. 0 or -errno with the reason in msg. */
int net_setup(const char *cidr, char *nic, size_t nic_size, char *msg,
	      size_t size);

/* jobfiles.c */
/* /etc/hosts, the node file and the token file of a SETUP with peers. */
int jobfiles_write(const struct aw_setup *s, char *msg, size_t size);
/* The same with other paths (tests). */
struct jobfiles_paths {
	const char *hosts;
	const char *dir; /* holds nodefile and token */
	const char *nodefile;
	const char *token;
};
extern const struct jobfiles_paths jobfiles_default_paths;
int jobfiles_write_at(const struct jobfiles_paths *p, const struct aw_setup *s,
		      char *msg, size_t size);
/* Replaces envp (envc entries) with a copy in which the VMENV_NODEFILE,
 * VMENV_NODEID and VMENV_NNODES of job j are set. 0 or -ENOMEM (envp
 * unchanged). Without nodes (nnodes 0) nothing changes. */
int jobfiles_env(const struct agent_job *j, char ***envp, uint32_t *envc);

/* rsh.c: the rsh service (common/rshwire.h). */
void rsh_init(struct rsh_server *srv);
/* Listens on cfg's address; when already listening there, only the
 * credentials are taken over. 0 or -errno with the reason in msg. */
int rsh_start(struct rsh_server *srv, const struct rsh_config *cfg, char *msg,
	      size_t size);
/* The port listened on (for tests that asked for any). */
int rsh_port(const struct rsh_server *srv);
void rsh_poll_add(struct rsh_server *srv, struct pollset *ps);
void rsh_poll_handle(struct rsh_server *srv, const struct pollset *ps);
/* Fires the auth/exit/linger timers; returns ms until the next, or -1. */
int rsh_timers(struct rsh_server *srv);
/* A child was reaped; true if it was an rsh command. */
bool rsh_reaped(struct rsh_server *srv, pid_t pid, int wstatus);
/* Kills every command and closes every connection and the listener. */
void rsh_stop(struct rsh_server *srv);

/* rshcmd.c: starts q's command as cfg's user, with a login-like
 * environment; the parent's ends of its pipes go into c. 0 or -errno. */
int rsh_cmd_start(const struct rsh_config *cfg, const struct rsh_request *q,
		  struct rsh_conn *c);

#endif
