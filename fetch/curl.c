/* SPDX-License-Identifier: MIT */
#include "curl.h"

#include "cleanup.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct xctx {
	struct fetchcurl *x;
	CURL *h;
	uint64_t offset; /* where the next byte goes */
	bool begun;
	int write_error;
};

int fetchcurl_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

/* Before the first byte: a server that ignores Range answers 200 with the
 * whole file, which then starts at 0 instead of continuing ours. */
static int begin(struct xctx *c)
{
	long code = 0;

	c->begun = true;
	if (c->offset != 0) {
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200)
			c->offset = 0;
	}
	return c->x->begin(c->x->data, c->offset);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct xctx *c = data;
	size_t n = size * nmemb;
	int r;

	if (!c->begun && (r = begin(c)) < 0) {
		c->write_error = r;
		return 0;
	}
	if (c->offset + n > c->x->req->max_size) {
		c->write_error = -EFBIG;
		return 0;
	}
	if ((r = c->x->write(c->x->data, ptr, n)) < 0) {
		c->write_error = r;
		return 0;
	}
	c->offset += n;
	return n;
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

static int setup(CURL *h, const struct fetchwire_request *q, struct xctx *c,
		 char *cerr)
{
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(h, opt, val); \
	} while (0)
	SET(CURLOPT_URL, q->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FAILONERROR, 1L);
	SET(CURLOPT_ERRORBUFFER, cerr);
	SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, (long)q->max_redirects);
	SET(CURLOPT_CONNECTTIMEOUT, (long)q->connect_timeout_s);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)q->low_speed_bps);
	SET(CURLOPT_LOW_SPEED_TIME, (long)q->low_speed_time_s);
	SET(CURLOPT_USERAGENT, "vmenv/" PACKAGE_VERSION);
	/* Large reads keep the copy into the pipe efficient. */
	SET(CURLOPT_BUFFERSIZE, 2L * 1024L * 1024L);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_RESUME_FROM_LARGE, (curl_off_t)q->offset);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max_size);
	if (q->proxy[0])
		SET(CURLOPT_PROXY, q->proxy);
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

static void say(struct fetchcurl *x, CURLcode rc, const char *cerr, int r)
{
	if (r == -EFBIG)
		snprintf(x->msg, sizeof(x->msg),
			 "larger than the catalog says");
	else if (rc == CURLE_WRITE_ERROR)
		snprintf(x->msg, sizeof(x->msg), "writing: %s", strerror(-r));
	else
		snprintf(x->msg, sizeof(x->msg), "%s",
			 cerr[0] ? cerr : curl_easy_strerror(rc));
	/* curl's buffer ends in a newline sometimes. */
	x->msg[strcspn(x->msg, "\n")] = '\0';
}

int fetchcurl_run(struct fetchcurl *x)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct xctx c = {.x = x, .offset = x->req->offset};
	CURLcode rc;
	long code = 0;
	int r;

	x->http_code = 0;
	x->cannot_resume = false;
	x->msg[0] = '\0';
	if (!(c.h = curl_easy_init()))
		return -ENOMEM;
	if ((r = setup(c.h, x->req, &c, cerr)) < 0) {
		curl_easy_cleanup(c.h);
		snprintf(x->msg, sizeof(x->msg), "cannot set up the transfer");
		return r;
	}
	rc = curl_easy_perform(c.h);
	curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c.h);
	/* Our partial file cannot be continued (no ranges, or it is longer
	 * than theirs): the caller starts over. */
	if ((rc == CURLE_HTTP_RETURNED_ERROR && code == 416) ||
	    rc == CURLE_RANGE_ERROR || rc == CURLE_BAD_DOWNLOAD_RESUME) {
		x->cannot_resume = true;
		snprintf(x->msg, sizeof(x->msg),
			 "cannot resume, starting over");
		return -EAGAIN;
	}
	r = curl_errno(rc, code, c.write_error);
	if (r < 0 && rc == CURLE_HTTP_RETURNED_ERROR)
		x->http_code = (int32_t)code;
	else if (r < 0)
		say(x, rc, cerr, r);
	return r;
}
