/* SPDX-License-Identifier: MIT */
/* The checkpoint lead and the save bandwidth it rests on (ckpt_lead.h). */
#include "ckpt_lead.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint32_t ckpt_lead_s(uint32_t policy_lead_s, uint64_t mem_bytes,
		     uint64_t disk_bytes, uint64_t bw_bps)
{
	uint64_t bytes = mem_bytes + disk_bytes, s;

	if (bw_bps < CKPT_BW_MIN_BPS)
		bw_bps = bw_bps ? CKPT_BW_MIN_BPS : CKPT_BW_DEFAULT_BPS;
	/* bytes * pct could overflow for absurd sizes: divide first. */
	s = (bytes / bw_bps) * CKPT_LEAD_SAFETY_PCT / 100 +
	    ((bytes % bw_bps) * CKPT_LEAD_SAFETY_PCT + bw_bps * 100 - 1) /
		(bw_bps * 100) +
	    CKPT_LEAD_MARGIN_S;
	if (s > UINT32_MAX)
		s = UINT32_MAX;
	return s > policy_lead_s ? (uint32_t)s : policy_lead_s;
}

time_t ckpt_due(time_t end_time, uint32_t lead_s, time_t now)
{
	if (end_time <= 0)
		return 0;
	if (end_time - (time_t)lead_s < now)
		return now;
	return end_time - (time_t)lead_s;
}

uint64_t ckpt_bw_refine(uint64_t prev_bps, uint64_t bytes, uint64_t ms)
{
	uint64_t now_bps;

	if (!ms)
		ms = 1;
	now_bps = bytes / ms * 1000 + bytes % ms * 1000 / ms;
	if (!prev_bps)
		return now_bps;
	return prev_bps / 2 + now_bps / 2;
}

static int open_probe(const char *path, bool *direct)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT,
		      0600);

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(path,
			  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DSYNC,
			  0600);
	return fd < 0 ? -errno : fd;
}

static int write_probe(int fd, uint64_t bytes)
{
	const size_t chunk = 4u * 1024 * 1024;
	void *buf = NULL;
	int r = 0;

	/* O_DIRECT wants aligned buffers and sizes. */
	if (posix_memalign(&buf, 4096, chunk) != 0)
		return -ENOMEM;
	memset(buf, 0x5a, chunk);
	for (uint64_t done = 0; done < bytes && r == 0; done += chunk)
		r = write_full(fd, buf, chunk);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	free(buf);
	return r;
}

int ckpt_bw_probe(const char *dir, uint64_t bytes, uint64_t *ret_bps, char *err,
		  size_t errlen)
{
	char path[VMENV_MAX_PATH];
	uint64_t t0;
	bool direct;
	int fd, r;

	if (str_printf(path, sizeof(path), "%s/.probe.%d", dir, (int)getpid()) <
	    0)
		return -ENAMETOOLONG;
	unlink(path);
	fd = open_probe(path, &direct);
	if (fd < 0)
		return err_set(err, errlen, fd, "checkpoint probe %s: %s", path,
			       strerror(-fd));
	t0 = now_ms();
	r = write_probe(fd, bytes);
	close(fd);
	unlink(path);
	if (r < 0)
		return err_set(err, errlen, r, "checkpoint probe %s: %s", path,
			       strerror(-r));
	*ret_bps = ckpt_bw_refine(0, bytes, now_ms() - t0);
	return 0;
}

int ckpt_bw_load(const char *path, uint64_t *ret_bps)
{
	_cleanup_free_ char *text = NULL;
	int64_t v;
	char *nl;
	int r = read_file_limited(path, 64, &text, NULL);

	if (r < 0)
		return r;
	if ((nl = strchr(text, '\n')))
		*nl = '\0';
	if (parse_i64(text, &v) < 0 || v <= 0)
		return -EINVAL;
	*ret_bps = (uint64_t)v;
	return 0;
}

int ckpt_bw_save(const char *path, uint64_t bps)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", bps);

	return write_file_atomic(path, buf, (size_t)n, 0644);
}
