/* SPDX-License-Identifier: MIT */
/*
 * trustpath: whether only root can change what a path resolves to.
 *
 * vmmd resolves the directories of its configuration (run_dir, the image
 * cache, the checkpoint store, the console logs, its socket's directory)
 * by path, as root, for its whole life. That is safe only when no one but
 * root can rename, replace or add entries along the way: every existing
 * component must be root's and not writable by group or others (a sticky
 * directory such as /tmp does not count: a user still creates names in
 * it). As sshd's StrictModes, checked once at start. Does not log.
 */
#ifndef VMENV_TRUSTPATH_H
#define VMENV_TRUSTPATH_H

#include <stddef.h>

/* 0 when every existing component of the absolute path (a missing tail is
 * what root will create) is a directory or file of root's that group and
 * others cannot write, a symlink only where its target passes the same
 * check. Else -EPERM (or -errno), with the component that failed in bad
 * (may be NULL). */
int trustpath_check(const char *path, char *bad, size_t badlen);

#endif
