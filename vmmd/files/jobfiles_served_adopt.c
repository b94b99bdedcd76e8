// SPDX-License-Identifier: MIT
/*
 * A restarted vmmd taking over the vmenv-9p servers (the working
 * directory's and each mount's) a previous vmmd started for a job whose
 * guest it adopts (jobfiles_served.h; docs/checkpoint-files.md, "vmmd
 * restarts").
 */
#include "jobfiles_served.h"

#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "vmmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether argv (NUL-separated, as /proc/PID/cmdline) has key then val. */
static bool argv_has(const char *a, size_t len, const char *key,
		     const char *val)
{
	const char *end = a + len, *prev = NULL;

	for (const char *p = a; p < end;
	     p += strnlen(p, (size_t)(end - p)) + 1) {
		if (prev && strcmp(prev, key) == 0 &&
		    strnlen(p, (size_t)(end - p)) < (size_t)(end - p) &&
		    strcmp(p, val) == 0)
			return true;
		prev = p;
	}
	return false;
}

/* Whether pid runs the server binary (also when an upgrade replaced the
 * file since: the kernel then says "(deleted)") and serves sock. A user
 * can start the same binary with the same arguments: what tells the
 * job's server apart is ctl_is_ours(). */
static int is_server_binary(pid_t pid, const char *sock)
{
	char p[64], exe[VMENV_MAX_PATH], want[VMENV_MAX_PATH];
	_cleanup_free_ char *cmd = NULL;
	size_t len = 0, wl;
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	if ((n = readlink(p, exe, sizeof(exe))) < 0)
		return -errno;
	if ((size_t)n >= sizeof(exe))
		return -ENAMETOOLONG;
	exe[n] = '\0';
	if (!realpath(jobfiles_server_path, want))
		snprintf(want, sizeof(want), "%s", jobfiles_server_path);
	wl = strlen(want);
	if (strncmp(exe, want, wl) != 0 ||
	    (exe[wl] && strcmp(exe + wl, " (deleted)") != 0))
		return -ESRCH;
	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	if (read_file_limited(p, 64 * 1024, &cmd, &len) < 0 ||
	    !argv_has(cmd, len, "--connect", sock))
		return -ESRCH;
	return 0;
}

/* Whether pid's fd 3 is the job's control FIFO (f->ctl): only the server
 * vmmd started was handed it (the job directory is root's). */
static int ctl_is_ours(pid_t pid, const struct jobfiles_server *f)
{
	struct stat mine, theirs;
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/fd/3", (int)pid);
	if (stat(p, &theirs) < 0 || fstat(f->ctl, &mine) < 0)
		return -ESRCH;
	return theirs.st_dev == mine.st_dev && theirs.st_ino == mine.st_ino
		   ? 0
		   : -ESRCH;
}

static int read_pid(const char *path, pid_t *ret)
{
	_cleanup_free_ char *text = NULL;
	uint32_t v;
	int r = read_file_limited(path, 32, &text, NULL);

	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = '\0';
	if (parse_u32(text, &v) < 0 || v < 2 || v > INT32_MAX)
		return -EINVAL;
	*ret = (pid_t)v;
	return 0;
}

/* The FIFO, the job's own (root's directory; a FIFO, not a link). */
static int ctl_reopen(struct jobfiles_server *f, char *why, size_t whylen)
{
	struct stat st;

	f->ctl =
	    open(f->ctl_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (f->ctl < 0)
		return err_set(why, whylen, -errno, "%s: %m", f->ctl_path);
	if (fstat(f->ctl, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_uid != 0)
		return err_set(why, whylen, -EINVAL, "%s is not vmmd's FIFO",
			       f->ctl_path);
	return 0;
}

/* The pidfd first, then the checks on /proc/PID, then a signal 0 through
 * the pidfd: if the process the pidfd names had died and its pid been
 * reused, the checks looked at another process, and the signal fails. */
static int find_server(struct jobfiles_server *f, char *why, size_t whylen)
{
	pid_t pid = 0;
	int r = read_pid(f->pid_path, &pid);

	if (r < 0)
		return err_set(why, whylen, r, "%s: %s", f->pid_path,
			       strerror(-r));
	if ((f->pidfd = pidfd_open(pid, 0)) < 0)
		return err_set(why, whylen, -errno, "vmenv-9p %d: %m",
			       (int)pid);
	if ((r = is_server_binary(pid, f->sock)) < 0 ||
	    (r = ctl_is_ours(pid, f)) < 0)
		return err_set(why, whylen, r,
			       "process %d is not the vmenv-9p vmmd started "
			       "for %s",
			       (int)pid, f->sock);
	if (pidfd_send_signal(f->pidfd, 0, NULL, 0) < 0)
		return err_set(why, whylen, -ESRCH, "vmenv-9p %d is gone",
			       (int)pid);
	f->pid = pid;
	f->child = false;
	return 0;
}

/* Server i: found, checked and asked to serve; or left alone (not ours
 * to stop: it serves the guest on, unfrozen or not) and forgotten. */
static int adopt_one(struct job *j, uint32_t i, char *why, size_t whylen)
{
	struct jobfiles_server *s = &j->served->srv[i];
	char line[600];
	int r;

	/* Resumed: it may have been frozen by a checkpoint the old vmmd did
	 * not finish (the guest it serves is thawed at its adoption). */
	if ((r = ctl_reopen(s, why, whylen)) < 0 ||
	    (r = find_server(s, why, whylen)) < 0)
		goto out;
	r = jobfiles_server_exchange(s, SIGUSR2, "thawed", line, sizeof(line),
				     JOBFILES_ADOPT_MS);
	if (r < 0)
		err_set(why, whylen, r, "vmenv-9p %d did not resume: %s",
			(int)s->pid, line);
out:
	if (r == 0) {
		log_info("job %u: adopted vmenv-9p %d (%s)", j->id, (int)s->pid,
			 s->root);
		return 0;
	}
	if (s->ctl >= 0)
		close(s->ctl);
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->ctl = s->pidfd = -1;
	s->pid = 0;
	s->child = false;
	return r;
}

int jobfiles_served_adopt(struct job *j, char *err, size_t errlen)
{
	char why[512], first[VMENV_MAX_PATH + 600] = "";
	int r, bad = 0;

	if ((r = jobfiles_served_prepare(j, err, errlen)) < 0)
		return r;
	/* Each on its own: those adopted are stopped at the job's end; one
	 * that is not has no pid here, and the job's freeze refuses. */
	for (uint32_t i = 0; i < j->served->n; i++) {
		if ((r = adopt_one(j, i, why, sizeof(why))) == 0)
			continue;
		if (!bad) {
			bad = r;
			snprintf(first, sizeof(first), "%s: %s",
				 j->served->srv[i].root, why);
		}
	}
	if (!bad)
		return 0;
	return err_set(err, errlen, bad,
		       "job %u: the file server was not adopted (%s): the "
		       "job's checkpoints will be refused",
		       j->id, first);
}

/* Server NAME (its NAME.pid in dir) if it still runs: the process vmmd
 * started for this directory (its binary, its socket, its control FIFO),
 * killed through its pidfd. 1 when one was. */
static int reap_one(const char *dir, const char *name)
{
	struct jobfiles_server s = {.ctl = -1, .pidfd = -1};
	char why[256];
	int r = 0;

	if (str_printf(s.pid_path, sizeof(s.pid_path), "%s/%s.pid", dir, name) <
		0 ||
	    str_printf(s.ctl_path, sizeof(s.ctl_path), "%s/%s.ctl", dir, name) <
		0 ||
	    str_printf(s.sock, sizeof(s.sock), "%s/q/%s.sock", dir, name) < 0)
		return 0;
	if (ctl_reopen(&s, why, sizeof(why)) == 0 &&
	    find_server(&s, why, sizeof(why)) == 0 &&
	    pidfd_send_signal(s.pidfd, SIGKILL, NULL, 0) == 0)
		r = 1;
	if (s.ctl >= 0)
		close(s.ctl);
	if (s.pidfd >= 0)
		close(s.pidfd);
	return r;
}

int jobfiles_served_reap_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char name[sizeof(((struct jobfiles_server *)0)->name)];

		if (len <= 4 || len - 4 >= sizeof(name) ||
		    strcmp(e->d_name + len - 4, ".pid") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4), e->d_name);
		n += reap_one(dir, name);
	}
	closedir(d);
	return n;
}
