/* SPDX-License-Identifier: MIT */
/* vmmd's log kept in memory, for tests that assert on what it says. */
#ifndef VMENV_TESTLOG_H
#define VMENV_TESTLOG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char logbuf[512 * 1024];
static size_t loglen;

/* The log.h sink; VMENV_TEST_VERBOSE=1 also prints each line. */
static void log_sink(int prio, const char *msg)
{
	size_t n = strlen(msg);

	if (getenv("VMENV_TEST_VERBOSE"))
		fprintf(stderr, "vmmd<%d> %s\n", prio, msg);
	if (loglen + n + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, msg, n);
		loglen += n;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
}

static inline void log_reset(void)
{
	loglen = 0;
	logbuf[0] = '\0';
}

/* How many times needle occurs in the log. */
static inline unsigned log_count(const char *needle)
{
	unsigned n = 0;

	for (const char *p = logbuf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

#endif
