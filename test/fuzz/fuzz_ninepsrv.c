// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for vmenv-9p's request handlers (ninep/ops*.c,
 * setattr.c, fids.c, resolve.c): the guest's requests, served in-process
 * by srv_serve_msg() (what the stream loop of ninep/main.c calls per
 * message) against a real directory tree.
 *
 * The input is a sequence of message bodies (type[1] tag[2] fields...)
 * separated by SEP; the harness puts each one's size in front, so that a
 * mutation inside one message leaves the others whole. Each input starts
 * on a fresh tree with fid 0 attached to the root, as after a mount.
 *
 * The tree (FUZZ_NINEPSRV_DIR, or a temp dir under /tmp), made again
 * before every input so that a crash replays alone:
 *
 *   outside/secret, outside/sub/  beside the share: must never change
 *   share/                        the root served
 *     a  d/b  d/e/                files and directories
 *     out -> ../outside           symlinks leading out of the share
 *     abs -> DIR/outside/secret
 *     up -> ..
 *     p                           a FIFO
 *
 * The fuzzer runs as root when its user is: permissions then stop
 * nothing, so only the server's confinement (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, one checked name per *at() call) keeps it in the
 * share. What must hold, after every reply or input:
 *   - nothing beside the share changed: DIR holds exactly outside and
 *     share, and outside/, its entries and their inodes (mode, owner,
 *     size, links, mtime, ctime) are as made;
 *   - every open fid's file is the share or below it (/proc/self/fd);
 *   - every fid's path is clean (relative, no "", "." or ".."
 *     component) and shorter than SRV_MAX_PATH;
 *   - a reply is one well-formed message of at most msize bytes, the
 *     request's tag, its type + 1 or Rlerror with an errno;
 *   - no fd is left open once the fids are gone.
 * fsync and fdatasync are no-ops here: the guest may ask for them at
 * will, and the fuzzer would time the disk. FUZZ_NINEPSRV_TRACE=1
 * prints each request's type and its answer. Built and run by
 * test/fuzz/run-ninepsrv-fuzz.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srv.h"

#define SEP	 "#9P#"
#define SEP_LEN	 4u
#define MSIZE	 65536u
#define MAX_MSGS 256u
#define MAX_FIDS 64u
#define FD_SCAN	 1024

static char dir[PATH_MAX], share_path[PATH_MAX];
static int base_fd = -1, share_fd = -1;
static uid_t share_uid;
static gid_t share_gid;
static uint8_t *msg;
static bool trace; /* FUZZ_NINEPSRV_TRACE: each request and reply */

/* What must not change beside the share. */
#define N_WATCH 4
static const char *const watched[N_WATCH] = {"outside", "outside/secret",
					     "outside/sub", "."};
static struct stat watched_st[N_WATCH];

int fsync(int fd);
int fsync(int fd)
{
	return fcntl(fd, F_GETFD) < 0 ? -1 : 0;
}

int fdatasync(int fd);
int fdatasync(int fd)
{
	return fsync(fd);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_ninepsrv: %s: %s\n", what, strerror(errno));
	abort();
}

/* Empties directory fd, never following a symlink. */
static void rm_contents(int fd)
{
	bool again = true;

	while (again) {
		/* Its own open file: a dup would share the offset. */
		DIR *d = fdopendir(
		    openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		struct dirent *e;

		if (!d)
			die("fdopendir");
		again = false;
		while ((e = readdir(d))) {
			int sub;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			again = true;
			if (unlinkat(fd, e->d_name, 0) == 0)
				continue;
			if (errno != EISDIR)
				die("unlinkat");
			sub = openat(fd, e->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);
			if (sub < 0)
				die("openat");
			rm_contents(sub);
			close(sub);
			if (unlinkat(fd, e->d_name, AT_REMOVEDIR) < 0)
				die("rmdir");
		}
		closedir(d);
	}
}

static void put_file(int at, const char *name, const char *text)
{
	int fd =
	    openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die(name);
	close(fd);
}

static void make_share(void)
{
	char abs[PATH_MAX + 32];

	snprintf(abs, sizeof(abs), "%s/outside/secret", dir);
	rm_contents(share_fd);
	if (fchmod(share_fd, 0755) < 0 ||
	    fchown(share_fd, share_uid, share_gid) < 0)
		die("share");
	put_file(share_fd, "a", "hello");
	if (mkdirat(share_fd, "d", 0755) < 0 ||
	    mkdirat(share_fd, "d/e", 0755) < 0 ||
	    symlinkat("../outside", share_fd, "out") < 0 ||
	    symlinkat(abs, share_fd, "abs") < 0 ||
	    symlinkat("..", share_fd, "up") < 0 ||
	    mkfifoat(share_fd, "p", 0644) < 0)
		die("make_share");
	put_file(share_fd, "d/b", "0123456789");
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mode == b->st_mode &&
	       a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
	       a->st_nlink == b->st_nlink && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The names in directory at/name, sorted, one string. */
static void list_dir(int at, const char *name, char *buf, size_t len)
{
	struct dirent **ents;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	int n = fd < 0 ? -1 : scandirat(fd, ".", &ents, NULL, alphasort);
	size_t used = 0;

	if (n < 0)
		die("list_dir");
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		int w =
		    snprintf(buf + used, len - used, "%s/", ents[i]->d_name);

		if (w > 0 && (size_t)w < len - used)
			used += (size_t)w;
		free(ents[i]);
	}
	free(ents);
	close(fd);
}

static void check_outside(void)
{
	char names[512];
	struct stat st;

	for (int i = 0; i < N_WATCH; i++)
		if (fstatat(base_fd, watched[i], &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !same_inode(&st, &watched_st[i]))
			abort(); /* an escape: something beside the share */
	list_dir(base_fd, ".", names, sizeof(names));
	if (strcmp(names, "./../outside/share/") != 0)
		abort();
	list_dir(base_fd, "outside", names, sizeof(names));
	if (strcmp(names, "./../secret/sub/") != 0)
		abort();
}

/* As root: a tmpfs on the tree, in a mount namespace of this process
 * only (nobody else sees it, it goes with the process). ext4 makes the
 * tree 4 times as slowly, and the tmpfs bounds what the guest writes. */
static void mount_tmpfs(const char *path)
{
	if (geteuid() != 0)
		return;
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("vmenv-fuzz", path, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=256m,mode=0700") < 0)
		fprintf(stderr, "fuzz_ninepsrv: no tmpfs (%s): on '%s'\n",
			strerror(errno), path);
}

static void make_base(void)
{
	const char *env = getenv("FUZZ_NINEPSRV_DIR");
	char tmpl[] = "/tmp/vmenv-fuzz9psrv-tree.XXXXXX";
	int out;

	if (env && (mkdir(env, 0700) == 0 || errno == EEXIST))
		snprintf(dir, sizeof(dir), "%s", env);
	else if (mkdtemp(tmpl))
		snprintf(dir, sizeof(dir), "%s", tmpl);
	else
		die("mkdtemp");
	if (!realpath(dir, share_path))
		die(dir);
	mount_tmpfs(share_path);
	snprintf(dir, sizeof(dir), "%s", share_path);
	if ((base_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die(dir);
	rm_contents(base_fd);
	if (mkdirat(base_fd, "outside", 0755) < 0 ||
	    mkdirat(base_fd, "outside/sub", 0755) < 0 ||
	    mkdirat(base_fd, "share", 0755) < 0)
		die("make_base");
	put_file(base_fd, "outside/secret", "do not touch\n");
	share_fd = openat(base_fd, "share", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (share_fd < 0)
		die("share");
	share_uid = geteuid();
	share_gid = getegid();
	snprintf(share_path, sizeof(share_path), "%s/share", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rlimit rl;

	(void)argc;
	(void)argv;
	/* Deep trees are removed with an fd per level. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	trace = getenv("FUZZ_NINEPSRV_TRACE") != NULL;
	make_base();
	make_share();
	for (int i = 0; i < N_WATCH; i++)
		if (fstatat(base_fd, watched[i], &watched_st[i],
			    AT_SYMLINK_NOFOLLOW) < 0)
			die(watched[i]);
	if (!(msg = malloc(MSIZE)))
		die("malloc");
	return 0;
}

static void open_fds(uint64_t set[FD_SCAN / 64])
{
	memset(set, 0, FD_SCAN / 8);
	for (int fd = 0; fd < FD_SCAN; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			set[fd / 64] |= 1ull << (fd % 64);
}

static bool clean(const char *p)
{
	if (!*p)
		return true;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

/* An open fid's file is the share or below it. */
static void check_fd_inside(int fd)
{
	char link[64], target[PATH_MAX];
	size_t len = strlen(share_path);
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		die("readlink");
	target[n] = '\0';
	if (strncmp(target, share_path, len) != 0 ||
	    (target[len] != '\0' && target[len] != '/'))
		abort(); /* an escape: a fid holds a file outside */
}

static int check_fid(struct fid *f, void *arg)
{
	bool open = f->kind == FID_FILE || f->kind == FID_DIR;

	(void)arg;
	if (!strchr("nfd", (int)f->kind) || !clean(f->path) ||
	    strlen(f->path) >= SRV_MAX_PATH || open != (f->fd >= 0))
		abort();
	if (open)
		check_fd_inside(f->fd);
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* A reply: one message within msize, for this tag, of the request's
 * type + 1 or Rlerror with an errno. */
static void check_reply(const struct srv *s, const uint8_t *req, size_t n)
{
	const uint8_t *r = s->out;
	uint8_t type = r[4];

	if (n < NINEP_HDR_LEN || n > s->msize || le32(r) != n ||
	    r[5] != req[5] || r[6] != req[6])
		abort();
	if (type == NINEP_RLERROR) {
		uint32_t e = n == 11 ? le32(r + 7) : 0;

		if (e == 0 || e >= 4096)
			abort();
	} else if (type != (uint8_t)(req[4] + 1) || (req[4] & 1)) {
		abort();
	}
}

/* Serves one message body (type tag fields) as the stream loop does.
 * false when the server would close the connection. */
static bool serve(struct srv *s, const uint8_t *body, size_t len)
{
	uint32_t size, n;

	if (len + 4 > MSIZE)
		return false;
	n = (uint32_t)(len + 4);
	msg[0] = (uint8_t)n;
	msg[1] = (uint8_t)(n >> 8);
	msg[2] = (uint8_t)(n >> 16);
	msg[3] = (uint8_t)(n >> 24);
	memcpy(msg + 4, body, len);
	if (ninep_msg_size(msg, n, s->msize, &size) < 0)
		return false;
	n = (uint32_t)srv_serve_msg(s, msg, size);
	check_reply(s, msg, n);
	if (trace)
		fprintf(stderr, "fuzz_ninepsrv: %s -> %s %d\n",
			ninep_type_name(msg[4]),
			s->out[4] == NINEP_RLERROR ? "Rlerror" : "ok",
			s->out[4] == NINEP_RLERROR ? (int)le32(s->out + 7) : 0);
	/* The fids this request named (every type has fid first, walk
	 * newfid next); all of them at the end of the input. */
	for (uint32_t at = 7; at + 4 <= n && at <= 11; at += 4) {
		struct fid *f = fid_get(s, le32(msg + at));

		if (f)
			check_fid(f, NULL);
	}
	if (s->nfids > s->max_fids)
		abort();
	return true;
}

/* Tattach of fid 0 to the root, as a mount does first. */
static void attach(struct srv *s)
{
	/* type tag[2] fid[4]=0 afid[4]=NOFID uname="" aname="" n_uname=0 */
	static const char body[] = "\x68\0\0\0\0\0\0\xff\xff\xff\xff"
				   "\0\0\0\0\0\0\0\0";

	if (!serve(s, (const uint8_t *)body, sizeof(body) - 1) ||
	    s->out[4] != NINEP_TATTACH + 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t before[FD_SCAN / 64], after[FD_SCAN / 64];
	static struct srv s;
	const uint8_t *end = data + size;

	make_share();
	open_fds(before);
	s = (struct srv){.root = share_fd,
			 .sock = -1,
			 .dev = watched_st[3].st_dev,
			 .msize = MSIZE,
			 .max_msize = MSIZE,
			 .max_fids = MAX_FIDS};
	if (!(s.out = malloc(MSIZE)))
		abort();
	attach(&s);
	for (unsigned i = 0; i < MAX_MSGS && data < end; i++) {
		const uint8_t *sep =
		    memmem(data, (size_t)(end - data), SEP, SEP_LEN);
		const uint8_t *next = sep ? sep : end;

		if (!serve(&s, data, (size_t)(next - data)))
			break;
		data = sep ? sep + SEP_LEN : end;
	}
	check_outside();
	fid_each(&s, check_fid, NULL);
	fid_del_all(&s);
	if (s.nfids != 0)
		abort();
	free(s.out);
	open_fds(after);
	if (memcmp(before, after, sizeof(before)) != 0)
		abort();
	return 0;
}
