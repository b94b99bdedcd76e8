// SPDX-License-Identifier: MIT
/*
 * agentwire: encoders and decoders for the vmmd <-> vmenv-agent frames.
 *
 * Everything here runs on bytes from an untrusted peer (the host decodes
 * what the guest sends), so every read is bounds-checked through struct
 * aw_reader, and no allocation is sized from a count before that count has
 * been checked against the bytes actually left in the payload.
 */
#include "agentwire.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define AW_EXEC_KNOWN_FLAGS \
	(AW_EXEC_MERGE_STDERR | AW_EXEC_STDIN | AW_EXEC_SCRIPT)

/* --- header ------------------------------------------------------------- */

static void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void aw_hdr_encode(uint8_t out[AW_HDR_LEN], uint32_t len, uint8_t type,
		   uint32_t session)
{
	be32_put(out, len);
	out[4] = type;
	out[5] = 0;
	out[6] = 0;
	out[7] = 0;
	be32_put(out + 8, session);
}

int aw_hdr_decode(const uint8_t in[AW_HDR_LEN], size_t max_payload,
		  struct aw_hdr *ret)
{
	uint32_t len = be32_get(in);
	uint8_t type = in[4];

	if (in[5] != 0 || in[6] != 0 || in[7] != 0)
		return -EPROTO;
	if (type == 0 || type >= AW_TYPE_END)
		return -EPROTO;
	if (len > max_payload)
		return -EMSGSIZE;
	ret->len = len;
	ret->type = type;
	ret->session = be32_get(in + 8);
	return 0;
}

/* --- output buffer ------------------------------------------------------ */

void aw_buf_free(struct aw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* Makes room for n more bytes, growing geometrically. */
static int buf_reserve(struct aw_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int aw_put_bytes(struct aw_buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	r = buf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int aw_put_u32(struct aw_buf *b, uint32_t v)
{
	uint8_t p[4];

	be32_put(p, v);
	return aw_put_bytes(b, p, sizeof(p));
}

int aw_put_i64(struct aw_buf *b, int64_t v)
{
	uint8_t p[8];
	uint64_t u = (uint64_t)v;

	be32_put(p, (uint32_t)(u >> 32));
	be32_put(p + 4, (uint32_t)u);
	return aw_put_bytes(b, p, sizeof(p));
}

/* A str the peer would refuse is refused here already: fail at the sender. */
static int put_str_max(struct aw_buf *b, const char *s, size_t max)
{
	size_t n;
	int r;

	if (!s)
		return -EINVAL;
	n = strlen(s);
	if (n > max || n > UINT32_MAX)
		return -EMSGSIZE;
	r = buf_reserve(b, 4 + n);
	if (r < 0)
		return r;
	aw_put_u32(b, (uint32_t)n);
	return aw_put_bytes(b, s, n);
}

int aw_put_str(struct aw_buf *b, const char *s)
{
	return put_str_max(b, s, AW_MAX_STR);
}

int aw_put_frame(struct aw_buf *b, uint8_t type, uint32_t session,
		 const void *payload, size_t len)
{
	int r;

	if (len > UINT32_MAX)
		return -EMSGSIZE;
	r = buf_reserve(b, AW_HDR_LEN + len);
	if (r < 0)
		return r;
	aw_hdr_encode(b->data + b->len, (uint32_t)len, type, session);
	b->len += AW_HDR_LEN;
	return aw_put_bytes(b, payload, len);
}

/* --- reader ------------------------------------------------------------- */

void aw_reader_init(struct aw_reader *r, const void *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->err = 0;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL (and sets
 * err) if fewer are left or an earlier read already failed. */
static const uint8_t *reader_take(struct aw_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->left) {
		r->err = -EPROTO;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint32_t aw_get_u32(struct aw_reader *r)
{
	const uint8_t *p = reader_take(r, 4);

	return p ? be32_get(p) : 0;
}

int64_t aw_get_i64(struct aw_reader *r)
{
	const uint8_t *p = reader_take(r, 8);
	uint64_t u;

	if (!p)
		return 0;
	u = (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
	return (int64_t)u;
}

char *aw_get_str(struct aw_reader *r, size_t max)
{
	uint32_t n = aw_get_u32(r);
	const uint8_t *p;
	char *s;

	if (r->err)
		return NULL;
	if (n > max) {
		r->err = -EPROTO;
		return NULL;
	}
	/* Checked against the payload before allocating anything. */
	p = reader_take(r, n);
	if (!p)
		return NULL;
	if (memchr(p, '\0', n)) {
		r->err = -EPROTO;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s) {
		r->err = -ENOMEM;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int aw_reader_done(const struct aw_reader *r)
{
	return (r->err || r->left) ? -EPROTO : 0;
}

/* Error of a failed decode: the reader's own, or -EPROTO for trailing
 * bytes or a semantic check that failed without touching the reader. */
static int reader_status(const struct aw_reader *r)
{
	if (r->err)
		return r->err;
	return aw_reader_done(r);
}

/* --- SETUP -------------------------------------------------------------- */

int aw_setup_encode(const struct aw_setup *s, struct aw_buf *b)
{
	size_t start = b->len;
	int r = 0;
	uint32_t i;

	if (s->nmounts > AW_MAX_MOUNTS)
		return -EINVAL;
	r = r ?: aw_put_str(b, s->hostname);
	r = r ?: aw_put_str(b, s->user);
	r = r ?: aw_put_u32(b, s->uid);
	r = r ?: aw_put_u32(b, s->gid);
	r = r ?: aw_put_str(b, s->group);
	r = r ?: aw_put_str(b, s->home);
	r = r ?: aw_put_i64(b, s->time_sec);
	r = r ?: aw_put_u32(b, s->nmounts);
	for (i = 0; i < s->nmounts && !r; i++) {
		r = aw_put_str(b, s->mounts[i].tag);
		r = r ?: aw_put_str(b, s->mounts[i].path);
	}
	if (r < 0)
		b->len = start;
	return r;
}

void aw_setup_clear(struct aw_setup *s)
{
	uint32_t i;

	free(s->hostname);
	free(s->user);
	free(s->group);
	free(s->home);
	for (i = 0; i < AW_MAX_MOUNTS; i++) {
		free(s->mounts[i].tag);
		free(s->mounts[i].path);
	}
	memset(s, 0, sizeof(*s));
}

static int setup_read_mounts(struct aw_reader *r, struct aw_setup *s)
{
	uint32_t n = aw_get_u32(r), i;

	if (r->err)
		return r->err;
	if (n > AW_MAX_MOUNTS)
		return -EPROTO;
	/* On error the caller's aw_setup_clear() frees every slot. */
	for (i = 0; i < n && !r->err; i++) {
		s->mounts[i].tag = aw_get_str(r, AW_MAX_STR);
		s->mounts[i].path = aw_get_str(r, AW_MAX_STR);
	}
	s->nmounts = n;
	return r->err;
}

int aw_setup_decode(const void *p, size_t n, struct aw_setup *ret)
{
	struct aw_setup s = {0};
	struct aw_reader r;
	int err;

	aw_reader_init(&r, p, n);
	s.hostname = aw_get_str(&r, AW_MAX_STR);
	s.user = aw_get_str(&r, AW_MAX_STR);
	s.uid = aw_get_u32(&r);
	s.gid = aw_get_u32(&r);
	s.group = aw_get_str(&r, AW_MAX_STR);
	s.home = aw_get_str(&r, AW_MAX_STR);
	s.time_sec = aw_get_i64(&r);
	err = setup_read_mounts(&r, &s);
	if (!err)
		err = reader_status(&r);
	if (err < 0) {
		aw_setup_clear(&s);
		memset(ret, 0, sizeof(*ret));
		return err;
	}
	*ret = s;
	return 0;
}

/* --- EXEC --------------------------------------------------------------- */

static int put_strv(struct aw_buf *b, uint32_t n, char *const *v)
{
	uint32_t i;
	int r;

	if (n > AW_MAX_ARGS || (n && !v))
		return -EINVAL;
	r = aw_put_u32(b, n);
	for (i = 0; i < n && !r; i++)
		r = aw_put_str(b, v[i]);
	return r;
}

static int exec_encode_check(const struct aw_exec *e)
{
	if (e->ngroups > AW_MAX_GROUPS)
		return -EINVAL;
	if (e->flags & ~AW_EXEC_KNOWN_FLAGS)
		return -EINVAL;
	if (e->argc < 1)
		return -EINVAL;
	if ((e->flags & AW_EXEC_SCRIPT) && !e->script)
		return -EINVAL;
	return 0;
}

int aw_exec_encode(const struct aw_exec *e, struct aw_buf *b)
{
	size_t start = b->len;
	uint32_t i;
	int r;

	r = exec_encode_check(e);
	if (r < 0)
		return r;
	r = aw_put_u32(b, e->uid);
	r = r ?: aw_put_u32(b, e->gid);
	r = r ?: aw_put_u32(b, e->ngroups);
	for (i = 0; i < e->ngroups && !r; i++)
		r = aw_put_u32(b, e->groups[i]);
	r = r ?: aw_put_u32(b, e->flags);
	r = r ?: aw_put_str(b, e->cwd);
	r = r ?: put_strv(b, e->argc, e->argv);
	r = r ?: put_strv(b, e->envc, e->envp);
	if (!r && (e->flags & AW_EXEC_SCRIPT))
		r = put_str_max(b, e->script, AW_MAX_HOST_PAYLOAD);
	if (r < 0)
		b->len = start;
	return r;
}

static void strv_free(char **v)
{
	char **p;

	if (!v)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

void aw_exec_clear(struct aw_exec *e)
{
	free(e->cwd);
	strv_free(e->argv);
	strv_free(e->envp);
	free(e->script);
	memset(e, 0, sizeof(*e));
}

/*
 * Reads a u32 count and that many strs into a NULL-terminated array. Each
 * str takes at least 4 bytes, so a count larger than left/4 cannot be
 * honest: refuse it before allocating the array.
 */
static char **get_strv(struct aw_reader *r, uint32_t *ret_n)
{
	uint32_t n = aw_get_u32(r), i;
	char **v;

	if (r->err)
		return NULL;
	if (n > AW_MAX_ARGS || n > r->left / 4) {
		r->err = -EPROTO;
		return NULL;
	}
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!v) {
		r->err = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		v[i] = aw_get_str(r, AW_MAX_STR);
		if (!v[i]) {
			strv_free(v);
			return NULL;
		}
	}
	*ret_n = n;
	return v;
}

static void exec_read_groups(struct aw_reader *r, struct aw_exec *e)
{
	uint32_t n = aw_get_u32(r), i;

	if (r->err)
		return;
	if (n > AW_MAX_GROUPS) {
		r->err = -EPROTO;
		return;
	}
	for (i = 0; i < n; i++)
		e->groups[i] = aw_get_u32(r);
	if (!r->err)
		e->ngroups = n;
}

static void exec_read_script(struct aw_reader *r, struct aw_exec *e)
{
	if (!(e->flags & AW_EXEC_SCRIPT))
		return;
	e->script = aw_get_str(r, AW_MAX_HOST_PAYLOAD);
	if (e->script)
		e->script_len = (uint32_t)strlen(e->script);
}

int aw_exec_decode(const void *p, size_t n, struct aw_exec *ret)
{
	struct aw_exec e = {0};
	struct aw_reader r;
	int err;

	aw_reader_init(&r, p, n);
	e.uid = aw_get_u32(&r);
	e.gid = aw_get_u32(&r);
	exec_read_groups(&r, &e);
	e.flags = aw_get_u32(&r);
	if (!r.err && (e.flags & ~AW_EXEC_KNOWN_FLAGS))
		r.err = -EPROTO;
	e.cwd = aw_get_str(&r, AW_MAX_STR);
	e.argv = get_strv(&r, &e.argc);
	if (!r.err && e.argc < 1)
		r.err = -EPROTO;
	e.envp = get_strv(&r, &e.envc);
	exec_read_script(&r, &e);
	err = reader_status(&r);
	if (err < 0) {
		aw_exec_clear(&e);
		memset(ret, 0, sizeof(*ret));
		return err;
	}
	*ret = e;
	return 0;
}

/* --- names -------------------------------------------------------------- */

static const char *const aw_type_names[AW_TYPE_END] = {
    [AW_HELLO] = "HELLO",	  [AW_SETUP] = "SETUP",
    [AW_SETUP_OK] = "SETUP_OK",	  [AW_SETUP_FAIL] = "SETUP_FAIL",
    [AW_EXEC] = "EXEC",		  [AW_STARTED] = "STARTED",
    [AW_EXEC_FAIL] = "EXEC_FAIL", [AW_STDIN] = "STDIN",
    [AW_STDOUT] = "STDOUT",	  [AW_STDERR] = "STDERR",
    [AW_CREDIT] = "CREDIT",	  [AW_SIGNAL] = "SIGNAL",
    [AW_EXIT] = "EXIT",		  [AW_SHUTDOWN] = "SHUTDOWN",
    [AW_ERROR] = "ERROR",
};

const char *aw_type_name(uint8_t type)
{
	if (type >= AW_TYPE_END || !aw_type_names[type])
		return "unknown";
	return aw_type_names[type];
}
