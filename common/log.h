/* SPDX-License-Identifier: MIT */
/*
 * One small logging API with two back ends: stderr with syslog priority
 * prefixes ("<3>...", read by journald) for vmmd and the CLI, and Slurm's own
 * slurm_error/slurm_info inside the SPANK plugin. Pure modules never log:
 * they return a negative errno and the caller logs once.
 *
 * Every message is escaped (log_escape) before any back end sees it, so
 * callers may quote untrusted text (a guest's words, a user's path) as it
 * is: one message is always one line, its priority is the caller's, and no
 * byte reaches a terminal as a control. The stderr back end writes the
 * "<prio>" prefix itself, before the message.
 */
#ifndef VMENV_LOG_H
#define VMENV_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

/* Longest message before escaping (longer ones are cut); escaped, a
 * message takes at most 4 times that. */
#define LOG_MAX_MSG 2048

/* msg: escaped, one line, no newline at its end. */
typedef void (*log_sink_f)(int prio, const char *msg);

/* Route every message to sink (NULL restores stderr). */
void log_set_sink(log_sink_f sink);
/* Messages above this priority (LOG_DEBUG is the most verbose) are dropped. */
void log_set_level(int max_prio);
int log_get_level(void);
/* stderr back end: prefix with "<prio>" (for journald) or not (terminal). */
void log_set_prefix_prio(int on);

void log_msg(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(int prio, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Escapes in into out (NUL-terminated; cut at a whole escape when out is
 * too small; 4 * strlen(in) + 1 always suffices) and returns its length:
 *   \n \r \t \\          newline, carriage return, tab, backslash
 *   \xNN                other bytes below 0x20, DEL, any byte that is not
 *                       part of well-formed UTF-8 (so raw C1 bytes
 *                       0x80-0x9f), and '<' as the first byte (a syslog
 *                       priority where the message starts a line)
 *   \uNNNN              well-formed UTF-8 that terminals or log viewers
 *                       act on: C1 controls U+0080-U+009F, U+2028-U+202E
 *                       (line/paragraph separators, bidi embeddings and
 *                       overrides), U+2066-U+2069 (bidi isolates)
 * Everything else, printable ASCII and other UTF-8, stays as it is. */
size_t log_escape(const char *in, char *out, size_t outlen);

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
