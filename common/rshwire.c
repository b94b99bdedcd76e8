// SPDX-License-Identifier: MIT
/*
 * rshwire: frames and the REQUEST codec of the guest-to-guest rsh service.
 * The server decodes what any process on the job's network sends, before
 * the token is checked: every count is bounded by the bytes left before
 * anything is allocated from it.
 */
#include "rshwire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* --- REQUEST ------------------------------------------------------------ */

static int request_check(const struct rsh_request *q)
{
	uint32_t i;

	if (q->version != RSH_VERSION || !q->token || !q->cwd)
		return -EINVAL;
	if (strlen(q->token) > AW_TOKEN_LEN)
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
	r = r ?: aw_put_str(b, q->token);
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
	free(q->token);
	free(q->cwd);
	strv_free(q->argv);
	strv_free(q->envp);
	memset(q, 0, sizeof(*q));
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
		r.err = -EPROTO;
	q.token = aw_get_str(&r, AW_TOKEN_LEN);
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

bool rsh_token_equal(const char *a, const char *b)
{
	volatile uint8_t diff = 0;
	size_t i;

	/* The length is public (always AW_TOKEN_LEN); the bytes are not. */
	if (strlen(a) != AW_TOKEN_LEN || strlen(b) != AW_TOKEN_LEN)
		return false;
	for (i = 0; i < AW_TOKEN_LEN; i++)
		diff |= (uint8_t)(a[i] ^ b[i]);
	return diff == 0;
}

static const char *const rsh_type_names[RSH_TYPE_END] = {
    [RSH_REQUEST] = "REQUEST", [RSH_ACCEPT] = "ACCEPT", [RSH_REFUSE] = "REFUSE",
    [RSH_STDIN] = "STDIN",     [RSH_STDOUT] = "STDOUT", [RSH_STDERR] = "STDERR",
    [RSH_SIGNAL] = "SIGNAL",   [RSH_EXIT] = "EXIT",
};

const char *rsh_type_name(uint8_t type)
{
	if (type == 0 || type >= RSH_TYPE_END)
		return "unknown";
	return rsh_type_names[type];
}
