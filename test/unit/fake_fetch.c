// SPDX-License-Identifier: MIT
/*
 * A download helper that lies, for test_fetch: it speaks
 * common/fetchwire.h and does what the URL's "fake:MODE" says instead of
 * downloading. Root (common/fetch.c) must refuse every lie.
 *
 *   report      the body is what it is: "uid=U gid=G groups=N nnp=B
 *               fds=0,1,2,3 env=A|B|..." (how root started it)
 *   oversize    more bytes than max_size
 *   liar        exactly max_size bytes, all 'x' (a wrong sha256)
 *   short       half of them, and "done"
 *   badstart    the bytes "start" at 12345
 *   shortstart  3 bytes of the start, then the end
 *   restart     the bytes start at 0 whatever the offset (a server that
 *               ignored the range): 'x' bytes
 *   noresult    the bytes, no result
 *   badresult   a result with the wrong magic
 *   evilmsg     an unknown error with escapes and a newline in its words
 *   crash       a segmentation fault after some bytes
 *   hang        some bytes, then nothing, forever
 *   orphan      forks a process that keeps the pipes open and sleeps 10 s, sends
 *               the bytes of "liar" and exits
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fetchwire.h"

extern char **environ;

static struct fetchwire_request q;

static void put(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w <= 0)
			exit(3);
		c += w;
		n -= (size_t)w;
	}
}

static void start_at(uint64_t at)
{
	put(FETCHWIRE_FD_BODY, &at, sizeof(at));
}

static void bytes(uint64_t n)
{
	static char buf[65536];

	memset(buf, 'x', sizeof(buf));
	while (n > 0) {
		size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);

		put(FETCHWIRE_FD_BODY, buf, k);
		n -= k;
	}
}

static void result(int err, const char *msg, uint32_t magic)
{
	struct fetchwire_result r = {.magic = magic, .err = err};

	snprintf(r.msg, sizeof(r.msg), "%s", msg);
	close(FETCHWIRE_FD_BODY);
	put(FETCHWIRE_FD_RESULT, &r, sizeof(r));
}

static void report(void)
{
	char text[8192];
	size_t n = 0;
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int self = d ? dirfd(d) : -1;

	n += (size_t)snprintf(
	    text + n, sizeof(text) - n,
	    "uid=%u gid=%u groups=%d nnp=%d fds=", (unsigned)getuid(),
	    (unsigned)getgid(), getgroups(0, NULL),
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != self)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s,",
					      e->d_name);
	if (d)
		closedir(d);
	n += (size_t)snprintf(text + n, sizeof(text) - n, " env=");
	for (char **v = environ; *v && n < sizeof(text) - 1; v++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s|", *v);
	start_at(q.offset);
	put(FETCHWIRE_FD_BODY, text, strlen(text));
	result(0, "", FETCHWIRE_RES_MAGIC);
}

static void orphan(void)
{
	if (fork() == 0) {
		sleep(10);
		_exit(0);
	}
	start_at(q.offset);
	bytes(q.max_size - q.offset);
	result(0, "", FETCHWIRE_RES_MAGIC);
}

/* The lies about where the bytes start. */
static bool lie_about_start(const char *mode)
{
	if (strcmp(mode, "badstart") == 0) {
		start_at(12345);
		bytes(10);
	} else if (strcmp(mode, "shortstart") == 0) {
		put(FETCHWIRE_FD_BODY, "abc", 3);
	} else if (strcmp(mode, "restart") == 0) {
		start_at(0);
		bytes(q.max_size);
	} else {
		return false;
	}
	result(0, "", FETCHWIRE_RES_MAGIC);
	return true;
}

/* A real fault: as PID 1 of its namespace (root started it), a signal
 * it sends itself would be ignored. */
static void crash(void)
{
	volatile char *p =
	    mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	p[0] = 1;
}

/* Under ASan a fault must stay a fault (the "crash" lie). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_segv=0";
}

/* The lies about the end. */
static void end(const char *mode)
{
	if (strcmp(mode, "crash") == 0)
		crash();
	while (strcmp(mode, "hang") == 0)
		pause();
	if (strcmp(mode, "noresult") == 0)
		return;
	if (strcmp(mode, "badresult") == 0)
		result(0, "", 0xdeadbeef);
	else if (strcmp(mode, "evilmsg") == 0)
		result(-12345, "\x1b[31mred\n<0>forged", FETCHWIRE_RES_MAGIC);
	else
		result(0, "", FETCHWIRE_RES_MAGIC);
}

static void run(const char *mode)
{
	uint64_t left = q.max_size - q.offset;

	if (strcmp(mode, "report") == 0) {
		report();
		return;
	}
	if (strcmp(mode, "orphan") == 0) {
		orphan();
		return;
	}
	if (lie_about_start(mode))
		return;
	start_at(q.offset);
	if (strcmp(mode, "oversize") == 0)
		bytes(left + 100000);
	else if (strcmp(mode, "short") == 0)
		bytes(left / 2);
	else if (strcmp(mode, "crash") == 0 || strcmp(mode, "hang") == 0)
		bytes(left / 2 ? left / 2 : 1);
	else
		bytes(left);
	end(mode);
}

int main(void)
{
	size_t got = 0;

	while (got < sizeof(q)) {
		ssize_t n =
		    read(FETCHWIRE_FD_REQ, (char *)&q + got, sizeof(q) - got);

		if (n <= 0)
			return 4;
		got += (size_t)n;
	}
	if (q.magic != FETCHWIRE_REQ_MAGIC || strncmp(q.url, "fake:", 5) != 0)
		return 5;
	run(q.url + 5);
	return 0;
}
