/* SPDX-License-Identifier: MIT */
#include "progress.h"

#include <stdio.h>

#define MIB (1024.0 * 1024.0)

static uint64_t clamp(uint64_t done, uint64_t total)
{
	return done > total ? total : done;
}

unsigned progress_percent(uint64_t done, uint64_t total)
{
	if (!total)
		return 0;
	/* Without overflow for any u64: done <= total here. */
	done = clamp(done, total);
	if (total > UINT64_MAX / 100)
		return (unsigned)(done / (total / 100));
	return (unsigned)(done * 100 / total);
}

bool progress_gate_due(struct progress_gate *g, uint64_t now_ms, uint64_t done,
		       uint64_t total)
{
	unsigned tenth = progress_percent(done, total) / 10;

	if (total && done >= total)
		return false;
	if (g->shown) {
		/* A clock that went back counts as no time passed. */
		uint64_t gap = now_ms > g->last_ms ? now_ms - g->last_ms : 0;

		if (gap < PROGRESS_MIN_GAP_MS)
			return false;
		if (tenth <= g->tenth && gap < PROGRESS_HEARTBEAT_MS)
			return false;
	}
	g->shown = true;
	g->last_ms = now_ms;
	g->tenth = tenth;
	return true;
}

void progress_size(char *buf, size_t len, uint64_t bytes)
{
	double m = (double)bytes / MIB;

	if (bytes < 1024 * 1024)
		snprintf(buf, len, "%llu KiB",
			 (unsigned long long)((bytes + 1023) / 1024));
	else if (m < 10)
		snprintf(buf, len, "%.1f MiB", m);
	else if (m < 10240)
		snprintf(buf, len, "%.0f MiB", m);
	else
		snprintf(buf, len, "%.1f GiB", m / 1024.0);
}

void progress_fetch_line(char *buf, size_t len, uint32_t job, const char *image,
			 uint64_t done, uint64_t total, uint64_t bps)
{
	char t[32], d[32], rate[48] = "";

	done = clamp(done, total);
	progress_size(t, sizeof(t), total);
	progress_size(d, sizeof(d), done);
	if (bps)
		snprintf(rate, sizeof(rate), ", %.1f MiB/s", (double)bps / MIB);
	snprintf(buf, len, "job %u: fetching image '%s' (%s): %u%% (%s%s)", job,
		 image, t, progress_percent(done, total), d, rate);
}

void progress_ready_line(char *buf, size_t len, uint32_t job, const char *image,
			 uint64_t total, uint64_t elapsed_ms)
{
	char t[32];

	progress_size(t, sizeof(t), total);
	snprintf(buf, len, "job %u: image '%s' ready (%s in %llu s)", job,
		 image, t, (unsigned long long)((elapsed_ms + 500) / 1000));
}

static void eta(char *buf, size_t len, uint64_t left, uint64_t bps)
{
	uint64_t s;

	if (!bps) {
		snprintf(buf, len, "--:--");
		return;
	}
	s = left / bps;
	snprintf(buf, len, "%llu:%02llu", (unsigned long long)(s / 60),
		 (unsigned long long)(s % 60));
}

void progress_bar(char *buf, size_t len, const char *what, uint64_t done,
		  uint64_t total, uint64_t bps)
{
	char bar[31], e[32];
	unsigned pct;
	int fill;

	done = clamp(done, total);
	pct = progress_percent(done, total);
	fill = (int)(pct * 30 / 100);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	eta(e, sizeof(e), total - done, bps);
	snprintf(buf, len,
		 "%-28.28s %3u%% [%s] %8.1f/%.1f MiB %7.1f MiB/s ETA %s", what,
		 pct, bar, (double)done / MIB, (double)total / MIB,
		 (double)bps / MIB, e);
}
