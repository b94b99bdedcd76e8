/* SPDX-License-Identifier: MIT */
/*
 * rmtree: removing a directory tree that someone else may be changing.
 *
 * vmmd removes job directories, checkpoint fragments and stores as root,
 * and parts of those trees can be written by a job's user while the walk
 * runs. A path-based walk (nftw) re-resolves every path from the top, so a
 * directory renamed away and replaced by a symlink mid-walk leads root's
 * unlinks anywhere. Here every step is relative to a directory fd the walk
 * opened itself with O_NOFOLLOW|O_DIRECTORY: a symlink is removed as a
 * symlink, never followed, and an entry swapped between the check and the
 * open is found out by the open (ELOOP/ENOTDIR) and unlinked as a file.
 * The walk never leaves the file system it started on (a mount point below
 * is left alone, -EXDEV) and goes at most RMTREE_MAX_DEPTH levels deep.
 *
 * What is trusted: the directory fd (or the parent of the path) given by
 * the caller. The path form resolves its parent directories normally: call
 * it only with a path whose every parent root owns and no user can write.
 * None of these log.
 */
#ifndef VMENV_RMTREE_H
#define VMENV_RMTREE_H

#define RMTREE_MAX_DEPTH 128

/* Removes the entry name of the directory dfd (a file, symlink or whole
 * tree). 0 when it is gone (or was not there), else the first -errno. */
int rmtree_at(int dfd, const char *name);

/* rmtree_at on the parent of path: see above for what path may be. */
int rm_rf(const char *path);

#endif
