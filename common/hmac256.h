/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) in plain C, for the static
 * guest binaries (vmenv-agent, vmenv-rsh), which link no crypto library:
 * the rsh service's challenge-response (common/rshwire.h). vmmd hashes
 * images with OpenSSL (common/digest.h); test_rshwire checks this against
 * it and against RFC 4231's vectors. No I/O, no allocation.
 */
#ifndef VMENV_HMAC256_H
#define VMENV_HMAC256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	 32u
#define SHA256_BLOCK_LEN 64u

struct sha256 {
	uint32_t h[8];
	uint64_t bytes; /* fed so far */
	uint8_t buf[SHA256_BLOCK_LEN];
	size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t n);
/* Writes the digest and wipes *s. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);

struct hmac256 {
	struct sha256 inner;
	struct sha256 outer;
};

/* A key longer than a block is hashed first, as RFC 2104 says. */
void hmac256_init(struct hmac256 *h, const void *key, size_t keylen);
void hmac256_update(struct hmac256 *h, const void *p, size_t n);
/* Writes the MAC and wipes *h. */
void hmac256_final(struct hmac256 *h, uint8_t out[SHA256_LEN]);

/* Equal in a time that does not depend on where they differ. */
bool hmac256_equal(const uint8_t a[SHA256_LEN], const uint8_t b[SHA256_LEN]);

/* Overwrites n bytes in a way the compiler keeps. */
void hmac256_wipe(void *p, size_t n);

#endif
