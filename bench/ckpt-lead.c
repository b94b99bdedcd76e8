/* SPDX-License-Identifier: MIT */
/*
 * ckpt-lead: the checkpoint lead vmmd computes (vmmd/ckpt/ckpt_lead.h), for
 * bench/checkpoint.
 *
 *   ckpt-lead POLICY_LEAD_S MEM_BYTES DISK_BYTES BANDWIDTH_BPS
 */
#include "ckpt_lead.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	uint64_t v[4];

	if (argc != 5) {
		fprintf(stderr, "usage: ckpt-lead POLICY_LEAD_S MEM_BYTES "
				"DISK_BYTES BANDWIDTH_BPS\n");
		return 2;
	}
	for (int i = 0; i < 4; i++) {
		char *end;
		v[i] = strtoull(argv[i + 1], &end, 10);
		if (*end || end == argv[i + 1]) {
			fprintf(stderr, "ckpt-lead: '%s' is not a number\n",
				argv[i + 1]);
			return 2;
		}
	}
	printf("%" PRIu32 "\n",
	       ckpt_lead_s(v[0] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[0],
			   v[1], v[2], v[3]));
	return 0;
}
