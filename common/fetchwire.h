/* SPDX-License-Identifier: MIT */
/*
 * Between root (common/fetch.c, in vmmd and vmenvctl) and the download
 * helper (fetch/vmenv-fetch, unprivileged), one transfer per helper:
 *
 *   fd 0  root -> helper   struct fetchwire_request, once, then EOF
 *   fd 1  helper -> root   the body: a u64 (host order) where the bytes
 *                          start (the request's offset, or 0 when the
 *                          server ignored the range), then the bytes
 *   fd 3  helper -> root   struct fetchwire_result, once, after fd 1 was
 *                          closed
 *
 * fd 2 is /dev/null: nothing the helper says reaches vmmd's log but the
 * result's message, which root escapes. Root believes none of it: it counts
 * the bytes against the size it asked for, hashes them itself, and takes
 * the result only as a reason for a failure (docs/images.md, "The download
 * helper"). The request goes through a pipe, not argv, so that URLs with
 * tokens and proxy passwords are not in /proc/PID/cmdline.
 */
#ifndef VMENV_FETCHWIRE_H
#define VMENV_FETCHWIRE_H

#include <stdint.h>

#define FETCHWIRE_REQ_MAGIC 0x76667271u /* "vfrq" */
#define FETCHWIRE_RES_MAGIC 0x76667273u /* "vfrs" */
/* CATALOG_MAX_URL and fetch_proxy's size: the request then fits in
 * PIPE_BUF, one atomic write into any pipe, never waiting for the
 * helper. */
#define FETCHWIRE_URL_MAX   2048
#define FETCHWIRE_PROXY_MAX 256
#define FETCHWIRE_MSG_MAX   256

enum { FETCHWIRE_FD_REQ = 0, FETCHWIRE_FD_BODY = 1, FETCHWIRE_FD_RESULT = 3 };

struct fetchwire_request {
	uint32_t magic;
	uint32_t connect_timeout_s;
	uint32_t low_speed_time_s;
	uint32_t low_speed_bps;
	uint32_t max_redirects;
	uint32_t pad;
	uint64_t offset;		 /* resume from */
	uint64_t max_size;		 /* more is an error */
	char url[FETCHWIRE_URL_MAX];	 /* NUL-terminated */
	char proxy[FETCHWIRE_PROXY_MAX]; /* "" for the environment's */
};

_Static_assert(sizeof(struct fetchwire_request) <= 4096,
	       "the request fits in PIPE_BUF");

/* The server cannot continue the partial file (no ranges, or ours is
 * longer than theirs): start over. */
#define FETCHWIRE_CANNOT_RESUME 0x1u

struct fetchwire_result {
	uint32_t magic;
	int32_t err;	   /* 0, or a -errno of fetch.h's list */
	int32_t http_code; /* the status when err comes from it, else 0 */
	uint32_t flags;	   /* FETCHWIRE_CANNOT_RESUME */
	char msg[FETCHWIRE_MSG_MAX]; /* libcurl's words, NUL-terminated */
};

#endif
