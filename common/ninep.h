/* SPDX-License-Identifier: MIT */
/*
 * ninep: the 9P2000.L message codec of vmenv-9p (the job's files served
 * outside QEMU, see vmmd/files/jobfiles.h). Pure: no I/O, no logging, no
 * allocation. The guest is untrusted: every field of a request is checked
 * against the message's own size, the negotiated msize and the limits
 * below before anything uses it.
 *
 * A message is size[4] type[1] tag[2] body, little endian; a string is
 * len[2] bytes (no NUL on the wire). Decoded strings point into the
 * caller's message buffer (valid while it is) and are checked to hold no
 * NUL byte, so a server can copy them into C strings without surprises.
 *
 * Requests are decoded by ninep_decode() into struct ninep_req; replies
 * are built with ninep_reply_*() into a caller's buffer of msize bytes.
 */
#ifndef VMENV_NINEP_H
#define VMENV_NINEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NINEP_HDR_LEN 7u
/* Smallest msize we agree to: a header, a read reply's count and one page
 * of data. The largest is the server's choice (NINEP_MAX_MSIZE). */
#define NINEP_MIN_MSIZE 4096u
#define NINEP_MAX_MSIZE (1024u * 1024u)
/* Most names in one Twalk (the protocol's MAXWELEM). */
#define NINEP_MAX_WELEM 16u
/* Longest name or string field we accept (a path component is at most
 * 255 bytes on Linux; symlink targets and user names may be longer). */
#define NINEP_MAX_STR 4096u
#define NINEP_NOFID   0xffffffffu
#define NINEP_NOTAG   0xffffu
/* Bytes in front of the data of Rread/Rreaddir (size type tag count). */
#define NINEP_IOHDR_LEN 11u
#define NINEP_QID_LEN	13u

enum ninep_type {
	NINEP_TLERROR = 6,
	NINEP_RLERROR = 7,
	NINEP_TSTATFS = 8,
	NINEP_TLOPEN = 12,
	NINEP_TLCREATE = 14,
	NINEP_TSYMLINK = 16,
	NINEP_TMKNOD = 18,
	NINEP_TRENAME = 20,
	NINEP_TREADLINK = 22,
	NINEP_TGETATTR = 24,
	NINEP_TSETATTR = 26,
	NINEP_TXATTRWALK = 30,
	NINEP_TXATTRCREATE = 32,
	NINEP_TREADDIR = 40,
	NINEP_TFSYNC = 50,
	NINEP_TLOCK = 52,
	NINEP_TGETLOCK = 54,
	NINEP_TLINK = 70,
	NINEP_TMKDIR = 72,
	NINEP_TRENAMEAT = 74,
	NINEP_TUNLINKAT = 76,
	NINEP_TVERSION = 100,
	NINEP_TAUTH = 102,
	NINEP_TATTACH = 104,
	NINEP_TFLUSH = 108,
	NINEP_TWALK = 110,
	NINEP_TREAD = 116,
	NINEP_TWRITE = 118,
	NINEP_TCLUNK = 120,
	NINEP_TREMOVE = 122,
};

/* qid.type bits */
#define NINEP_QTDIR	0x80u
#define NINEP_QTSYMLINK 0x02u
#define NINEP_QTFILE	0x00u

/* Tsetattr valid bits */
#define NINEP_SETATTR_MODE	0x001u
#define NINEP_SETATTR_UID	0x002u
#define NINEP_SETATTR_GID	0x004u
#define NINEP_SETATTR_SIZE	0x008u
#define NINEP_SETATTR_ATIME	0x010u
#define NINEP_SETATTR_MTIME	0x020u
#define NINEP_SETATTR_CTIME	0x040u
#define NINEP_SETATTR_ATIME_SET 0x080u
#define NINEP_SETATTR_MTIME_SET 0x100u

/* Rgetattr valid: the basic stat fields. */
#define NINEP_GETATTR_BASIC 0x7ffull

/* Tunlinkat flags */
#define NINEP_AT_REMOVEDIR 0x200u

/* Tlock status and type */
#define NINEP_LOCK_SUCCESS 0u
#define NINEP_LOCK_UNLCK   2u

/* Tlopen/Tlcreate flags (Linux's values on every architecture). */
#define NINEP_O_ACCMODE	  03u
#define NINEP_O_CREAT	  0100u
#define NINEP_O_EXCL	  0200u
#define NINEP_O_TRUNC	  01000u
#define NINEP_O_APPEND	  02000u
#define NINEP_O_DSYNC	  010000u
#define NINEP_O_DIRECTORY 0200000u
#define NINEP_O_SYNC	  04010000u

struct ninep_str {
	const char *p; /* into the message; not NUL-terminated */
	uint16_t len;
};

struct ninep_qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

struct ninep_stat {
	uint64_t valid;
	struct ninep_qid qid;
	uint32_t mode, uid, gid;
	uint64_t nlink, rdev, size, blksize, blocks;
	uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec;
	uint64_t ctime_sec, ctime_nsec;
};

struct ninep_statfs {
	uint32_t type, bsize;
	uint64_t blocks, bfree, bavail, files, ffree, fsid;
	uint32_t namelen;
};

/*
 * A decoded request. Which fields hold what, per type (the rest are 0):
 *   version    msize, name=version
 *   attach     fid, newfid=afid, name=uname, name2=aname, n_uname
 *   auth       newfid=afid, name=uname, name2=aname, n_uname
 *   flush      oldtag
 *   walk       fid, newfid, nwname, wname[]
 *   read       fid, offset, count          readdir: the same
 *   write      fid, offset, count, data (count bytes)
 *   clunk, remove, statfs, readlink: fid
 *   getattr    fid, mask
 *   setattr    fid, valid, mode, uid, gid, size, atime_*, mtime_*
 *   lopen      fid, flags
 *   lcreate    fid, name, flags, mode, gid
 *   mkdir      fid (dir), name, mode, gid
 *   symlink    fid (dir), name, name2=target, gid
 *   mknod      fid (dir), name, mode, major, minor, gid
 *   link       fid=dfid, newfid=fid, name
 *   rename     fid, newfid=dfid, name
 *   renameat   fid=olddir, name=oldname, newfid=newdir, name2=newname
 *   unlinkat   fid (dir), name, flags
 *   fsync      fid, flags=datasync
 *   xattrwalk  fid, newfid, name
 *   xattrcreate fid, name, size, flags
 *   lock       fid, lock_type, flags, start, length, proc_id, name=client
 *   getlock    fid, lock_type, start, length, proc_id, name=client
 */
struct ninep_req {
	uint8_t type;
	uint16_t tag;
	uint32_t fid, newfid;
	uint32_t msize, n_uname;
	uint16_t oldtag;
	uint16_t nwname;
	struct ninep_str wname[NINEP_MAX_WELEM];
	struct ninep_str name, name2;
	uint64_t offset;
	uint32_t count;
	const uint8_t *data;
	uint64_t mask;
	uint32_t valid, mode, uid, gid, flags, major, minor, proc_id;
	uint64_t size, atime_sec, atime_nsec, mtime_sec, mtime_nsec;
	uint8_t lock_type;
	uint64_t start, length;
};

/*
 * Reads the size of the message at the start of buf (n >= 4 bytes).
 * Returns 0 and *ret_size (including the size field itself), or -EMSGSIZE
 * when it is below a header or above msize: the stream cannot be trusted
 * after that.
 */
int ninep_msg_size(const uint8_t *buf, size_t n, uint32_t msize,
		   uint32_t *ret_size);

/*
 * Decodes one whole message of n bytes (n == its size field). msize bounds
 * the counts of read/write/readdir. Returns 0, -EPROTO (malformed: a
 * field runs past the end, bytes left over, a string with a NUL or longer
 * than NINEP_MAX_STR, more than NINEP_MAX_WELEM names, a count larger
 * than msize allows) or -EOPNOTSUPP (a type this codec does not know or an
 * R-message). The message's framing was sound in both cases (n is its
 * size), so ret->type and ret->tag are set and the server can answer with
 * Rlerror; every other field is 0 then.
 */
int ninep_decode(const uint8_t *buf, size_t n, uint32_t msize,
		 struct ninep_req *ret);

/* True when the string is a valid single path component: not empty, not
 * "." or "..", no '/'. (NUL was checked by the decoder.) */
bool ninep_name_ok(const struct ninep_str *s);

/* --- replies ----------------------------------------------------------- */

/* A reply under construction in buf[0..cap). Any overflow sets err and
 * ninep_reply_end() fails. */
struct ninep_out {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool err;
};

/* Starts reply type (the request's type + 1) for tag. */
void ninep_reply_begin(struct ninep_out *o, uint8_t *buf, size_t cap,
		       uint8_t type, uint16_t tag);
void ninep_put_u8(struct ninep_out *o, uint8_t v);
void ninep_put_u16(struct ninep_out *o, uint16_t v);
void ninep_put_u32(struct ninep_out *o, uint32_t v);
void ninep_put_u64(struct ninep_out *o, uint64_t v);
void ninep_put_str(struct ninep_out *o, const char *s, size_t len);
void ninep_put_qid(struct ninep_out *o, const struct ninep_qid *q);
void ninep_put_stat(struct ninep_out *o, const struct ninep_stat *st);
void ninep_put_statfs(struct ninep_out *o, const struct ninep_statfs *sf);
/* Writes the size field. Returns the message length, or -EMSGSIZE. */
int ninep_reply_end(struct ninep_out *o);

/* Rlerror(ecode) for tag into buf: returns the length (11). */
size_t ninep_rlerror(uint8_t *buf, uint16_t tag, uint32_t ecode);

/* Appends one Rreaddir entry (qid offset type name) to o if it fits in
 * limit bytes of entries starting at base; returns false (o unchanged)
 * when it does not. */
bool ninep_put_dirent(struct ninep_out *o, size_t base, size_t limit,
		      const struct ninep_qid *q, uint64_t offset, uint8_t type,
		      const char *name, size_t len);

const char *ninep_type_name(uint8_t type);

#endif
