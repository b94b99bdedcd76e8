/* SPDX-License-Identifier: MIT */
/*
 * File system operations for a root process in directories a user may
 * write (docs/security.md): every lookup is one name at a time from a
 * directory fd, never through a symlink, and what is found is checked
 * (type, owner, links) on the fd that is then used. Removal by fd is
 * common/rmtree.h's. Paths are only ever
 * resolved by the kernel from an fd the caller holds, so renaming or
 * replacing a directory on the way after it was opened changes nothing.
 *
 * None of these log. Each returns an fd or 0 on success, -errno on
 * failure; what a refusal means:
 *   -ELOOP    a symlink where a directory or file was expected
 *   -ENOTDIR  not a directory
 *   -EINVAL   not a regular file (a FIFO, a device, a socket)
 *   -EPERM    another owner, or a mode that lets others in
 *   -EMLINK   a file with more than one name (a hard link to elsewhere)
 *   -EXDEV    a mount point where none is expected
 */
#ifndef VMENV_SAFEFS_H
#define VMENV_SAFEFS_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Flags of sfs_open_dir_path. */
#define SFS_CREATE 1u /* create missing directories (mode 0700) */

/* Opens the absolute path abs (valid_abs_path) as a directory, walking
 * from "/" one component at a time with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a symlink anywhere on the
 * way is refused (-ELOOP), so no string check of the path (a policy's
 * prefix) can be escaped through one. *ret_trusted (may be NULL) says
 * whether every directory on the way, the last one included, is
 * root's (or this process's owner's) and writable by no one else
 * (sticky directories such as /tmp count: others cannot rename what is
 * not theirs there): then the path itself cannot be redirected by anyone
 * but root and may be handed to another root process (libvirtd). */
int sfs_open_dir_path(const char *abs, unsigned flags, bool *ret_trusted);

/* Opens (with create: makes first, mode) the directory name below dirfd,
 * not following a link, and checks that it is a directory owned by this
 * process's euid that no one else may enter (mode & 077 == 0), on dirfd's
 * file system (-EXDEV for a mount point: a user's FUSE mount may claim
 * any owner). On a refusal *st (may be NULL) holds what was found
 * there. */
int sfs_open_private_dir(int dirfd, const char *name, bool create, mode_t mode,
			 struct stat *st);

/* A listing of the directory dirfd with its own offset (a new open file
 * description of "."; dup() would share dirfd's offset with every other
 * listing of it). NULL with errno set. closedir() it. */
DIR *sfs_opendir(int dirfd);

/* Opens the regular file name below dirfd for reading: O_NOFOLLOW
 * (-ELOOP), O_NONBLOCK (a FIFO put there opens at once and is refused
 * with -EINVAL instead of blocking the caller), owned by owner (-EPERM),
 * one link only (-EMLINK). The fd is blocking again when returned. */
int sfs_open_file(int dirfd, const char *name, uid_t owner);

/* Reads all of fd from offset 0 (at most max bytes, -EFBIG beyond) into a
 * new NUL-terminated buffer. */
int sfs_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* Writes data to name below dirfd atomically: a new temporary file
 * (O_CREAT|O_EXCL|O_NOFOLLOW), fsync, renameat, fsync of dirfd. */
int sfs_write_atomic(int dirfd, const char *name, const void *data, size_t len,
		     mode_t mode);

/* Copies the first len bytes of in (from offset 0; in's own offset is
 * not used) into the new file name below dirfd (O_CREAT|O_EXCL|O_NOFOLLOW:
 * an existing name, a link included, is -EEXIST). -EIO when in is
 * shorter; nothing is left of a failed copy. */
int sfs_copy_fd(int in, uint64_t len, int dirfd, const char *name, mode_t mode);

/* A path to name in the directory held by dirfd that resolves through
 * that very directory whatever is renamed meanwhile:
 * /proc/<pid>/fd/<dirfd>/<name> (name may be "": the directory). For
 * another root process of this machine (libvirtd) and for code that
 * takes paths; the directory must be one no one but root can write. */
int sfs_fd_path(int dirfd, const char *name, char *buf, size_t len);

#endif
