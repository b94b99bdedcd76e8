/* SPDX-License-Identifier: MIT */
#include "fetch.h"

#include "cleanup.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct xctx {
	struct fetch_xfer *x;
	const atomic_int *cancel; /* fetch_text */
	CURL *h;
	bool checked_range;
	int write_error;
	/* fetch_text: the growing buffer. */
	char *buf;
	size_t len, max;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result;

static void do_init(void)
{
	init_result =
	    curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

int fetch_global_init(void)
{
	pthread_once(&init_once, do_init);
	return init_result;
}

bool fetch_retryable(int r)
{
	switch (r) {
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -EAGAIN:
	case -EIO:
		return true;
	default:
		return false;
	}
}

int fetch_sleep(uint32_t ms, const atomic_int *cancel)
{
	while (ms > 0) {
		uint32_t step = ms < 100 ? ms : 100;

		if (cancel && atomic_load(cancel))
			return -ECANCELED;
		nanosleep(&(struct timespec){step / 1000,
					     (long)(step % 1000) * 1000000L},
			  NULL);
		ms -= step;
	}
	return cancel && atomic_load(cancel) ? -ECANCELED : 0;
}

static int start_over(struct fetch_xfer *x)
{
	int r = x->restart(x->sink);

	if (r < 0)
		return r;
	x->offset = 0;
	x->restarted = true;
	return 0;
}

/* A server that ignores Range answers 200 with the whole file: start the
 * file and the hash over instead of appending a second copy. */
static int check_range(struct xctx *c)
{
	struct fetch_xfer *x = c->x;
	long code = 0;

	c->checked_range = true;
	if (x->offset == 0)
		return 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return 0;
	return start_over(x);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct xctx *c = data;
	struct fetch_xfer *x = c->x;
	size_t n = size * nmemb;
	int r;

	if (!c->checked_range && (r = check_range(c)) < 0) {
		c->write_error = r;
		return 0;
	}
	if (x->offset + n > x->max_size) {
		c->write_error = -EFBIG;
		return 0;
	}
	if ((r = x->write(x->sink, ptr, n)) < 0) {
		c->write_error = r;
		return 0;
	}
	x->offset += n;
	return n;
}

static size_t on_text(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct xctx *c = data;
	size_t n = size * nmemb;
	char *nb;

	if (c->len + n > c->max) {
		c->write_error = -EFBIG;
		return 0;
	}
	nb = realloc(c->buf, c->len + n + 1);
	if (!nb) {
		c->write_error = -ENOMEM;
		return 0;
	}
	c->buf = nb;
	memcpy(c->buf + c->len, ptr, n);
	c->len += n;
	c->buf[c->len] = '\0';
	return n;
}

static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xctx *c = data;
	struct fetch_xfer *x = c->x;
	const atomic_int *cancel = x ? x->cancel : c->cancel;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (cancel && atomic_load(cancel))
		return 1;
	if (x && x->progress)
		x->progress(x->progress_data, x->offset, x->max_size);
	return 0;
}

static int http_errno(long code)
{
	if (code == 404 || code == 410)
		return -ENOENT;
	if (code == 401 || code == 403)
		return -EACCES;
	if (code == 408 || code == 429 || code >= 500)
		return -EAGAIN;
	return -EPROTO;
}

/* curl's codes that mean something specific to a caller; the rest are
 * -EIO (retryable). */
static const struct {
	CURLcode rc;
	int err;
} curl_codes[] = {
    {CURLE_OK, 0},
    {CURLE_ABORTED_BY_CALLBACK, -ECANCELED},
    {CURLE_OPERATION_TIMEDOUT, -ETIMEDOUT},
    {CURLE_COULDNT_CONNECT, -ECONNREFUSED},
    {CURLE_COULDNT_RESOLVE_HOST, -EHOSTUNREACH},
    {CURLE_COULDNT_RESOLVE_PROXY, -EHOSTUNREACH},
    {CURLE_PARTIAL_FILE, -ECONNRESET},
    {CURLE_RECV_ERROR, -ECONNRESET},
    {CURLE_SEND_ERROR, -ECONNRESET},
    {CURLE_GOT_NOTHING, -ECONNRESET},
    {CURLE_FILE_COULDNT_READ_FILE, -ENOENT},
    {CURLE_FILESIZE_EXCEEDED, -EFBIG},
    {CURLE_PEER_FAILED_VERIFICATION, -EACCES},
    {CURLE_SSL_CONNECT_ERROR, -EACCES},
    {CURLE_SSL_CERTPROBLEM, -EACCES},
    {CURLE_SSL_CACERT_BADFILE, -EACCES},
    {CURLE_UNSUPPORTED_PROTOCOL, -EPROTO},
    {CURLE_URL_MALFORMAT, -EPROTO},
    {CURLE_TOO_MANY_REDIRECTS, -EPROTO},
    {CURLE_OUT_OF_MEMORY, -ENOMEM},
};

static int curl_errno(CURLcode rc, long code, int write_error)
{
	if (rc == CURLE_HTTP_RETURNED_ERROR)
		return http_errno(code);
	if (rc == CURLE_WRITE_ERROR)
		return write_error ? write_error : -EIO;
	for (size_t i = 0; i < ARRAY_SIZE(curl_codes); i++)
		if (curl_codes[i].rc == rc)
			return curl_codes[i].err;
	return -EIO;
}

static void describe(char *err, size_t errlen, const char *url, CURLcode rc,
		     long code, int r, const char *cerr)
{
	if (rc == CURLE_HTTP_RETURNED_ERROR)
		snprintf(err, errlen, "%s: HTTP %ld", url, code);
	else if (r == -EFBIG)
		snprintf(err, errlen, "%s: larger than the catalog says", url);
	else if (rc == CURLE_WRITE_ERROR)
		snprintf(err, errlen, "%s: writing: %s", url, strerror(-r));
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(err, errlen, "%s: cancelled", url);
	else
		snprintf(err, errlen, "%s: %s", url,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
	/* curl's buffer ends in a newline sometimes. */
	err[strcspn(err, "\n")] = '\0';
}

static int setup(CURL *h, const char *url, const struct fetch_opts *o,
		 struct xctx *c, char *cerr)
{
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(h, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FAILONERROR, 1L);
	SET(CURLOPT_ERRORBUFFER, cerr);
	SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, (long)o->max_redirects);
	SET(CURLOPT_CONNECTTIMEOUT, (long)o->connect_timeout_s);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)o->low_speed_bps);
	SET(CURLOPT_LOW_SPEED_TIME, (long)o->low_speed_time_s);
	SET(CURLOPT_USERAGENT, "vmenv/" PACKAGE_VERSION);
	/* Large reads keep the copy and hash loops efficient. */
	SET(CURLOPT_BUFFERSIZE, 2L * 1024L * 1024L);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, c);
	SET(CURLOPT_WRITEDATA, c);
	if (o->proxy && *o->proxy)
		SET(CURLOPT_PROXY, o->proxy);
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

int fetch_once(struct fetch_xfer *x, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct xctx c = {.x = x};
	CURLcode rc;
	long code = 0;
	int r;

	x->restarted = false;
	if (!(c.h = curl_easy_init()))
		return -ENOMEM;
	r = setup(c.h, x->url, x->opts, &c, cerr);
	if (r == 0 && (curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_data) !=
			   CURLE_OK ||
		       curl_easy_setopt(c.h, CURLOPT_RESUME_FROM_LARGE,
					(curl_off_t)x->offset) != CURLE_OK ||
		       curl_easy_setopt(c.h, CURLOPT_MAXFILESIZE_LARGE,
					(curl_off_t)x->max_size) != CURLE_OK))
		r = -EINVAL;
	if (r < 0) {
		curl_easy_cleanup(c.h);
		snprintf(err, errlen, "%s: cannot set up the transfer", x->url);
		return r;
	}
	rc = curl_easy_perform(c.h);
	curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c.h);
	/* The server cannot continue our partial file (no ranges, or ours
	 * is longer than theirs): the next attempt starts over. */
	if ((rc == CURLE_HTTP_RETURNED_ERROR && code == 416) ||
	    rc == CURLE_RANGE_ERROR || rc == CURLE_BAD_DOWNLOAD_RESUME) {
		if ((r = start_over(x)) < 0)
			return r;
		snprintf(err, errlen, "%s: cannot resume, starting over",
			 x->url);
		return -EAGAIN;
	}
	r = curl_errno(rc, code, c.write_error);
	if (r < 0)
		describe(err, errlen, x->url, rc, code, r, cerr);
	return r;
}

static int text_once(const char *url, const struct fetch_opts *o, size_t max,
		     struct xctx *c, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	long code = 0;
	int r;

	c->len = 0;
	c->max = max;
	c->write_error = 0;
	if (!(c->h = curl_easy_init()))
		return -ENOMEM;
	r = setup(c->h, url, o, c, cerr);
	if (r == 0 &&
	    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_text) != CURLE_OK)
		r = -EINVAL;
	if (r < 0) {
		curl_easy_cleanup(c->h);
		return r;
	}
	rc = curl_easy_perform(c->h);
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c->h);
	r = curl_errno(rc, code, c->write_error);
	if (r < 0)
		describe(err, errlen, url, rc, code, r, cerr);
	return r;
}

int fetch_text(const char *url, const struct fetch_opts *opts, size_t max,
	       const atomic_int *cancel, char **ret, size_t *ret_len, char *err,
	       size_t errlen)
{
	struct xctx c = {.cancel = cancel};
	uint32_t delay = opts->retry_delay_ms;
	int r;

	for (uint32_t attempt = 0;; attempt++) {
		r = text_once(url, opts, max, &c, err, errlen);
		if (r == 0 || !fetch_retryable(r) || attempt >= opts->retries ||
		    fetch_sleep(delay, cancel) < 0)
			break;
		delay = delay > 15000 ? 30000 : delay * 2;
	}
	if (r < 0) {
		free(c.buf);
		return r;
	}
	if (!c.buf && !(c.buf = calloc(1, 1)))
		return -ENOMEM;
	*ret = c.buf;
	if (ret_len)
		*ret_len = c.len;
	return 0;
}
