/* SPDX-License-Identifier: MIT */
/* Kept overlays: the store, the records, the limits (ovkeep_store.h). */
#include "ovkeep_store.h"

#include "overlay.h"

#include "catalog.h"
#include "cleanup.h"
#include "rmtree.h"
#include "safefs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- the record ---------------------------------------------------------- */

int ovkeep_rec_format(const struct ovkeep_rec *r, char *buf, size_t len)
{
	return str_printf(buf, len,
			  "job %" PRIu32 "\nuid %" PRIu32 "\nnode %s\n"
			  "created %" PRId64 "\nbytes %" PRIu64 "\n"
			  "image %s\nbase_hex %s\nbase %s\n",
			  r->job, r->uid, r->node, r->created, r->bytes,
			  r->image, r->base_hex, r->base);
}

enum rkey { K_JOB, K_UID, K_NODE, K_CREATED, K_BYTES, K_IMAGE, K_HEX, K_BASE };

static const char *const rkeys[] = {
    [K_JOB] = "job",	     [K_UID] = "uid",	  [K_NODE] = "node",
    [K_CREATED] = "created", [K_BYTES] = "bytes", [K_IMAGE] = "image",
    [K_HEX] = "base_hex",    [K_BASE] = "base",
};

static int set_str(char *dst, size_t len, const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return str_printf(dst, len, "%s", v) < 0 ? -EINVAL : 0;
}

static int set_key(struct ovkeep_rec *r, enum rkey k, const char *v)
{
	int64_t n;

	switch (k) {
	case K_JOB:
		return parse_u32(v, &r->job);
	case K_UID:
		return parse_u32(v, &r->uid);
	case K_CREATED:
	case K_BYTES:
		if (parse_i64(v, &n) < 0 || n < 0)
			return -EINVAL;
		if (k == K_CREATED)
			r->created = n;
		else
			r->bytes = (uint64_t)n;
		return 0;
	case K_NODE:
		return set_str(r->node, sizeof(r->node), v);
	case K_IMAGE:
		return set_str(r->image, sizeof(r->image), v);
	case K_HEX:
		return *v && !catalog_valid_sha256(v)
			   ? -EINVAL
			   : set_str(r->base_hex, sizeof(r->base_hex), v);
	case K_BASE:
		return set_str(r->base, sizeof(r->base), v);
	}
	return -EINVAL;
}

static int parse_line(struct ovkeep_rec *r, char *line, unsigned *seen)
{
	char *sp = strchr(line, ' ');

	if (!sp)
		return -EINVAL;
	*sp = '\0';
	for (size_t k = 0; k < ARRAY_SIZE(rkeys); k++) {
		if (strcmp(line, rkeys[k]) != 0)
			continue;
		if (*seen & (1u << k))
			return -EINVAL;
		*seen |= 1u << k;
		return set_key(r, (enum rkey)k, sp + 1);
	}
	return -EINVAL;
}

int ovkeep_rec_parse(const char *text, struct ovkeep_rec *ret)
{
	struct ovkeep_rec r = {0};
	_cleanup_free_ char *copy = strdup(text);
	unsigned seen = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	/* Every line ends with a newline: a cut file is refused. */
	if (!*text || text[strlen(text) - 1] != '\n')
		return -EINVAL;
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		if (parse_line(&r, l, &seen) < 0)
			return -EINVAL;
	if (seen != (1u << ARRAY_SIZE(rkeys)) - 1 || !r.job)
		return -EINVAL;
	*ret = r;
	return 0;
}

int ovkeep_lease_owner(const char *node, uint32_t job, char *buf, size_t len)
{
	int r = str_printf(buf, len, "%s.%" PRIu32 "%s", node, job,
			   OVKEEP_LEASE_SUFFIX);

	return r < 0 ? r : valid_image_ref(buf) ? 0 : -EINVAL;
}

/* --- names --------------------------------------------------------------- */

static int name_of(uint32_t job, const char *ext, char *buf, size_t len)
{
	return str_printf(buf, len, "%" PRIu32 ".%s", job, ext);
}

/* "<job>.<ext>" with a job id in canonical form: the id, else 0. */
static uint32_t job_of(const char *name, const char *ext)
{
	const char *dot = strchr(name, '.');
	char digits[16];
	uint32_t job;

	if (!dot || strcmp(dot + 1, ext) != 0 || dot == name ||
	    (size_t)(dot - name) >= sizeof(digits) || name[0] == '0')
		return 0;
	memcpy(digits, name, (size_t)(dot - name));
	digits[dot - name] = '\0';
	for (const char *p = digits; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return parse_u32(digits, &job) < 0 ? 0 : job;
}

/* A plain file of root's (this process's euid) with one link, not
 * followed: its size, or -errno. */
static int64_t plain_size(int sfd, const char *name)
{
	struct stat st;

	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return S_ISLNK(st.st_mode) ? -ELOOP : -EINVAL;
	if (st.st_uid != geteuid())
		return -EPERM;
	if (st.st_nlink != 1)
		return -EMLINK;
	return (int64_t)st.st_size;
}

/* --- the store ----------------------------------------------------------- */

int ovkeep_store_open(const char *run_dir, bool create)
{
	_cleanup_close_ int rfd = sfs_open_dir_path(run_dir, 0, NULL);

	if (rfd < 0)
		return rfd;
	return sfs_open_private_dir(rfd, OVKEEP_DIR, create, 0700, NULL);
}

/* Renames the checked overlay to qname: the name moved must still be
 * the file checked, with no other name. */
static int move_in(int disk_dfd, int sfd, int fd, const struct stat *st,
		   const char *qname)
{
	struct stat moved, now;

	if (renameat(disk_dfd, OVERLAY_NAME, sfd, qname) < 0)
		return -errno;
	if (fstatat(sfd, qname, &moved, AT_SYMLINK_NOFOLLOW) < 0 ||
	    moved.st_dev != st->st_dev || moved.st_ino != st->st_ino) {
		/* Replaced between the check and the rename: not ours. */
		unlinkat(sfd, qname, 0);
		return -ESTALE;
	}
	/* Root's from now on, whoever's it was. */
	if (fstat(fd, &now) < 0 || now.st_nlink != 1 ||
	    fchown(fd, geteuid(), getegid()) < 0 || fchmod(fd, 0600) < 0) {
		unlinkat(sfd, qname, 0);
		return -EMLINK;
	}
	return 0;
}

int ovkeep_store_put(int sfd, int disk_dfd, struct ovkeep_rec *rec)
{
	char qname[32], rname[32], text[OVKEEP_MAX_REC];
	struct stat st;
	_cleanup_close_ int fd = overlay_open_checked(disk_dfd, rec->uid, &st);
	int r;

	if (fd < 0)
		return fd;
	if (name_of(rec->job, "qcow2", qname, sizeof(qname)) < 0 ||
	    name_of(rec->job, "rec", rname, sizeof(rname)) < 0)
		return -EINVAL;
	/* An older record of the job is the caller's to remove first; one
	 * left here would describe this overlay wrongly. */
	if (unlinkat(sfd, rname, 0) < 0 && errno != ENOENT)
		return -errno;
	rec->bytes = (uint64_t)st.st_size;
	if ((r = ovkeep_rec_format(rec, text, sizeof(text))) < 0)
		return r;
	if ((r = move_in(disk_dfd, sfd, fd, &st, qname)) < 0)
		return r;
	r = sfs_write_atomic(sfd, rname, text, strlen(text), 0600);
	if (r < 0)
		unlinkat(sfd, qname, 0);
	return r;
}

int ovkeep_store_get(int sfd, uint32_t job, struct ovkeep_rec *ret)
{
	char rname[32];
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	struct ovkeep_rec r;
	size_t len;
	int e;

	if (name_of(job, "rec", rname, sizeof(rname)) < 0)
		return -EINVAL;
	fd = sfs_open_file(sfd, rname, geteuid());
	if (fd < 0)
		return fd;
	if ((e = sfs_read_fd(fd, OVKEEP_MAX_REC, &text, &len)) < 0)
		return e;
	if (strlen(text) != len || ovkeep_rec_parse(text, &r) < 0 ||
	    r.job != job)
		return -EBADMSG;
	*ret = r;
	return 0;
}

int ovkeep_store_open_for(int sfd, uint32_t job, uid_t asker,
			  struct ovkeep_rec *ret)
{
	char qname[32];
	struct ovkeep_rec r;
	struct stat st;
	int fd, e = ovkeep_store_get(sfd, job, &r);

	if (e < 0)
		return e;
	*ret = r;
	/* Identity is the caller's (SO_PEERCRED); the record is root's. */
	if (asker != 0 && asker != r.uid)
		return -EACCES;
	if (name_of(job, "qcow2", qname, sizeof(qname)) < 0)
		return -EINVAL;
	fd = sfs_open_file(sfd, qname, geteuid());
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) == 0)
		ret->bytes = (uint64_t)st.st_size;
	return fd;
}

int ovkeep_store_remove(int sfd, uint32_t job)
{
	char qname[32], rname[32];
	int r = 0;

	if (name_of(job, "qcow2", qname, sizeof(qname)) < 0 ||
	    name_of(job, "rec", rname, sizeof(rname)) < 0)
		return -EINVAL;
	/* The record last: an overlay without one is tidied away. */
	if (unlinkat(sfd, qname, 0) < 0 && errno != ENOENT)
		r = -errno;
	if (unlinkat(sfd, rname, 0) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

static int by_created(const void *a, const void *b)
{
	const struct ovkeep_rec *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->job < y->job ? -1 : x->job > y->job;
}

static int add_rec(struct ovkeep_rec **v, size_t *n, size_t *cap,
		   const struct ovkeep_rec *r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct ovkeep_rec *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *r;
	return 0;
}

int ovkeep_store_list(int sfd, struct ovkeep_rec **ret, size_t *ret_n)
{
	DIR *dir = sfs_opendir(sfd);
	struct ovkeep_rec *v = NULL, r;
	size_t n = 0, cap = 0;
	struct dirent *e;
	char qname[32];
	int err = 0;

	if (!dir)
		return -errno;
	while (!err && (e = readdir(dir)) && n < OVKEEP_MAX_LIST) {
		uint32_t job = job_of(e->d_name, "rec");
		int64_t size;

		if (!job || ovkeep_store_get(sfd, job, &r) < 0)
			continue;
		name_of(job, "qcow2", qname, sizeof(qname));
		size = plain_size(sfd, qname);
		r.bytes = size < 0 ? 0 : (uint64_t)size;
		err = add_rec(&v, &n, &cap, &r);
	}
	closedir(dir);
	if (err < 0) {
		free(v);
		return err;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_created);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Whether job's pair is whole: a readable record and its overlay. */
static bool whole(int sfd, uint32_t job, struct ovkeep_rec *r, bool *has_rec)
{
	char qname[32];

	*has_rec = ovkeep_store_get(sfd, job, r) == 0;
	name_of(job, "qcow2", qname, sizeof(qname));
	return *has_rec && plain_size(sfd, qname) >= 0;
}

/* One name of the listing: 1 when it went. */
static int tidy_one(int sfd, const char *name, struct ovkeep_rec **v, size_t *n,
		    size_t *cap)
{
	uint32_t job = job_of(name, "rec");
	struct ovkeep_rec r;
	bool has_rec;

	if (!job)
		job = job_of(name, "qcow2");
	if (job && whole(sfd, job, &r, &has_rec))
		return 0;
	if (job) {
		if (has_rec && add_rec(v, n, cap, &r) < 0)
			return -ENOMEM;
		return ovkeep_store_remove(sfd, job) == 0;
	}
	/* Not a name of the store's: removed as it is (a link as a link, a
	 * directory with what is in it, by fd). */
	if (unlinkat(sfd, name, 0) == 0)
		return 1;
	return errno == EISDIR && rmtree_at(sfd, name) == 0;
}

int ovkeep_store_tidy(int sfd, struct ovkeep_rec **ret, size_t *ret_n)
{
	DIR *dir = sfs_opendir(sfd);
	struct ovkeep_rec *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int gone = 0, r = 0;

	if (!dir)
		return -errno;
	while (r >= 0 && (e = readdir(dir))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		r = tidy_one(sfd, e->d_name, &v, &n, &cap);
		gone += r > 0;
	}
	closedir(dir);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return gone;
}

/* --- limits -------------------------------------------------------------- */

enum ovkeep_verdict ovkeep_plan(const struct ovkeep_rec *recs, size_t n,
				uint32_t uid, uint32_t job, uint64_t bytes,
				const struct ovkeep_limits *l, bool *evict)
{
	uint64_t ubytes = 0, total = 0;
	uint32_t ucount = 0;

	memset(evict, 0, n * sizeof(*evict));
	if (l->max == 0)
		return OVKEEP_NONE_ALLOWED;
	if (bytes > l->max_bytes)
		return OVKEEP_TOO_BIG;
	for (size_t i = 0; i < n; i++) {
		/* The job's own older overlay (a requeued job's): replaced. */
		if (recs[i].job == job) {
			evict[i] = true;
			continue;
		}
		total += recs[i].bytes;
		if (recs[i].uid == uid) {
			ucount++;
			ubytes += recs[i].bytes;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (ucount < l->max && ubytes + bytes <= l->max_bytes &&
		    total + bytes <= l->total_bytes)
			break;
		if (evict[i] || recs[i].uid != uid)
			continue;
		evict[i] = true;
		ucount--;
		ubytes -= recs[i].bytes;
		total -= recs[i].bytes;
	}
	if (total + bytes > l->total_bytes) {
		memset(evict, 0, n * sizeof(*evict));
		return OVKEEP_NODE_FULL;
	}
	return OVKEEP_KEEP;
}

bool ovkeep_expired(const struct ovkeep_rec *r, int64_t now,
		    uint32_t retention_s)
{
	return now - r->created >= (int64_t)retention_s;
}
