/* SPDX-License-Identifier: MIT */
/* The checkpoint store on disk (ckpt_store.h). Does not log. */
#include "ckpt_store.h"

#include "cleanup.h"
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

int ckpt_store_job_dir(const char *root, uint32_t job_id, char *buf, size_t len)
{
	return str_printf(buf, len, "%s/%u", root, job_id);
}

int ckpt_store_seq_dir(const char *root, uint32_t job_id, uint32_t seq,
		       char *buf, size_t len)
{
	return str_printf(buf, len, "%s/%u/%u", root, job_id, seq);
}

static bool has_manifest(const char *dir)
{
	char p[VMENV_MAX_PATH];
	struct stat st;

	return str_printf(p, sizeof(p), "%s/%s", dir, CKPT_MANIFEST) == 0 &&
	       lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Calls fn for every entry of dir whose name is a number. Stops at the
 * first negative return. */
static int each_numbered(const char *dir,
			 int (*fn)(void *data, const char *path, uint32_t n),
			 void *data)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char p[VMENV_MAX_PATH];
	int r = 0;

	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while (r >= 0 && (e = readdir(dp))) {
		uint32_t n;
		if (parse_u32(e->d_name, &n) < 0 ||
		    str_printf(p, sizeof(p), "%s/%s", dir, e->d_name) < 0)
			continue;
		r = fn(data, p, n);
	}
	closedir(dp);
	return r;
}

struct gc {
	int removed;
	time_t older_than; /* only what nothing touched since */
};

/* The newest mtime of dir and its files: a save in progress (another
 * vmmd's, on a shared store) keeps writing there. */
static time_t last_touched(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	struct stat st;
	time_t t = 0;

	if (!dp)
		return 0;
	if (fstat(dirfd(dp), &st) == 0)
		t = st.st_mtime;
	while ((e = readdir(dp)))
		if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    st.st_mtime > t)
			t = st.st_mtime;
	closedir(dp);
	return t;
}

static int gc_seq(void *data, const char *path, uint32_t seq)
{
	struct gc *g = data;

	(void)seq;
	if (has_manifest(path) || last_touched(path) > g->older_than)
		return 0;
	if (rm_rf(path) == 0)
		g->removed++;
	return 0;
}

static int gc_job(void *data, const char *path, uint32_t job_id)
{
	(void)job_id;
	each_numbered(path, gc_seq, data);
	rmdir(path); /* only when empty */
	return 0;
}

int ckpt_store_gc(const char *root, uint32_t job_id, uint32_t idle_s)
{
	struct gc g = {.older_than = time(NULL) - (time_t)idle_s};
	char dir[VMENV_MAX_PATH];

	if (job_id == 0)
		return each_numbered(root, gc_job, &g) < 0 ? -EIO : g.removed;
	if (ckpt_store_job_dir(root, job_id, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	gc_job(&g, dir, job_id);
	return g.removed;
}

static int find_latest(void *data, const char *path, uint32_t seq)
{
	uint32_t *best = data;

	if (has_manifest(path) && seq > *best)
		*best = seq;
	return 0;
}

int ckpt_store_latest(const char *root, uint32_t job_id, uint32_t *ret_seq)
{
	char dir[VMENV_MAX_PATH];
	uint32_t best = 0;

	if (ckpt_store_job_dir(root, job_id, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	each_numbered(dir, find_latest, &best);
	if (!best)
		return -ENOENT;
	*ret_seq = best;
	return 0;
}

int ckpt_store_begin(const char *root, uint32_t job_id, uint32_t *ret_seq,
		     char *dir, size_t dirlen, char *err, size_t errlen)
{
	char jdir[VMENV_MAX_PATH];
	uint32_t seq = 0;
	int r;

	if (ckpt_store_job_dir(root, job_id, jdir, sizeof(jdir)) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: checkpoint path too long", job_id);
	ckpt_store_gc(root, job_id, CKPT_GC_IDLE_S);
	/* The store holds the guest's memory: root only. */
	if ((r = mkdir_p(jdir, 0700)) < 0)
		return err_set(err, errlen, r, "job %u: cannot create %s: %s",
			       job_id, jdir, strerror(-r));
	ckpt_store_latest(root, job_id, &seq);
	if (seq == UINT32_MAX)
		return err_set(err, errlen, -EOVERFLOW,
			       "job %u: no checkpoint number left", job_id);
	if (ckpt_store_seq_dir(root, job_id, seq + 1, dir, dirlen) < 0)
		return err_set(err, errlen, -ENAMETOOLONG,
			       "job %u: checkpoint path too long", job_id);
	if (mkdir(dir, 0700) < 0)
		return err_set(err, errlen, -errno,
			       "job %u: cannot create %s: %m", job_id, dir);
	*ret_seq = seq + 1;
	return 0;
}

/* Size and sha256 of dir/name; -ENOENT when absent. The file is fsync'ed
 * first: the manifest must never be durable before what it describes. */
static int hash_file(const char *dir, const char *name, struct ckpt_file *f)
{
	char p[VMENV_MAX_PATH];
	struct digest *d = NULL;
	struct stat st;
	int r;

	if (str_printf(p, sizeof(p), "%s/%s", dir, name) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (fsync(fd) < 0 && errno != EINVAL)
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

static int hash_all(const char *dir, struct ckpt_manifest *m, char *err,
		    size_t errlen)
{
	m->nfiles = 0;
	for (size_t i = 0; i < ARRAY_SIZE(store_files); i++) {
		int r =
		    hash_file(dir, store_files[i].name, &m->files[m->nfiles]);
		if (r == -ENOENT && !store_files[i].required)
			continue;
		if (r < 0)
			return err_set(
			    err, errlen, r, "job %u: checkpoint file %s/%s: %s",
			    m->job_id, dir, store_files[i].name, strerror(-r));
		m->nfiles++;
	}
	return 0;
}

struct older {
	uint32_t keep;
};

static int drop_older(void *data, const char *path, uint32_t seq)
{
	const struct older *o = data;

	if (seq < o->keep) {
		char p[VMENV_MAX_PATH];
		/* The manifest first: a crash in between leaves an
		 * incomplete directory for gc, never a broken checkpoint. */
		if (str_printf(p, sizeof(p), "%s/%s", path, CKPT_MANIFEST) == 0)
			unlink(p);
		rm_rf(path);
	}
	return 0;
}

int ckpt_store_commit(const char *root, const char *dir,
		      struct ckpt_manifest *m, char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	char p[VMENV_MAX_PATH], jdir[VMENV_MAX_PATH];
	struct older o = {.keep = m->seq};
	int r;

	m->format = CKPT_FORMAT;
	r = hash_all(dir, m, err, errlen);
	if (r == 0 && (r = ckpt_manifest_encode(m, &text)) < 0)
		err_set(err, errlen, r, "job %u: cannot encode the manifest",
			m->job_id);
	if (r == 0 &&
	    (r = str_printf(p, sizeof(p), "%s/%s", dir, CKPT_MANIFEST)) == 0 &&
	    (r = write_file_atomic(p, text, strlen(text), 0600)) < 0)
		err_set(err, errlen, r, "job %u: cannot write %s: %s",
			m->job_id, p, strerror(-r));
	if (r < 0) {
		rm_rf(dir);
		return r;
	}
	if (ckpt_store_job_dir(root, m->job_id, jdir, sizeof(jdir)) == 0)
		each_numbered(jdir, drop_older, &o);
	return 0;
}

int ckpt_store_load(const char *dir, struct ckpt_manifest *ret, char *err,
		    size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	char p[VMENV_MAX_PATH], why[256] = "";
	size_t len = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (str_printf(p, sizeof(p), "%s/%s", dir, CKPT_MANIFEST) < 0)
		return -ENAMETOOLONG;
	r = read_file_limited(p, CKPT_MAX_MANIFEST, &text, &len);
	if (r < 0)
		return err_set(err, errlen, r, "checkpoint %s: %s: %s", dir,
			       CKPT_MANIFEST, strerror(-r));
	r = ckpt_manifest_decode(text, len, ret, why, sizeof(why));
	if (r < 0)
		return err_set(err, errlen, r, "checkpoint %s: %s", dir, why);
	return 0;
}

static int check_file(const char *dir, const struct ckpt_file *want, char *err,
		      size_t errlen)
{
	struct ckpt_file got = {0};
	int r = hash_file(dir, want->name, &got);

	if (r < 0)
		return err_set(err, errlen, -EBADMSG,
			       "checkpoint %s: file '%s': %s", dir, want->name,
			       strerror(-r));
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

int ckpt_store_verify(const char *dir, uint32_t job_id, uint32_t uid,
		      struct ckpt_manifest *ret, char *err, size_t errlen)
{
	int r = ckpt_store_load(dir, ret, err, errlen);

	if (r < 0)
		return r;
	if (ret->job_id != job_id || ret->uid != uid)
		r = err_set(err, errlen, -EPERM,
			    "checkpoint %s: belongs to job %u of uid %u, not "
			    "job %u of uid %u",
			    dir, ret->job_id, ret->uid, job_id, uid);
	if (r == 0)
		r = check_required(dir, ret, err, errlen);
	for (size_t i = 0; i < ret->nfiles && r == 0; i++)
		r = check_file(dir, &ret->files[i], err, errlen);
	if (r < 0)
		ckpt_manifest_clear(ret);
	return r;
}

int ckpt_store_remove(const char *root, uint32_t job_id, uint32_t seq)
{
	struct older o = {.keep = seq + 1};
	char jdir[VMENV_MAX_PATH], dir[VMENV_MAX_PATH];
	int r;

	if (ckpt_store_job_dir(root, job_id, jdir, sizeof(jdir)) < 0 ||
	    ckpt_store_seq_dir(root, job_id, seq, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	r = drop_older(&o, dir, seq);
	rmdir(jdir);
	return r;
}

struct job_list {
	uint32_t *ids;
	size_t n, max;
};

static int add_job(void *data, const char *path, uint32_t id)
{
	struct job_list *l = data;

	(void)path;
	if (l->n == l->max)
		return -E2BIG;
	l->ids[l->n++] = id;
	return 0;
}

int ckpt_store_jobs(const char *root, uint32_t **ret, size_t *n, size_t max)
{
	struct job_list l = {.ids = calloc(max ? max : 1, sizeof(uint32_t)),
			     .max = max};
	int r;

	if (!l.ids)
		return -ENOMEM;
	r = each_numbered(root, add_job, &l);
	if (r < 0 && r != -E2BIG) {
		free(l.ids);
		return r;
	}
	*ret = l.ids;
	*n = l.n;
	return 0;
}

int ckpt_store_remove_job(const char *root, uint32_t job_id)
{
	struct older o = {.keep = UINT32_MAX};
	char jdir[VMENV_MAX_PATH];

	if (ckpt_store_job_dir(root, job_id, jdir, sizeof(jdir)) < 0)
		return -ENAMETOOLONG;
	each_numbered(jdir, drop_older, &o);
	return rm_rf(jdir);
}
