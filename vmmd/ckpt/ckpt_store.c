/* SPDX-License-Identifier: MIT */
/* The checkpoint store on disk (ckpt_store.h). Does not log. Nothing
 * below the store's own directory is ever reached by a path: each
 * <jobid> and <seq> directory is opened from its parent's fd, not
 * following links, and must be root's only (sfs_open_private_dir). */
#include "ckpt_store.h"

#include "cleanup.h"
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

static const struct {
	const char *name;
	bool required;
} store_files[] = {
    {CKPT_MEMORY, true},
    /* A guest booted from kernel + initrd has no disk. */
    {CKPT_DISK, false},
    {CKPT_FILES, false},
    {CKPT_FILES_PENDING, false},
    {CKPT_OUTPUT, false},
};
_Static_assert(ARRAY_SIZE(store_files) + 2 * CKPT_MAX_MOUNT_FILES ==
		   CKPT_MAX_FILES,
	       "a manifest can list every file a checkpoint may hold");

/* --- opening ------------------------------------------------------------- */

int ckpt_store_open(const char *path, unsigned flags, struct ckpt_store *ret,
		    char *err, size_t errlen)
{
	struct statfs sfs;
	bool trusted = false;
	int fd;

	ckpt_store_close(ret);
	if (str_printf(ret->path, sizeof(ret->path), "%s", path) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "checkpoint store path too long");
	fd = sfs_open_dir_path(path, flags & CKPT_STORE_CREATE ? SFS_CREATE : 0,
			       &trusted);
	if (fd < 0)
		return err_set(err, errlen, fd, "checkpoint store %s: %s%s",
			       path, strerror(-fd),
			       fd == -ELOOP ? " (a symlink on the way)" : "");
	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC) {
		close(fd);
		return err_set(err, errlen, -EPERM,
			       "checkpoint store %s: on a FUSE file system, "
			       "whose owner decides what root sees there",
			       path);
	}
	if ((flags & CKPT_STORE_NODE) && !trusted) {
		close(fd);
		return err_set(err, errlen, -EPERM,
			       "checkpoint store %s: a directory on the way "
			       "is not root's or others may write it; the "
			       "node's store must be root's all the way",
			       path);
	}
	ret->fd = fd;
	ret->trusted = trusted;
	return 0;
}

void ckpt_store_close(struct ckpt_store *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->trusted = false;
}

int ckpt_store_job_dir(const char *root, uint32_t job_id, char *buf, size_t len)
{
	return str_printf(buf, len, "%s/%u", root, job_id);
}

int ckpt_store_seq_dir(const char *root, uint32_t job_id, uint32_t seq,
		       char *buf, size_t len)
{
	return str_printf(buf, len, "%s/%u/%u", root, job_id, seq);
}

/* What is at dir/name instead of a directory of root's only. */
static int not_private(int r, const char *dir, const char *name,
		       const struct stat *st, char *err, size_t errlen)
{
	if (r == -EPERM)
		return err_set(err, errlen, r,
			       "checkpoint store: %s/%s is owned by uid %u "
			       "with mode %04o; vmmd uses only directories of "
			       "root's that no one else may enter (remove it)",
			       dir, name, (unsigned)st->st_uid,
			       (unsigned)(st->st_mode & 07777));
	if (r == -EXDEV)
		return err_set(err, errlen, r,
			       "checkpoint store: %s/%s is a mount point, "
			       "refused",
			       dir, name);
	if (r == -ELOOP || r == -ENOTDIR)
		return err_set(err, errlen, r,
			       "checkpoint store: %s/%s is not a directory "
			       "(a symlink or a file), refused",
			       dir, name);
	return err_set(err, errlen, r, "checkpoint store: %s/%s: %s", dir, name,
		       strerror(-r));
}

static int open_job(const struct ckpt_store *s, uint32_t job_id, bool create,
		    char *err, size_t errlen)
{
	char name[16];
	struct stat st;
	int fd;

	snprintf(name, sizeof(name), "%u", job_id);
	fd = sfs_open_private_dir(s->fd, name, create, 0700, &st);
	if (fd < 0 && err)
		not_private(fd, s->path, name, &st, err, errlen);
	return fd;
}

int ckpt_store_open_seq(const struct ckpt_store *s, uint32_t job_id,
			uint32_t seq, char *dir, size_t dirlen, char *err,
			size_t errlen)
{
	char jdir[VMENV_MAX_PATH], name[16];
	struct stat st;
	int fd;

	if (ckpt_store_job_dir(s->path, job_id, jdir, sizeof(jdir)) < 0 ||
	    ckpt_store_seq_dir(s->path, job_id, seq, dir, dirlen) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: checkpoint path too long", job_id);
	_cleanup_close_ int jfd = open_job(s, job_id, false, err, errlen);
	if (jfd < 0)
		return jfd;
	snprintf(name, sizeof(name), "%u", seq);
	fd = sfs_open_private_dir(jfd, name, false, 0700, &st);
	if (fd < 0)
		return not_private(fd, jdir, name, &st, err, errlen);
	return fd;
}

/* --- walking ------------------------------------------------------------- */

/* Calls fn for every entry of the directory dirfd whose name is a number.
 * Stops at the first negative return. */
static int each_numbered(int dirfd,
			 int (*fn)(void *data, int dirfd, const char *name,
				   uint32_t n),
			 void *data)
{
	DIR *dp = sfs_opendir(dirfd);
	struct dirent *e;
	int r = 0;

	if (!dp)
		return -errno;
	while (r >= 0 && (e = readdir(dp))) {
		uint32_t n;
		if (parse_u32(e->d_name, &n) < 0 || n == 0)
			continue;
		r = fn(data, dirfd, e->d_name, n);
	}
	closedir(dp);
	return r;
}

static bool has_manifest(int dirfd)
{
	struct stat st;

	return fstatat(dirfd, CKPT_MANIFEST, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

struct gc {
	int removed;
	time_t older_than; /* only what nothing touched since */
};

/* The newest mtime of the directory and its files: a save in progress
 * (another vmmd's, on a shared store) keeps writing there. */
static time_t last_touched(int dirfd)
{
	DIR *dp = sfs_opendir(dirfd);
	struct dirent *e;
	struct stat st;
	time_t t = 0;

	if (!dp)
		return time(NULL); /* unknown: not idle */
	if (fstat(dirfd, &st) == 0)
		t = st.st_mtime;
	while ((e = readdir(dp)))
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime > t)
			t = st.st_mtime;
	closedir(dp);
	return t;
}

static int gc_seq(void *data, int jfd, const char *name, uint32_t seq)
{
	struct gc *g = data;
	_cleanup_close_ int fd =
	    sfs_open_private_dir(jfd, name, false, 0700, NULL);

	(void)seq;
	if (fd < 0 || has_manifest(fd) || last_touched(fd) > g->older_than)
		return 0;
	if (rmtree_at(jfd, name) == 0)
		g->removed++;
	return 0;
}

static int gc_job(void *data, int sfd, const char *name, uint32_t job_id)
{
	_cleanup_close_ int fd =
	    sfs_open_private_dir(sfd, name, false, 0700, NULL);

	(void)job_id;
	if (fd < 0)
		return 0; /* not vmmd's: never touched */
	each_numbered(fd, gc_seq, data);
	(void)unlinkat(sfd, name, AT_REMOVEDIR); /* only when empty */
	return 0;
}

int ckpt_store_gc(const struct ckpt_store *s, uint32_t job_id, uint32_t idle_s)
{
	struct gc g = {.older_than = time(NULL) - (time_t)idle_s};
	char name[16];

	if (job_id == 0)
		return each_numbered(s->fd, gc_job, &g) < 0 ? -EIO : g.removed;
	snprintf(name, sizeof(name), "%u", job_id);
	gc_job(&g, s->fd, name, job_id);
	return g.removed;
}

bool ckpt_store_has_job(const struct ckpt_store *s, uint32_t job_id)
{
	char name[16];
	struct stat st;

	snprintf(name, sizeof(name), "%u", job_id);
	return fstatat(s->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int find_latest(void *data, int jfd, const char *name, uint32_t seq)
{
	uint32_t *best = data;
	_cleanup_close_ int fd =
	    sfs_open_private_dir(jfd, name, false, 0700, NULL);

	if (fd >= 0 && has_manifest(fd) && seq > *best)
		*best = seq;
	return 0;
}

int ckpt_store_latest(const struct ckpt_store *s, uint32_t job_id,
		      uint32_t *ret_seq, char *err, size_t errlen)
{
	uint32_t best = 0;
	_cleanup_close_ int jfd = open_job(s, job_id, false, err, errlen);

	if (jfd < 0)
		return jfd;
	each_numbered(jfd, find_latest, &best);
	if (!best)
		return err ? err_set(err, errlen, -ENOENT,
				     "checkpoint store %s: no complete "
				     "checkpoint of job %u",
				     s->path, job_id)
			   : -ENOENT;
	*ret_seq = best;
	return 0;
}

/* --- saving -------------------------------------------------------------- */

int ckpt_store_begin(const struct ckpt_store *s, uint32_t job_id,
		     uint32_t *ret_seq, char *dir, size_t dirlen, char *err,
		     size_t errlen)
{
	char name[16];
	uint32_t seq = 0;
	struct stat st;
	int fd;

	ckpt_store_gc(s, job_id, CKPT_GC_IDLE_S);
	/* The store holds the guest's memory: root only. */
	_cleanup_close_ int jfd = open_job(s, job_id, true, err, errlen);
	if (jfd < 0)
		return jfd;
	each_numbered(jfd, find_latest, &seq);
	if (seq == UINT32_MAX)
		return err_set(err, errlen, -EOVERFLOW,
			       "job %u: no checkpoint number left", job_id);
	seq++;
	snprintf(name, sizeof(name), "%u", seq);
	if (ckpt_store_seq_dir(s->path, job_id, seq, dir, dirlen) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: checkpoint path too long", job_id);
	/* A new directory, never one that was there (another node's save
	 * into a shared store, or anything else). */
	if (mkdirat(jfd, name, 0700) < 0)
		return err_set(err, errlen, -errno,
			       "job %u: cannot create %s: %m", job_id, dir);
	fd = sfs_open_private_dir(jfd, name, false, 0700, &st);
	if (fd < 0)
		return err_set(err, errlen, fd, "job %u: cannot open %s: %s",
			       job_id, dir, strerror(-fd));
	*ret_seq = seq;
	return fd;
}

int ckpt_store_path(const struct ckpt_store *s, int dirfd, const char *dir,
		    const char *name, char *buf, size_t len)
{
	if (!s->trusted)
		return sfs_fd_path(dirfd, name, buf, len);
	return str_printf(buf, len, "%s%s%s", dir, name[0] ? "/" : "", name);
}

/* Size and sha256 of the open file fd. */
static int hash_fd(int fd, const char *name, struct ckpt_file *f)
{
	struct digest *d = NULL;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((r = digest_new(&d)) < 0)
		return r;
	r = digest_fd(d, fd, (uint64_t)st.st_size, NULL, NULL);
	if (r == 0)
		r = digest_final_hex(d, f->sha256);
	digest_free(d);
	/* The save went through the page cache (hv.h) and this read it
	 * again: a checkpoint is read once more, at its restore, maybe on
	 * another node. Its pages (clean since the fsync) would only evict
	 * the node's other jobs' files. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (r < 0)
		return r;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->size = (uint64_t)st.st_size;
	return 0;
}

/* dirfd/name, a plain file of root's with one link, fsync'ed (the
 * manifest must never be durable before what it describes) and hashed;
 * -ENOENT when absent. */
static int hash_file(int dirfd, const char *name, struct ckpt_file *f)
{
	_cleanup_close_ int fd = sfs_open_file(dirfd, name, geteuid());

	if (fd < 0)
		return fd;
	if (fsync(fd) < 0 && errno != EINVAL)
		return -errno;
	return hash_fd(fd, name, f);
}

static int hash_one(int dirfd, const char *dir, const char *name, bool required,
		    struct ckpt_manifest *m, char *err, size_t errlen)
{
	int r;

	if (m->nfiles >= CKPT_MAX_FILES)
		return err_set(err, errlen, -E2BIG,
			       "job %u: checkpoint %s: too many files",
			       m->job_id, dir);
	r = hash_file(dirfd, name, &m->files[m->nfiles]);
	if (r == -ENOENT && !required)
		return 0;
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: checkpoint file %s/%s: %s", m->job_id,
			       dir, name, strerror(-r));
	m->nfiles++;
	return 0;
}

/* The fixed files, then each mount's state and pending requests (a
 * served job's: vmmd/files/jobfiles_served.h). */
static int hash_all(int dirfd, const char *dir, struct ckpt_manifest *m,
		    char *err, size_t errlen)
{
	char name[sizeof(m->files[0].name)];
	int r = 0;

	m->nfiles = 0;
	for (size_t i = 0; i < ARRAY_SIZE(store_files) && r == 0; i++)
		r = hash_one(dirfd, dir, store_files[i].name,
			     store_files[i].required, m, err, errlen);
	for (uint32_t i = 0; i < CKPT_MAX_MOUNT_FILES && r == 0; i++)
		for (int pending = 0; pending < 2 && r == 0; pending++)
			if ((r = ckpt_file_mount_name(i, pending, name,
						      sizeof(name))) == 0)
				r = hash_one(dirfd, dir, name, false, m, err,
					     errlen);
	return r;
}

/* Removes the seq directory name below jfd, the manifest first: a crash
 * in between leaves an incomplete directory for gc, never a broken
 * checkpoint. */
static int drop_seq(int jfd, const char *name)
{
	_cleanup_close_ int fd =
	    sfs_open_private_dir(jfd, name, false, 0700, NULL);

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (unlinkat(fd, CKPT_MANIFEST, 0) < 0 && errno != ENOENT)
		return -errno;
	return rmtree_at(jfd, name);
}

struct older {
	uint32_t keep;
};

static int drop_older(void *data, int jfd, const char *name, uint32_t seq)
{
	const struct older *o = data;

	if (seq < o->keep)
		drop_seq(jfd, name);
	return 0;
}

static int write_manifest(int dirfd, const char *dir, struct ckpt_manifest *m,
			  char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	int r = ckpt_manifest_encode(m, &text);

	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: cannot encode the manifest", m->job_id);
	r = sfs_write_atomic(dirfd, CKPT_MANIFEST, text, strlen(text), 0600);
	if (r < 0)
		return err_set(err, errlen, r, "job %u: cannot write %s/%s: %s",
			       m->job_id, dir, CKPT_MANIFEST, strerror(-r));
	return 0;
}

/* The job directory that holds the seq directory dirfd: its real parent,
 * whatever the job directory is called now (in a user's store the user
 * may rename it, but not move what is inside). */
static int parent_job(int dirfd)
{
	struct stat st;
	_cleanup_close_ int fd =
	    openat(dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return -EPERM;
	return TAKE_FD(fd);
}

int ckpt_store_discard(int dirfd, uint32_t seq)
{
	struct stat a, b;
	char name[16];
	_cleanup_close_ int jfd = parent_job(dirfd);

	if (jfd < 0)
		return jfd;
	snprintf(name, sizeof(name), "%u", seq);
	if (fstat(dirfd, &a) < 0 ||
	    fstatat(jfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ESTALE;
	return rmtree_at(jfd, name);
}

int ckpt_store_drop_older(int dirfd, uint32_t seq)
{
	struct older o = {.keep = seq};
	_cleanup_close_ int jfd = parent_job(dirfd);

	if (jfd < 0)
		return jfd;
	return each_numbered(jfd, drop_older, &o);
}

int ckpt_store_commit_only(int dirfd, const char *dir, struct ckpt_manifest *m,
			   char *err, size_t errlen)
{
	int r;

	m->format = CKPT_FORMAT;
	r = hash_all(dirfd, dir, m, err, errlen);
	if (r == 0)
		r = write_manifest(dirfd, dir, m, err, errlen);
	if (r < 0)
		ckpt_store_discard(dirfd, m->seq);
	return r;
}

int ckpt_store_commit(int dirfd, const char *dir, struct ckpt_manifest *m,
		      char *err, size_t errlen)
{
	struct older o = {.keep = m->seq};
	int r;

	m->format = CKPT_FORMAT;
	r = hash_all(dirfd, dir, m, err, errlen);
	if (r == 0)
		r = write_manifest(dirfd, dir, m, err, errlen);
	if (r < 0) {
		ckpt_store_discard(dirfd, m->seq);
		return r;
	}
	_cleanup_close_ int jfd = parent_job(dirfd);
	if (jfd >= 0)
		each_numbered(jfd, drop_older, &o);
	return 0;
}

/* --- restoring ----------------------------------------------------------- */

int ckpt_store_load(int dirfd, const char *dir, struct ckpt_manifest *ret,
		    char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	char why[256] = "";
	size_t len = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	_cleanup_close_ int fd = sfs_open_file(dirfd, CKPT_MANIFEST, geteuid());
	if (fd < 0)
		return err_set(err, errlen, fd, "checkpoint %s: %s: %s", dir,
			       CKPT_MANIFEST, strerror(-fd));
	r = sfs_read_fd(fd, CKPT_MAX_MANIFEST, &text, &len);
	if (r < 0)
		return err_set(err, errlen, r, "checkpoint %s: %s: %s", dir,
			       CKPT_MANIFEST, strerror(-r));
	r = ckpt_manifest_decode(text, len, ret, why, sizeof(why));
	if (r < 0)
		return err_set(err, errlen, r, "checkpoint %s: %s", dir, why);
	return 0;
}

int ckpt_store_keep(int dirfd, const char *dir, char *err, size_t errlen)
{
	struct ckpt_manifest m;
	int r = ckpt_store_load(dirfd, dir, &m, err, errlen);

	if (r < 0)
		return r;
	m.keep = true;
	r = write_manifest(dirfd, dir, &m, err, errlen);
	ckpt_manifest_clear(&m);
	return r;
}

void ckpt_verified_init(struct ckpt_verified *v)
{
	memset(v, 0, sizeof(*v));
	for (size_t i = 0; i < CKPT_MAX_FILES; i++)
		v->fd[i] = -1;
}

void ckpt_verified_clear(struct ckpt_verified *v)
{
	for (size_t i = 0; i < CKPT_MAX_FILES; i++) {
		if (v->fd[i] >= 0)
			close(v->fd[i]);
		v->fd[i] = -1;
	}
	ckpt_manifest_clear(&v->man);
}

int ckpt_verified_fd(const struct ckpt_verified *v, const char *name,
		     uint64_t *ret_size)
{
	for (size_t i = 0; i < v->man.nfiles && i < CKPT_MAX_FILES; i++)
		if (strcmp(v->man.files[i].name, name) == 0 && v->fd[i] >= 0) {
			if (ret_size)
				*ret_size = v->man.files[i].size;
			return v->fd[i];
		}
	return -ENOENT;
}

/* Opens the listed file once and checks it against the manifest; the fd
 * goes into *ret_fd. */
static int check_file(int dirfd, const char *dir, const struct ckpt_file *want,
		      int *ret_fd, char *err, size_t errlen)
{
	struct ckpt_file got = {0};
	_cleanup_close_ int fd = sfs_open_file(dirfd, want->name, geteuid());
	int r = fd < 0 ? fd : hash_fd(fd, want->name, &got);

	if (r < 0)
		return err_set(err, errlen, -EBADMSG,
			       "checkpoint %s: file '%s': %s", dir, want->name,
			       r == -EINVAL   ? "not a plain file"
			       : r == -EPERM  ? "not root's"
			       : r == -EMLINK ? "has other names (hard links)"
					      : strerror(-r));
	if (got.size != want->size)
		return err_set(err, errlen, -EBADMSG,
			       "checkpoint %s: file '%s' has %llu bytes, the "
			       "manifest says %llu",
			       dir, want->name, (unsigned long long)got.size,
			       (unsigned long long)want->size);
	if (strcmp(got.sha256, want->sha256) != 0)
		return err_set(err, errlen, -EBADMSG,
			       "checkpoint %s: file '%s' is corrupted (sha256 "
			       "%s, the manifest says %s)",
			       dir, want->name, got.sha256, want->sha256);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int check_required(const char *dir, const struct ckpt_manifest *m,
			  char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(store_files); i++) {
		bool found = false;
		for (size_t k = 0; k < m->nfiles; k++)
			found |=
			    strcmp(m->files[k].name, store_files[i].name) == 0;
		if (store_files[i].required && !found)
			return err_set(err, errlen, -EBADMSG,
				       "checkpoint %s: the manifest lists no "
				       "'%s'",
				       dir, store_files[i].name);
	}
	return 0;
}

int ckpt_store_verify(int dirfd, const char *dir, uint32_t job_id, uint32_t uid,
		      struct ckpt_verified *ret, char *err, size_t errlen)
{
	struct ckpt_manifest *m = &ret->man;
	int r;

	ckpt_verified_init(ret);
	r = ckpt_store_load(dirfd, dir, m, err, errlen);
	if (r < 0)
		return r;
	if (m->job_id != job_id || m->uid != uid)
		r = err_set(err, errlen, -EPERM,
			    "checkpoint %s: belongs to job %u of uid %u, not "
			    "job %u of uid %u",
			    dir, m->job_id, m->uid, job_id, uid);
	if (r == 0)
		r = check_required(dir, m, err, errlen);
	for (size_t i = 0; i < m->nfiles && r == 0; i++)
		r = check_file(dirfd, dir, &m->files[i], &ret->fd[i], err,
			       errlen);
	if (r < 0)
		ckpt_verified_clear(ret);
	return r;
}

/* --- removing and listing ------------------------------------------------ */

int ckpt_store_remove(const struct ckpt_store *s, uint32_t job_id, uint32_t seq)
{
	char name[16];
	int r;
	_cleanup_close_ int jfd = open_job(s, job_id, false, NULL, 0);

	if (jfd < 0)
		return jfd == -ENOENT ? 0 : jfd;
	snprintf(name, sizeof(name), "%u", seq);
	r = drop_seq(jfd, name);
	snprintf(name, sizeof(name), "%u", job_id);
	(void)unlinkat(s->fd, name, AT_REMOVEDIR); /* only when empty */
	return r;
}

struct job_list {
	uint32_t *ids;
	size_t n, max;
};

static int add_job(void *data, int dirfd, const char *name, uint32_t id)
{
	struct job_list *l = data;

	(void)dirfd;
	(void)name;
	if (l->n == l->max)
		return -E2BIG;
	l->ids[l->n++] = id;
	return 0;
}

int ckpt_store_jobs(const struct ckpt_store *s, uint32_t **ret, size_t *n,
		    size_t max)
{
	struct job_list l = {.ids = calloc(max ? max : 1, sizeof(uint32_t)),
			     .max = max};
	int r;

	if (!l.ids)
		return -ENOMEM;
	r = each_numbered(s->fd, add_job, &l);
	if (r < 0 && r != -E2BIG) {
		free(l.ids);
		return r;
	}
	*ret = l.ids;
	*n = l.n;
	return 0;
}

int ckpt_store_remove_job(const struct ckpt_store *s, uint32_t job_id)
{
	struct older o = {.keep = UINT32_MAX};
	char name[16];
	_cleanup_close_ int jfd = open_job(s, job_id, false, NULL, 0);

	/* Not root's only: not vmmd's to remove. */
	if (jfd < 0)
		return jfd == -ENOENT ? 0 : jfd;
	each_numbered(jfd, drop_older, &o);
	snprintf(name, sizeof(name), "%u", job_id);
	return rmtree_at(s->fd, name);
}

/* --- limits -------------------------------------------------------------- */

struct kept_scan {
	const struct ckpt_store *s;
	uint32_t uid, except;
	struct ckpt_kept *k;
};

static int kept_job(void *data, int sfd, const char *name, uint32_t job_id)
{
	struct kept_scan *ks = data;
	struct ckpt_manifest m;
	char dir[VMENV_MAX_PATH];
	uint32_t seq;

	(void)sfd;
	(void)name;
	if (job_id == ks->except ||
	    ckpt_store_latest(ks->s, job_id, &seq, NULL, 0) < 0)
		return 0;
	_cleanup_close_ int fd =
	    ckpt_store_open_seq(ks->s, job_id, seq, dir, sizeof(dir), NULL, 0);
	if (fd < 0 || ckpt_store_load(fd, dir, &m, NULL, 0) < 0)
		return 0;
	if (m.uid == ks->uid && m.keep) {
		ks->k->count++;
		for (size_t i = 0; i < m.nfiles; i++)
			ks->k->bytes += m.files[i].size;
		ks->k->newest_job =
		    job_id > ks->k->newest_job ? job_id : ks->k->newest_job;
	}
	ckpt_manifest_clear(&m);
	return 0;
}

int ckpt_store_kept(const struct ckpt_store *s, uint32_t uid, uint32_t except,
		    struct ckpt_kept *ret)
{
	struct kept_scan ks = {.s = s, .uid = uid, .except = except, .k = ret};

	memset(ret, 0, sizeof(*ret));
	return each_numbered(s->fd, kept_job, &ks);
}

int ckpt_store_avail(const struct ckpt_store *s, uint64_t *ret)
{
	struct statvfs v;

	if (fstatvfs(s->fd, &v) < 0)
		return -errno;
	*ret = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
	return 0;
}
