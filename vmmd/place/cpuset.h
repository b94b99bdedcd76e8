/* SPDX-License-Identifier: MIT */
/*
 * Sets of host CPU (or NUMA node) numbers, and their text form: the Linux
 * "cpulist" format ("0-3,8,10-11") that sysfs, cgroups, libvirt and Slurm's
 * bit_fmt() all use. Pure; fixed size, so a set never allocates.
 */
#ifndef VMMD_CPUSET_H
#define VMMD_CPUSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest CPU number + 1 vmmd handles; larger hosts are refused with a
 * message rather than silently truncated. */
#define CPUSET_MAX 1024

struct cpuset {
	uint64_t w[CPUSET_MAX / 64];
};

void cpuset_zero(struct cpuset *s);
/* Ignores n >= CPUSET_MAX (callers check with cpuset_parse's -ERANGE). */
void cpuset_set(struct cpuset *s, uint32_t n);
bool cpuset_has(const struct cpuset *s, uint32_t n);
uint32_t cpuset_count(const struct cpuset *s);
bool cpuset_empty(const struct cpuset *s);
bool cpuset_equal(const struct cpuset *a, const struct cpuset *b);
/* Every member of a is in b. */
bool cpuset_subset(const struct cpuset *a, const struct cpuset *b);
bool cpuset_intersects(const struct cpuset *a, const struct cpuset *b);
void cpuset_or(struct cpuset *dst, const struct cpuset *src);
void cpuset_and(struct cpuset *dst, const struct cpuset *src);
/* The smallest member greater than after (after = -1: the first), or -1.
 * for (int c = cpuset_next(s, -1); c >= 0; c = cpuset_next(s, c)) ... */
int cpuset_next(const struct cpuset *s, int after);

/* "0-3,8" (an empty string or one newline is the empty set). 0, -EINVAL
 * for bad syntax, -ERANGE for a number >= CPUSET_MAX. *ret is untouched on
 * failure. */
int cpuset_parse(const char *text, struct cpuset *ret);
/* Canonical form with ranges, "" for the empty set. 0 or -ENOSPC. */
int cpuset_format(const struct cpuset *s, char *buf, size_t len);

#endif
