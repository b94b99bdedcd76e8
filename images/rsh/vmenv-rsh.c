// SPDX-License-Identifier: MIT
/*
 * vmenv-rsh: ssh's command-line, reaching the rsh service of the agent on
 * another guest of the same job (common/rshwire.h).
 *
 *   vmenv-rsh [ssh options, ignored] [user@]HOST COMMAND [ARGS...]
 *
 * As ssh does, the remote words are joined with spaces and run by
 * /bin/sh -c on HOST, so launchers that quote for ssh (Open MPI's plm_rsh)
 * work unchanged. stdin, stdout and stderr are relayed; SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to the remote command.
 * Exits with the remote exit code, 128 + the signal that killed it, or 255
 * when HOST cannot be reached or refused (with a message naming HOST).
 *
 * The job's token is read from /run/vmenv/job-token and never sent: the
 * client answers the server's challenge with a MAC under it, and checks the
 * server's MAC before it sends any input (common/rshwire.h). HOST is a
 * dotted quad or a name in /etc/hosts (no NSS: the binary is static and the
 * guest may have no resolver libraries). For tests VMENV_RSH_PORT and
 * VMENV_RSH_TOKEN_FILE override the port and the token file.
 */
#include "agentwire.h"
#include "rshwire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_FILE	   "/run/vmenv/job-token"
#define HOSTS_FILE	   "/etc/hosts"
#define CONNECT_TIMEOUT_MS 10000
/* stdin is read only while less than this waits to be sent. */
#define SEND_HIGH (256u * 1024u)
#define EXIT_FAIL 255

extern char **environ;

/* Where the handshake stands (common/rshwire.h). */
enum phase { PH_CHALLENGE, PH_ACCEPT, PH_RUN };

struct client {
	const char *host;
	int sock;
	int sig_fd;
	bool stdin_open;
	bool no_stdin;
	enum phase phase;
	char token[AW_TOKEN_LEN + 1]; /* wiped once ACCEPT checked */
	char *command;
	struct rsh_nonces nonces;
	uint8_t req_mac[RSH_MAC_LEN];
	struct aw_buf out; /* to the server */
	size_t out_off;
	uint8_t hdr[RSH_HDR_LEN];
	size_t hdr_got;
	struct rsh_hdr cur;
	uint8_t *payload;
	size_t payload_got;
	bool done;
	int status;
};

static const char *host_for_msg = "?";

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
								...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, "vmenv-rsh: %s: %s\n", host_for_msg, line);
	exit(EXIT_FAIL);
}

/* --- command line ------------------------------------------------------- */

/* ssh's options that take an argument; every other -X is a flag. */
static bool takes_arg(char c)
{
	return c && strchr("BbcDEeFIiJLlmOopQRSWw", c) != NULL;
}

static void usage(void)
{
	dprintf(STDERR_FILENO, "usage: vmenv-rsh [ssh options] HOST COMMAND "
			       "[ARGS...]\n");
	exit(EXIT_FAIL);
}

/* Skips ssh-style options (-x, -T, -o Opt, -oOpt, -p 22, -l user, ...);
 * returns the index of HOST. -n sets *no_stdin. */
static int parse_options(int argc, char **argv, bool *no_stdin)
{
	int i = 1;
	const char *p;

	while (i < argc && argv[i][0] == '-' && argv[i][1]) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		for (p = argv[i] + 1; *p; p++) {
			if (*p == 'n')
				*no_stdin = true;
			if (takes_arg(*p)) {
				/* -oValue, or -o Value */
				if (!p[1])
					i++;
				break;
			}
		}
		i++;
	}
	return i;
}

/* The remote command: the words joined with spaces, as ssh sends it. */
static char *join_words(int n, char **w)
{
	size_t len = 1;
	char *s;
	int i;

	for (i = 0; i < n; i++)
		len += strlen(w[i]) + 1;
	if (len > RSH_MAX_REQUEST / 2)
		die("command of %zu bytes is too long", len);
	s = calloc(1, len);
	if (!s)
		die("out of memory");
	for (i = 0; i < n; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, w[i]);
	}
	return s;
}

/* --- host and token ----------------------------------------------------- */

/* Reads up to size-1 bytes of a small file, NUL-terminated. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (got < size - 1) {
		n = read(fd, buf + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

static void read_token(char token[AW_TOKEN_LEN + 1])
{
	const char *path = getenv("VMENV_RSH_TOKEN_FILE");
	char buf[AW_TOKEN_LEN + 8];
	ssize_t n;

	if (!path || !path[0])
		path = TOKEN_FILE;
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		die("cannot read the job token %s: %s (not a multi-node "
		    "vmenv job, or not its user?)",
		    path, strerror((int)-n));
	buf[strcspn(buf, "\n")] = '\0';
	if (!aw_token_ok(buf))
		die("%s does not hold a job token", path);
	memcpy(token, buf, AW_TOKEN_LEN + 1);
	hmac256_wipe(buf, sizeof(buf));
}

/* Looks name up in /etc/hosts: "addr name aliases...", IPv4 only. */
static bool hosts_lookup(const char *name, struct in_addr *ret)
{
	static char buf[4u * 1024u * 1024u];
	char *line, *save = NULL, *tok, *save2, *addr;

	if (read_small(HOSTS_FILE, buf, sizeof(buf)) < 0)
		return false;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "#")] = '\0';
		addr = strtok_r(line, " \t", &save2);
		if (!addr || inet_pton(AF_INET, addr, ret) != 1)
			continue;
		while ((tok = strtok_r(NULL, " \t", &save2)))
			if (strcasecmp(tok, name) == 0)
				return true;
	}
	return false;
}

static struct in_addr resolve(const char *host)
{
	struct in_addr a;

	if (inet_pton(AF_INET, host, &a) == 1 || hosts_lookup(host, &a))
		return a;
	die("unknown host (not an IPv4 address, not in " HOSTS_FILE ")");
}

static uint16_t server_port(void)
{
	const char *s = getenv("VMENV_RSH_PORT");
	char *end;
	long v;

	if (!s || !s[0])
		return AW_RSH_PORT;
	v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 65535)
		die("VMENV_RSH_PORT '%s' is not a port", s);
	return (uint16_t)v;
}

/* --- connection --------------------------------------------------------- */

static int connect_to(struct in_addr addr, uint16_t port)
{
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr};
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0, one = 1, r;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	r = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (r < 0 && errno != EINPROGRESS)
		die("connecting to port %u: %s", port, strerror(errno));
	if (r < 0) {
		pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
		r = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
		if (r == 0)
			die("connecting to port %u: timed out after %d s", port,
			    CONNECT_TIMEOUT_MS / 1000);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err)
			die("connecting to port %u: %s", port, strerror(err));
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void queue(struct client *c, uint8_t type, const void *p, size_t n)
{
	if (rsh_put_frame(&c->out, type, p, n) < 0)
		die("out of memory");
}

/* The variables rsh_env_name_ok() lets through, from our environment. */
static char **pass_env(uint32_t *ret_n)
{
	char **v = calloc(RSH_MAX_ENV + 1, sizeof(*v));
	uint32_t n = 0;
	char **e;

	if (!v)
		die("out of memory");
	for (e = environ; *e && n < RSH_MAX_ENV; e++)
		if (rsh_env_name_ok(*e) && strlen(*e) < 64u * 1024u)
			v[n++] = *e;
	*ret_n = n;
	return v;
}

static void send_hello(struct client *c)
{
	struct aw_buf b = {0};
	int r = rsh_nonce(c->nonces.client, 0);

	if (r < 0)
		die("getrandom: %s", strerror(-r));
	if (rsh_hello_encode(RSH_VERSION, c->nonces.client, &b) < 0)
		die("out of memory");
	queue(c, RSH_HELLO, b.data, b.len);
	aw_buf_free(&b);
}

/* The REQUEST, its MAC over the body as encoded. */
static void send_request(struct client *c)
{
	char cwd[PATH_MAX], sh[] = "/bin/sh", dash_c[] = "-c";
	char *argv[] = {sh, dash_c, c->command, NULL};
	struct rsh_request q = {
	    .version = RSH_VERSION,
	    .cwd = cwd,
	    .argc = 3,
	    .argv = argv,
	};
	struct aw_buf b = {0};
	int r;

	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	q.envp = pass_env(&q.envc);
	r = rsh_request_encode(&q, &b);
	r = r ?: rsh_request_sign(c->token, &c->nonces, &b, 0);
	if (r < 0)
		die("encoding the request: %s", strerror(-r));
	memcpy(c->req_mac, b.data + 4, RSH_MAC_LEN);
	queue(c, RSH_REQUEST, b.data, b.len);
	aw_buf_free(&b);
	free(q.envp);
}

/* --- relay -------------------------------------------------------------- */

/* Writes all of it, waiting when the fd is non-blocking and full. */
static void write_fd(int fd, const uint8_t *p, size_t n)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			poll(&pfd, 1, -1);
			continue;
		}
		if (w < 0)
			die("writing the remote output to fd %d: %s", fd,
			    strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static void on_refuse(struct client *c)
{
	struct aw_reader r;
	char *msg;

	aw_reader_init(&r, c->payload, c->cur.len);
	(void)aw_get_u32(&r);
	msg = aw_get_str(&r, RSH_MAX_MSG);
	for (char *p = msg; p && *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	die("refused: %s", msg ? msg : "(no reason given)");
}

static void on_exit_frame(struct client *c)
{
	struct aw_reader r;
	uint32_t kind, v;

	aw_reader_init(&r, c->payload, c->cur.len);
	kind = aw_get_u32(&r);
	v = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0 || kind > AW_EXIT_SIGNAL || v > 255)
		die("malformed EXIT from the server");
	c->status = kind == AW_EXIT_SIGNAL ? 128 + (int)v : (int)v;
	c->done = true;
}

static void on_challenge(struct client *c)
{
	uint32_t version;
	int r = rsh_hello_decode(c->payload, c->cur.len, &version,
				 c->nonces.server);

	if (r == -EPROTONOSUPPORT)
		die("the server speaks rsh protocol %u, this client %u",
		    version, RSH_VERSION);
	if (r < 0)
		die("malformed CHALLENGE from the server");
	send_request(c);
	c->phase = PH_ACCEPT;
}

/* The server proves it holds the token too: only then does input go. */
static void on_accept(struct client *c)
{
	uint8_t got[RSH_MAC_LEN], want[RSH_MAC_LEN];
	uint32_t pid;

	if (rsh_accept_decode(c->payload, c->cur.len, &pid, got) < 0)
		die("malformed ACCEPT from the server");
	rsh_accept_mac(c->token, &c->nonces, c->req_mac, pid, want);
	if (!hmac256_equal(got, want))
		die("the server did not prove that it holds the job's token "
		    "(not a guest of this job?)");
	hmac256_wipe(c->token, sizeof(c->token));
	c->phase = PH_RUN;
	if (c->no_stdin) {
		queue(c, RSH_STDIN, NULL, 0);
		c->stdin_open = false;
	}
}

/* What the server may send in each phase; REFUSE and EXIT always. */
static bool frame_expected(const struct client *c)
{
	switch (c->cur.type) {
	case RSH_REFUSE:
		return true;
	case RSH_CHALLENGE:
		return c->phase == PH_CHALLENGE;
	case RSH_ACCEPT:
		return c->phase == PH_ACCEPT;
	default:
		return c->phase == PH_RUN;
	}
}

static void on_frame(struct client *c)
{
	if (!frame_expected(c))
		die("unexpected %s from the server",
		    rsh_type_name(c->cur.type));
	switch (c->cur.type) {
	case RSH_CHALLENGE:
		on_challenge(c);
		break;
	case RSH_ACCEPT:
		on_accept(c);
		break;
	case RSH_REFUSE:
		on_refuse(c);
		break;
	case RSH_STDOUT:
		write_fd(STDOUT_FILENO, c->payload, c->cur.len);
		break;
	case RSH_STDERR:
		write_fd(STDERR_FILENO, c->payload, c->cur.len);
		break;
	case RSH_EXIT:
		on_exit_frame(c);
		break;
	default:
		die("unexpected %s from the server",
		    rsh_type_name(c->cur.type));
	}
}

/* The server closed the connection (or reset it) early. */
static __attribute__((noreturn)) void closed(const struct client *c)
{
	if (c->phase == PH_CHALLENGE)
		die("the server closed the connection before its challenge "
		    "(an agent older than rsh protocol %u? vmenv-agent and "
		    "vmenv-rsh must come from the same build)",
		    RSH_VERSION);
	die("connection closed before the command's exit status");
}

/* 1: a frame is complete, 0: need more. Dies on EOF or error. */
static int read_step(struct client *c)
{
	ssize_t n;

	if (c->hdr_got < RSH_HDR_LEN) {
		n = recv(c->sock, c->hdr + c->hdr_got, RSH_HDR_LEN - c->hdr_got,
			 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			closed(c);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0)
			die("reading: %s", strerror(errno));
		c->hdr_got += (size_t)n;
		if (c->hdr_got < RSH_HDR_LEN)
			return 0;
		if (rsh_hdr_decode(c->hdr, RSH_MAX_DATA, &c->cur) < 0)
			die("malformed frame from the server");
		free(c->payload);
		c->payload = malloc(c->cur.len ? c->cur.len : 1);
		if (!c->payload)
			die("out of memory");
		c->payload_got = 0;
	}
	if (c->payload_got < c->cur.len) {
		n = recv(c->sock, c->payload + c->payload_got,
			 c->cur.len - c->payload_got, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			closed(c);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0)
			die("reading: %s", strerror(errno));
		c->payload_got += (size_t)n;
	}
	if (c->payload_got < c->cur.len)
		return 0;
	c->hdr_got = 0;
	return 1;
}

static void sock_read(struct client *c)
{
	for (int i = 0; i < 64 && !c->done; i++) {
		if (read_step(c) == 0)
			return;
		on_frame(c);
	}
}

static void sock_flush(struct client *c)
{
	ssize_t n;

	while (c->out_off < c->out.len) {
		n = send(c->sock, c->out.data + c->out_off,
			 c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			die("sending: %s", strerror(errno));
		c->out_off += (size_t)n;
	}
	c->out.len = c->out_off = 0;
}

static void stdin_read(struct client *c)
{
	static uint8_t buf[RSH_MAX_DATA];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		queue(c, RSH_STDIN, NULL, 0);
		c->stdin_open = false;
		return;
	}
	queue(c, RSH_STDIN, buf, (size_t)n);
}

static void signal_read(struct client *c)
{
	struct signalfd_siginfo si;
	struct aw_buf b = {0};

	while (read(c->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		/* No command to pass it to yet. */
		if (c->phase != PH_RUN)
			die("interrupted by signal %u before the command "
			    "started",
			    si.ssi_signo);
		b.len = 0;
		if (aw_put_u32(&b, si.ssi_signo) < 0)
			die("out of memory");
		queue(c, RSH_SIGNAL, b.data, b.len);
	}
	aw_buf_free(&b);
}

static int relay(struct client *c)
{
	struct pollfd pfd[3];
	int n, in_idx;

	while (!c->done) {
		n = 0;
		pfd[n++] = (struct pollfd){
		    .fd = c->sock,
		    .events = (short)(POLLIN |
				      (c->out.len > c->out_off ? POLLOUT : 0))};
		pfd[n++] = (struct pollfd){.fd = c->sig_fd, .events = POLLIN};
		in_idx = -1;
		if (c->phase == PH_RUN && c->stdin_open &&
		    c->out.len - c->out_off < SEND_HIGH) {
			in_idx = n;
			pfd[n++] = (struct pollfd){.fd = STDIN_FILENO,
						   .events = POLLIN};
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pfd[1].revents)
			signal_read(c);
		if (in_idx >= 0 && pfd[in_idx].revents)
			stdin_read(c);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			sock_read(c);
		if (!c->done)
			sock_flush(c);
	}
	return c->status;
}

static int signals_setup(void)
{
	static const int sigs[] = {SIGINT,  SIGTERM, SIGHUP,
				   SIGQUIT, SIGUSR1, SIGUSR2};
	sigset_t set;
	size_t i;
	int fd;

	sigemptyset(&set);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die("sigprocmask: %s", strerror(errno));
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		die("signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	return fd;
}

int main(int argc, char **argv)
{
	struct client c = {.stdin_open = true, .phase = PH_CHALLENGE};
	char *at;
	int i;

	i = parse_options(argc, argv, &c.no_stdin);
	if (i + 1 >= argc)
		usage();
	/* [user@]host: the user is always the job's. */
	at = strrchr(argv[i], '@');
	c.host = at ? at + 1 : argv[i];
	host_for_msg = c.host;
	c.command = join_words(argc - i - 1, argv + i + 1);
	read_token(c.token);
	c.sig_fd = signals_setup();
	c.sock = connect_to(resolve(c.host), server_port());
	send_hello(&c);
	return relay(&c);
}
