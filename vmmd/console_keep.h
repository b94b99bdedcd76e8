/* SPDX-License-Identifier: MIT */
/*
 * Console logs of jobs that ended: who may still read them through
 * vmenvctl console, until when, and which go when that time is up.
 *
 * A job's log (console_dir/job-<id>.log) stays readable by the job's
 * owner for console_linger_s after the job ends here. A log that
 * keep_console_logs does not keep is removed when that time is up instead
 * of at the job's end; a kept one stays on disk for root, as before. The
 * list is root's file run_dir/console-ended (written atomically), so a
 * restarted vmmd still knows the owners and still removes the logs.
 */
#ifndef VMMD_CONSOLE_KEEP_H
#define VMMD_CONSOLE_KEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Entries past this drop the oldest (its log goes if it was to go). */
#define CONSOLE_KEEP_MAX 4096

struct console_ended {
	uint32_t job;
	uint32_t uid;
	int64_t until; /* wall clock, s */
	bool remove;   /* the log goes at until */
};

struct console_keep {
	struct console_ended *e;
	size_t n;
};

struct vmmd_config;

/* k is the daemon's list (struct vmmd's console_ended); c its
 * configuration: run_dir (the list's file), console_dir (the logs),
 * console_linger_s. */

/* The job ended: its owner may read its log until now + linger. With
 * console_linger_s = 0 a log that is not kept goes at once. */
void console_keep_add(struct console_keep *k, const struct vmmd_config *c,
		      uint32_t job, uid_t uid, bool remove);
/* The owner of an ended job's log while it is readable: 0, or -ENOENT. */
int console_keep_owner(const struct console_keep *k, uint32_t job,
		       uid_t *ret_uid);
/* A job of that id starts again here: its old entry goes (the new run's
 * log must not be removed when the old one's time is up). */
void console_keep_del(struct console_keep *k, const struct vmmd_config *c,
		      uint32_t job);
/* At start: reads the list; then and every reconcile: removes what is
 * due. */
void console_keep_sweep(struct console_keep *k, const struct vmmd_config *c,
			bool at_start);
void console_keep_free(struct console_keep *k);

/* Pure: the file's text, one "job uid until remove" line per entry.
 * parse: 0 or -EBADMSG (a line that is not four numbers); *ret
 * malloc'ed. format: *ret malloc'ed, 0 or -ENOMEM. */
int console_keep_parse(const char *text, struct console_keep *ret);
int console_keep_format(const struct console_keep *k, char **ret,
			size_t *ret_len);

#endif
