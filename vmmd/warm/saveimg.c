// SPDX-License-Identifier: MIT
/*
 * libvirt's QEMU save image: read, and written again with another XML
 * (saveimg.h). What is read is root's own file (a template vmmd saved), but
 * its sizes are still checked before use: a truncated or foreign file
 * fails here with a reason rather than in QEMU.
 */
#include "saveimg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#define MAGIC	     "LibvirtQemudSave"
#define MAGIC_LEN    16u
#define SAVE_VERSION 2u
#define ALIGN	     4096u

/* The header's u32 fields after the magic, in libvirt's order. */
enum { F_VERSION, F_DATA_LEN, F_WAS_RUNNING, F_FORMAT, F_COOKIE, F_N = 19 };

static uint32_t field(const uint8_t *h, int i)
{
	uint32_t v;

	memcpy(&v, h + MAGIC_LEN + 4 * i, sizeof(v));
	return v;
}

static void set_field(uint8_t *h, int i, uint32_t v)
{
	memcpy(h + MAGIC_LEN + 4 * i, &v, sizeof(v));
}

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n =
		    pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EINVAL;
		got += (size_t)n;
	}
	return 0;
}

static int bad(char *why, size_t whylen, const char *what)
{
	return err_set(why, whylen, -EINVAL,
		       "not a save image vmmd can use: %s", what);
}

/* The cookie: a NUL-terminated text at cookie_off inside data. */
static int take_cookie(const char *data, uint32_t len, uint32_t cookie_off,
		       struct saveimg *ret)
{
	if (cookie_off == 0)
		return 0;
	if (cookie_off >= len ||
	    !memchr(data + cookie_off, '\0', len - cookie_off))
		return -EINVAL;
	ret->cookie = strdup(data + cookie_off);
	return ret->cookie ? 0 : -ENOMEM;
}

int saveimg_read(int fd, struct saveimg *ret, char *why, size_t whylen)
{
	uint8_t h[SAVEIMG_HDR_LEN];
	_cleanup_free_ char *data = NULL;
	struct stat st;
	uint32_t len;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (fstat(fd, &st) < 0)
		return err_set(why, whylen, -errno, "stat: %s",
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return bad(why, whylen, "not a plain file");
	if ((r = pread_full(fd, h, sizeof(h), 0)) < 0)
		return r == -EINVAL
			   ? bad(why, whylen, "shorter than a header")
			   : err_set(why, whylen, r, "read: %s", strerror(-r));
	if (memcmp(h, MAGIC, MAGIC_LEN) != 0)
		return bad(why, whylen, "no libvirt save magic (unfinished?)");
	if (field(h, F_VERSION) != SAVE_VERSION)
		return bad(why, whylen, "another format version");
	if (field(h, F_FORMAT) != 0)
		return bad(why, whylen, "compressed");
	len = field(h, F_DATA_LEN);
	if (len == 0 || len > SAVEIMG_MAX_DATA ||
	    (uint64_t)st.st_size < SAVEIMG_HDR_LEN + (uint64_t)len)
		return bad(why, whylen, "its XML's length");
	if (!(data = malloc(len)))
		return -ENOMEM;
	if ((r = pread_full(fd, data, len, SAVEIMG_HDR_LEN)) < 0)
		return err_set(why, whylen, r, "read: %s", strerror(-r));
	if ((r = take_cookie(data, len, field(h, F_COOKIE), ret)) < 0)
		return r == -ENOMEM ? r : bad(why, whylen, "its cookie");
	ret->data_len = len;
	ret->was_running = field(h, F_WAS_RUNNING);
	ret->stream_off = SAVEIMG_HDR_LEN + (uint64_t)len;
	ret->stream_len = (uint64_t)st.st_size - ret->stream_off;
	return 0;
}

void saveimg_clear(struct saveimg *s)
{
	free(s->cookie);
	memset(s, 0, sizeof(*s));
}

/* Header and data of the new image, the data zero-padded so that the
 * stream starts at a multiple of ALIGN (libvirt reads it with O_DIRECT
 * when asked to bypass the cache; a reflink needs block alignment). */
static int build_head(const struct saveimg *in, const char *xml, uint8_t **ret,
		      size_t *ret_len)
{
	size_t xl = strlen(xml) + 1;
	size_t cl = in->cookie ? strlen(in->cookie) + 1 : 0;
	size_t total = SAVEIMG_HDR_LEN + xl + cl;
	uint8_t *p;

	total = (total + ALIGN - 1) / ALIGN * ALIGN;
	if (total - SAVEIMG_HDR_LEN > SAVEIMG_MAX_DATA)
		return -E2BIG;
	if (!(p = calloc(1, total)))
		return -ENOMEM;
	memcpy(p, MAGIC, MAGIC_LEN);
	set_field(p, F_VERSION, SAVE_VERSION);
	set_field(p, F_DATA_LEN, (uint32_t)(total - SAVEIMG_HDR_LEN));
	set_field(p, F_WAS_RUNNING, in->was_running);
	set_field(p, F_FORMAT, 0);
	set_field(p, F_COOKIE, cl ? (uint32_t)xl : 0);
	memcpy(p + SAVEIMG_HDR_LEN, xml, xl);
	if (cl)
		memcpy(p + SAVEIMG_HDR_LEN + xl, in->cookie, cl);
	*ret = p;
	*ret_len = total;
	return 0;
}

static int copy_stream(int in_fd, const struct saveimg *in, int out,
		       off_t out_off)
{
	loff_t ioff = (loff_t)in->stream_off, ooff = out_off;
	uint64_t left = in->stream_len;

	while (left > 0) {
		ssize_t n =
		    copy_file_range(in_fd, &ioff, out, &ooff,
				    left > (1u << 30) ? (1u << 30) : left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the template shrank under us */
		left -= (uint64_t)n;
	}
	return 0;
}

int saveimg_write(int in_fd, const struct saveimg *in, const char *xml, int out,
		  char *why, size_t whylen)
{
	_cleanup_free_ uint8_t *head = NULL;
	size_t len;
	int r = build_head(in, xml, &head, &len);

	if (r < 0)
		return err_set(why, whylen, r, "the guest's XML: %s",
			       strerror(-r));
	if ((r = write_full(out, head, len)) < 0)
		return err_set(why, whylen, r, "write: %s", strerror(-r));
	if ((r = copy_stream(in_fd, in, out, (off_t)len)) < 0)
		return err_set(why, whylen, r, "copying the stream: %s",
			       strerror(-r));
	return 0;
}

int saveimg_xml_with_uuid(const char *xml, const char *uuid, char **ret)
{
	const char *n = strstr(xml, "</name>");

	*ret = NULL;
	if (!n || strstr(xml, "<uuid>") || strlen(uuid) != 36)
		return -EINVAL;
	n += strlen("</name>");
	if (asprintf(ret, "%.*s<uuid>%s</uuid>%s", (int)(n - xml), xml, uuid,
		     n) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

int saveimg_new_uuid(char out[37])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}
