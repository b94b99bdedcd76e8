/* SPDX-License-Identifier: MIT */
/*
 * Small readers (and one writer) for sysfs-like trees under a root
 * directory: the real /sys, or a fixture tree in tests. rel is a path
 * relative to the root, built by vmmd from validated parts. Nothing logs;
 * errors are -errno.
 */
#ifndef VMMD_SYSFS_H
#define VMMD_SYSFS_H

#include <stddef.h>
#include <stdint.h>

#include "cpuset.h"

/* root + "/" + rel; -ENAMETOOLONG. */
int sysfs_path(const char *root, const char *rel, char *buf, size_t len);
/* Whole file (at most max bytes), NUL-terminated, malloc'ed. */
int sysfs_read_text(const char *root, const char *rel, size_t max, char **ret);
/* First line, without the newline; -ENOSPC when it does not fit. */
int sysfs_read_line(const char *root, const char *rel, char *buf, size_t len);
/* Decimal or 0x-hex unsigned; -EINVAL for anything else. */
int sysfs_read_u64(const char *root, const char *rel, uint64_t *ret);
/* Signed decimal (numa_node is -1 without NUMA). */
int sysfs_read_i64(const char *root, const char *rel, int64_t *ret);
int sysfs_read_cpuset(const char *root, const char *rel, struct cpuset *ret);
/* The last component of a symlink's target ("../0000:3b:00.2" ->
 * "0000:3b:00.2"). */
int sysfs_link_name(const char *root, const char *rel, char *buf, size_t len);
/* Writes text to an existing file (no O_CREAT: sysfs attributes exist or
 * the kernel does not offer them). */
int sysfs_write(const char *root, const char *rel, const char *text);

#endif
