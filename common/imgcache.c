/* SPDX-License-Identifier: MIT */
#include "imgcache.h"

#include "catalog.h"
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int efail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int efail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* DIR/a/b: every path in the cache is built here. */
static int sub(const struct imgcache *c, char *buf, size_t len, const char *a,
	       const char *b)
{
	return str_printf(buf, len, "%s/%s%s%s", c->dir, a, b ? "/" : "",
			  b ? b : "");
}

int imgcache_init(struct imgcache *c, const char *dir, uint64_t max_bytes,
		  bool create)
{
	static const struct {
		const char *name;
		mode_t mode;
	} dirs[] = {{"sha256", 0755}, {"locks", 0700}, {"leases", 0755}};
	char p[VMENV_MAX_PATH];
	int r;

	if (!valid_abs_path(dir) ||
	    str_printf(c->dir, sizeof(c->dir), "%s", dir) < 0)
		return -EINVAL;
	c->max_bytes = max_bytes;
	if (!create)
		return 0;
	if ((r = mkdir_p(dir, 0755)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if ((r = sub(c, p, sizeof(p), dirs[i].name, NULL)) < 0)
			return r;
		if (mkdir(p, dirs[i].mode) < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

int imgcache_blob_path(const struct imgcache *c, const char *hex, char *buf,
		       size_t len)
{
	if (!catalog_valid_sha256(hex))
		return -EINVAL;
	return sub(c, buf, len, "sha256", hex);
}

int imgcache_part_path(const struct imgcache *c, const char *hex, char *buf,
		       size_t len)
{
	char name[80];

	if (!catalog_valid_sha256(hex))
		return -EINVAL;
	snprintf(name, sizeof(name), ".%s.part", hex);
	return sub(c, buf, len, "sha256", name);
}

int imgcache_stat(const struct imgcache *c, const char *hex, uint64_t *size)
{
	char p[VMENV_MAX_PATH];
	struct stat st;
	int r = imgcache_blob_path(c, hex, p, sizeof(p));

	if (r < 0)
		return r;
	if (lstat(p, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (size)
		*size = (uint64_t)st.st_size;
	return 0;
}

int imgcache_touch(const struct imgcache *c, const char *hex)
{
	char p[VMENV_MAX_PATH];
	int r = imgcache_blob_path(c, hex, p, sizeof(p));

	if (r < 0)
		return r;
	return utimensat(AT_FDCWD, p, NULL, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
								     : 0;
}

int imgcache_lock(const struct imgcache *c, const char *name, bool wait,
		  const atomic_int *cancel, int *ret_fd)
{
	char p[VMENV_MAX_PATH];
	int r;

	if (strcmp(name, "cache") != 0 && !catalog_valid_sha256(name))
		return -EINVAL;
	char file[80];

	snprintf(file, sizeof(file), "%s.lock", name);
	if ((r = sub(c, p, sizeof(p), "locks", file)) < 0)
		return r;
	_cleanup_close_ int fd =
	    open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (!wait)
			return -EWOULDBLOCK;
		if (cancel && atomic_load(cancel))
			return -ECANCELED;
		/* Polling keeps the wait cancellable (a job that ends while
		 * another process downloads its image). */
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

void imgcache_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

static bool owner_ok(const char *o)
{
	return valid_image_ref(o) && !strchr(o, ':');
}

int imgcache_owner(const char *node, uint32_t job, char *buf, size_t len)
{
	int r = str_printf(buf, len, "%s.%u", node, job);

	return r < 0 ? r : owner_ok(buf) ? 0 : -EINVAL;
}

int imgcache_lease(const struct imgcache *c, const char *hex, const char *owner)
{
	char dir[VMENV_MAX_PATH], p[VMENV_MAX_PATH + 80];
	int lock = -1, fd, r;

	if (!owner_ok(owner) ||
	    (r = sub(c, dir, sizeof(dir), "leases", hex)) < 0 ||
	    !catalog_valid_sha256(hex))
		return -EINVAL;
	/* Under the cache lock, so eviction sees either no blob or the
	 * blob with its lease. */
	if ((r = imgcache_lock(c, "cache", true, NULL, &lock)) < 0)
		return r;
	r = imgcache_stat(c, hex, NULL);
	if (r == 0 && mkdir(dir, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0 && str_printf(p, sizeof(p), "%s/%s", dir, owner) < 0)
		r = -ENAMETOOLONG;
	if (r == 0) {
		fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			r = -errno;
		else
			close(fd);
	}
	if (r == 0)
		r = imgcache_touch(c, hex);
	imgcache_unlock(lock);
	return r;
}

int imgcache_unlease(const struct imgcache *c, const char *hex,
		     const char *owner)
{
	char dir[VMENV_MAX_PATH], p[VMENV_MAX_PATH + 80];
	int r;

	if (!owner_ok(owner) || !catalog_valid_sha256(hex) ||
	    (r = sub(c, dir, sizeof(dir), "leases", hex)) < 0 ||
	    (r = str_printf(p, sizeof(p), "%s/%s", dir, owner)) < 0)
		return -EINVAL;
	if (unlink(p) < 0 && errno != ENOENT)
		return -errno;
	/* The last use of a blob counts from when it ended. */
	imgcache_touch(c, hex);
	return 0;
}

/* NODE.JOBID of this node: the job id, or -EINVAL. */
static int owner_job(const char *name, const char *node, uint32_t *job)
{
	size_t n = strlen(node);

	if (strncmp(name, node, n) != 0 || name[n] != '.')
		return -EINVAL;
	for (const char *p = name + n + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	return parse_u32(name + n + 1, job);
}

static int sweep_one_dir(const char *dir, const char *node,
			 bool (*keep)(void *, uint32_t), void *data)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint32_t job;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char p[VMENV_MAX_PATH + 300];

		if (owner_job(e->d_name, node, &job) < 0 || keep(data, job))
			continue;
		if (str_printf(p, sizeof(p), "%s/%s", dir, e->d_name) == 0 &&
		    unlink(p) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int imgcache_lease_sweep(const struct imgcache *c, const char *node,
			 bool (*keep)(void *data, uint32_t job), void *data)
{
	char top[VMENV_MAX_PATH], dir[VMENV_MAX_PATH];
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (sub(c, top, sizeof(top), "leases", NULL) < 0 || !(d = opendir(top)))
		return 0;
	while ((e = readdir(d))) {
		if (!catalog_valid_sha256(e->d_name) ||
		    str_printf(dir, sizeof(dir), "%s/%s", top, e->d_name) < 0)
			continue;
		n += sweep_one_dir(dir, node, keep, data);
	}
	closedir(d);
	return n;
}

static unsigned count_leases(const struct imgcache *c, const char *hex)
{
	char dir[VMENV_MAX_PATH];
	unsigned n = 0;
	struct dirent *e;
	DIR *d;

	if (sub(c, dir, sizeof(dir), "leases", hex) < 0 || !(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* "<hex>" or ".<hex>.part": fills e->hex and e->partial. */
static bool entry_name(const char *name, struct imgcache_entry *e)
{
	size_t len = strlen(name);

	if (len == 64 && catalog_valid_sha256(name)) {
		memcpy(e->hex, name, 65);
		e->partial = false;
		return true;
	}
	if (len == 70 && name[0] == '.' && strcmp(name + 65, ".part") == 0) {
		memcpy(e->hex, name + 1, 64);
		e->hex[64] = '\0';
		e->partial = true;
		return catalog_valid_sha256(e->hex);
	}
	return false;
}

static int add_entry(struct imgcache_entry **v, size_t *n, size_t *cap,
		     const struct imgcache_entry *e)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct imgcache_entry *nv = realloc(*v, ncap * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *e;
	return 0;
}

int imgcache_list(const struct imgcache *c, struct imgcache_entry **ret,
		  size_t *ret_n)
{
	_cleanup_free_ struct imgcache_entry *v = NULL;
	size_t n = 0, cap = 0;
	char dir[VMENV_MAX_PATH];
	struct dirent *de;
	DIR *d;
	int r = 0;

	if ((r = sub(c, dir, sizeof(dir), "sha256", NULL)) < 0)
		return r;
	if (!(d = opendir(dir)))
		return -errno;
	while ((de = readdir(d)) && r == 0) {
		struct imgcache_entry e = {0};
		struct stat st;

		if (!entry_name(de->d_name, &e) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISREG(st.st_mode))
			continue;
		e.size = (uint64_t)st.st_size;
		e.mtime = st.st_mtim.tv_sec;
		e.leases = e.partial ? 0 : count_leases(c, e.hex);
		r = add_entry(&v, &n, &cap, &e);
	}
	closedir(d);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

uint64_t imgcache_pick_victims(const struct imgcache_entry *e, size_t n,
			       uint64_t max, uint64_t need, bool *evict)
{
	uint64_t total = need;

	for (size_t i = 0; i < n; i++) {
		evict[i] = false;
		total += e[i].size;
	}
	while (total > max) {
		size_t best = n;

		for (size_t i = 0; i < n; i++) {
			if (evict[i] || e[i].leases || e[i].partial)
				continue;
			if (best == n || e[i].mtime < e[best].mtime ||
			    (e[i].mtime == e[best].mtime &&
			     strcmp(e[i].hex, e[best].hex) < 0))
				best = i;
		}
		if (best == n)
			return total - max;
		evict[best] = true;
		total -= e[best].size;
	}
	return 0;
}

/* Removes a blob unless leased: the empty lease directory goes first, so a
 * lease taken meanwhile (it needs the cache lock we hold) cannot exist. */
static int remove_unleased(const struct imgcache *c, const char *hex)
{
	char p[VMENV_MAX_PATH];
	int r;

	if ((r = sub(c, p, sizeof(p), "leases", hex)) < 0)
		return r;
	if (rmdir(p) < 0 && errno != ENOENT)
		return errno == ENOTEMPTY || errno == EEXIST ? -EBUSY : -errno;
	if ((r = imgcache_blob_path(c, hex, p, sizeof(p))) < 0)
		return r;
	return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
}

static bool stale_part(const struct imgcache *c, const char *hex)
{
	char p[VMENV_MAX_PATH];
	int fd;

	if (imgcache_lock(c, hex, false, NULL, &fd) < 0)
		return false;
	if (imgcache_part_path(c, hex, p, sizeof(p)) == 0)
		unlink(p);
	imgcache_unlock(fd);
	return true;
}

int imgcache_sweep_parts(const struct imgcache *c)
{
	struct imgcache_entry *v = NULL;
	size_t n = 0;
	int removed = 0;

	if (imgcache_list(c, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].partial && stale_part(c, v[i].hex))
			removed++;
	free(v);
	return removed;
}

static int evict_locked(const struct imgcache *c, uint64_t need, char *err,
			size_t errlen)
{
	_cleanup_free_ struct imgcache_entry *v = NULL;
	_cleanup_free_ bool *evict = NULL;
	size_t n = 0;
	uint64_t over;
	int r = imgcache_list(c, &v, &n);

	if (r < 0)
		return efail(err, errlen, r, "cannot list the image cache %s",
			     c->dir);
	if (!(evict = calloc(n ? n : 1, sizeof(*evict))))
		return -ENOMEM;
	over = imgcache_pick_victims(v, n, c->max_bytes, need, evict);
	for (size_t i = 0; i < n; i++)
		if (evict[i] && remove_unleased(c, v[i].hex) < 0)
			over += v[i].size; /* leased meanwhile: still there */
	if (over)
		return efail(err, errlen, -ENOSPC,
			     "the image cache %s is full: %llu MiB more "
			     "needed, the rest is in use by running jobs "
			     "(bound %llu MiB)",
			     c->dir, (unsigned long long)(over >> 20),
			     (unsigned long long)(c->max_bytes >> 20));
	return 0;
}

int imgcache_make_room(const struct imgcache *c, uint64_t need, char *err,
		       size_t errlen)
{
	int lock, r;

	if (need > c->max_bytes)
		return efail(err, errlen, -EFBIG,
			     "%llu MiB do not fit in the image cache (bound "
			     "%llu MiB: image_cache_max_mib)",
			     (unsigned long long)(need >> 20),
			     (unsigned long long)(c->max_bytes >> 20));
	imgcache_sweep_parts(c);
	if ((r = imgcache_lock(c, "cache", true, NULL, &lock)) < 0)
		return efail(err, errlen, r, "cannot lock the image cache %s",
			     c->dir);
	r = evict_locked(c, need, err, errlen);
	imgcache_unlock(lock);
	return r;
}

int imgcache_remove(const struct imgcache *c, const char *hex, char *err,
		    size_t errlen)
{
	int lock, blob, r;

	if (!catalog_valid_sha256(hex))
		return efail(err, errlen, -EINVAL, "not a sha256 digest");
	if (imgcache_stat(c, hex, NULL) < 0)
		return efail(err, errlen, -ENOENT, "%s is not in the cache",
			     hex);
	if ((r = imgcache_lock(c, hex, false, NULL, &blob)) < 0)
		return efail(err, errlen, -EBUSY,
			     "%s is being downloaded right now", hex);
	if ((r = imgcache_lock(c, "cache", true, NULL, &lock)) == 0) {
		r = remove_unleased(c, hex);
		imgcache_unlock(lock);
	}
	imgcache_unlock(blob);
	if (r == -EBUSY)
		return efail(err, errlen, r,
			     "%s is in use by %u running job(s)", hex,
			     count_leases(c, hex));
	return r < 0 ? efail(err, errlen, r, "cannot remove %s: %s", hex,
			     strerror(-r))
		     : 0;
}
