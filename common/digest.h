/* SPDX-License-Identifier: MIT */
/*
 * SHA-256, streamed (OpenSSL's EVP interface): images are hashed while
 * they download, and a resumed download first re-hashes what is already
 * on disk. The one file that includes OpenSSL.
 */
#ifndef VMENV_DIGEST_H
#define VMENV_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_HEX_LEN 64

struct digest;

/* 0 or -ENOMEM. */
int digest_new(struct digest **ret);
/* Accepts NULL. */
void digest_free(struct digest *d);
/* Starts over (a restarted download). */
int digest_reset(struct digest *d);
int digest_update(struct digest *d, const void *buf, size_t len);
/* Lowercase hex into hex[DIGEST_HEX_LEN + 1]; the digest then starts over. */
int digest_final_hex(struct digest *d, char *hex);
/* Feeds the first len bytes of fd (from offset 0, pread) into d. -EIO when
 * the file is shorter. progress (may be NULL) sees the bytes done so far. */
int digest_fd(struct digest *d, int fd, uint64_t len,
	      void (*progress)(void *data, uint64_t done, uint64_t total),
	      void *data);

/* HMAC-SHA256 of msg under key, lowercase hex into hex[DIGEST_HEX_LEN + 1].
 * 0 or -EIO. */
int digest_hmac_hex(const void *key, size_t keylen, const void *msg,
		    size_t msglen, char *hex);

#endif
