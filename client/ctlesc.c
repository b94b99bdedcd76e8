/* SPDX-License-Identifier: MIT */
/* Escapes a guest's console output for a terminal (ctlesc.h). */
#include "ctlesc.h"

#include "log.h"

#include <stdbool.h>

static void put_escaped(FILE *out, const char *s, size_t len)
{
	/* log_escape needs 4 bytes per byte at most, and a NUL. */
	char esc[4 * CTLESC_LINE + 1];

	if (!len)
		return;
	/* log_escape writes a leading '<' as \x3c (a syslog priority); on a
	 * terminal it is only a character. */
	if (*s == '<') {
		fputc('<', out);
		s++;
	}
	log_escape(s, esc, sizeof(esc));
	fputs(esc, out);
}

/* The line so far (a serial console ends lines with "\r\n": the '\r'
 * goes when end_of_line). */
static void emit(struct ctlesc *e, FILE *out, bool end_of_line)
{
	size_t len = e->len;

	if (end_of_line && len && e->line[len - 1] == '\r')
		len--;
	e->line[len] = '\0';
	put_escaped(out, e->line, len);
	e->len = 0;
}

void ctlesc_feed(struct ctlesc *e, const char *buf, size_t n, FILE *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];

		if (c == '\n') {
			emit(e, out, true);
			fputc('\n', out);
		} else if (c == '\0') {
			/* log_escape takes strings: a NUL ends the piece. */
			emit(e, out, false);
			fputs("\\x00", out);
		} else {
			e->line[e->len++] = c;
			if (e->len == CTLESC_LINE - 1)
				emit(e, out, false);
		}
	}
}

void ctlesc_flush(struct ctlesc *e, FILE *out)
{
	/* A '\r' last may be half of a "\r\n" still on its way: kept. */
	bool cr = e->len && e->line[e->len - 1] == '\r';

	if (cr)
		e->len--;
	emit(e, out, false);
	if (cr)
		e->line[e->len++] = '\r';
}
