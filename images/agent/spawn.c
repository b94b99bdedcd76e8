// SPDX-License-Identifier: MIT
/*
 * Starting a command as the job's user: the pipes, the forked child that
 * drops privileges and execs, and the status pipe through which the child
 * tells the parent why it could not exec. Shared by the host's EXEC
 * sessions and the rsh service.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* What the child was doing when it failed, sent up the status pipe. */
enum stage {
	STAGE_SETUP,
	STAGE_SETGROUPS,
	STAGE_SETGID,
	STAGE_SETUID,
	STAGE_CHDIR,
	STAGE_EXEC
};

struct child_status {
	int32_t stage;
	int32_t err;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* --- the child ---------------------------------------------------------- */

/* Before the child drops privileges: its whole tree is frozen with the
 * checkpoint's cgroup (ckpt.c). Failing is not fatal: the freezer falls
 * back to SIGSTOP. */
static void join_job_cgroup(void)
{
	int fd = open(AGENT_CGROUP "/cgroup.procs", O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = write(fd, "0", 1);
	(void)n;
	close(fd);
}

static __attribute__((noreturn)) void child_fail(int fd, enum stage stage,
						 int err)
{
	struct child_status cs = {stage, err};

	if (write(fd, &cs, sizeof(cs)) < 0)
		_exit(126);
	_exit(127);
}

static const char *env_path(char *const envp[])
{
	for (; *envp; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			return *envp + 5;
	return DEFAULT_PATH;
}

/* Errors after which execvp() also goes on to the next PATH entry. */
static bool try_next_dir(int err)
{
	return err == ENOENT || err == ENOTDIR || err == ESTALE ||
	       err == ENODEV || err == ETIMEDOUT || err == ENAMETOOLONG ||
	       err == ELOOP;
}

/*
 * execvpe() with the PATH of the job's environment rather than the agent's.
 * Returns the errno to report; on success it does not return.
 */
static int exec_search(char *const argv[], char *const envp[])
{
	const char *file = argv[0], *dir, *end;
	size_t flen = strlen(file), dlen;
	bool eacces = false;
	char buf[PATH_MAX];

	if (flen == 0)
		return ENOENT;
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return errno;
	}
	for (dir = env_path(envp);; dir = end + 1) {
		end = strchrnul(dir, ':');
		dlen = (size_t)(end - dir);
		if (dlen + 1 + flen < sizeof(buf)) {
			/* An empty entry means the current directory. */
			snprintf(buf, sizeof(buf), "%.*s%s%s", (int)dlen, dir,
				 dlen ? "/" : "", file);
			execve(buf, argv, envp);
			if (errno == EACCES)
				eacces = true;
			else if (!try_next_dir(errno))
				return errno;
		}
		if (!*end)
			break;
	}
	return eacces ? EACCES : ENOENT;
}

static int child_stdio(const struct spawn_pipes *p)
{
	int in = p->in[0];

	if (in < 0) {
		in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (in < 0)
			return errno;
	}
	if (dup2(in, STDIN_FILENO) < 0 || dup2(p->out[1], STDOUT_FILENO) < 0)
		return errno;
	if (dup2(p->err[1] >= 0 ? p->err[1] : p->out[1], STDERR_FILENO) < 0)
		return errno;
	return 0;
}

/* A bulk port's start marker goes before anything the command writes
 * (blocking: the host reads an armed port). */
static int child_bulk_start(const struct aw_exec *e)
{
	if (!(e->flags & AW_EXEC_BULK))
		return 0;
	return -agent_write_all(STDOUT_FILENO, e->bulk_start, AW_BULK_MARK_LEN);
}

/* Runs in the forked child: never returns. Every fd of the agent is
 * O_CLOEXEC, so only 0-2 survive the exec. */
void spawn_child(struct aw_exec *e, const struct spawn_pipes *p, char *script)
{
	gid_t groups[AW_MAX_GROUPS];
	int st = p->st[1], err;
	sigset_t none;
	uint32_t i;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The job starts with every signal at its default, whatever the agent
	 * inherited or ignores (SIGPIPE; an agent started with SIGINT ignored,
	 * as a background command of a shell is, would pass that on: the job
	 * could not be interrupted). */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (setsid() < 0)
		child_fail(st, STAGE_SETUP, errno);
	join_job_cgroup();
	err = child_stdio(p);
	err = err ?: child_bulk_start(e);
	if (err)
		child_fail(st, STAGE_SETUP, err);
	for (i = 0; i < e->ngroups; i++)
		groups[i] = e->groups[i];
	/* Supplementary groups, then gid, then uid: each step needs the
	 * privilege the next one drops. */
	if (setgroups(e->ngroups, groups) < 0)
		child_fail(st, STAGE_SETGROUPS, errno);
	if (setgid(e->gid) < 0)
		child_fail(st, STAGE_SETGID, errno);
	if (setuid(e->uid) < 0)
		child_fail(st, STAGE_SETUID, errno);
	if (chdir(e->cwd) < 0)
		child_fail(st, STAGE_CHDIR, errno);
	if (script)
		e->argv[0] = script;
	child_fail(st, STAGE_EXEC, exec_search(e->argv, e->envp));
}

/* --- pipes -------------------------------------------------------------- */

void spawn_pipes_close(struct spawn_pipes *p)
{
	close_fd(&p->out[0]);
	close_fd(&p->out[1]);
	close_fd(&p->err[0]);
	close_fd(&p->err[1]);
	close_fd(&p->in[0]);
	close_fd(&p->in[1]);
	close_fd(&p->st[0]);
	close_fd(&p->st[1]);
}

int spawn_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Opens the pipes the flags call for; the agent's ends are non-blocking. */
int spawn_pipes_open(struct spawn_pipes *p, uint32_t flags)
{
	int r = 0;

	*p = (struct spawn_pipes){{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
	if (pipe2(p->out, O_CLOEXEC) < 0 || pipe2(p->st, O_CLOEXEC) < 0)
		return -errno;
	if (!(flags & AW_EXEC_MERGE_STDERR) && pipe2(p->err, O_CLOEXEC) < 0)
		return -errno;
	if ((flags & AW_EXEC_STDIN) && pipe2(p->in, O_CLOEXEC) < 0)
		return -errno;
	r = r ?: spawn_set_nonblock(p->out[0]);
	r = r ?: spawn_set_nonblock(p->st[0]);
	if (p->err[0] >= 0)
		r = r ?: spawn_set_nonblock(p->err[0]);
	/* Larger output pipes let a fast writer run on while the agent is
	 * descheduled: under TCG each wakeup of either side is costly. Best
	 * effort: the default size works, only slower. */
	(void)fcntl(p->out[0], F_SETPIPE_SZ, AGENT_PIPE_SIZE);
	if (p->err[0] >= 0)
		(void)fcntl(p->err[0], F_SETPIPE_SZ, AGENT_PIPE_SIZE);
	if (p->in[1] >= 0)
		r = r ?: spawn_set_nonblock(p->in[1]);
	return r;
}

int spawn_pipes_use_port(struct spawn_pipes *p, int port_fd)
{
	int fd = fcntl(port_fd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return -errno;
	close_fd(&p->out[0]);
	close_fd(&p->out[1]);
	p->out[1] = fd;
	return 0;
}

/* --- exec result -------------------------------------------------------- */

static void start_fail_msg(const struct start_info *si, enum stage stage,
			   int err, char *buf, size_t size)
{
	const char *why = strerror(err);

	switch (stage) {
	case STAGE_SETGROUPS:
		snprintf(buf, size, "setgroups (%u groups): %s", si->ngroups,
			 why);
		break;
	case STAGE_SETGID:
		snprintf(buf, size, "setgid %u: %s", si->gid, why);
		break;
	case STAGE_SETUID:
		snprintf(buf, size, "setuid %u: %s", si->uid, why);
		break;
	case STAGE_CHDIR:
		snprintf(buf, size, "chdir '%s': %s", si->cwd, why);
		break;
	case STAGE_EXEC:
		snprintf(buf, size, "exec '%s': %s", si->exe, why);
		break;
	case STAGE_SETUP:
		snprintf(buf, size, "setting up the child: %s", why);
		break;
	}
}

int spawn_status_read(int fd, const struct start_info *si, char *msg,
		      size_t size)
{
	struct child_status cs;
	ssize_t n;

	n = read(fd, &cs, sizeof(cs));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -EAGAIN;
	if (n == 0)
		return 0;
	if (n != sizeof(cs) || cs.stage < STAGE_SETUP ||
	    cs.stage > STAGE_EXEC || cs.err <= 0)
		cs = (struct child_status){STAGE_SETUP, EIO};
	start_fail_msg(si, (enum stage)cs.stage, cs.err, msg, size);
	return cs.err;
}
