// SPDX-License-Identifier: MIT
/*
 * The rsh service: other guests of the job (vmenv-rsh, as Open MPI's
 * plm_rsh agent) run commands here as the job's user. Protocol in
 * common/rshwire.h. Everything is non-blocking inside the agent's one poll
 * loop; each connection buffers at most one input frame, one STDIN frame
 * and RSH_OUT_HIGH (+ one frame) of output, and there are at most
 * RSH_MAX_CONNS connections, authenticated or not.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* As for EXEC sessions: after the command exited, how long background
 * children may hold its output open before the group is killed, and how
 * long after that before the pipes count as ended. */
#define RSH_EXIT_GRACE_MS  2000
#define RSH_DRAIN_GRACE_MS 1000
/* Frames handled per connection per wakeup, so one client cannot starve
 * the host's channel or the other connections. */
#define RSH_FRAMES_PER_WAKEUP 16

static uint8_t rsh_chunk[RSH_MAX_DATA];

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* --- connections -------------------------------------------------------- */

static const struct rsh_conn conn_empty = {
    .sock = -1, .status_fd = -1, .out_fd = {-1, -1}, .in_fd = -1};

void rsh_init(struct rsh_server *srv)
{
	int i;

	memset(srv, 0, sizeof(*srv));
	srv->listen_fd = -1;
	for (i = 0; i < RSH_MAX_CONNS; i++)
		srv->conns[i] = conn_empty;
}

static void conn_free(struct rsh_conn *c)
{
	int k;

	close_fd(&c->sock);
	close_fd(&c->status_fd);
	for (k = 0; k < STREAM_N; k++)
		close_fd(&c->out_fd[k]);
	close_fd(&c->in_fd);
	free(c->payload);
	free(c->in_buf);
	free(c->start.cwd);
	free(c->start.exe);
	aw_buf_free(&c->out);
	*c = conn_empty;
}

static void conn_kill(const struct rsh_conn *c, int sig)
{
	if (c->pid <= 0)
		return;
	/* The child called setsid(): its pid is its group. */
	if (kill(-c->pid, sig) < 0 && errno == ESRCH && !c->exited)
		kill(c->pid, sig);
}

/* The client is gone or broke the protocol: its command goes too. */
static void conn_abort(struct rsh_conn *c, const char *why)
{
	if (c->pid > 0 && !c->exited)
		agent_log("rsh %s: %s; killing its command (pid %d)", c->peer,
			  why, (int)c->pid);
	else if (c->state == RC_HELLO || c->state == RC_AUTH)
		agent_log("rsh %s: %s", c->peer, why);
	conn_kill(c, SIGKILL);
	conn_free(c);
}

static void conn_send(struct rsh_conn *c, uint8_t type, const void *p, size_t n)
{
	if (rsh_put_frame(&c->out, type, p, n) < 0)
		conn_abort(c, "out of memory queueing output");
}

/* A frame of n (1 or 2) u32 values. */
static void conn_send_u32s(struct rsh_conn *c, uint8_t type, uint32_t a,
			   uint32_t b, int n)
{
	struct aw_buf p = {0};
	int r = aw_put_u32(&p, a);

	if (n > 1)
		r = r ?: aw_put_u32(&p, b);
	if (r == 0)
		conn_send(c, type, p.data, p.len);
	else
		conn_abort(c, "out of memory queueing output");
	aw_buf_free(&p);
}

/* REFUSE, then the connection ends once it is sent. */
static void conn_refuse(struct rsh_conn *c, int err, const char *msg)
{
	struct aw_buf b = {0};
	int r;

	agent_log("rsh %s: refused: %s", c->peer, msg);
	r = aw_put_u32(&b, (uint32_t)err);
	r = r ?: aw_put_str(&b, msg);
	if (r == 0)
		conn_send(c, RSH_REFUSE, b.data, b.len);
	aw_buf_free(&b);
	if (!c->active)
		return;
	conn_kill(c, SIGKILL);
	c->state = RC_CLOSING;
	c->deadline_ms = agent_now_ms() + RSH_LINGER_MS;
}

static size_t conn_pending(const struct rsh_conn *c)
{
	return c->out.len - c->out_off;
}

/* Sends what is queued. A closing connection then shuts its side and
 * waits for the client's EOF: closing with unread input would send a reset
 * that can destroy the last frames before the client read them. */
static void conn_flush(struct rsh_conn *c)
{
	ssize_t n;

	while (c->active && conn_pending(c)) {
		n = send(c->sock, c->out.data + c->out_off, conn_pending(c),
			 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			conn_abort(c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
	}
	if (!c->active)
		return;
	c->out.len = c->out_off = 0;
	if (c->state == RC_CLOSING && !c->wr_shut) {
		shutdown(c->sock, SHUT_WR);
		c->wr_shut = true;
	}
}

/* Input after the end is discarded until the client closes. */
static void conn_discard(struct rsh_conn *c)
{
	ssize_t n;

	for (int i = 0; i < RSH_FRAMES_PER_WAKEUP; i++) {
		n = recv(c->sock, rsh_chunk, sizeof(rsh_chunk), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_free(c);
			return;
		}
	}
}

/* EXIT once the command exited and both output streams ended. */
static void conn_check_done(struct rsh_conn *c)
{
	if (c->state != RC_RUN || c->starting || !c->exited)
		return;
	if (c->out_fd[STREAM_OUT] >= 0 || c->out_fd[STREAM_ERR] >= 0)
		return;
	if (WIFSIGNALED(c->wstatus))
		conn_send_u32s(c, RSH_EXIT, AW_EXIT_SIGNAL,
			       (uint32_t)WTERMSIG(c->wstatus), 2);
	else
		conn_send_u32s(c, RSH_EXIT, AW_EXIT_CODE,
			       (uint32_t)WEXITSTATUS(c->wstatus), 2);
	if (!c->active)
		return;
	close_fd(&c->in_fd);
	c->state = RC_CLOSING;
	c->deadline_ms = agent_now_ms() + RSH_LINGER_MS;
}

/* --- the handshake ------------------------------------------------------ */

/* A version 1 client sends its REQUEST first, with the token in clear:
 * refused at its header, before any of it is read. */
static void refuse_old(struct rsh_conn *c)
{
	conn_refuse(c, EPROTONOSUPPORT,
		    "vmenv-rsh protocol 1 is refused (it sends the job token "
		    "in clear); use the vmenv-rsh of this image (protocol 2)");
}

static void on_hello(struct rsh_conn *c)
{
	uint32_t version;
	struct aw_buf b = {0};
	char msg[128];
	int r;

	r = rsh_hello_decode(c->payload, c->cur.len, &version,
			     c->nonces.client);
	if (r == -EPROTONOSUPPORT) {
		snprintf(msg, sizeof(msg),
			 "vmenv-rsh protocol %u is not spoken here (this "
			 "agent speaks %u)",
			 version, RSH_VERSION);
		conn_refuse(c, EPROTONOSUPPORT, msg);
		return;
	}
	if (r < 0) {
		conn_refuse(c, EPROTO, "malformed HELLO");
		return;
	}
	/* Never waits: the pool is ready since rsh_start (its getrandom
	 * waited for it once). */
	if (rsh_nonce(c->nonces.server, GRND_NONBLOCK) < 0) {
		conn_refuse(c, EAGAIN, "no random numbers for a challenge yet");
		return;
	}
	if (rsh_hello_encode(RSH_VERSION, c->nonces.server, &b) == 0)
		conn_send(c, RSH_CHALLENGE, b.data, b.len);
	else
		conn_abort(c, "out of memory queueing output");
	aw_buf_free(&b);
	if (c->active)
		c->state = RC_AUTH;
}

/* The MAC first, over the bytes as received: nothing of the body is
 * decoded for a client that does not hold the job's token. */
static void on_request(struct rsh_server *srv, struct rsh_conn *c)
{
	struct rsh_request q;
	char msg[256];
	int r;

	if (!rsh_request_verify(srv->cfg.token, &c->nonces, c->payload,
				c->cur.len)) {
		conn_refuse(c, EACCES, "permission denied: wrong job token");
		return;
	}
	r = rsh_request_decode(c->payload, c->cur.len, &q);
	if (r < 0) {
		conn_refuse(c, -r,
			    r == -ENOMEM ? "out of memory"
					 : "malformed request");
		return;
	}
	memcpy(c->req_mac, q.mac, RSH_MAC_LEN);
	r = rsh_cmd_start(&srv->cfg, &q, c);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "starting '%s': %s", q.argv[0],
			 strerror(-r));
		conn_refuse(c, -r, msg);
	} else {
		c->state = RC_RUN;
	}
	rsh_request_clear(&q);
}

/* ACCEPT(pid, the server's MAC): the client checks it before it sends any
 * input. */
static void send_accept(struct rsh_server *srv, struct rsh_conn *c)
{
	uint8_t mac[RSH_MAC_LEN];
	struct aw_buf b = {0};

	rsh_accept_mac(srv->cfg.token, &c->nonces, c->req_mac, (uint32_t)c->pid,
		       mac);
	if (rsh_accept_encode((uint32_t)c->pid, mac, &b) == 0)
		conn_send(c, RSH_ACCEPT, b.data, b.len);
	else
		conn_abort(c, "out of memory queueing output");
	aw_buf_free(&b);
}

/* The status pipe: closed on exec (ACCEPT), or why the child failed. */
static void conn_status(struct rsh_server *srv, struct rsh_conn *c)
{
	char msg[600];
	int err = spawn_status_read(c->status_fd, &c->start, msg, sizeof(msg));

	if (err == -EAGAIN)
		return;
	close_fd(&c->status_fd);
	c->starting = false;
	if (err > 0) {
		conn_refuse(c, err, msg);
		return;
	}
	send_accept(srv, c);
	if (c->active)
		conn_check_done(c);
}

/* --- input from the client ---------------------------------------------- */

static void stdin_close(struct rsh_conn *c)
{
	close_fd(&c->in_fd);
	free(c->in_buf);
	c->in_buf = NULL;
	c->in_len = c->in_off = 0;
}

static void stdin_drain(struct rsh_conn *c)
{
	ssize_t n;

	while (c->in_off < c->in_len) {
		n = write(c->in_fd, c->in_buf + c->in_off,
			  c->in_len - c->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) { /* the command closed its stdin */
			stdin_close(c);
			return;
		}
		c->in_off += (size_t)n;
	}
	free(c->in_buf);
	c->in_buf = NULL;
	c->in_len = c->in_off = 0;
	if (c->in_eof)
		stdin_close(c);
}

static void on_stdin(struct rsh_conn *c)
{
	if (c->cur.len == 0) {
		c->in_eof = true;
		if (!c->in_buf)
			stdin_close(c);
		return;
	}
	if (c->in_fd < 0 || c->in_eof)
		return; /* nobody reads it */
	/* The frame's buffer becomes the stdin buffer; the socket is not
	 * read again until it has been written out. */
	c->in_buf = c->payload;
	c->in_len = c->cur.len;
	c->in_off = 0;
	c->payload = NULL;
	stdin_drain(c);
}

static void on_signal(struct rsh_conn *c)
{
	struct aw_reader r;
	uint32_t sig;

	aw_reader_init(&r, c->payload, c->cur.len);
	sig = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0 || sig < 1 || sig > 64) {
		conn_abort(c, "malformed SIGNAL");
		return;
	}
	if (!c->exited)
		conn_kill(c, (int)sig);
}

static void on_frame(struct rsh_server *srv, struct rsh_conn *c)
{
	if (c->state == RC_HELLO)
		on_hello(c);
	else if (c->state == RC_AUTH)
		on_request(srv, c);
	else if (c->cur.type == RSH_STDIN)
		on_stdin(c);
	else if (c->cur.type == RSH_SIGNAL)
		on_signal(c);
	else
		conn_abort(c, "unexpected frame");
}

/* What the connection accepts next: HELLO, then the REQUEST, then STDIN
 * and SIGNAL frames. */
static int hdr_ok(const struct rsh_conn *c)
{
	switch (c->state) {
	case RC_HELLO:
		return c->cur.type == RSH_HELLO && c->cur.len == RSH_HELLO_LEN;
	case RC_AUTH:
		return c->cur.type == RSH_REQUEST;
	case RC_RUN:
	case RC_CLOSING:
		break;
	}
	return c->cur.type == RSH_STDIN || c->cur.type == RSH_SIGNAL;
}

static size_t max_payload(const struct rsh_conn *c)
{
	return c->state == RC_AUTH ? RSH_MAX_REQUEST : RSH_MAX_DATA;
}

/* Reads one step of a frame: 1 when complete, 0 for more later, <0 when
 * the connection must go (-ECONNRESET: the client closed it; -EPROTONOSUPPORT:
 * a version 1 client, to be told so). */
static int conn_read_step(struct rsh_conn *c)
{
	size_t max = max_payload(c);
	ssize_t n;
	int r;

	if (c->hdr_got < RSH_HDR_LEN) {
		n = recv(c->sock, c->hdr + c->hdr_got, RSH_HDR_LEN - c->hdr_got,
			 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->hdr_got += (size_t)n;
		if (c->hdr_got < RSH_HDR_LEN)
			return 0;
		r = rsh_hdr_decode(c->hdr, max, &c->cur);
		if (c->state == RC_HELLO && r != -EPROTO &&
		    c->hdr[4] == RSH_REQUEST)
			return -EPROTONOSUPPORT;
		if (r < 0 || !hdr_ok(c))
			return -EPROTO;
		c->payload = malloc(c->cur.len ? c->cur.len : 1);
		if (!c->payload)
			return -ENOMEM;
		c->payload_got = 0;
	}
	if (c->payload_got < c->cur.len) {
		n = recv(c->sock, c->payload + c->payload_got,
			 c->cur.len - c->payload_got, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->payload_got += (size_t)n;
	}
	return c->payload_got == c->cur.len ? 1 : 0;
}

static bool conn_wants_input(const struct rsh_conn *c)
{
	return c->state != RC_RUN || !c->in_buf;
}

static void conn_read(struct rsh_server *srv, struct rsh_conn *c)
{
	uint32_t gen = c->gen;
	int i, r;

	if (c->state == RC_CLOSING) {
		conn_discard(c);
		return;
	}
	for (i = 0; i < RSH_FRAMES_PER_WAKEUP; i++) {
		if (!c->active || c->gen != gen || !conn_wants_input(c))
			return;
		r = conn_read_step(c);
		if (r == 0)
			return;
		if (r == -EPROTONOSUPPORT) {
			refuse_old(c);
			return;
		}
		if (r < 0) {
			conn_abort(c, r == -ECONNRESET ? "client went away"
				      : r == -EPROTO   ? "protocol error"
						       : strerror(-r));
			return;
		}
		on_frame(srv, c);
		if (!c->active || c->gen != gen)
			return;
		free(c->payload);
		c->payload = NULL;
		c->hdr_got = 0;
	}
}

/* --- output of the command ---------------------------------------------- */

static void stream_read(struct rsh_conn *c, enum stream k)
{
	uint8_t type = k == STREAM_OUT ? RSH_STDOUT : RSH_STDERR;
	ssize_t n;

	while (c->active && c->out_fd[k] >= 0 &&
	       conn_pending(c) < RSH_OUT_HIGH) {
		n = read(c->out_fd[k], rsh_chunk, sizeof(rsh_chunk));
		if (n > 0) {
			conn_send(c, type, rsh_chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !c->draining)
			return;
		close_fd(&c->out_fd[k]);
		conn_send(c, type, NULL, 0);
		if (c->active)
			conn_check_done(c);
		return;
	}
}

/* --- the listener ------------------------------------------------------- */

static struct rsh_conn *conn_unused(struct rsh_server *srv)
{
	int i;

	for (i = 0; i < RSH_MAX_CONNS; i++)
		if (!srv->conns[i].active)
			return &srv->conns[i];
	return NULL;
}

/* Over the limit: a REFUSE the client can show, written without waiting
 * (it fits in any socket buffer), then close. */
static void refuse_busy(int fd)
{
	struct aw_buf b = {0}, f = {0};
	char msg[96];

	snprintf(msg, sizeof(msg), "too many rsh sessions (limit %d)",
		 RSH_MAX_CONNS);
	if (aw_put_u32(&b, EAGAIN) == 0 && aw_put_str(&b, msg) == 0 &&
	    rsh_put_frame(&f, RSH_REFUSE, b.data, b.len) == 0)
		(void)!send(fd, f.data, f.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	aw_buf_free(&b);
	aw_buf_free(&f);
	agent_log("rsh: %s", msg);
	close(fd);
}

static void on_accept(struct rsh_server *srv)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct rsh_conn *c;
	int fd, one = 1;

	fd = accept4(srv->listen_fd, (struct sockaddr *)&sin, &len,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	c = conn_unused(srv);
	if (!c) {
		refuse_busy(fd);
		return;
	}
	conn_free(c);
	c->active = true;
	c->gen = ++srv->next_gen;
	c->sock = fd;
	c->state = RC_HELLO;
	c->deadline_ms = agent_now_ms() + RSH_AUTH_MS;
	/* Launchers trade small messages: no Nagle delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	inet_ntop(AF_INET, &sin.sin_addr, c->peer, sizeof(c->peer));
	snprintf(c->peer + strlen(c->peer), sizeof(c->peer) - strlen(c->peer),
		 ":%u", ntohs(sin.sin_port));
}

static int listen_on(uint32_t addr_be, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr = {.s_addr = addr_be}};
	int fd, one = 1, r;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (r == 0)
		r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (r == 0)
		r = listen(fd, 64);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int rsh_start(struct rsh_server *srv, const struct rsh_config *cfg, char *msg,
	      size_t size)
{
	char ip[INET_ADDRSTRLEN] = "?";
	uint8_t seed[RSH_NONCE_LEN];
	int fd;

	if (cfg->uid == 0 || cfg->gid == 0)
		return agent_fail(msg, size, EPERM,
				  "rsh: the job runs as uid %u gid %u; "
				  "commands never run as root",
				  cfg->uid, cfg->gid);
	if (!aw_token_ok(cfg->token))
		return agent_fail(msg, size, EINVAL, "rsh: bad job token");
	/* Waits (once) until the kernel's pool is initialised, so that the
	 * loop's non-blocking nonces never fail for want of it. */
	fd = rsh_nonce(seed, 0);
	if (fd < 0)
		return agent_fail(msg, size, -fd, "rsh: getrandom");
	hmac256_wipe(seed, sizeof(seed));
	if (srv->listen_fd >= 0 && srv->cfg.addr_be == cfg->addr_be &&
	    (cfg->port == 0 || srv->cfg.port == cfg->port)) {
		uint16_t port = srv->cfg.port;

		srv->cfg = *cfg;
		srv->cfg.port = port;
		return 0;
	}
	inet_ntop(AF_INET, &cfg->addr_be, ip, sizeof(ip));
	fd = listen_on(cfg->addr_be, cfg->port);
	if (fd < 0)
		return agent_fail(msg, size, -fd, "rsh: listening on %s:%u", ip,
				  cfg->port);
	close_fd(&srv->listen_fd);
	srv->listen_fd = fd;
	srv->cfg = *cfg;
	srv->cfg.port = (uint16_t)rsh_port(srv);
	agent_log("rsh: listening on %s:%u", ip, srv->cfg.port);
	return 0;
}

int rsh_port(const struct rsh_server *srv)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (srv->listen_fd < 0 ||
	    getsockname(srv->listen_fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	return ntohs(sin.sin_port);
}

void rsh_stop(struct rsh_server *srv)
{
	int i;

	for (i = 0; i < RSH_MAX_CONNS; i++)
		if (srv->conns[i].active)
			conn_abort(&srv->conns[i], "service stopped");
	close_fd(&srv->listen_fd);
}

/* --- loop plumbing ------------------------------------------------------ */

static void conn_poll_add(struct rsh_conn *c, int i, struct pollset *ps)
{
	short ev = 0;
	int k;

	if (conn_wants_input(c))
		ev |= POLLIN;
	if (conn_pending(c))
		ev |= POLLOUT;
	pollset_add(ps, c->sock, ev, PK_RSH_SOCK, i, c->gen);
	if (c->state != RC_RUN)
		return;
	if (c->starting)
		pollset_add(ps, c->status_fd, POLLIN, PK_RSH_STATUS, i, c->gen);
	for (k = 0; k < STREAM_N && !c->starting; k++)
		if (c->out_fd[k] >= 0 && conn_pending(c) < RSH_OUT_HIGH)
			pollset_add(ps, c->out_fd[k], POLLIN,
				    k == STREAM_OUT ? PK_RSH_STDOUT
						    : PK_RSH_STDERR,
				    i, c->gen);
	if (c->in_fd >= 0 && c->in_buf)
		pollset_add(ps, c->in_fd, POLLOUT, PK_RSH_STDIN, i, c->gen);
}

void rsh_poll_add(struct rsh_server *srv, struct pollset *ps)
{
	int i;

	if (srv->listen_fd >= 0)
		pollset_add(ps, srv->listen_fd, POLLIN, PK_RSH_LISTEN, -1, 0);
	for (i = 0; i < RSH_MAX_CONNS; i++)
		if (srv->conns[i].active)
			conn_poll_add(&srv->conns[i], i, ps);
}

static void conn_event(struct rsh_server *srv, struct rsh_conn *c,
		       enum poll_kind kind, short revents)
{
	switch (kind) {
	case PK_RSH_SOCK:
		/* A reset, or a hangup while input is not wanted (which
		 * would otherwise wake the loop without end). */
		if ((revents & POLLERR) ||
		    ((revents & POLLHUP) && !conn_wants_input(c))) {
			conn_abort(c, "connection lost");
			break;
		}
		if (revents & POLLOUT)
			conn_flush(c);
		if (c->active && (revents & (POLLIN | POLLHUP)))
			conn_read(srv, c);
		break;
	case PK_RSH_STATUS:
		conn_status(srv, c);
		break;
	case PK_RSH_STDOUT:
		stream_read(c, STREAM_OUT);
		break;
	case PK_RSH_STDERR:
		stream_read(c, STREAM_ERR);
		break;
	case PK_RSH_STDIN:
		stdin_drain(c);
		/* Room again: the next STDIN frame may be read. */
		if (c->active && !c->in_buf)
			conn_read(srv, c);
		break;
	case PK_RSH_LISTEN:
	case PK_PORT:
	case PK_SIGNAL:
	case PK_UEVENT:
	case PK_STATUS:
	case PK_STDOUT:
	case PK_STDERR:
	case PK_STDIN:
		break;
	}
}

void rsh_poll_handle(struct rsh_server *srv, const struct pollset *ps)
{
	const struct poll_owner *o;
	struct rsh_conn *c;
	size_t i;
	int k;

	for (i = 0; i < ps->n; i++) {
		o = &ps->own[i];
		if (!ps->fds[i].revents || o->kind < PK_RSH_LISTEN)
			continue;
		if (o->kind == PK_RSH_LISTEN) {
			on_accept(srv);
			continue;
		}
		c = &srv->conns[o->slot];
		/* An earlier event of this turn may have ended it. */
		if (c->active && c->gen == o->session)
			conn_event(srv, c, o->kind, ps->fds[i].revents);
	}
	for (k = 0; k < RSH_MAX_CONNS; k++) {
		c = &srv->conns[k];
		if (c->active && c->draining) {
			stream_read(c, STREAM_OUT);
			if (c->active)
				stream_read(c, STREAM_ERR);
		}
		if (c->active)
			conn_flush(c);
	}
}

bool rsh_reaped(struct rsh_server *srv, pid_t pid, int wstatus)
{
	struct rsh_conn *c;
	int i;

	for (i = 0; i < RSH_MAX_CONNS; i++) {
		c = &srv->conns[i];
		if (!c->active || c->pid != pid || c->exited)
			continue;
		c->exited = true;
		c->wstatus = wstatus;
		c->exit_ms = agent_now_ms();
		conn_check_done(c);
		if (c->active)
			conn_flush(c);
		return true;
	}
	return false;
}

/* Returns the connection's next due time, or -1. */
static int64_t conn_timer(struct rsh_conn *c, int64_t now)
{
	if (c->state != RC_RUN) {
		if (now < c->deadline_ms)
			return c->deadline_ms;
		conn_abort(c, c->state == RC_CLOSING ? "client stopped reading"
						     : "no request in time");
		return -1;
	}
	if (!c->exited || c->starting || c->draining)
		return -1;
	if (!c->killed) {
		if (now < c->exit_ms + RSH_EXIT_GRACE_MS)
			return c->exit_ms + RSH_EXIT_GRACE_MS;
		conn_kill(c, SIGKILL);
		c->killed = true;
	}
	if (now < c->exit_ms + RSH_EXIT_GRACE_MS + RSH_DRAIN_GRACE_MS)
		return c->exit_ms + RSH_EXIT_GRACE_MS + RSH_DRAIN_GRACE_MS;
	/* Pipes still open now are held by processes that left the group. */
	c->draining = true;
	stream_read(c, STREAM_OUT);
	if (c->active)
		stream_read(c, STREAM_ERR);
	if (c->active)
		conn_flush(c);
	return -1;
}

int rsh_timers(struct rsh_server *srv)
{
	int64_t now = agent_now_ms(), next = -1, due;
	int i;

	for (i = 0; i < RSH_MAX_CONNS; i++) {
		if (!srv->conns[i].active)
			continue;
		due = conn_timer(&srv->conns[i], now);
		if (due >= 0 && (next < 0 || due < next))
			next = due;
	}
	if (next < 0)
		return -1;
	return next - now > 60000 ? 60000 : (int)(next - now);
}
