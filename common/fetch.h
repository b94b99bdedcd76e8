/* SPDX-License-Identifier: MIT */
/*
 * HTTP(S)/file transfers with libcurl: the one file that includes curl.h.
 * Blocking calls, meant for a worker thread (vmmd) or a CLI; they never
 * raise signals (CURLOPT_NOSIGNAL) and can be cancelled through a flag.
 * curl's error codes become negative errno here:
 *   -ENOENT 404/410 or a missing file://   -EACCES 401/403, TLS refused
 *   -EPROTO other 4xx, bad protocol        -ETIMEDOUT connect/low speed
 *   -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -EAGAIN (5xx, 408, 429)
 *   -EFBIG, or the sink's -errno writing   -ECANCELED
 */
#ifndef VMENV_FETCH_H
#define VMENV_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
};

typedef void (*fetch_progress_f)(void *data, uint64_t done, uint64_t total);

struct fetch_xfer {
	const char *url;
	uint64_t offset;   /* in: resume from; out: bytes taken by the sink */
	uint64_t max_size; /* the expected size: more is an error */
	/* The bytes from offset on go to write() (0, or -errno to end the
	 * transfer); restart() empties the sink to start over at 0 (the
	 * server ignored the range). */
	int (*write)(void *sink, const void *p, size_t n);
	int (*restart)(void *sink);
	void *sink;
	const struct fetch_opts *opts;
	fetch_progress_f progress; /* may be NULL */
	void *progress_data;
	const atomic_int *cancel; /* may be NULL */
	/* out */
	bool restarted; /* the server ignored the range: the sink was emptied */
};

/* Once per process, before any thread transfers. 0 or -EIO. */
int fetch_global_init(void);
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
/* Sleeps ms, waking early when *cancel is set. -ECANCELED then. */
int fetch_sleep(uint32_t ms, const atomic_int *cancel);

#endif
