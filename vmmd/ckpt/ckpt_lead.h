/* SPDX-License-Identifier: MIT */
/*
 * When to checkpoint a job: its end time minus a lead long enough for the
 * save. The lead is never less than the policy's checkpoint_lead_s and
 * covers writing the guest's memory and its overlay at this node's
 * measured save bandwidth, with a safety factor and a fixed margin (the
 * agent's prepare hook, the requeue).
 *
 *   lead = max(policy_lead_s,
 *              ceil((mem + disk) / bandwidth * CKPT_LEAD_SAFETY)
 *              + CKPT_LEAD_MARGIN_S)
 *
 * The bandwidth comes from a probe at vmmd start (CKPT_PROBE_BYTES written
 * with O_DIRECT into the checkpoint directory) and each real save refines
 * it; it is kept in a small file so a restarted vmmd starts from the last
 * figure. The arithmetic is pure; the probe and the file do I/O but do not
 * log.
 */
#ifndef VMMD_CKPT_LEAD_H
#define VMMD_CKPT_LEAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CKPT_LEAD_SAFETY_PCT 150u /* x1.5 */
#define CKPT_LEAD_MARGIN_S   15u
/* Until a probe or a save measured this node: a slow disk. */
#define CKPT_BW_DEFAULT_BPS (100ull * 1024 * 1024)
#define CKPT_BW_MIN_BPS	    (1ull * 1024 * 1024)
#define CKPT_PROBE_BYTES    (128ull * 1024 * 1024)

/* Seconds before the end time at which the save must start. */
uint32_t ckpt_lead_s(uint32_t policy_lead_s, uint64_t mem_bytes,
		     uint64_t disk_bytes, uint64_t bw_bps);

/* When the save starts: end_time - lead, never before now. 0 when the job
 * has no end time (end_time 0: no limit). */
time_t ckpt_due(time_t end_time, uint32_t lead_s, time_t now);

/* The bandwidth after a save of bytes in ms (the previous figure weighs as
 * much as the new one, so one slow save raises the lead at once but one
 * fast save does not halve it). prev 0: none yet. */
uint64_t ckpt_bw_refine(uint64_t prev_bps, uint64_t bytes, uint64_t ms);

/* Writes bytes into a temporary file of dir with O_DIRECT (or O_DSYNC
 * where the file system refuses O_DIRECT, e.g. tmpfs), removes it, and
 * returns the bandwidth. */
int ckpt_bw_probe(const char *dir, uint64_t bytes, uint64_t *ret_bps, char *err,
		  size_t errlen);

/* The persisted figure: "bps\n" in path. */
int ckpt_bw_load(const char *path, uint64_t *ret_bps);
int ckpt_bw_save(const char *path, uint64_t bps);

#endif
