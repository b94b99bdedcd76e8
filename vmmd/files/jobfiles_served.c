// SPDX-License-Identifier: MIT
#include "jobfiles_served.h"

#include "jobfiles_ops.h"

#include "agentwire.h"
#include "ckpt_store.h"
#include "cleanup.h"
#include "domxml.h"
#include "jobrec.h"
#include "log.h"
#include "safefs.h"
#include "vmmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

_Static_assert(JOBFILES_MAX_MOUNTS == VMSPEC_MAX_MOUNTS,
	       "a server for every mount a spec may have");
_Static_assert(JOBFILES_MAX_MOUNTS <= CKPT_MAX_MOUNT_FILES,
	       "the checkpoint names every mount's state");
_Static_assert(JOBFILES_MAX_MOUNTS <= DOM_MAX_FILES_MOUNTS,
	       "the domain has a port for every mount");
_Static_assert(AW_MAX_MOUNTS >= JOBFILES_MAX_SERVERS,
	       "SETUP carries the working directory and every mount");

const char *jobfiles_server_path = JOBFILES_SERVER;

static void server_forget(struct jobfiles_server *f);

static void served_free(struct jobfiles_served *f)
{
	if (!f)
		return;
	for (uint32_t i = 0; i < f->n; i++)
		server_forget(&f->srv[i]);
	free(f->srv);
	free(f);
}

/* Server i's names and paths: 0 the working directory, 1 + m mount m. */
static int server_init(const struct job *j, uint32_t i,
		       struct jobfiles_server *s)
{
	const struct vmspec_mount *m = i ? &j->spec.v.mounts.m[i - 1] : NULL;

	*s = (struct jobfiles_server){.pidfd = -1, .ctl = -1};
	if (!m) {
		snprintf(s->name, sizeof(s->name), "%s", CKPT_FILES);
		snprintf(s->port, sizeof(s->port), "%s", JOBFILES_PORT_NAME);
	} else if (ckpt_file_mount_name(i - 1, false, s->name,
					sizeof(s->name)) < 0 ||
		   str_printf(s->port, sizeof(s->port), JOBFILES_MOUNT_PORT_FMT,
			      i - 1) < 0) {
		return -E2BIG;
	}
	s->ro = m && m->ro;
	if (str_printf(s->root, sizeof(s->root), "%s",
		       m ? m->src : j->work_dir) < 0 ||
	    str_printf(s->sock, sizeof(s->sock), "%s/q/%s.sock", j->dir,
		       s->name) < 0 ||
	    str_printf(s->state, sizeof(s->state), "%s/q/%s.state", j->dir,
		       s->name) < 0 ||
	    str_printf(s->ctl_path, sizeof(s->ctl_path), "%s/%s.ctl", j->dir,
		       s->name) < 0 ||
	    str_printf(s->pid_path, sizeof(s->pid_path), "%s/%s.pid", j->dir,
		       s->name) < 0)
		return -ENAMETOOLONG;
	return 0;
}

int jobfiles_served_prepare(struct job *j, char *err, size_t errlen)
{
	uint32_t nmounts = j->spec.v.mounts.n;
	struct jobfiles_served *f;
	int r;

	if (nmounts > JOBFILES_MAX_MOUNTS)
		return err_set(err, errlen, -E2BIG,
			       "job %u: %u mounts; served files take at most "
			       "%u",
			       j->id, nmounts, JOBFILES_MAX_MOUNTS);
	if (!(f = calloc(1, sizeof(*f))) ||
	    !(f->srv = calloc(1 + nmounts, sizeof(*f->srv)))) {
		free(f);
		return err_set(err, errlen, -ENOMEM, "job %u: out of memory",
			       j->id);
	}
	for (uint32_t i = 0; i <= nmounts; i++) {
		if ((r = server_init(j, i, &f->srv[i])) < 0) {
			served_free(f);
			return err_set(err, errlen, r,
				       "job %u: job directory path too long",
				       j->id);
		}
		f->n = i + 1;
		if (i)
			f->ports[i - 1] = (struct dom_port){
			    .sock = f->srv[i].sock, .name = f->srv[i].port};
	}
	served_free(j->served);
	j->served = f;
	return 0;
}

int jobfiles_served_domspec(const struct job *j, struct dom_spec *s)
{
	const struct jobfiles_served *f = j->served;

	if (!f || !f->n)
		return -EINVAL;
	s->share_dir = NULL;
	s->share_tag = NULL;
	s->files_sock = f->srv[0].sock;
	s->files_port = f->srv[0].port;
	s->nfiles_mounts = f->n - 1;
	s->files_mounts = f->n > 1 ? f->ports : NULL;
	return 0;
}

int jobfiles_served_argv(struct job *j, uint32_t i, const char *state_in,
			 const char **argv)
{
	struct jobfiles_served *f = j->served;
	const struct jobfiles_server *s = &f->srv[i];
	size_t n = 0, len = 0;

	snprintf(f->ids[0], sizeof(f->ids[0]), "%u", (unsigned)j->uid);
	snprintf(f->ids[1], sizeof(f->ids[1]), "%u", (unsigned)j->gid);
	f->groups[0] = '\0';
	for (uint32_t g = 0; g < j->ngroups && g < 64; g++)
		len += (size_t)snprintf(f->groups + len,
					sizeof(f->groups) - len, "%s%u",
					g ? "," : "", (unsigned)j->groups[g]);
	argv[n++] = jobfiles_server_path;
	argv[n++] = "--root", argv[n++] = s->root;
	argv[n++] = "--connect", argv[n++] = s->sock;
	argv[n++] = "--uid", argv[n++] = f->ids[0];
	argv[n++] = "--gid", argv[n++] = f->ids[1];
	if (f->groups[0])
		argv[n++] = "--groups", argv[n++] = f->groups;
	argv[n++] = "--state-out", argv[n++] = s->state;
	argv[n++] = "--ctl-fd", argv[n++] = "3";
	if (s->ro)
		argv[n++] = "--read-only";
	if (state_in)
		argv[n++] = "--state-in", argv[n++] = state_in;
	argv[n] = NULL;
	return 0;
}

/* Clean environment, fds 0-2 on /dev/null but stderr (vmmd's, for the
 * journal), the control pipe as fd 3, nothing else. */
static void child(const char **argv, int ctl_w)
{
	static const char *const envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C",
					   NULL};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	int devnull = open("/dev/null", O_RDWR);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
	    dup2(devnull, STDOUT_FILENO) < 0 || dup2(ctl_w, 3) < 0 ||
	    fcntl(3, F_SETFD, 0) < 0) /* dup2(3, 3) keeps O_CLOEXEC */
		_exit(126);
	close_range(4, ~0u, 0);
	execve(argv[0], (char *const *)(uintptr_t)argv,
	       (char *const *)(uintptr_t)envp);
	_exit(127);
}

/* The control FIFO: fresh, the server's end (read-write: its answers
 * never meet a closed pipe, whoever reads) in *wfd, vmmd's in f->ctl. */
static int ctl_open(struct jobfiles_server *f, int *wfd)
{
	unlink(f->ctl_path);
	if (mkfifo(f->ctl_path, 0600) < 0)
		return -errno;
	/* Non-blocking: answers nobody reads fill the FIFO and then fail,
	 * they never hang the server. */
	*wfd = open(f->ctl_path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (*wfd < 0)
		return -errno;
	f->ctl =
	    open(f->ctl_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (f->ctl < 0) {
		int r = -errno;
		close(*wfd);
		return r;
	}
	return 0;
}

static int write_pid(const struct jobfiles_server *f)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)f->pid);

	return write_file_atomic(f->pid_path, buf, (size_t)n, 0600);
}

static int signal_server(const struct jobfiles_server *f, int sig)
{
	if (f->pidfd >= 0)
		return pidfd_send_signal(f->pidfd, sig, NULL, 0);
	return kill(f->pid, sig);
}

static int spawn(struct job *j, uint32_t i, const char *state_in, char *err,
		 size_t errlen)
{
	struct jobfiles_server *f = &j->served->srv[i];
	const char *argv[JOBFILES_SERVED_ARGV];
	int wfd = -1, r;
	pid_t pid;

	jobfiles_served_argv(j, i, state_in, argv);
	if ((r = ctl_open(f, &wfd)) < 0)
		return err_set(err, errlen, r, "job %u: %s: %s", j->id,
			       f->ctl_path, strerror(-r));
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(wfd);
		close(f->ctl);
		f->ctl = -1;
		return err_set(err, errlen, r, "job %u: fork: %s", j->id,
			       strerror(-r));
	}
	if (pid == 0)
		child(argv, wfd);
	close(wfd);
	f->pid = pid;
	f->child = true;
	f->pidfd = pidfd_open(pid, 0);
	/* Without the file a restarted vmmd cannot adopt the server: that
	 * job's checkpoints are then refused, it is served all the same. */
	if ((r = write_pid(f)) < 0)
		log_warn("job %u: cannot write %s: %s", j->id, f->pid_path,
			 strerror(-r));
	log_info("job %u: vmenv-9p %d serves %s%s%s", j->id, (int)pid, f->root,
		 f->ro ? " read-only" : "",
		 state_in ? " (restored state)" : "");
	return 0;
}

int jobfiles_served_attach(struct job *j, char *err, size_t errlen)
{
	int r;

	if (!j->served)
		return err_set(err, errlen, -EINVAL,
			       "job %u: files not prepared", j->id);
	/* One that fails leaves those started before it to _stop. */
	for (uint32_t i = 0; i < j->served->n; i++)
		if ((r = spawn(j, i, NULL, err, errlen)) < 0)
			return r;
	return 0;
}

/* Drops what is in the FIFO: an answer that came after its exchange gave
 * up, or one to a signal the job's user sent their own server. Bounded:
 * the server writes a few bytes per signal. */
static void ctl_drain(struct jobfiles_server *f)
{
	char junk[256];

	for (int i = 0; i < 64 && read(f->ctl, junk, sizeof(junk)) > 0; i++)
		;
}

/* One line from the control FIFO by deadline (now_ms() clock). */
static int ctl_line(struct jobfiles_server *f, char *line, size_t len,
		    uint64_t deadline)
{
	struct pollfd p = {.fd = f->ctl, .events = POLLIN};
	size_t got = 0;

	while (got + 1 < len) {
		int64_t left = (int64_t)(deadline - now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		n = read(f->ctl, line + got, 1);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		if (line[got] == '\n')
			break;
		got++;
	}
	line[got] = '\0';
	return 0;
}

/* Signals the server (its FIFO drained first). */
static int ctl_send(struct jobfiles_server *f, int sig)
{
	if (f->pid <= 0)
		return -ESRCH;
	ctl_drain(f);
	return signal_server(f, sig) < 0 ? -errno : 0;
}

/* Waits by deadline for want, or for "error ..." (then in line): lines
 * before either are late answers to an earlier exchange, skipped. */
static int ctl_wait(struct jobfiles_server *f, const char *want, char *line,
		    size_t len, uint64_t deadline)
{
	int r;

	while ((r = ctl_line(f, line, len, deadline)) == 0) {
		if (strcmp(line, want) == 0)
			return 0;
		if (strncmp(line, "error", 5) == 0)
			return -EIO;
	}
	snprintf(line, len, "%s", strerror(-r));
	return r;
}

int jobfiles_server_exchange(struct jobfiles_server *f, int sig,
			     const char *want, char *line, size_t len,
			     int timeout_ms)
{
	int r = ctl_send(f, sig);

	if (r < 0) {
		snprintf(line, len, "%s", strerror(-r));
		return r;
	}
	return ctl_wait(f, want, line, len, now_ms() + (uint64_t)timeout_ms);
}

/* sig to every server, then their answers, all within timeout_ms. The
 * first that fails is *bad (its answer or the reason in line). */
static int ctl_exchange_all(struct jobfiles_served *f, int sig,
			    const char *want, char *line, size_t len,
			    int timeout_ms, uint32_t *bad)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int r, first = 0;
	bool sent[JOBFILES_MAX_SERVERS] = {false};

	for (uint32_t i = 0; i < f->n; i++) {
		r = ctl_send(&f->srv[i], sig);
		sent[i] = r == 0;
		if (r < 0 && !first) {
			first = r;
			*bad = i;
			snprintf(line, len, "%s",
				 r == -ESRCH ? "no server" : strerror(-r));
		}
	}
	for (uint32_t i = 0; i < f->n; i++) {
		char l[600];

		if (!sent[i])
			continue;
		r = ctl_wait(&f->srv[i], want, l, sizeof(l), deadline);
		if (r < 0 && !first) {
			first = r;
			*bad = i;
			snprintf(line, len, "%s", l);
		}
	}
	return first;
}

/* "the working directory /w" or "mount /srv/x": which server, for
 * messages. */
static const char *server_what(const struct jobfiles_server *s, uint32_t i,
			       char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", i ? "mount" : "the working directory",
		 s->root);
	return buf;
}

int jobfiles_served_resume(struct job *j, int timeout_ms, char *err,
			   size_t errlen)
{
	struct jobfiles_served *f = j->served;
	char line[600], what[VMENV_MAX_PATH + 32];
	uint32_t bad = 0;

	if (!f || !f->n || f->srv[0].pid <= 0)
		return err_set(err, errlen, -ESRCH,
			       "job %u: no file server to resume", j->id);
	if (ctl_exchange_all(f, SIGUSR2, "thawed", line, sizeof(line),
			     timeout_ms, &bad) < 0)
		return err_set(
		    err, errlen, -EIO,
		    "job %u: vmenv-9p of %s did not resume: %s", j->id,
		    server_what(&f->srv[bad], bad, what, sizeof(what)), line);
	return 0;
}

static void resume_quietly(struct job *j)
{
	char ignored[64];

	(void)jobfiles_served_resume(j, JOBFILES_FREEZE_MS, ignored,
				     sizeof(ignored));
}

int jobfiles_served_freeze(struct job *j, const char *ckpt_dir, char *err,
			   size_t errlen)
{
	struct jobfiles_served *f = j->served;
	char line[600], dst[VMENV_MAX_PATH + 32], what[VMENV_MAX_PATH + 32];
	uint32_t bad = 0;
	int r;

	if (!f || !f->n || f->srv[0].pid <= 0)
		return err_set(err, errlen, -ESRCH,
			       "job %u: no file server to freeze", j->id);
	/* One a restarted vmmd could not adopt: none is frozen. */
	for (uint32_t i = 1; i < f->n; i++)
		if (f->srv[i].pid <= 0)
			return err_set(
			    err, errlen, -ESRCH,
			    "job %u: vmenv-9p of %s did not freeze: no server",
			    j->id,
			    server_what(&f->srv[i], i, what, sizeof(what)));
	r = ctl_exchange_all(f, SIGUSR1, "frozen", line, sizeof(line),
			     JOBFILES_FREEZE_MS, &bad);
	if (r < 0) {
		/* One may freeze late, after we gave up: a checkpoint
		 * refused must leave the files served. */
		resume_quietly(j);
		return err_set(
		    err, errlen, r, "job %u: vmenv-9p of %s did not freeze: %s",
		    j->id, server_what(&f->srv[bad], bad, what, sizeof(what)),
		    line);
	}
	for (uint32_t i = 0; i < f->n; i++) {
		struct jobfiles_server *s = &f->srv[i];

		if (str_printf(dst, sizeof(dst), "%s/%s", ckpt_dir, s->name) <
		    0)
			r = -ENAMETOOLONG;
		else
			/* vmenv-9p made the state file as root before it
			 * dropped, in root's q/, and wrote it as the user
			 * through that fd: still a plain file of root's,
			 * its content untrusted (parsed by the next
			 * vmenv-9p, after its own drop). */
			r = copy_user_file(s->state, dst, 0600, 0);
		if (r < 0) {
			/* No checkpoint without the state: the servers
			 * serve again (the guest's processes are thawed by
			 * the failed save). */
			resume_quietly(j);
			return err_set(err, errlen, r,
				       "job %u: copying %s to %s: %s", j->id,
				       s->state, dst, strerror(-r));
		}
	}
	return 0;
}

/* Whether the server ended within ms: its pidfd becomes readable then
 * (a child of this vmmd is reaped too; another's is its parent's).
 * Looked at once at least, however short ms. */
static bool ended_within(pid_t pid, int pidfd, bool child, int ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int status;

	for (int waited = 0;; waited += 20) {
		if (child && waitpid(pid, &status, WNOHANG) != 0)
			return true;
		if (!child && (pidfd < 0 || poll(&p, 1, 0) > 0))
			return true;
		if (waited >= ms)
			return false;
		nanosleep(&(struct timespec){0, 20000000}, NULL);
	}
}

/* Waits up to ms for the server; then kills it. */
static void reap(pid_t pid, int pidfd, bool child, int ms)
{
	int status;

	if (ended_within(pid, pidfd, child, ms))
		return;
	if (pidfd >= 0)
		pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	else if (child)
		kill(pid, SIGKILL);
	if (child)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	else
		(void)ended_within(pid, pidfd, false, JOBFILES_STOP_MS);
}

/* What is left of ms from start (the servers share one grace period). */
static int left_ms(uint64_t start, int ms)
{
	uint64_t spent = now_ms() - start;

	return spent >= (uint64_t)ms ? 0 : ms - (int)spent;
}

static void server_forget(struct jobfiles_server *f)
{
	if (f->ctl >= 0)
		close(f->ctl);
	if (f->pidfd >= 0)
		close(f->pidfd);
	f->pid = 0;
	f->pidfd = -1;
	f->ctl = -1;
	f->child = false;
}

void jobfiles_served_plan(const struct job *j, struct jobfiles_after_save *p)
{
	const struct jobfiles_served *f = j->served;

	memset(p, 0, sizeof(*p));
	if (!f)
		return;
	/* vmenv-9p creates its state files as root before it drops (in
	 * root's q/) and then writes them as the user through those fds. */
	p->uid = 0;
	if (str_printf(p->qdir, sizeof(p->qdir), "%s/q", j->dir) < 0)
		return; /* no server's pending requests kept: none waited for */
	for (uint32_t i = 0; i < f->n && i < JOBFILES_MAX_SERVERS; i++) {
		/* The pidfds stay the job's: jobfiles_saved closes them once
		 * the worker is done. */
		p->srv[i].pid = f->srv[i].pid;
		p->srv[i].pidfd = f->srv[i].pidfd;
		p->srv[i].child = f->srv[i].child;
		snprintf(p->srv[i].name, sizeof(p->srv[i].name), "%s",
			 f->srv[i].name);
		p->n = i + 1;
	}
}

/* One server's pending requests into the checkpoint (nothing pending is
 * the usual case: the file is there, empty). */
static int keep_pending(const struct jobfiles_after_save *p, uint32_t i,
			const char *ckpt_dir, char *err, size_t errlen)
{
	char src[VMENV_MAX_PATH + 48], dst[VMENV_MAX_PATH + 48];
	struct stat st;
	int r;

	if (str_printf(src, sizeof(src), "%s/%s.state.pending", p->qdir,
		       p->srv[i].name) < 0 ||
	    str_printf(dst, sizeof(dst), "%s/%s.pending", ckpt_dir,
		       p->srv[i].name) < 0)
		return err_set(err, errlen, -ENAMETOOLONG, "%s: too long",
			       ckpt_dir);
	if (lstat(src, &st) == 0 && S_ISREG(st.st_mode) && !st.st_size)
		return 0;
	r = copy_user_file(src, dst, 0600, p->uid);
	if (r < 0 && r != -ENOENT)
		return err_set(err, errlen, r, "copying %s: %s", src,
			       strerror(-r));
	return 0;
}

int jobfiles_served_after_save(const struct jobfiles_after_save *p,
			       const char *ckpt_dir, char *err, size_t errlen)
{
	uint64_t start = now_ms();
	int r;

	/* QEMU is gone: each server reads to the end, keeps what it got and
	 * exits; one grace period for all of them. */
	for (uint32_t i = 0; i < p->n; i++)
		if (p->srv[i].pid > 0)
			reap(p->srv[i].pid, p->srv[i].pidfd, p->srv[i].child,
			     left_ms(start, JOBFILES_STOP_MS));
	for (uint32_t i = 0; i < p->n; i++)
		if (p->srv[i].pid > 0 &&
		    (r = keep_pending(p, i, ckpt_dir, err, errlen)) < 0)
			return r;
	return 0;
}

void jobfiles_served_forget(struct job *j)
{
	struct jobfiles_served *f = j->served;

	if (!f)
		return;
	for (uint32_t i = 0; i < f->n; i++)
		server_forget(&f->srv[i]);
}

/* The servers are gone (or killed after one grace period) and forgotten. */
static void servers_gone(struct jobfiles_served *f)
{
	uint64_t start = now_ms();

	for (uint32_t i = 0; i < f->n; i++) {
		struct jobfiles_server *s = &f->srv[i];

		if (s->pid > 0)
			reap(s->pid, s->pidfd, s->child,
			     left_ms(start, JOBFILES_STOP_MS));
		server_forget(s);
	}
}

/* A server's state in the checkpoint (and its .pending when the manifest
 * lists it) into q/<name>.in: the state a restored server starts from.
 * Read from the fds the restore opened and verified (restored()), never
 * by a name in the store: only what the manifest lists, as it was
 * hashed. Written as new files (O_EXCL|O_NOFOLLOW) into q/, which is
 * opened without following a link. */
static int take_state(struct job *j, const struct jobfiles_server *s,
		      const char *ckpt_dir, jobfiles_restored_f restored,
		      char *state, size_t len, char *err, size_t errlen)
{
	char names[2][32], dst[2][40], qdir[VMENV_MAX_PATH + 8];
	uint64_t size = 0;
	int r;

	snprintf(names[0], sizeof(names[0]), "%s", s->name);
	snprintf(names[1], sizeof(names[1]), "%s.pending", s->name);
	snprintf(dst[0], sizeof(dst[0]), "%s.in", s->name);
	snprintf(dst[1], sizeof(dst[1]), "%s.in.pending", s->name);
	if (str_printf(state, len, "%s/q/%s", j->dir, dst[0]) < 0 ||
	    str_printf(qdir, sizeof(qdir), "%s/q", j->dir) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: job directory path too long", j->id);
	_cleanup_close_ int qfd = sfs_open_dir_path(qdir, 0, NULL);
	if (qfd < 0)
		return err_set(err, errlen, qfd, "job %u: %s: %s", j->id, qdir,
			       strerror(-qfd));
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int fd = restored ? restored(j, names[i], &size) : -ENOENT;

		/* No pending requests is the usual case. */
		if (fd == -ENOENT && i > 0) {
			/* Nor any left from an earlier restore. */
			if (unlinkat(qfd, dst[i], 0) < 0 && errno != ENOENT)
				return err_set(err, errlen, -errno,
					       "job %u: %s/%s: %m", j->id, qdir,
					       dst[i]);
			continue;
		}
		if (fd < 0)
			return err_set(err, errlen, fd,
				       "job %u: checkpoint %s holds no file "
				       "server state '%s'",
				       j->id, ckpt_dir, names[i]);
		if (unlinkat(qfd, dst[i], 0) < 0 && errno != ENOENT)
			r = -errno;
		else
			r = sfs_copy_fd(fd, size, qfd, dst[i], 0600);
		if (r < 0)
			return err_set(err, errlen, r,
				       "job %u: the file server's state %s/%s: "
				       "%s",
				       j->id, qdir, dst[i], strerror(-r));
	}
	return 0;
}

int jobfiles_served_thaw(struct job *j, const char *ckpt_dir,
			 jobfiles_restored_f restored, char *err, size_t errlen)
{
	struct jobfiles_served *f = j->served;
	char state[VMENV_MAX_PATH + 48];
	int r;

	/* A job restored instead of booted was never prepared here. */
	if (!f && ckpt_dir && jobfiles_served_prepare(j, err, errlen) == 0)
		f = j->served;
	if (!f)
		return err_set(err, errlen, -EINVAL,
			       "job %u: files not prepared", j->id);
	if (!ckpt_dir)
		return jobfiles_served_resume(j, JOBFILES_FREEZE_MS, err,
					      errlen);
	/* The guest's relays wait while no server is there: the new ones
	 * can start after the restore. Each reads its state from the job's
	 * own directory: the checkpoint may be consumed (removed) while it
	 * starts. Every state is taken before any server starts: a
	 * checkpoint without one of them starts none. */
	servers_gone(f);
	for (uint32_t i = 0; i < f->n; i++)
		if ((r = take_state(j, &f->srv[i], ckpt_dir, restored, state,
				    sizeof(state), err, errlen)) < 0)
			return r;
	for (uint32_t i = 0; i < f->n; i++) {
		str_printf(state, sizeof(state), "%s/q/%s.in", j->dir,
			   f->srv[i].name);
		if ((r = spawn(j, i, state, err, errlen)) < 0)
			return r;
	}
	return 0;
}

void jobfiles_served_stop(struct job *j)
{
	struct jobfiles_served *f = j->served;

	if (!f)
		return;
	/* All of them told first: one grace period for all. */
	for (uint32_t i = 0; i < f->n; i++)
		if (f->srv[i].pid > 0)
			signal_server(&f->srv[i], SIGTERM);
	servers_gone(f);
	for (uint32_t i = 0; i < f->n; i++) {
		unlink(f->srv[i].ctl_path);
		unlink(f->srv[i].pid_path);
	}
	served_free(f);
	j->served = NULL;
}

const struct jobfiles_ops jobfiles_served_ops = {
    .prepare = jobfiles_served_prepare,
    .domspec = jobfiles_served_domspec,
    .attach = jobfiles_served_attach,
    .freeze = jobfiles_served_freeze,
    .thaw = jobfiles_served_thaw,
    .stop = jobfiles_served_stop,
};
