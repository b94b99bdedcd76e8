/* SPDX-License-Identifier: MIT */
/*
 * vmenv-exec: what Slurm execs in place of each task of a VM job. It asks
 * vmmd to run the task's command in the job's guest, hands vmmd its stdio
 * (vmmd relays it to and from the guest), forwards the signals Slurm sends
 * the task, and ends the way the command in the guest ended, so Slurm
 * records the guest's exit code or signal.
 *
 * Exit status 125 means vmenv itself failed (the message says why), as
 * container runtimes do.
 */
#include "cleanup.h"
#include "progress.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_VMENV	   125
#define CONNECT_TIMEOUT_MS 10000

static const int forwarded[] = {SIGHUP,	 SIGINT,  SIGQUIT, SIGUSR1, SIGUSR2,
				SIGALRM, SIGTERM, SIGCONT, SIGWINCH};

static const char *job_id_str = "?";
static const char *node_str = "?"; /* SLURMD_NODENAME, for messages */

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmenv: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_VMENV);
}

static bool is_dev_null(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

/* stdout and stderr are one file (Slurm's default slurm-%j.out): the guest
 * then writes both into one stream, so their order is kept exactly. */
static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
	       !S_ISCHR(sa.st_mode);
}

/* The task's environment minus vmenv's own plumbing. */
static char **guest_env(size_t *n)
{
	extern char **environ;
	size_t count = 0, k = 0;
	char **v;

	while (environ[count])
		count++;
	v = calloc(count + 1, sizeof(*v));
	if (!v)
		die("job %s: out of memory", job_id_str);
	for (size_t i = 0; i < count; i++)
		if (strncmp(environ[i], "VMENV_", 6) != 0)
			v[k++] = environ[i];
	*n = k;
	return v;
}

static int block_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&mask, forwarded[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* --- the step: its pipes toward vmmd, what it holds, how it comes back -- */

/* Stdin kept after it went into the pipe: what vmmd and the guest may
 * still lose with a vmmd restart is at most the agent's window, the
 * pipe and one read (docs/restart.md). */
#define STDIN_KEEP	   (4u * 1024u * 1024u)
#define STDIN_AHEAD	   (64u * 1024u)
#define MAX_QUEUED_SIGNALS 64
#define REATTACH_RETRY_MS  200
#define REATTACH_DEFAULT_S 300

struct step {
	int fd;	 /* vmmd; -1 while it is away */
	int sfd; /* signalfd */
	const char *sock;
	bool merge, want_stdin, script;
	/* vmmd writes the guest's output into these pipes; what came out of
	 * each is counted, so a restarted vmmd is told exactly where the
	 * task's output stands. */
	int out_r[2];
	uint64_t got[2];
	/* Stdin: bytes [in_base, in_base + in_len) are kept; in_wr of them
	 * went into the pipe (in_w) already. */
	int in_w;
	uint8_t *in_buf;
	size_t in_len, in_wr;
	uint64_t in_base;
	bool in_eof;	 /* the task's stdin ended */
	bool in_flowing; /* vmmd takes stdin (after started) */
	bool started;	 /* the command started in the guest */
	bool resent;	 /* the command went again to a restarted vmmd */
	bool launched;	 /* vmmd sent it to the guest: never again */
	/* What a re-attach needs (vmmd's "session" event). */
	uint32_t session;
	char token[PROTO_TOKEN_HEX + 1];
	int queued[MAX_QUEUED_SIGNALS];
	size_t nqueued;
	struct proto_rx rx;
	/* The command, sent again to a restarted vmmd when the first one
	 * went before starting it (no token yet: nothing ran). */
	int argc;
	char **argv;
};

static int open_pipe(int p[2], int flags)
{
	if (pipe2(p, O_CLOEXEC | flags) < 0)
		die("job %s: pipe: %s", job_id_str, strerror(errno));
	return 0;
}

/* New pipes for one connection: fds[0..2] go to vmmd (the ends it uses),
 * the others stay. */
static void new_pipes(struct step *st, int fds[3])
{
	int p[2];

	open_pipe(p, 0);
	st->out_r[0] = p[0];
	fds[1] = p[1];
	fds[2] = p[1];
	if (!st->merge) {
		open_pipe(p, 0);
		st->out_r[1] = p[0];
		fds[2] = p[1];
	}
	fds[0] = 0;
	if (st->want_stdin) {
		open_pipe(p, 0);
		fds[0] = p[0];
		st->in_w = p[1];
		fd_set_nonblock(st->in_w, true);
	}
}

static void close_sent(const int fds[3])
{
	if (fds[0] > 2)
		close(fds[0]);
	close(fds[1]);
	if (fds[2] != fds[1])
		close(fds[2]);
}

static void send_exec(struct step *st, int argc, char **argv)
{
	/* The agent's relay instead of a bulk port (bench/run compares). */
	const char *relay = getenv("VMENV_EXEC_RELAY");
	/* A bulk port, faster, for a step that need not outlive a vmmd
	 * restart (docs/restart.md). */
	const char *bulk = getenv("VMENV_EXEC_BULK");
	struct proto_request req = {.op = PROTO_OP_EXEC};
	char cwd[VMENV_MAX_PATH];
	int fds[5] = {-1, -1, -1, -1, 1};
	size_t nfds = 3;
	int r;

	if (parse_u32(job_id_str, &req.job_id) < 0)
		die("SLURM_JOB_ID is not set: vmenv-exec runs only inside a "
		    "Slurm job");
	if (!getcwd(cwd, sizeof(cwd)))
		die("job %s: getcwd: %s", job_id_str, strerror(errno));
	req.exec.cwd = cwd;
	req.exec.argc = (size_t)argc;
	req.exec.argv = argv;
	req.exec.envp = guest_env(&req.exec.envc);
	req.exec.want_stdin = st->want_stdin;
	req.exec.merge_stderr = st->merge;
	req.exec.script = st->script;
	req.exec.relay = relay && strcmp(relay, "1") == 0;
	req.exec.bulk = bulk && strcmp(bulk, "1") == 0;
	new_pipes(st, fds);
	if (req.exec.script) {
		fds[3] = open(argv[0], O_RDONLY | O_CLOEXEC);
		if (fds[3] < 0)
			die("job %s: cannot read the batch script %s: %s",
			    job_id_str, argv[0], strerror(errno));
		nfds = 5; /* and stdout itself, for a checkpoint's copy */
	}
	r = proto_send_request(st->fd, &req, fds, nfds);
	if (r < 0)
		die("job %s: cannot send the command to vmmd: %s", job_id_str,
		    strerror(-r));
	free(req.exec.envp);
	close_sent(fds);
	if (fds[3] >= 0)
		close(fds[3]);
}

static void __attribute__((noreturn)) end_like(const struct proto_reply *rep)
{
	if (!rep->exit_signaled)
		exit(rep->exit_value);
	/* Die of the same signal, so Slurm reports it; no core of ours. */
	struct rlimit no_core = {0, 0};
	sigset_t all;

	setrlimit(RLIMIT_CORE, &no_core);
	signal(rep->exit_value, SIG_DFL);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	raise(rep->exit_value);
	exit(128 + rep->exit_value);
}

static void send_signal(struct step *st, int signo)
{
	struct proto_request req = {.op = PROTO_OP_SIGNAL, .signo = signo};

	/* vmmd away: the signal waits for the next one (Slurm's SIGTERM at
	 * a time limit must still reach the command). */
	if (st->fd < 0 || !st->in_flowing) {
		if (st->nqueued < MAX_QUEUED_SIGNALS)
			st->queued[st->nqueued++] = signo;
		return;
	}
	proto_send_request(st->fd, &req, NULL, 0);
}

static void forward_signal(struct step *st)
{
	struct signalfd_siginfo si;

	/* sfd is non-blocking: a blocking read after the last pending signal
	 * would stop the relay (and a scancel would wait for KillWait). */
	while (read(st->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		send_signal(st, (int)si.ssi_signo);
}

/* The image download the task waits for, on the task's stderr (the job's
 * output file for a batch job). vmmd already bounds how often it sends
 * (common/progress.h); the numbers are only shown. The tasks of a step
 * share its output: only its first task on this node shows it. */
static void show_progress(const struct proto_progress *p)
{
	const char *local = getenv("SLURM_LOCALID");
	char line[512], image[PROTO_MAX_IMAGE_REF];
	uint32_t job = 0;

	if (local && strcmp(local, "0") != 0)
		return;
	(void)parse_u32(job_id_str, &job);
	printable(p->image, image, sizeof(image));
	if (p->ready)
		progress_ready_line(line, sizeof(line), job, image, p->total,
				    p->elapsed_ms);
	else
		progress_fetch_line(line, sizeof(line), job, image, p->done,
				    p->total, p->bps);
	fprintf(stderr, "vmenv: %s\n", line);
}

/* One read of an output pipe, to the task's own stdout or stderr.
 * Returns false at EOF. */
static bool pump_out(struct step *st, int k)
{
	char buf[64 * 1024];
	ssize_t n = read(st->out_r[k], buf, sizeof(buf));
	int r;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		close(st->out_r[k]);
		st->out_r[k] = -1;
		return false;
	}
	/* A reader gone (a closed pipe) is the task's business: the output
	 * is dropped, the count goes on, as vmmd did. */
	r = write_full(k == 0 || st->merge ? 1 : 2, buf, (size_t)n);
	(void)r;
	st->got[k] += (uint64_t)n;
	return true;
}

/* vmmd closed its ends: everything it put in the pipes is out. */
static void drain_out(struct step *st)
{
	for (int k = 0; k < 2; k++) {
		while (st->out_r[k] >= 0) {
			struct pollfd p = {st->out_r[k], POLLIN, 0};

			/* A vmmd alive but stuck holds the pipe: bounded. */
			if (poll(&p, 1, 10000) <= 0) {
				close(st->out_r[k]);
				st->out_r[k] = -1;
				break;
			}
			pump_out(st, k);
		}
	}
}

static void __attribute__((noreturn))
finish(struct step *st, const struct proto_reply *rep)
{
	drain_out(st);
	if (rep->kind == PROTO_EV_EXIT)
		end_like(rep);
	/* The guest is saved and gone: nothing of ours runs any more, and
	 * the SIGTERM Slurm sends at the requeue must not reach a restored
	 * guest. A task of the restarted job re-attaches. */
	if (rep->kind == PROTO_EV_CHECKPOINTED) {
		fprintf(stderr, "vmenv: %s\n", rep->error);
		exit(rep->exit_value);
	}
	if (st->resent && !st->launched)
		die("job %s: lost the connection to vmmd on node %s (vmmd "
		    "stopped or restarted before the step started), and the "
		    "new vmmd says: %s",
		    job_id_str, node_str, rep->error);
	die("%s", rep->error);
}

/* vmmd says how much stdin the guest holds (after a re-attach): the rest
 * goes again. */
static void stdin_from(struct step *st, const struct proto_reply *rep)
{
	if (!rep->reattached || !st->want_stdin)
		return;
	if (rep->stdin_offset < st->in_base ||
	    rep->stdin_offset > st->in_base + st->in_len)
		die("job %s: after the vmmd restart on node %s the guest holds "
		    "%llu bytes of stdin, and this task kept bytes %llu to "
		    "%llu: the step cannot go on",
		    job_id_str, node_str, (unsigned long long)rep->stdin_offset,
		    (unsigned long long)st->in_base,
		    (unsigned long long)(st->in_base + st->in_len));
	st->in_wr = (size_t)(rep->stdin_offset - st->in_base);
	if (rep->stdin_eof && st->in_w >= 0) {
		close(st->in_w);
		st->in_w = -1;
	}
}

static void on_started(struct step *st, const struct proto_reply *rep)
{
	st->started = true;
	st->launched = true; /* an older vmmd sends no session event */
	stdin_from(st, rep);
	st->in_flowing = true;
	for (size_t i = 0; i < st->nqueued; i++)
		send_signal(st, st->queued[i]);
	st->nqueued = 0;
}

static void on_reply(struct step *st, const struct proto_reply *rep)
{
	switch (rep->kind) {
	case PROTO_EV_SESSION:
		st->launched = true;
		st->session = rep->session;
		memcpy(st->token, rep->token, sizeof(st->token));
		return;
	case PROTO_EV_STARTED:
		on_started(st, rep);
		return;
	case PROTO_EV_PROGRESS:
		show_progress(&rep->progress);
		return;
	case PROTO_EV_EXIT:
	case PROTO_EV_CHECKPOINTED:
	case PROTO_EV_ERROR:
	case PROTO_REPLY_ERROR:
		finish(st, rep);
	case PROTO_REPLY_OK:
		die("job %s: unexpected reply from vmmd", job_id_str);
	}
}

/* --- stdin -------------------------------------------------------------- */

static void stdin_read(struct step *st)
{
	uint8_t *p;
	ssize_t n;

	if (st->in_len + STDIN_AHEAD > STDIN_KEEP + STDIN_AHEAD * 2)
		return;
	p = realloc(st->in_buf, st->in_len + STDIN_AHEAD);
	if (!p)
		die("job %s: out of memory", job_id_str);
	st->in_buf = p;
	n = read(0, st->in_buf + st->in_len, STDIN_AHEAD);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		st->in_eof = true;
		return;
	}
	st->in_len += (size_t)n;
}

/* Only what may still be lost stays: the rest of the kept bytes go. */
static void stdin_trim(struct step *st)
{
	size_t drop;

	if (st->in_wr <= STDIN_KEEP)
		return;
	drop = st->in_wr - STDIN_KEEP;
	memmove(st->in_buf, st->in_buf + drop, st->in_len - drop);
	st->in_len -= drop;
	st->in_wr -= drop;
	st->in_base += drop;
}

static void stdin_write(struct step *st)
{
	ssize_t n;

	if (st->in_w < 0)
		return;
	if (st->in_wr < st->in_len) {
		n = write(st->in_w, st->in_buf + st->in_wr,
			  st->in_len - st->in_wr);
		if (n > 0)
			st->in_wr += (size_t)n;
		/* vmmd gone (EPIPE): the socket says so too. */
		else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			close(st->in_w);
			st->in_w = -1;
			return;
		}
		stdin_trim(st);
	}
	if (st->in_eof && st->in_wr == st->in_len) {
		close(st->in_w);
		st->in_w = -1;
	}
}

/* --- vmmd restarts -------------------------------------------------------- */

static void send_reattach(struct step *st)
{
	struct proto_request req = {.op = PROTO_OP_REATTACH};
	int fds[4], r;

	(void)parse_u32(job_id_str, &req.job_id);
	req.re.session = st->session;
	memcpy(req.re.token, st->token, sizeof(req.re.token));
	req.re.out_bytes = st->got[0];
	req.re.err_bytes = st->got[1];
	req.exec.want_stdin = st->want_stdin;
	req.exec.merge_stderr = st->merge;
	new_pipes(st, fds);
	fds[3] = 1; /* a batch step's own stdout, for a checkpoint's copy */
	r = proto_send_request(st->fd, &req, fds, st->script ? 4 : 3);
	close_sent(fds);
	if (r < 0) {
		close(st->fd);
		st->fd = -1;
		/* Made for that connection: the next try makes its own. */
		for (int k = 0; k < 2; k++)
			if (st->out_r[k] >= 0)
				close(st->out_r[k]), st->out_r[k] = -1;
		if (st->in_w >= 0)
			close(st->in_w), st->in_w = -1;
	}
}

static int reattach_s(void)
{
	const char *v = getenv("VMENV_REATTACH_S");
	uint32_t s;

	return v && parse_u32(v, &s) == 0 && s <= 86400 ? (int)s
							: REATTACH_DEFAULT_S;
}

/* vmmd went away (a restart, a crash): take in everything it had put in
 * the pipes, hold stdin and signals, and come back to the next vmmd, which
 * has the guest still running the command. */
static void reconnect(struct step *st, int err)
{
	uint64_t deadline = now_ms() + (uint64_t)reattach_s() * 1000;

	/* Sent to the guest without a token: a guest whose agent cannot
	 * keep steps (an image older than agent protocol 3) killed it; it
	 * must not run twice. */
	if (st->launched && !st->token[0])
		die("job %s: lost the connection to vmmd on node %s (vmmd "
		    "stopped or restarted; this step cannot go on): %s",
		    job_id_str, node_str, strerror(-err));
	close(st->fd);
	st->fd = -1;
	st->in_flowing = false;
	if (st->in_w >= 0)
		close(st->in_w);
	st->in_w = -1;
	drain_out(st);
	proto_rx_reset(&st->rx);
	for (;;) {
		int fd = unix_connect(st->sock, 1000);

		if (fd >= 0 && !st->launched) {
			st->fd = fd;
			st->resent = true;
			send_exec(st, st->argc, st->argv);
			return;
		}
		if (fd >= 0) {
			st->fd = fd;
			send_reattach(st);
			if (st->fd >= 0)
				return;
		}
		if (now_ms() >= deadline)
			die("job %s: vmmd on node %s did not come back within "
			    "%d s; the step cannot go on",
			    job_id_str, node_str, reattach_s());
		usleep(REATTACH_RETRY_MS * 1000);
		forward_signal(st);
	}
}

static void on_socket(struct step *st)
{
	struct proto_reply rep;
	char err[256];
	int r = proto_rx_feed(&st->rx, st->fd);

	if (r == 0)
		return;
	if (r < 0) {
		reconnect(st, r);
		return;
	}
	if (proto_reply_decode(st->rx.buf, st->rx.got, &rep, err, sizeof(err)) <
	    0)
		die("job %s: bad reply from vmmd: %s", job_id_str, err);
	proto_rx_reset(&st->rx);
	on_reply(st, &rep);
	proto_reply_clear(&rep);
}

enum { P_SOCK, P_SIG, P_OUT, P_ERR, P_STDIN, P_INW, P_N };

static void __attribute__((noreturn)) relay(struct step *st)
{
	proto_rx_init(&st->rx);
	for (;;) {
		struct pollfd p[P_N] = {
		    [P_SOCK] = {st->fd, POLLIN, 0},
		    [P_SIG] = {st->sfd, POLLIN, 0},
		    [P_OUT] = {st->out_r[0], POLLIN, 0},
		    [P_ERR] = {st->out_r[1], POLLIN, 0},
		    [P_STDIN] = {-1, POLLIN, 0},
		    [P_INW] = {-1, POLLOUT, 0},
		};
		int r;

		fd_set_nonblock(st->fd, true);
		if (st->want_stdin && !st->in_eof &&
		    st->in_len - st->in_wr < STDIN_AHEAD)
			p[P_STDIN].fd = 0;
		if (st->in_flowing && st->in_w >= 0 &&
		    (st->in_wr < st->in_len || st->in_eof))
			p[P_INW].fd = st->in_w;
		r = poll(p, P_N, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("job %s: poll: %s", job_id_str, strerror(errno));
		if (p[P_SIG].revents & POLLIN)
			forward_signal(st);
		for (int k = 0; k < 2; k++)
			if (p[P_OUT + k].revents)
				pump_out(st, k);
		if (p[P_STDIN].revents)
			stdin_read(st);
		if (p[P_INW].revents || (st->in_flowing && st->in_eof))
			stdin_write(st);
		if (p[P_SOCK].revents & (POLLIN | POLLHUP | POLLERR))
			on_socket(st);
	}
}

#define SPANK_OPT_ENV "SLURM_SPANK__SLURM_SPANK_OPTION_vmenv_"

/* The job's --vm-* options, from the batch environment, as srun options:
 * a step on other nodes does see options srun takes from its
 * environment, but SPANK hands them to the plugin only at task start
 * there, too late to start the guest. */
static size_t vm_options(char **out, size_t max)
{
	extern char **environ;
	size_t n = 0, plen = strlen(SPANK_OPT_ENV);

	for (char **e = environ; *e && n < max; e++) {
		const char *eq = strchr(*e, '=');
		char *opt;

		if (strncmp(*e, SPANK_OPT_ENV, plen) != 0 || !eq)
			continue;
		if (asprintf(&opt, "--%.*s=%s", (int)(eq - *e - (long)plen),
			     *e + plen, eq + 1) < 0)
			die("job %s: out of memory", job_id_str);
		for (char *c = opt + 2; *c && *c != '='; c++)
			if (*c == '_')
				*c = '-';
		out[n++] = opt;
	}
	return n;
}

/* A batch script on several nodes runs in the first node's guest. Slurm
 * starts nothing of the job on the other nodes but its extern step, which
 * sees none of the job's options, so the batch shim starts their guests
 * itself: one step over all the job's nodes, one task per node, running
 * `true` in that node's guest. The step ends when every guest is ready,
 * or fails with the message of the node whose guest did not come up, and
 * then the script does not run at all. */
static void start_other_guests(void)
{
	const char *n = getenv("SLURM_JOB_NUM_NODES");
	const char *srun = getenv("VMENV_SRUN");
	char count[16], *argv[48];
	size_t k = 0;
	uint32_t nodes;
	int status;
	pid_t pid;

	if (!n || parse_u32(n, &nodes) < 0 || nodes < 2)
		return;
	if (!srun || !*srun)
		die("job %s: no srun to start the guests of its %u nodes",
		    job_id_str, nodes);
	snprintf(count, sizeof(count), "%u", nodes);
	const char *fixed[] = {srun,
			       "--overlap",
			       "--quiet",
			       "--nodes",
			       count,
			       "--ntasks",
			       count,
			       "--ntasks-per-node=1",
			       "--kill-on-bad-exit=1",
			       "--job-name=vmenv-start"};
	/* Copies: execv wants char *, and the child execs right away. */
	for (; k < ARRAY_SIZE(fixed); k++)
		if (!(argv[k] = strdup(fixed[k])))
			die("job %s: out of memory", job_id_str);
	k += vm_options(argv + k, ARRAY_SIZE(argv) - k - 2);
	argv[k++] = strdup("true");
	argv[k] = NULL;
	pid = fork();
	if (pid < 0)
		die("job %s: fork: %s", job_id_str, strerror(errno));
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(srun, argv);
		fprintf(stderr, "vmenv: job %s: cannot run %s: %s\n",
			job_id_str, srun, strerror(errno));
		_exit(EXIT_VMENV);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("job %s: waitpid: %s", job_id_str, strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("job %s: the guests of its %u nodes did not all start (the "
		    "reason is above); the batch script did not run",
		    job_id_str, nodes);
}

int main(int argc, char **argv)
{
	const char *argv0 = getenv("VMENV_ARGV0");
	const char *sock = getenv("VMENV_SOCKET");
	const char *node = getenv("SLURMD_NODENAME");
	const char *batch = getenv("VMENV_BATCH");
	struct step st = {.out_r = {-1, -1}, .in_w = -1};
	int fd, sfd;

	job_id_str = getenv("SLURM_JOB_ID") ? getenv("SLURM_JOB_ID") : "?";
	node_str = node ? node : "?";
	if (!argv0 || !sock || argc < 1)
		die("vmenv-exec is started by the vmenv SPANK plugin, not by "
		    "hand");
	/* The plugin could not even ask vmmd for the guest (a value too
	 * long to send): the job fails here with the reason. */
	if (getenv("VMENV_REFUSED"))
		die("job %s: %s", job_id_str, getenv("VMENV_REFUSED"));
	/* Signals are blocked before connecting, so none is lost between
	 * here and the relay loop. */
	sfd = block_signals();
	st.want_stdin = !is_dev_null(0);
	st.merge = same_file(1, 2);
	st.script = batch && strcmp(batch, "1") == 0;
	if (getenv("VMENV_BATCH") && strcmp(getenv("VMENV_BATCH"), "1") == 0)
		start_other_guests();
	fd = unix_connect(sock, CONNECT_TIMEOUT_MS);
	if (fd < 0)
		die("job %s: cannot reach vmmd on node %s at %s: %s",
		    job_id_str, node ? node : "?", sock, strerror(-fd));
	argv[0] = strdup(argv0);
	if (!argv[0])
		die("job %s: out of memory", job_id_str);
	/* vmmd gone: a write into its pipe fails with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	st.fd = fd;
	st.sfd = sfd;
	st.sock = sock;
	st.argc = argc;
	st.argv = argv;
	send_exec(&st, argc, argv);
	relay(&st);
}
