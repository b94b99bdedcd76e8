// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the decoders that read bytes from an untrusted
 * peer: agentwire's SETUP (versions 1 and 2; the agent decodes what vmmd
 * sends, vmmd's side is the reverse) and EXEC, rshwire's REQUEST (anyone
 * on the job's segment sends it before the token is checked) and both
 * headers. The first input byte picks the decoder; what decodes must
 * encode again to the very same bytes.
 * Built and run by test/fuzz/run-wire-fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentwire.h"
#include "rshwire.h"

static void same_bytes(const struct aw_buf *b, const uint8_t *p, size_t n)
{
	if (b->len != n || memcmp(b->data, p, n) != 0)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aw_hdr ah;
	struct rsh_hdr rh;

	if (size < 1)
		return 0;
	switch (data[0] % 5) {
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
