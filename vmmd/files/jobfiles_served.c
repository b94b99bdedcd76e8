// SPDX-License-Identifier: MIT
#include "jobfiles_served.h"

#include "jobfiles_ops.h"

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

const char *jobfiles_server_path = JOBFILES_SERVER;

static void server_forget(struct jobfiles_served *f);

int jobfiles_served_prepare(struct job *j, char *err, size_t errlen)
{
	struct jobfiles_served *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->ctl = -1;
	f->pidfd = -1;
	if (str_printf(f->sock, sizeof(f->sock), "%s/q/files.sock", j->dir) <
		0 ||
	    str_printf(f->state, sizeof(f->state), "%s/q/files.state", j->dir) <
		0 ||
	    str_printf(f->ctl_path, sizeof(f->ctl_path), "%s/files.ctl",
		       j->dir) < 0 ||
	    str_printf(f->pid_path, sizeof(f->pid_path), "%s/files.pid",
		       j->dir) < 0) {
		free(f);
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: job directory path too long", j->id);
	}
	if (j->served)
		server_forget(j->served);
	free(j->served);
	j->served = f;
	return 0;
}

int jobfiles_served_domspec(const struct job *j, struct dom_spec *s)
{
	if (!j->served)
		return -EINVAL;
	s->share_dir = NULL;
	s->share_tag = NULL;
	s->files_sock = j->served->sock;
	s->files_port = JOBFILES_PORT_NAME;
	return 0;
}

int jobfiles_served_argv(struct job *j, const char *state_in, const char **argv)
{
	struct jobfiles_served *f = j->served;
	size_t n = 0, len = 0;

	snprintf(f->ids[0], sizeof(f->ids[0]), "%u", (unsigned)j->uid);
	snprintf(f->ids[1], sizeof(f->ids[1]), "%u", (unsigned)j->gid);
	f->groups[0] = '\0';
	for (uint32_t i = 0; i < j->ngroups && i < 64; i++)
		len += (size_t)snprintf(f->groups + len,
					sizeof(f->groups) - len, "%s%u",
					i ? "," : "", (unsigned)j->groups[i]);
	argv[n++] = jobfiles_server_path;
	argv[n++] = "--root", argv[n++] = j->work_dir;
	argv[n++] = "--connect", argv[n++] = f->sock;
	argv[n++] = "--uid", argv[n++] = f->ids[0];
	argv[n++] = "--gid", argv[n++] = f->ids[1];
	if (f->groups[0])
		argv[n++] = "--groups", argv[n++] = f->groups;
	argv[n++] = "--state-out", argv[n++] = f->state;
	argv[n++] = "--ctl-fd", argv[n++] = "3";
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
static int ctl_open(struct jobfiles_served *f, int *wfd)
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

static int write_pid(const struct jobfiles_served *f)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)f->pid);

	return write_file_atomic(f->pid_path, buf, (size_t)n, 0600);
}

static int signal_server(const struct jobfiles_served *f, int sig)
{
	if (f->pidfd >= 0)
		return pidfd_send_signal(f->pidfd, sig, NULL, 0);
	return kill(f->pid, sig);
}

static int spawn(struct job *j, const char *state_in, char *err, size_t errlen)
{
	struct jobfiles_served *f = j->served;
	const char *argv[JOBFILES_SERVED_ARGV];
	int wfd = -1, r;
	pid_t pid;

	jobfiles_served_argv(j, state_in, argv);
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
	log_info("job %u: vmenv-9p %d serves %s%s", j->id, (int)pid,
		 j->work_dir, state_in ? " (restored state)" : "");
	return 0;
}

int jobfiles_served_attach(struct job *j, char *err, size_t errlen)
{
	if (!j->served)
		return err_set(err, errlen, -EINVAL,
			       "job %u: files not prepared", j->id);
	return spawn(j, NULL, err, errlen);
}

/* Drops what is in the FIFO: an answer that came after its exchange gave
 * up, or one to a signal the job's user sent their own server. Bounded:
 * the server writes a few bytes per signal. */
static void ctl_drain(struct jobfiles_served *f)
{
	char junk[256];

	for (int i = 0; i < 64 && read(f->ctl, junk, sizeof(junk)) > 0; i++)
		;
}

/* One line from the control FIFO by deadline (now_ms() clock). */
static int ctl_line(struct jobfiles_served *f, char *line, size_t len,
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

/* Signals the server and waits within timeout_ms for want, or for
 * "error ..." (then in line): lines before either are late answers to an
 * earlier exchange, skipped. */
static int ctl_exchange(struct jobfiles_served *f, int sig, const char *want,
			char *line, size_t len, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int r;

	ctl_drain(f);
	if (signal_server(f, sig) < 0)
		return -errno;
	while ((r = ctl_line(f, line, len, deadline)) == 0) {
		if (strcmp(line, want) == 0)
			return 0;
		if (strncmp(line, "error", 5) == 0)
			return -EIO;
	}
	snprintf(line, len, "%s", strerror(-r));
	return r;
}

int jobfiles_served_resume(struct job *j, int timeout_ms, char *err,
			   size_t errlen)
{
	struct jobfiles_served *f = j->served;
	char line[600];

	if (!f || f->pid <= 0)
		return err_set(err, errlen, -ESRCH,
			       "job %u: no file server to resume", j->id);
	if (ctl_exchange(f, SIGUSR2, "thawed", line, sizeof(line), timeout_ms) <
	    0)
		return err_set(err, errlen, -EIO,
			       "job %u: vmenv-9p did not resume: %s", j->id,
			       line);
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
	char line[600], dst[VMENV_MAX_PATH + 16];
	int r;

	if (!f || f->pid <= 0)
		return err_set(err, errlen, -ESRCH,
			       "job %u: no file server to freeze", j->id);
	r = ctl_exchange(f, SIGUSR1, "frozen", line, sizeof(line),
			 JOBFILES_FREEZE_MS);
	if (r < 0) {
		/* It may freeze late, after we gave up: a checkpoint refused
		 * must leave the files served. */
		resume_quietly(j);
		return err_set(err, errlen, r,
			       "job %u: vmenv-9p did not freeze: %s", j->id,
			       line);
	}
	snprintf(dst, sizeof(dst), "%s/files", ckpt_dir);
	/* vmenv-9p made the state file as root before it dropped, in root's
	 * q/, and wrote it as the user through that fd: still a plain file
	 * of root's, its content untrusted (parsed by the next vmenv-9p,
	 * after its own drop). */
	r = copy_user_file(f->state, dst, 0600, 0);
	if (r < 0) {
		/* No checkpoint without the state: the server serves again
		 * (the guest's processes are thawed by the failed save). */
		resume_quietly(j);
		return err_set(err, errlen, r, "job %u: copying %s to %s: %s",
			       j->id, f->state, dst, strerror(-r));
	}
	return 0;
}

/* Whether the server ended within ms: its pidfd becomes readable then
 * (a child of this vmmd is reaped too; another's is its parent's). */
static bool ended_within(pid_t pid, int pidfd, bool child, int ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int status;

	for (int waited = 0; waited < ms; waited += 20) {
		if (child && waitpid(pid, &status, WNOHANG) != 0)
			return true;
		if (!child && (pidfd < 0 || poll(&p, 1, 0) > 0))
			return true;
		nanosleep(&(struct timespec){0, 20000000}, NULL);
	}
	return false;
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

static void server_forget(struct jobfiles_served *f)
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

static void server_gone(struct jobfiles_served *f)
{
	if (f->pid > 0)
		reap(f->pid, f->pidfd, f->child, JOBFILES_STOP_MS);
	server_forget(f);
}

void jobfiles_served_plan(const struct job *j, struct jobfiles_after_save *p)
{
	const struct jobfiles_served *f = j->served;

	memset(p, 0, sizeof(*p));
	p->pidfd = -1;
	if (!f)
		return;
	/* The pidfd stays the job's: jobfiles_saved closes it once the
	 * worker is done. */
	p->pid = f->pid;
	p->pidfd = f->pidfd;
	p->child = f->child;
	/* vmenv-9p creates its state files as root before it drops (in
	 * root's q/) and then writes them as the user through those fds. */
	p->uid = 0;
	snprintf(p->pending, sizeof(p->pending), "%s.pending", f->state);
}

int jobfiles_served_after_save(const struct jobfiles_after_save *p,
			       const char *ckpt_dir, char *err, size_t errlen)
{
	char dst[VMENV_MAX_PATH + 32];
	struct stat st;
	int r;

	if (p->pid <= 0)
		return 0;
	/* QEMU is gone: the server reads to the end, keeps what it got and
	 * exits. */
	reap(p->pid, p->pidfd, p->child, JOBFILES_STOP_MS);
	if (str_printf(dst, sizeof(dst), "%s/" CKPT_FILES_PENDING, ckpt_dir) <
	    0)
		return err_set(err, errlen, -ENAMETOOLONG, "%s: too long",
			       ckpt_dir);
	/* Nothing pending is the usual case (the file is there, empty). */
	if (lstat(p->pending, &st) == 0 && S_ISREG(st.st_mode) && !st.st_size)
		return 0;
	r = copy_user_file(p->pending, dst, 0600, p->uid);
	if (r < 0 && r != -ENOENT)
		return err_set(err, errlen, r, "copying %s: %s", p->pending,
			       strerror(-r));
	return 0;
}

void jobfiles_served_forget(struct job *j)
{
	struct jobfiles_served *f = j->served;

	if (!f)
		return;
	server_forget(f);
}

/* The checkpoint's files (and files.pending when its manifest lists
 * them) into q/files.in: the state a restored server starts from. Read
 * from the fds the restore opened and verified (restored()),
 * never by a name in the store: only what the manifest lists, as it was
 * hashed. Written as new files (O_EXCL|O_NOFOLLOW) into q/, which is
 * opened without following a link. */
static int take_state(struct job *j, const char *ckpt_dir,
		      jobfiles_restored_f restored, char *state, size_t len,
		      char *err, size_t errlen)
{
	const char *const names[] = {CKPT_FILES, CKPT_FILES_PENDING};
	const char *const dst[] = {"files.in", "files.in.pending"};
	char qdir[VMENV_MAX_PATH + 8];
	uint64_t size = 0;
	int r;

	if (str_printf(state, len, "%s/q/files.in", j->dir) < 0 ||
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
		if (fd == -ENOENT && i > 0)
			continue;
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
	char state[VMENV_MAX_PATH + 16];
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
	/* The guest's relay waits while no server is there: the new one
	 * can start after the restore. It reads its state from the job's
	 * own directory: the checkpoint may be consumed (removed) while it
	 * starts. */
	server_gone(f);
	if ((r = take_state(j, ckpt_dir, restored, state, sizeof(state), err,
			    errlen)) < 0)
		return r;
	return spawn(j, state, err, errlen);
}

void jobfiles_served_stop(struct job *j)
{
	struct jobfiles_served *f = j->served;

	if (!f)
		return;
	if (f->pid > 0)
		signal_server(f, SIGTERM);
	server_gone(f);
	unlink(f->ctl_path);
	unlink(f->pid_path);
	free(f);
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
