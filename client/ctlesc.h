/* SPDX-License-Identifier: MIT */
/*
 * A guest's console bytes made safe for a terminal (vmenvctl console on a
 * tty): the guest chooses them, so an escape sequence in them must not
 * reach the user's terminal as one. Line by line through log_escape
 * (common/log.h): newlines stay newlines, a "\r\n" (the serial console's
 * line end) is a newline, every other control, C1 control, bidi override
 * and byte of ill-formed UTF-8 comes out as \xNN or \uNNNN.
 * Pure: writes only to the FILE it is given.
 */
#ifndef VMENV_CTLESC_H
#define VMENV_CTLESC_H

#include <stddef.h>
#include <stdio.h>

/* Longer lines are cut into pieces of this many bytes. */
#define CTLESC_LINE 4096

struct ctlesc {
	char line[CTLESC_LINE];
	size_t len;
};

/* Takes n bytes (NULs included); writes every whole line. */
void ctlesc_feed(struct ctlesc *e, const char *buf, size_t n, FILE *out);
/* Writes what is held of an unfinished line (a prompt), escaped. */
void ctlesc_flush(struct ctlesc *e, FILE *out);

#endif
