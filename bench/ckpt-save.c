/* SPDX-License-Identifier: MIT */
/*
 * ckpt-save: saves a running libvirt domain as vmmd's checkpoint does
 * (vmmd/ckpt/ckpt_save.h: the same code), for bench/checkpoint.
 *
 *   ckpt-save DOMAIN PATH      prints the save's wall time in ns
 *   CKPT_SAVE_BYPASS=1         libvirt's BYPASS_CACHE save instead, the
 *                              way vmmd saved before (for comparison)
 */
#include "ckpt_save.h"
#include "util.h"

#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int save_bypass(const char *name, const char *path)
{
	virConnectPtr c = virConnectOpen("qemu:///system");
	virDomainPtr d = c ? virDomainLookupByName(c, name) : NULL;
	int r = d && virDomainSaveFlags(d, path, NULL,
					VIR_DOMAIN_SAVE_BYPASS_CACHE) == 0
		    ? 0
		    : -1;

	if (d)
		virDomainFree(d);
	if (c)
		virConnectClose(c);
	return r;
}

int main(int argc, char **argv)
{
	char err[256] = "";
	void *ctx = NULL;
	uint64_t t0;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: ckpt-save DOMAIN PATH\n");
		return 2;
	}
	if (getenv("CKPT_SAVE_BYPASS")) {
		t0 = now_ns();
		r = save_bypass(argv[1], argv[2]);
	} else {
		r = hv_libvirt_ops.open(&ctx, "qemu:///system", err,
					sizeof(err));
		if (r < 0) {
			fprintf(stderr, "ckpt-save: %s\n", err);
			return 1;
		}
		t0 = now_ns();
		r = ckpt_save_domain(&hv_libvirt_ops, ctx, argv[1], argv[2],
				     err, sizeof(err));
	}
	if (r < 0) {
		fprintf(stderr, "ckpt-save: %s: %s\n", argv[1],
			err[0] ? err : "the save failed");
		return 1;
	}
	printf("%llu\n", (unsigned long long)(now_ns() - t0));
	if (ctx)
		hv_libvirt_ops.close(ctx);
	return 0;
}
