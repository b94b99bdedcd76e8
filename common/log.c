/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* --- escaping -------------------------------------------------------------
 * Messages quote what users and guests sent (a guest's HELLO, a path, an
 * error text). Escaping here, not at each call site, is what keeps one
 * missed call site from letting them write lines of their own. */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, uint32_t *ret_cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	uint32_t cp = c & (0x7fu >> n);

	if (c < 0xc2 || c > 0xf4)
		return 0;
	/* The second byte's range rules out overlongs and surrogates. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	*ret_cp = cp;
	return n;
}

/* Code points a terminal or a log viewer acts on although they are valid
 * text: C1 controls (U+009B is CSI on terminals that take 8-bit controls),
 * the line and paragraph separators, and the bidirectional overrides that
 * make a line read other than it is. */
static bool cp_unsafe(uint32_t cp)
{
	return cp <= 0x9f || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* The escape of an ASCII byte, or NULL when it stands as it is. buf holds
 * at least 5 bytes. */
static const char *ascii_escape(unsigned char c, bool first, char *buf)
{
	switch (c) {
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	case '\\':
		return "\\\\";
	default:
		break;
	}
	/* A leading '<' could read as a syslog priority ("<0>") wherever the
	 * message starts a line. */
	if (c < 0x20 || c == 0x7f || (c == '<' && first)) {
		snprintf(buf, 5, "\\x%02x", c);
		return buf;
	}
	return NULL;
}

struct out {
	char *p;
	size_t len, used;
	bool full;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->used + n >= o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->used, s, n);
	o->used += n;
}

/* One input position: returns how many input bytes it consumed. */
static size_t escape_one(struct out *o, const unsigned char *s, bool first)
{
	char buf[16];
	const char *e;
	uint32_t cp;
	size_t n;

	if (*s < 0x80) {
		e = ascii_escape(*s, first, buf);
		if (e)
			out_put(o, e, strlen(e));
		else
			out_put(o, (const char *)s, 1);
		return 1;
	}
	n = utf8_seq(s, &cp);
	if (n == 0) {
		snprintf(buf, sizeof(buf), "\\x%02x", *s);
		out_put(o, buf, 4);
		return 1;
	}
	if (cp_unsafe(cp)) {
		snprintf(buf, sizeof(buf), "\\u%04x", (unsigned)cp);
		out_put(o, buf, strlen(buf));
	} else {
		out_put(o, (const char *)s, n);
	}
	return n;
}

size_t log_escape(const char *in, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	struct out o = {.p = out, .len = outlen};
	size_t i = 0;

	if (outlen == 0)
		return 0;
	while (s[i] && !o.full) {
		size_t before = o.used;

		i += escape_one(&o, s + i, i == 0);
		/* Never half an escape: what did not fit is cut whole. */
		if (o.full)
			o.used = before;
	}
	out[o.used] = '\0';
	return o.used;
}

/* --- writing --------------------------------------------------------------- */

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	char raw[LOG_MAX_MSG], msg[LOG_MAX_MSG * 4 + 1];
	int saved = errno;

	if (prio > log_level)
		return;
	/* A priority outside syslog's 0..7 would write a prefix journald
	 * does not read as one. */
	prio &= LOG_PRIMASK;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	log_escape(raw, msg, sizeof(msg));
	if (log_sink)
		log_sink(prio, msg);
	else if (log_prefix_prio)
		fprintf(stderr, "<%d>%s\n", prio, msg);
	else
		fprintf(stderr, "%s\n", msg);
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}
