/* SPDX-License-Identifier: MIT */
/*
 * Making a template (docs/warmstart.md), the slow part, in a thread of its
 * own: boot the template's guest, wait for its agent's HELLO, have it hold
 * itself as for a checkpoint (CKPT_PREPARE: nothing of a job is in it, no
 * SETUP came), and save it with libvirt. Blocking I/O with deadlines: the
 * thread touches only its request and the libvirt connection (which is
 * thread-safe).
 */
#ifndef VMMD_WARMMAKE_H
#define VMMD_WARMMAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"
#include "util.h"
#include "warmkey.h"

/* What a template's guest boots from: the node cache's verified files. */
struct warm_src {
	char kernel[VMENV_MAX_PATH], initrd[VMENV_MAX_PATH];
	char base[VMENV_MAX_PATH], base_fmt[8]; /* base "": no disk */
	char boot[300]; /* their digests (catalog_boot_digest) */
};

struct warm_make {
	/* In: */
	const struct hv_ops *hv;
	void *hv_ctx;
	char domain[160];
	char *xml;	     /* the template guest's domain (owned) */
	char agent[4400];    /* its agent socket */
	char save[4400];     /* where libvirt writes the image */
	uint32_t timeout_ms; /* boot until HELLO, and each answer */
	/* An image with a disk: the template's overlay (disk, made here
	 * first) over the cached base, by qemu_img. disk "" for none. */
	char qemu_img[4096];
	char disk[4400], base[4096], base_fmt[8];
	/* Set by the loop (vmmd stops): the thread gives up within a
	 * HELLO interval. */
	bool stop;
	/* Out: */
	int r;
	char why[512];
	bool not_warm; /* the image's agent cannot be a template's */
	uint64_t boot_ms, save_ms;
};

/* The thread's body (arg: struct warm_make *). */
void *warm_make_main(void *arg);

/* The handshake alone, on a connected agent socket fd: HELLO until
 * answered, then CKPT_PREPARE. For the unit tests. */
int warm_make_handshake(int fd, uint32_t timeout_ms, const bool *stop,
			bool *not_warm, char *why, size_t whylen);

#endif
