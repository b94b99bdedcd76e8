// SPDX-License-Identifier: MIT
/*
 * Zeroing the guest's free memory before a warm-start template is saved
 * (docs/warmstart.md, "The template").
 *
 * QEMU's save writes every guest page that is not all zeroes, and every
 * job started from the template loads the whole stream. A freshly booted
 * guest's free memory is far from zero: the kernel's decompression left
 * its compressed and relocated copies there, and the initrd's pages are
 * freed after it was unpacked. The kernel zeroes each page it gives a
 * process's anonymous mapping, so taking (nearly) all free memory once and
 * giving it back leaves it zero: the template's stream then holds what the
 * guest uses, not what it once used.
 */
#include "agent.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Left untouched: the kernel's reserves (min_free_kbytes) and room for the
 * agent itself. The agent is the guest's init: an out-of-memory here would
 * find nothing else to kill and panic the guest. */
#define ZERO_KEEP_KIB (24 * 1024L)

static long meminfo_kib(const char *key)
{
	char line[128];
	long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && sscanf(line + n, "%ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

long agent_zero_free_memory(void)
{
	long free_kib = meminfo_kib("MemFree:");
	size_t len;
	void *p;

	if (free_kib <= ZERO_KEEP_KIB)
		return 0;
	len = (size_t)(free_kib - ZERO_KEEP_KIB) * 1024;
	/* MAP_POPULATE faults every page in now: each is a zeroed page taken
	 * from the free lists, and munmap puts it back as it is. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1,
		 0);
	if (p == MAP_FAILED)
		return -1;
	munmap(p, len);
	return (long)(len >> 20);
}
