/* SPDX-License-Identifier: MIT */
/*
 * Which vmmd makes a template. The template store may be shared by the
 * vmmds of several nodes (one machine's nodes, or a cache on a shared file
 * system): the guests of a multi-node job that finds no template all reach
 * it at once, and each would boot a template guest for the same key, the
 * last rename winning. A claim, templates/.claim-<key> made with O_EXCL and
 * naming its node, lets one make it; the others boot their jobs and find
 * the template there for the next. A claim older than stale_s (its vmmd
 * died while making) is taken over.
 */
#ifndef VMMD_WARMCLAIM_H
#define VMMD_WARMCLAIM_H

#include <stddef.h>

/* 0: node claimed key; -EBUSY: another node holds it (its name in holder);
 * -errno. dir is the template store (root's). */
int warm_claim(const char *dir, const char *key, const char *node,
	       unsigned stale_s, char *holder, size_t holderlen);

/* 0 with the claiming node in holder while key is claimed, -ENOENT. */
int warm_claim_holder(const char *dir, const char *key, char *holder,
		      size_t holderlen);

/* node's claim of key, given back. */
void warm_unclaim(const char *dir, const char *key);

/* The claims of node left by a vmmd that stopped while making. */
void warm_claims_clean(const char *dir, const char *node);

#endif
