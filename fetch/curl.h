/* SPDX-License-Identifier: MIT */
/*
 * One HTTP(S)/file transfer with libcurl: the one file that includes
 * curl.h, linked only into the unprivileged download helper (main.c), never
 * into vmmd or vmenvctl. curl's error codes become negative errno here:
 *   -ENOENT 404/410 or a missing file://   -EACCES 401/403, TLS refused
 *   -EPROTO other 4xx, bad protocol        -ETIMEDOUT connect/low speed
 *   -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -EAGAIN (5xx, 408, 429)
 *   -EFBIG, -ENOMEM, -EIO (anything else), or the sink's -errno
 */
#ifndef VMENV_FETCH_CURL_H
#define VMENV_FETCH_CURL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetchwire.h"

struct fetchcurl {
	const struct fetchwire_request *req;
	/* Once, before the first byte: where the bytes start (req->offset,
	 * or 0 when the server ignored the range). 0 or -errno. */
	int (*begin)(void *data, uint64_t start);
	/* The bytes, in order. 0 or -errno (ends the transfer). */
	int (*write)(void *data, const void *p, size_t n);
	void *data;
	/* out */
	int32_t http_code;  /* when the failure is an HTTP status */
	bool cannot_resume; /* the server cannot continue from offset */
	char msg[FETCHWIRE_MSG_MAX]; /* why, in curl's words */
};

/* Once per process. 0 or -EIO. */
int fetchcurl_global_init(void);
/* One attempt. 0, or -errno as above with x->msg saying why. */
int fetchcurl_run(struct fetchcurl *x);

#endif
