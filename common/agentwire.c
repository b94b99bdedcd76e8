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

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define AW_EXEC_KNOWN_FLAGS \
	(AW_EXEC_MERGE_STDERR | AW_EXEC_STDIN | AW_EXEC_SCRIPT | AW_EXEC_BULK)

static bool isdigit_c(char c)
{
	return c >= '0' && c <= '9';
}

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

void aw_get_bytes(struct aw_reader *r, void *out, size_t n)
{
	const uint8_t *p = reader_take(r, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
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

static int setup_encode_v1(const struct aw_setup *s, struct aw_buf *b)
{
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
	return r;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static int setup_encode_v2(const struct aw_setup *s, struct aw_buf *b)
{
	int r;
	uint32_t i;

	r = aw_setup_check_net(s);
	r = r ?: aw_put_u32(b, s->node_index);
	r = r ?: aw_put_str(b, or_empty(s->net_addr));
	r = r ?: aw_put_str(b, or_empty(s->job_token));
	r = r ?: aw_put_u32(b, s->ngroups);
	for (i = 0; i < s->ngroups && !r; i++)
		r = aw_put_u32(b, s->groups[i]);
	r = r ?: aw_put_u32(b, s->npeers);
	for (i = 0; i < s->npeers && !r; i++) {
		r = aw_put_str(b, s->peers[i].name);
		r = r ?: aw_put_str(b, s->peers[i].addr);
	}
	return r;
}

static bool setup_has_transports(const struct aw_setup *s)
{
	for (uint32_t i = 0; i < s->nmounts; i++)
		if (s->mounts[i].transport != AW_MOUNT_VIRTIO_9P)
			return true;
	return false;
}

/* The optional transports, last (see agentwire.h): present only when
 * some mount is not virtio-9p, so there is one encoding of each SETUP. */
static int setup_encode_transports(const struct aw_setup *s, struct aw_buf *b)
{
	int r = 0;

	if (!setup_has_transports(s))
		return 0;
	for (uint32_t i = 0; i < s->nmounts && !r; i++)
		r = aw_put_u32(b, s->mounts[i].transport);
	return r;
}

static void setup_read_transports(struct aw_reader *r, struct aw_setup *s)
{
	if (r->err || r->left == 0)
		return;
	for (uint32_t i = 0; i < s->nmounts && !r->err; i++) {
		s->mounts[i].transport = aw_get_u32(r);
		if (s->mounts[i].transport >= AW_MOUNT_TRANSPORT_END)
			r->err = -EPROTO;
	}
	if (!r->err && !setup_has_transports(s))
		r->err = -EPROTO;
}

static bool version_ok(uint32_t version)
{
	return version >= AW_VERSION_MIN && version <= AW_VERSION;
}

int aw_setup_encode(const struct aw_setup *s, uint32_t version,
		    struct aw_buf *b)
{
	size_t start = b->len;
	int r;

	if (!version_ok(version))
		return -EINVAL;
	r = setup_encode_v1(s, b);
	if (!r && version >= 2)
		r = setup_encode_v2(s, b);
	r = r ?: setup_encode_transports(s, b);
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
	free(s->net_addr);
	free(s->job_token);
	for (i = 0; s->peers && i < s->npeers; i++) {
		free(s->peers[i].name);
		free(s->peers[i].addr);
	}
	free(s->peers);
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

static void setup_read_groups(struct aw_reader *r, struct aw_setup *s)
{
	uint32_t n = aw_get_u32(r), i;

	if (r->err)
		return;
	if (n > AW_MAX_GROUPS) {
		r->err = -EPROTO;
		return;
	}
	for (i = 0; i < n; i++)
		s->groups[i] = aw_get_u32(r);
	if (!r->err)
		s->ngroups = n;
}

/* A valid peer takes at least 16 bytes (two str lengths, a 1-char name,
 * a 7-char address "1.2.3.4"): a larger count than left/16 cannot be
 * honest, so it is refused before allocating. */
#define PEER_MIN_BYTES 16u

static void setup_read_peers(struct aw_reader *r, struct aw_setup *s)
{
	uint32_t n = aw_get_u32(r), i;

	if (r->err)
		return;
	if (n > AW_MAX_PEERS || n > r->left / PEER_MIN_BYTES) {
		r->err = -EPROTO;
		return;
	}
	s->peers = calloc(n ? n : 1, sizeof(*s->peers));
	if (!s->peers) {
		r->err = -ENOMEM;
		return;
	}
	/* npeers counts the slots to free, filled or not. */
	s->npeers = n;
	for (i = 0; i < n && !r->err; i++) {
		s->peers[i].name = aw_get_str(r, AW_MAX_HOSTNAME);
		s->peers[i].addr = aw_get_str(r, 15);
	}
}

static char *empty_str(struct aw_reader *r)
{
	char *s = r->err ? NULL : strdup("");

	if (!s && !r->err)
		r->err = -ENOMEM;
	return s;
}

static void setup_read_v2(struct aw_reader *r, struct aw_setup *s,
			  uint32_t version)
{
	if (version < 2) {
		s->net_addr = empty_str(r);
		s->job_token = empty_str(r);
		return;
	}
	s->node_index = aw_get_u32(r);
	s->net_addr = aw_get_str(r, 18); /* 255.255.255.255/32 */
	s->job_token = aw_get_str(r, AW_TOKEN_LEN);
	setup_read_groups(r, s);
	setup_read_peers(r, s);
	if (!r->err && aw_setup_check_net(s) < 0)
		r->err = -EPROTO;
}

int aw_setup_decode(const void *p, size_t n, uint32_t version,
		    struct aw_setup *ret)
{
	struct aw_setup s = {0};
	struct aw_reader r;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (!version_ok(version))
		return -EINVAL;
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
		setup_read_v2(&r, &s, version);
	if (!err)
		setup_read_transports(&r, &s);
	if (!err)
		err = reader_status(&r);
	if (err < 0) {
		aw_setup_clear(&s);
		return err;
	}
	*ret = s;
	return 0;
}

/* --- SETUP v2 validation ------------------------------------------------ */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

bool aw_hostname_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	if (n == 0 || n > AW_MAX_HOSTNAME || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

bool aw_ipv4_ok(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1;
}

bool aw_token_ok(const char *s)
{
	size_t i;

	if (!s || strlen(s) != AW_TOKEN_LEN)
		return false;
	for (i = 0; i < AW_TOKEN_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int aw_cidr_parse(const char *s, uint32_t *ret_addr_be, unsigned *ret_prefix)
{
	char ip[16];
	const char *slash = s ? strchr(s, '/') : NULL;
	struct in_addr a;
	unsigned prefix = 0;
	size_t n;
	const char *p;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	n = (size_t)(slash - s);
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	/* 1 or 2 digits, no sign, no leading zero. */
	p = slash + 1;
	if (!p[0] || strlen(p) > 2 || (p[0] == '0') || !isdigit_c(p[0]) ||
	    (p[1] && !isdigit_c(p[1])))
		return -EINVAL;
	for (; *p; p++)
		prefix = prefix * 10 + (unsigned)(*p - '0');
	if (prefix < 1 || prefix > 32)
		return -EINVAL;
	*ret_addr_be = a.s_addr;
	*ret_prefix = prefix;
	return 0;
}

/* net_addr's address equals addr (a dotted quad). */
static bool same_addr(const char *cidr, const char *addr)
{
	uint32_t a;
	unsigned prefix;
	struct in_addr b;

	if (aw_cidr_parse(cidr, &a, &prefix) < 0 ||
	    inet_pton(AF_INET, addr, &b) != 1)
		return false;
	return a == b.s_addr;
}

static int check_peers(const struct aw_setup *s)
{
	uint32_t i;

	if (s->npeers > AW_MAX_PEERS || (s->npeers && !s->peers))
		return -EINVAL;
	for (i = 0; i < s->npeers; i++)
		if (!aw_hostname_ok(s->peers[i].name) ||
		    !aw_ipv4_ok(s->peers[i].addr))
			return -EINVAL;
	return 0;
}

int aw_setup_check_net(const struct aw_setup *s)
{
	const char *net = or_empty(s->net_addr), *tok = or_empty(s->job_token);
	uint32_t a;
	unsigned prefix;

	if (s->ngroups > AW_MAX_GROUPS || check_peers(s) < 0)
		return -EINVAL;
	if (s->npeers ? s->node_index >= s->npeers : s->node_index != 0)
		return -EINVAL;
	if (tok[0] && (!aw_token_ok(tok) || !net[0]))
		return -EINVAL;
	if (!net[0])
		return 0;
	if (aw_cidr_parse(net, &a, &prefix) < 0 || !s->npeers)
		return -EINVAL;
	/* This guest's own entry must name the address its NIC gets. */
	if (!same_addr(net, s->peers[s->node_index].addr))
		return -EINVAL;
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

/* The port exists and the end marker cannot be mistaken for the start. */
static bool exec_bulk_ok(const struct aw_exec *e)
{
	return e->bulk_port < AW_MAX_BULK_PORTS &&
	       memcmp(e->bulk_start, e->bulk_end, AW_BULK_MARK_LEN) != 0;
}

static int exec_encode_bulk(const struct aw_exec *e, struct aw_buf *b)
{
	int r;

	if (!(e->flags & AW_EXEC_BULK))
		return 0;
	r = aw_put_u32(b, e->bulk_port);
	r = r ?: aw_put_bytes(b, e->bulk_start, AW_BULK_MARK_LEN);
	return r ?: aw_put_bytes(b, e->bulk_end, AW_BULK_MARK_LEN);
}

static void exec_read_bulk(struct aw_reader *r, struct aw_exec *e)
{
	const uint8_t *p;

	if (!(e->flags & AW_EXEC_BULK))
		return;
	e->bulk_port = aw_get_u32(r);
	p = reader_take(r, 2 * AW_BULK_MARK_LEN);
	if (!p)
		return;
	memcpy(e->bulk_start, p, AW_BULK_MARK_LEN);
	memcpy(e->bulk_end, p + AW_BULK_MARK_LEN, AW_BULK_MARK_LEN);
	if (!exec_bulk_ok(e))
		r->err = -EPROTO;
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
	if ((e->flags & AW_EXEC_BULK) && !exec_bulk_ok(e))
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
	r = r ?: exec_encode_bulk(e, b);
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

char **aw_get_strv(struct aw_reader *r, uint32_t max_n, size_t max_len,
		   uint32_t *ret_n)
{
	uint32_t n = aw_get_u32(r), i;
	char **v;

	if (r->err)
		return NULL;
	/* Each str takes at least 4 bytes: a larger count cannot be honest,
	 * and is refused before the array is allocated. */
	if (n > max_n || n > r->left / 4) {
		r->err = -EPROTO;
		return NULL;
	}
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!v) {
		r->err = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		v[i] = aw_get_str(r, max_len);
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
	e.argv = aw_get_strv(&r, AW_MAX_ARGS, AW_MAX_STR, &e.argc);
	if (!r.err && e.argc < 1)
		r.err = -EPROTO;
	e.envp = aw_get_strv(&r, AW_MAX_ARGS, AW_MAX_STR, &e.envc);
	exec_read_script(&r, &e);
	exec_read_bulk(&r, &e);
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
    [AW_HELLO] = "HELLO",
    [AW_SETUP] = "SETUP",
    [AW_SETUP_OK] = "SETUP_OK",
    [AW_SETUP_FAIL] = "SETUP_FAIL",
    [AW_EXEC] = "EXEC",
    [AW_STARTED] = "STARTED",
    [AW_EXEC_FAIL] = "EXEC_FAIL",
    [AW_STDIN] = "STDIN",
    [AW_STDOUT] = "STDOUT",
    [AW_STDERR] = "STDERR",
    [AW_CREDIT] = "CREDIT",
    [AW_SIGNAL] = "SIGNAL",
    [AW_EXIT] = "EXIT",
    [AW_SHUTDOWN] = "SHUTDOWN",
    [AW_ERROR] = "ERROR",
    [AW_CKPT_PREPARE] = "CKPT_PREPARE",
    [AW_CKPT_RESUME] = "CKPT_RESUME",
    [AW_CKPT_OK] = "CKPT_OK",
    [AW_CKPT_REFUSED] = "CKPT_REFUSED",
    [AW_RESUME] = "RESUME",
    [AW_RESUMED] = "RESUMED",
    [AW_RELEASE] = "RELEASE",
};

const char *aw_type_name(uint8_t type)
{
	if (type >= AW_TYPE_END || !aw_type_names[type])
		return "unknown";
	return aw_type_names[type];
}
