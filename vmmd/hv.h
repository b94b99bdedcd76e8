/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor seam. vmmd talks to libvirt only through these operations
 * (hv_libvirt.c is the one file that includes libvirt); unit tests plug in a
 * fake. Errors are negative errno; a message for humans goes into err.
 */
#ifndef VMMD_HV_H
#define VMMD_HV_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* SAVED: stopped because it was saved (a checkpoint), not a failure.
 * IOERROR: paused by QEMU on a disk write error (its default for ENOSPC:
 * the overlay's file system is full); the domain is still there. */
enum hv_event {
	HV_EV_STARTED = 1,
	HV_EV_STOPPED,
	HV_EV_CRASHED,
	HV_EV_OTHER,
	HV_EV_SAVED,
	HV_EV_IOERROR
};

struct hv_ops {
	int (*open)(void **ctx, const char *uri, char *err, size_t errlen);
	void (*close)(void *ctx);
	/* Starts a transient domain from XML. */
	int (*create)(void *ctx, const char *xml, char *err, size_t errlen);
	/* The same, with a memory hard limit (KiB) set on the domain before
	 * its vCPUs run (created paused, limited, resumed): for hosts where
	 * libvirt cannot take <memtune> from the XML (it then also raises
	 * RLIMIT_MEMLOCK to the limit, which needs CAP_SYS_RESOURCE). */
	int (*create_limited)(void *ctx, const char *xml,
			      uint64_t hard_limit_kib, char *err,
			      size_t errlen);
	/* Hard stop. -ENOENT when no such domain runs. */
	int (*destroy)(void *ctx, const char *name, char *err, size_t errlen);
	/* Names of running domains starting with prefix; *ret is a
	 * NULL-terminated array the caller frees with hv_names_free(). */
	int (*list)(void *ctx, const char *prefix, char ***ret);
	/* 1 when the driver offers KVM domains, 0 when not. */
	int (*kvm_offered)(void *ctx);
	/* An fd that becomes readable when lifecycle events are pending, and
	 * the call that hands them over (name, event) one by one. */
	int (*event_fd)(void *ctx);
	void (*drain_events)(void *ctx,
			     void (*cb)(void *data, const char *name,
					enum hv_event ev),
			     void *data);
	/* Checkpoints (vmmd/ckpt/ckpt.c). save and restore are called from a
	 * worker thread (they take seconds): they touch nothing but their
	 * arguments and the connection (libvirt's is thread-safe). */
	/* Writes the running domain's memory and device state to path,
	 * through the page cache (durable when it returns: libvirt's helper
	 * syncs it); the domain is gone afterwards. */
	int (*save)(void *ctx, const char *name, const char *path, char *err,
		    size_t errlen);
	/* Sets a running domain's memory hard limit (KiB). NULL: not
	 * offered (the save keeps the job's limit). */
	int (*set_limit)(void *ctx, const char *name, uint64_t kib, char *err,
			 size_t errlen);
	/* Starts a domain from a save image with xml (this allocation's
	 * pinning and paths) instead of the saved XML; with a memory hard
	 * limit (KiB, 0: none) set before its vCPUs run, as create_limited. */
	int (*restore)(void *ctx, const char *path, const char *xml,
		       uint64_t hard_limit_kib, char *err, size_t errlen);
	/* The same through the page cache (restore bypasses it: a checkpoint
	 * is read once, from disk): a warm start's image was just written
	 * from its template's, which is in memory. NULL: restore is used. */
	int (*restore_cached)(void *ctx, const char *path, const char *xml,
			      uint64_t hard_limit_kib, char *err,
			      size_t errlen);
	/* Hot-unplugs a device (its XML) and waits at most timeout_ms until
	 * the guest released it (gone: a text of the device's XML that is
	 * absent from the domain's XML once it is removed). */
	int (*detach)(void *ctx, const char *name, const char *dev_xml,
		      const char *gone, int timeout_ms, char *err,
		      size_t errlen);
	int (*attach)(void *ctx, const char *name, const char *dev_xml,
		      char *err, size_t errlen);
	/* Whether this host can give a guest of domain type type the CPU
	 * model (NULL/"": the node's default, always): 1 yes, 0 no (why
	 * says so), -errno. */
	int (*cpu_ok)(void *ctx, const char *type, const char *cpu_model,
		      char *why, size_t whylen);
	/* The job and node in a running domain's vmenv metadata
	 * (domowner.h): 0; -ENODATA when it has none (or none vmmd can
	 * read); -ENOENT when no such domain runs; -EIO when libvirt did
	 * not answer. */
	int (*owner)(void *ctx, const char *name, uint32_t *job_id, char *node,
		     size_t nodelen);
};

extern const struct hv_ops hv_libvirt_ops;

static inline void hv_names_free(char **names)
{
	strv_free(names);
}

/* Whether a domain of exactly this name runs: 1, 0, or -errno when
 * libvirt did not answer (the caller decides what unknown means). */
static inline int hv_domain_runs(const struct hv_ops *hv, void *ctx,
				 const char *name)
{
	char **names = NULL;
	int runs = 0;

	if (hv->list(ctx, name, &names) < 0)
		return -EIO;
	for (char **n = names; *n && !runs; n++)
		runs = strcmp(*n, name) == 0;
	hv_names_free(names);
	return runs;
}

#endif
