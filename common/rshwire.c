// SPDX-License-Identifier: MIT
/*
 * rshwire: frames, the handshake's codecs and MACs of the guest-to-guest
 * rsh service. The server reads a HELLO and a REQUEST's fixed start from
 * whoever connects, and decodes a REQUEST's body only once its MAC checked;
 * even so every count is bounded by the bytes left before anything is
 * allocated from it (the fuzzer feeds the decoders anything).
 */
#include "rshwire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* --- frames ------------------------------------------------------------- */

void rsh_hdr_encode(uint8_t out[RSH_HDR_LEN], uint32_t len, uint8_t type)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	out[4] = type;
	out[5] = 0;
	out[6] = 0;
	out[7] = 0;
}

int rsh_hdr_decode(const uint8_t in[RSH_HDR_LEN], size_t max,
		   struct rsh_hdr *ret)
{
	uint32_t len = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
		       (uint32_t)in[2] << 8 | (uint32_t)in[3];

	if (in[5] || in[6] || in[7] || in[4] == 0 || in[4] >= RSH_TYPE_END)
		return -EPROTO;
	if (len > max)
		return -EMSGSIZE;
	ret->len = len;
	ret->type = in[4];
	return 0;
}

int rsh_put_frame(struct aw_buf *b, uint8_t type, const void *payload,
		  size_t len)
{
	uint8_t h[RSH_HDR_LEN];
	size_t start = b->len;
	int r;

	if (len > RSH_MAX_REQUEST)
		return -EMSGSIZE;
	rsh_hdr_encode(h, (uint32_t)len, type);
	r = aw_put_bytes(b, h, sizeof(h));
	r = r ?: aw_put_bytes(b, payload, len);
	if (r < 0)
		b->len = start;
	return r;
}

/* --- environment -------------------------------------------------------- */

bool rsh_env_name_ok(const char *entry)
{
	static const char *const names[] = {
	    "PATH", "LD_LIBRARY_PATH", "LANG", "TZ", "TERM", "TMPDIR",
	};
	const char *eq = strchr(entry, '=');
	size_t n, i;

	if (!eq)
		return false;
	n = (size_t)(eq - entry);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && memcmp(entry, names[i], n) == 0)
			return true;
	/* LC_ALL, LC_CTYPE, ...: upper-case letters and '_' after LC_. */
	if (n <= 3 || n > 32 || memcmp(entry, "LC_", 3) != 0)
		return false;
	for (i = 3; i < n; i++)
		if (!((entry[i] >= 'A' && entry[i] <= 'Z') || entry[i] == '_'))
			return false;
	return true;
}

/* --- HELLO and CHALLENGE ----------------------------------------------- */

/* n raw bytes from the reader into out (zeros and err on overrun). */
static void get_raw(struct aw_reader *r, uint8_t *out, size_t n)
{
	if (r->err || r->left < n) {
		r->err = -EPROTO;
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
}

/* HELLO and ACCEPT have one shape: u32, then len raw bytes. */
static int put_u32_raw(struct aw_buf *b, uint32_t v, const uint8_t *raw,
		       size_t len)
{
	size_t start = b->len;
	int r = aw_put_u32(b, v);

	r = r ?: aw_put_bytes(b, raw, len);
	if (r < 0)
		b->len = start;
	return r;
}

static int get_u32_raw(const void *p, size_t n, uint32_t *v, uint8_t *raw,
		       size_t len)
{
	struct aw_reader r;

	aw_reader_init(&r, p, n);
	*v = aw_get_u32(&r);
	get_raw(&r, raw, len);
	return aw_reader_done(&r) < 0 ? -EPROTO : 0;
}

int rsh_hello_encode(uint32_t version, const uint8_t nonce[RSH_NONCE_LEN],
		     struct aw_buf *b)
{
	return put_u32_raw(b, version, nonce, RSH_NONCE_LEN);
}

int rsh_hello_decode(const void *p, size_t n, uint32_t *version,
		     uint8_t nonce[RSH_NONCE_LEN])
{
	int r = get_u32_raw(p, n, version, nonce, RSH_NONCE_LEN);

	if (r < 0)
		return r;
	return *version == RSH_VERSION ? 0 : -EPROTONOSUPPORT;
}

/* --- REQUEST ------------------------------------------------------------ */

static int request_check(const struct rsh_request *q)
{
	uint32_t i;

	if (q->version != RSH_VERSION || !q->cwd)
		return -EINVAL;
	if (q->cwd[0] && q->cwd[0] != '/')
		return -EINVAL;
	if (q->argc < 1 || q->argc > RSH_MAX_ARGS || !q->argv)
		return -EINVAL;
	if (q->envc > RSH_MAX_ENV || (q->envc && !q->envp))
		return -EINVAL;
	for (i = 0; i < q->envc; i++)
		if (!q->envp[i] || !rsh_env_name_ok(q->envp[i]))
			return -EINVAL;
	for (i = 0; i < q->argc; i++)
		if (!q->argv[i])
			return -EINVAL;
	return 0;
}

int rsh_request_encode(const struct rsh_request *q, struct aw_buf *b)
{
	size_t start = b->len;
	uint32_t i;
	int r;

	r = request_check(q);
	r = r ?: aw_put_u32(b, q->version);
	r = r ?: aw_put_bytes(b, q->mac, RSH_MAC_LEN);
	r = r ?: aw_put_str(b, q->cwd);
	r = r ?: aw_put_u32(b, q->argc);
	for (i = 0; i < q->argc && !r; i++)
		r = aw_put_str(b, q->argv[i]);
	r = r ?: aw_put_u32(b, q->envc);
	for (i = 0; i < q->envc && !r; i++)
		r = aw_put_str(b, q->envp[i]);
	if (!r && b->len - start > RSH_MAX_REQUEST)
		r = -EMSGSIZE;
	if (r < 0)
		b->len = start;
	return r;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void rsh_request_clear(struct rsh_request *q)
{
	free(q->cwd);
	strv_free(q->argv);
	strv_free(q->envp);
	memset(q, 0, sizeof(*q));
}

int rsh_request_version(const void *p, size_t n, uint32_t *version)
{
	struct aw_reader r;

	aw_reader_init(&r, p, n);
	*version = aw_get_u32(&r);
	return r.err ? -EPROTO : 0;
}

int rsh_request_decode(const void *p, size_t n, struct rsh_request *ret)
{
	struct rsh_request q = {0};
	struct aw_reader r;
	int err;

	memset(ret, 0, sizeof(*ret));
	aw_reader_init(&r, p, n);
	q.version = aw_get_u32(&r);
	if (!r.err && q.version != RSH_VERSION)
		return -EPROTONOSUPPORT;
	get_raw(&r, q.mac, RSH_MAC_LEN);
	q.cwd = aw_get_str(&r, RSH_MAX_REQUEST);
	q.argv = aw_get_strv(&r, RSH_MAX_ARGS, RSH_MAX_REQUEST, &q.argc);
	q.envp = aw_get_strv(&r, RSH_MAX_ENV, RSH_MAX_REQUEST, &q.envc);
	err = r.err ? r.err : aw_reader_done(&r);
	if (!err && request_check(&q) < 0)
		err = -EPROTO;
	if (err < 0) {
		rsh_request_clear(&q);
		return err;
	}
	*ret = q;
	return 0;
}

/* --- MACs --------------------------------------------------------------- */

static const char label_request[] = "vmenv-rsh 2 request";
static const char label_accept[] = "vmenv-rsh 2 accept";

/* HMAC(token, label NUL, server nonce, client nonce, ...) started. */
static void mac_start(struct hmac256 *h, const char *token, const char *label,
		      const struct rsh_nonces *nn)
{
	hmac256_init(h, token, strlen(token));
	hmac256_update(h, label, strlen(label) + 1);
	hmac256_update(h, nn->server, RSH_NONCE_LEN);
	hmac256_update(h, nn->client, RSH_NONCE_LEN);
}

int rsh_request_mac(const char *token, const struct rsh_nonces *nn,
		    const void *p, size_t n, uint8_t out[RSH_MAC_LEN])
{
	const uint8_t *b = p;
	struct hmac256 h;

	if (n < RSH_REQUEST_HEAD)
		return -EPROTO;
	mac_start(&h, token, label_request, nn);
	/* The version, then the body: everything but the MAC itself. */
	hmac256_update(&h, b, 4);
	hmac256_update(&h, b + RSH_REQUEST_HEAD, n - RSH_REQUEST_HEAD);
	hmac256_final(&h, out);
	return 0;
}

int rsh_request_sign(const char *token, const struct rsh_nonces *nn,
		     struct aw_buf *b, size_t start)
{
	uint8_t mac[RSH_MAC_LEN];
	int r;

	if (start > b->len)
		return -EINVAL;
	if (b->len - start < RSH_REQUEST_HEAD)
		return -EPROTO;
	r = rsh_request_mac(token, nn, b->data + start, b->len - start, mac);
	if (r == 0)
		memcpy(b->data + start + 4, mac, RSH_MAC_LEN);
	return r;
}

bool rsh_request_verify(const char *token, const struct rsh_nonces *nn,
			const void *p, size_t n)
{
	uint8_t want[RSH_MAC_LEN];
	uint32_t version;
	bool ok;

	if (rsh_request_version(p, n, &version) < 0 || version != RSH_VERSION ||
	    rsh_request_mac(token, nn, p, n, want) < 0)
		return false;
	ok = hmac256_equal(want, (const uint8_t *)p + 4);
	hmac256_wipe(want, sizeof(want));
	return ok;
}

void rsh_accept_mac(const char *token, const struct rsh_nonces *nn,
		    const uint8_t req_mac[RSH_MAC_LEN], uint32_t pid,
		    uint8_t out[RSH_MAC_LEN])
{
	uint8_t be[4] = {(uint8_t)(pid >> 24), (uint8_t)(pid >> 16),
			 (uint8_t)(pid >> 8), (uint8_t)pid};
	struct hmac256 h;

	mac_start(&h, token, label_accept, nn);
	hmac256_update(&h, req_mac, RSH_MAC_LEN);
	hmac256_update(&h, be, sizeof(be));
	hmac256_final(&h, out);
}

int rsh_accept_encode(uint32_t pid, const uint8_t mac[RSH_MAC_LEN],
		      struct aw_buf *b)
{
	return put_u32_raw(b, pid, mac, RSH_MAC_LEN);
}

int rsh_accept_decode(const void *p, size_t n, uint32_t *pid,
		      uint8_t mac[RSH_MAC_LEN])
{
	return get_u32_raw(p, n, pid, mac, RSH_MAC_LEN);
}

int rsh_nonce(uint8_t out[RSH_NONCE_LEN], unsigned flags)
{
	size_t got = 0;
	ssize_t n;

	while (got < RSH_NONCE_LEN) {
		n = getrandom(out + got, RSH_NONCE_LEN - got, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	return 0;
}

static const char *const rsh_type_names[RSH_TYPE_END] = {
    [RSH_REQUEST] = "REQUEST", [RSH_ACCEPT] = "ACCEPT",
    [RSH_REFUSE] = "REFUSE",   [RSH_STDIN] = "STDIN",
    [RSH_STDOUT] = "STDOUT",   [RSH_STDERR] = "STDERR",
    [RSH_SIGNAL] = "SIGNAL",   [RSH_EXIT] = "EXIT",
    [RSH_HELLO] = "HELLO",     [RSH_CHALLENGE] = "CHALLENGE",
};

const char *rsh_type_name(uint8_t type)
{
	if (type == 0 || type >= RSH_TYPE_END)
		return "unknown";
	return rsh_type_names[type];
}
