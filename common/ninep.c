// SPDX-License-Identifier: MIT
#include "ninep.h"

#include <errno.h>
#include <string.h>

/* Bounded little-endian reader; an overrun sets bad and later reads
 * return zero. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint64_t rd_le(struct rd *r, size_t n)
{
	const uint8_t *p = rd_take(r, n);
	uint64_t v = 0;

	for (size_t i = n; p && i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static uint8_t rd_u8(struct rd *r)
{
	return (uint8_t)rd_le(r, 1);
}

static uint16_t rd_u16(struct rd *r)
{
	return (uint16_t)rd_le(r, 2);
}

static uint32_t rd_u32(struct rd *r)
{
	return (uint32_t)rd_le(r, 4);
}

static uint64_t rd_u64(struct rd *r)
{
	return rd_le(r, 8);
}

static struct ninep_str rd_str(struct rd *r)
{
	struct ninep_str s = {"", 0};
	uint16_t len = rd_u16(r);
	const uint8_t *p;

	if (len > NINEP_MAX_STR) {
		r->bad = true;
		return s;
	}
	p = rd_take(r, len);
	if (!p || memchr(p, '\0', len)) {
		r->bad = true;
		return s;
	}
	s.p = (const char *)p;
	s.len = len;
	return s;
}

/* --- one decoder per request ------------------------------------------- */

static void d_version(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->msize = rd_u32(r);
	q->name = rd_str(r);
}

static void d_attach(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->newfid = rd_u32(r);
	q->name = rd_str(r);
	q->name2 = rd_str(r);
	q->n_uname = rd_u32(r);
}

static void d_auth(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->newfid = rd_u32(r);
	q->name = rd_str(r);
	q->name2 = rd_str(r);
	q->n_uname = rd_u32(r);
}

static void d_flush(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->oldtag = rd_u16(r);
}

static void d_walk(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->newfid = rd_u32(r);
	q->nwname = rd_u16(r);
	if (q->nwname > NINEP_MAX_WELEM) {
		r->bad = true;
		return;
	}
	for (uint16_t i = 0; i < q->nwname; i++)
		q->wname[i] = rd_str(r);
}

/* read and readdir: the reply must fit in msize. */
static void d_read(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	q->fid = rd_u32(r);
	q->offset = rd_u64(r);
	q->count = rd_u32(r);
	if (q->count > msize - NINEP_IOHDR_LEN)
		r->bad = true;
}

static void d_write(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->offset = rd_u64(r);
	q->count = rd_u32(r);
	/* The data is in this message, whose size was checked against
	 * msize already. */
	q->data = rd_take(r, q->count);
}

static void d_fid(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
}

static void d_getattr(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->mask = rd_u64(r);
}

static void d_setattr(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->valid = rd_u32(r);
	q->mode = rd_u32(r);
	q->uid = rd_u32(r);
	q->gid = rd_u32(r);
	q->size = rd_u64(r);
	q->atime_sec = rd_u64(r);
	q->atime_nsec = rd_u64(r);
	q->mtime_sec = rd_u64(r);
	q->mtime_nsec = rd_u64(r);
}

static void d_lopen(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->flags = rd_u32(r);
}

static void d_lcreate(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->flags = rd_u32(r);
	q->mode = rd_u32(r);
	q->gid = rd_u32(r);
}

static void d_mkdir(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->mode = rd_u32(r);
	q->gid = rd_u32(r);
}

static void d_symlink(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->name2 = rd_str(r);
	q->gid = rd_u32(r);
}

static void d_mknod(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->mode = rd_u32(r);
	q->major = rd_u32(r);
	q->minor = rd_u32(r);
	q->gid = rd_u32(r);
}

/* link (dfid fid name) and rename (fid dfid name) share a layout. */
static void d_fid2_name(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->newfid = rd_u32(r);
	q->name = rd_str(r);
}

static void d_renameat(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->newfid = rd_u32(r);
	q->name2 = rd_str(r);
}

static void d_unlinkat(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->flags = rd_u32(r);
}

static void d_fsync(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->flags = rd_u32(r);
}

static void d_xattrcreate(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->name = rd_str(r);
	q->size = rd_u64(r);
	q->flags = rd_u32(r);
}

static void d_lock(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->lock_type = rd_u8(r);
	q->flags = rd_u32(r);
	q->start = rd_u64(r);
	q->length = rd_u64(r);
	q->proc_id = rd_u32(r);
	q->name = rd_str(r);
}

static void d_getlock(struct rd *r, struct ninep_req *q, uint32_t msize)
{
	(void)msize;
	q->fid = rd_u32(r);
	q->lock_type = rd_u8(r);
	q->start = rd_u64(r);
	q->length = rd_u64(r);
	q->proc_id = rd_u32(r);
	q->name = rd_str(r);
}

typedef void (*decode_fn)(struct rd *, struct ninep_req *, uint32_t);

static const struct {
	const char *name;
	decode_fn decode;
} types[256] = {
    [NINEP_TSTATFS] = {"statfs", d_fid},
    [NINEP_TLOPEN] = {"lopen", d_lopen},
    [NINEP_TLCREATE] = {"lcreate", d_lcreate},
    [NINEP_TSYMLINK] = {"symlink", d_symlink},
    [NINEP_TMKNOD] = {"mknod", d_mknod},
    [NINEP_TRENAME] = {"rename", d_fid2_name},
    [NINEP_TREADLINK] = {"readlink", d_fid},
    [NINEP_TGETATTR] = {"getattr", d_getattr},
    [NINEP_TSETATTR] = {"setattr", d_setattr},
    [NINEP_TXATTRWALK] = {"xattrwalk", d_fid2_name},
    [NINEP_TXATTRCREATE] = {"xattrcreate", d_xattrcreate},
    [NINEP_TREADDIR] = {"readdir", d_read},
    [NINEP_TFSYNC] = {"fsync", d_fsync},
    [NINEP_TLOCK] = {"lock", d_lock},
    [NINEP_TGETLOCK] = {"getlock", d_getlock},
    [NINEP_TLINK] = {"link", d_fid2_name},
    [NINEP_TMKDIR] = {"mkdir", d_mkdir},
    [NINEP_TRENAMEAT] = {"renameat", d_renameat},
    [NINEP_TUNLINKAT] = {"unlinkat", d_unlinkat},
    [NINEP_TVERSION] = {"version", d_version},
    [NINEP_TAUTH] = {"auth", d_auth},
    [NINEP_TATTACH] = {"attach", d_attach},
    [NINEP_TFLUSH] = {"flush", d_flush},
    [NINEP_TWALK] = {"walk", d_walk},
    [NINEP_TREAD] = {"read", d_read},
    [NINEP_TWRITE] = {"write", d_write},
    [NINEP_TCLUNK] = {"clunk", d_fid},
    [NINEP_TREMOVE] = {"remove", d_fid},
};

const char *ninep_type_name(uint8_t type)
{
	return types[type].name ? types[type].name : "unknown";
}

int ninep_msg_size(const uint8_t *buf, size_t n, uint32_t msize,
		   uint32_t *ret_size)
{
	struct rd r = {buf, n, false};
	uint32_t size = rd_u32(&r);

	if (r.bad || size < NINEP_HDR_LEN || size > msize)
		return -EMSGSIZE;
	*ret_size = size;
	return 0;
}

int ninep_decode(const uint8_t *buf, size_t n, uint32_t msize,
		 struct ninep_req *ret)
{
	struct rd r = {buf, n, false};
	uint32_t size = rd_u32(&r);

	memset(ret, 0, sizeof(*ret));
	ret->name.p = ret->name2.p = "";
	if (r.bad || size != n || n < NINEP_HDR_LEN ||
	    msize < NINEP_MIN_MSIZE || msize > NINEP_MAX_MSIZE)
		return -EPROTO;
	ret->type = rd_u8(&r);
	ret->tag = rd_u16(&r);
	if (!types[ret->type].decode)
		return -EOPNOTSUPP;
	types[ret->type].decode(&r, ret, msize);
	if (r.bad || r.left) {
		uint8_t type = ret->type;
		uint16_t tag = ret->tag;

		memset(ret, 0, sizeof(*ret));
		ret->type = type;
		ret->tag = tag;
		ret->name.p = ret->name2.p = "";
		return -EPROTO;
	}
	return 0;
}

bool ninep_name_ok(const struct ninep_str *s)
{
	if (s->len == 0 || memchr(s->p, '/', s->len))
		return false;
	if (s->len == 1 && s->p[0] == '.')
		return false;
	return !(s->len == 2 && s->p[0] == '.' && s->p[1] == '.');
}

/* --- replies ----------------------------------------------------------- */

static void put_le(struct ninep_out *o, uint64_t v, size_t n)
{
	if (o->err || o->cap - o->len < n) {
		o->err = true;
		return;
	}
	for (size_t i = 0; i < n; i++, v >>= 8)
		o->buf[o->len++] = (uint8_t)v;
}

void ninep_reply_begin(struct ninep_out *o, uint8_t *buf, size_t cap,
		       uint8_t type, uint16_t tag)
{
	o->buf = buf;
	o->cap = cap;
	o->len = 0;
	o->err = false;
	put_le(o, 0, 4);
	put_le(o, type, 1);
	put_le(o, tag, 2);
}

void ninep_put_u8(struct ninep_out *o, uint8_t v)
{
	put_le(o, v, 1);
}

void ninep_put_u16(struct ninep_out *o, uint16_t v)
{
	put_le(o, v, 2);
}

void ninep_put_u32(struct ninep_out *o, uint32_t v)
{
	put_le(o, v, 4);
}

void ninep_put_u64(struct ninep_out *o, uint64_t v)
{
	put_le(o, v, 8);
}

void ninep_put_str(struct ninep_out *o, const char *s, size_t len)
{
	if (len > UINT16_MAX) {
		o->err = true;
		return;
	}
	put_le(o, len, 2);
	if (o->err || o->cap - o->len < len) {
		o->err = true;
		return;
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
}

void ninep_put_qid(struct ninep_out *o, const struct ninep_qid *q)
{
	put_le(o, q->type, 1);
	put_le(o, q->version, 4);
	put_le(o, q->path, 8);
}

void ninep_put_stat(struct ninep_out *o, const struct ninep_stat *st)
{
	const uint64_t tail[] = {st->nlink,
				 st->rdev,
				 st->size,
				 st->blksize,
				 st->blocks,
				 st->atime_sec,
				 st->atime_nsec,
				 st->mtime_sec,
				 st->mtime_nsec,
				 st->ctime_sec,
				 st->ctime_nsec,
				 0 /* btime */,
				 0,
				 0 /* gen */,
				 0 /* data_version */};

	put_le(o, st->valid, 8);
	ninep_put_qid(o, &st->qid);
	put_le(o, st->mode, 4);
	put_le(o, st->uid, 4);
	put_le(o, st->gid, 4);
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		put_le(o, tail[i], 8);
}

void ninep_put_statfs(struct ninep_out *o, const struct ninep_statfs *sf)
{
	put_le(o, sf->type, 4);
	put_le(o, sf->bsize, 4);
	put_le(o, sf->blocks, 8);
	put_le(o, sf->bfree, 8);
	put_le(o, sf->bavail, 8);
	put_le(o, sf->files, 8);
	put_le(o, sf->ffree, 8);
	put_le(o, sf->fsid, 8);
	put_le(o, sf->namelen, 4);
}

int ninep_reply_end(struct ninep_out *o)
{
	size_t len = o->len;

	if (o->err || len > UINT32_MAX)
		return -EMSGSIZE;
	o->len = 0;
	put_le(o, len, 4);
	o->len = len;
	return (int)len;
}

size_t ninep_rlerror(uint8_t *buf, uint16_t tag, uint32_t ecode)
{
	struct ninep_out o;

	ninep_reply_begin(&o, buf, 11, NINEP_RLERROR, tag);
	put_le(&o, ecode, 4);
	return (size_t)ninep_reply_end(&o);
}

bool ninep_put_dirent(struct ninep_out *o, size_t base, size_t limit,
		      const struct ninep_qid *q, uint64_t offset, uint8_t type,
		      const char *name, size_t len)
{
	size_t need = NINEP_QID_LEN + 8 + 1 + 2 + len;

	if (o->err || len > UINT16_MAX || o->len < base ||
	    o->len - base + need > limit || o->cap - o->len < need)
		return false;
	ninep_put_qid(o, q);
	put_le(o, offset, 8);
	put_le(o, type, 1);
	ninep_put_str(o, name, len);
	return true;
}
