/* SPDX-License-Identifier: MIT */
/*
 * How a download's progress is shown to people: when a line is due (a
 * gate, so that a batch job's output file gets a bounded number of lines
 * however long the download takes) and the text of the lines and of
 * vmenvctl's bar. Pure: no clock, no I/O, no logging; the caller passes
 * the time and prints.
 *
 * The numbers shown are root's own count of the bytes it took and the
 * catalog's size (never anything the download helper or a server says),
 * and even so they are only displayed: nothing decides on them, and every
 * formatter clamps done to total.
 */
#ifndef VMENV_PROGRESS_H
#define VMENV_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A line at most every PROGRESS_MIN_GAP_MS, and only when another tenth
 * is done or PROGRESS_HEARTBEAT_MS passed without one (a slow download
 * still shows it is alive): at most 10 + minutes * 2 lines. */
#define PROGRESS_MIN_GAP_MS   2000u
#define PROGRESS_HEARTBEAT_MS 30000u

struct progress_gate {
	bool shown;	  /* a line was let through */
	uint64_t last_ms; /* when */
	unsigned tenth;	  /* the tenth it showed (0..10) */
};

/* Percent done, 0..100; 0 when total is 0. */
unsigned progress_percent(uint64_t done, uint64_t total);
/* Whether a line for done/total at now_ms is due, recording it if so.
 * The first is due at once; a finished download (done >= total) never is:
 * the line saying it is ready follows. */
bool progress_gate_due(struct progress_gate *g, uint64_t now_ms, uint64_t done,
		       uint64_t total);

/* "312 MiB", "1.5 GiB", "640 KiB": a size for people. */
void progress_size(char *buf, size_t len, uint64_t bytes);
/* "job 42: fetching image 'debian12:2025.1' (312 MiB): 35% (109 MiB,
 * 7.8 MiB/s)". bps 0: the rate is left out. */
void progress_fetch_line(char *buf, size_t len, uint32_t job, const char *image,
			 uint64_t done, uint64_t total, uint64_t bps);
/* "job 42: image 'debian12:2025.1' ready (312 MiB in 14 s)". */
void progress_ready_line(char *buf, size_t len, uint32_t job, const char *image,
			 uint64_t total, uint64_t elapsed_ms);
/* vmenvctl's bar, without the \r that redraws it:
 * "image 'x' disk  35% [##########....................]  109.0/312.0 MiB
 *  7.8 MiB/s ETA 0:26" */
void progress_bar(char *buf, size_t len, const char *what, uint64_t done,
		  uint64_t total, uint64_t bps);

#endif
