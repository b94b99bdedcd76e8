/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdio.h>

static log_sink_f log_sink;
static int log_level = LOG_INFO;
static int log_prefix_prio;

void log_set_sink(log_sink_f sink)
{
	log_sink = sink;
}

void log_set_level(int max_prio)
{
	log_level = max_prio;
}

int log_get_level(void)
{
	return log_level;
}

void log_set_prefix_prio(int on)
{
	log_prefix_prio = on;
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	char buf[2048];
	int saved = errno;

	if (prio > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_sink)
		log_sink(prio, buf);
	else if (log_prefix_prio)
		fprintf(stderr, "<%d>%s\n", prio, buf);
	else
		fprintf(stderr, "%s\n", buf);
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}
