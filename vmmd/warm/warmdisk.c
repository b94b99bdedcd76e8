// SPDX-License-Identifier: MIT
/*
 * A template's disk, checked and copied for a job (warmdisk.h). The qcow2
 * header's layout is QEMU's docs/interop/qcow2.txt: big-endian fields,
 * header extensions after the header, the backing file's name after them
 * in the first cluster.
 */
#include "warmdisk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#define QCOW2_MAGIC 0x514649fbu
#define HDR_V2_LEN  72
#define HDR_V3_MIN  104
/* The header, its extensions and the backing name are in the first
 * cluster; what is read of it is bounded. */
#define HDR_READ	65536
#define EXT_END		0u
#define EXT_BACKING_FMT 0xe2792acau

static uint32_t be32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static uint64_t be64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static int refuse(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EPERM;
}

/* The fixed header: where the extensions start (hlen) and end (the
 * backing name's offset), or why not an overlay we made. */
static int check_fixed(const unsigned char *h, size_t n, uint32_t *hlen,
		       uint64_t *boff, uint32_t *bsize, char *why,
		       size_t whylen)
{
	uint32_t version, cbits;

	if (n < HDR_V3_MIN || be32(h) != QCOW2_MAGIC)
		return refuse(why, whylen, "not a qcow2 image");
	version = be32(h + 4);
	cbits = be32(h + 20);
	if (version != 2 && version != 3)
		return refuse(why, whylen, "qcow2 version %u", version);
	if (cbits < 9 || cbits > 21)
		return refuse(why, whylen, "cluster bits %u", cbits);
	if (be32(h + 32) != 0)
		return refuse(why, whylen, "encrypted");
	if (be32(h + 60) != 0)
		return refuse(why, whylen, "it has internal snapshots");
	*hlen = HDR_V2_LEN;
	/* Dirty, corrupt, an external data file, another compression:
	 * nothing a clean close of a plain overlay leaves. */
	if (version == 3 && be64(h + 72) != 0)
		return refuse(why, whylen, "incompatible features 0x%llx",
			      (unsigned long long)be64(h + 72));
	if (version == 3)
		*hlen = be32(h + 100);
	*boff = be64(h + 8);
	*bsize = be32(h + 16);
	if (*hlen < (version == 3 ? HDR_V3_MIN : HDR_V2_LEN) || *boff < *hlen ||
	    *bsize == 0 || *boff > n || *bsize > n - *boff ||
	    *boff + *bsize > (1ull << cbits))
		return refuse(why, whylen,
			      "no backing file, or it is out of "
			      "the header");
	return 0;
}

/* The extensions between hlen and end: a backing format, which must be
 * fmt, and nothing QEMU would open another file or a key for. */
static int check_exts(const unsigned char *h, uint32_t hlen, uint64_t end,
		      const char *fmt, char *why, size_t whylen)
{
	bool fmt_seen = false;
	uint64_t off = hlen;

	while (off + 8 <= end) {
		uint32_t type = be32(h + off), len = be32(h + off + 4);

		if (type == EXT_END)
			break;
		if (len > end - off - 8)
			return refuse(why, whylen,
				      "a header extension runs "
				      "past the header");
		if (type == EXT_BACKING_FMT) {
			if (len != strlen(fmt) || memcmp(h + off + 8, fmt, len))
				return refuse(why, whylen,
					      "its backing format is not %s",
					      fmt);
			fmt_seen = true;
		} else if (type == 0x44415441u || type == 0x0537be77u) {
			return refuse(why, whylen,
				      "an external data file or encryption");
		}
		off += 8 + (((uint64_t)len + 7) & ~7ull);
	}
	if (!fmt_seen)
		return refuse(why, whylen, "no backing format");
	return 0;
}

int warm_disk_check(int fd, const char *base, const char *fmt, char *why,
		    size_t whylen)
{
	_cleanup_free_ unsigned char *h = malloc(HDR_READ);
	uint32_t hlen = 0, bsize = 0;
	uint64_t boff = 0;
	ssize_t n;
	int r;

	if (!h)
		return -ENOMEM;
	if ((n = pread(fd, h, HDR_READ, 0)) < 0)
		return -errno;
	if ((r = check_fixed(h, (size_t)n, &hlen, &boff, &bsize, why, whylen)) <
		0 ||
	    (r = check_exts(h, hlen, boff, fmt, why, whylen)) < 0)
		return r;
	if (bsize != strlen(base) || memcmp(h + boff, base, bsize) != 0)
		return refuse(why, whylen, "its backing file is not %s", base);
	return 0;
}

int warm_disk_copy(const char *tmpl_disk, const char *overlay, const char *base,
		   const char *fmt, char *why, size_t whylen)
{
	_cleanup_close_ int in =
	    open(tmpl_disk, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	struct stat st;
	int r;

	if (in < 0 || fstat(in, &st) < 0)
		return err_set(why, whylen, -errno, "%s: %m", tmpl_disk);
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return err_set(why, whylen, -EPERM, "%s: not a file of root's",
			       tmpl_disk);
	if ((r = warm_disk_check(in, base, fmt, why, whylen)) < 0) {
		char what[256];

		snprintf(what, sizeof(what), "%s", why);
		return err_set(why, whylen, r, "%s: %s", tmpl_disk, what);
	}
	/* A new file: the job's overlay as qemu-img made it is replaced,
	 * never written through (disk/ is root's: no link can be there). */
	if (unlink(overlay) < 0 && errno != ENOENT)
		return err_set(why, whylen, -errno, "%s: %m", overlay);
	out = open(overlay,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return err_set(why, whylen, -errno, "%s: %m", overlay);
	if ((r = copy_fd(in, out, st.st_size)) < 0) {
		unlink(overlay);
		return err_set(why, whylen, r, "copying %s: %s", tmpl_disk,
			       strerror(-r));
	}
	return 0;
}

int warm_disk_keep(const char *from, const char *to, const char *base,
		   const char *fmt, char *why, size_t whylen)
{
	_cleanup_close_ int in =
	    open(from, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	struct stat st;
	char what[256];
	int r;

	if (in < 0 || fstat(in, &st) < 0)
		return err_set(why, whylen, -errno, "its overlay: %m");
	if (!S_ISREG(st.st_mode))
		return err_set(why, whylen, -EPERM,
			       "its overlay is not a file");
	if ((uint64_t)st.st_size > (uint64_t)WARM_DISK_MAX_MIB << 20)
		return err_set(
		    why, whylen, -EFBIG, "its overlay is %llu MiB, over %u",
		    (unsigned long long)st.st_size >> 20, WARM_DISK_MAX_MIB);
	/* A copy, not the file: libvirt gave the overlay to warm_user while
	 * its guest ran, and a process of that user (another node's template
	 * QEMU on this machine) may still hold it open for writing. The copy
	 * is a new file of root's (0600) that no one else has opened, and
	 * the header checked is the copy's. */
	if (unlink(to) < 0 && errno != ENOENT)
		return err_set(why, whylen, -errno, "%s: %m", to);
	out =
	    open(to, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return err_set(why, whylen, -errno, "%s: %m", to);
	if ((r = copy_fd(in, out, st.st_size)) < 0) {
		unlink(to);
		return err_set(why, whylen, r, "copying its overlay: %s",
			       strerror(-r));
	}
	if ((r = warm_disk_check(out, base, fmt, why, whylen)) < 0) {
		unlink(to);
		snprintf(what, sizeof(what), "%s", why);
		return err_set(why, whylen, r, "its overlay: %s", what);
	}
	unlink(from);
	return 0;
}
