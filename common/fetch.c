/* SPDX-License-Identifier: MIT */
#include "fetch.h"

#include "cleanup.h"
#include "fetchwire.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* After the body ended, the result and the exit follow at once from an
 * honest helper. */
#define RESULT_WAIT_MS 10000
/* The pipe the body comes through (the default 64 KiB makes the helper
 * wait on root 16 times per MiB). */
#define BODY_PIPE_BYTES (1 << 20)

extern char **environ;

/* What libcurl and OpenSSL read of root's environment; nothing else
 * reaches the helper. */
static const char *const pass_env[] = {
    "http_proxy",    "https_proxy",  "HTTPS_PROXY", "all_proxy",
    "ALL_PROXY",     "no_proxy",     "NO_PROXY",    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
};

/* Everything the child needs, prepared before fork: after it, only
 * async-signal-safe calls (vmmd has threads). */
struct spawn {
	const char *argv[2];
	const char *envp[ARRAY_SIZE(pass_env) + 3];
	int src[4]; /* what becomes fds 0..3 */
	bool drop;
	uid_t uid;
	gid_t gid;
};

struct helper {
	pid_t pid;
	int pidfd;  /* readable once it exited; -1 if there is none */
	int body;   /* read end, non-blocking */
	int result; /* read end, non-blocking */
};

bool fetch_retryable(int r)
{
	switch (r) {
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -EAGAIN:
	case -EIO:
		return true;
	default:
		return false;
	}
}

int fetch_sleep(uint32_t ms, const atomic_int *cancel)
{
	while (ms > 0) {
		uint32_t step = ms < 100 ? ms : 100;

		if (cancel && atomic_load(cancel))
			return -ECANCELED;
		nanosleep(&(struct timespec){step / 1000,
					     (long)(step % 1000) * 1000000L},
			  NULL);
		ms -= step;
	}
	return cancel && atomic_load(cancel) ? -ECANCELED : 0;
}

/* --- starting the helper ----------------------------------------------- */

/* Root downloads as opts->user, never as root; anyone else as itself. */
static int resolve_user(const struct fetch_opts *o, struct spawn *s, char *err,
			size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	s->drop = geteuid() == 0;
	if (!s->drop)
		return 0;
	if (!o->user || !*o->user)
		return err_set(err, errlen, -EPERM,
			       "no fetch_user: downloads never run as root");
	r = getpwnam_r(o->user, &pw, buf, sizeof(buf), &res);
	if (r != 0 || !res)
		return err_set(err, errlen, -EPERM,
			       "fetch_user '%s' does not exist (create it, or "
			       "set fetch_user: docs/images.md)",
			       o->user);
	if (pw.pw_uid == 0 || pw.pw_gid == 0)
		return err_set(err, errlen, -EPERM,
			       "fetch_user '%s' is root: downloads never run "
			       "as root",
			       o->user);
	s->uid = pw.pw_uid;
	s->gid = pw.pw_gid;
	return 0;
}

/* PATH, LC_ALL and the first of each pass_env name that root has. */
static void make_env(struct spawn *s)
{
	size_t n = 0;

	s->envp[n++] = "PATH=/usr/bin:/bin";
	s->envp[n++] = "LC_ALL=C";
	for (size_t i = 0; i < ARRAY_SIZE(pass_env); i++) {
		size_t len = strlen(pass_env[i]);

		for (char **e = environ; e && *e; e++)
			if (strncmp(*e, pass_env[i], len) == 0 &&
			    (*e)[len] == '=') {
				s->envp[n++] = *e;
				break;
			}
	}
	s->envp[n] = NULL;
}

/* In the child: its ids, with raw system calls. After a raw clone,
 * glibc's setresuid would still believe vmmd's other threads are there
 * and try to tell them. */
static bool drop_ids(const struct spawn *s)
{
	return syscall(SYS_setgroups, 0, NULL) == 0 &&
	       syscall(SYS_setresgid, s->gid, s->gid, s->gid) == 0 &&
	       syscall(SYS_setresuid, s->uid, s->uid, s->uid) == 0 &&
	       syscall(SYS_setresuid, 0, 0, 0) != 0;
}

/* In the child, between clone and exec: only async-signal-safe calls
 * (vmmd has threads). The sources go above 3 first, so that no dup2
 * clobbers one still needed. */
static void child(const struct spawn *s) __attribute__((noreturn));
static void child(const struct spawn *s)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;
	int fd[4];

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	for (int i = 0; i < 4; i++)
		if ((fd[i] = fcntl(s->src[i], F_DUPFD_CLOEXEC, 10)) < 0)
			_exit(126);
	for (int i = 0; i < 4; i++)
		if (dup2(fd[i], i) < 0)
			_exit(126);
	close_range(4, ~0u, 0);
	if (s->drop && !drop_ids(s))
		_exit(126);
	/* After the drop: a change of ids clears the parent-death signal. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(126);
	execve(s->argv[0], (char *const *)(uintptr_t)s->argv,
	       (char *const *)(uintptr_t)s->envp);
	_exit(127);
}

static int make_request(const struct fetch_xfer *x, struct fetchwire_request *q)
{
	const struct fetch_opts *o = x->opts;

	*q = (struct fetchwire_request){
	    .magic = FETCHWIRE_REQ_MAGIC,
	    .connect_timeout_s = o->connect_timeout_s,
	    .low_speed_time_s = o->low_speed_time_s,
	    .low_speed_bps = o->low_speed_bps,
	    .max_redirects = o->max_redirects,
	    .offset = x->offset,
	    .max_size = x->max_size,
	};
	if (str_printf(q->url, sizeof(q->url), "%s", x->url) < 0 ||
	    str_printf(q->proxy, sizeof(q->proxy), "%s",
		       o->proxy ? o->proxy : "") < 0)
		return -ENAMETOOLONG;
	return 0;
}

/* The request, whole, in a pipe of its own: fd 0 of the helper. It fits
 * in PIPE_BUF, so the write never waits for a reader. */
static int request_pipe(const struct fetch_xfer *x, int *ret_fd)
{
	struct fetchwire_request q;
	int p[2], r;

	if ((r = make_request(x, &q)) < 0)
		return r;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	r = write(p[1], &q, sizeof(q)) == (ssize_t)sizeof(q) ? 0 : -EIO;
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	*ret_fd = p[0];
	return 0;
}

/* Read ends non-blocking for root; the helper's ends stay blocking. */
static int out_pipe(int *rd, int *wr, int size)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (size)
		fcntl(p[1], F_SETPIPE_SZ, size);
	if (fd_set_nonblock(p[0], true) < 0) {
		close(p[0]);
		close(p[1]);
		return -EIO;
	}
	*rd = p[0];
	*wr = p[1];
	return 0;
}

/* Why the last root helper had no PID namespace of its own (a positive
 * errno), 0 while none was refused, -1 once fetch_pidns_refusal told. */
static atomic_int pidns_refused;

int fetch_pidns_refusal(void)
{
	int e = atomic_load(&pidns_refused);

	while (e > 0 && !atomic_compare_exchange_weak(&pidns_refused, &e, -1))
		;
	return e > 0 ? e : 0;
}

/* clone3 with flags, or clone where clone3 is refused with ENOSYS: what
 * a seccomp filter that cannot read clone3's flags in memory answers
 * (systemd's RestrictNamespaces=, vmmd.service) so that callers fall
 * back to clone, whose flags it can check. The pidfd goes to clone's
 * parent_tid, its third argument except on s390. */
static long clone_pidfd(uint64_t flags, int *pidfd)
{
	struct clone_args a = {.flags = flags | CLONE_PIDFD,
			       .pidfd = (uint64_t)(uintptr_t)pidfd,
			       .exit_signal = SIGCHLD};
	long pid = syscall(SYS_clone3, &a, sizeof(a));

	if (pid < 0 && errno == ENOSYS)
#if defined(__s390__)
		pid = syscall(SYS_clone, NULL, flags | CLONE_PIDFD | SIGCHLD,
			      pidfd, NULL, NULL);
#else
		pid = syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, NULL,
			      pidfd, NULL, NULL);
#endif
	return pid;
}

/* Root's helper is PID 1 of a PID namespace of its own: whatever it
 * starts dies with it (nothing it leaves behind can wait for the next
 * helper and ptrace it before it is made non-dumpable), and it sees no
 * other process to signal. Without the right to make one (a container)
 * or for a caller that is not root: a plain child; for root, the reason
 * is kept for fetch_pidns_refusal. */
static int fork_helper(struct spawn *s, struct helper *h)
{
	long pid = -1;

	if (s->drop) {
		pid = clone_pidfd(CLONE_NEWPID, &h->pidfd);
		if (pid < 0) {
			int e = errno, none = 0;

			atomic_compare_exchange_strong(&pidns_refused, &none,
						       e);
		}
	}
	if (pid < 0)
		pid = clone_pidfd(0, &h->pidfd);
	/* Neither clone3 nor CLONE_PIDFD (a kernel before 5.2). */
	if (pid < 0 && (errno == ENOSYS || errno == EINVAL) &&
	    (pid = fork()) > 0)
		h->pidfd = pidfd_open((pid_t)pid, 0);
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child(s);
	h->pid = (pid_t)pid;
	return 0;
}

static void close_fds(int *fd, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

static void close_helper_fds(struct helper *h)
{
	close_fds(&h->body, 1);
	close_fds(&h->result, 1);
	close_fds(&h->pidfd, 1);
	h->body = h->result = h->pidfd = -1;
}

static int spawn(const struct fetch_xfer *x, struct helper *h, char *err,
		 size_t errlen)
{
	struct spawn s = {.argv = {x->opts->helper, NULL},
			  .src = {-1, -1, -1, -1}};
	int r;

	*h = (struct helper){.pid = -1, .pidfd = -1, .body = -1, .result = -1};
	if (!x->opts->helper || !valid_abs_path(x->opts->helper))
		return err_set(err, errlen, -EINVAL,
			       "no download helper (fetch_helper)");
	if ((r = resolve_user(x->opts, &s, err, errlen)) < 0)
		return r;
	make_env(&s);
	s.src[2] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (s.src[2] < 0 || (r = request_pipe(x, &s.src[0])) < 0 ||
	    (r = out_pipe(&h->body, &s.src[1], BODY_PIPE_BYTES)) < 0 ||
	    (r = out_pipe(&h->result, &s.src[3], 0)) < 0 ||
	    (r = fork_helper(&s, h)) < 0) {
		r = r < 0 ? r : -errno;
		close_fds(s.src, 4);
		close_helper_fds(h);
		return err_set(err, errlen, r, "cannot start %s: %s",
			       x->opts->helper, strerror(-r));
	}
	close_fds(s.src, 4);
	return 0;
}

/* --- ending it ----------------------------------------------------------- */

/* Has it exited? Waits up to ms for it. */
static bool exited(const struct helper *h, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	siginfo_t si;

	if (h->pidfd >= 0)
		return poll(&(struct pollfd){.fd = h->pidfd, .events = POLLIN},
			    1, ms) > 0;
	for (;;) {
		si.si_pid = 0;
		if (waitid(P_PID, (id_t)h->pid, &si,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == h->pid)
			return true;
		if (now_ms() >= end)
			return false;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
}

/* Gives it ms to exit (0: none), then kills it; its wait status. */
static int reap(struct helper *h, int ms)
{
	int status = 0;

	if (ms == 0 || !exited(h, ms))
		kill(h->pid, SIGKILL);
	while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
		;
	h->pid = -1;
	return status;
}

/* Printable ASCII only: the helper's words go into vmmd's log. */
static void clean(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* The result record, once the helper has gone: all of it, nothing more. */
static int read_result(struct helper *h, struct fetchwire_result *res)
{
	char buf[sizeof(*res) + 1];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf) &&
	       ((n = read(h->result, buf + got, sizeof(buf) - got)) > 0 ||
		(n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	if (got != sizeof(*res))
		return -EPROTO;
	memcpy(res, buf, sizeof(*res));
	if (res->magic != FETCHWIRE_RES_MAGIC ||
	    !memchr(res->msg, '\0', sizeof(res->msg)))
		return -EPROTO;
	clean(res->msg);
	return 0;
}

/* --- one transfer ---------------------------------------------------------- */

struct run {
	struct fetch_xfer *x;
	struct helper h;
	uint8_t start[sizeof(uint64_t)]; /* where the bytes start */
	size_t start_got;
	uint64_t active_ms;   /* when the helper last gave something */
	uint64_t progress_ms; /* when progress() was last called */
	char *err;
	size_t errlen;
};

static int start_over(struct fetch_xfer *x)
{
	int r = x->restart(x->sink);

	if (r < 0)
		return r;
	x->offset = 0;
	x->restarted = true;
	return 0;
}

static int broken(struct run *u, const char *why)
{
	return err_set(u->err, u->errlen, -EPROTO,
		       "%s: the download helper broke the protocol (%s)",
		       u->x->url, why);
}

/* The bytes start where we asked, or at 0 (the server ignored the
 * range): anything else is a helper that lies. */
static int begin(struct run *u)
{
	struct fetch_xfer *x = u->x;
	uint64_t start;
	int r;

	memcpy(&start, u->start, sizeof(start));
	if (start == x->offset)
		return 0;
	if (start != 0)
		return broken(u, "the bytes start elsewhere than asked");
	if ((r = start_over(x)) < 0)
		return err_set(u->err, u->errlen, r, "%s: writing: %s", x->url,
			       strerror(-r));
	return 0;
}

static int too_big(struct run *u)
{
	return err_set(u->err, u->errlen, -EFBIG,
		       "%s: larger than the catalog says", u->x->url);
}

/* Each take_*: bytes taken (> 0), 0 at the end of the body, -EAGAIN or
 * -EINTR when there is nothing for now, else -errno with err set. */
static ssize_t take_start(struct run *u)
{
	ssize_t n = read(u->h.body, u->start + u->start_got,
			 sizeof(u->start) - u->start_got);
	int r;

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return err_set(u->err, u->errlen, -errno, "%s: reading: %m",
			       u->x->url);
	if (n < 0)
		return -errno;
	if (n == 0)
		return u->start_got ? broken(u, "a short start") : 0;
	u->start_got += (size_t)n;
	if (u->start_got == sizeof(u->start) && (r = begin(u)) < 0)
		return r;
	return n;
}

static ssize_t take_body(struct run *u)
{
	struct fetch_xfer *x = u->x;
	uint64_t left = x->max_size - x->offset;
	ssize_t n;
	char c;

	/* All the bytes asked for: one more is a lie, or a larger file. */
	if (left == 0) {
		n = read(u->h.body, &c, 1);
		return n > 0 ? too_big(u) : n < 0 ? -errno : 0;
	}
	n = x->fill(x->sink, u->h.body,
		    left < SIZE_MAX ? (size_t)left : SIZE_MAX);
	if (n > 0)
		x->offset += (uint64_t)n;
	else if (n < 0 && n != -EAGAIN && n != -EINTR)
		return err_set(u->err, u->errlen, (int)n, "%s: writing: %s",
			       x->url, strerror((int)-n));
	return n;
}

static void progress(struct run *u, bool force)
{
	struct fetch_xfer *x = u->x;
	uint64_t now = now_ms();

	if (x->progress && (force || now - u->progress_ms >= 100)) {
		u->progress_ms = now;
		x->progress(x->progress_data, x->offset, x->max_size);
	}
}

/* What the body pipe holds now. 1: the body ended, 0: nothing more for
 * now, <0: end the transfer (err says why). */
static int pump(struct run *u)
{
	for (;;) {
		ssize_t n = u->start_got < sizeof(u->start) ? take_start(u)
							    : take_body(u);

		if (n == -EAGAIN || n == -EINTR)
			return 0;
		if (n <= 0)
			return n == 0 ? 1 : (int)n;
		u->active_ms = now_ms();
		progress(u, false);
	}
}

/* An honest helper is never silent longer than curl's own limits allow
 * on each hop (connect, then the low-speed window). */
static uint64_t idle_limit_ms(const struct fetch_opts *o)
{
	return ((uint64_t)o->max_redirects + 1) *
		   ((uint64_t)o->connect_timeout_s + o->low_speed_time_s) *
		   1000u +
	       30000u;
}

/* Waits for more of the body. True once the helper has exited: what it
 * wrote is all in the pipe then, and whatever may still hold the pipe
 * open (a process it left behind) is not waited for. */
static bool wait_body(struct run *u)
{
	struct pollfd p[2] = {{.fd = u->h.body, .events = POLLIN},
			      {.fd = u->h.pidfd, .events = POLLIN}};

	return poll(p, 2, 100) > 0 && (p[1].revents & POLLIN);
}

/* Until the body ends: 1; or -errno with err set (kill the helper). */
static int body(struct run *u)
{
	const struct fetch_xfer *x = u->x;
	uint64_t limit = idle_limit_ms(x->opts);
	bool gone = false;
	int r;

	u->active_ms = now_ms();
	while ((r = pump(u)) == 0 && !gone) {
		if (x->cancel && atomic_load(x->cancel))
			return err_set(u->err, u->errlen, -ECANCELED,
				       "%s: cancelled", x->url);
		if (now_ms() - u->active_ms > limit)
			return err_set(u->err, u->errlen, -ETIMEDOUT,
				       "%s: the download helper was silent "
				       "for %llu s",
				       x->url,
				       (unsigned long long)(limit / 1000));
		gone = wait_body(u);
	}
	progress(u, true);
	return r < 0 ? r : 1;
}

/* A helper that gave no result: how it ended. */
static int no_result(struct run *u, int status)
{
	const char *helper = u->x->opts->helper;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return err_set(u->err, u->errlen, -ENOENT, "cannot run %s",
			       helper);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
		return err_set(u->err, u->errlen, -EPERM,
			       "cannot start %s as fetch_user '%s'", helper,
			       u->x->opts->user ? u->x->opts->user : "");
	if (WIFSIGNALED(status))
		return err_set(u->err, u->errlen, -EIO,
			       "%s: the download helper was killed by signal "
			       "%d",
			       u->x->url, WTERMSIG(status));
	return err_set(u->err, u->errlen, -EPROTO,
		       "%s: the download helper ended without a valid "
		       "result (exit %d)",
		       u->x->url, WEXITSTATUS(status));
}

/* The helper's own errors, as fetch.h lists them; anything else is -EIO. */
static int known_err(int32_t e)
{
	static const int ok[] = {0,	      -ENOENT,	     -EACCES,
				 -EPROTO,     -ETIMEDOUT,    -ECONNREFUSED,
				 -ECONNRESET, -EHOSTUNREACH, -EAGAIN,
				 -EFBIG,      -ENOMEM,	     -EPERM};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (ok[i] == e)
			return e;
	return -EIO;
}

static int result(struct run *u, const struct fetchwire_result *res)
{
	struct fetch_xfer *x = u->x;
	int r = known_err(res->err);

	if (r == 0)
		return 0;
	if ((res->flags & FETCHWIRE_CANNOT_RESUME) && x->offset != 0) {
		if ((r = start_over(x)) < 0)
			return err_set(u->err, u->errlen, r, "%s: writing: %s",
				       x->url, strerror(-r));
		return err_set(u->err, u->errlen, -EAGAIN,
			       "%s: cannot resume, starting over", x->url);
	}
	if (r == -EFBIG)
		return too_big(u);
	if (res->http_code >= 100 && res->http_code <= 999)
		return err_set(u->err, u->errlen, r, "%s: HTTP %d", x->url,
			       (int)res->http_code);
	return err_set(u->err, u->errlen, r, "%s: %s", x->url,
		       res->msg[0] ? res->msg : "failed");
}

int fetch_once(struct fetch_xfer *x, char *err, size_t errlen)
{
	struct run u = {.x = x, .err = err, .errlen = errlen};
	struct fetchwire_result res;
	int r, status;

	x->restarted = false;
	if (errlen)
		err[0] = '\0';
	if ((r = spawn(x, &u.h, err, errlen)) < 0)
		return r;
	r = body(&u);
	/* The result follows the body at once, and then the exit. */
	status = reap(&u.h, r < 0 ? 0 : RESULT_WAIT_MS);
	if (r >= 0)
		r = read_result(&u.h, &res) < 0 ? no_result(&u, status)
						: result(&u, &res);
	close_helper_fds(&u.h);
	return r;
}

/* --- a small document into memory ------------------------------------------ */

struct text {
	char *buf;
	size_t len, cap;
};

static ssize_t text_fill(void *sink, int fd, size_t max)
{
	struct text *t = sink;
	size_t want = max < 65536 ? max : 65536;
	ssize_t n;

	if (t->cap - t->len < want + 1) {
		char *nb = realloc(t->buf, t->len + want + 1);

		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = t->len + want + 1;
	}
	n = read(fd, t->buf + t->len, want);
	if (n < 0)
		return -errno;
	t->len += (size_t)n;
	t->buf[t->len] = '\0';
	return n;
}

static int text_restart(void *sink)
{
	struct text *t = sink;

	t->len = 0;
	return 0;
}

int fetch_text(const char *url, const struct fetch_opts *opts, size_t max,
	       const atomic_int *cancel, char **ret, size_t *ret_len, char *err,
	       size_t errlen)
{
	struct text t = {0};
	uint32_t delay = opts->retry_delay_ms;
	int r;

	for (uint32_t attempt = 0;; attempt++) {
		struct fetch_xfer x = {.url = url,
				       .max_size = max,
				       .fill = text_fill,
				       .restart = text_restart,
				       .sink = &t,
				       .opts = opts,
				       .cancel = cancel};

		t.len = 0;
		r = fetch_once(&x, err, errlen);
		if (r == 0 || !fetch_retryable(r) || attempt >= opts->retries ||
		    fetch_sleep(delay, cancel) < 0)
			break;
		delay = delay > 15000 ? 30000 : delay * 2;
	}
	if (r < 0) {
		free(t.buf);
		return r;
	}
	if (!t.buf && !(t.buf = calloc(1, 1)))
		return -ENOMEM;
	*ret = t.buf;
	if (ret_len)
		*ret_len = t.len;
	return 0;
}
