// SPDX-License-Identifier: MIT
/*
 * vmenv-fetch: one download, for root (common/fetch.c in vmmd and
 * vmenvctl), in a process that holds nothing worth stealing. libcurl's TLS,
 * HTTP parsing and redirects face an untrusted image server or mirror; they
 * run here, never in root.
 *
 * Started by root as PID 1 of a PID namespace of its own, already as
 * fetch_user (setgroups, setresgid, setresuid, checked, NO_NEW_PRIVS, a
 * parent-death signal, between clone and exec: not one instruction of it
 * or of libcurl runs as root), with fds 0-3 as common/fetchwire.h says,
 * everything else closed and a clean environment; it takes no arguments. It checks the ids again and refuses
 * to run as root (uid or gid 0 in any of real, effective, saved): whoever
 * starts it by hand as root gets exit code 2 and nothing fetched. Then it
 * confines itself: no new privileges, not dumpable (no ptrace by other
 * processes of fetch_user), no core file, no file written (RLIMIT_FSIZE 0),
 * no fd above 3.
 *
 * The body goes to fd 1: where it starts, then the bytes; the result to fd
 * 3 after fd 1 is closed. Exit 0 once a result was written, 2 when it
 * refuses to start (the reason on stderr and, when it can, in a result).
 */
#include "curl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int write_full(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_full(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPROTO;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static void report(int err, int32_t http_code, bool cannot_resume,
		   const char *msg)
{
	struct fetchwire_result res = {
	    .magic = FETCHWIRE_RES_MAGIC,
	    .err = err,
	    .http_code = http_code,
	    .flags = cannot_resume ? FETCHWIRE_CANNOT_RESUME : 0,
	};

	snprintf(res.msg, sizeof(res.msg), "%s", msg);
	write_full(FETCHWIRE_FD_RESULT, &res, sizeof(res));
}

static int refuse(const char *why)
{
	fprintf(stderr, "vmenv-fetch: %s\n", why);
	report(-EPERM, 0, false, why);
	return 2;
}

/* No way back to root: no id is 0, and setting one fails. Then what the
 * starter did is made sure of: no new privileges, no ptrace by other
 * processes of the same user, no core file, no file written. */
static const char *confine(void)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	struct rlimit zero = {0, 0};

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return "cannot read its ids";
	if (ru == 0 || eu == 0 || su == 0 || rg == 0 || eg == 0 || sg == 0)
		return "refusing to run as root (fetch_user)";
	if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0)
		return "could become root again";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    setrlimit(RLIMIT_CORE, &zero) < 0 ||
	    setrlimit(RLIMIT_FSIZE, &zero) < 0)
		return "cannot confine itself";
	close_range(FETCHWIRE_FD_RESULT + 1, ~0u, 0);
	return NULL;
}

/* The body goes out in pieces of up to 1 MiB, or what came in the last
 * 100 ms: curl hands it over 16 KiB at a time, and a write (and a wakeup
 * of root) per 16 KiB cost more CPU than the copy into these buffers.
 * A piece is given to the pipe with vmsplice: the pipe takes its pages,
 * not a copy of them, and root's read copies them once. So a buffer is
 * filled again only once root has read all of it: the pipe holds fewer
 * bytes (FIONREAD) than went in after it. */
#define BATCH	 (1u << 20)
#define NBATCH	 3u
#define BATCH_MS 100

struct batch {
	char *buf[NBATCH];
	uint64_t end[NBATCH]; /* `total` after buffer i went in */
	uint64_t total;	      /* bytes put into the pipe */
	unsigned cur;
	size_t len;
	uint64_t sent_ms;
	bool copy; /* fd 1 is not a pipe (run by hand): plain writes */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int splice_full(int fd, const char *p, size_t n)
{
	while (n > 0) {
		struct iovec v = {.iov_base = (void *)(uintptr_t)p,
				  .iov_len = n};
		ssize_t w = vmsplice(fd, &v, 1, 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Until root has read all of buffer i: the pipe holds no byte of it. */
static int wait_read(struct batch *b, unsigned i)
{
	int in_pipe;

	for (;;) {
		if (ioctl(FETCHWIRE_FD_BODY, FIONREAD, &in_pipe) < 0)
			return -errno;
		if (b->total - (uint64_t)in_pipe >= b->end[i])
			return 0;
		nanosleep(&(struct timespec){0, 200 * 1000}, NULL);
	}
}

static int flush(struct batch *b)
{
	int r = b->copy
		    ? write_full(FETCHWIRE_FD_BODY, b->buf[0], b->len)
		    : splice_full(FETCHWIRE_FD_BODY, b->buf[b->cur], b->len);

	b->total += b->len;
	b->end[b->cur] = b->total;
	b->len = 0;
	b->sent_ms = now_ms();
	if (r == 0 && !b->copy) {
		b->cur = (b->cur + 1) % NBATCH;
		r = wait_read(b, b->cur);
	}
	return r;
}

static int batch_init(struct batch *b)
{
	int in_pipe;

	b->copy = ioctl(FETCHWIRE_FD_BODY, FIONREAD, &in_pipe) < 0;
	for (unsigned i = 0; i < NBATCH; i++)
		if (posix_memalign((void **)&b->buf[i], 4096, BATCH) != 0)
			return -ENOMEM;
	return 0;
}

static int on_begin(void *data, uint64_t start)
{
	struct batch *b = data;
	int r = write_full(FETCHWIRE_FD_BODY, &start, sizeof(start));

	b->total += sizeof(start);
	return r;
}

static int on_write(void *data, const void *p, size_t n)
{
	struct batch *b = data;
	const char *c = p;
	int r;

	while (n > 0) {
		size_t k = BATCH - b->len < n ? BATCH - b->len : n;

		memcpy(b->buf[b->cur] + b->len, c, k);
		b->len += k;
		c += k;
		n -= k;
		if (b->len == BATCH && (r = flush(b)) < 0)
			return r;
	}
	return b->len && now_ms() - b->sent_ms >= BATCH_MS ? flush(b) : 0;
}

static int get_request(struct fetchwire_request *q)
{
	char extra;

	if (read_full(FETCHWIRE_FD_REQ, q, sizeof(*q)) < 0 ||
	    read(FETCHWIRE_FD_REQ, &extra, 1) != 0 ||
	    q->magic != FETCHWIRE_REQ_MAGIC ||
	    !memchr(q->url, '\0', sizeof(q->url)) ||
	    !memchr(q->proxy, '\0', sizeof(q->proxy)))
		return -EPROTO;
	close(FETCHWIRE_FD_REQ);
	return 0;
}

int main(int argc, char **argv)
{
	static struct fetchwire_request q;
	static struct batch b;
	struct fetchcurl x = {
	    .req = &q, .begin = on_begin, .write = on_write, .data = &b};
	const char *why;
	int r;

	(void)argv;
	/* Root went away: nothing reads the body any more. */
	signal(SIGPIPE, SIG_DFL);
	if ((why = confine()))
		return refuse(why);
	if (argc != 1)
		return refuse("takes no arguments (see common/fetchwire.h)");
	if (get_request(&q) < 0)
		return refuse("bad request on fd 0");
	if (batch_init(&b) < 0) {
		report(-ENOMEM, 0, false, "out of memory");
		return 0;
	}
	if (fetchcurl_global_init() < 0) {
		report(-EIO, 0, false, "cannot initialize libcurl");
		return 0;
	}
	r = fetchcurl_run(&x);
	if (b.len && flush(&b) < 0 && r == 0)
		r = -EPIPE;
	/* The body ends before the result: root reads them in that order. */
	close(FETCHWIRE_FD_BODY);
	report(r, x.http_code, x.cannot_resume, x.msg);
	return 0;
}
