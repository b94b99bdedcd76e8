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
#include "warmkey.h"

struct warm_make {
	/* In: */
	const struct hv_ops *hv;
	void *hv_ctx;
	char domain[160];
	char *xml;	     /* the template guest's domain (owned) */
	char agent[4400];    /* its agent socket */
	char save[4400];     /* where libvirt writes the image */
	uint32_t timeout_ms; /* boot until HELLO, and each answer */
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
