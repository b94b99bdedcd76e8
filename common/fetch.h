/* SPDX-License-Identifier: MIT */
/*
 * HTTP(S)/file transfers, done by the unprivileged download helper
 * (fetch/vmenv-fetch, common/fetchwire.h): root never runs libcurl. This
 * side starts the helper as opts->user (in a PID namespace of its own when
 * the caller is root), hands it the request, reads the body into a sink
 * root owns and believes nothing it did not check: the bytes are counted
 * against max_size as they come (one more is -EFBIG and the helper is
 * killed), where they start must be the offset asked for or 0, and the
 * result must be well formed; the sha256 is the caller's (imgpull.c
 * hashes what it writes). Blocking calls, meant for a worker
 * thread (vmmd) or a CLI; they can be cancelled through a flag (the helper
 * is killed). Errors are negative errno:
 *   -ENOENT 404/410 or a missing file://   -EACCES 401/403, TLS refused
 *   -EPROTO other 4xx, bad protocol, or a helper that broke the protocol
 *   -ETIMEDOUT connect/low speed, or a helper silent for too long
 *   -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -EAGAIN (5xx, 408, 429)
 *   -EFBIG, or the sink's -errno writing   -ECANCELED
 *   -EIO the helper died; -EPERM fetch_user is root or unusable
 */
#ifndef VMENV_FETCH_H
#define VMENV_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fetch_opts {
	uint32_t connect_timeout_s;
	/* A transfer slower than low_speed_bps for low_speed_time_s is
	 * abandoned (a stalled server). */
	uint32_t low_speed_time_s;
	uint32_t low_speed_bps;
	uint32_t retries;	 /* attempts after the first */
	uint32_t retry_delay_ms; /* first back-off; doubles, at most 30 s */
	uint32_t max_redirects;
	const char *proxy; /* NULL or "": libcurl's default (environment) */
	/* The helper program, and the user it runs as when the caller is
	 * root (a name; never one whose uid or gid is 0). A caller that is
	 * not root runs it as itself. */
	const char *helper;
	const char *user;
};

typedef void (*fetch_progress_f)(void *data, uint64_t done, uint64_t total);

struct fetch_xfer {
	const char *url;
	uint64_t offset;   /* in: resume from; out: bytes taken by the sink */
	uint64_t max_size; /* the expected size: more is an error */
	/* fill() takes at most max bytes of the body from fd (non-blocking)
	 * into the sink: how many (> 0), 0 at the end, -EAGAIN when none
	 * are there yet, or -errno to end the transfer. restart() empties
	 * the sink to start over at 0 (the server ignored the range). */
	ssize_t (*fill)(void *sink, int fd, size_t max);
	int (*restart)(void *sink);
	void *sink;
	const struct fetch_opts *opts;
	fetch_progress_f progress; /* may be NULL */
	void *progress_data;
	const atomic_int *cancel; /* may be NULL */
	/* out */
	bool restarted; /* the server ignored the range: the sink was emptied */
};

/* Retryable after a back-off? */
bool fetch_retryable(int r);
/* One attempt. 0, or -errno as above with a message in err. */
int fetch_once(struct fetch_xfer *x, char *err, size_t errlen);
/* A small document (the catalog) into memory, at most max bytes, with the
 * retries of opts; cancel may be NULL. *ret is malloc'ed and
 * NUL-terminated. */
int fetch_text(const char *url, const struct fetch_opts *opts, size_t max,
	       const atomic_int *cancel, char **ret, size_t *ret_len, char *err,
	       size_t errlen);
/* Why a helper that root started had no PID namespace of its own (a
 * positive errno: EPERM where the caller may not make one, a container),
 * the first time only; 0 when none was refused or it was told already.
 * The caller logs it: such a helper is a plain child, and what it starts
 * may outlive it. */
int fetch_pidns_refusal(void);
/* Sleeps ms, waking early when *cancel is set. -ECANCELED then. */
int fetch_sleep(uint32_t ms, const atomic_int *cancel);

#endif
