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

static void send_exec(int fd, int argc, char **argv)
{
	const char *batch = getenv("VMENV_BATCH");
	/* The agent's relay instead of a bulk port (bench/run compares). */
	const char *relay = getenv("VMENV_EXEC_RELAY");
	struct proto_request req = {.op = PROTO_OP_EXEC};
	char cwd[VMENV_MAX_PATH];
	int fds[4] = {0, 1, 2, -1};
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
	req.exec.want_stdin = !is_dev_null(0);
	req.exec.merge_stderr = same_file(1, 2);
	req.exec.script = batch && strcmp(batch, "1") == 0;
	req.exec.relay = relay && strcmp(relay, "1") == 0;
	if (req.exec.script) {
		fds[3] = open(argv[0], O_RDONLY | O_CLOEXEC);
		if (fds[3] < 0)
			die("job %s: cannot read the batch script %s: %s",
			    job_id_str, argv[0], strerror(errno));
		nfds = 4;
	}
	r = proto_send_request(fd, &req, fds, nfds);
	if (r < 0)
		die("job %s: cannot send the command to vmmd: %s", job_id_str,
		    strerror(-r));
	free(req.exec.envp);
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

static void forward_signal(int fd, int sfd)
{
	struct signalfd_siginfo si;
	struct proto_request req = {.op = PROTO_OP_SIGNAL};

	/* sfd is non-blocking: a blocking read after the last pending signal
	 * would stop the relay (and a scancel would wait for KillWait). */
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		req.signo = (int)si.ssi_signo;
		proto_send_request(fd, &req, NULL, 0);
	}
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

static void on_reply(const struct proto_reply *rep)
{
	switch (rep->kind) {
	case PROTO_EV_STARTED:
		return;
	case PROTO_EV_PROGRESS:
		show_progress(&rep->progress);
		return;
	case PROTO_EV_EXIT:
		end_like(rep);
	case PROTO_EV_CHECKPOINTED:
		/* The guest is saved and gone: nothing of ours runs any more,
		 * and the SIGTERM Slurm sends at the requeue must not reach a
		 * restored guest. A task of the restarted job re-attaches. */
		fprintf(stderr, "vmenv: %s\n", rep->error);
		exit(rep->exit_value);
	case PROTO_EV_ERROR:
	case PROTO_REPLY_ERROR:
		die("%s", rep->error);
	case PROTO_REPLY_OK:
		die("job %s: unexpected reply from vmmd", job_id_str);
	}
}

static void __attribute__((noreturn)) relay(int fd, int sfd)
{
	struct proto_rx rx;
	struct proto_reply rep;
	char err[256];

	proto_rx_init(&rx);
	fd_set_nonblock(fd, true);
	for (;;) {
		struct pollfd p[2] = {{fd, POLLIN, 0}, {sfd, POLLIN, 0}};
		int r = poll(p, sfd >= 0 ? 2 : 1, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("job %s: poll: %s", job_id_str, strerror(errno));
		if (sfd >= 0 && (p[1].revents & POLLIN))
			forward_signal(fd, sfd);
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = proto_rx_feed(&rx, fd);
		if (r == 0)
			continue;
		/* vmmd stopped or restarted: it cannot re-attach a step yet
		 * (docs/operations.md), so the step ends here, saying so. */
		if (r < 0)
			die("job %s: lost the connection to vmmd on node %s "
			    "(vmmd stopped or restarted; this step cannot go "
			    "on): %s",
			    job_id_str, node_str, strerror(-r));
		if (proto_reply_decode(rx.buf, rx.got, &rep, err, sizeof(err)) <
		    0)
			die("job %s: bad reply from vmmd: %s", job_id_str, err);
		proto_rx_reset(&rx);
		on_reply(&rep);
		proto_reply_clear(&rep);
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
	if (getenv("VMENV_BATCH") && strcmp(getenv("VMENV_BATCH"), "1") == 0)
		start_other_guests();
	fd = unix_connect(sock, CONNECT_TIMEOUT_MS);
	if (fd < 0)
		die("job %s: cannot reach vmmd on node %s at %s: %s",
		    job_id_str, node ? node : "?", sock, strerror(-fd));
	argv[0] = strdup(argv0);
	if (!argv[0])
		die("job %s: out of memory", job_id_str);
	send_exec(fd, argc, argv);
	relay(fd, sfd);
}
