// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for vmenv-9p's state file (ninep/state.c): the fid
 * table a server wrote at a checkpoint, kept in the checkpoint store with
 * the guest (CKPT_FILES) and parsed by the next server after a restore.
 * The input is that text; it is parsed against a small share (a file, a
 * directory, a symlink out of it, a FIFO) and every fid it names is
 * re-opened there, as after a restore.
 *
 * What must hold: the share is not changed by the parse (a re-open never
 * truncates or creates); every fid is a clean relative path of a known
 * kind, open exactly when it is a file or directory; what loads dumps and
 * loads back to the same fids; no fd is left open once the table is
 * freed. Every log line (a fid that cannot be re-opened is logged with its
 * path) must come out of log_escape without control bytes, and the raw
 * input goes through log_escape too. Built and run by
 * test/fuzz/run-ninepstate-fuzz, which makes the share (FUZZ_NINEP_ROOT).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "srv.h"

#define FD_SCAN	 256
#define MAX_FIDS 64

static int root = -1, memfd = -1;
static volatile size_t sink;

/* What the run script put into the share: name and size. */
static const struct {
	const char *name;
	off_t size;
} share[] = {{"a", 5}, {"d/b", 10}};

/* A log line is escaped: one line, no control byte. */
static void check_line(int prio, const char *msg)
{
	(void)prio;
	for (const unsigned char *p = (const void *)msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_NINEP_ROOT");

	(void)argc;
	(void)argv;
	if (!dir || (root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (memfd = memfd_create("state", MFD_CLOEXEC)) < 0) {
		fprintf(stderr, "fuzz_ninepstate: FUZZ_NINEP_ROOT: a share "
				"made by run-ninepstate-fuzz\n");
		exit(1);
	}
	log_set_sink(check_line);
	return 0;
}

static void open_fds(uint64_t set[FD_SCAN / 64])
{
	memset(set, 0, FD_SCAN / 8);
	for (int fd = 0; fd < FD_SCAN; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			set[fd / 64] |= 1ull << (fd % 64);
}

static void check_share(void)
{
	struct stat st;

	for (size_t i = 0; i < sizeof(share) / sizeof(share[0]); i++)
		if (fstatat(root, share[i].name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    st.st_size != share[i].size)
			abort(); /* the parse changed the user's files */
}

/* A path as the server makes them: relative, no empty, "." or ".."
 * component. */
static bool clean(const char *p)
{
	if (!*p)
		return true;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || strncmp(p, ".", n) == 0 ||
		    strncmp(p, "..", n) == 0)
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

static int check_fid(struct fid *f, void *arg)
{
	bool open = f->kind == FID_FILE || f->kind == FID_DIR;

	(void)arg;
	if (!strchr("nfdl", (int)f->kind) || !clean(f->path) ||
	    strlen(f->path) >= SRV_MAX_PATH || open != (f->fd >= 0) ||
	    (open && fcntl(f->fd, F_GETFD) != FD_CLOEXEC))
		abort();
	return 0;
}

/* The same fid in the reloaded table: the same path and kind, and for
 * an open one the same flags. */
static int same_fid(struct fid *f, void *arg)
{
	struct fid *g = fid_get(arg, f->fid);

	if (!g || strcmp(f->path, g->path) != 0 || f->kind != g->kind ||
	    ((f->kind == FID_FILE || f->kind == FID_DIR) &&
	     f->oflags != g->oflags))
		abort();
	return 0;
}

/* The state of s, as the server writes it, in a malloc'ed string. */
static char *dump(struct srv *s)
{
	char err[256];
	struct stat st;
	char *text;

	if (ftruncate(memfd, 0) < 0 || lseek(memfd, 0, SEEK_SET) < 0 ||
	    state_dump_fd(s, memfd, err, sizeof(err)) < 0 ||
	    fstat(memfd, &st) < 0 || !(text = malloc((size_t)st.st_size + 1)) ||
	    pread(memfd, text, (size_t)st.st_size, 0) != st.st_size)
		abort();
	text[st.st_size] = '\0';
	return text;
}

static struct srv *srv_new(void)
{
	struct srv *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	*s = (struct srv){.root = root,
			  .sock = -1,
			  .msize = 8192,
			  .max_msize = 65536,
			  .max_fids = MAX_FIDS};
	return s;
}

/* What loaded must dump and load back to the same table. */
static void round_trip(struct srv *s)
{
	struct srv *back = srv_new();
	char *text = dump(s), err[256];

	if (state_parse(back, text, err, sizeof(err)) < 0 ||
	    back->nfids != s->nfids || back->msize != s->msize)
		abort();
	fid_each(s, same_fid, back);
	fid_del_all(back);
	free(back);
	free(text);
}

static void escape_raw(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *out = malloc(4 * size + 1);
	size_t n;

	if (!in || !out)
		abort();
	memcpy(in, data, size);
	in[size] = '\0';
	n = log_escape(in, out, 4 * size + 1);
	if (n != strlen(out))
		abort();
	check_line(0, out);
	free(out);
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t before[FD_SCAN / 64], after[FD_SCAN / 64];
	struct srv *s = srv_new();
	char *text = malloc(size + 1), err[256] = "";

	if (!text)
		abort();
	escape_raw(data, size);
	open_fds(before);
	memcpy(text, data, size);
	text[size] = '\0';
	if (state_parse(s, text, err, sizeof(err)) == 0) {
		if (s->nfids > MAX_FIDS || s->msize < NINEP_MIN_MSIZE ||
		    s->msize > s->max_msize)
			abort();
		fid_each(s, check_fid, NULL);
		round_trip(s);
	} else if (s->nfids != 0 || !err[0]) {
		abort();
	}
	check_share();
	fid_del_all(s);
	open_fds(after);
	if (memcmp(before, after, sizeof(before)) != 0)
		abort();
	sink += strlen(err);
	free(text);
	free(s);
	return 0;
}
