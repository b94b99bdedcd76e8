/* SPDX-License-Identifier: MIT */
#include "digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct digest {
	EVP_MD_CTX *ctx;
};

int digest_reset(struct digest *d)
{
	return EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int digest_new(struct digest **ret)
{
	struct digest *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || digest_reset(d) < 0) {
		digest_free(d);
		return -ENOMEM;
	}
	*ret = d;
	return 0;
}

void digest_free(struct digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

int digest_update(struct digest *d, const void *buf, size_t len)
{
	return EVP_DigestUpdate(d->ctx, buf, len) == 1 ? 0 : -EIO;
}

int digest_final_hex(struct digest *d, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1 || n * 2 > DIGEST_HEX_LEN)
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return digest_reset(d);
}

int digest_fd(struct digest *d, int fd, uint64_t len,
	      void (*progress)(void *data, uint64_t done, uint64_t total),
	      void *data)
{
	static const size_t chunk = 1 << 20;
	unsigned char *buf = malloc(chunk);
	uint64_t done = 0;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (done < len && r == 0) {
		size_t want = len - done < chunk ? (size_t)(len - done) : chunk;
		ssize_t n = pread(fd, buf, want, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		r = digest_update(d, buf, (size_t)n);
		done += (uint64_t)n;
		if (progress)
			progress(data, done, len);
	}
	free(buf);
	return r;
}

static void to_hex(const unsigned char *b, size_t n, char *hex)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = x[b[i] >> 4];
		hex[2 * i + 1] = x[b[i] & 15];
	}
	hex[2 * n] = '\0';
}

int digest_hmac_hex(const void *key, size_t keylen, const void *msg,
		    size_t msglen, char *hex)
{
	unsigned char out[32];
	size_t outlen = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, msg,
		       msglen, out, sizeof(out), &outlen) ||
	    outlen != sizeof(out))
		return -EIO;
	to_hex(out, outlen, hex);
	return 0;
}
