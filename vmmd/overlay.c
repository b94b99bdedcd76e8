/* SPDX-License-Identifier: MIT */
#include "overlay.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int overlay_argv(const char *qemu_img, const char *base, const char *fmt,
		 const char *overlay, const char **argv)
{
	size_t n = 0;

	if (!valid_abs_path(qemu_img) || !valid_abs_path(base) ||
	    !valid_abs_path(overlay) ||
	    (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0))
		return -EINVAL;
	argv[n++] = qemu_img;
	argv[n++] = "create";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = "qcow2";
	argv[n++] = "-F";
	argv[n++] = fmt;
	argv[n++] = "-b";
	argv[n++] = base;
	argv[n++] = overlay;
	argv[n] = NULL;
	return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls
 * (vmmd has threads). */
static void child(const char **argv, int out, int devnull, uid_t uid, gid_t gid)
{
	static const char *const envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C",
					   NULL};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(out, STDERR_FILENO) < 0)
		_exit(126);
	close_range(3, ~0u, 0);
	if (uid != 0 &&
	    (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	     setresuid(uid, uid, uid) < 0))
		_exit(126);
	execve(argv[0], (char *const *)(uintptr_t)argv,
	       (char *const *)(uintptr_t)envp);
	_exit(127);
}

int overlay_spawn(const char *qemu_img, const char *base, const char *fmt,
		  const char *overlay, uid_t uid, gid_t gid,
		  struct overlay_proc *ret)
{
	const char *argv[OVERLAY_MAX_ARGV];
	_cleanup_close_ int devnull = -1;
	int p[2], r;
	pid_t pid;

	if ((r = overlay_argv(qemu_img, base, fmt, overlay, argv)) < 0)
		return r;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0)
		child(argv, p[1], devnull, uid, gid);
	close(p[1]);
	ret->pid = pid;
	ret->out_fd = p[0];
	return 0;
}

int overlay_reap(struct overlay_proc *p, const char *out, char *err,
		 size_t errlen)
{
	int status = 0;
	pid_t w;

	if (p->out_fd >= 0)
		close(p->out_fd);
	p->out_fd = -1;
	while ((w = waitpid(p->pid, &status, 0)) < 0 && errno == EINTR)
		;
	p->pid = 0;
	if (w < 0)
		return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(err, errlen, "qemu-img exited with %d%s%.300s",
			 WEXITSTATUS(status), out && *out ? ": " : "",
			 out ? out : "");
	else
		snprintf(err, errlen, "qemu-img killed by signal %d",
			 WTERMSIG(status));
	err[strcspn(err, "\n")] = '\0';
	return -EIO;
}

int overlay_create(const char *qemu_img, const char *base, const char *fmt,
		   const char *overlay, char *err, size_t errlen)
{
	struct overlay_proc p;
	char out[1024];
	size_t len = 0;
	ssize_t n;
	int r = overlay_spawn(qemu_img, base, fmt, overlay, 0, 0, &p);

	if (r < 0) {
		snprintf(err, errlen, "cannot start %s: %s", qemu_img,
			 strerror(-r));
		return r;
	}
	while ((n = read(p.out_fd, out + len, sizeof(out) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
		if (len == sizeof(out) - 1)
			len = 0; /* keep reading; the end matters most */
	}
	out[len] = '\0';
	return overlay_reap(&p, out, err, errlen);
}

int overlay_open_checked(int disk_dfd, uid_t uid, struct stat *st)
{
	_cleanup_close_ int fd =
	    openat(disk_dfd, OVERLAY_NAME,
		   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if (st->st_uid != geteuid() && st->st_uid != uid)
		return -EPERM;
	if (st->st_nlink != 1)
		return -EMLINK;
	return TAKE_FD(fd);
}
