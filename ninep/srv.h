/* SPDX-License-Identifier: MIT */
/*
 * vmenv-9p: the 9P2000.L server of a job's files (vmmd/files/jobfiles.h, kind
 * JOBFILES_SERVED). One process per job, run as the job's user, serving
 * one directory (the share's root) to the guest kernel's 9p client over
 * one connected stream (QEMU's end of a virtio-serial port).
 *
 * A fid is a path relative to the root, never a kernel object: every use
 * resolves it again with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * from the root, so no symlink, ".." or rename on the host can lead a
 * request outside the root, and the whole table can be written to a file
 * and re-opened by another vmenv-9p after a restore (state.c). Open fids
 * also hold the open file (fd), which is what I/O uses.
 */
#ifndef VMENV_NINEP_SRV_H
#define VMENV_NINEP_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "ninep.h"

#define SRV_DEFAULT_MSIZE    (512u * 1024u)
#define SRV_DEFAULT_MAX_FIDS 16384u
#define SRV_FID_BUCKETS	     4096u
#define SRV_MAX_PATH	     4096u

enum fid_kind {
	FID_PATH = 'n', /* walked, not open */
	FID_FILE = 'f', /* open file: fd */
	FID_DIR = 'd',	/* open directory: fd (readdir) */
	FID_LOST = 'l', /* could not be re-opened after a restore */
};

struct fid {
	struct fid *next; /* hash chain */
	uint32_t fid;
	enum fid_kind kind;
	uint32_t oflags; /* 9P open flags, when open */
	int fd;		 /* when open, else -1 */
	char *path;	 /* relative to the root, "" for the root */
};

struct srv {
	int root;  /* O_PATH fd of the share's root */
	int sock;  /* the connection to QEMU */
	dev_t dev; /* the root's device, for qids */
	uint32_t msize, max_msize;
	uint32_t max_fids, nfids;
	/* --read-only: nothing below the root is changed, whatever the
	 * guest mounted it as (ops.c answers EROFS). */
	bool read_only;
	struct fid *bucket[SRV_FID_BUCKETS];
	uint8_t *out; /* one reply, max_msize bytes */
};

/* fids.c */
struct fid *fid_get(struct srv *s, uint32_t fid);
/* -EEXIST when taken, -EMFILE over max_fids, -ENOMEM. path is copied. */
int fid_add(struct srv *s, uint32_t fid, const char *path, struct fid **ret);
void fid_del(struct srv *s, uint32_t fid);
void fid_del_all(struct srv *s);
int fid_set_path(struct fid *f, const char *path);
/* After a rename of from to to: every fid at or under from follows. */
int fid_renamed(struct srv *s, const char *from, const char *to);
/* Calls fn on every fid (for the state dump); stops at an error. */
int fid_each(struct srv *s, int (*fn)(struct fid *f, void *arg), void *arg);

/* resolve.c: every lookup below the root. */
/* Opens path (relative, "" = root) with flags (O_NOFOLLOW and O_CLOEXEC
 * are added): -errno, ELOOP for any symlink on the way, EXDEV for an
 * escape. */
int res_open(const struct srv *s, const char *path, int flags, mode_t mode);
/* The parent directory of path (O_PATH) and a pointer to its last
 * component in path. -EINVAL for the root. */
int res_parent(const struct srv *s, const char *path, const char **ret_base);
/* path + "/" + name (name: one checked component) into buf. */
int res_join(char *buf, size_t len, const char *path,
	     const struct ninep_str *name);
/* The parent of path ("" stays ""). */
void res_dirname(char *buf, size_t len, const char *path);
int res_stat(const struct srv *s, const char *path, struct stat *st);
void res_qid(const struct srv *s, const struct stat *st, struct ninep_qid *q);

/* ops.c: serves one decoded request, the reply into s->out. Returns the
 * reply's length. */
size_t srv_handle(struct srv *s, const struct ninep_req *q);
/* One whole message of size bytes (its size field, already checked
 * against msize by ninep_msg_size): decoded and served, or answered
 * Rlerror when it does not decode. The reply is in s->out; returns its
 * length. What the stream loop (main.c) and the server's fuzzer
 * (test/fuzz/fuzz_ninepsrv.c) call per request. */
size_t srv_serve_msg(struct srv *s, const uint8_t *msg, uint32_t size);
/* Maps 9P open flags to open(2)'s (only those that make sense here). */
int srv_open_flags(uint32_t oflags);
/* 9P open flags that act once, at the open: a fid records its flags
 * without them, and a re-open after a restore must not act again (a
 * state that holds them was not written by a server). */
#define SRV_OPEN_ONCE (NINEP_O_CREAT | NINEP_O_EXCL | NINEP_O_TRUNC)
/* Opens fid f (its path) with 9P flags: the common part of lopen and of
 * re-opening after a restore. A read-only server refuses any open for
 * writing or truncating (-EROFS). */
int srv_open_fid(struct srv *s, struct fid *f, uint32_t oflags);

/* state.c */
int state_dump(struct srv *s, const char *path, char *err, size_t errlen);
/* The same into a file kept open (write_fd_whole). */
int state_dump_fd(struct srv *s, int fd, char *err, size_t errlen);
/* text: the file's content (NUL-terminated; parsed in place). */
int state_parse(struct srv *s, char *text, char *err, size_t errlen);

#endif
