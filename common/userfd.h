/* SPDX-License-Identifier: MIT */
/*
 * userfd: taking a private, non-blocking copy of a descriptor a client
 * handed to root, with the client's rights, never root's.
 *
 * A task's stdio reaches vmmd over SCM_RIGHTS and is shared with the task:
 * setting O_NONBLOCK on it would change the task's own description, so a
 * pipe, FIFO or terminal is opened again through /proc/self/fd to get a
 * description of vmmd's own. Done by root, that open is a confused deputy:
 * an O_PATH fd needs no permission at all, so a user could hand over
 * /dev/kmsg or a root 0600 FIFO and have root open it.
 *
 * Here the open runs in vmmd's own thread with that thread's file system
 * credentials switched to the user's (setfsuid, setfsgid, setgroups as raw
 * system calls: per thread on Linux), as knfsd and Samba do. A non-zero
 * fsuid drops the file system capabilities (CAP_DAC_OVERRIDE, ...), so the
 * kernel checks the open exactly as for the user; the thread switches back
 * before anything else runs, and vmmd aborts if it cannot. Not a child
 * process: a process of the user's holding a copy of vmmd (its fds, its
 * memory) is what an earlier version made, and a user could trace it or
 * stop it to stall vmmd. Anything opened O_PATH, or without the access the
 * caller needs, is refused before any open.
 */
#ifndef VMENV_USERFD_H
#define VMENV_USERFD_H

#include <stddef.h>
#include <sys/types.h>

#define USERFD_MAX 4

struct userfd_ids {
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	const gid_t *groups;
};

/* -EBADF when fd is O_PATH or lacks accmode (O_RDONLY or O_WRONLY). */
int userfd_check(int fd, int accmode);

/* For each fds[i] that is a FIFO or a character device (pipes and
 * terminals are both), replaces it with a new description opened as ids
 * with accmodes[i] | O_NONBLOCK, closing the old one; regular files are
 * left alone; anything else (a socket) is made non-blocking in place.
 * When the user may not open it again (a pipe root created), the fd is made
 * non-blocking in place, as the task could do itself. 0 or -errno; on
 * error the fds are unchanged. */
int userfd_own_nonblock(const struct userfd_ids *ids, int *fds,
			const int *accmodes, size_t n);

/* A new read-only description of the regular file fd, opened as ids:
 * only when the user may read that file. The new fd, or -errno. */
int userfd_reopen_read(const struct userfd_ids *ids, int fd);

/* Runs fn(arg) with the calling thread's file system credentials those of
 * ids (the user's rights for every path and open), then restores root's.
 * Returns fn's result. Aborts when root's cannot be restored. */
int userfd_as_user(const struct userfd_ids *ids, int (*fn)(void *arg),
		   void *arg);

#endif
