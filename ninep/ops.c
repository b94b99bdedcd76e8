// SPDX-License-Identifier: MIT
/*
 * The requests: session (version, attach, flush, clunk), walk and
 * attributes here; I/O in ops_io.c; directory changes in ops_dir.c. Each
 * handler returns 0 with its reply in o, or -errno, answered as Rlerror
 * (the guest runs Linux: errno values are the same).
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

/* A fid that exists and was not lost in a restore. */
int ops_fid(struct srv *s, uint32_t fid, struct fid **ret)
{
	struct fid *f = fid_get(s, fid);

	if (!f)
		return -EBADF;
	if (f->kind == FID_LOST)
		return -ESTALE;
	*ret = f;
	return 0;
}

/* The object of fid f: its open file when it has one (which also works
 * for a file unlinked since it was opened), else its path. */
int ops_stat(struct srv *s, const struct fid *f, struct stat *st)
{
	if (f->fd >= 0)
		return fstat(f->fd, st) < 0 ? -errno : 0;
	return res_stat(s, f->path, st);
}

static int h_version(struct srv *s, const struct ninep_req *q,
		     struct ninep_out *o)
{
	static const char v[] = "9P2000.L";
	bool ok = q->name.len == sizeof(v) - 1 &&
		  memcmp(q->name.p, v, q->name.len) == 0;

	/* A new session: whatever the old one left goes. */
	fid_del_all(s);
	if (q->msize < NINEP_MIN_MSIZE)
		return -EINVAL;
	s->msize = q->msize < s->max_msize ? q->msize : s->max_msize;
	ninep_put_u32(o, s->msize);
	ninep_put_str(o, ok ? v : "unknown", ok ? sizeof(v) - 1 : 7);
	return 0;
}

/* Every attach gets the root, whatever user it names: the server acts as
 * the job's user only, and the kernel client checks permissions on its
 * side too (access=user). */
static int h_attach(struct srv *s, const struct ninep_req *q,
		    struct ninep_out *o)
{
	struct ninep_qid qid;
	struct stat st;
	struct fid *f;
	int r;

	if (q->newfid != NINEP_NOFID)
		return -EOPNOTSUPP;
	if ((r = res_stat(s, "", &st)) < 0 ||
	    (r = fid_add(s, q->fid, "", &f)) < 0)
		return r;
	res_qid(s, &st, &qid);
	ninep_put_qid(o, &qid);
	return 0;
}

static int h_flush(struct srv *s, const struct ninep_req *q,
		   struct ninep_out *o)
{
	/* Each request is answered before the next is read: nothing to
	 * flush. */
	(void)s, (void)q, (void)o;
	return 0;
}

static int h_clunk(struct srv *s, const struct ninep_req *q,
		   struct ninep_out *o)
{
	(void)o;
	if (!fid_get(s, q->fid))
		return -EBADF;
	fid_del(s, q->fid);
	return 0;
}

/* One step of a walk: ".." goes up (never above the root), a name goes
 * down; the result must exist. */
static int walk_step(struct srv *s, char *path, const struct ninep_str *name,
		     struct ninep_qid *qid)
{
	char next[SRV_MAX_PATH];
	struct stat st;
	int r;

	if (name->len == 2 && name->p[0] == '.' && name->p[1] == '.')
		res_dirname(next, sizeof(next), path);
	else if (!ninep_name_ok(name))
		return -EINVAL;
	else if ((r = res_join(next, sizeof(next), path, name)) < 0)
		return r;
	if ((r = res_stat(s, next, &st)) < 0)
		return r;
	res_qid(s, &st, qid);
	strcpy(path, next);
	return 0;
}

static int h_walk(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct ninep_qid qid[NINEP_MAX_WELEM];
	char path[SRV_MAX_PATH];
	struct fid *f, *nf;
	uint16_t n;
	int r = 0;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (f->kind != FID_PATH)
		return -EBUSY;
	if (q->newfid != q->fid && fid_get(s, q->newfid))
		return -EEXIST;
	snprintf(path, sizeof(path), "%s", f->path);
	for (n = 0; n < q->nwname; n++)
		if ((r = walk_step(s, path, &q->wname[n], &qid[n])) < 0)
			break;
	if (n == 0 && q->nwname > 0)
		return r;
	/* A partial walk answers the qids found and leaves newfid alone. */
	if (n == q->nwname) {
		if (q->newfid == q->fid)
			r = fid_set_path(f, path);
		else
			r = fid_add(s, q->newfid, path, &nf);
		if (r < 0)
			return r;
	}
	ninep_put_u16(o, n);
	for (uint16_t i = 0; i < n; i++)
		ninep_put_qid(o, &qid[i]);
	return 0;
}

static int h_getattr(struct srv *s, const struct ninep_req *q,
		     struct ninep_out *o)
{
	struct ninep_stat ns = {.valid = NINEP_GETATTR_BASIC};
	struct stat st;
	struct fid *f;
	int r;

	if ((r = ops_fid(s, q->fid, &f)) < 0 || (r = ops_stat(s, f, &st)) < 0)
		return r;
	res_qid(s, &st, &ns.qid);
	ns.mode = st.st_mode;
	ns.uid = st.st_uid;
	ns.gid = st.st_gid;
	ns.nlink = st.st_nlink;
	ns.rdev = st.st_rdev;
	ns.size = (uint64_t)st.st_size;
	ns.blksize = (uint64_t)st.st_blksize;
	ns.blocks = (uint64_t)st.st_blocks;
	ns.atime_sec = (uint64_t)st.st_atim.tv_sec;
	ns.atime_nsec = (uint64_t)st.st_atim.tv_nsec;
	ns.mtime_sec = (uint64_t)st.st_mtim.tv_sec;
	ns.mtime_nsec = (uint64_t)st.st_mtim.tv_nsec;
	ns.ctime_sec = (uint64_t)st.st_ctim.tv_sec;
	ns.ctime_nsec = (uint64_t)st.st_ctim.tv_nsec;
	ninep_put_stat(o, &ns);
	return 0;
}

static int h_statfs(struct srv *s, const struct ninep_req *q,
		    struct ninep_out *o)
{
	struct ninep_statfs nf;
	struct statfs sf;
	struct fid *f;
	int r;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (fstatfs(s->root, &sf) < 0)
		return -errno;
	nf = (struct ninep_statfs){
	    .type = (uint32_t)sf.f_type,
	    .bsize = (uint32_t)sf.f_bsize,
	    .blocks = sf.f_blocks,
	    .bfree = sf.f_bfree,
	    .bavail = sf.f_bavail,
	    .files = sf.f_files,
	    .ffree = sf.f_ffree,
	    .fsid = (uint64_t)(uint32_t)sf.f_fsid.__val[0] |
		    (uint64_t)(uint32_t)sf.f_fsid.__val[1] << 32,
	    .namelen = (uint32_t)sf.f_namelen,
	};
	ninep_put_statfs(o, &nf);
	return 0;
}

/* Refused: the guest has no business creating devices or FIFOs in the
 * job's directory, and xattrs are not served. */
static int h_refuse(struct srv *s, const struct ninep_req *q,
		    struct ninep_out *o)
{
	(void)s, (void)o;
	return q->type == NINEP_TMKNOD ? -EPERM : -EOPNOTSUPP;
}

/* Locks are the guest kernel's: it takes each lock locally before asking
 * the server, so processes in the guest exclude each other; the server
 * grants everything (processes on the host do not see the guest's
 * locks; docs/checkpoint-files.md). */
static int h_lock(struct srv *s, const struct ninep_req *q, struct ninep_out *o)
{
	struct fid *f;
	int r;

	if ((r = ops_fid(s, q->fid, &f)) < 0)
		return r;
	if (q->type == NINEP_TLOCK) {
		ninep_put_u8(o, NINEP_LOCK_SUCCESS);
		return 0;
	}
	ninep_put_u8(o, NINEP_LOCK_UNLCK);
	ninep_put_u64(o, q->start);
	ninep_put_u64(o, q->length);
	ninep_put_u32(o, q->proc_id);
	ninep_put_str(o, q->name.p, q->name.len);
	return 0;
}

typedef int (*handler_fn)(struct srv *, const struct ninep_req *,
			  struct ninep_out *);

static const handler_fn handlers[256] = {
    [NINEP_TVERSION] = h_version,   [NINEP_TATTACH] = h_attach,
    [NINEP_TAUTH] = h_refuse,	    [NINEP_TFLUSH] = h_flush,
    [NINEP_TCLUNK] = h_clunk,	    [NINEP_TWALK] = h_walk,
    [NINEP_TGETATTR] = h_getattr,   [NINEP_TSETATTR] = ops_setattr,
    [NINEP_TSTATFS] = h_statfs,	    [NINEP_TLOPEN] = ops_lopen,
    [NINEP_TLCREATE] = ops_lcreate, [NINEP_TREAD] = ops_read,
    [NINEP_TWRITE] = ops_write,	    [NINEP_TREADDIR] = ops_readdir,
    [NINEP_TFSYNC] = ops_fsync,	    [NINEP_TREADLINK] = ops_readlink,
    [NINEP_TMKDIR] = ops_mkdir,	    [NINEP_TSYMLINK] = ops_symlink,
    [NINEP_TLINK] = ops_link,	    [NINEP_TUNLINKAT] = ops_unlinkat,
    [NINEP_TREMOVE] = ops_remove,   [NINEP_TRENAMEAT] = ops_renameat,
    [NINEP_TRENAME] = ops_rename,   [NINEP_TMKNOD] = h_refuse,
    [NINEP_TXATTRWALK] = h_refuse,  [NINEP_TXATTRCREATE] = h_refuse,
    [NINEP_TLOCK] = h_lock,	    [NINEP_TGETLOCK] = h_lock,
};

/* The requests that change something below the root: a read-only server
 * (--read-only, a ":ro" mount) answers them EROFS, whatever the guest
 * mounted the share as (its root may remount it read-write). Opens for
 * writing are refused by srv_open_fid. */
static bool changes_files(uint8_t type)
{
	switch (type) {
	case NINEP_TSETATTR:
	case NINEP_TLCREATE:
	case NINEP_TWRITE:
	case NINEP_TMKDIR:
	case NINEP_TSYMLINK:
	case NINEP_TLINK:
	case NINEP_TUNLINKAT:
	case NINEP_TREMOVE:
	case NINEP_TRENAMEAT:
	case NINEP_TRENAME:
	case NINEP_TMKNOD:
	case NINEP_TXATTRCREATE:
		return true;
	default:
		return false;
	}
}

size_t srv_handle(struct srv *s, const struct ninep_req *q)
{
	struct ninep_out o;
	handler_fn h = handlers[q->type];
	int r = -EOPNOTSUPP;

	ninep_reply_begin(&o, s->out, s->msize, (uint8_t)(q->type + 1), q->tag);
	if (s->read_only && changes_files(q->type)) {
		/* Tremove clunks its fid whatever the answer. */
		if (q->type == NINEP_TREMOVE)
			fid_del(s, q->fid);
		r = -EROFS;
	} else if (h) {
		r = h(s, q, &o);
	}
	if (r == 0 && (r = ninep_reply_end(&o)) > 0)
		return (size_t)r;
	return ninep_rlerror(s->out, q->tag, (uint32_t)-r);
}

size_t srv_serve_msg(struct srv *s, const uint8_t *msg, uint32_t size)
{
	struct ninep_req q;
	int r = ninep_decode(msg, size, s->msize, &q);

	if (r < 0)
		return ninep_rlerror(s->out, q.tag, (uint32_t)-r);
	return srv_handle(s, &q);
}
