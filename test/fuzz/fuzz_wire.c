// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the decoders that read bytes from an untrusted
 * peer: agentwire's SETUP (versions 1 and 2; the agent decodes what vmmd
 * sends, vmmd's side is the reverse) and EXEC, rshwire's HELLO/CHALLENGE,
 * REQUEST and ACCEPT (a peer on the job's segment sends them before or
 * while it is authenticated) and both headers. The first input byte picks
 * the decoder; what decodes must encode again to the very same bytes.
 * Selector 5 feeds a bulk port's stream (common/bulkscan.c) in pieces the
 * input chooses, and compares with a plain search over the whole stream.
 * Selector 6 is every frame the agent sends, as vmmd decodes it
 * (common/agentmsg.c). Selector 8 checks a REQUEST's MAC as the rsh server
 * does (on any bytes: no crash, and a payload signed here must verify, one
 * with a bit flipped not).
 * Built and run by test/fuzz/run-wire-fuzz.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentmsg.h"
#include "agentwire.h"
#include "bulkscan.h"
#include "rshwire.h"

static void same_bytes(const struct aw_buf *b, const uint8_t *p, size_t n)
{
	/* An empty payload (SETUP_OK) encodes to nothing: no buffer. */
	if (b->len != n || (n && memcmp(b->data, p, n) != 0))
		abort();
}

static void setup(const uint8_t *p, size_t n, uint32_t version)
{
	struct aw_setup s;
	struct aw_buf b = {0};

	if (aw_setup_decode(p, n, version, &s) != 0)
		return;
	if (aw_setup_encode(&s, version, &b) != 0)
		abort();
	same_bytes(&b, p, n);
	aw_buf_free(&b);
	aw_setup_clear(&s);
}

static void exec_frame(const uint8_t *p, size_t n)
{
	struct aw_exec e;
	struct aw_buf b = {0};

	if (aw_exec_decode(p, n, &e) != 0)
		return;
	if (aw_exec_encode(&e, &b) != 0)
		abort();
	same_bytes(&b, p, n);
	aw_buf_free(&b);
	aw_exec_clear(&e);
}

static void request(const uint8_t *p, size_t n)
{
	struct rsh_request q;
	struct aw_buf b = {0};

	if (rsh_request_decode(p, n, &q) != 0)
		return;
	if (rsh_request_encode(&q, &b) != 0)
		abort();
	same_bytes(&b, p, n);
	aw_buf_free(&b);
	rsh_request_clear(&q);
}

static void hello(const uint8_t *p, size_t n)
{
	uint8_t nonce[RSH_NONCE_LEN], mac[RSH_MAC_LEN];
	struct aw_buf b = {0};
	uint32_t v, pid;
	int r = rsh_hello_decode(p, n, &v, nonce);

	if (r == 0 || r == -EPROTONOSUPPORT) {
		if (rsh_hello_encode(v, nonce, &b) != 0)
			abort();
		same_bytes(&b, p, n);
	}
	b.len = 0;
	if (rsh_accept_decode(p, n, &pid, mac) == 0) {
		if (rsh_accept_encode(pid, mac, &b) != 0)
			abort();
		same_bytes(&b, p, n);
	}
	aw_buf_free(&b);
}

/* The server's check on whatever arrives, and the MAC's coverage. */
static void request_mac(const uint8_t *p, size_t n)
{
	static const char token[] = "0123456789abcdef0123456789abcdef"
				    "0123456789abcdef0123456789abcdef";
	struct rsh_nonces nn;
	struct aw_buf b = {0};
	size_t bit;

	if (n < 2 * RSH_NONCE_LEN + 2)
		return;
	memcpy(nn.server, p, RSH_NONCE_LEN);
	memcpy(nn.client, p + RSH_NONCE_LEN, RSH_NONCE_LEN);
	bit = (size_t)p[2 * RSH_NONCE_LEN] << 8 | p[2 * RSH_NONCE_LEN + 1];
	p += 2 * RSH_NONCE_LEN + 2;
	n -= 2 * RSH_NONCE_LEN + 2;
	(void)rsh_request_verify(token, &nn, p, n);
	if (aw_put_bytes(&b, p, n) != 0)
		abort();
	if (rsh_request_sign(token, &nn, &b, 0) != 0) {
		if (n >= RSH_REQUEST_HEAD)
			abort();
		aw_buf_free(&b);
		return;
	}
	/* Signed here: verifies exactly when the version is ours. */
	if (rsh_request_verify(token, &nn, b.data, b.len) !=
	    (b.data[0] == 0 && b.data[1] == 0 && b.data[2] == 0 &&
	     b.data[3] == RSH_VERSION))
		abort();
	bit %= b.len * 8;
	b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	if (rsh_request_verify(token, &nn, b.data, b.len))
		abort();
	aw_buf_free(&b);
}

/* A frame from the agent as vmmd gets it: the type, then a byte whose
 * bit 0 makes the session a command's (1) rather than the channel's, and
 * bit 1 says the session asked for a bulk port; the rest is the payload.
 * What decodes must encode again to the same bytes, and a string it
 * gives has the length the payload said. */
static void agent_frame(const uint8_t *p, size_t n)
{
	struct aw_agent_msg m;
	struct aw_buf b = {0};
	struct aw_hdr h;
	bool bulk;

	if (n < 2)
		return;
	h.type = p[0];
	h.session = p[1] & 1;
	bulk = p[1] & 2;
	h.len = (uint32_t)(n - 2);
	if (aw_agent_msg_decode(&h, p + 2, bulk, &m) != 0)
		return;
	if (aw_agent_msg_encode(&m, bulk, &b) != 0)
		abort();
	same_bytes(&b, p + 2, n - 2);
	if (m.data && (m.data < p + 2 || m.data + m.len > p + n))
		abort();
	aw_buf_free(&b);
	aw_agent_msg_clear(&m);
}

/* Markers the seeds contain (run-wire-fuzz). */
static const uint8_t mark_s[AW_BULK_MARK_LEN + 1] = "\xffSTARTmarker....";
static const uint8_t mark_e[AW_BULK_MARK_LEN + 1] = "\xff"
						    "ENDmarker......";

/* What the scanner must give: the bytes between the first start marker
 * and the next end marker. *ended: the end marker is there. */
static size_t reference(const uint8_t *p, size_t n, size_t *off, bool *ended)
{
	const uint8_t *s = memmem(p, n, mark_s, AW_BULK_MARK_LEN), *e;

	*ended = false;
	*off = 0;
	if (!s)
		return 0;
	*off = (size_t)(s - p) + AW_BULK_MARK_LEN;
	e = memmem(p + *off, n - *off, mark_e, AW_BULK_MARK_LEN);
	*ended = e != NULL;
	return e ? (size_t)(e - (p + *off)) : n - *off;
}

static void bulk_stream(const uint8_t *p, size_t n)
{
	uint8_t *buf, *got;
	size_t piece, done = 0, ngot = 0, off, want;
	struct bulkscan sc;
	bool ended = false, want_end;

	if (n < 1)
		return;
	piece = 1 + p[0] % 64;
	p++, n--;
	buf = malloc(BULKSCAN_HEADROOM + n + 1);
	got = malloc(n + 1);
	if (!buf || !got)
		abort();
	bulkscan_arm(&sc, mark_s, mark_e);
	while (done < n && !ended) {
		size_t k = piece < n - done ? piece : n - done, len;
		const uint8_t *out;

		memcpy(buf + BULKSCAN_HEADROOM, p + done, k);
		bulkscan_feed(&sc, buf + BULKSCAN_HEADROOM, k, &out, &len,
			      &ended);
		memcpy(got + ngot, out, len);
		ngot += len;
		done += k;
		if (sc.nheld > BULKSCAN_HEADROOM)
			abort();
	}
	want = reference(p, n, &off, &want_end);
	/* Without the end yet, at most a marker's prefix is held back. */
	if (ended != want_end || ngot > want ||
	    (ended ? ngot != want : want - ngot > BULKSCAN_HEADROOM) ||
	    memcmp(got, p + off, ngot) != 0)
		abort();
	free(buf);
	free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aw_hdr ah;
	struct rsh_hdr rh;

	if (size < 1)
		return 0;
	switch (data[0] % 9) {
	case 0:
		setup(data + 1, size - 1, 1);
		break;
	case 1:
		setup(data + 1, size - 1, 2);
		break;
	case 2:
		exec_frame(data + 1, size - 1);
		break;
	case 3:
		request(data + 1, size - 1);
		break;
	case 5:
		bulk_stream(data + 1, size - 1);
		break;
	case 6:
		agent_frame(data + 1, size - 1);
		break;
	case 7:
		hello(data + 1, size - 1);
		break;
	case 8:
		request_mac(data + 1, size - 1);
		break;
	default:
		if (size >= 1 + AW_HDR_LEN)
			(void)aw_hdr_decode(data + 1, AW_MAX_AGENT_PAYLOAD,
					    &ah);
		if (size >= 1 + RSH_HDR_LEN)
			(void)rsh_hdr_decode(data + 1, RSH_MAX_DATA, &rh);
		break;
	}
	return 0;
}
