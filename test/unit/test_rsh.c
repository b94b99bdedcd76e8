// SPDX-License-Identifier: MIT
/*
 * The rsh service of the agent (images/agent/rsh.c) and the vmenv-rsh
 * client, end to end on 127.0.0.1: a forked process runs the service in a
 * poll loop like the agent's, and each test runs the real client binary.
 * The attacks on the challenge-response go through raw sockets: a version 1
 * client (token in clear), a recorded exchange replayed, a server that
 * does not hold the token. Needs root (commands run as nobody, as they run
 * as the job's user in a guest); reports SKIPPED otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* By path: vmmd/ has an agent.h too, and UNIT_CFLAGS searches there. */
#include "../../images/agent/agent.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TOKEN	      "5f1e0d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0918273645546372819a"
#define BAD_TOKEN \
	"5f1e0d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0918273645546372819b"
#define NOBODY	   65534u
#define TIMEOUT_MS 20000

static struct {
	char dir[64];
	char token_file[128];
	char bad_token_file[128];
	char log[128];
	pid_t server;
	int port;
} fx;

/* --- the server: the agent's rsh service in its own poll loop ----------- */

static __attribute__((noreturn)) void server_run(int report_fd)
{
	static struct rsh_server srv;
	static struct pollset ps;
	struct rsh_config cfg = {.uid = NOBODY,
				 .gid = NOBODY,
				 .ngroups = 1,
				 .groups = {NOBODY},
				 .user = "nobody",
				 .home = "/",
				 .job = {1, 3}};
	struct signalfd_siginfo si;
	char msg[256];
	sigset_t set;
	int sfd, port, w;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	inet_pton(AF_INET, "127.0.0.1", &cfg.addr_be);
	snprintf(cfg.token, sizeof(cfg.token), "%s", TOKEN);
	rsh_init(&srv);
	if (rsh_start(&srv, &cfg, msg, sizeof(msg)) < 0) {
		dprintf(STDERR_FILENO, "server: %s\n", msg);
		_exit(1);
	}
	port = rsh_port(&srv);
	if (write(report_fd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	close(report_fd);
	for (;;) {
		int t = rsh_timers(&srv);

		ps.n = 0;
		pollset_add(&ps, sfd, POLLIN, PK_SIGNAL, -1, 0);
		rsh_poll_add(&srv, &ps);
		if (poll(ps.fds, ps.n, t) < 0)
			continue;
		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo == SIGTERM) {
				rsh_stop(&srv);
				_exit(0);
			}
		while ((pid = waitpid(-1, &w, WNOHANG)) > 0)
			rsh_reaped(&srv, pid, w);
		rsh_poll_handle(&srv, &ps);
	}
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int group_setup(void **state)
{
	int p[2], logfd;

	(void)state;
	if (geteuid() != 0)
		return 0;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/vmenv-test-rsh.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	chmod(fx.dir, 0755);
	snprintf(fx.token_file, sizeof(fx.token_file), "%s/token", fx.dir);
	snprintf(fx.bad_token_file, sizeof(fx.bad_token_file), "%s/bad",
		 fx.dir);
	snprintf(fx.log, sizeof(fx.log), "%s/server.log", fx.dir);
	write_text(fx.token_file, TOKEN "\n");
	write_text(fx.bad_token_file, BAD_TOKEN);
	if (pipe(p) < 0)
		return -1;
	fx.server = fork();
	if (fx.server == 0) {
		close(p[0]);
		logfd = open(fx.log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(logfd, STDERR_FILENO);
		server_run(p[1]);
	}
	close(p[1]);
	if (read(p[0], &fx.port, sizeof(fx.port)) != sizeof(fx.port))
		return -1;
	close(p[0]);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[256];

	(void)state;
	if (fx.server > 0) {
		kill(fx.server, SIGTERM);
		waitpid(fx.server, NULL, 0);
	}
	if (fx.dir[0] && !getenv("VMENV_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static void need_root(void)
{
	if (geteuid() != 0) {
		print_message("needs root: commands run as nobody\n");
		skip();
	}
}

/* --- running the client ------------------------------------------------- */

struct run {
	pid_t pid;
	int in, out, err;
};

static int client_env_port = -1;

static struct run client_start(const char *const *words, const char *token)
{
	int in[2], out[2], err[2];
	char port[16];
	struct run r;
	size_t n = 0;
	const char *argv[64];

	argv[n++] = RSH_CLIENT;
	for (; *words && n < ARRAY_SIZE(argv) - 1; words++)
		argv[n++] = *words;
	argv[n] = NULL;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	snprintf(port, sizeof(port), "%d",
		 client_env_port >= 0 ? client_env_port : fx.port);
	r.pid = fork();
	assert_true(r.pid >= 0);
	if (r.pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		setenv("VMENV_RSH_PORT", port, 1);
		setenv("VMENV_RSH_TOKEN_FILE", token, 1);
		setenv("PATH", "/usr/bin:/bin", 1);
		/* As from an interactive shell: a test run in the background
		 * of a script inherits SIGINT ignored, which the client (like
		 * ssh) honours, and then there is nothing to forward. */
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		execv(RSH_CLIENT, (char *const *)(uintptr_t)argv);
		_exit(99);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	r.in = in[1];
	r.out = out[0];
	r.err = err[0];
	return r;
}

/* Reads out and err to EOF (both at once: either may fill first), then
 * the exit status. Returns the exit code, or 1000 + signal. */
static int client_finish(struct run *r, char *out, size_t out_size,
			 size_t *out_len, char *err, size_t err_size)
{
	struct pollfd p[2] = {{.fd = r->out, .events = POLLIN},
			      {.fd = r->err, .events = POLLIN}};
	size_t got[2] = {0, 0}, size[2] = {out_size - 1, err_size - 1};
	char *buf[2] = {out, err}, sink[65536];
	int open_n = 2, w, i;
	ssize_t n;

	if (r->in >= 0)
		close(r->in);
	r->in = -1;
	while (open_n > 0) {
		if (poll(p, 2, TIMEOUT_MS) <= 0)
			fail_msg("client output timed out");
		for (i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (got[i] < size[i])
				n = read(p[i].fd, buf[i] + got[i],
					 size[i] - got[i]);
			else
				n = read(p[i].fd, sink, sizeof(sink));
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_n--;
			} else if (got[i] < size[i]) {
				got[i] += (size_t)n;
			} else if (i == 0 && out_len) {
				*out_len += (size_t)n;
			}
		}
	}
	out[got[0]] = '\0';
	err[got[1]] = '\0';
	if (out_len)
		*out_len += got[0];
	assert_int_equal(waitpid(r->pid, &w, 0), r->pid);
	return WIFEXITED(w) ? WEXITSTATUS(w) : 1000 + WTERMSIG(w);
}

static int run_client(const char *const *words, const char *input,
		      const char *token, char *out, size_t out_size, char *err,
		      size_t err_size)
{
	struct run r = client_start(words, token);

	if (input)
		assert_int_equal(write(r.in, input, strlen(input)),
				 (ssize_t)strlen(input));
	return client_finish(&r, out, out_size, NULL, err, err_size);
}

/* --- tests -------------------------------------------------------------- */

/* ssh semantics: the words are joined with spaces and run by sh -c on the
 * other side, so quoting done for ssh survives and bare words split. */
static void test_words_like_ssh(void **state)
{
	static const struct {
		const char *words[16];
		const char *out;
	} cases[] = {
	    {{"127.0.0.1", "echo", "hello", NULL}, "hello\n"},
	    {{"127.0.0.1", "printf", "'[%s]'", "'a b'", "\"c'd\"", "''", NULL},
	     "[a b][c'd][]"},
	    {{"127.0.0.1", "printf '[%s]' 'x  y' \"$((6*7))\"", NULL},
	     "[x  y][42]"},
	    {{"127.0.0.1", "printf", "'[%s]'", "a b", "", NULL}, "[a][b]"},
	    {{"-x", "-T", "-o", "BatchMode=yes", "-oStrictHostKeyChecking=no",
	      "-p", "22", "-l", "someone", "127.0.0.1", "echo", "opts", NULL},
	     "opts\n"},
	    {{"user@127.0.0.1", "echo", "at", NULL}, "at\n"},
	    {{"-q", "--", "localhost", "echo", "by name", NULL}, "by name\n"},
	};
	char out[256], err[1024];
	size_t i;
	int rc;

	(void)state;
	need_root();
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		rc = run_client(cases[i].words, NULL, fx.token_file, out,
				sizeof(out), err, sizeof(err));
		if (rc != 0 || strcmp(out, cases[i].out) != 0)
			fail_msg("case %zu: rc %d out '%s' err '%s'", i, rc,
				 out, err);
	}
}

static void test_identity_and_env(void **state)
{
	const char *words[] = {
	    "127.0.0.1",
	    "id -u; id -g; echo \"$HOME|$USER|$VMENV_NODEID|$VMENV_NNODES|"
	    "$VMENV_NODEFILE|$LC_ALL|${LD_PRELOAD-unset}\"",
	    NULL};
	char out[512], err[512];

	(void)state;
	need_root();
	setenv("LC_ALL", "C", 1);
	setenv("LD_PRELOAD", "", 1);
	assert_int_equal(run_client(words, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 0);
	unsetenv("LD_PRELOAD");
	assert_string_equal(out, "65534\n65534\n/|nobody|1|3|"
				 "/run/vmenv/nodefile|C|unset\n");
}

static void test_stdin_and_streams(void **state)
{
	const char *cat[] = {"127.0.0.1", "cat", NULL};
	const char *split[] = {"127.0.0.1", "echo out; echo err >&2", NULL};
	char out[256], err[256];

	(void)state;
	need_root();
	assert_int_equal(run_client(cat, "line 1\nline 2\n", fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 0);
	assert_string_equal(out, "line 1\nline 2\n");
	assert_int_equal(run_client(split, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 0);
	assert_string_equal(out, "out\n");
	assert_string_equal(err, "err\n");
}

/* Megabytes each way, through the bounded buffers of both ends. */
static void test_bulk(void **state)
{
	const char *count[] = {"127.0.0.1", "wc -c", NULL};
	const char *gen[] = {"127.0.0.1", "head -c 4194304 /dev/zero", NULL};
	static char big[3 * 1024 * 1024 + 1];
	struct run r;
	char out[64], err[256];
	size_t len = 0;
	pid_t writer;

	(void)state;
	need_root();
	memset(big, 'z', sizeof(big) - 1);
	r = client_start(count, fx.token_file);
	/* A writer of its own: the client may block on stdin meanwhile. */
	writer = fork();
	if (writer == 0) {
		_exit(write(r.in, big, sizeof(big) - 1) ==
			      (ssize_t)sizeof(big) - 1
			  ? 0
			  : 1);
	}
	assert_int_equal(
	    client_finish(&r, out, sizeof(out), NULL, err, sizeof(err)), 0);
	assert_int_equal(atoi(out), sizeof(big) - 1);
	waitpid(writer, NULL, 0);
	r = client_start(gen, fx.token_file);
	assert_int_equal(
	    client_finish(&r, out, sizeof(out), &len, err, sizeof(err)), 0);
	assert_int_equal(len, 4194304);
}

static void test_exit_status(void **state)
{
	const char *code[] = {"127.0.0.1", "exit 7", NULL};
	const char *sig[] = {"127.0.0.1", "kill -TERM $$", NULL};
	const char *missing[] = {"127.0.0.1", "no-such-command-here", NULL};
	char out[256], err[256];

	(void)state;
	need_root();
	assert_int_equal(run_client(code, NULL, fx.token_file, out, sizeof(out),
				    err, sizeof(err)),
			 7);
	assert_int_equal(run_client(sig, NULL, fx.token_file, out, sizeof(out),
				    err, sizeof(err)),
			 128 + SIGTERM);
	assert_int_equal(run_client(missing, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 127);
	assert_contains(err, "no-such-command-here");
}

/* A signal to the client reaches the remote command. */
static void test_signal_forwarded(void **state)
{
	const char *words[] = {"127.0.0.1", "echo started; exec sleep 30",
			       NULL};
	struct timespec t0, t1;
	char out[256], err[256], c;
	struct run r;

	(void)state;
	need_root();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = client_start(words, fx.token_file);
	assert_int_equal(read(r.out, &c, 1), 1); /* "started" */
	kill(r.pid, SIGINT);
	assert_int_equal(
	    client_finish(&r, out, sizeof(out), NULL, err, sizeof(err)),
	    128 + SIGINT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
}

static void test_wrong_token(void **state)
{
	const char *words[] = {"127.0.0.1", "echo should not run", NULL};
	char out[256], err[512];

	(void)state;
	need_root();
	assert_int_equal(run_client(words, NULL, fx.bad_token_file, out,
				    sizeof(out), err, sizeof(err)),
			 255);
	assert_string_equal(out, "");
	assert_contains(err, "vmenv-rsh: 127.0.0.1: refused");
	assert_contains(err, "wrong job token");
}

static void test_unreachable(void **state)
{
	const char *words[] = {"127.0.0.1", "true", NULL};
	const char *unknown[] = {"no-such-peer", "true", NULL};
	const char *no_cmd[] = {"127.0.0.1", NULL};
	char out[256], err[512];
	int fd, one = 1;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	(void)state;
	need_root();
	/* A port nobody listens on: bound, never listened. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	client_env_port = ntohs(sin.sin_port);
	assert_int_equal(run_client(words, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 255);
	client_env_port = -1;
	close(fd);
	assert_contains(err, "vmenv-rsh: 127.0.0.1: connecting");
	assert_int_equal(run_client(unknown, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 255);
	assert_contains(err, "vmenv-rsh: no-such-peer: unknown host");
	assert_int_equal(run_client(no_cmd, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 255);
	assert_contains(err, "usage");
}

/* A session waiting on its stdin does not hold up a second one. */
static void test_concurrent(void **state)
{
	const char *waits[] = {"127.0.0.1", "read x; echo got $x", NULL};
	const char *quick[] = {"127.0.0.1", "echo second", NULL};
	char out[256], err[256];
	struct run a;

	(void)state;
	need_root();
	a = client_start(waits, fx.token_file);
	if (run_client(quick, NULL, fx.token_file, out, sizeof(out), err,
		       sizeof(err)) != 0)
		fail_msg("second session: %s", err);
	assert_string_equal(out, "second\n");
	if (write(a.in, "first\n", 6) != 6) {
		int rc =
		    client_finish(&a, out, sizeof(out), NULL, err, sizeof(err));
		fail_msg("first session gone: rc %d out '%s' err '%s'", rc, out,
			 err);
	}
	assert_int_equal(
	    client_finish(&a, out, sizeof(out), NULL, err, sizeof(err)), 0);
	assert_string_equal(out, "got first\n");
}

static int raw_connect(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)fx.port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* RSH_MAX_CONNS connections that never authenticate: the next client is
 * refused with the limit named; garbage closes a connection; afterwards
 * the service works again. */
static void test_limits_and_garbage(void **state)
{
	const char *words[] = {"127.0.0.1", "echo back", NULL};
	int fds[RSH_MAX_CONNS], i, g;
	char out[256], err[512], buf[16];
	struct timeval tv = {5, 0};

	(void)state;
	need_root();
	for (i = 0; i < RSH_MAX_CONNS; i++)
		fds[i] = raw_connect();
	assert_int_equal(run_client(words, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 255);
	assert_contains(err, "too many rsh sessions (limit 16)");
	for (i = 0; i < RSH_MAX_CONNS; i++)
		close(fds[i]);
	/* A header with a nonzero reserved byte: the service closes the
	 * connection (a reset, as the rest is unread), once it has seen the
	 * 16 closes above and has room again. */
	for (int tries = 0;; tries++) {
		ssize_t n;

		assert_true(tries < 100);
		g = raw_connect();
		setsockopt(g, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(write(g, "\0\0\0\4\1\0\0\1xxxx", 12), 12);
		n = read(g, buf, sizeof(buf));
		if (n > 0 && buf[4] == RSH_REFUSE) { /* still full */
			close(g);
			usleep(50000);
			continue;
		}
		if (n != 0 && !(n < 0 && errno == ECONNRESET))
			fail_msg("garbage: read %zd (%s)", n, strerror(errno));
		break;
	}
	close(g);
	assert_int_equal(run_client(words, NULL, fx.token_file, out,
				    sizeof(out), err, sizeof(err)),
			 0);
	assert_string_equal(out, "back\n");
}

/* --- the handshake, attacked with raw sockets ------------------------- */

/* Sends a whole frame. */
static void raw_send(int fd, uint8_t type, const void *p, size_t n)
{
	struct aw_buf f = {0};

	assert_int_equal(rsh_put_frame(&f, type, p, n), 0);
	assert_int_equal(write(fd, f.data, f.len), (ssize_t)f.len);
	aw_buf_free(&f);
}

static void read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	ssize_t r;

	while (n > 0) {
		r = read(fd, b, n);
		if (r <= 0)
			fail_msg("read: %zd (%s)", r, strerror(errno));
		b += r;
		n -= (size_t)r;
	}
}

/* Reads one frame; *payload is malloc'ed. */
static uint8_t raw_recv(int fd, uint8_t **payload, size_t *len)
{
	uint8_t h[RSH_HDR_LEN];
	struct rsh_hdr d;
	struct timeval tv = {10, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	read_all(fd, h, sizeof(h));
	assert_int_equal(rsh_hdr_decode(h, RSH_MAX_REQUEST, &d), 0);
	*payload = malloc(d.len + 1);
	assert_non_null(*payload);
	read_all(fd, *payload, d.len);
	*len = d.len;
	return d.type;
}

/* The REFUSE's message (static). */
static const char *refusal(const uint8_t *p, size_t n)
{
	static char msg[RSH_MAX_MSG + 1];
	struct aw_reader r;
	char *m;

	aw_reader_init(&r, p, n);
	(void)aw_get_u32(&r);
	m = aw_get_str(&r, RSH_MAX_MSG);
	snprintf(msg, sizeof(msg), "%s", m ? m : "?");
	free(m);
	return msg;
}

/* One version 2 exchange by hand, as vmenv-rsh does it, with token. What
 * was sent (HELLO and REQUEST frames, as bytes) is appended to wire. */
static uint8_t raw_v2(const char *token, const char *cmd, struct aw_buf *wire,
		      int *ret_fd)
{
	char sh[] = "/bin/sh", c[] = "-c", root[] = "/", *cm = strdup(cmd);
	char *argv[] = {sh, c, cm, NULL};
	struct rsh_request q = {
	    .version = RSH_VERSION, .cwd = root, .argc = 3, .argv = argv};
	struct rsh_nonces nn;
	struct aw_buf b = {0};
	uint8_t *p, type;
	size_t n;
	uint32_t v;
	int fd = raw_connect();

	assert_int_equal(rsh_nonce(nn.client, 0), 0);
	assert_int_equal(rsh_hello_encode(RSH_VERSION, nn.client, &b), 0);
	raw_send(fd, RSH_HELLO, b.data, b.len);
	assert_int_equal(rsh_put_frame(wire, RSH_HELLO, b.data, b.len), 0);
	assert_int_equal(raw_recv(fd, &p, &n), RSH_CHALLENGE);
	assert_int_equal(rsh_hello_decode(p, n, &v, nn.server), 0);
	free(p);
	b.len = 0;
	assert_int_equal(rsh_request_encode(&q, &b), 0);
	assert_int_equal(rsh_request_sign(token, &nn, &b, 0), 0);
	raw_send(fd, RSH_REQUEST, b.data, b.len);
	assert_int_equal(rsh_put_frame(wire, RSH_REQUEST, b.data, b.len), 0);
	type = raw_recv(fd, &p, &n);
	free(p);
	aw_buf_free(&b);
	free(cm);
	*ret_fd = fd;
	return type;
}

static const char *slurp_text(const char *path)
{
	static char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* A path in a directory the commands (nobody) may write. */
static void nobody_path(char *out, size_t size, const char *name)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/w", fx.dir);
	if (mkdir(dir, 0755) == 0)
		assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
	snprintf(out, size, "%s/%s", dir, name);
}

/* A version 1 client sends its token first, in clear: refused with the
 * reason as the first frame it reads, and its command never runs. */
static void test_v1_client_refused(void **state)
{
	char mark[160], cmd[200];
	struct aw_buf b = {0};
	uint8_t *p;
	size_t n;
	int fd;

	(void)state;
	need_root();
	nobody_path(mark, sizeof(mark), "v1-ran");
	snprintf(cmd, sizeof(cmd), "touch %s", mark);
	aw_put_u32(&b, 1);
	aw_put_str(&b, TOKEN);
	aw_put_str(&b, "/");
	aw_put_u32(&b, 3);
	aw_put_str(&b, "/bin/sh");
	aw_put_str(&b, "-c");
	aw_put_str(&b, cmd);
	aw_put_u32(&b, 0);
	fd = raw_connect();
	raw_send(fd, RSH_REQUEST, b.data, b.len);
	assert_int_equal(raw_recv(fd, &p, &n), RSH_REFUSE);
	assert_contains(refusal(p, n), "protocol 1 is refused");
	free(p);
	close(fd);
	usleep(200000);
	assert_false(exists(mark));
	aw_buf_free(&b);
}

/* Another protocol version in HELLO: refused, naming both. */
static void test_other_version_refused(void **state)
{
	uint8_t nonce[RSH_NONCE_LEN] = {1}, *p;
	struct aw_buf b = {0};
	size_t n;
	int fd = -1;

	(void)state;
	need_root();
	fd = raw_connect();
	assert_int_equal(rsh_hello_encode(3, nonce, &b), 0);
	raw_send(fd, RSH_HELLO, b.data, b.len);
	assert_int_equal(raw_recv(fd, &p, &n), RSH_REFUSE);
	assert_contains(refusal(p, n), "protocol 3 is not spoken here");
	free(p);
	close(fd);
	aw_buf_free(&b);
}

/* What a sniffer on the segment records is worth nothing: the token is not
 * in it, and replaying it (HELLO, then the REQUEST with its MAC) meets a
 * fresh challenge and is refused; the command runs only for the real
 * exchange. A request under a wrong token is refused too. */
static void test_replay_refused(void **state)
{
	struct aw_buf wire = {0}, replay_wire = {0};
	struct rsh_hdr h1;
	char mark[160], cmd[200];
	uint8_t *p;
	size_t n, hello_len;
	int fd, rfd;

	(void)state;
	need_root();
	nobody_path(mark, sizeof(mark), "replay-ran");
	snprintf(cmd, sizeof(cmd), "echo x >> %s", mark);
	assert_int_equal(raw_v2(TOKEN, cmd, &wire, &fd), RSH_ACCEPT);
	raw_send(fd, RSH_STDIN, NULL, 0);
	for (;;) { /* to EXIT */
		uint8_t t = raw_recv(fd, &p, &n);

		free(p);
		if (t == RSH_EXIT)
			break;
	}
	close(fd);
	assert_true(exists(mark));
	assert_null(memmem(wire.data, wire.len, TOKEN, 16));
	/* The replay: the recorded frames, as they were. */
	assert_int_equal(rsh_hdr_decode(wire.data, RSH_MAX_REQUEST, &h1), 0);
	hello_len = RSH_HDR_LEN + h1.len;
	rfd = raw_connect();
	assert_int_equal(write(rfd, wire.data, hello_len), (ssize_t)hello_len);
	assert_int_equal(raw_recv(rfd, &p, &n), RSH_CHALLENGE);
	free(p);
	assert_int_equal(
	    write(rfd, wire.data + hello_len, wire.len - hello_len),
	    (ssize_t)(wire.len - hello_len));
	assert_int_equal(raw_recv(rfd, &p, &n), RSH_REFUSE);
	assert_contains(refusal(p, n), "wrong job token");
	free(p);
	close(rfd);
	/* A forged request under another token. */
	assert_int_equal(raw_v2(BAD_TOKEN, cmd, &replay_wire, &fd), RSH_REFUSE);
	close(fd);
	usleep(200000);
	assert_string_equal(slurp_text(mark), "x\n");
	aw_buf_free(&wire);
	aw_buf_free(&replay_wire);
}

/* A server that does not hold the token (it answers the challenge with a
 * made-up MAC): the client stops before it sends any of its input. */
static void test_fake_server(void **state)
{
	const char *words[] = {"127.0.0.1", "cat", NULL};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	uint8_t nonce[RSH_NONCE_LEN] = {4}, mac[RSH_MAC_LEN] = {5}, *p, t;
	char out[256], err[512];
	struct aw_buf b = {0};
	struct run r;
	size_t n;
	int lfd, fd, rc, got_stdin = 0;

	(void)state;
	need_root();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	client_env_port = ntohs(sin.sin_port);
	r = client_start(words, fx.token_file);
	client_env_port = -1;
	assert_int_equal(write(r.in, "secret input\n", 13), 13);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(raw_recv(fd, &p, &n), RSH_HELLO);
	free(p);
	assert_int_equal(rsh_hello_encode(RSH_VERSION, nonce, &b), 0);
	raw_send(fd, RSH_CHALLENGE, b.data, b.len);
	assert_int_equal(raw_recv(fd, &p, &n), RSH_REQUEST);
	free(p);
	b.len = 0;
	assert_int_equal(rsh_accept_encode(77, mac, &b), 0);
	raw_send(fd, RSH_ACCEPT, b.data, b.len);
	rc = client_finish(&r, out, sizeof(out), NULL, err, sizeof(err));
	assert_int_equal(rc, 255);
	assert_contains(err, "did not prove that it holds the job's token");
	/* Nothing more came: no STDIN frame, no input. */
	{
		struct timeval tv = {1, 0};
		uint8_t h[RSH_HDR_LEN];
		ssize_t k;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		k = read(fd, h, sizeof(h));
		if (k == (ssize_t)sizeof(h)) {
			t = h[4];
			got_stdin = t == RSH_STDIN;
		}
	}
	assert_false(got_stdin);
	close(fd);
	close(lfd);
	aw_buf_free(&b);
}

/* --- the job's files and environment (no root needed) ----------------- */

static char *slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void test_jobfiles(void **state)
{
	char dir[] = "/tmp/vmenv-test-jobfiles.XXXXXX", hosts[96], sub[96],
	     nodefile[128], token[128], msg[256], cmd[160];
	char n0[] = "n0", n1[] = "n-1.x", n2[] = "n2", a0[] = "10.77.0.1",
	     a1[] = "10.77.0.2", a2[] = "10.77.0.3", net[] = "10.77.0.2/16",
	     tok[] = TOKEN;
	struct aw_peer peers[3] = {{n0, a0}, {n1, a1}, {n2, a2}};
	struct aw_setup s = {.uid = getuid(),
			     .gid = getgid(),
			     .node_index = 1,
			     .net_addr = net,
			     .job_token = tok,
			     .npeers = 3,
			     .peers = peers};
	struct jobfiles_paths p = {hosts, sub, nodefile, token};
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
	snprintf(sub, sizeof(sub), "%s/run", dir);
	snprintf(nodefile, sizeof(nodefile), "%s/nodefile", sub);
	snprintf(token, sizeof(token), "%s/job-token", sub);
	write_text(hosts, "10.0.0.9 stale\n");
	assert_int_equal(jobfiles_write_at(&p, &s, msg, sizeof(msg)), 0);
	assert_string_equal(slurp(hosts),
			    "127.0.0.1\tlocalhost\n"
			    "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
			    "10.77.0.1\tn0\n10.77.0.2\tn-1.x\n10.77.0.3\tn2\n");
	assert_string_equal(slurp(nodefile), "n0\nn-1.x\nn2\n");
	assert_string_equal(slurp(token), TOKEN);
	assert_int_equal(stat(token, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(st.st_uid, getuid());
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(stat(hosts, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* Again (a retried SETUP): the same files, no temporaries left. */
	assert_int_equal(jobfiles_write_at(&p, &s, msg, sizeof(msg)), 0);
	assert_string_equal(slurp(nodefile), "n0\nn-1.x\nn2\n");
	snprintf(cmd, sizeof(cmd),
		 "test -z \"$(ls %s %s | grep vmenv-agent.tmp)\"", dir, sub);
	assert_int_equal(system(cmd), 0);
	/* Without peers nothing is written. */
	s.npeers = 0;
	write_text(hosts, "kept\n");
	assert_int_equal(jobfiles_write_at(&p, &s, msg, sizeof(msg)), 0);
	assert_string_equal(slurp(hosts), "kept\n");
	/* A failure names the file. */
	s.npeers = 3;
	snprintf(sub, sizeof(sub), "%s/hosts/x", dir);
	assert_true(jobfiles_write_at(&p, &s, msg, sizeof(msg)) < 0);
	assert_contains(msg, "/hosts/x");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_job_env(void **state)
{
	const char *const in[] = {"PATH=/bin", "VMENV_NODEID=7", "X=1",
				  "VMENV_NNODES=9", NULL};
	struct agent_job none = {0, 0}, j = {2, 5};
	size_t n;
	char **v = xstrv(in, &n);
	uint32_t envc = (uint32_t)n;

	(void)state;
	assert_int_equal(jobfiles_env(&none, &v, &envc), 0);
	assert_int_equal(envc, 4); /* no nodes: unchanged */
	assert_string_equal(v[1], "VMENV_NODEID=7");
	assert_int_equal(jobfiles_env(&j, &v, &envc), 0);
	assert_int_equal(envc, 5);
	assert_string_equal(v[0], "VMENV_NODEFILE=/run/vmenv/nodefile");
	assert_string_equal(v[1], "VMENV_NODEID=2");
	assert_string_equal(v[2], "VMENV_NNODES=5");
	assert_string_equal(v[3], "PATH=/bin");
	assert_string_equal(v[4], "X=1");
	assert_null(v[5]);
	for (uint32_t i = 0; i < envc; i++)
		free(v[i]);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_words_like_ssh),
	    cmocka_unit_test(test_identity_and_env),
	    cmocka_unit_test(test_stdin_and_streams),
	    cmocka_unit_test(test_bulk),
	    cmocka_unit_test(test_exit_status),
	    cmocka_unit_test(test_signal_forwarded),
	    cmocka_unit_test(test_wrong_token),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_limits_and_garbage),
	    cmocka_unit_test(test_v1_client_refused),
	    cmocka_unit_test(test_other_version_refused),
	    cmocka_unit_test(test_replay_refused),
	    cmocka_unit_test(test_fake_server),
	    cmocka_unit_test(test_jobfiles),
	    cmocka_unit_test(test_job_env),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
