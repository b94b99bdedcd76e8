// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: warm_disk_check (vmmd/warm/warmdisk.c), the check of a
 * template's overlay, a qcow2 header written by a QEMU that served a guest.
 * Crashes and sanitizer reports are findings; so is a header taken that
 * does not name the base the check was given, in the backing format it
 * was given, with no incompatible feature (the property the check
 * promises root).
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "warmdisk.h"

#define BASE "/var/cache/vmenv/blobs/ab"

static uint32_t be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

/* What an accepted header must say. */
static void property(const uint8_t *d, size_t n)
{
	uint64_t boff;
	uint32_t bsize;

	if (n < 104 || be32(d) != 0x514649fbu)
		abort();
	if (be32(d + 4) == 3 && be64(d + 72) != 0)
		abort();
	boff = be64(d + 8);
	bsize = be32(d + 16);
	if (bsize != strlen(BASE) || boff > n || bsize > n - boff ||
	    memcmp(d + boff, BASE, bsize) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char why[256];
	const char *fmt = size && (data[0] & 1) ? "raw" : "qcow2";

	if (fd < 0 && (fd = memfd_create("qcow2", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fd, 0) < 0 ||
	    (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (warm_disk_check(fd, BASE, fmt, why, sizeof(why)) == 0)
		property(data, size);
	return 0;
}
