// SPDX-License-Identifier: MIT
/*
 * The server's state across a checkpoint: the negotiated msize and every
 * fid (number, kind, open flags, path), as text written atomically:
 *
 *   vmenv-9p-state 1
 *   msize 524288
 *   fid 1 n 0 -
 *   fid 7 f 2 6a6f622f6f7574
 *   end
 *
 * Paths are hex (any byte but NUL may be in a name); "-" is the root.
 * The guest's side (its fids, open files, cwd) is in guest memory and
 * comes back with it; a new server loads this and re-opens each open fid
 * by its path. One that cannot be re-opened (its file was unlinked while
 * open, or removed on the host meanwhile) is kept as lost: every request
 * on it but clunk fails with ESTALE.
 */
#include "srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define STATE_MAGIC "vmenv-9p-state 1"
/* One line per fid: "fid" + numbers + the hex path. */
#define STATE_LINE_MAX (64 + 2 * SRV_MAX_PATH)

struct dump {
	char *buf;
	size_t len, cap;
	int err;
};

static void dump_add(struct dump *d, const char *s, size_t n)
{
	if (d->err)
		return;
	if (d->len + n + 1 > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 65536;
		char *p;

		while (cap < d->len + n + 1)
			cap *= 2;
		if (!(p = realloc(d->buf, cap))) {
			d->err = -ENOMEM;
			return;
		}
		d->buf = p;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, s, n);
	d->len += n;
}

static int dump_fid(struct fid *f, void *arg)
{
	struct dump *d = arg;
	char line[STATE_LINE_MAX];
	size_t n, plen = strlen(f->path);

	n = (size_t)snprintf(line, sizeof(line), "fid %u %c %u ", f->fid,
			     (char)f->kind, f->oflags);
	if (!plen)
		line[n++] = '-';
	for (size_t i = 0; i < plen && n + 3 < sizeof(line); i++)
		n += (size_t)snprintf(line + n, 3, "%02x",
				      (unsigned char)f->path[i]);
	line[n++] = '\n';
	dump_add(d, line, n);
	return d->err;
}

static int state_build(struct srv *s, struct dump *d)
{
	char head[64];

	snprintf(head, sizeof(head), STATE_MAGIC "\nmsize %u\n", s->msize);
	dump_add(d, head, strlen(head));
	fid_each(s, dump_fid, d);
	dump_add(d, "end\n", 4);
	return d->err;
}

int state_dump(struct srv *s, const char *path, char *err, size_t errlen)
{
	struct dump d = {0};
	int r = state_build(s, &d);

	if (r == 0)
		r = write_file_atomic(path, d.buf, d.len, 0600);
	free(d.buf);
	if (r < 0)
		return err_set(err, errlen, r, "cannot write state '%s': %s",
			       path, strerror(-r));
	return 0;
}

int state_dump_fd(struct srv *s, int fd, char *err, size_t errlen)
{
	struct dump d = {0};
	int r = state_build(s, &d);

	if (r == 0)
		r = write_fd_whole(fd, d.buf, d.len);
	free(d.buf);
	if (r < 0)
		return err_set(err, errlen, r, "cannot write the state: %s",
			       strerror(-r));
	return 0;
}

/* A path as the server makes them: relative, no empty, "." or ".."
 * component, no NUL. */
static bool path_ok(const char *p)
{
	const char *c = p;

	if (!*p)
		return true;
	for (;;) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!c[n])
			return true;
		c += n + 1;
	}
}

static int unhex(const char *hex, char *out, size_t outlen)
{
	size_t n = strlen(hex);

	if (strcmp(hex, "-") == 0) {
		out[0] = '\0';
		return 0;
	}
	if (n % 2 || n / 2 >= outlen)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v == 0 ||
		    !strchr("0123456789abcdef", hex[2 * i]) ||
		    !strchr("0123456789abcdef", hex[2 * i + 1]))
			return -EINVAL;
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return path_ok(out) ? 0 : -EINVAL;
}

static int load_fid(struct srv *s, const char *line)
{
	char kind, hex[2 * SRV_MAX_PATH + 2], path[SRV_MAX_PATH];
	unsigned fid, oflags;
	struct fid *f;
	int r;

	if (strlen(line) >= STATE_LINE_MAX ||
	    sscanf(line, "fid %u %c %u %8193s", &fid, &kind, &oflags, hex) !=
		4 ||
	    !strchr("nfdl", kind) || (oflags & SRV_OPEN_ONCE) ||
	    unhex(hex, path, sizeof(path)) < 0)
		return -EINVAL;
	if ((r = fid_add(s, fid, path, &f)) < 0)
		return r;
	if (kind == 'l' || kind == 'n') {
		f->kind = (enum fid_kind)kind;
		return 0;
	}
	r = srv_open_fid(s, f, oflags);
	if (r < 0) {
		char safe[256];

		log_warn("fid %u: cannot re-open '%s': %s; it fails with "
			 "ESTALE from now on",
			 fid, printable(path, safe, sizeof(safe)),
			 strerror(-r));
		f->kind = FID_LOST;
		f->oflags = oflags;
	}
	return 0;
}

static int load_lines(struct srv *s, char *text)
{
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	uint32_t msize;
	int r;

	if (!line || strcmp(line, STATE_MAGIC) != 0)
		return -EINVAL;
	line = strtok_r(NULL, "\n", &save);
	if (!line || sscanf(line, "msize %u", &msize) != 1 ||
	    msize < NINEP_MIN_MSIZE || msize > s->max_msize)
		return -EINVAL;
	s->msize = msize;
	while ((line = strtok_r(NULL, "\n", &save))) {
		if (strcmp(line, "end") == 0)
			return strtok_r(NULL, "\n", &save) ? -EINVAL : 0;
		if ((r = load_fid(s, line)) < 0)
			return r;
	}
	return -EINVAL; /* no "end": cut short */
}

int state_parse(struct srv *s, char *text, char *err, size_t errlen)
{
	int r = load_lines(s, text);

	if (r < 0) {
		fid_del_all(s);
		return err_set(err, errlen, r, "%s",
			       r == -EINVAL ? "malformed" : strerror(-r));
	}
	return 0;
}
